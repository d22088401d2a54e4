"""``make bench-cli``: how long the command line takes to answer, against sqlite-utils doing the same.

    python benchmarks/cli_startup.py [--rounds 15] [--sessions 50]

Two pairs, each run as a fresh process (what a user waits for at the prompt):

* ``edi-storage --help`` against ``sqlite-utils --help``;
* ``edi-storage stats`` (counts per status, average score, success rate) against
  ``sqlite-utils tables --counts`` (rows per table), on the same small SQLite file;

and, for scale, the floor under every command that opens a database: a Python that only imports
SQLAlchemy's ORM and Pydantic, against the same ``sqlite-utils tables --counts``.

The commands alternate within each round (the order rotating), and the median wall time of the rounds is
reported with the ratio, next to the 1.5x target. Both tools run from the same virtual environment.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 1.5


def wall_time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--sessions", type=int, default=50)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    edi, sqlite_utils = str(bin_dir / "edi-storage"), str(bin_dir / "sqlite-utils")
    with tempfile.TemporaryDirectory() as work:
        db = Path(work) / "small.db"
        url = f"sqlite:///{db}"
        subprocess.run([edi, "--url", url, "demo", "--sessions", str(args.sessions)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        pairs = {
            "--help": ([edi, "--help"], [sqlite_utils, "--help"]),
            "stats / tables --counts": (
                [edi, "--url", url, "stats"],
                [sqlite_utils, "tables", "--counts", str(db)],
            ),
            # The floor under any command that opens a database: importing SQLAlchemy's ORM and Pydantic.
            "floor / tables --counts": (
                [sys.executable, "-c", "import sqlalchemy.orm, pydantic, pydantic_settings"],
                [sqlite_utils, "tables", "--counts", str(db)],
            ),
        }
        times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in pairs}
        for ours, theirs in pairs.values():  # once each, untimed: the file cache is warm for both
            wall_time(ours)
            wall_time(theirs)
        for round_ in range(args.rounds):
            for name, (ours, theirs) in pairs.items():
                first, second = (ours, theirs) if round_ % 2 == 0 else (theirs, ours)
                measured = {id(first): wall_time(first), id(second): wall_time(second)}
                times[name][0].append(measured[id(ours)])
                times[name][1].append(measured[id(theirs)])
    print(f"{'command':<26}{'edi-storage':>12}{'sqlite-utils':>14}{'ratio':>8}  target <= {TARGET}x")
    for name, (ours_t, theirs_t) in times.items():
        ours_m, theirs_m = statistics.median(ours_t), statistics.median(theirs_t)
        ratio = ours_m / theirs_m
        verdict = "met" if ratio <= TARGET else "NOT met"
        print(f"{name:<26}{ours_m * 1000:>10.0f}ms{theirs_m * 1000:>12.0f}ms{ratio:>7.2f}x  {verdict}")
    print(f"medians of {args.rounds} interleaved rounds, each command a fresh process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
