"""``make bench``: edi-storage against hand-written SQL doing the same work, on SQLite and PostgreSQL.

    python benchmarks/bench.py [--backend sqlite|postgres|both] [--base 20000] [--pg-base 6000]
        [--sessions 400] [--rounds 8] [--bulk 400] [--bulk-rounds 5] [--loads 400] [--queries 360]
        [--statistics 20] [--seed 1] [--pg-url URL] [--results DIR] [--work DIR]

Every operation is a pair, run in the same process on databases prepared the same way (the migrations
of edi-storage, then, for the hand-written side, every trigger and the audit context dropped):

* **audit off**: edi-storage in ``unit_of_work(audit=False)`` against hand-written SQL on a copy of the
  schema without the audit triggers;
* **audited**: edi-storage as it runs by default (the audit triggers write the trail) against
  hand-written SQL, on a copy without the triggers, that writes the same audit rows itself in the same
  transaction.

The hand-written side is the standard sqlite3 module (raw_sqlite.py) or psycopg 3 (raw_postgres.py): one
executemany per table, one transaction. Two more columns show what a user would otherwise pick: the
reference ``Database`` class of storage-database.md (reference_database.py; SQLite only) and a
straightforward ORM unit of work over edi-storage's models (plain_orm.py).

Reads run on base data loaded twice: once as one batch without ``created_at`` (every session shares one
timestamp, as after a batch import or in a reference database with its second-resolution
``CURRENT_TIMESTAMP``) and once with distinct timestamps. Each side reads its own copy of the same data.

Sides alternate: writes in rounds (every side once per round, the order rotating), reads call by call.
Writes report the median rate of the rounds, reads the median latency (p50). Printed as a table with the
targets of issue 12; written as JSON to benchmarks/results/latest.json. PostgreSQL runs on scratch
databases created for the run (``edi_bench_<id>_*``) and dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import psycopg
import raw_postgres
import raw_sqlite
import reference_database
from plain_orm import PlainORM, graph_of
from raw_postgres import RawPostgres
from raw_sqlite import RawSQLite
from sqlalchemy import make_url
from workload import MIXES, REFERENCE_MIXES, Graph, Query, resolve, with_distinct_times
from workload import graphs as factory_graphs

from edi_storage import Storage
from edi_storage.testing import seed

RESULTS = Path(__file__).with_name("results")
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL_ENV = ("EDI_STORAGE_BENCH_POSTGRES_URL", "EDI_STORAGE_TEST_POSTGRES_URL")
# The targets of issue 12, by the start of a row's operation: (comparison with fair raw, bound).
TARGETS = {
    "single save": (">=", 0.5),
    "bulk save": (">=", 0.5),
    "load whole graph": ("<=", 3.0),
    "query_history": ("<=", 2.0),
}
TEMPLATES = 1000  # factory graphs built per run; every other graph is one of them with a new id
Raw = RawSQLite  # the name benchmarks/scale.py imports


# -- the graphs ----------------------------------------------------------------------------------
class GraphSource:
    """Graphs with fresh, deterministic ids: copies of TEMPLATES factory graphs (building one with the
    factory takes milliseconds; the children are shared between copies, which no side mutates)."""

    def __init__(self, rng: random.Random, templates: int = TEMPLATES) -> None:
        self.rng = rng
        self.templates = factory_graphs(templates)
        self.made = 0

    def take(self, count: int) -> list[Graph]:
        out = []
        for _ in range(count):
            template = self.templates[self.made % len(self.templates)]
            out.append({
                **template,
                "id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                "image_path": template["image_path"].replace(".jpg", f"-{self.made}.jpg"),
            })  # fmt: skip
            self.made += 1
        return out


def graphs(count: int) -> list[Graph]:
    """``count`` factory graphs without created_at (kept for benchmarks/scale.py)."""
    return factory_graphs(count)


# -- the sides -----------------------------------------------------------------------------------
class Reads(Protocol):
    def load(self, session_id: str) -> object: ...
    def history(self, query: Query) -> Sequence[object]: ...
    def statistics(self) -> object: ...


class EdiReads:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def load(self, session_id: str) -> object:
        return self.storage.sessions.load_session(session_id)

    def history(self, query: Query) -> Sequence[object]:
        return self.storage.sessions.query_history(**query)

    def statistics(self) -> object:
        return self.storage.sessions.get_statistics()


class ReferenceReads:
    """The reference class's reads; its query_history takes status_filter and search_term only."""

    def __init__(self, db: reference_database.Database) -> None:
        self.db = db

    def load(self, session_id: str) -> object:
        return self.db.load_session(session_id)

    def history(self, query: Query) -> Sequence[object]:
        return self.db.query_history(
            limit=query.get("limit", 50),
            offset=query.get("offset", 0),
            status_filter=query.get("status_filter"),
            search_term=query.get("search_term"),
        )

    def statistics(self) -> object:
        return self.db.get_statistics()


