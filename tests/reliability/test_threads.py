"""Threads: eight threads share one ``Storage`` and every result is exact.

Each thread runs a fixed cycle of mixed service calls (saves, loads, history queries, library prompts,
gallery images read back at once, status updates, and a unit of work of two calls) on the in-memory
database (``sqlite://``, and a memory copy handed in through ``creator`` as the test fixtures make it),
on a SQLite file and on PostgreSQL. Afterwards the counts must match what the threads did, exactly,
and no thread may have seen an exception. The fast in-memory variant runs in ``make test``; the longer
ones are ``reliability`` scenarios (``make test-reliability``) and print a one-line summary.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import URL
from sqlalchemy.pool import QueuePool

from edi_storage import Busy, Storage
from edi_storage.engine import MemoryPool
from edi_storage.testing import SessionCreateFactory
from edi_storage.testing.fixtures import empty_postgres_tables, sqlite_memory_copy

from .conftest import migrated_file

THREADS = 8
FAST_CALLS = 40  # per thread, in the default run
SLOW_CALLS = 400  # per thread, in the reliability run
# Few distinct texts, so that threads keep adding uses to the same library prompts at once.
PROMPTS = ("a red fox", "A Red  Fox", "a blue whale", "an owl at dusk")
DISTINCT_PROMPTS = 3  # the first two are one library prompt (normalised text)


@dataclass
class Worker:
    """One thread's share: its own sessions and images, counted as it goes."""

    storage: Storage
    index: int
    graphs: list[dict[str, Any]]
    sessions: list[str] = field(default_factory=list)
    images: int = 0
    prompt_calls: int = 0
    calls: int = 0
    errors: list[str] = field(default_factory=list)

    def graph(self) -> dict[str, Any]:
        return {**self.graphs[len(self.sessions) % len(self.graphs)], "id": str(uuid.uuid4())}

    def save(self) -> None:
        self.sessions.append(self.storage.sessions.save_session(self.graph()))

    def load(self) -> None:
        session_id = self.sessions[-1]
        loaded = self.storage.sessions.load_session(session_id)
        assert loaded is not None, f"session {session_id} not found right after it was saved"
        assert loaded.id == session_id

    def history(self) -> None:
        self.storage.sessions.query_history(limit=20)

    def prompt(self) -> None:
        self.storage.library.record_prompt(PROMPTS[self.calls % len(PROMPTS)], model="sdxl")
        self.prompt_calls += 1

    def image(self) -> None:
        filename = f"thread-{self.index}-{uuid.uuid4().hex}.png"
        added = self.storage.gallery.add_image(
            {"filename": filename, "prompt": "a fox", "model_id": "sdxl", "final_score": 7.5}
        )
        self.images += 1
        found = self.storage.gallery.get_image(added.id)
        assert found.filename == filename, f"image {added.id} is {found.filename!r}, not {filename!r}"

    def status(self) -> None:
        self.storage.sessions.update_session_status(self.sessions[-1], "completed", 0.9)

    def unit_of_work(self) -> None:
        graph = self.graph()
        with self.storage.unit_of_work(actor=f"thread-{self.index}") as uow:
            session_id = uow.sessions.save_session(graph)
            uow.library.record_prompt(PROMPTS[self.index % len(PROMPTS)], model="sdxl")
        self.sessions.append(session_id)
        self.prompt_calls += 1

    def run(self, calls: int, start: threading.Barrier) -> None:
        cycle: list[Callable[[], None]] = [
            self.save, self.load, self.history, self.prompt, self.image, self.status, self.unit_of_work,
        ]  # fmt: skip
        start.wait()
        for step in range(calls):
            try:
                cycle[step % len(cycle)]()
            except Exception as error:  # noqa: BLE001 - every error is the finding; the test fails on it
                self.errors.append(f"{cycle[step % len(cycle)].__name__}: {type(error).__name__}: {error}")
            self.calls += 1


