"""Operations that keep data safe over years: backups taken under load, the retention policy over a
synthetic year, restore of an older backup, and checks that catch corruption and drift."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edi_storage import Storage
from edi_storage.migrate.scripts import head_revision
from edi_storage.ops.backups import (
    Backup,
    BackupError,
    RetentionPolicy,
    backup_name,
    list_backups,
    plan_rotation,
)
from edi_storage.testing import SessionCreateFactory

FIXTURES = Path(__file__).parents[1] / "fixtures"

WRITER = """
import sys, time
from edi_storage import Storage
from edi_storage.testing import SessionCreateFactory, seed
seed(int(sys.argv[2]))
storage = Storage(sys.argv[1])
deadline = time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    storage.sessions.batch_save_sessions([SessionCreateFactory.build() for _ in range(20)])
storage.close()
"""


def file_storage(tmp_path: Path, name: str = "live.db") -> Storage:
    return Storage(f"sqlite:///{tmp_path / name}")


def test_a_backup_taken_while_another_process_writes_is_consistent_and_restorable(tmp_path: Path) -> None:
    storage = file_storage(tmp_path)
    storage.sessions.batch_save_sessions([SessionCreateFactory.build() for _ in range(50)])
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, storage.url.render_as_string(), "99", "3"],
        stderr=subprocess.PIPE,
        text=True,
    )
    backups = []
    try:
        for _ in range(3):
            backups.append(storage.maintenance.backup(tmp_path / "backups"))
    finally:
        _, stderr = writer.communicate(timeout=60)
    assert writer.returncode == 0, stderr
    for backup in backups:
        assert backup.revision == head_revision()
        target = tmp_path / f"restored-{backup.path.stem}.db"
        report = storage.maintenance.restore(backup.path, target)
        assert report.revision_after == head_revision()
        with Storage(f"sqlite:///{target}") as restored:
            check = restored.maintenance.check()
            assert check.ok, check.problems
            count = restored.sessions.get_session_count()
            assert count >= 50 and count % 20 == 10, "whole batches only: 50 first, then batches of 20"
    storage.close()


def test_compressed_backups_restore_too(tmp_path: Path) -> None:
    storage = file_storage(tmp_path)
    storage.sessions.save_session(SessionCreateFactory.build())
    backup = storage.maintenance.backup(tmp_path / "b", compress=True)
    assert backup.path.name.endswith(".db.gz")
    storage.maintenance.restore(backup.path, tmp_path / "r.db")
    with Storage(f"sqlite:///{tmp_path / 'r.db'}") as restored:
        assert restored.sessions.get_session_count() == 1
    storage.close()


def test_restore_of_an_older_revision_ends_at_head_with_every_row(tmp_path: Path) -> None:
    old = tmp_path / "old-20260101T000000000000Z.db"
    shutil.copy(FIXTURES / "revisions" / "0001_base_schema.db", old)
    with Storage("sqlite://") as any_storage:
        report = any_storage.maintenance.restore(old, tmp_path / "new.db")
    assert (report.revision_before, report.revision_after) == ("0001_base_schema", head_revision())
    with Storage(f"sqlite:///{tmp_path / 'new.db'}") as restored:
        assert restored.sessions.get_session_count() == 3
        graphs = [restored.sessions.load_session(s.id) for s in restored.sessions.query_history()]
        assert sum(len(g.prompts) for g in graphs if g is not None) == 6


def test_restore_refuses_to_overwrite_a_live_database_unless_told(tmp_path: Path) -> None:
    storage = file_storage(tmp_path)
    storage.sessions.save_session(SessionCreateFactory.build())
    backup = storage.maintenance.backup(tmp_path / "b")
    storage.sessions.batch_save_sessions([SessionCreateFactory.build() for _ in range(4)])
    live = tmp_path / "live.db"
    with pytest.raises(BackupError, match="refusing to overwrite"):
        storage.maintenance.restore(backup.path, live)
    assert storage.sessions.get_session_count() == 5
    storage.maintenance.restore(backup.path, live, overwrite=True)
    assert storage.sessions.get_session_count() == 1, "the live database now holds the backup's rows"
    storage.close()


def test_restore_checks_the_backup_first(tmp_path: Path) -> None:
    broken = tmp_path / "broken-20260101T000000000000Z.db"
    broken.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    with Storage("sqlite://") as storage, pytest.raises(BackupError, match="broken"):
        storage.maintenance.restore(broken, tmp_path / "target.db")
    assert not (tmp_path / "target.db").exists()


def synthetic_year(directory: Path, end: datetime) -> list[Backup]:
    """One backup a day at 02:00 for a year and a half before ``end``."""
    directory.mkdir()
    for days in range(548):
        taken = (end - timedelta(days=days)).replace(hour=2, minute=0, second=0, microsecond=0)
        (directory / backup_name("edi", taken, "db")).write_bytes(b"x")
    return list_backups(directory)


def test_rotation_keeps_exactly_what_the_policy_says(tmp_path: Path) -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)  # a Monday
    backups = synthetic_year(tmp_path / "b", now)
    keep, delete = plan_rotation(backups, now=now)
    kept = {b.taken_at.date() for b in keep}
    days = {(now - timedelta(days=d)).date() for d in range(7)}
    # the newest of each of the last 4 ISO weeks: the Sundays before this week, and today for this week
    weeks = {now.date()} | {(now - timedelta(days=d)).date() for d in (1, 8, 15)}
    # the newest of each of the last 12 months: the last day of each earlier month, today for this one
    months = {now.date()}
    first = now.date().replace(day=1)
    for _ in range(11):
        last_day = first - timedelta(days=1)
        months.add(last_day)
        first = last_day.replace(day=1)
    assert kept == days | weeks | months
    assert len(keep) + len(delete) == len(backups)
    assert max(b.taken_at for b in backups) in {b.taken_at for b in keep}, "never the newest"


def test_rotation_never_deletes_the_newest_even_when_everything_is_old(tmp_path: Path) -> None:
    directory = tmp_path / "b"
    directory.mkdir()
    for year in (2020, 2021):
        (directory / backup_name("edi", datetime(year, 1, 1, tzinfo=UTC), "db")).write_bytes(b"x")
    keep, delete = plan_rotation(list_backups(directory), now=datetime(2026, 1, 1, tzinfo=UTC))
    assert [b.taken_at.year for b in keep] == [2021]
    assert [b.taken_at.year for b in delete] == [2020]


def test_rotate_dry_run_deletes_nothing_and_says_what_it_would(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    backups = synthetic_year(tmp_path / "b", now)
    with Storage("sqlite://") as storage:
        report = storage.maintenance.rotate(tmp_path / "b", dry_run=True)
        assert report.deleted and len(list_backups(tmp_path / "b")) == len(backups)
        done = storage.maintenance.rotate(
            tmp_path / "b", policy=RetentionPolicy(daily=7, weekly=4, monthly=12)
        )
    assert done.deleted == report.deleted
    assert {b.path for b in list_backups(tmp_path / "b")} == set(report.kept)


def test_check_passes_on_a_healthy_database(tmp_path: Path) -> None:
    with file_storage(tmp_path) as storage:
        storage.sessions.save_session(SessionCreateFactory.build())
        report = storage.maintenance.check()
    assert (
        report.ok and report.integrity == "ok" and report.foreign_key_violations == 0 and report.drift == []
    )


def test_check_detects_a_drifted_schema(tmp_path: Path) -> None:
    storage = file_storage(tmp_path)
    with sqlite3.connect(tmp_path / "live.db") as conn:
        conn.execute("DROP INDEX ix_sessions_created_at_id")
    report = storage.maintenance.check()
    storage.close()
    assert not report.ok and any("ix_sessions_created_at_id" in d for d in report.drift)


def test_check_detects_a_corrupted_file(tmp_path: Path) -> None:
    storage = file_storage(tmp_path)
    storage.sessions.batch_save_sessions([SessionCreateFactory.build() for _ in range(200)])
    storage.maintenance.checkpoint()
    storage.close()
    path = tmp_path / "live.db"
    data = bytearray(path.read_bytes())
    page = 4096
    # Scribble over data pages near the end (the schema lives in the first pages, so the file opens).
    for offset in range(len(data) - page * 12, len(data) - page * 8):
        data[offset] = 0x5A
    path.write_bytes(bytes(data))
    with Storage(f"sqlite:///{path}") as damaged:
        report = damaged.maintenance.check()
    assert not report.ok
    assert report.integrity is not None and report.integrity != "ok"


def test_size_and_vacuum(tmp_path: Path) -> None:
    storage = file_storage(tmp_path)
    ids = storage.sessions.batch_save_sessions([SessionCreateFactory.build() for _ in range(100)])
    sizes = {t.name: t for t in storage.maintenance.size().tables}
    assert sizes["sessions"].rows == 100 and (sizes["sessions"].bytes or 0) > 0
    with storage.unit_of_work(audit=False) as uow:  # an audited delete would fill audit_log instead
        for session_id in ids:
            uow.sessions.delete_session(session_id)
    storage.maintenance.checkpoint()
    before = storage.maintenance.size()
    assert (before.free_pages or 0) > 0
    report = storage.maintenance.vacuum()
    storage.maintenance.checkpoint()
    after = storage.maintenance.size()
    assert after.free_pages == 0 and (after.database_bytes or 0) < (before.database_bytes or 0)
    assert (report.bytes_before, report.bytes_after) == (before.database_bytes, after.database_bytes)
    assert report.freed_bytes == (before.database_bytes or 0) - (after.database_bytes or 0) > 0
    storage.close()


def test_vacuum_reports_the_database_size_on_either_backend(storage: Storage) -> None:
    """A file or a server database has a size before and after; a database in memory has none."""
    storage.sessions.batch_save_sessions([SessionCreateFactory.build() for _ in range(20)])
    report = storage.maintenance.vacuum()
    if storage.engine.dialect.name == "postgresql":
        assert (report.bytes_before or 0) > 0 and (report.bytes_after or 0) > 0
        assert report.freed_bytes is None  # VACUUM returns no space to the OS there; FULL would
    else:
        assert report.bytes_before is report.bytes_after is report.freed_bytes is None
    assert storage.sessions.get_session_count() == 20


def test_postgres_backups_use_pg_dump(storage: Storage, tmp_path: Path) -> None:
    """On PostgreSQL a backup is a pg_dump custom-format archive (or a clear error without pg_dump)."""
    if storage.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    if shutil.which("pg_dump") is None:
        with pytest.raises(BackupError, match="install the PostgreSQL client"):
            storage.maintenance.backup(tmp_path)
        return
    storage.sessions.save_session(SessionCreateFactory.build())
    made = storage.maintenance.backup(tmp_path)
    assert made.path.suffix == ".dump" and made.path.read_bytes()[:5] == b"PGDMP"


def test_in_memory_databases_cannot_be_backed_up(sqlite_storage: Storage, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="in-memory"):
        sqlite_storage.maintenance.backup(tmp_path)