def edi_writer(storage: Storage, audit: bool) -> Callable[[list[Graph]], None]:
    def save(items: list[Graph]) -> None:
        with storage.unit_of_work(audit=audit) as uow:
            if len(items) == 1:
                uow.sessions.save_session(items[0])
            else:
                uow.sessions.batch_save_sessions(items)

    return save


def reference_writer(db: reference_database.Database) -> Callable[[list[Graph]], None]:
    """The reference class has no batch save (AdvancedDatabase's is a stub): a batch is a loop."""

    def save(items: list[Graph]) -> None:
        for g in items:
            if not db.save_session(g):  # it reports failure as False; a failed save must not look fast
                raise RuntimeError(f"reference Database.save_session failed for {g['id']}")

    return save


# -- databases per backend -----------------------------------------------------------------------
class Backend(Protocol):
    name: str

    def database(self, name: str, *, triggers: bool, source: str | None = None) -> str: ...
    def storage(self, db: str) -> Storage: ...
    def raw(self, db: str) -> RawSQLite | RawPostgres: ...
    def orm(self, db: str) -> PlainORM: ...
    def reference(self, name: str) -> reference_database.Database | None: ...
    def reference_base(self, name: str, items: list[Graph], distinct: bool) -> str | None: ...
    def analyze(self, db: str) -> None: ...
    def release(self, db: str) -> None: ...
    def close(self) -> None: ...


class SQLiteBackend:
    """Files in ``work``: a template migrated once, copied (SQLite's backup API) for every database."""

    name = "sqlite"

    def __init__(self, work: Path) -> None:
        self.work = work
        self.template = str(work / "template.db")
        self.open: dict[str, list[Any]] = {}
        Storage(f"sqlite:///{self.template}", backup_before_upgrade=False).close()

    def database(self, name: str, *, triggers: bool, source: str | None = None) -> str:
        path = str(self.work / f"{name}.db")
        src, dst = sqlite3.connect(source or self.template), sqlite3.connect(path)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
        if not triggers:
            raw_sqlite.strip_schema_extras(Path(path))
        return path

    def _keep(self, db: str, thing: Any) -> Any:
        self.open.setdefault(db, []).append(thing)
        return thing

    def storage(self, db: str) -> Storage:
        storage: Storage = self._keep(db, Storage(f"sqlite:///{db}", backup_before_upgrade=False))
        return storage

    def raw(self, db: str) -> RawSQLite:
        raw: RawSQLite = self._keep(db, RawSQLite(Path(db)))
        return raw

    def orm(self, db: str) -> PlainORM:
        return PlainORM(self.storage(db).engine)

    def reference(self, name: str) -> reference_database.Database:
        return reference_database.Database(str(self.work / f"{name}.db"))

    def reference_base(self, name: str, items: list[Graph], distinct: bool) -> str:
        path = str(self.work / f"{name}.db")
        times = None
        if distinct:  # the reference stores CURRENT_TIMESTAMP's format: seconds, UTC
            times = [datetime.fromisoformat(g["created_at"]).strftime("%Y-%m-%d %H:%M:%S") for g in items]
        reference_database.load_base(path, items, times)
        return path

    def analyze(self, db: str) -> None:
        """Nothing: SQLite databases are measured as applications leave them, without ANALYZE."""

    def release(self, db: str) -> None:
        for thing in self.open.pop(db, []):
            thing.close()

    def close(self) -> None:
        for db in list(self.open):
            self.release(db)


def pg_url(server: str, database: str) -> str:
    return make_url(server).set(drivername="postgresql", database=database).render_as_string(False)


