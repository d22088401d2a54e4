"""Gallery: generated_images, training_sessions (LoRA runs) and creation_sessions (batch runs).

Revision ID: 0006_gallery
Revises: 0005_prompt_library
Create Date: 2026-11-23

An image's runs are nullable foreign keys with ON DELETE SET NULL: deleting a run never deletes images.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006_gallery"
down_revision: str | Sequence[str] | None = "0005_prompt_library"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
NOW = sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "creation_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("theme", sa.Text(), nullable=True),
        sa.Column("images_created", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("images_kept", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("avg_score", sa.Float(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("avg_score BETWEEN 0 AND 10", name=op.f("ck_creation_sessions_avg_score")),
        sa.CheckConstraint("images_created >= 0", name=op.f("ck_creation_sessions_images_created")),
        sa.CheckConstraint(
            "images_kept >= 0 AND images_kept <= images_created",
            name=op.f("ck_creation_sessions_images_kept"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_creation_sessions")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("creation_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_creation_sessions_started_at"), ["started_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_creation_sessions_theme"), ["theme"], unique=False)

    op.create_table(
        "training_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("model_path", sa.Text(), nullable=False),
        sa.Column("config", JSON, nullable=True),
        sa.Column("dataset_size", sa.Integer(), nullable=True),
        sa.Column("final_loss", sa.Float(), nullable=True),
        sa.Column("training_time_seconds", sa.Float(), nullable=True),
        sa.Column("metrics", JSON, nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.Text(), server_default="running", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint(
            "status IN ('running', 'completed', 'failed')", name=op.f("ck_training_sessions_status")
        ),
        sa.CheckConstraint("dataset_size >= 0", name=op.f("ck_training_sessions_dataset_size")),
        sa.CheckConstraint("final_loss >= 0", name=op.f("ck_training_sessions_final_loss")),
        sa.CheckConstraint(
            "training_time_seconds >= 0", name=op.f("ck_training_sessions_training_time_seconds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_sessions")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("training_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_training_sessions_name"), ["name"], unique=False)
        batch_op.create_index(batch_op.f("ix_training_sessions_started_at"), ["started_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_training_sessions_status"), ["status"], unique=False)

    op.create_table(
        "generated_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("negative_prompt", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=True),
        sa.Column("source_query", sa.Text(), nullable=True),
        sa.Column("model_id", sa.Text(), nullable=False),
        sa.Column("generation_params", JSON, nullable=True),
        sa.Column("seed", sa.Integer(), nullable=True),
        sa.Column("aesthetic_score", sa.Float(), nullable=True),
        sa.Column("clip_score", sa.Float(), nullable=True),
        sa.Column("technical_score", sa.Float(), nullable=True),
        sa.Column("final_score", sa.Float(), nullable=True),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("is_featured", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("tags", JSON, nullable=True),
        sa.Column("creation_session_id", sa.Integer(), nullable=True),
        sa.Column("training_session_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'curated', 'rejected')", name=op.f("ck_generated_images_status")
        ),
        sa.CheckConstraint(
            "aesthetic_score BETWEEN 0 AND 10", name=op.f("ck_generated_images_aesthetic_score")
        ),
        sa.CheckConstraint("clip_score BETWEEN 0 AND 1", name=op.f("ck_generated_images_clip_score")),
        sa.CheckConstraint("final_score BETWEEN 0 AND 10", name=op.f("ck_generated_images_final_score")),
        sa.CheckConstraint("length(filename) > 0", name=op.f("ck_generated_images_filename")),
        sa.CheckConstraint(
            "technical_score BETWEEN 0 AND 1", name=op.f("ck_generated_images_technical_score")
        ),
        sa.ForeignKeyConstraint(
            ["creation_session_id"],
            ["creation_sessions.id"],
            name=op.f("fk_generated_images_creation_session_id_creation_sessions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["training_session_id"],
            ["training_sessions.id"],
            name=op.f("fk_generated_images_training_session_id_training_sessions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generated_images")),
        sa.UniqueConstraint("filename", name=op.f("uq_generated_images_filename")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("generated_images", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_generated_images_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_generated_images_creation_session_id"), ["creation_session_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_generated_images_final_score"), ["final_score"], unique=False)
        batch_op.create_index(batch_op.f("ix_generated_images_is_featured"), ["is_featured"], unique=False)
        batch_op.create_index(batch_op.f("ix_generated_images_model_id"), ["model_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_generated_images_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_generated_images_status_created_at"), ["status", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_generated_images_status_final_score"), ["status", "final_score"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_generated_images_training_session_id"), ["training_session_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("generated_images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_generated_images_training_session_id"))
        batch_op.drop_index(batch_op.f("ix_generated_images_status_final_score"))
        batch_op.drop_index(batch_op.f("ix_generated_images_status_created_at"))
        batch_op.drop_index(batch_op.f("ix_generated_images_status"))
        batch_op.drop_index(batch_op.f("ix_generated_images_model_id"))
        batch_op.drop_index(batch_op.f("ix_generated_images_is_featured"))
        batch_op.drop_index(batch_op.f("ix_generated_images_final_score"))
        batch_op.drop_index(batch_op.f("ix_generated_images_creation_session_id"))
        batch_op.drop_index(batch_op.f("ix_generated_images_created_at"))

    op.drop_table("generated_images")
    with op.batch_alter_table("training_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_training_sessions_status"))
        batch_op.drop_index(batch_op.f("ix_training_sessions_started_at"))
        batch_op.drop_index(batch_op.f("ix_training_sessions_name"))

    op.drop_table("training_sessions")
    with op.batch_alter_table("creation_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_creation_sessions_theme"))
        batch_op.drop_index(batch_op.f("ix_creation_sessions_started_at"))

    op.drop_table("creation_sessions")
