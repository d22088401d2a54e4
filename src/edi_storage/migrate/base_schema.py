"""The base schema of storage-layer.md 5.1, as SQLAlchemy ``Table`` objects. FROZEN: never edit.

This is the shape revision 0001 creates and the shape of databases written by the reference
implementation. Three places need it and share this one definition: revision 0001 creates it, revision
0002 hands it to batch mode as ``copy_from`` (so that a reference database's anonymous constraints are
replaced by named ones instead of being silently dropped), and ``state.py`` recognises reference
databases by its columns. Later schema changes belong in new revisions, never here.
"""

from __future__ import annotations

import sqlalchemy as sa

# A frozen copy of the models' naming convention as revisions 0001 and 0002 used it: if the models'
# convention ever changes, these revisions must still name constraints as they always did.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def base_metadata(*, sessions_updated_at: bool = False) -> sa.MetaData:
    """The five base tables; ``sessions_updated_at`` adds the column the reference ``Database`` class has."""
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    now = sa.text("CURRENT_TIMESTAMP")

    def session_fk() -> sa.ForeignKey:
        return sa.ForeignKey("sessions.id")  # named fk_<table>_session_id_sessions by the convention

    sa.Table(
        "sessions",
        metadata,
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("created_at", sa.DateTime, server_default=now),
        sa.Column("image_path", sa.Text, nullable=False),
        sa.Column("naive_prompt", sa.Text, nullable=False),
        sa.Column("status", sa.Text),
        sa.Column("final_alignment_score", sa.Float),
        sa.CheckConstraint("status IN ('in_progress', 'completed', 'failed')", name="status"),
    )
    if sessions_updated_at:
        metadata.tables["sessions"].append_column(sa.Column("updated_at", sa.DateTime, server_default=now))
    sa.Table(
        "prompts",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("session_id", sa.Text, session_fk()),
        sa.Column("iteration", sa.Integer),
        sa.Column("positive_prompt", sa.Text),
        sa.Column("negative_prompt", sa.Text),
        sa.Column("quality_score", sa.Float),
        sa.Column("created_at", sa.DateTime, server_default=now),
        sqlite_autoincrement=True,
    )
    sa.Table(
        "entities",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("session_id", sa.Text, session_fk()),
        sa.Column("entity_id", sa.Text),
        sa.Column("label", sa.Text),
        sa.Column("confidence", sa.Float),
        sa.Column("bbox_json", sa.Text),
        sa.Column("mask_path", sa.Text),
        sa.Column("color_hex", sa.Text),
        sa.Column("area_percent", sa.Float),
        sqlite_autoincrement=True,
    )
    sa.Table(
        "validations",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("session_id", sa.Text, session_fk()),
        sa.Column("attempt_number", sa.Integer),
        sa.Column("alignment_score", sa.Float),
        sa.Column("preserved_count", sa.Integer),
        sa.Column("modified_count", sa.Integer),
        sa.Column("unintended_count", sa.Integer),
        sa.Column("user_feedback", sa.Text),
        sa.Column("created_at", sa.DateTime, server_default=now),
        sqlite_autoincrement=True,
    )
    sa.Table(
        "user_feedback",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("session_id", sa.Text, session_fk()),
        sa.Column("feedback_type", sa.Text),
        sa.Column("comments", sa.Text),
        sa.Column("rating", sa.Integer),
        sa.Column("created_at", sa.DateTime, server_default=now),
        sa.CheckConstraint("feedback_type IN ('accept', 'reject', 'partial')", name="feedback_type"),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name="rating"),
        sqlite_autoincrement=True,
    )
    return metadata


BASE_TABLES: tuple[str, ...] = ("sessions", "prompts", "entities", "validations", "user_feedback")
