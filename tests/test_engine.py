"""SQLite as a real application database: WAL, pragmas, writers that queue instead of failing,
typed errors for the faults a user can actually hit, and query plans that use the indexes."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from edi_storage import Busy, DatabaseUnavailable, InvalidInput, Storage
from edi_storage.config import Settings
from edi_storage.testing import SessionCreateFactory
from edi_storage.testing.fixtures import postgres_url

from .plans import plans_of


def test_a_file_database_runs_in_wal_with_the_agreed_pragmas(tmp_path: Path) -> None:
    with Storage(f"sqlite:///{tmp_path / 'w.db'}", busy_timeout_ms=1234) as storage:
        storage.sessions.get_session_count()
        with storage.engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
            }
    assert pragma == {"journal_mode": "wal", "foreign_keys": 1, "synchronous": 1, "busy_timeout": 1234}


def test_cache_size_temp_store_and_pool_are_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset, SQLite's and SQLAlchemy's defaults; set by argument or by EDI_STORAGE_*, every connection."""
    url = f"sqlite:///{tmp_path / 's.db'}"

    def applied(storage: Storage) -> tuple[Any, ...]:
        with storage, storage.engine.connect() as conn:
            pragmas = tuple(
                conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in ("cache_size", "temp_store")
            )
            return (*pragmas, storage.engine.pool.size())  # type: ignore[attr-defined]

    assert applied(Storage(url)) == (-2000, 0, 5)
    chosen = Settings(sqlite_cache_size_kib=65536, sqlite_temp_store="memory", pool_size=3)
    assert applied(Storage(url, settings=chosen)) == (-65536, 2, 3)
    monkeypatch.setenv("EDI_STORAGE_SQLITE_CACHE_SIZE_KIB", "1024")
    monkeypatch.setenv("EDI_STORAGE_SQLITE_TEMP_STORE", "file")
    assert applied(Storage(url))[:2] == (-1024, 1)
    monkeypatch.setenv("EDI_STORAGE_POOL_SIZE", "0")
    with pytest.raises(InvalidInput, match="pool_size") as refused:
        Storage(url)
    assert refused.value.errors[0].value == "0"


@pytest.mark.skipif(postgres_url() is None, reason="EDI_STORAGE_TEST_POSTGRES_URL is not set")
@pytest.mark.postgres
def test_the_pool_settings_size_a_postgres_pool(postgres_database: Any) -> None:
    with Storage(postgres_database, settings=Settings(pool_size=2, max_overflow=1)) as storage:
        assert storage.engine.pool.size() == 2  # type: ignore[attr-defined]
        assert storage.engine.pool._max_overflow == 1  # type: ignore[attr-defined]


def test_a_second_writer_waits_for_the_first_instead_of_failing(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE: the second writer queues on the busy timeout, then succeeds."""
    url = f"sqlite:///{tmp_path / 'q.db'}"
    first, second = Storage(url), Storage(url)
    holding = threading.Event()
    done: list[str] = []

    def slow_writer() -> None:
        with first.unit_of_work() as uow:
            uow.sessions.save_session(SessionCreateFactory.build())
            holding.set()
            time.sleep(0.5)
        done.append("first")

    thread = threading.Thread(target=slow_writer)
    thread.start()
    holding.wait(5)
    started = time.monotonic()
    second.sessions.save_session(SessionCreateFactory.build())
    waited = time.monotonic() - started
    done.append("second")
    thread.join()
    assert done == ["first", "second"]
    assert waited > 0.2, "the second writer waited for the lock rather than interleaving"
    assert second.sessions.get_session_count() == 2
    first.close()
    second.close()


def test_readers_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    writer, reader = Storage(url), Storage(url)
    writer.sessions.save_session(SessionCreateFactory.build())
    with writer.unit_of_work() as uow:
        uow.sessions.save_session(SessionCreateFactory.build())
        started = time.monotonic()
        assert reader.sessions.get_session_count() == 1, "the reader sees the last commit"
        assert time.monotonic() - started < 1
    writer.close()
    reader.close()


def test_a_lock_held_past_the_busy_timeout_is_a_typed_busy_error(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    storage = Storage(f"sqlite:///{path}", busy_timeout_ms=100)
    storage.sessions.get_session_count()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(Busy, match="locked"):
            storage.sessions.save_session(SessionCreateFactory.build())
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    storage.sessions.save_session(SessionCreateFactory.build())
    assert storage.sessions.get_session_count() == 1, "the next call after the fault works"
    storage.close()


def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnavailable, match="does not exist"):
        Storage(f"sqlite:///{tmp_path / 'nowhere' / 'x.db'}")


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database " * 100)
    with pytest.raises(DatabaseUnavailable, match="not a database"):
        Storage(f"sqlite:///{path}")
    assert path.read_text().startswith("these are my notes")


def test_child_lookups_use_the_session_id_indexes(sqlite_storage: Storage) -> None:
    for table, index in [
        ("prompts", "ix_prompts_session_id_iteration"),
        ("entities", "ix_entities_session_id"),
        ("validations", "ix_validations_session_id_attempt_number"),
        ("user_feedback", "ix_user_feedback_session_id_created_at"),
    ]:
        assert index in explain(sqlite_storage, text(f"SELECT * FROM {table} WHERE session_id = 'x'"))


@pytest.mark.parametrize(
    ("call", "index"),
    [
        (  # grouped in status order, without a sort (it reads every row: averages, counts, newest change)
            lambda s: s.sessions.get_statistics(),
            "SCAN sessions USING INDEX ix_sessions_status_",
        ),
        (  # each table's rows counted from its smallest index, not the table
            lambda s: s.sessions.get_statistics(),
            "SCAN user_feedback USING COVERING INDEX",
        ),
        (
            lambda s: s.sessions.get_session_count("failed"),
            "USING COVERING INDEX ix_sessions_status_",  # either status index counts without the table
        ),
    ],
)
def test_statistics_and_counts_use_an_index(sqlite_storage: Storage, call: Any, index: str) -> None:
    """EXPLAIN of the statement the method really issues, captured as it runs."""
    sqlite_storage.sessions.get_session_count()  # the one-off schema check is not what is measured
    plan = " | ".join(plans_of(sqlite_storage, lambda: call(sqlite_storage)))
    assert index in plan and "TEMP B-TREE" not in plan, plan


def explain(storage: Storage, statement: object) -> str:
    with storage.engine.connect() as conn:
        compiled = statement.compile(conn, compile_kwargs={"literal_binds": True})  # type: ignore[attr-defined]
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").fetchall()
    return " | ".join(str(row[-1]) for row in rows)
