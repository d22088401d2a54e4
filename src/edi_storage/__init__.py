"""edi-storage: the storage layer of AI image-editing tools.

from edi_storage import Storage
storage = Storage()                       # ./edi_sessions.db, created at the newest schema
session_id = storage.sessions.save_session({...})
with storage.unit_of_work() as uow:       # several calls, one transaction
    uow.sessions.record_feedback(session_id, {"feedback_type": "accept", "rating": 5})
"""

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
from edi_storage.models import FeedbackType, SessionStatus
from edi_storage.schemas import (
    EntityIn,
    FeedbackIn,
    HistoryQuery,
    OrderBy,
    PromptIn,
    SessionCreate,
    SessionDetail,
    SessionStatistics,
    SessionSummary,
    ValidationIn,
)
from edi_storage.services.sessions import SessionService
from edi_storage.storage import Storage, UnitOfWork

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
