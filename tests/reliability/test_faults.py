"""Faults a user can really hit: a writer killed mid-batch, a full disk, a read-only file or directory,
a file that is not a database, a migration killed half-way, a PostgreSQL connection dropped in a
transaction. Each ends in a typed error or a clean recovery, and never in lost or half-written data.

Covered elsewhere, not repeated here: a missing directory (tests/test_engine.py::
test_a_missing_directory_is_a_clear_error) and a lock held past the busy timeout (tests/test_engine.py::
test_a_lock_held_past_the_busy_timeout_is_a_typed_busy_error).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import URL, create_engine, event, text

from edi_storage import DatabaseUnavailable, SchemaError, Storage, StorageError, StorageFull
from edi_storage.cli import app
from edi_storage.migrate.scripts import head_revision
from edi_storage.testing import SessionCreateFactory
from edi_storage.testing.fixtures import empty_postgres_tables

from ..cli_runner import cli_runner
from .conftest import (
    REPOSITORY,
    SESSION_CHILDREN,
    Spawn,
    checked_out,
    integrity,
    migrated_file,
    orphans,
    sqlite_rows,
    wait_for,
)

FIXTURES = REPOSITORY / "tests" / "fixtures" / "revisions"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- a writer killed in the middle of a batch ------------------------------------------------------
BATCH = 5000
# Builds the batch (20 factory graphs, copied under fresh ids), writes the ids down, says it is about
# to write, and writes it in one batch_save_sessions call; ".done" appears only if the call returned.
BATCH_WRITER = """
import json, sys, uuid
from pathlib import Path
from edi_storage import Storage
from edi_storage.testing import SessionCreateFactory, seed

