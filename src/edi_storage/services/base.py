"""What every service shares: where its transaction comes from."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from edi_storage.monitoring import Measured, QueryRecorder

if TYPE_CHECKING:
    from edi_storage.storage import Storage


class Service(Measured):
    """Bound either to a ``Storage`` (each call is a transaction of its own) or to the SQLAlchemy session
    of a unit of work (every call joins that transaction, which commits or rolls back as a whole)."""

    def __init__(
        self,
        *,
        storage: Storage | None = None,
        session: Session | None = None,
        recorder: QueryRecorder | None = None,
    ) -> None:
        if (storage is None) == (session is None):
            raise TypeError(f"{type(self).__name__} needs exactly one of storage or session")
        self._storage = storage
        self._session = session
        self.recorder = storage.recorder if storage is not None else recorder

    @contextmanager
    def _tx(self, *, readonly: bool = False) -> Iterator[Session]:
        if self._session is not None:
            yield self._session
            return
        assert self._storage is not None
        with self._storage.unit_of_work(readonly=readonly) as uow:
            yield uow.session
