"""How edi-storage's costs grow from thousands to millions of sessions (``make bench-scale``).

For each size: an export of N twelve-row session graphs is written as JSON Lines and loaded with
``edi-storage import`` in a child process (its progress bar on stderr, its peak memory read from the
kernel); then, on that database, edi-storage and hand-written sqlite3 (on the same file, alternating)
load random graphs, query history, compute statistics and save single sessions. Last, a copy of the
largest database is taken down to revision 0001 and ``alembic upgrade head`` is timed on it.

    python benchmarks/scale.py [--sizes 10000,1000000] [--audit] [--work DIR]

Printed: one table per size, then growth (largest / smallest) and the upgrade time; written to
benchmarks/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import Raw, graphs, measure_reads, print_table, timed

from edi_storage import Storage
from edi_storage.ops.transfer import ExportWriter
from edi_storage.testing import seed

RESULTS = Path(__file__).with_name("results")
BIN = Path(sys.executable).parent
TEMPLATES = 1000


def write_export(path: Path, count: int) -> None:
    """``count`` distinct graphs (ids and creation times vary over a thousand factory templates),
    streamed to disk so that generating a million needs no more memory than a thousand."""
    templates = graphs(TEMPLATES)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8") as out:
        writer = ExportWriter(out)  # records, then the trailer import checks them against
        for i in range(count):
            data = {
                **templates[i % TEMPLATES],
                "id": f"scale-{i:08d}",
                "created_at": (start + timedelta(seconds=30 * i)).isoformat(),
            }
            writer.write("session", data)
        writer.close()


def run_import(db: Path, export: Path, audit: bool) -> dict[str, float]:
    """``edi-storage import`` in a child process: seconds, and its peak resident memory in MB. The
    database is created first by ``edi-storage upgrade`` (import, like every command but upgrade,
    refuses a missing database)."""
    url = f"sqlite:///{db}"
    subprocess.run([str(BIN / "edi-storage"), "--url", url, "upgrade"], check=True, stdout=subprocess.DEVNULL)
    command = [str(BIN / "edi-storage"), "--url", url, "import", str(export)]
    if not audit:
        command.append("--no-audit")
    start = time.perf_counter()
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"import failed with status {status}")
    return {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024}  # ru_maxrss is in KiB on Linux


def measure(db: Path, count: int, rng: random.Random, samples: int) -> dict[str, dict[str, float]]:
    storage = Storage(f"sqlite:///{db}")
    raw = Raw(db)
    ids = [f"scale-{k:08d}" for k in range(count)]
    results = measure_reads(storage, raw, ids, ids, rng, samples, samples, statistics_runs=5)
    # single saves into the large database: both sides fire the same audit triggers
    fresh = graphs(samples)
    theirs = [{**g, "id": str(uuid.uuid4())} for g in graphs(samples)]
    edi_t = raw_t = 0.0
    for mine, other in zip(fresh, theirs, strict=True):
        edi_t += timed(lambda m=mine: storage.sessions.save_session(m))  # type: ignore[misc]
        raw_t += timed(lambda o=other: raw.save([o]))  # type: ignore[misc]
    results["single save (sessions/s)"] = {"edi": samples / edi_t, "raw": samples / raw_t}
    storage.maintenance.checkpoint()
    storage.close()
    raw.conn.close()
    return results


def upgrade_from_first_revision(db: Path, work: Path) -> dict[str, float]:
    """A copy of ``db`` down to revision 0001, then the timed ``alembic upgrade head`` a user runs."""
    copy = work / "upgrade.db"
    shutil.copyfile(db, copy)
    env = {**os.environ, "EDI_STORAGE_URL": f"sqlite:///{copy}"}
    alembic = str(BIN / "alembic")
    root = Path(__file__).resolve().parents[1]
    down = timed(lambda: subprocess.run([alembic, "downgrade", "0001"], env=env, cwd=root, check=True))
    up = timed(lambda: subprocess.run([alembic, "upgrade", "head"], env=env, cwd=root, check=True))
    copy.unlink()
    return {"downgrade to 0001 (s)": down, "upgrade 0001 -> head (s)": up}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,1000000", help="comma-separated session counts")
    parser.add_argument("--samples", type=int, default=300, help="loads, queries and saves per size")
    parser.add_argument("--audit", action="store_true", help="record the import in the audit trail")
    parser.add_argument("--work", type=Path, help="directory for the databases (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--reuse", action="store_true", help="measure the databases a previous run left in --work again"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON results go")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = args.work or Path(tempfile.mkdtemp(prefix="edi-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    seed(args.seed)
    rng = random.Random(args.seed)
    report: dict[str, Any] = {"args": {**vars(args), "work": str(work)}, "sizes": {}}
    db = work / "none.db"
    for count in sizes:
        export, db = work / f"export-{count}.jsonl", work / f"scale-{count}.db"
        imported: dict[str, float] = {}
        if not (args.reuse and db.exists()):
            db.unlink(missing_ok=True)
            started = time.perf_counter()
            write_export(export, count)
            print(
                f"\n{count:,} sessions: export written in {time.perf_counter() - started:.0f} s", flush=True
            )
            imported = run_import(db, export, args.audit)
            export.unlink()
            imported["sessions/s"] = count / imported["seconds"]
        results = measure(db, count, rng, args.samples)
        size = db.stat().st_size
        report["sizes"][count] = {
            "import": imported,
            "bytes per session": size / count,
            "database MB": size / 2**20,
            "results": results,
        }
        if imported:
            print(
                f"import: {imported['seconds']:.0f} s ({imported['sessions/s']:,.0f} sessions/s), "
                f"peak memory {imported['peak_mb']:.0f} MB"
            )
        print(f"{count:,} sessions: database {size / 2**20:,.0f} MB, {size / count:,.0f} bytes per session")
        print_table(results)
    if len(sizes) > 1:
        small, large = report["sizes"][sizes[0]]["results"], report["sizes"][sizes[-1]]["results"]
        growth = {name: large[name]["edi"] / small[name]["edi"] for name in small}
        report["growth"] = growth
        print(f"\ngrowth {sizes[0]:,} -> {sizes[-1]:,} sessions (edi-storage, larger / smaller):")
        for name, factor in growth.items():
            print(f"  {name:<28} {factor:.2f}x")
    report["upgrade"] = upgrade_from_first_revision(db, work)
    print(
        f"\non the {sizes[-1]:,}-session database: "
        + ", ".join(f"{k} {v:.1f}" for k, v in report["upgrade"].items())
    )
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "scale.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"results in {args.results / 'scale.json'}; databases in {work}")


if __name__ == "__main__":
    main()
