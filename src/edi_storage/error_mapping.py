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
    if "error binding parameter" in lowered or "cannot adapt type" in lowered:  # sqlite3, psycopg
        return InvalidInput(
            [FieldError("input", f"holds a value the database cannot store: {message}", UNKNOWN)]
        )
    if "cannot contain nul" in lowered:  # psycopg, for text parameters PostgreSQL cannot hold
        return InvalidInput([FieldError("input", "must not contain NUL characters", UNKNOWN)])
    if code is not None and code.startswith("22") and code != "22012":  # a data exception: the value
        return InvalidInput([FieldError("input", f"holds a value the database refuses: {message}", UNKNOWN)])
    if isinstance(error, sa_exc.IntegrityError):
        if "datatype mismatch" in lowered:  # SQLite: text where an INTEGER PRIMARY KEY goes
            return InvalidInput(
                [FieldError("input", "holds a value of the wrong type for its column", UNKNOWN)]
            )
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
    except sa_exc.StatementError as error:
        # A column type could not convert a parameter (a dict for a boolean, a list for a time): the
        # caller's value, refused before the statement reached the database.
        if not isinstance(error.orig, TypeError | ValueError | AttributeError | OverflowError):
            raise
        reason = f"holds a value its column cannot take ({error.orig})"
        raise InvalidInput([FieldError("input", reason, UNKNOWN)]) from error
    except (OverflowError, UnicodeEncodeError) as error:
        # Raised by the driver while binding: an integer past 64 bits (sqlite3 does not wrap it), text
        # with a lone surrogate (no driver can encode it). Neither says which parameter it was.
        if isinstance(error, OverflowError) and "SQLite INTEGER" not in str(error):
            raise
        reason = (
            "holds a whole number too large for the database (more than 64 bits)"
            if isinstance(error, OverflowError)
            else "holds text that is not valid Unicode (a lone surrogate)"
        )
        raise InvalidInput([FieldError("input", reason, UNKNOWN)]) from error
