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
def test_benchmark_runs_and_reports_every_operation(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--sessions", "20", "--bulk", "40",
         "--loads", "10", "--queries", "8", "--results", str(tmp_path)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for row in ("single save", "bulk save", "load full graph", "query_history", "get_statistics"):
        assert row in result.stdout
    results = json.loads((tmp_path / "latest.json").read_text())["results"]
    assert all(r["ratio"] > 0 for r in results.values())


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
