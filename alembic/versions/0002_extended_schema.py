"""Extended schema: the extended columns, real JSON, aware timestamps, and what the reference lacked.

Revision ID: 0002_extended_schema
Revises: 0001_base_schema
Create Date: 2026-11-23

Per table, in batch mode so that SQLite can do it:
* the extended columns of storage-models.md (updated_at, processing_time, ..., feedback_metadata);
* ``bbox_json`` and every metadata column as real JSON (JSONB on PostgreSQL);
* NOT NULL where the data model requires a value, CHECK constraints on every bounded value;
* ``session_id`` NOT NULL with ``ON DELETE CASCADE`` (the base schema had neither);
* the indexes the session service's filters and orderings use.

On SQLite every table is rebuilt from the frozen base definition (``copy_from``): a reference database's
anonymous constraints are then replaced by named ones instead of being silently dropped, and the
``updated_at`` values a reference ``Database`` wrote are kept. Rows are copied as they are; a value that
breaks a new constraint fails the whole revision, which rolls back and leaves the database untouched.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from edi_storage.migrate.base_schema import BASE_TABLES, base_metadata

revision: str = "0002_extended_schema"
down_revision: str | Sequence[str] | None = "0001_base_schema"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
NOW = sa.text("CURRENT_TIMESTAMP")
HEX_COLOUR_SQL = (
    "length(color_hex) = 7 AND substr(color_hex, 1, 1) = '#' "
    "AND ltrim(lower(substr(color_hex, 2)), '0123456789abcdef') = ''"
)


@dataclass
class TableChange:
    added: list[sa.Column[object]] = field(default_factory=list)
    required: list[str] = field(default_factory=list)  # made NOT NULL
    timestamps: list[str] = field(default_factory=list)  # naive TIMESTAMP -> aware, NOT NULL
    to_json: list[str] = field(default_factory=list)  # TEXT -> JSON
    defaults: dict[str, str] = field(default_factory=dict)  # column -> constant server default, as SQL
    checks: dict[str, str] = field(default_factory=dict)  # constraint name -> SQL
    indexes: list[list[str]] = field(default_factory=list)
    child: bool = True  # has session_id -> sessions.id


def between(column: str, low: float, high: float) -> str:
    return f"{column} BETWEEN {low} AND {high}"


def updated_at() -> sa.Column[object]:
    return sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False)


def table_changes() -> dict[str, TableChange]:
    """What revision 0002 does to each table; built afresh on each call, as a Column joins one table only."""
    return {
        "sessions": TableChange(
            added=[
                sa.Column("processing_time", sa.Float),
                sa.Column("model_version", sa.Text),
                sa.Column("session_tags", JSON),
                sa.Column("session_metadata", JSON),
                sa.Column("user_id", sa.Text),
                sa.Column("project_id", sa.Text),
            ],
            required=["status"],
            timestamps=["created_at"],
            defaults={"status": "'in_progress'"},
            checks={
                "final_alignment_score": between("final_alignment_score", 0, 1),
                "processing_time": "processing_time >= 0",
                "id_not_empty": "length(id) > 0",
            },
            indexes=[
                ["created_at"],
                ["status", "created_at"],
                ["final_alignment_score"],
                ["status", "final_alignment_score", "created_at"],
            ],
            child=False,
        ),
        "prompts": TableChange(
            added=[
                sa.Column("generation_time", sa.Float),
                sa.Column("model_confidence", sa.Float),
                sa.Column("prompt_metadata", JSON),
                sa.Column("generation_parameters", JSON),
                updated_at(),
            ],
            required=["iteration", "positive_prompt", "negative_prompt"],
            timestamps=["created_at"],
            defaults={"negative_prompt": "''"},
            checks={
                "iteration": "iteration >= 0",
                "quality_score": between("quality_score", 0, 1),
                "generation_time": "generation_time >= 0",
                "model_confidence": between("model_confidence", 0, 1),
            },
            indexes=[["session_id", "iteration"]],
        ),
        "entities": TableChange(
            added=[
                sa.Column("embedding_vector", JSON),
                sa.Column("semantic_label", sa.Text),
                sa.Column("entity_metadata", JSON),
                sa.Column("quality_score", sa.Float),
            ],
            required=["entity_id", "label", "confidence"],
            to_json=["bbox_json"],
            checks={
                "confidence": between("confidence", 0, 1),
                "area_percent": between("area_percent", 0, 100),
                "quality_score": between("quality_score", 0, 1),
                "color_hex": HEX_COLOUR_SQL,
            },
            indexes=[["session_id"]],
        ),
        "validations": TableChange(
            added=[
                sa.Column("processing_details", JSON),
                sa.Column("quality_metrics", JSON),
                sa.Column("validation_metadata", JSON),
                sa.Column("user_ratings", JSON),
            ],
            required=["attempt_number"],
            timestamps=["created_at"],
            checks={
                "attempt_number": "attempt_number >= 0",
                "alignment_score": between("alignment_score", 0, 1),
                "preserved_count": "preserved_count >= 0",
                "modified_count": "modified_count >= 0",
                "unintended_count": "unintended_count >= 0",
            },
            indexes=[["session_id", "attempt_number"]],
        ),
        "user_feedback": TableChange(
            added=[sa.Column("feedback_metadata", JSON), updated_at()],
            required=["feedback_type"],
            timestamps=["created_at"],
            indexes=[["session_id", "created_at"]],
        ),
    }


def server_default(sql: str | None) -> sa.TextClause | None:
    return None if sql is None else sa.text(sql)


def index_name(table: str, columns: list[str]) -> str:
    return f"ix_{table}_{'_'.join(columns)}"


def fk_name(table: str) -> str:
    return f"fk_{table}_session_id_sessions"


def is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def has_column(table: str, column: str) -> bool:
    return column in {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    sqlite = is_sqlite()
    # The reference Database class already has sessions.updated_at: keep its values, do not add it twice.
    legacy_updated_at = has_column("sessions", "updated_at")
    base = base_metadata(sessions_updated_at=legacy_updated_at)
    # Values the new NOT NULL constraints need, filled the way the reference itself defaulted them.
    op.execute("UPDATE sessions SET status = 'in_progress' WHERE status IS NULL")
    op.execute("UPDATE prompts SET negative_prompt = '' WHERE negative_prompt IS NULL")
    for table in BASE_TABLES:
        if "created_at" in base.tables[table].c:
            op.execute(f"UPDATE {table} SET created_at = CURRENT_TIMESTAMP WHERE created_at IS NULL")
    if legacy_updated_at:
        op.execute("UPDATE sessions SET updated_at = COALESCE(updated_at, created_at)")

    changes = table_changes()
    for table in BASE_TABLES:
        change = changes[table]
        batch_args = {"recreate": "always", "copy_from": base.tables[table]} if sqlite else {}
        with op.batch_alter_table(table, **batch_args) as batch:  # type: ignore[arg-type]
            for new_column in change.added:
                batch.add_column(new_column)
            if table == "sessions":
                if legacy_updated_at:
                    batch.alter_column(
                        "updated_at",
                        existing_type=sa.DateTime(),
                        type_=sa.DateTime(timezone=True),
                        nullable=False,
                        existing_server_default=NOW,
                        postgresql_using="updated_at AT TIME ZONE 'UTC'",
                    )
                else:
                    batch.add_column(updated_at())
            for column in change.timestamps:
                batch.alter_column(
                    column,
                    existing_type=sa.DateTime(),
                    type_=sa.DateTime(timezone=True),
                    nullable=False,
                    existing_server_default=NOW,
                    postgresql_using=f"{column} AT TIME ZONE 'UTC'",
                )
            for column in change.to_json:
                batch.alter_column(
                    column, existing_type=sa.Text(), type_=JSON, postgresql_using=f"{column}::jsonb"
                )
            for column in change.required:
                batch.alter_column(
                    column,
                    nullable=False,
                    server_default=server_default(change.defaults.get(column)),
                    existing_type=base.tables[table].c[column].type,
                )
            if change.child:
                batch.alter_column("session_id", existing_type=sa.Text(), nullable=False)
                batch.drop_constraint(fk_name(table), type_="foreignkey")
                batch.create_foreign_key(
                    fk_name(table), "sessions", ["session_id"], ["id"], ondelete="CASCADE"
                )
            for name, sql in change.checks.items():
                batch.create_check_constraint(name, sa.text(sql))
            for columns in change.indexes:
                batch.create_index(index_name(table, columns), columns)

    # Child rows written before updated_at existed were last updated when they were created.
    op.execute("UPDATE prompts SET updated_at = created_at")
    op.execute("UPDATE user_feedback SET updated_at = created_at")


def downgrade() -> None:
    base = base_metadata()
    changes = table_changes()
    for table in reversed(BASE_TABLES):
        change = changes[table]
        batch_args = {"recreate": "always"} if is_sqlite() else {}
        with op.batch_alter_table(table, **batch_args) as batch:  # type: ignore[arg-type]
            for columns in change.indexes:
                batch.drop_index(index_name(table, columns))
            for name in change.checks:
                batch.drop_constraint(op.f(f"ck_{table}_{name}"), type_="check")
            if change.child:
                batch.drop_constraint(fk_name(table), type_="foreignkey")
                batch.create_foreign_key(fk_name(table), "sessions", ["session_id"], ["id"])
                batch.alter_column("session_id", existing_type=sa.Text(), nullable=True)
            for column in change.required:
                batch.alter_column(
                    column,
                    nullable=True,
                    server_default=None,
                    existing_type=base.tables[table].c[column].type,
                )
            for column in change.to_json:
                batch.alter_column(
                    column, existing_type=JSON, type_=sa.Text(), postgresql_using=f"{column}::text"
                )
            for column in change.timestamps:
                batch.alter_column(
                    column,
                    existing_type=sa.DateTime(timezone=True),
                    type_=sa.DateTime(),
                    nullable=True,
                    existing_server_default=NOW,
                    postgresql_using=f"{column} AT TIME ZONE 'UTC'",
                )
            for new_column in reversed(change.added):
                batch.drop_column(new_column.name)
            if table == "sessions":
                batch.drop_column("updated_at")
