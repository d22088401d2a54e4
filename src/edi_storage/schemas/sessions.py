"""Pydantic v2 schemas of the session area: what may come in, what goes out.

Input accepts the reference dict shape (``session_data`` of storage-database.md: ``bbox`` as a dict,
``user_feedback`` as one dict) plus the extended fields. Output ``.model_dump()`` gives the reference
shape back, with ids and timestamps added.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from edi_storage.schemas.common import (
    InputModel,
    JSONInput,
    JSONObject,
    Key,
    LongText,
    NonNegativeInt,
    OutputModel,
    Percent,
    RequiredLongText,
    RequiredText,
    Score,
    StoredAmount,
    Text,
    UTCDatetime,
)
from edi_storage.vocabulary import FeedbackType, OrderBy, SessionStatus

HexColour = Annotated[str, Field(pattern=r"^#[0-9A-Fa-f]{6}$")]
SessionId = Annotated[RequiredText, Field(max_length=255)]
BBox = dict[str, float]
BBoxIn = dict[Key, float]  # keys as text: no NUL, which PostgreSQL's JSON refuses


class PromptIn(InputModel):
    iteration: NonNegativeInt
    positive_prompt: RequiredLongText
    negative_prompt: LongText = ""
    quality_score: Score | None = None
    generation_time: StoredAmount | None = None
    model_confidence: Score | None = None
    prompt_metadata: JSONInput | None = None
    generation_parameters: JSONInput | None = None
    created_at: UTCDatetime | None = None


class EntityIn(InputModel):
    entity_id: RequiredText
    label: RequiredText
    confidence: Score
    bbox: BBoxIn | None = None
    mask_path: Text | None = None
    color_hex: HexColour | None = None
    area_percent: Percent | None = None
    embedding_vector: list[float] | None = None
    semantic_label: Text | None = None
    entity_metadata: JSONInput | None = None
    quality_score: Score | None = None


class ValidationIn(InputModel):
    attempt_number: NonNegativeInt
    alignment_score: Score | None = None
    preserved_count: NonNegativeInt | None = None
    modified_count: NonNegativeInt | None = None
    unintended_count: NonNegativeInt | None = None
    user_feedback: Text | None = None
    processing_details: JSONInput | None = None
    quality_metrics: JSONInput | None = None
    validation_metadata: JSONInput | None = None
    user_ratings: JSONInput | None = None
    created_at: UTCDatetime | None = None


class FeedbackIn(InputModel):
    feedback_type: FeedbackType
    comments: Text | None = None
    rating: Annotated[int, Field(ge=1, le=5)] | None = None
    feedback_metadata: JSONInput | None = None
    created_at: UTCDatetime | None = None


class SessionCreate(InputModel):
    """A whole session graph. Without ``id`` a new UUID4 is assigned; with an existing id the stored
    session's fields and children are replaced.

    Feedback comes either as ``user_feedback`` (one dict, the reference shape) or as ``feedback`` (every
    feedback row, oldest first, as ``SessionDetail.feedback`` returns it), not both.
    """

    # "Not both", as the OpenAPI document states it.
    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "required": ["user_feedback", "feedback"],
                "properties": {"user_feedback": {"type": "object"}, "feedback": {"minItems": 1}},
            }
        }
    )

    id: SessionId | None = None
    image_path: RequiredText
    naive_prompt: RequiredLongText
    status: SessionStatus = SessionStatus.IN_PROGRESS
    final_alignment_score: Score | None = None
    processing_time: StoredAmount | None = None
    model_version: Text | None = None
    session_tags: list[Text] | None = None
    session_metadata: JSONInput | None = None
    user_id: Text | None = None
    project_id: Text | None = None
    created_at: UTCDatetime | None = None
    prompts: list[PromptIn] = []
    entities: list[EntityIn] = []
    validations: list[ValidationIn] = []
    user_feedback: FeedbackIn | None = None
    feedback: list[FeedbackIn] = []

    @model_validator(mode="after")
    def _one_way_of_giving_feedback(self) -> SessionCreate:
        if self.user_feedback is not None and self.feedback:
            raise ValueError("give either user_feedback or feedback, not both")
        return self

    def all_feedback(self) -> list[FeedbackIn]:
        return [self.user_feedback] if self.user_feedback is not None else list(self.feedback)


class PromptOut(OutputModel):
    id: int
    iteration: int
    positive_prompt: str
    negative_prompt: str
    quality_score: float | None
    generation_time: float | None
    model_confidence: float | None
    prompt_metadata: JSONObject | None
    generation_parameters: JSONObject | None
    created_at: UTCDatetime
    updated_at: UTCDatetime


class EntityOut(OutputModel):
    id: int
    entity_id: str
    label: str
    confidence: float
    bbox: BBox | None
    mask_path: str | None
    color_hex: str | None
    area_percent: float | None
    embedding_vector: list[float] | None
    semantic_label: str | None
    entity_metadata: JSONObject | None
    quality_score: float | None


class ValidationOut(OutputModel):
    id: int
    attempt_number: int
    alignment_score: float | None
    preserved_count: int | None
    modified_count: int | None
    unintended_count: int | None
    user_feedback: str | None
    processing_details: JSONObject | None
    quality_metrics: JSONObject | None
    validation_metadata: JSONObject | None
    user_ratings: JSONObject | None
    created_at: UTCDatetime


class FeedbackOut(OutputModel):
    id: int
    feedback_type: FeedbackType
    comments: str | None
    rating: int | None
    feedback_metadata: JSONObject | None
    created_at: UTCDatetime
    updated_at: UTCDatetime


class SessionSummary(OutputModel):
    """One row of history: the session without its children."""

    id: str
    created_at: UTCDatetime
    updated_at: UTCDatetime
    image_path: str
    naive_prompt: str
    status: SessionStatus
    final_alignment_score: float | None
    user_id: str | None
    project_id: str | None


class SessionDetail(SessionSummary):
    """The whole graph. ``user_feedback`` is the latest feedback (the reference shape); ``feedback`` all."""

    processing_time: float | None
    model_version: str | None
    session_tags: list[str] | None
    session_metadata: JSONObject | None
    prompts: list[PromptOut]
    entities: list[EntityOut]
    validations: list[ValidationOut]
    feedback: list[FeedbackOut]
    user_feedback: FeedbackOut | None

    def as_create(self) -> SessionCreate:
        """The input that would store this graph again (ids of children and updated_at are the database's)."""
        data = self.model_dump(exclude={"updated_at", "user_feedback"})
        for key in ("prompts", "entities", "validations", "feedback"):
            for child in data[key]:
                child.pop("id", None)
                child.pop("updated_at", None)
        return SessionCreate.model_validate(data)


class SessionStatistics(OutputModel):
    """The reference's statistics: counts, rates and averages over every session.

    ``last_updated`` is when a session last changed (its newest ``updated_at``; None without sessions),
    not when the statistics were computed, as the reference's is: that is the clock, and this says
    whether anything happened since."""

    total_sessions: int
    status_breakdown: dict[str, int]
    average_alignment_score: float | None  # of completed sessions with a score; None when there are none
    successful_rate: float  # percent of sessions completed, one decimal
    average_processing_time: float | None  # seconds, of the sessions that record one
    recent_sessions_7_days: int  # created in the last 7 days
    last_updated: UTCDatetime | None
    table_counts: dict[str, int]  # rows of sessions, prompts, entities, validations, user_feedback


class HistoryQuery(InputModel):
    """The filters of ``query_history``; they combine with AND."""

    limit: Annotated[int, Field(ge=1, le=10_000)] = 50
    offset: NonNegativeInt = 0
    status_filter: SessionStatus | None = None
    date_from: UTCDatetime | None = None
    date_to: UTCDatetime | None = None
    min_score: Score | None = None
    search_term: Annotated[Text, Field(max_length=1000)] | None = None  # SQLite's LIKE refuses ~50 kB
    user_id: Text | None = None
    project_id: Text | None = None
    order_by: OrderBy = OrderBy.CREATED_DESC

    @model_validator(mode="before")
    @classmethod
    def _normalise_order_by(cls, data: object) -> object:
        # "created_at DESC", "Created_At  desc": the reference's spelling and its variants are accepted.
        if isinstance(data, dict) and isinstance(data.get("order_by"), str):
            data = {**data, "order_by": " ".join(data["order_by"].lower().split())}
        return data
