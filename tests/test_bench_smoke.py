"""The benchmark still runs, and its other sides do the work edi-storage does (tiny sizes; no timing is
asserted). Run with `pytest -m bench` (`make bench-smoke`); the default run leaves it out. PostgreSQL
too when EDI_STORAGE_TEST_POSTGRES_URL is set.

What is checked of the other sides, since a fast raw side that does less would flatter nobody: the
hand-written history returns the same rows, in the same order, as query_history for every filter mix
(on shared and on distinct timestamps), a hand-written load the same graph as load_session, statistics
the same figures; the hand-written audited save writes the audit rows the triggers write; the
hand-written and plain-ORM saves store the same rows as edi-storage; the reference class's base-data
loader stores what its own save_session stores.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench  # noqa: E402
import reference_database  # noqa: E402
from workload import MIXES, REFERENCE_MIXES, resolve, with_distinct_times  # noqa: E402

PG_URL = os.environ.get("EDI_STORAGE_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])
OPERATIONS = [
    "single save, audited",
    "single save, audit off",
    "bulk save, audited",
    "bulk save, audit off",
    *(
        f"{op}, {data}"
        for data in ("shared ts", "distinct ts")
        for op in ("load whole graph p50", "query_history p50", "get_statistics p50")
    ),
]
TABLES = ["sessions", "prompts", "entities", "validations", "user_feedback"]
TIMES = {"created_at", "updated_at", "timestamp"}


@pytest.mark.bench
@pytest.mark.parametrize("backend", BACKENDS)
def test_benchmark_runs_and_reports_every_row(tmp_path: Path, backend: str) -> None:
    command = [
        sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--backend", backend, "--base", "120",
        "--pg-base", "120", "--sessions", "6", "--rounds", "2", "--bulk", "8", "--bulk-rounds", "2",
        "--loads", "6", "--queries", str(len(MIXES)), "--statistics", "2", "--results", str(tmp_path),
    ]  # fmt: skip
    if PG_URL:
        command += ["--pg-url", PG_URL]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "latest.json").read_text())
    rows = report["results"]
    assert [r["operation"] for r in rows.values()] == OPERATIONS
    for row in rows.values():
        assert f"{row['operation']} ({row['unit']})" in result.stdout
        assert row["backend"] == backend
        assert row["edi"] > 0 and row["raw"] > 0 and row["ratio"] > 0 and row["orm"] > 0
        assert (row["reference"] is not None) == (backend == "sqlite")
        assert row["target"] or row["operation"].startswith("get_statistics")
    assert report["backends"][backend]["problems"] == []
    assert "WARNING" not in result.stdout
    for data in ("shared ts", "distinct ts"):
        assert len(report["backends"][backend]["history_by_mix"][data]) == len(MIXES)


@pytest.mark.bench
def test_scale_mode_runs_imports_and_upgrades(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--sizes", "100,300", "--samples", "5",
         "--work", str(tmp_path / "work"), "--results", str(tmp_path)],
        capture_output=True, text=True, check=False, timeout=300, cwd=ROOT / "benchmarks",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "scale.json").read_text())
    assert set(report["sizes"]) == {"100", "300"}
    assert report["sizes"]["300"]["import"]["peak_mb"] > 0
    assert set(report["growth"]) >= {"load full graph p50 (ms)", "query_history p50 (ms)"}
    assert report["upgrade"]["upgrade 0001 -> head (s)"] > 0


# -- the other sides do the same work ------------------------------------------------------------
@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[bench.Backend]:
    made: bench.Backend = (
        bench.SQLiteBackend(tmp_path) if request.param == "sqlite" else bench.PostgresBackend(str(PG_URL))
    )
    try:
        yield made
    finally:
        made.close()


def contents(backend: bench.Backend, db: str, tables: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every row of ``tables`` (sessions by id, the others by id), without timestamps; JSON decoded."""
    raw = backend.raw(db)
    out: dict[str, list[dict[str, Any]]] = {}
    for table in tables:
        cursor = raw.conn.execute(f"SELECT * FROM {table} ORDER BY id")
        names = [d[0] for d in cursor.description or ()]
        rows = []
        for values in cursor.fetchall():
            row = {k: v for k, v in zip(names, values, strict=True) if k not in TIMES}
            for key, value in row.items():
                if isinstance(value, str) and value[:1] in ("[", "{"):
                    row[key] = json.loads(value)
            if isinstance(row.get("changes"), dict):
                row["changes"] = {k: v for k, v in row["changes"].items() if k not in TIMES}
            rows.append(row)
        out[table] = rows
    return out


