"""``/api/analytics``: the history read back for learning, one service call each."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from edi_storage.api.errors import StorageRoute, responses
from edi_storage.api.sessions import IsoDatetime
from edi_storage.schemas.analytics import FeedbackSummary, LabelEdits, LabelQuery, TrendPoint, TrendQuery
from edi_storage.storage import Storage


class TrendParams(TrendQuery):
    """``TrendQuery`` as query parameters: its dates as ISO 8601 only."""

    date_from: IsoDatetime | None = None
    date_to: IsoDatetime | None = None


def router(storage: Storage) -> APIRouter:
    api = APIRouter(prefix="/api/analytics", tags=["analytics"], route_class=StorageRoute)

    @api.get("/feedback", response_model=FeedbackSummary, responses=responses())
    def feedback() -> FeedbackSummary:
        """Accept, reject and partial counts and rates, and the distribution of ratings."""
        return storage.analytics.feedback()

    @api.get("/labels", response_model=list[LabelEdits], responses=responses(422))
    def labels(query: Annotated[LabelQuery, Query()]) -> list[LabelEdits]:
        """The entity labels found most often, with the validation scores of their sessions."""
        return storage.analytics.labels(limit=query.limit)

    @api.get("/trend", response_model=list[TrendPoint], responses=responses(422))
    def trend(query: Annotated[TrendParams, Query()]) -> list[TrendPoint]:
        """Sessions, completions, alignment and prompt quality per UTC day or ISO week, oldest first."""
        return storage.analytics.trend(
            query.period, by_model=query.by_model, date_from=query.date_from, date_to=query.date_to
        )

    return api
