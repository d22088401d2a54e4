"""What ``storage.analytics`` returns: the history read back for learning (storage-models.md's indexes on
feedback type and rating, entity label, validation score exist for these)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

from edi_storage.schemas.common import InputModel, OutputModel, UTCDatetime
from edi_storage.vocabulary import Period


class FeedbackSummary(OutputModel):
    total: int
    per_type: dict[str, int]  # accept, reject, partial: every type, 0 when none
    rates: dict[str, float]  # percent of all feedback, one decimal
    ratings: dict[int, int]  # 1..5: how many gave each rating (unrated feedback is left out)
    average_rating: float | None


class LabelEdits(OutputModel):
    """How often entities of one label were found in sessions, and how well those sessions validated."""

    label: str
    entities: int
    sessions: int
    average_confidence: float | None
    average_alignment: float | None  # the validations' alignment scores of the sessions with this label
    validations: int


class TrendPoint(OutputModel):
    period: date  # the UTC day, or the Monday that starts the UTC week
    model_version: str | None  # None: all models together (by_model=False), or sessions without one
    sessions: int
    completed: int
    average_alignment: float | None  # final alignment score of the period's sessions that have one
    average_quality: float | None  # quality score of their prompts


class TrendQuery(InputModel):
    period: Period = Period.DAY
    by_model: bool = False
    date_from: UTCDatetime | None = None
    date_to: UTCDatetime | None = None


class LabelQuery(InputModel):
    limit: Annotated[int, Field(ge=1, le=1000)] = 20
