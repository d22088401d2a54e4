"""Load: many processes writing and reading one database at once, and a bounded soak of every service.

Each scenario prints a one-line summary of what it measured (run pytest with ``-s`` or ``-rP`` to see
it); docs/reliability.md quotes them.
"""

from __future__ import annotations

import gc
import json
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import URL

from edi_storage import Storage
from edi_storage.testing import SessionCreateFactory
from edi_storage.testing.fixtures import empty_postgres_tables

from .conftest import Spawn, checked_out, migrated_file, rss_bytes

WRITERS = 6
READERS = 2
SESSIONS_PER_WRITER = 60

# One worker of the load test. Writers save their sessions one call (one transaction) at a time and
# record a library prompt after each; readers run history queries until told to stop. Every call is
# timed, every exception is kept (with its type), and the result is written as JSON for the test.
LOAD_WORKER = """
import json, sys, time
from pathlib import Path
from edi_storage import Storage
from edi_storage.testing import SessionCreateFactory, seed

url, role, index, count, go, stop, out = sys.argv[1:8]
prompts = ["a red fox", "A Red  Fox", "blue whale"]  # the first two are one library prompt
seed(1000 + int(index))
graphs = [SessionCreateFactory.build().model_dump(mode="json") for _ in range(int(count) if role == "writer" else 0)]
storage = Storage(url)
storage.sessions.get_session_count()  # connected and schema checked before the start
Path(out + ".ready").touch()
while not Path(go).exists():
    time.sleep(0.002)
latencies, errors, ids = [], [], []

def timed(call):
    started = time.perf_counter()
    try:
        return call()
    except Exception as error:
        errors.append(f"{type(error).__name__}: {error}")
    finally:
        latencies.append(time.perf_counter() - started)

if role == "writer":
    for i, graph in enumerate(graphs):
        ids.append(timed(lambda: storage.sessions.save_session(graph)))
        timed(lambda: storage.library.record_prompt(prompts[i % 3], model="sdxl"))
else:
    while not Path(stop).exists():
        timed(lambda: storage.sessions.query_history(limit=50))
storage.close()
publish(Path(out), json.dumps({"ids": ids, "errors": errors, "calls": len(latencies),
                                 "worst": max(latencies, default=0.0)}))
"""


def run_load(spawn: Spawn, url: str, tmp_path: Path) -> dict[str, Any]:
    """Start every worker, wait until all are connected, release them at once, stop the readers when
    the last writer is done; return what the workers report and the wall time of the writes."""
    go, stop = tmp_path / "go", tmp_path / "stop"
    roles = ["writer"] * WRITERS + ["reader"] * READERS
    outs = [tmp_path / f"worker-{i}.json" for i in range(len(roles))]
    children = [
        spawn(LOAD_WORKER, url, role, str(i), str(SESSIONS_PER_WRITER), str(go), str(stop), str(out))
        for i, (role, out) in enumerate(zip(roles, outs, strict=True))
    ]
    for child, out in zip(children, outs, strict=True):
        child.wait_for_file(Path(f"{out}.ready"))
    started = time.perf_counter()
    go.touch()
    for child in children[:WRITERS]:
        assert child.wait(180) == 0, child.output()
    elapsed = time.perf_counter() - started
    stop.touch()
    for child in children[WRITERS:]:
        assert child.wait(60) == 0, child.output()
    results = [json.loads(out.read_text()) for out in outs]
    return {"writers": results[:WRITERS], "readers": results[WRITERS:], "elapsed": elapsed}