class PostgresBackend:
    """Scratch databases on the server: a template migrated once, then ``CREATE DATABASE ... TEMPLATE``
    for every database of the run; all dropped at the end."""

    name = "postgres"

    def __init__(self, server: str) -> None:
        self.server = server
        self.prefix = f"edi_bench_{uuid.uuid4().hex[:8]}"
        self.admin = psycopg.connect(pg_url(server, make_url(server).database or "postgres"), autocommit=True)
        self.created: list[str] = []
        self.open: dict[str, list[Any]] = {}
        try:
            self.template = self._create("template", None)
            Storage(pg_url(server, self.template), backup_before_upgrade=False).close()
        except BaseException:
            self.close()
            raise

    def _create(self, name: str, template: str | None) -> str:
        database = f"{self.prefix}_{name}"
        self.created.append(database)
        suffix = f' TEMPLATE "{template}"' if template else ""
        self.admin.execute(f'CREATE DATABASE "{database}"{suffix}')
        return database

    def database(self, name: str, *, triggers: bool, source: str | None = None) -> str:
        database = self._create(name, source or self.template)
        if not triggers:
            raw_postgres.strip_schema_extras(pg_url(self.server, database))
        return database

    def _keep(self, db: str, thing: Any) -> Any:
        self.open.setdefault(db, []).append(thing)
        return thing

    def storage(self, db: str) -> Storage:
        storage: Storage = self._keep(db, Storage(pg_url(self.server, db), backup_before_upgrade=False))
        return storage

    def raw(self, db: str) -> RawPostgres:
        raw: RawPostgres = self._keep(db, RawPostgres(pg_url(self.server, db)))
        return raw

    def orm(self, db: str) -> PlainORM:
        return PlainORM(self.storage(db).engine)

    def reference(self, name: str) -> None:
        return None  # the reference class is SQLite only

    def reference_base(self, name: str, items: list[Graph], distinct: bool) -> None:
        return None

    def analyze(self, db: str) -> None:
        with psycopg.connect(pg_url(self.server, db), autocommit=True) as conn:
            conn.execute("ANALYZE")

    def release(self, db: str) -> None:
        for thing in self.open.pop(db, []):
            thing.close()

    def close(self) -> None:
        for db in list(self.open):
            self.release(db)
        while self.created:
            self.admin.execute(f'DROP DATABASE IF EXISTS "{self.created.pop()}" WITH (FORCE)')
        self.admin.close()