url, count, marker = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
seed(4)
templates = [SessionCreateFactory.build().model_dump(mode="json") for _ in range(20)]
batch = [{**templates[i % 20], "id": str(uuid.uuid4())} for i in range(count)]
storage = Storage(url)
storage.sessions.get_session_count()
publish(Path(f"{marker}.ids"), json.dumps([item["id"] for item in batch]))
marker.touch()
storage.sessions.batch_save_sessions(batch)
Path(f"{marker}.done").touch()
"""


@pytest.mark.reliability
@pytest.mark.parametrize("wal_bytes", [1 << 20, 24 << 20], ids=["early", "late"])
def test_a_writer_killed_mid_batch_leaves_the_batch_whole_or_absent(
    wal_bytes: int, spawn: Spawn, tmp_path: Path, sqlite_template: Path
) -> None:
    """SIGKILL once the batch's pages are pouring into the WAL (1 MB in, or 24 MB of about 49): the
    database opens, passes integrity and foreign key checks, has no orphan child rows and no audit rows
    of the batch, holds either every session of the batch or none, and takes the next write."""
    path = tmp_path / "killed.db"
    url = migrated_file(sqlite_template, path)
    with Storage(url) as storage:
        before = storage.sessions.batch_save_sessions([SessionCreateFactory.build() for _ in range(30)])
    marker, wal = tmp_path / "writing", Path(f"{path}-wal")
    writer = spawn(BATCH_WRITER, url, str(BATCH), str(marker))
    writer.wait_for_file(marker)
    started = time.monotonic()
    wait_for(
        lambda: (wal.exists() and wal.stat().st_size >= wal_bytes) or writer.process.poll() is not None,
        120,
        f"{wal_bytes} bytes in the WAL",
        interval=0.001,
    )
    writer.process.send_signal(signal.SIGKILL)
    killed_after = time.monotonic() - started
    wal_at_kill = wal.stat().st_size
    assert writer.wait(30) == -signal.SIGKILL, writer.output()
    assert not Path(f"{marker}.done").exists(), "the batch finished before the kill: nothing was tested"
    batch = json.loads(Path(f"{marker}.ids").read_text())

    with Storage(url) as storage:
        kept = storage.sessions.load_sessions(batch)
        count = storage.sessions.get_session_count()
        audited = storage.audit.get_audit_trail(table_name="sessions", record_id=batch[0])
        assert len(kept) in (0, BATCH), f"{len(kept)} of {BATCH} sessions of one batch survived"
        assert count == len(before) + len(kept)
        assert len(audited) == (1 if kept else 0)
        check, violations = integrity(path)
        assert (check, violations) == ("ok", [])
        assert orphans(path) == dict.fromkeys(SESSION_CHILDREN, 0)
        assert sqlite_rows(path, "SELECT count(*) FROM prompts")[0][0] == 3 * count, "no half graphs"
        storage.sessions.save_session(SessionCreateFactory.build())
        assert storage.sessions.get_session_count() == count + 1, "the next write after the crash works"
    print(
        f"\nkill mid-batch ({BATCH} sessions): SIGKILL {killed_after:.2f} s after the call began, with "
        f"{wal_at_kill / 2**20:.1f} MB in the WAL; batch sessions kept {len(kept)}, integrity {check}, "
        f"foreign key violations {len(violations)}, orphans 0"
    )


# -- a full disk -----------------------------------------------------------------------------------
def test_a_full_database_rejects_the_whole_batch_and_takes_writes_once_space_is_back(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """The file may not grow past 20 more pages (``PRAGMA max_page_count`` on every connection, which
    fails a write with SQLITE_FULL exactly as a full disk does): a 100-session batch is refused with
    StorageFull, nothing of it is stored, and once the limit is lifted the same Storage saves it."""
    path = tmp_path / "full.db"
    storage = Storage(migrated_file(sqlite_template, path))
    storage.sessions.save_session(SessionCreateFactory.build())
    connections: list[sqlite3.Connection] = []
    disk = {"full": True}

    @event.listens_for(storage.engine, "connect")
    def _cap(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        connections.append(dbapi_connection)
        if disk["full"]:
            pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
            dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 20}")

    storage.engine.dispose()  # connections made from here on are capped
    batch = [SessionCreateFactory.build() for _ in range(100)]
    with pytest.raises(StorageFull, match="no space left") as raised:
        storage.sessions.batch_save_sessions(batch)
    assert "full" in str(raised.value.__cause__)
    assert storage.sessions.get_session_count() == 1, "nothing of the refused batch was kept"
    assert storage.sessions.load_session(str(batch[0].id)) is None

    disk["full"] = False  # space is back, also for the connections already in the pool
    for connection in connections:
        connection.execute("PRAGMA max_page_count = 4294967294")
    assert len(storage.sessions.batch_save_sessions(batch)) == 100
    assert storage.sessions.get_session_count() == 101
    assert checked_out(storage.engine) == 0
    storage.close()
    assert integrity(path) == ("ok", [])


# -- a read-only file or directory -----------------------------------------------------------------
# Run as a child process. Under root, file permissions do not stop writes (CAP_DAC_OVERRIDE), so the
# child first drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its own capability sets (capset(2)):
# it then meets chmod exactly as any other user does. Phase 1 opens the database and writes; phase 2
# (after the test made it writable again) writes with the same Storage, or a new one if none opened.
READ_ONLY_CHILD = """
import ctypes, json, os, sys, time
from pathlib import Path

def drop_dac_override():
    libc = ctypes.CDLL(None, use_errno=True)
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]
    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    mask = ~((1 << 1) | (1 << 2)) & 0xFFFFFFFF  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    data[0].effective &= mask
    data[0].permitted &= mask
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")

if os.geteuid() == 0:
    drop_dac_override()

from edi_storage import Storage

url, signals = sys.argv[1], Path(sys.argv[2])

def attempt(call):
    try:
        return {"ok": call()}
    except Exception as error:
        return {"error": type(error).__name__, "message": str(error)}

storage = None
def open_storage():
    global storage
    storage = Storage(url)
    return storage.sessions.get_session_count()

def save():
    return storage.sessions.save_session({"image_path": "/images/ro.png", "naive_prompt": "brighter"})

phase1 = {"open": attempt(open_storage)}
if storage is not None:
    phase1["save"] = attempt(save)
publish(signals / "phase1.json", json.dumps(phase1))
while not (signals / "writable").exists():
    time.sleep(0.005)
phase2 = {}
if storage is None:
    phase2["open"] = attempt(open_storage)