@pytest.mark.reliability
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_six_writer_processes_and_two_readers_on_one_database(
    backend: str, spawn: Spawn, tmp_path: Path, request: pytest.FixtureRequest, sqlite_template: Path
) -> None:
    """Every write is stored and loadable, library uses are counted exactly, no error (no "database is
    locked", no unique violation) reaches a caller, and readers never queue behind the writers."""
    if backend == "sqlite":
        url = migrated_file(sqlite_template, tmp_path / "load.db")
    else:
        server: URL = request.getfixturevalue("postgres_database")
        url = server.render_as_string(hide_password=False)
        with Storage(url) as cleaner:
            empty_postgres_tables(cleaner)

    result = run_load(spawn, url, tmp_path)

    writers, readers = result["writers"], result["readers"]
    errors = [e for worker in writers + readers for e in worker["errors"]]
    assert errors == [], errors[:5]
    ids = [i for w in writers for i in w["ids"]]
    total = WRITERS * SESSIONS_PER_WRITER
    assert len(set(ids)) == total
    with Storage(url) as storage:
        assert storage.sessions.get_session_count() == total
        loaded = storage.sessions.load_sessions(ids)
        uses = {p.prompt_text.lower().split()[-1]: p.total_uses for p in storage.library.popular(10)}
    assert sorted(s.id for s in loaded) == sorted(ids), "every id the writers got back is loadable"
    assert {(len(s.prompts), len(s.entities), len(s.validations)) for s in loaded} == {(3, 5, 2)}
    per_writer = SESSIONS_PER_WRITER // 3
    assert uses == {"fox": WRITERS * 2 * per_writer, "whale": WRITERS * per_writer}

    worst_writer = max(w["worst"] for w in writers)
    worst_reader = max(r["worst"] for r in readers)
    reads = sum(r["calls"] for r in readers)
    print(
        f"\nload[{backend}]: {WRITERS} writer processes x {SESSIONS_PER_WRITER} sessions "
        f"(+ as many record_prompt), {READERS} reader processes: {total} sessions in "
        f"{result['elapsed']:.2f} s = {total / result['elapsed']:.0f} sessions/s, "
        f"worst writer call {worst_writer * 1000:.0f} ms, worst reader call {worst_reader * 1000:.0f} ms "
        f"over {reads} history queries, errors 0 ({os.cpu_count()} CPUs)"
    )
    # The busy timeout is 30 s: a reader that queued behind a writer would show it, readers that never
    # wait stay within a scheduling hiccup of their query time.
    assert worst_reader < 1.0, f"a reader waited {worst_reader:.2f} s"


# -- soak ------------------------------------------------------------------------------------------
SOAK_THREADS = 3
SOAK_MEMORY_GROWTH_LIMIT = 30 * 1024 * 1024


def soak_seconds() -> float:
    return float(os.environ.get("EDI_STORAGE_SOAK_SECONDS", "60"))


