"""Opt-in recording of how long the services' queries take (``query_performance``).

Off by default, and then nothing is installed: no engine listener, no buffer, one ``is None`` check per
service call. On (``Storage(record_query_performance=True)`` or ``EDI_STORAGE_RECORD_QUERY_PERFORMANCE=1``),
SQLAlchemy's ``before/after_cursor_execute`` events time every statement a measured service call
issues; the call's total SQL time and the rows it returned become one record. Records are buffered and
written in batches by a transaction of their own (never inside the caller's, so a read never takes the
write lock for them): when a unit of work ends with the buffer full, when metrics are read, and at
``Storage.close()``. Rows older
than the retention period are pruned while flushing. A crash loses at most one unflushed batch of metrics.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Engine, delete, event, insert

from edi_storage.engine import WRITE_INTENT
from edi_storage.models.base import table_of, utcnow
from edi_storage.models.monitoring import QueryPerformance

P = ParamSpec("P")
R = TypeVar("R")
PRUNE_EVERY = timedelta(hours=1)
log = logging.getLogger(__name__)


@dataclass
class _Measurement:
    seconds: float = 0.0
    started: list[float] = field(default_factory=list)


_active: ContextVar[_Measurement | None] = ContextVar("edi_storage_measurement", default=None)


class QueryRecorder:
    def __init__(
        self,
        engine: Engine,
        *,
        retention_days: int = 30,
        flush_every: int = 200,
        slow_query_ms: float | None = None,
    ) -> None:
        self.engine = engine
        self.slow_query_ms = slow_query_ms
        self.retention = timedelta(days=retention_days)
        self.flush_every = flush_every
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._last_prune: datetime | None = None
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *_: object) -> None:
        if (m := _active.get()) is not None:
            m.started.append(time.perf_counter())

    def _after(self, *_: object) -> None:
        if (m := _active.get()) is not None and m.started:
            m.seconds += time.perf_counter() - m.started.pop()

    def measure(self, query_type: str, call: Callable[[], R]) -> R:
        """Run ``call`` and record its SQL time and result size; a nested measured call is part of its
        caller's record, not one of its own."""
        if _active.get() is not None:
            return call()
        measurement = _Measurement()
        token = _active.set(measurement)
        try:
            result = call()
        finally:
            _active.reset(token)
        self.record(query_type, measurement.seconds, rows_in(result))
        return result

    def record(self, query_type: str, seconds: float, rows: int) -> None:
        """Buffer one record. Never writes: the caller may be inside a unit of work whose write lock a
        flush would wait for; ``flush_if_full`` runs once a unit of work has ended. A call slower than
        ``slow_query_ms`` is also logged, at WARNING, by its query type alone (never its parameters)."""
        if self.slow_query_ms is not None and seconds * 1000 >= self.slow_query_ms:
            log.warning("slow %s: %.1f ms of SQL, %d rows", query_type, seconds * 1000, rows)
        with self._lock:
            self._buffer.append(
                {
                    "query_type": query_type,
                    "execution_time": seconds,
                    "rows_returned": rows,
                    "timestamp": utcnow(),
                }
            )

    def flush_if_full(self) -> None:
        if len(self._buffer) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._buffer = self._buffer, []
        now = utcnow()
        prune = self._last_prune is None or now - self._last_prune > PRUNE_EVERY
        if not pending and not prune:
            return
        table = table_of(QueryPerformance)
        with self.engine.execution_options(**{WRITE_INTENT: True}).begin() as connection:
            if pending:
                connection.execute(insert(table), pending)
            if prune:
                connection.execute(delete(table).where(table.c.timestamp < now - self.retention))
        if prune:
            self._last_prune = now

    def close(self) -> None:
        self.flush()
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)


def rows_in(result: object) -> int:
    if result is None:
        return 0
    if isinstance(result, list | tuple):
        return len(result)
    return 1


class Measured:
    """What a service needs to be measured: ``recorder`` is None when recording is off."""

    recorder: QueryRecorder | None = None


S = TypeVar("S", bound=Measured)


def measured(query_type: str) -> Callable[[Callable[Concatenate[S, P], R]], Callable[Concatenate[S, P], R]]:
    """Record a service method's calls as ``query_type`` when its service has a recorder."""

    def decorate(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
        @functools.wraps(method)
        def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            if self.recorder is None:
                return method(self, *args, **kwargs)
            return self.recorder.measure(query_type, lambda: method(self, *args, **kwargs))

        return wrapper

    return decorate
