"""edi-storage: the storage layer of AI image-editing tools.

from edi_storage import Storage
storage = Storage()                       # ./edi_sessions.db, created at the newest schema
session_id = storage.sessions.save_session({...})
with storage.unit_of_work() as uow:       # several calls, one transaction
    uow.sessions.record_feedback(session_id, {"feedback_type": "accept", "rating": 5})
"""

import importlib
from typing import TYPE_CHECKING, Any

from edi_storage.errors import (
    Busy,
    Conflict,
    DatabaseUnavailable,
    FieldError,
    InvalidInput,
    MigrationFailed,
    NotFound,
    ReadOnly,
    SchemaError,
    SchemaOutOfDate,
    SchemaTooNew,
    SchemaUnrecognised,
    StorageError,
    StorageFull,
)
from edi_storage.vocabulary import FeedbackType, OrderBy, SessionStatus

if TYPE_CHECKING:
    from edi_storage.schemas import (
        EntityIn,
        FeedbackIn,
        HistoryQuery,
        PromptIn,
        SessionCreate,
        SessionDetail,
        SessionStatistics,
        SessionSummary,
        ValidationIn,
    )
    from edi_storage.services.sessions import SessionService
    from edi_storage.storage import Storage, UnitOfWork

# Imported on first use (PEP 562), so that importing a light module of the package (the command line's
# ``--help``, the errors, the vocabularies) does not import SQLAlchemy, Pydantic and every model.
_LAZY = {
    **dict.fromkeys(
        [
            "EntityIn",
            "FeedbackIn",
            "HistoryQuery",
            "PromptIn",
            "SessionCreate",
            "SessionDetail",
            "SessionStatistics",
            "SessionSummary",
            "ValidationIn",
        ],
        "edi_storage.schemas",
    ),
    "SessionService": "edi_storage.services.sessions",
    "Storage": "edi_storage.storage",
    "UnitOfWork": "edi_storage.storage",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # once imported, an ordinary attribute
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__version__ = "0.1.0"

__all__ = [
    "Busy",
    "Conflict",
    "DatabaseUnavailable",
    "EntityIn",
    "FeedbackIn",
    "FeedbackType",
    "FieldError",
    "HistoryQuery",
    "InvalidInput",
    "MigrationFailed",
    "NotFound",
    "OrderBy",
    "PromptIn",
    "ReadOnly",
    "SchemaError",
    "SchemaOutOfDate",
    "SchemaTooNew",
    "SchemaUnrecognised",
    "SessionCreate",
    "SessionDetail",
    "SessionService",
    "SessionStatistics",
    "SessionStatus",
    "SessionSummary",
    "Storage",
    "StorageError",
    "StorageFull",
    "UnitOfWork",
    "ValidationIn",
    "__version__",
]
