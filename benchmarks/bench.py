"""edi-storage against hand-written SQL with the standard sqlite3 module, in the same process.

Both sides work on the same kind of file (WAL, synchronous=NORMAL, the same schema and indexes: the raw
side opens a database that edi-storage created) with the same inputs, and run alternately, round by
round, so that machine noise hits both. Printed: operation, edi-storage figure, raw figure, ratio
(edi-storage / raw for rates; raw / edi-storage-style "x times slower" for latencies). Results are also
written as JSON to benchmarks/results/latest.json.

    python benchmarks/bench.py [--sessions 2000] [--bulk 2000] [--loads 500] [--queries 400] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edi_storage import Storage
from edi_storage.testing import SessionCreateFactory, seed

RESULTS = Path(__file__).with_name("results")
# the targets of the issue that asked for this benchmark, by the start of the row's name
TARGETS = {
    "single save": (">=", 0.5),
    "bulk save": (">=", 0.5),
    "load full graph": ("<=", 3.0),
    "query_history": ("<=", 2.0),
}
NOW = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
J = json.dumps


def graphs(count: int) -> list[dict[str, Any]]:
    """Session graphs of 12 rows: 1 session, 3 prompts, 5 entities (bbox JSON), 2 validations, 1 feedback."""
    return [SessionCreateFactory.build().model_dump(mode="json", exclude_none=True) for _ in range(count)]


class Raw:
    """What a careful developer writes by hand: one long-lived connection, executemany, no ORM."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")

    def save(self, items: list[dict[str, Any]]) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        c.executemany(
            "INSERT INTO sessions (id, image_path, naive_prompt, status, final_alignment_score,"
            " processing_time, model_version, session_tags, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    g["id"],
                    g["image_path"],
                    g["naive_prompt"],
                    g["status"],
                    g.get("final_alignment_score"),
                    g.get("processing_time"),
                    g.get("model_version"),
                    J(g.get("session_tags")),
                    NOW,
                    NOW,
                )
                for g in items
            ],
        )
        c.executemany(
            "INSERT INTO prompts (session_id, iteration, positive_prompt, negative_prompt, quality_score,"
            " generation_time, model_confidence, generation_parameters, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    g["id"],
                    p["iteration"],
                    p["positive_prompt"],
                    p["negative_prompt"],
                    p.get("quality_score"),
                    p.get("generation_time"),
                    p.get("model_confidence"),
                    J(p.get("generation_parameters")),
                    NOW,
                    NOW,
                )
                for g in items
                for p in g["prompts"]
            ],
        )
        c.executemany(
            "INSERT INTO entities (session_id, entity_id, label, confidence, bbox_json, mask_path, color_hex,"
            " area_percent, semantic_label) VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (
                    g["id"],
                    e["entity_id"],
                    e["label"],
                    e["confidence"],
                    J(e.get("bbox")),
                    e.get("mask_path"),
                    e.get("color_hex"),
                    e.get("area_percent"),
                    e.get("semantic_label"),
                )
                for g in items
                for e in g["entities"]
            ],
        )
        c.executemany(
            "INSERT INTO validations (session_id, attempt_number, alignment_score, preserved_count,"
            " modified_count, unintended_count, user_feedback, quality_metrics, created_at)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (
                    g["id"],
                    v["attempt_number"],
                    v.get("alignment_score"),
                    v.get("preserved_count"),
                    v.get("modified_count"),
                    v.get("unintended_count"),
                    v.get("user_feedback"),
                    J(v.get("quality_metrics")),
                    NOW,
                )
                for g in items
                for v in g["validations"]
            ],
        )
        c.executemany(
            "INSERT INTO user_feedback (session_id, feedback_type, comments, rating, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?)",
            [
                (g["id"], f["feedback_type"], f.get("comments"), f.get("rating"), NOW, NOW)
                for g in items
                if (f := g.get("user_feedback"))
            ],
        )
        c.execute("COMMIT")

    def load(self, session_id: str) -> dict[str, Any]:
        c = self.conn
        c.row_factory = sqlite3.Row
        try:
            c.execute("BEGIN")
            session = dict(c.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone())
            session["session_tags"] = json.loads(session["session_tags"] or "null")
            session["prompts"] = [
                {**dict(r), "generation_parameters": json.loads(r["generation_parameters"] or "null")}
                for r in c.execute(
                    "SELECT * FROM prompts WHERE session_id = ? ORDER BY iteration, id", (session_id,)
                )
            ]
            session["entities"] = [
                {**dict(r), "bbox": json.loads(r["bbox_json"] or "null")}
                for r in c.execute("SELECT * FROM entities WHERE session_id = ? ORDER BY id", (session_id,))
            ]
            session["validations"] = [
                {**dict(r), "quality_metrics": json.loads(r["quality_metrics"] or "null")}
                for r in c.execute(
                    "SELECT * FROM validations WHERE session_id = ? ORDER BY attempt_number, id",
                    (session_id,),
                )
            ]
            session["feedback"] = [
                dict(r)
                for r in c.execute(
                    "SELECT * FROM user_feedback WHERE session_id = ? ORDER BY created_at, id", (session_id,)
                )
            ]
            c.execute("COMMIT")
            return session
        finally:
            c.row_factory = None

    def history(self, query: dict[str, Any]) -> list[tuple[Any, ...]]:
        where, params = [], []
        if "status_filter" in query:
            where.append("status = ?")
            params.append(query["status_filter"])
        if "min_score" in query:
            where.append("final_alignment_score >= ?")
            params.append(query["min_score"])
        if "search_term" in query:
            where.append("(image_path LIKE ? ESCAPE '\\' OR naive_prompt LIKE ? ESCAPE '\\')")
            params += [f"%{query['search_term']}%"] * 2
        sql = (
            "SELECT id, created_at, updated_at, image_path, naive_prompt, status, final_alignment_score,"
            " user_id, project_id FROM sessions"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC LIMIT 50"
        return self.conn.execute(sql, params).fetchall()

    def statistics(self) -> dict[str, Any]:
        rows = self.conn.execute(
            "SELECT status, count(*), avg(CASE WHEN status = 'completed' THEN final_alignment_score END)"
            " FROM sessions GROUP BY status"
        ).fetchall()
        total = sum(r[1] for r in rows)
        return {"total": total, "breakdown": {r[0]: r[1] for r in rows}}


# query_history filter mixes: status + min score, search term, status alone, none
MIXES: list[dict[str, Any]] = [
    {"status_filter": "completed", "min_score": 0.7},
    {"search_term": "sky"},
    {"status_filter": "failed"},
    {},
]


def measure_reads(
    storage: Storage,
    raw: Raw,
    edi_ids: list[str],
    raw_ids: list[str],
    rng: random.Random,
    loads: int,
    queries: int,
    statistics_runs: int,
) -> dict[str, dict[str, float]]:
    """Load p50 (random graphs: ``edi_ids[k]`` on one side, ``raw_ids[k]`` on the other), history p50
    over the filter mixes and statistics p50, each side alternating with the other."""
    results: dict[str, dict[str, float]] = {}
    edi_s, raw_s = [], []
    for _ in range(loads):
        k = rng.randrange(len(raw_ids))
        edi_s.append(timed(lambda k=k: storage.sessions.load_session(edi_ids[k])))  # type: ignore[misc]
        raw_s.append(timed(lambda k=k: raw.load(raw_ids[k])))  # type: ignore[misc]
    results["load full graph p50 (ms)"] = {"edi": p50(edi_s) * 1000, "raw": p50(raw_s) * 1000}
    edi_s, raw_s = [], []
    for i in range(queries):
        query = MIXES[i % len(MIXES)]
        edi_s.append(timed(lambda q=query: storage.sessions.query_history(limit=50, **q)))  # type: ignore[misc]
        raw_s.append(timed(lambda q=query: raw.history(q)))  # type: ignore[misc]
    results["query_history p50 (ms)"] = {"edi": p50(edi_s) * 1000, "raw": p50(raw_s) * 1000}
    edi_s = [timed(storage.sessions.get_statistics) for _ in range(statistics_runs)]
    raw_s = [timed(raw.statistics) for _ in range(statistics_runs)]
    results["get_statistics p50 (ms)"] = {"edi": p50(edi_s) * 1000, "raw": p50(raw_s) * 1000}
    return results


def print_table(results: dict[str, dict[str, float]]) -> None:
    """Operation, both figures, the ratio (set on each row) and the target where there is one.

    edi-storage / raw: for a rate 1.0x is as fast (higher is better); for a latency 2.0x is twice as
    slow (lower is better).
    """
    print(f"{'operation':<36} {'edi-storage':>12} {'raw sqlite3':>12} {'ratio':>8}  target")
    for name, r in results.items():
        r["ratio"] = r["edi"] / r["raw"]
        kind, bound = next((t for key, t in TARGETS.items() if name.startswith(key)), ("", 0.0))
        met = (r["ratio"] >= bound) if kind == ">=" else (r["ratio"] <= bound)
        target = f"{kind} {bound}x: {'met' if met else 'NOT met'}" if kind else "-"
        print(f"{name:<36} {r['edi']:>12.2f} {r['raw']:>12.2f} {r['ratio']:>7.2f}x  {target}")


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=2000, help="single saves per side")
    parser.add_argument("--bulk", type=int, default=2000, help="sessions per bulk save")
    parser.add_argument("--loads", type=int, default=500)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON results go")
    args = parser.parse_args()

    seed(args.seed)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="edi-bench-"))
    storage = Storage(f"sqlite:///{work / 'edi.db'}", backup_before_upgrade=False)
    for name in ("raw.db", "raw-audited.db"):  # the same schema and indexes, made by the same migrations
        Storage(f"sqlite:///{work / name}").close()
    # Two hand-written sides: one on a copy of the schema without the audit triggers (what a developer
    # without an audit trail writes), one on the schema as it is, where the same triggers fire.
    raw, raw_audited = Raw(work / "raw.db"), Raw(work / "raw-audited.db")
    for (trigger,) in raw.conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        raw.conn.execute(f"DROP TRIGGER {trigger}")

    def edi_save(items: list[dict[str, Any]], audit: bool) -> None:
        with storage.unit_of_work(audit=audit) as uow:
            if len(items) == 1:
                uow.sessions.save_session(items[0])
            else:
                uow.sessions.batch_save_sessions(items)

    def fresh(count: int) -> list[dict[str, Any]]:
        return [{**g, "id": str(uuid.uuid4())} for g in graphs(count)]

    results: dict[str, dict[str, float]] = {}
    # each pairing: (edi-storage audited or not, the raw side that matches it)
    pairings = {"audited": (True, raw_audited), "audit off": (False, raw)}
    singles = {label: (fresh(args.sessions), fresh(args.sessions)) for label in pairings}
    bulk = {label: (fresh(args.bulk), fresh(args.bulk)) for label in pairings}
    times = {label: [0.0, 0.0] for label in pairings}
    for i in range(args.sessions):  # single saves, one transaction each, all four sides alternating
        for label, (audit, their_side) in pairings.items():
            mine, theirs = singles[label]
            times[label][0] += timed(lambda: edi_save([mine[i]], audit))  # noqa: B023
            times[label][1] += timed(lambda: their_side.save([theirs[i]]))  # noqa: B023
    for label, (edi_t, raw_t) in times.items():
        results[f"single save, {label} (sessions/s)"] = {
            "edi": args.sessions / edi_t,
            "raw": args.sessions / raw_t,
        }
    half = args.bulk // 2
    times = {label: [0.0, 0.0] for label in pairings}
    for part in (slice(0, half), slice(half, None)):  # bulk saves, in two halves, alternating
        for label, (audit, their_side) in pairings.items():
            mine, theirs = bulk[label]
            times[label][0] += timed(lambda: edi_save(mine[part], audit))  # noqa: B023
            times[label][1] += timed(lambda: their_side.save(theirs[part]))  # noqa: B023
    for label, (edi_t, raw_t) in times.items():
        results[f"bulk save, {label} (sessions/s)"] = {"edi": args.bulk / edi_t, "raw": args.bulk / raw_t}

    # loads of random full graphs
    edi_ids = [g["id"] for label in pairings for g in singles[label][0] + bulk[label][0]]
    raw_ids = [g["id"] for g in singles["audit off"][1] + bulk["audit off"][1]]
    results |= measure_reads(
        storage, raw, edi_ids, raw_ids, rng, args.loads, args.queries, statistics_runs=20
    )

    print_table(results)
    audited, unaudited = (
        results["bulk save, audited (sessions/s)"],
        results["bulk save, audit off (sessions/s)"],
    )
    print(
        f"\naudit trail on a bulk save: edi-storage audited runs at {audited['edi'] / unaudited['edi']:.2f}x"
        f" its unaudited rate; hand-written SQL with the same triggers at"
        f" {audited['raw'] / unaudited['raw']:.2f}x"
    )
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "latest.json").write_text(
        json.dumps({"args": vars(args), "results": results}, indent=2, default=str)
    )
    print(f"\nsessions in database: {len(edi_ids)}; results in {args.results / 'latest.json'}")
    storage.close()


if __name__ == "__main__":
    main()
