"""The benchmark still runs (tiny sizes; no timing is asserted, only that every row is printed and the
JSON written). Run with `pytest -m bench`; the default run leaves it out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.bench
def test_benchmark_runs_and_reports_every_operation() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--sessions", "20", "--bulk", "40",
         "--loads", "10", "--queries", "8"],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for row in ("single save", "bulk save", "load full graph", "query_history", "get_statistics"):
        assert row in result.stdout
    results = json.loads((ROOT / "benchmarks" / "results" / "latest.json").read_text())["results"]
    assert all(r["ratio"] > 0 for r in results.values())
