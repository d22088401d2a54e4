"""The five tables of an editing session: the session itself and its prompts, entities, validations
and user feedback.

Table and column names are the reference schema's (``storage-layer.md`` 5.1 plus the extended columns),
so that databases written by the reference implementation can be adopted in place. The database itself
enforces what the reference only hoped for: CHECK constraints on every enumerated or bounded value and
``ON DELETE CASCADE`` foreign keys, so that a raw SQL writer cannot leave orphans or out-of-range scores.

Relationships are ``lazy="raise_on_sql"``: touching an unloaded collection raises instead of quietly
issuing one query per row, so an N+1 shows up as an error in tests rather than as a slow page.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, text
from sqlalchemy.orm import Mapped, Relationship, mapped_column, relationship

from edi_storage.models.base import Base, CreatedAt, Timestamps
from edi_storage.vocabulary import FeedbackType, SessionStatus


def one_of(column: str, values: type[StrEnum]) -> str:
    """SQL for ``column IN (...)`` over an enum's values, so the CHECK and the Python enum never drift."""
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


def between(column: str, low: float, high: float) -> str:
    return f"{column} BETWEEN {low} AND {high}"


# '#RRGGBB' in SQL that SQLite and PostgreSQL both understand (no GLOB, no regex operator): seven
# characters, a leading '#', and nothing left after trimming hexadecimal digits from the rest.
HEX_COLOUR_SQL = (
    "length(color_hex) = 7 AND substr(color_hex, 1, 1) = '#' "
    "AND ltrim(lower(substr(color_hex, 2)), '0123456789abcdef') = ''"
)


def session_fk() -> Any:
    return ForeignKey("sessions.id", ondelete="CASCADE")


def children(order_by: str) -> Relationship[Any]:
    """A session's child collection: deleted with it (by the database's cascade: passive_deletes), and
    never lazy-loaded behind the caller's back."""
    return relationship(
        back_populates="session",
        order_by=order_by,
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise_on_sql",
    )


class EditSession(Timestamps, Base):
    """One editing session (table ``sessions``); named so that it never reads as an SQLAlchemy Session."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(primary_key=True)
    image_path: Mapped[str]
    naive_prompt: Mapped[str]
    status: Mapped[str] = mapped_column(
        default=SessionStatus.IN_PROGRESS.value, server_default=SessionStatus.IN_PROGRESS.value
    )
    final_alignment_score: Mapped[float | None]
    processing_time: Mapped[float | None]
    model_version: Mapped[str | None]
    session_tags: Mapped[list[str] | None]
    session_metadata: Mapped[dict[str, Any] | None]
    user_id: Mapped[str | None]
    project_id: Mapped[str | None]

    prompts: Mapped[list[Prompt]] = children("(Prompt.iteration, Prompt.id)")
    entities: Mapped[list[Entity]] = children("Entity.id")
    validations: Mapped[list[Validation]] = children("(Validation.attempt_number, Validation.id)")
    feedback: Mapped[list[UserFeedback]] = children("(UserFeedback.created_at, UserFeedback.id)")

    __table_args__ = (
        CheckConstraint(one_of("status", SessionStatus), name="status"),
        CheckConstraint(between("final_alignment_score", 0, 1), name="final_alignment_score"),
        CheckConstraint("processing_time >= 0", name="processing_time"),
        CheckConstraint("length(id) > 0", name="id_not_empty"),
        # Every history ordering ends in its tie-breaker ``id``, and so does its index: a page is read
        # in index order and stops after ``limit`` rows, however many sessions share a timestamp.
        # Creation order, alone and under the status filter:
        Index(None, "created_at", "id"),
        Index(None, "status", "created_at", "id"),
        # Score order (and min_score), alone and under the status filter (get_successful_sessions).
        Index(None, "final_alignment_score", "id"),
        Index(None, "status", "final_alignment_score", "id"),
        # One user's or one project's sessions, in either order (the reference's idx_sessions_user and
        # idx_sessions_project, extended by the ordering and its tie-breaker for the same reason).
        Index(None, "user_id", "created_at", "id"),
        Index(None, "user_id", "final_alignment_score", "id"),
        Index(None, "project_id", "created_at", "id"),
        Index(None, "project_id", "final_alignment_score", "id"),
    )


class Prompt(Timestamps, Base):
    """One refinement iteration of a session's prompt."""

    __tablename__ = "prompts"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(session_fk())
    iteration: Mapped[int]
    positive_prompt: Mapped[str]
    negative_prompt: Mapped[str] = mapped_column(default="", server_default=text("''"))
    quality_score: Mapped[float | None]
    generation_time: Mapped[float | None]
    model_confidence: Mapped[float | None]
    prompt_metadata: Mapped[dict[str, Any] | None]
    generation_parameters: Mapped[dict[str, Any] | None]

    session: Mapped[EditSession] = relationship(back_populates="prompts", lazy="raise_on_sql")

    __table_args__ = (
        CheckConstraint("iteration >= 0", name="iteration"),
        CheckConstraint(between("quality_score", 0, 1), name="quality_score"),
        CheckConstraint("generation_time >= 0", name="generation_time"),
        CheckConstraint(between("model_confidence", 0, 1), name="model_confidence"),
        Index(None, "session_id", "iteration"),
        {"sqlite_autoincrement": True},
    )


