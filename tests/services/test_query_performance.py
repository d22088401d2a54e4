"""The opt-in query-performance log: off costs nothing and records nothing; on records every measured
service call once, with its SQL time and rows, and old rows are pruned."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from edi_storage import InvalidInput, Storage
from edi_storage.models import QueryPerformance
from edi_storage.models.base import table_of, utcnow
from edi_storage.testing import SessionCreateFactory


@pytest.fixture
def recording(storage_factory: Callable[..., Storage]) -> Storage:
    return storage_factory(record_query_performance=True)


def logged(storage: Storage) -> int:
    with storage.unit_of_work(readonly=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(QueryPerformance)) or 0


def test_off_by_default_installs_nothing_and_records_nothing(storage: Storage) -> None:
    assert storage.recorder is None
    assert list(storage.engine.dispatch.after_cursor_execute) == [], "no timing hook on the engine"
    storage.sessions.save_session(SessionCreateFactory.build())
    storage.sessions.query_history()
    assert logged(storage) == 0
    assert storage.maintenance.performance_metrics() == []


def test_on_records_each_call_once_with_time_and_rows(recording: Storage) -> None:
    assert list(recording.engine.dispatch.after_cursor_execute) != []
    ids = recording.sessions.batch_save_sessions([SessionCreateFactory.build() for _ in range(7)])
    for session_id in ids[:3]:
        recording.sessions.load_session(session_id)
    recording.sessions.query_history(limit=5)
    recording.sessions.get_successful_sessions(min_score=0)  # calls query_history inside: one record
    metrics = {m.query_type: m for m in recording.maintenance.performance_metrics(hours=1)}
    assert set(metrics) == {
        "sessions.batch_save_sessions",
        "sessions.load_session",
        "sessions.query_history",
        "sessions.get_successful_sessions",
    }
    assert metrics["sessions.load_session"].count == 3
    assert metrics["sessions.load_session"].avg_rows == 1
    assert metrics["sessions.query_history"].total_rows == 5
    assert metrics["sessions.batch_save_sessions"].total_rows == 7
    assert all(0 < m.min_time <= m.avg_time <= m.max_time for m in metrics.values())


def test_recording_in_a_unit_of_work_and_buffer_flush_on_close(sqlite_template: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'perf.db'}"
    with Storage(url, record_query_performance=True) as store, store.unit_of_work() as uow:
        uow.sessions.save_session(SessionCreateFactory.build())
        uow.sessions.get_statistics()
    with Storage(url) as reader:
        assert logged(reader) == 2, "close() wrote the buffered records"


def test_old_rows_are_pruned(recording: Storage) -> None:
    assert recording.recorder is not None
    table = table_of(QueryPerformance)
    with recording.engine.begin() as conn:
        conn.execute(
            insert(table),
            [
                {
                    "query_type": "old",
                    "execution_time": 0.1,
                    "rows_returned": 1,
                    "timestamp": utcnow() - timedelta(days=40),
                }
            ],
        )
    recording.recorder._last_prune = None
    recording.sessions.get_session_count()
    recording.recorder.flush()
    assert {m.query_type for m in recording.maintenance.performance_metrics(hours=24 * 60)} == {
        "sessions.get_session_count"
    }


def test_hours_must_be_sensible(storage: Storage) -> None:
    with pytest.raises(InvalidInput, match="hours"):
        storage.maintenance.performance_metrics(hours=0)


def test_a_full_buffer_inside_a_unit_of_work_waits_for_its_end(
    storage_factory: Callable[..., Storage],
) -> None:
    """Flushing inside a writing unit of work would wait on its own write lock; it waits for the end."""
    store = storage_factory(record_query_performance=True)
    assert store.recorder is not None
    store.recorder.flush_every = 3
    with store.unit_of_work() as uow:
        for _ in range(5):
            uow.sessions.save_session(SessionCreateFactory.build())
    assert logged(store) == 5
