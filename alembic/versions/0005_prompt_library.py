"""Prompt library: prompt_library with its indexes and full-text search.

Revision ID: 0005_prompt_library
Revises: 0004_query_performance
Create Date: 2026-11-23

SQLite: an FTS5 table over prompt_text (external content, rowid = prompt_library.id) kept in sync by
three triggers. PostgreSQL: a GIN index on to_tsvector('simple', prompt_text). Neither is a model, so
alembic/env.py leaves them out of autogenerate.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_prompt_library"
down_revision: str | Sequence[str] | None = "0004_query_performance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FTS = "prompt_library_fts"
SQLITE_FTS = [
    f"CREATE VIRTUAL TABLE {FTS} USING fts5(prompt_text, content='prompt_library', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')",
    f"CREATE TRIGGER {FTS}_insert AFTER INSERT ON prompt_library BEGIN "
    f"INSERT INTO {FTS} (rowid, prompt_text) VALUES (new.id, new.prompt_text); END",
    f"CREATE TRIGGER {FTS}_delete AFTER DELETE ON prompt_library BEGIN "
    f"INSERT INTO {FTS} ({FTS}, rowid, prompt_text) VALUES ('delete', old.id, old.prompt_text); END",
    f"CREATE TRIGGER {FTS}_update AFTER UPDATE OF prompt_text ON prompt_library BEGIN "
    f"INSERT INTO {FTS} ({FTS}, rowid, prompt_text) VALUES ('delete', old.id, old.prompt_text); "
    f"INSERT INTO {FTS} (rowid, prompt_text) VALUES (new.id, new.prompt_text); END",
    f"INSERT INTO {FTS} ({FTS}) VALUES ('rebuild')",
]
PG_SEARCH = (
    "CREATE INDEX ix_prompt_library_search ON prompt_library USING gin (to_tsvector('simple', prompt_text))"
)


def upgrade() -> None:
    now = sa.text("CURRENT_TIMESTAMP")
    op.create_table(
        "prompt_library",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("prompt_text", sa.Text, nullable=False),
        sa.Column("prompt_hash", sa.Text, nullable=False),
        sa.Column("total_uses", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("model", sa.Text),
        sa.Column("thumbnail_data", sa.LargeBinary),
        sa.Column("thumbnail_mime", sa.Text),
        sa.Column("thumbnail_width", sa.Integer),
        sa.Column("thumbnail_height", sa.Integer),
        sa.UniqueConstraint("prompt_hash", name=op.f("uq_prompt_library_prompt_hash")),
        sa.CheckConstraint("total_uses >= 1", name=op.f("ck_prompt_library_total_uses")),
        sa.CheckConstraint("length(prompt_hash) = 64", name=op.f("ck_prompt_library_prompt_hash")),
        sa.CheckConstraint(
            "thumbnail_width > 0 AND thumbnail_height > 0", name=op.f("ck_prompt_library_thumbnail_size")
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_prompt_library_last_used_at_id", "prompt_library", ["last_used_at", "id"])
    op.create_index("ix_prompt_library_total_uses_id", "prompt_library", ["total_uses", "id"])
    op.create_index("ix_prompt_library_model_last_used_at", "prompt_library", ["model", "last_used_at"])
    for statement in SQLITE_FTS if op.get_bind().dialect.name == "sqlite" else [PG_SEARCH]:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {FTS}_{trigger}")
        op.execute(f"DROP TABLE IF EXISTS {FTS}")
    else:
        op.execute("DROP INDEX IF EXISTS ix_prompt_library_search")
    op.drop_index("ix_prompt_library_model_last_used_at", table_name="prompt_library")
    op.drop_index("ix_prompt_library_total_uses_id", table_name="prompt_library")
    op.drop_index("ix_prompt_library_last_used_at_id", table_name="prompt_library")
    op.drop_table("prompt_library")
