"""Declarative ORM models, one module per area; importing this package registers every table."""

from edi_storage.models.audit import AUDITED_TABLES, AuditEntry
from edi_storage.models.base import NAMING_CONVENTION, Base, UTCDateTime, utcnow
from edi_storage.models.gallery import CreationRun, GeneratedImage, TrainingRun
from edi_storage.models.library import LibraryPrompt, normalise_prompt, prompt_hash
from edi_storage.models.monitoring import QueryPerformance
from edi_storage.models.sessions import (
    SESSION_CHILDREN,
    EditSession,
    Entity,
    Prompt,
    UserFeedback,
    Validation,
)
from edi_storage.vocabulary import AuditOperation, CurationStatus, FeedbackType, RunStatus, SessionStatus

__all__ = [
    "AUDITED_TABLES",
    "NAMING_CONVENTION",
    "SESSION_CHILDREN",
    "AuditEntry",
    "AuditOperation",
    "Base",
    "CreationRun",
    "CurationStatus",
    "EditSession",
    "Entity",
    "FeedbackType",
    "GeneratedImage",
    "LibraryPrompt",
    "Prompt",
    "QueryPerformance",
    "RunStatus",
    "SessionStatus",
    "TrainingRun",
    "UTCDateTime",
    "UserFeedback",
    "Validation",
    "normalise_prompt",
    "prompt_hash",
    "utcnow",
]