# -- measuring -----------------------------------------------------------------------------------
def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def p50(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def rotated(names: list[str], turn: int) -> list[str]:
    k = turn % len(names)
    return names[k:] + names[:k]


def write_rounds(
    writers: dict[str, Callable[[list[Graph]], None]], batches: dict[str, list[list[list[Graph]]]]
) -> dict[str, list[float]]:
    """Sessions per second of each writer, per round: round r gives every writer its r-th batch, the
    writers in a rotating order; a batch of one-graph lists is a run of single saves."""
    names = list(writers)
    rounds = len(batches[names[0]])
    rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in rotated(names, r):
            batch, write = batches[name][r], writers[name]
            start = time.perf_counter()
            for items in batch:
                write(items)
            rates[name].append(sum(len(items) for items in batch) / (time.perf_counter() - start))
    return rates


@dataclass
class ReadSamples:
    load: dict[str, list[float]] = field(default_factory=dict)
    history: dict[str, dict[int, list[float]]] = field(default_factory=dict)  # side -> mix -> samples
    statistics: dict[str, list[float]] = field(default_factory=dict)


def read_rounds(
    sides: dict[str, Reads],
    ids: Sequence[str],
    mixes: Sequence[Query],
    rng: random.Random,
    loads: int,
    queries: int,
    statistics_runs: int,
    only: dict[str, Sequence[int]] | None = None,
) -> ReadSamples:
    """Latencies of every side, call by call, the sides in a rotating order: loads of random graphs,
    history over the mixes in turn (a side in ``only`` runs only the mixes listed for it), statistics."""
    names = list(sides)
    out = ReadSamples(
        load={n: [] for n in names},
        history={n: {} for n in names},
        statistics={n: [] for n in names},
    )
    for i in range(loads):
        sid = ids[rng.randrange(len(ids))]
        for name in rotated(names, i):
            out.load[name].append(timed(lambda s=sides[name], i=sid: s.load(i)))  # type: ignore[misc]
    for i in range(queries):
        m = i % len(mixes)
        for name in rotated(names, i):
            if only is not None and name in only and m not in only[name]:
                continue
            q = mixes[m]
            sample = timed(lambda s=sides[name], q=q: s.history(q))  # type: ignore[misc]
            out.history[name].setdefault(m, []).append(sample)
    for i in range(statistics_runs):
        for name in rotated(names, i):
            out.statistics[name].append(timed(sides[name].statistics))
    return out


def history_p50(samples: dict[int, list[float]], mixes: Sequence[int] | None = None) -> float:
    return p50([s for m, values in samples.items() if mixes is None or m in mixes for s in values])


# -- correctness of the other sides --------------------------------------------------------------
def _differences(expected: Any, actual: Any, where: str) -> list[str]:
    """Where ``actual`` differs from ``expected``, comparing only the keys ``expected`` has."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected a mapping, got {actual!r}"]
        out: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{where}.{key}: missing")
            else:
                out += _differences(value, actual[key], f"{where}.{key}")
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected {len(expected)} items, got {actual!r}"]
        return [d for k, (e, a) in enumerate(zip(expected, actual, strict=True))
                for d in _differences(e, a, f"{where}[{k}]")]  # fmt: skip
    if isinstance(expected, float) and isinstance(actual, int | float):
        return [] if abs(expected - actual) <= 1e-9 * max(1.0, abs(expected)) else [f"{where}: {actual!r}"]
    return [] if expected == actual else [f"{where}: expected {expected!r}, got {actual!r}"]


def check_reads(
    edi: Storage, others: dict[str, Reads], ids: Sequence[str], mixes: Sequence[Query]
) -> list[str]:
    """What the hand-written and plain-ORM sides return differently from edi-storage: the same history
    rows (in order) for every mix, the same graphs for a few ids, the same statistics."""
    problems: list[str] = []
    for name, side in others.items():
        orm = name == "orm"
        for m, query in enumerate(mixes):
            expected = [s.model_dump() for s in edi.sessions.query_history(**query)]
            got = side.history(query)
            if orm:
                got = [{k: getattr(o, k) for k in (expected[0] if expected else {})} for o in got]
            problems += _differences(expected, list(got), f"{name} history mix {m} {query}")[:3]
        for sid in ids:
            detail = edi.sessions.load_session(sid)
            loaded: Any = side.load(sid)
            if orm and loaded is not None:
                loaded = graph_of(loaded)
            expected_graph = None if detail is None else detail.model_dump()
            problems += _differences(expected_graph, loaded, f"{name} load {sid}")[:3]
        problems += _differences(
            edi.sessions.get_statistics().model_dump(), side.statistics(), f"{name} statistics"
        )
    return problems


# -- one backend ---------------------------------------------------------------------------------
@dataclass
class Row:
    operation: str
    backend: str
    unit: str  # "sessions/s" (higher is better) or "ms" (lower is better)
    edi: float
    raw: float
    reference: float | None = None
    orm: float | None = None
    # the reference's history runs only the mixes it can express; edi-storage's p50 over those mixes
    edi_on_reference_mixes: float | None = None
    samples: int = 0
    ratio: float = 0.0
    target: str = ""
    met_raw: bool | None = None
    vs_reference: float | None = None
    vs_orm: float | None = None
    met: bool = True
    missed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        rate = self.unit == "sessions/s"
        self.ratio = self.edi / self.raw

        def faster(other: float | None, mine: float) -> float | None:  # > 1: edi-storage is faster
            if other is None:
                return None
            return mine / other if rate else other / mine

        self.vs_reference = faster(self.reference, self.edi_on_reference_mixes or self.edi)
        self.vs_orm = faster(self.orm, self.edi)
        kind, bound = next((t for key, t in TARGETS.items() if self.operation.startswith(key)), ("", 0.0))
        if kind:
            self.target = f"{kind} {bound:g}x"
            self.met_raw = self.ratio >= bound if kind == ">=" else self.ratio <= bound
            if not self.met_raw:
                self.missed.append("raw")
        if self.vs_reference is not None and self.vs_reference <= 1:
            self.missed.append("ref")
        if self.vs_orm is not None and self.vs_orm <= 1:
            self.missed.append("ORM")
        self.met = not self.missed


@dataclass
class Sizes:
    base: int
    sessions: int
    rounds: int
    bulk: int
    bulk_rounds: int
    loads: int
    queries: int
    statistics: int


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_backend(backend: Backend, sizes: Sizes, source: GraphSource, rng: random.Random) -> dict[str, Any]:
    """Every row of one backend, plus the history p50 of each mix and the checks' findings."""
    name = backend.name
    rows: list[Row] = []
    started = time.perf_counter()

    # -- writes: each side on a database of its own, made from the migrated template
    edi_db = backend.database("edi_writes", triggers=True)
    raw_db = backend.database("raw_writes", triggers=False)
    orm_db = backend.database("orm_writes", triggers=True)
    orm_plain_db = backend.database("orm_plain_writes", triggers=False)
    edi, raw = backend.storage(edi_db), backend.raw(raw_db)
    writers: dict[str, Callable[[list[Graph]], None]] = {
        "edi audited": edi_writer(edi, audit=True),
        "raw audited": partial(raw.save, audit=True),
        "edi audit off": edi_writer(edi, audit=False),
        "raw audit off": partial(raw.save, audit=False),
        "orm audited": backend.orm(orm_db).save,
        "orm audit off": backend.orm(orm_plain_db).save,
    }
    if (reference := backend.reference("reference_writes")) is not None:
        writers["reference"] = reference_writer(reference)
    per_round = max(1, sizes.sessions // sizes.rounds)
    singles = {w: [[[g] for g in source.take(per_round)] for _ in range(sizes.rounds)] for w in writers}
    bulks = {w: [[source.take(sizes.bulk)] for _ in range(sizes.bulk_rounds)] for w in writers}
    log(f"[{name}] single saves: {sizes.rounds} rounds x {per_round} per side, {len(writers)} sides")
    single = write_rounds(writers, singles)
    log(f"[{name}] bulk saves: {sizes.bulk_rounds} rounds x {sizes.bulk} sessions per side")
    bulk = write_rounds(writers, bulks)
    for label, rates in (("single save", single), ("bulk save", bulk)):
        for audit in ("audited", "audit off"):
            rows.append(Row(
                f"{label}, {audit}", name, "sessions/s",
                edi=p50(rates[f"edi {audit}"]), raw=p50(rates[f"raw {audit}"]),
                reference=p50(rates["reference"]) if "reference" in rates else None,
                orm=p50(rates[f"orm {audit}"]), samples=len(rates[f"edi {audit}"]),
            ))  # fmt: skip
    for db in (edi_db, raw_db, orm_db, orm_plain_db):
        backend.release(db)
    log(f"[{name}] writes done in {time.perf_counter() - started:.0f} s")

    # -- reads: the base data twice, shared and distinct timestamps; each side on its own copy
    base = source.take(sizes.base)
    by_mix: dict[str, Any] = {}
    problems: list[str] = []
    for label, items in (("shared ts", base), ("distinct ts", with_distinct_times(base, rng))):
        tag = label.split()[0]
        loading = time.perf_counter()
        edi_db = backend.database(f"edi_{tag}", triggers=True)
        loader = backend.storage(edi_db)
        with loader.unit_of_work(audit=False) as uow:  # one batch: one transaction, one timestamp
            if tag == "shared":
                uow.sessions.batch_save_sessions(items)
            else:
                for start in range(0, len(items), 5000):
                    uow.sessions.batch_save_sessions(items[start : start + 5000])
        backend.release(edi_db)
        backend.analyze(edi_db)
        raw_db = backend.database(f"raw_{tag}", triggers=False, source=edi_db)
        ref_db = backend.reference_base(f"reference_{tag}", items, distinct=tag == "distinct")
        log(f"[{name}] {label}: {len(items):,} sessions loaded in {time.perf_counter() - loading:.0f} s")
        edi = backend.storage(edi_db)
        raw = backend.raw(raw_db)
        sides: dict[str, Reads] = {"edi": EdiReads(edi), "raw": raw, "orm": backend.orm(edi_db)}
        if ref_db is not None:
            sides["reference"] = ReferenceReads(reference_database.Database(ref_db))
        mixes = resolve(MIXES, raw.median_created_at())
        ids = [g["id"] for g in items]
        problems += [f"[{name} {label}] {p}" for p in check_reads(edi, {"raw": raw, "orm": sides["orm"]},
                                                                  rng.sample(ids, 3), mixes)]  # fmt: skip
        samples = read_rounds(
            sides, ids, mixes, rng, sizes.loads, sizes.queries, sizes.statistics,
            only={"reference": REFERENCE_MIXES},
        )  # fmt: skip
        ref = "reference" in sides
        edi_ref = history_p50(samples.history["edi"], REFERENCE_MIXES) * 1000 if ref else None
        rows.append(Row(
            f"load whole graph p50, {label}", name, "ms",
            edi=p50(samples.load["edi"]) * 1000, raw=p50(samples.load["raw"]) * 1000,
            reference=p50(samples.load["reference"]) * 1000 if ref else None,
            orm=p50(samples.load["orm"]) * 1000, samples=len(samples.load["edi"]),
        ))  # fmt: skip
        rows.append(Row(
            f"query_history p50, {label}", name, "ms",
            edi=history_p50(samples.history["edi"]) * 1000, raw=history_p50(samples.history["raw"]) * 1000,
            reference=history_p50(samples.history["reference"]) * 1000 if ref else None,
            edi_on_reference_mixes=edi_ref,
            orm=history_p50(samples.history["orm"]) * 1000,
            samples=sum(len(v) for v in samples.history["edi"].values()),
        ))  # fmt: skip
        rows.append(Row(
            f"get_statistics p50, {label}", name, "ms",
            edi=p50(samples.statistics["edi"]) * 1000, raw=p50(samples.statistics["raw"]) * 1000,
            reference=p50(samples.statistics["reference"]) * 1000 if ref else None,
            orm=p50(samples.statistics["orm"]) * 1000, samples=len(samples.statistics["edi"]),
        ))  # fmt: skip
        by_mix[label] = [
            {
                "mix": {k: str(v) for k, v in mixes[m].items()},
                **{
                    side: p50(samples.history[side][m]) * 1000 for side in sides if m in samples.history[side]
                },
            }
            for m in range(len(mixes))
        ]
        for db in (edi_db, raw_db):
            backend.release(db)
    log(f"[{name}] done in {time.perf_counter() - started:.0f} s")
    return {
        "rows": rows,
        "history_by_mix": by_mix,
        "problems": problems,
        "seconds": time.perf_counter() - started,
    }


# -- output --------------------------------------------------------------------------------------
def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if unit == "sessions/s" else f"{value:.3f}"


def print_rows(rows: Sequence[Row]) -> None:
    header = (
        f"{'operation':<40} {'backend':<8} {'edi-storage':>11} {'fair raw':>10} {'ratio':>7} {'target':>8}"
        f" {'met?':<13} {'reference':>10} {'edi/ref':>8} {'plain ORM':>10} {'edi/ORM':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        name = f"{r.operation} ({r.unit})"
        met = "yes" if r.met else "NO: " + ", ".join(r.missed)
        star = "*" if r.edi_on_reference_mixes is not None else ""
        ref = _fmt(r.reference, r.unit) + star
        vs_ref = "-" if r.vs_reference is None else f"{r.vs_reference:.2f}x"
        vs_orm = "-" if r.vs_orm is None else f"{r.vs_orm:.2f}x"
        print(
            f"{name:<40} {r.backend:<8} {_fmt(r.edi, r.unit):>11} {_fmt(r.raw, r.unit):>10}"
            f" {r.ratio:>6.2f}x {r.target or '-':>8} {met:<13} {ref:>10} {vs_ref:>8}"
            f" {_fmt(r.orm, r.unit):>10} {vs_orm:>8}"
        )


NOTES = """
ratio: edi-storage / fair raw (sessions/s: higher is better; ms: lower is better). edi/ref, edi/ORM: how
many times faster edi-storage is than the reference Database class and a plain ORM unit of work (> 1:
faster). met?: the target against raw, and faster than both (what missed it: raw, ref, ORM).
fair raw: "audited" rows against hand-written SQL writing the same audit rows itself, "audit off" rows
against hand-written SQL without triggers; reads on a copy of the same data.
The reference writes no audit trail (both save rows compare with it); its bulk save is a loop of
save_session (it has no batch method). * its history runs only the mixes it can express (status,
search; newest first), and edi/ref compares it with edi-storage's p50 over the same mixes."""


def print_by_mix(report: dict[str, Any]) -> None:
    print("\nquery_history p50 by mix (ms):")
    for backend, result in report.items():
        for label, mixes in result["history_by_mix"].items():
            print(f"  {backend}, {label}:")
            for m in mixes:
                ratio = m["edi"] / m["raw"]
                extra = "".join(f"  {k} {m[k]:.3f}" for k in ("orm", "reference") if k in m)
                query = ", ".join(f"{k}={v}" for k, v in m["mix"].items()) or "(no filter)"
                print(f"    {query[:64]:<64} edi {m['edi']:.3f}  raw {m['raw']:.3f} ({ratio:.2f}x){extra}")


# -- kept for benchmarks/scale.py ----------------------------------------------------------------
def measure_reads(
    storage: Storage,
    raw: RawSQLite,
    edi_ids: list[str],
    raw_ids: list[str],
    rng: random.Random,
    loads: int,
    queries: int,
    statistics_runs: int,
) -> dict[str, dict[str, float]]:
    """Load p50 (``edi_ids[k]`` on one side, ``raw_ids[k]`` on the other), history p50 over the mixes
    and statistics p50, the two sides alternating."""
    mixes = resolve(MIXES, raw.median_created_at())
    edi = EdiReads(storage)
    edi_s: list[float] = []
    raw_s: list[float] = []
    for _ in range(loads):
        k = rng.randrange(len(raw_ids))
        edi_s.append(timed(lambda k=k: edi.load(edi_ids[k])))  # type: ignore[misc]
        raw_s.append(timed(lambda k=k: raw.load(raw_ids[k])))  # type: ignore[misc]
    results = {"load full graph p50 (ms)": {"edi": p50(edi_s) * 1000, "raw": p50(raw_s) * 1000}}
    edi_s, raw_s = [], []
    for i in range(queries):
        query = mixes[i % len(mixes)]
        edi_s.append(timed(lambda q=query: edi.history(q)))  # type: ignore[misc]
        raw_s.append(timed(lambda q=query: raw.history(q)))  # type: ignore[misc]
    results["query_history p50 (ms)"] = {"edi": p50(edi_s) * 1000, "raw": p50(raw_s) * 1000}
    edi_s = [timed(edi.statistics) for _ in range(statistics_runs)]
    raw_s = [timed(raw.statistics) for _ in range(statistics_runs)]
    results["get_statistics p50 (ms)"] = {"edi": p50(edi_s) * 1000, "raw": p50(raw_s) * 1000}
    return results


def print_table(results: dict[str, dict[str, float]]) -> None:
    """A dict of {operation: {"edi", "raw"}} (scale.py's rows) with the ratio set on each and the target."""
    print(f"{'operation':<36} {'edi-storage':>12} {'raw sqlite3':>12} {'ratio':>8}  target")
    for name, r in results.items():
        r["ratio"] = r["edi"] / r["raw"]
        key = name.replace("load full graph", "load whole graph")
        kind, bound = next((t for k, t in TARGETS.items() if key.startswith(k)), ("", 0.0))
        met = (r["ratio"] >= bound) if kind == ">=" else (r["ratio"] <= bound)
        target = f"{kind} {bound}x: {'met' if met else 'NOT met'}" if kind else "-"
        print(f"{name:<36} {r['edi']:>12.2f} {r['raw']:>12.2f} {r['ratio']:>7.2f}x  {target}")


# -- main ----------------------------------------------------------------------------------------
def postgres_server(url: str) -> str | None:
    """Why ``url`` cannot be used, or None when a connection works."""
    try:
        psycopg.connect(pg_url(url, make_url(url).database or "postgres"), connect_timeout=5).close()
    except psycopg.Error as exc:
        return str(exc).strip()
    return None


@contextmanager
def backends(args: argparse.Namespace, work: Path) -> Iterator[list[tuple[Backend, int]]]:
    chosen = args.backend or "both"
    out: list[tuple[Backend, int]] = []
    with ExitStack() as stack:
        if chosen in ("sqlite", "both"):
            sqlite_backend = SQLiteBackend(work)
            stack.callback(sqlite_backend.close)
            out.append((sqlite_backend, args.base))
        if chosen in ("postgres", "both"):
            if (why := postgres_server(args.pg_url)) is None:
                pg = PostgresBackend(args.pg_url)
                stack.callback(pg.close)
                out.append((pg, args.pg_base))
            elif args.backend is None:
                log(f"PostgreSQL at {args.pg_url} is not reachable ({why}): SQLite only")
            else:
                raise SystemExit(f"PostgreSQL at {args.pg_url} is not reachable: {why}")
        yield out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgres", "both"),
        help="default: both, or SQLite alone when the PostgreSQL server is not reachable",
    )
    parser.add_argument(
        "--pg-url",
        default=next((os.environ[v] for v in PG_URL_ENV if os.environ.get(v)), DEFAULT_PG_URL),
        help="the PostgreSQL server (a scratch "
        f"database per run is made on it); default ${PG_URL_ENV[0]}, ${PG_URL_ENV[1]} or "
        f"{DEFAULT_PG_URL}",
    )
    parser.add_argument("--base", type=int, default=20_000, help="base sessions for the reads, SQLite")
    parser.add_argument("--pg-base", type=int, default=6_000, help="base sessions for the reads, PostgreSQL")
    parser.add_argument("--sessions", type=int, default=400, help="single saves per side")
    parser.add_argument("--rounds", type=int, default=8, help="rounds the single saves are split into")
    parser.add_argument("--bulk", type=int, default=400, help="sessions per bulk save")
    parser.add_argument("--bulk-rounds", type=int, default=5, help="bulk saves per side")
    parser.add_argument("--loads", type=int, default=400, help="whole-graph loads per side and dataset")
    parser.add_argument("--queries", type=int, default=360, help="history queries per side and dataset")
    parser.add_argument(
        "--statistics", type=int, default=20, help="get_statistics calls per side and dataset"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where latest.json goes")
    parser.add_argument(
        "--work", type=Path, help="directory for the SQLite files (default: temporary, removed)"
    )
    args = parser.parse_args(argv)  # fmt: skip

    started = time.perf_counter()
    seed(args.seed)
    rng = random.Random(args.seed)
    work = args.work or Path(tempfile.mkdtemp(prefix="edi-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    source = GraphSource(rng)
    rows: list[Row] = []
    report: dict[str, Any] = {}
    try:
        with backends(args, work) as chosen:
            for backend, base in chosen:
                sizes = Sizes(base, args.sessions, args.rounds, args.bulk, args.bulk_rounds,
                              args.loads, args.queries, args.statistics)  # fmt: skip
                result = run_backend(backend, sizes, source, rng)
                result["sizes"] = asdict(sizes)
                rows += result["rows"]
                report[backend.name] = result
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    wall = time.perf_counter() - started

    print()
    print_rows(rows)
    print(NOTES)
    print_by_mix(report)
    problems = [p for r in report.values() for p in r["problems"]]
    if problems:
        print(f"\nWARNING: {len(problems)} differences between edi-storage and the other sides' results:")
        for p in problems[:20]:
            print(f"  {p}")
    sizes_text = "; ".join(
        f"{b}: {r['sizes']['base']:,} base sessions, {r['sizes']['sessions']} single saves and "
        f"{r['sizes']['bulk_rounds']} x {r['sizes']['bulk']} bulk per side, {r['seconds']:.0f} s"
        for b, r in report.items()
    )
    print(f"\n{sizes_text}; wall time {wall:.0f} s")
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / "latest.json"
    out.write_text(
        json.dumps(
            {
                "args": vars(args),
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "wall_seconds": wall,
                "environment": {
                    "python": sys.version.split()[0],
                    "sqlite": sqlite3.sqlite_version,
                    "cpus": os.cpu_count(),
                },
                "backends": {
                    b: {"sizes": r["sizes"], "seconds": r["seconds"], "history_by_mix": r["history_by_mix"],
                        "problems": r["problems"]}
                    for b, r in report.items()
                },
                "results": {f"{r.operation} [{r.backend}]": asdict(r) for r in rows},
            },
            indent=2,
            default=str,
        )
    )  # fmt: skip
    print(f"results in {out}")


if __name__ == "__main__":
    main()
