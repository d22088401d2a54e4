"""Typed errors: callers can tell "absent" from "broken" from "you sent something wrong".

Every message names what was wrong (the field and the value, the id, the command to run). Database errors
are wrapped with the original kept as ``__cause__``, never swallowed.
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class StorageError(Exception):
    """Base class of every error edi-storage raises on purpose."""


class NotFound(StorageError):
    """A record asked for by id does not exist."""

    def __init__(self, entity: str, key: object) -> None:
        self.entity = entity
        self.key = key
        super().__init__(f"{entity} {key!r} not found")


class Conflict(StorageError):
    """The write contradicts what is already stored (a uniqueness or reference rule)."""


class _Unknown:
    """The value of a field the database rejected: the driver's message does not carry it."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()

# The value in a message: cut short when long (a megabyte of text) or deep (JSON nested 5000 levels,
# which repr() itself cannot print), unchanged otherwise.
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 6, 200, 200, 60
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = _SHOWN.maxset = 20


@dataclass(frozen=True)
class FieldError:
    """One rejected field: where it is (``entities.0.confidence``), what was wrong, and the value given
    (``UNKNOWN`` when the database rejected it and did not say)."""

    field: str
    message: str
    value: Any

    @property
    def shown_value(self) -> str:
        """The value as messages show it: its repr, cut short when long or deep."""
        return _SHOWN.repr(self.value)

    def __str__(self) -> str:
        if self.value is UNKNOWN:
            return f"{self.field}: {self.message}"
        return f"{self.field}: {self.message} (got {self.shown_value})"


class InvalidInput(StorageError, ValueError):
    """Input rejected before anything was written; ``errors`` lists every offending field."""

    def __init__(self, errors: Sequence[FieldError], *, context: str | None = None) -> None:
        self.errors = list(errors)
        self.context = context
        lines = "; ".join(str(e) for e in self.errors)
        super().__init__(f"{context}: {lines}" if context else lines)

    @classmethod
    def single(cls, field: str, message: str, value: Any) -> InvalidInput:
        return cls([FieldError(field, message, value)])


class Busy(StorageError):
    """The database stayed locked by another writer for longer than the busy timeout."""


class ReadOnly(StorageError):
    """The database (or its directory) cannot be written."""


class StorageFull(StorageError):
    """The disk or the database's size limit is full; nothing of the failed write was kept."""


class DatabaseUnavailable(StorageError):
    """The database cannot be opened or reached (missing directory, not a database, server down)."""


class SchemaError(StorageError):
    """The database's schema is not one this release can work with as it is."""


class SchemaOutOfDate(SchemaError):
    """The database is behind the code; the message says which command brings it to head."""


class SchemaTooNew(SchemaError):
    """The database was migrated by a newer edi-storage; this release refuses to touch it."""


class SchemaUnrecognised(SchemaError):
    """The database holds tables that match neither edi-storage's history nor the reference shape."""


class MigrationFailed(SchemaError):
    """A migration failed and was rolled back; the message says where the pre-migration backup is."""