phase2["save"] = attempt(save)
phase2["count"] = attempt(lambda: storage.sessions.get_session_count())
storage.close()
publish(signals / "phase2.json", json.dumps(phase2))
"""


@pytest.fixture
def db_dir(tmp_path: Path) -> Iterator[Path]:
    """The database's own directory (the child's log stays outside it); modes restored at the end."""
    directory = tmp_path / "db"
    directory.mkdir()
    try:
        yield directory
    finally:
        directory.chmod(0o755)
        for path in directory.iterdir():
            path.chmod(0o644)


@pytest.mark.skipif(sys.platform != "linux", reason="capset(2) and chmod semantics of Linux")
@pytest.mark.parametrize("what", ["file", "directory"])
def test_a_read_only_database_is_a_typed_error_until_it_is_writable_again(
    what: str, spawn: Spawn, tmp_path: Path, db_dir: Path, sqlite_template: Path
) -> None:
    """chmod 0444 on the file: reads work, a write raises ReadOnly and stores nothing, and once the files
    are writable again the same Storage writes (its read-only connections are replaced, not reused).
    chmod 0555 on the directory of a WAL database: SQLite cannot create the -wal/-shm files, so opening
    raises ReadOnly; once the directory is writable, it opens and writes."""
    path = db_dir / "ro.db"
    url = migrated_file(sqlite_template, path)
    with Storage(url) as storage:  # a database at head, in WAL mode, closed (no -wal/-shm left)
        storage.sessions.save_session(SessionCreateFactory.build())
    before, listing = digest(path), sorted(p.name for p in db_dir.iterdir())
    if what == "file":
        path.chmod(0o444)
    else:
        db_dir.chmod(0o555)

    child = spawn(READ_ONLY_CHILD, url, str(tmp_path))
    phase1_file = tmp_path / "phase1.json"
    child.wait_for_file(phase1_file, 60)
    phase1 = json.loads(phase1_file.read_text())
    assert digest(path) == before, "the refused write changed nothing in the file"
    listing_after = sorted(p.name for p in db_dir.iterdir())
    db_dir.chmod(0o755)
    # Writable again means every file of the database: SQLite gave the -shm it made for the read-only
    # connection the database file's mode (0444), and a connection cannot write through a read-only -shm.
    for file in db_dir.iterdir():
        file.chmod(0o644)
    (tmp_path / "writable").touch()
    assert child.wait(60) == 0, child.output()
    phase2 = json.loads((tmp_path / "phase2.json").read_text())

    if what == "file":
        assert phase1["open"] == {"ok": 1}, "reading a read-only file works"
        assert phase1["save"]["error"] == "ReadOnly", phase1
    else:
        assert phase1["open"]["error"] == "ReadOnly", phase1
        assert listing_after == listing, "not even a -wal or -shm file was made"
    assert "cannot be written" in (phase1.get("save") or phase1["open"])["message"]
    assert "ok" in phase2["save"], phase2
    assert phase2["count"] == {"ok": 2}, "the refused write stored nothing, the next one was stored"
    print(f"\nread-only {what}: {phase1} -> after chmod back: {phase2}")


# -- a file that is not a SQLite database ----------------------------------------------------------
def not_a_database(kind: str, template: Path) -> bytes:
    rng = random.Random(kind)
    if kind == "random bytes":
        return rng.randbytes(64 * 1024)
    if kind == "SQLite header then junk":
        return b"SQLite format 3\x00" + rng.randbytes(64 * 1024)
    real = template.read_bytes()
    if kind == "first page zeroed":
        return bytes(4096) + real[4096:]
    return real[: len(real) // 2]  # truncated: a real database cut in half, e.g. by a failed copy


@pytest.mark.parametrize(
    "kind", ["random bytes", "SQLite header then junk", "first page zeroed", "truncated database"]
)
def test_a_file_that_is_not_a_usable_database_is_refused_and_left_byte_for_byte_unchanged(
    kind: str, tmp_path: Path, sqlite_template: Path
) -> None:
    """Storage refuses it with a typed error that says what is wrong with the file, and neither the
    file nor its directory is touched (no header rewrite, no journal mode, no lock or WAL files)."""
    path = tmp_path / "data.db"
    path.write_bytes(not_a_database(kind, sqlite_template))
    before = digest(path)
    with pytest.raises((DatabaseUnavailable, SchemaError)) as raised, Storage(f"sqlite:///{path}") as storage:
        storage.sessions.get_session_count()
    assert any(s in str(raised.value) for s in ("not a database", "malformed")), raised.value
    assert digest(path) == before
    # Under SQLAlchemy 2.0 the failed statement (and so SQLite's open file, with its -wal and -shm)
    # lives as long as the error's traceback, which `raised` holds: once that goes, so do they.
    del raised
    gc.collect()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.db"]


# -- a migration killed half-way -------------------------------------------------------------------
INFLATE_SESSIONS = 30_000


def old_database_with_data(target: Path) -> dict[str, int]:
    """A copy of the revision-0001 fixture with 30,000 more sessions (each with 2 prompts, 2 entities,
    a validation and a feedback row), enough for the upgrade to take about a second; its row counts."""
    shutil.copy(FIXTURES / "0001_base_schema.db", target)
    with sqlite3.connect(target) as conn:
        conn.execute(
            """WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?)
            INSERT INTO sessions (id, created_at, image_path, naive_prompt, status, final_alignment_score)
            SELECT printf('bulk-%06d', i), '2026-02-01 10:00:00.000000', printf('/img/%06d.png', i),
                   'brighten the sky ' || i, 'completed', 0.5 FROM k""",
            (INFLATE_SESSIONS,),
        )
        pairs = "(SELECT 0 AS j UNION ALL SELECT 1)"
        conn.execute(
            "INSERT INTO prompts (session_id, iteration, positive_prompt, negative_prompt, quality_score, created_at) "
            f"SELECT id, j, 'prompt ' || id, 'blurry', 0.5, created_at FROM sessions, {pairs} WHERE id LIKE 'bulk-%'"
        )
        conn.execute(
            "INSERT INTO entities (session_id, entity_id, label, confidence, bbox_json, mask_path, color_hex, area_percent) "
            f"""SELECT id, 'e' || j, 'sky', 0.9, '{{"x1": 0, "y1": 0, "x2": 1, "y2": 1}}', '/m.png', '#87CEEB', 10.0 """
            f"FROM sessions, {pairs} WHERE id LIKE 'bulk-%'"
        )
        conn.execute(
            "INSERT INTO validations (session_id, attempt_number, alignment_score, preserved_count, modified_count, "
            "unintended_count, user_feedback, created_at) "
            "SELECT id, 1, 0.5, 1, 1, 0, 'ok', created_at FROM sessions WHERE id LIKE 'bulk-%'"
        )
        conn.execute(
            "INSERT INTO user_feedback (session_id, feedback_type, comments, rating, created_at) "
            "SELECT id, 'accept', 'fine', 4, created_at FROM sessions WHERE id LIKE 'bulk-%'"
        )
    conn.close()
    return row_counts(target)


def row_counts(path: Path) -> dict[str, int]:
    return {t: sqlite_rows(path, f"SELECT count(*) FROM {t}")[0][0] for t in ("sessions", *SESSION_CHILDREN)}


def schema_of(path: Path) -> list[tuple[Any, ...]]:
    return sqlite_rows(path, "SELECT type, name, sql FROM sqlite_master ORDER BY type, name")


def run_alembic_upgrade(url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPOSITORY,
        env={**os.environ, "EDI_STORAGE_URL": url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.reliability
@pytest.mark.parametrize("journal_bytes", [1, 8 << 20], ids=["first-write", "half-way"])
def test_a_migration_killed_half_way_leaves_the_old_revision_and_upgrades_on_the_next_run(
    journal_bytes: int, spawn: Spawn, tmp_path: Path
) -> None:
    """``alembic upgrade head`` from revision 0001 with 30,003 sessions, SIGKILLed once the migration's
    transaction has written (its rollback journal is non-empty, or 8 MB long): the database is still
    exactly the 0001 database (schema and rows), ``edi-storage check`` says it is behind and how to fix
    it (exit 1), the checked pre-upgrade backup is complete, and the next ``alembic upgrade head``
    finishes with every row kept and a healthy ``check``."""
    path = tmp_path / "old.db"
    counts = old_database_with_data(path)
    schema = schema_of(path)
    url = f"sqlite:///{path}"
    journal = Path(f"{path}-journal")
    upgrader = spawn(
        "from alembic.config import main; main(argv=['upgrade', 'head'])",
        env={"EDI_STORAGE_URL": url},
        cwd=REPOSITORY,
    )
    started = time.monotonic()
    backups: list[Path] = []

    def migrating() -> bool:
        if upgrader.process.poll() is not None:
            return True
        backups[:] = tmp_path.glob("old.db.*.bak")
        try:  # the backup's own journal is old.db.<...>.bak-journal; this is the database's
            return bool(backups) and journal.stat().st_size >= journal_bytes
        except FileNotFoundError:
            return False

    wait_for(migrating, 120, f"the migration to write {journal_bytes} journal bytes", interval=0.001)
    upgrader.process.send_signal(signal.SIGKILL)
    killed_after = time.monotonic() - started
    assert upgrader.wait(30) == -signal.SIGKILL, upgrader.output()

    assert len(backups) == 1
    assert row_counts(backups[0]) == counts and integrity(backups[0]) == ("ok", [])
    result = cli_runner().invoke(app, ["--url", url, "check"])
    assert result.exit_code == 1, result.output
    flat = " ".join(result.output.split())
    assert "revision: 0001_base_schema" in flat and "behind" in flat and "edi-storage upgrade" in flat, flat
    assert schema_of(path) == schema, "the killed migration left nothing of itself behind"
    assert row_counts(path) == counts
    assert integrity(path) == ("ok", [])

    run_alembic_upgrade(url)
    with Storage(url) as storage:
        assert storage.current_revision() == head_revision()
        assert storage.sessions.get_session_count() == counts["sessions"]
        expected = json.loads((FIXTURES / "expected.json").read_text())["0001_base_schema.db"]
        for session_id, fields in expected["sessions"].items():
            loaded = storage.sessions.load_session(session_id)
            assert loaded is not None
            assert (loaded.status, loaded.final_alignment_score) == (
                fields["status"],
                fields["final_alignment_score"],
            )
    assert row_counts(path) == counts
    after = cli_runner().invoke(app, ["--url", url, "check"])
    assert after.exit_code == 0, after.output
    print(
        f"\nmigration killed (rollback journal >= {journal_bytes} bytes): SIGKILL {killed_after:.2f} s after start; "
        f"check said: {flat!r}; rerun reached {head_revision()} with {counts['sessions']} sessions kept"
    )


# -- PostgreSQL: the connection dropped in the middle of a transaction -----------------------------
@pytest.mark.reliability
@pytest.mark.parametrize("failing", ["next statement", "commit"])
def test_a_postgres_connection_killed_in_a_unit_of_work_is_typed_and_the_next_one_works(
    failing: str, request: pytest.FixtureRequest
) -> None:
    """pg_terminate_backend on the unit of work's own backend after its first write: the next statement
    (or the commit) raises DatabaseUnavailable, nothing of the unit of work is stored, the pool keeps
    no broken connection, and the next unit of work runs on a fresh one."""
    server: URL = request.getfixturevalue("postgres_database")
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    storage = Storage(server)
    empty_postgres_tables(storage)
    first, second = SessionCreateFactory.build(), SessionCreateFactory.build()
    try:
        with pytest.raises(StorageError) as raised, storage.unit_of_work() as uow:
            uow.sessions.save_session(first)
            pid = uow.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with admin.connect() as conn:
                assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
            if failing == "next statement":
                uow.sessions.save_session(second)
        assert type(raised.value) is DatabaseUnavailable, repr(raised.value)
        assert "terminating connection" in str(raised.value)
        assert checked_out(storage.engine) == 0
        with storage.unit_of_work() as uow:
            new_pid = uow.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            uow.sessions.save_session(second)
        assert new_pid != pid
        assert storage.sessions.load_session(str(first.id)) is None, "nothing of the killed unit was kept"
        assert storage.sessions.get_session_count() == 1
        print(f"\npostgres backend killed before the {failing}: {raised.value!r}; next unit of work ok")
    finally:
        storage.close()
        admin.dispose()