class SoakWorker:
    """One thread's share of the soak: its own sessions and images (so that no other thread deletes
    what it reads), every service call in random order."""

    def __init__(self, storage: Storage, graphs: list[dict[str, Any]], seed: int) -> None:
        self.storage = storage
        self.graphs = graphs
        self.rng = random.Random(seed)
        self.sessions: list[str] = []
        self.images: list[int] = []
        self.calls = 0

    def save(self) -> None:
        graph = {**self.rng.choice(self.graphs), "id": str(uuid.uuid4())}
        self.sessions.append(self.storage.sessions.save_session(graph))

    def load(self) -> None:
        if self.sessions:
            assert self.storage.sessions.load_session(self.rng.choice(self.sessions)) is not None

    def history(self) -> None:
        self.storage.sessions.query_history(
            limit=20,
            status_filter=self.rng.choice([None, "completed", "failed"]),
            min_score=self.rng.choice([None, 0.5]),
            search_term=self.rng.choice([None, "sky"]),
        )

    def statistics(self) -> None:
        self.storage.sessions.get_statistics()
        self.storage.sessions.get_session_count("completed")

    def update(self) -> None:
        if self.sessions:
            session_id = self.rng.choice(self.sessions)
            self.storage.sessions.update_session_status(session_id, "completed", self.rng.random())

    def delete(self) -> None:
        if len(self.sessions) > 20:  # keeps the working set (and the database) from growing without end
            self.storage.sessions.delete_session(self.sessions.pop(0))

    def unit_of_work(self) -> None:
        if self.sessions:
            session_id = self.rng.choice(self.sessions)
            with self.storage.unit_of_work(actor="soak") as uow:
                uow.sessions.record_feedback(session_id, {"feedback_type": "accept", "rating": 5})
                uow.sessions.record_validation(session_id, {"attempt_number": 9, "alignment_score": 0.8})

    def library(self) -> None:
        word = self.rng.choice(["fox", "whale", "owl", "sunset", "mountain"])
        self.storage.library.record_prompt(f"a {word} number {self.rng.randrange(50)}", model="sdxl")
        self.storage.library.search(word, limit=10)

    def gallery(self) -> None:
        image = self.storage.gallery.add_image(
            {"filename": f"{uuid.uuid4().hex}.png", "prompt": "a fox", "model_id": "sdxl",
             "final_score": round(self.rng.uniform(0, 10), 2)}
        )  # fmt: skip
        self.images.append(image.id)
        self.storage.gallery.curate(self.rng.choice(self.images), self.rng.choice(["curated", "rejected"]))
        self.storage.gallery.top(10)
        del self.images[:-20]

    def audit(self) -> None:
        self.storage.audit.get_audit_trail(table_name="sessions", limit=20)
        if self.sessions:
            self.storage.audit.get_audit_trail(record_id=self.rng.choice(self.sessions), limit=20)

    def step(self) -> None:
        calls: list[Callable[[], None]] = [
            self.save, self.save, self.load, self.history, self.statistics, self.update, self.delete,
            self.delete, self.unit_of_work, self.library, self.gallery, self.audit,
        ]  # fmt: skip
        self.rng.choice(calls)()
        self.calls += 1


@pytest.mark.soak
def test_a_mixed_soak_keeps_memory_flat_and_returns_every_connection(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """Threads running every kind of service call on one SQLite file for EDI_STORAGE_SOAK_SECONDS
    (default 60): no error, resident memory after the warm-up does not grow by more than 30 MB, and
    every pooled connection is checked back in at the end."""
    duration = soak_seconds()
    warm_up = max(2.0, duration * 0.2)
    graphs = [SessionCreateFactory.build().model_dump(mode="json") for _ in range(50)]
    storage = Storage(migrated_file(sqlite_template, tmp_path / "soak.db"))
    workers = [SoakWorker(storage, graphs, seed) for seed in range(SOAK_THREADS)]
    errors: list[str] = []
    stop = threading.Event()

    def run(worker: SoakWorker) -> None:
        while not stop.is_set():
            try:
                worker.step()
            except Exception as error:  # noqa: BLE001 - every error is the finding; the test fails on it
                errors.append(f"{type(error).__name__}: {error}")
                return

    threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        time.sleep(warm_up)
        gc.collect()
        rss_warm = rss_bytes()
        calls_warm = sum(w.calls for w in workers)
        time.sleep(max(0.0, duration - warm_up))
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    elapsed = time.monotonic() - started
    gc.collect()
    rss_end = rss_bytes()
    calls = sum(w.calls for w in workers)
    in_use = checked_out(storage.engine)
    sessions = storage.sessions.get_session_count()
    storage.close()

    growth = rss_end - rss_warm
    print(
        f"\nsoak: {SOAK_THREADS} threads, {elapsed:.0f} s, {calls} service calls ({calls / elapsed:.0f}/s), "
        f"RSS after {warm_up:.0f} s warm-up {rss_warm / 2**20:.1f} MB ({calls_warm} calls), at the end "
        f"{rss_end / 2**20:.1f} MB ({growth / 2**20:+.1f} MB), connections checked out at the end "
        f"{in_use}, sessions kept {sessions}, errors {len(errors)}"
    )
    assert errors == []
    assert calls > calls_warm, "the soak kept running after the warm-up"
    assert in_use == 0
    assert growth < SOAK_MEMORY_GROWTH_LIMIT, f"RSS grew by {growth / 2**20:.1f} MB after the warm-up"
