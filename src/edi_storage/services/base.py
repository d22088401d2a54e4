"""What every service shares: the session scope its statements run in."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from sqlalchemy.orm import Session

from edi_storage.monitoring import Measured, QueryRecorder


class SessionScope(Protocol):
    """Where a service call's SQLAlchemy ``Session`` comes from.

    ``Storage`` gives each call a unit of work of its own (a transaction that commits when the call
    returns); a ``UnitOfWork`` gives every call its one session, with pending ORM changes flushed first,
    so that a service and the application's own ORM code always see the same rows.
    """

    def __call__(self, *, readonly: bool = False) -> AbstractContextManager[Session]: ...


class Service(Measured):
    """A set of operations over one session scope; every statement goes through its ``Session``."""

    def __init__(self, scope: SessionScope, recorder: QueryRecorder | None = None) -> None:
        self._tx = scope
        self.recorder = recorder