def source(count: int) -> list[dict[str, Any]]:
    return bench.GraphSource(random.Random(7), templates=min(count, 150)).take(count)


@pytest.mark.bench
@pytest.mark.parametrize("shared", [True, False], ids=["shared-timestamps", "distinct-timestamps"])
def test_raw_and_orm_reads_return_what_edi_storage_returns(backend: bench.Backend, shared: bool) -> None:
    items = source(130)
    if not shared:
        items = with_distinct_times(items, random.Random(3))
    edi_db = backend.database("edi_reads", triggers=True)
    with backend.storage(edi_db).unit_of_work(audit=False) as uow:
        uow.sessions.batch_save_sessions(items)
    backend.release(edi_db)
    raw_db = backend.database("raw_reads", triggers=False, source=edi_db)
    edi, raw = backend.storage(edi_db), backend.raw(raw_db)
    mixes = resolve(MIXES, raw.median_created_at())
    pages = [raw.history(q) for q in mixes]
    assert all(pages), "every mix matches some sessions, so that the comparison means something"
    assert any(len(page) == 50 for page in pages), "and some fill a page (ties cut by the tie-breaker)"
    ids = [g["id"] for g in items]
    others: dict[str, bench.Reads] = {"raw": raw, "orm": backend.orm(edi_db)}
    assert bench.check_reads(edi, others, [*ids[:4], "no-such-session"], mixes) == []


@pytest.mark.bench
def test_raw_audited_save_writes_the_audit_rows_the_triggers_write(backend: bench.Backend) -> None:
    items = source(6)
    edi_db = backend.database("edi_writes", triggers=True)
    raw_db = backend.database("raw_writes", triggers=False)
    storage, raw = backend.storage(edi_db), backend.raw(raw_db)
    audited, by_alice, unaudited = items[:3], items[3:4], items[4:]
    bench.edi_writer(storage, audit=True)(audited[:1])  # a single save, then a batch
    bench.edi_writer(storage, audit=True)(audited[1:])
    with storage.unit_of_work(actor="alice") as uow:
        uow.sessions.save_session(by_alice[0])
    bench.edi_writer(storage, audit=False)(unaudited)
    raw.save(audited[:1], audit=True)
    raw.save(audited[1:], audit=True)
    raw.save(by_alice, audit=True, actor="alice")
    raw.save(unaudited, audit=False)
    mine, theirs = contents(backend, edi_db, ["audit_log"]), contents(backend, raw_db, ["audit_log"])
    assert len(mine["audit_log"]) == 4 * 12
    assert {r["user_id"] for r in mine["audit_log"]} == {None, "alice"}
    assert theirs == mine


@pytest.mark.bench
def test_raw_and_orm_saves_store_the_rows_edi_storage_stores(backend: bench.Backend) -> None:
    items = source(5)
    written = {}
    for side, triggers in (("edi", True), ("raw", False), ("orm", True)):
        db = backend.database(f"{side}_rows", triggers=triggers)
        save: Callable[[list[dict[str, Any]]], None]
        if side == "edi":
            save = bench.edi_writer(backend.storage(db), audit=False)
        elif side == "raw":
            save = backend.raw(db).save
        else:
            save = backend.orm(db).save
        save(items[:1])  # a single save, then a batch
        save(items[1:])
        written[side] = contents(backend, db, TABLES)
    assert sum(len(rows) for rows in written["edi"].values()) == 5 * 12
    assert written["raw"] == written["edi"]
    assert written["orm"] == written["edi"]


@pytest.mark.bench
def test_reference_database_runs_and_its_base_loader_stores_what_it_saves(tmp_path: Path) -> None:
    items = source(4)
    saved = reference_database.Database(str(tmp_path / "saved.db"))
    assert all(saved.save_session(g) for g in items)
    reference_database.load_base(str(tmp_path / "loaded.db"), items)

    def rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
        with sqlite3.connect(path) as conn:
            out = {}
            for table in TABLES:
                cursor = conn.execute(f"SELECT * FROM {table} ORDER BY id")
                keep = [i for i, d in enumerate(cursor.description) if d[0] not in TIMES]
                out[table] = [tuple(r[i] for i in keep) for r in cursor.fetchall()]
            return out

    assert rows(tmp_path / "loaded.db") == rows(tmp_path / "saved.db")
    loaded = saved.load_session(items[0]["id"])
    assert loaded is not None and len(loaded["prompts"]) == len(items[0]["prompts"])
    reads = bench.ReferenceReads(saved)
    assert all(isinstance(reads.history(MIXES[m]), list) for m in REFERENCE_MIXES)
    assert saved.get_statistics()["total_sessions"] == 4
