"""Helpers of the load and fault scenarios: child processes that are always reaped, polling with a
deadline, and raw SQLite checks that do not go through the code under test."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool

# The tables that hang off a session; none may keep a row whose session is gone.
SESSION_CHILDREN = ("prompts", "entities", "validations", "user_feedback")
REPOSITORY = Path(__file__).parents[2]
# Given to every child script: the parent polls for a child's signal files and reads them as soon as they
# exist, so a child writes each one whole (a temporary file, then a rename) and never half of one.
CHILD_PRELUDE = """
def publish(path, text):
    import os
    partial = str(path) + ".part"
    with open(partial, "w") as handle:
        handle.write(text)
    os.replace(partial, path)
"""


@dataclass
class Child:
    """A Python child process running a script given as text; stdout and stderr go to ``log``."""

    process: subprocess.Popen[bytes]
    log: Path
    _log_file: IO[bytes]

    def wait(self, timeout: float = 120) -> int:
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")

    def wait_for_file(self, path: Path, timeout: float = 120) -> None:
        """Until ``path`` exists; fails with the child's output if it exits (or the time is up) first."""
        deadline = time.monotonic() + timeout
        while not path.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                if path.exists():
                    return
                raise AssertionError(
                    f"no {path.name} from the child (exit {self.process.poll()}):\n{self.output()}"
                )
            time.sleep(0.002)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)

    def close(self) -> None:
        """Kill it if it still runs, reap it, close its log."""
        self.kill()
        self._log_file.close()


Spawn = Callable[..., Child]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """``spawn(script, *args, env=..., cwd=...)`` starts ``python -c script args``; every child still
    running when the test ends is killed and reaped, whatever the test's outcome."""
    children: list[Child] = []

    def start(script: str, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Child:
        log = tmp_path / f"child-{len(children)}.log"
        log_file = log.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-c", CHILD_PRELUDE + script, *args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
        child = Child(process, log, log_file)
        children.append(child)
        return child

    try:
        yield start
    finally:
        for child in children:
            child.close()


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(interval)


def migrated_file(template: Path, target: Path) -> str:
    """A fresh database file at head (a copy of the run's migrated template); its URL."""
    shutil.copy(template, target)
    return f"sqlite:///{target}"


def sqlite_rows(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of a query on a raw sqlite3 connection, closed afterwards (never through edi-storage)."""
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, params).fetchall()


def integrity(path: Path) -> tuple[str, list[tuple[Any, ...]]]:
    """``PRAGMA integrity_check`` and ``PRAGMA foreign_key_check`` of a SQLite file."""
    with closing(sqlite3.connect(path)) as conn:
        check = "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
        return check, conn.execute("PRAGMA foreign_key_check").fetchall()


def orphans(path: Path) -> dict[str, int]:
    """Rows per child table whose session does not exist."""
    return {
        table: sqlite_rows(
            path,
            f"SELECT count(*) FROM {table} WHERE session_id NOT IN (SELECT id FROM sessions)",
        )[0][0]
        for table in SESSION_CHILDREN
    }


def rss_bytes() -> int:
    """This process's resident set size (Linux)."""
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def checked_out(engine: Engine) -> int:
    """Connections of the engine's pool that are in use right now."""
    pool = engine.pool
    assert isinstance(pool, QueuePool), pool
    return pool.checkedout()
