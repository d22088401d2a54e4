"""Database errors become typed edi-storage errors, with the driver's error kept as ``__cause__``.

One context manager wraps every unit of work, so no service has to remember to do it. The driver
messages are matched on SQLite's and PostgreSQL's documented texts and SQLSTATE codes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from edi_storage.errors import (
    UNKNOWN,
    Busy,
    Conflict,
    DatabaseUnavailable,
    FieldError,
    InvalidInput,
    ReadOnly,
    StorageError,
    StorageFull,
)

_CHECK = re.compile(r'(?:CHECK constraint failed: |violates check constraint ")(ck_\w+)"?')
_NOT_NULL = re.compile(
    r'NOT NULL constraint failed: (\w+)\.(\w+)|null value in column "(\w+)" of relation "(\w+)"'
)


def _check_field(constraint: str) -> str:
    """``ck_user_feedback_rating`` -> ``user_feedback.rating``: split at the table the constraint is on,
    found among the models' tables (table names hold underscores, so no regex can tell)."""
    from edi_storage.models import Base

    for table in sorted(Base.metadata.tables, key=len, reverse=True):
        prefix = f"ck_{table}_"
        if constraint.startswith(prefix):
            return f"{table}.{constraint.removeprefix(prefix)}"
    return constraint


def _pg_code(error: sa_exc.DBAPIError) -> str | None:
    return getattr(error.orig, "sqlstate", None)


def translate(error: sa_exc.DBAPIError) -> StorageError:
    message = str(error.orig)
    lowered = message.lower()
    code = _pg_code(error)
    if isinstance(error, sa_exc.IntegrityError):
        if match := _CHECK.search(message):
            field = _check_field(match.group(1))
            reason = f"violates the database constraint {match.group(1)}"
            return InvalidInput([FieldError(field, reason, UNKNOWN)])
        if match := _NOT_NULL.search(message):
            table, column = (
                (match.group(1), match.group(2)) if match.group(1) else (match.group(4), match.group(3))
            )
            return InvalidInput([FieldError(f"{table}.{column}", "is required", UNKNOWN)])
        return Conflict(f"the write conflicts with stored data: {message}")
    if "locked" in lowered or "busy" in lowered or code in {"55P03", "40P01"}:
        return Busy(f"the database stayed locked past the busy timeout: {message}")
    if "disk is full" in lowered or "database or disk is full" in lowered or code == "53100":
        return StorageFull(f"no space left for the write, nothing of it was kept: {message}")
    if "readonly" in lowered or "read-only" in lowered or code == "25006":
        return ReadOnly(f"the database cannot be written: {message}")
    if any(s in lowered for s in ("not a database", "unable to open", "malformed", "connection")):
        return DatabaseUnavailable(f"the database cannot be used: {message}")
    return StorageError(f"database error: {message}")


@contextmanager
def database_errors() -> Iterator[None]:
    try:
        yield
    except sa_exc.DBAPIError as error:
        raise translate(error) from error
