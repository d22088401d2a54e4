"""The gallery (gallery-schema.md): generated images with scores and curation, the LoRA training runs
and the batch creation runs that produce them.

An image points at the creation run and the training run (LoRA) that made it; deleting a run keeps its
images (``ON DELETE SET NULL``): images are the valuable part. ``created_at`` never changes;
``updated_at`` follows every update (the reference trigger that rewrote ``created_at`` was a bug).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, UniqueConstraint, false, func, text
from sqlalchemy.orm import Mapped, mapped_column

from edi_storage.models.base import Base, Timestamps, utcnow
from edi_storage.models.sessions import between, one_of
from edi_storage.vocabulary import CurationStatus, RunStatus


class TrainingRun(Base):
    """A LoRA training run (table ``training_sessions``)."""

    __tablename__ = "training_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    model_path: Mapped[str]
    config: Mapped[dict[str, Any] | None]
    dataset_size: Mapped[int | None]
    final_loss: Mapped[float | None]
    training_time_seconds: Mapped[float | None]
    metrics: Mapped[dict[str, Any] | None]
    started_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.current_timestamp())
    completed_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(
        default=RunStatus.RUNNING.value, server_default=RunStatus.RUNNING.value
    )
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.current_timestamp()
    )

    __table_args__ = (
        CheckConstraint(one_of("status", RunStatus), name="status"),
        CheckConstraint("dataset_size >= 0", name="dataset_size"),
        CheckConstraint("final_loss >= 0", name="final_loss"),
        CheckConstraint("training_time_seconds >= 0", name="training_time_seconds"),
        Index(None, "name"),
        Index(None, "status"),
        Index(None, "started_at"),
        {"sqlite_autoincrement": True},
    )


class CreationRun(Base):
    """A batch creation run (table ``creation_sessions``); its counts follow its images."""

    __tablename__ = "creation_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    theme: Mapped[str | None]
    images_created: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    images_kept: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    avg_score: Mapped[float | None]
    started_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.current_timestamp())
    completed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.current_timestamp()
    )

    __table_args__ = (
        CheckConstraint("images_created >= 0", name="images_created"),
        CheckConstraint("images_kept >= 0 AND images_kept <= images_created", name="images_kept"),
        CheckConstraint(between("avg_score", 0, 10), name="avg_score"),
        Index(None, "started_at"),
        Index(None, "theme"),
        {"sqlite_autoincrement": True},
    )


class GeneratedImage(Timestamps, Base):
    __tablename__ = "generated_images"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str]
    prompt: Mapped[str]
    negative_prompt: Mapped[str] = mapped_column(default="", server_default=text("''"))
    source_url: Mapped[str | None]
    source_query: Mapped[str | None]
    model_id: Mapped[str]
    generation_params: Mapped[dict[str, Any] | None]
    seed: Mapped[int | None]
    aesthetic_score: Mapped[float | None]
    clip_score: Mapped[float | None]
    technical_score: Mapped[float | None]
    final_score: Mapped[float | None]
    status: Mapped[str] = mapped_column(
        default=CurationStatus.PENDING.value, server_default=CurationStatus.PENDING.value
    )
    is_featured: Mapped[bool] = mapped_column(default=False, server_default=false())
    tags: Mapped[list[str] | None]
    creation_session_id: Mapped[int | None] = mapped_column(
        ForeignKey("creation_sessions.id", ondelete="SET NULL")
    )
    training_session_id: Mapped[int | None] = mapped_column(
        ForeignKey("training_sessions.id", ondelete="SET NULL")
    )

    __table_args__ = (
        UniqueConstraint("filename"),
        CheckConstraint(one_of("status", CurationStatus), name="status"),
        CheckConstraint(between("aesthetic_score", 0, 10), name="aesthetic_score"),
        CheckConstraint(between("clip_score", 0, 1), name="clip_score"),
        CheckConstraint(between("technical_score", 0, 1), name="technical_score"),
        CheckConstraint(between("final_score", 0, 10), name="final_score"),
        CheckConstraint("length(filename) > 0", name="filename"),
        # The reference's indexes (filename is covered by its unique constraint)...
        Index(None, "model_id"),
        Index(None, "created_at"),
        Index(None, "status"),
        Index(None, "final_score"),
        Index(None, "is_featured"),
        # ... its composite for "WHERE status = ? ORDER BY final_score DESC" (SQLite and PostgreSQL walk
        # an index backwards, so ascending serves both orders), and ours for the common queries:
        # curated by recency, pending oldest first, and the runs' images.
        Index(None, "status", "final_score"),
        Index(None, "status", "created_at"),
        Index(None, "creation_session_id"),
        Index(None, "training_session_id"),
        {"sqlite_autoincrement": True},
    )
