"""Pydantic v2 schemas: the only way data enters a service, and the shape it leaves in."""

from edi_storage.schemas.sessions import (
    EntityIn,
    EntityOut,
    FeedbackIn,
    FeedbackOut,
    HistoryQuery,
    PromptIn,
    PromptOut,
    SessionCreate,
    SessionDetail,
    SessionStatistics,
    SessionSummary,
    ValidationIn,
    ValidationOut,
)
from edi_storage.vocabulary import OrderBy

__all__ = [
    "EntityIn",
    "EntityOut",
    "FeedbackIn",
    "FeedbackOut",
    "HistoryQuery",
    "OrderBy",
    "PromptIn",
    "PromptOut",
    "SessionCreate",
    "SessionDetail",
    "SessionStatistics",
    "SessionSummary",
    "ValidationIn",
    "ValidationOut",
]