class Entity(Base):
    """An object detected in the session's image (``sky_0``), with its box, mask, colour and area."""

    __tablename__ = "entities"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(session_fk())
    entity_id: Mapped[str]
    label: Mapped[str]
    confidence: Mapped[float]
    # The reference column name is kept; the value is real JSON ({"x1": .., "y1": .., ...}).
    bbox: Mapped[dict[str, Any] | None] = mapped_column("bbox_json")
    mask_path: Mapped[str | None]
    color_hex: Mapped[str | None]
    area_percent: Mapped[float | None]
    embedding_vector: Mapped[list[float] | None]
    semantic_label: Mapped[str | None]
    entity_metadata: Mapped[dict[str, Any] | None]
    quality_score: Mapped[float | None]

    session: Mapped[EditSession] = relationship(back_populates="entities", lazy="raise_on_sql")

    __table_args__ = (
        CheckConstraint(between("confidence", 0, 1), name="confidence"),
        CheckConstraint(between("area_percent", 0, 100), name="area_percent"),
        CheckConstraint(between("quality_score", 0, 1), name="quality_score"),
        CheckConstraint(HEX_COLOUR_SQL, name="color_hex"),
        Index(None, "session_id"),
        {"sqlite_autoincrement": True},
    )


class Validation(CreatedAt, Base):
    """The assessment of one edit attempt: how well it matched the intent and what it changed."""

    __tablename__ = "validations"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(session_fk())
    attempt_number: Mapped[int]
    alignment_score: Mapped[float | None]
    preserved_count: Mapped[int | None]
    modified_count: Mapped[int | None]
    unintended_count: Mapped[int | None]
    user_feedback: Mapped[str | None]
    processing_details: Mapped[dict[str, Any] | None]
    quality_metrics: Mapped[dict[str, Any] | None]
    validation_metadata: Mapped[dict[str, Any] | None]
    user_ratings: Mapped[dict[str, Any] | None]

    session: Mapped[EditSession] = relationship(back_populates="validations", lazy="raise_on_sql")

    __table_args__ = (
        CheckConstraint("attempt_number >= 0", name="attempt_number"),
        CheckConstraint(between("alignment_score", 0, 1), name="alignment_score"),
        CheckConstraint("preserved_count >= 0", name="preserved_count"),
        CheckConstraint("modified_count >= 0", name="modified_count"),
        CheckConstraint("unintended_count >= 0", name="unintended_count"),
        Index(None, "session_id", "attempt_number"),
        {"sqlite_autoincrement": True},
    )


class UserFeedback(Timestamps, Base):
    """What the user thought of the result: accept, reject or partial, with an optional 1-5 rating."""

    __tablename__ = "user_feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(session_fk())
    feedback_type: Mapped[str]
    comments: Mapped[str | None]
    rating: Mapped[int | None]
    feedback_metadata: Mapped[dict[str, Any] | None]

    session: Mapped[EditSession] = relationship(back_populates="feedback", lazy="raise_on_sql")

    __table_args__ = (
        CheckConstraint(one_of("feedback_type", FeedbackType), name="feedback_type"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating"),
        Index(None, "session_id", "created_at"),
        {"sqlite_autoincrement": True},
    )


SESSION_CHILDREN: tuple[type[Prompt | Entity | Validation | UserFeedback], ...] = (
    Prompt,
    Entity,
    Validation,
    UserFeedback,
)
