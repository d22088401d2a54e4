"""The fixed vocabularies of the data: statuses, feedback types, audit operations, history orderings.

They live in a module that imports nothing, so that the command line can offer them as choices (and
answer ``--help``) without importing SQLAlchemy or Pydantic. The models build their CHECK constraints
from them and the schemas validate with them; both re-export them where users already import them
(``edi_storage.models``, ``edi_storage.schemas``, ``edi_storage``).
"""

from __future__ import annotations

from enum import StrEnum


class SessionStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"


class FeedbackType(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    PARTIAL = "partial"


class CurationStatus(StrEnum):
    PENDING = "pending"
    CURATED = "curated"
    REJECTED = "rejected"


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class AuditOperation(StrEnum):
    INSERT = "INSERT"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


class OrderBy(StrEnum):
    CREATED_DESC = "created_at desc"
    CREATED_ASC = "created_at asc"
    SCORE_DESC = "final_alignment_score desc"
    SCORE_ASC = "final_alignment_score asc"


class ChildKind(StrEnum):
    """The rows under a session that can be corrected one at a time (update_child, delete_child)."""

    PROMPT = "prompt"
    ENTITY = "entity"
    VALIDATION = "validation"
    FEEDBACK = "feedback"


class Period(StrEnum):
    """How a trend groups sessions: by UTC day, or by ISO week (starting on Monday)."""

    DAY = "day"
    WEEK = "week"
