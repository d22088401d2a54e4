"""Audit trail: the audit_log table and triggers on the five session tables.

Revision ID: 0003_audit_log
Revises: 0002_extended_schema
Create Date: 2026-11-23

The triggers see every change, whatever path it takes (see edi_storage.models.audit). Their column lists
are frozen here, as of this revision.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from edi_storage.migrate import audit_triggers

revision: str = "0003_audit_log"
down_revision: str | Sequence[str] | None = "0002_extended_schema"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")

# table -> (columns, JSON columns) as of revision 0003
AUDITED: dict[str, tuple[list[str], list[str]]] = {
    "sessions": (
        ["id", "image_path", "naive_prompt", "status", "final_alignment_score", "processing_time",
         "model_version", "session_tags", "session_metadata", "user_id", "project_id", "created_at",
         "updated_at"],
        ["session_tags", "session_metadata"],
    ),
    "prompts": (
        ["id", "session_id", "iteration", "positive_prompt", "negative_prompt", "quality_score",
         "generation_time", "model_confidence", "prompt_metadata", "generation_parameters", "created_at",
         "updated_at"],
        ["prompt_metadata", "generation_parameters"],
    ),
    "entities": (
        ["id", "session_id", "entity_id", "label", "confidence", "bbox_json", "mask_path", "color_hex",
         "area_percent", "embedding_vector", "semantic_label", "entity_metadata", "quality_score"],
        ["bbox_json", "embedding_vector", "entity_metadata"],
    ),
    "validations": (
        ["id", "session_id", "attempt_number", "alignment_score", "preserved_count", "modified_count",
         "unintended_count", "user_feedback", "processing_details", "quality_metrics",
         "validation_metadata", "user_ratings", "created_at"],
        ["processing_details", "quality_metrics", "validation_metadata", "user_ratings"],
    ),
    "user_feedback": (
        ["id", "session_id", "feedback_type", "comments", "rating", "feedback_metadata", "created_at",
         "updated_at"],
        ["feedback_metadata"],
    ),
}  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("table_name", sa.Text, nullable=False),
        sa.Column("record_id", sa.Text),
        sa.Column("operation", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text),
        sa.Column(
            "timestamp",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("CURRENT_TIMESTAMP"),
        ),
        sa.Column("changes", JSON),
        sa.CheckConstraint(
            "operation IN ('INSERT', 'UPDATE', 'DELETE')", name=op.f("ck_audit_log_operation")
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_audit_log_timestamp", "audit_log", ["timestamp"])
    op.create_index(
        "ix_audit_log_table_name_record_id_timestamp", "audit_log", ["table_name", "record_id", "timestamp"]
    )
    if op.get_bind().dialect.name == "sqlite":
        statements = audit_triggers.sqlite_context_table()
        for table, (columns, json_columns) in AUDITED.items():
            statements += audit_triggers.sqlite_triggers(table, columns, json_columns)
    else:
        statements = [audit_triggers.postgres_function()]
        statements += [audit_triggers.postgres_trigger(table) for table in AUDITED]
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in AUDITED:
            for statement in audit_triggers.sqlite_drop_triggers(table):
                op.execute(statement)
        op.execute(f"DROP TABLE {audit_triggers.CONTEXT_TABLE}")
    else:
        for table in AUDITED:
            op.execute(audit_triggers.postgres_drop_trigger(table))
        op.execute(f"DROP FUNCTION {audit_triggers.PG_FUNCTION}()")
    op.drop_index("ix_audit_log_table_name_record_id_timestamp", table_name="audit_log")
    op.drop_index("ix_audit_log_timestamp", table_name="audit_log")
    op.drop_table("audit_log")