def run_threads(storage: Storage, calls: int, what: str) -> None:
    """``THREADS`` threads, released together, ``calls`` calls each; then the exact checks."""
    graphs = [SessionCreateFactory.build().model_dump(mode="json") for _ in range(10)]
    workers = [Worker(storage, index, graphs) for index in range(THREADS)]
    start = threading.Barrier(THREADS)
    threads = [
        threading.Thread(target=worker.run, args=(calls, start), name=f"storage-{worker.index}")
        for worker in workers
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    elapsed = time.monotonic() - started
    assert not any(thread.is_alive() for thread in threads), "a thread is still running after 300 s"

    errors = [error for worker in workers for error in worker.errors]
    total = sum(worker.calls for worker in workers)
    print(f"\nthreads on {what}: {THREADS} threads, {total} calls in {elapsed:.2f} s, {len(errors)} errors")
    assert errors == [], f"{len(errors)} errors, the first: {errors[:5]}"
    assert total == THREADS * calls

    saved = [session_id for worker in workers for session_id in worker.sessions]
    assert len(set(saved)) == len(saved)
    assert storage.sessions.get_session_count() == len(saved)
    assert [d.id for d in storage.sessions.load_sessions(saved)] == saved
    assert storage.library.stats().total_uses == sum(worker.prompt_calls for worker in workers)
    assert storage.library.stats().total_prompts == DISTINCT_PROMPTS
    assert len(storage.gallery.uncurated(limit=10_000)) == sum(worker.images for worker in workers)
    assert checked_out(storage) == 0, "every connection is back in the pool"


def checked_out(storage: Storage) -> int:
    pool = storage.engine.pool
    assert isinstance(pool, MemoryPool | QueuePool), pool
    return pool.checkedout()


@pytest.fixture
def memory_copy(sqlite_template: Path) -> Iterator[Storage]:
    store = sqlite_memory_copy(sqlite_template)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def memory_url() -> Iterator[Storage]:
    store = Storage("sqlite://")
    try:
        yield store
    finally:
        store.close()


MEMORY = ["memory_url", "memory_copy"]


@pytest.mark.parametrize("flavour", MEMORY)
def test_eight_threads_share_one_in_memory_storage(request: pytest.FixtureRequest, flavour: str) -> None:
    """The default run's variant: ``sqlite://`` once crashed the interpreter here."""
    run_threads(request.getfixturevalue(flavour), FAST_CALLS, flavour)


@pytest.mark.reliability
@pytest.mark.parametrize("flavour", MEMORY)
def test_eight_threads_many_calls_on_one_in_memory_storage(
    request: pytest.FixtureRequest, flavour: str
) -> None:
    run_threads(request.getfixturevalue(flavour), SLOW_CALLS, flavour)


@pytest.mark.reliability
def test_eight_threads_share_one_storage_on_a_sqlite_file(tmp_path: Path, sqlite_template: Path) -> None:
    with Storage(migrated_file(sqlite_template, tmp_path / "threads.db")) as storage:
        run_threads(storage, SLOW_CALLS, "a SQLite file")


@pytest.mark.reliability
def test_eight_threads_share_one_storage_on_postgresql(postgres_database: URL) -> None:
    with Storage(postgres_database) as storage:
        empty_postgres_tables(storage)
        run_threads(storage, SLOW_CALLS, "PostgreSQL")


# -- the in-memory database's one connection, lent to one thread at a time ---------------------------
def hold_in_a_thread(storage: Storage, seconds: float) -> tuple[threading.Thread, threading.Event]:
    """A thread that saves a session in a unit of work and keeps it open for ``seconds``."""
    holding = threading.Event()

    def hold() -> None:
        with storage.unit_of_work() as uow:
            uow.sessions.save_session(SessionCreateFactory.build())
            holding.set()
            time.sleep(seconds)

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(10)
    return thread, holding


def test_a_thread_waits_for_the_memory_connection_and_then_sees_the_commit(memory_url: Storage) -> None:
    thread, _ = hold_in_a_thread(memory_url, 0.4)
    started = time.monotonic()
    count = memory_url.sessions.get_session_count()
    waited = time.monotonic() - started
    thread.join()
    assert waited > 0.2, "the reader waited for the unit of work instead of sharing its connection"
    assert count == 1


def test_a_wait_past_the_busy_timeout_is_a_typed_busy_error() -> None:
    with Storage("sqlite://", busy_timeout_ms=200) as storage:
        thread, _ = hold_in_a_thread(storage, 1.5)
        started = time.monotonic()
        with pytest.raises(Busy, match="busy timeout"):
            storage.sessions.get_session_count()
        waited = time.monotonic() - started
        thread.join()
        assert 0.15 < waited < 1.2
        assert storage.sessions.get_session_count() == 1


def test_a_thread_may_nest_checkouts_and_keeps_the_connection_until_the_last(memory_url: Storage) -> None:
    """A connection asked for inside a unit of work's open transaction is refused at once (sharing it would
    let its rollback undo the unit of work), never deadlocks, and no other thread gets the connection in
    between; outside a transaction the holder's nested checkouts share it."""
    other: list[int] = []
    with memory_url.engine.connect():
        with memory_url.engine.connect():
            assert checked_out(memory_url) == 2
        assert checked_out(memory_url) == 1
    with memory_url.unit_of_work() as uow:
        session_id = uow.sessions.save_session(SessionCreateFactory.build())
        with pytest.raises(Busy, match="transaction open"):
            memory_url.engine.connect()
        assert checked_out(memory_url) == 1
        reader = threading.Thread(target=lambda: other.append(memory_url.sessions.get_session_count()))
        reader.start()
        reader.join(0.3)
        assert reader.is_alive(), "another thread got the connection while the unit of work held it"
        assert uow.sessions.load_session(session_id) is not None
    reader.join(10)
    assert other == [1]
    assert checked_out(memory_url) == 0
    assert memory_url.sessions.load_session(session_id) is not None


def test_an_invalidated_memory_connection_keeps_the_database(memory_url: Storage) -> None:
    session_id = memory_url.sessions.save_session(SessionCreateFactory.build())
    with memory_url.engine.connect() as connection:
        connection.invalidate()
    assert memory_url.sessions.load_session(session_id) is not None
    assert checked_out(memory_url) == 0


def test_a_storage_call_inside_a_unit_of_work_of_the_same_thread_never_undoes_it() -> None:
    """On the one connection of a memory database, a storage.<service> call inside an open unit of work
    of the same thread is refused (Busy, naming the fix) instead of sharing the transaction, whose
    rollback would silently undo the unit of work's writes."""
    storage = Storage("sqlite://")
    try:
        with storage.unit_of_work() as uow:
            uow.sessions.save_session({"id": "A", "image_path": "/a.jpg", "naive_prompt": "p"})
            with pytest.raises(Busy, match=r"uow\.sessions"):
                storage.sessions.load_session("A")
            uow.sessions.save_session({"id": "B", "image_path": "/b.jpg", "naive_prompt": "p"})
        assert storage.sessions.session_ids() == ["A", "B"]
    finally:
        storage.close()
