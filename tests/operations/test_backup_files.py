"""Backups leave exactly the files they report (issue 13, items 4 and 5): a SQLite backup is one file
(``.db`` or ``.db.gz``) and its ``.json`` sidecar, never a ``-wal``/``-shm`` beside it, also after it
was verified, restored from or rotated; the checked ``.bak`` an upgrade takes is reported and rotated
with the others; on PostgreSQL ``backup``, ``restore``, ``check`` and ``size`` do the real thing or say
plainly what they could not do."""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import URL, create_engine, text
from typer.testing import CliRunner

from edi_storage import Storage
from edi_storage.cli import app
from edi_storage.migrate.safety import last_pre_upgrade_backup
from edi_storage.migrate.scripts import head_revision
from edi_storage.ops.backups import BackupError, backup_name, list_backups, pre_upgrade_backups
from edi_storage.ops.maintenance import Maintenance
from edi_storage.testing import SessionCreateFactory
from edi_storage.testing.fixtures import empty_postgres_tables, scratch_postgres_database

FIXTURES = Path(__file__).parents[1] / "fixtures"
OLD_REVISION = "0001_base_schema"


def listing(directory: Path) -> set[str]:
    return set(os.listdir(directory))


def journal_mode(path: Path) -> int:
    """The file format's read/write version byte: 1 is a rollback journal, 2 is WAL."""
    return path.read_bytes()[18]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Storage]:
    """A SQLite file in WAL mode (as every edi-storage file is) holding two sessions."""
    (tmp_path / "db").mkdir()
    storage = Storage(f"sqlite:///{tmp_path / 'db' / 'live.db'}")
    storage.sessions.batch_save_sessions([SessionCreateFactory.build() for _ in range(2)])
    assert journal_mode(tmp_path / "db" / "live.db") == 2, "the source is a WAL database"
    try:
        yield storage
    finally:
        storage.close()


# -- SQLite: one file per backup -------------------------------------------------------------------
def test_a_backup_is_one_file_and_its_sidecar_even_after_it_was_read(live: Storage, tmp_path: Path) -> None:
    made = live.maintenance.backup(tmp_path / "b")
    assert listing(tmp_path / "b") == {made.path.name, made.path.name + ".json"}
    assert made.path.name.endswith(".db") and not made.compressed
    assert journal_mode(made.path) == 1, "the copy is a rollback-journal file, not WAL"
    # Reading it back (list_backups, a restore's integrity check and revision) writes nothing beside it.
    assert [b.revision for b in list_backups(tmp_path / "b")] == [head_revision()]
    Maintenance.restore(made.path, tmp_path / "restored.db")
    assert listing(tmp_path / "b") == {made.path.name, made.path.name + ".json"}
    with Storage(f"sqlite:///{tmp_path / 'restored.db'}") as restored:
        assert restored.sessions.get_session_count() == 2


def test_a_compressed_backup_is_one_gz_and_its_sidecar(live: Storage, tmp_path: Path) -> None:
    made = live.maintenance.backup(tmp_path / "b", compress=True)
    assert made.path.name.endswith(".db.gz") and made.compressed
    assert listing(tmp_path / "b") == {made.path.name, made.path.name + ".json"}
    Maintenance.restore(made.path, tmp_path / "restored.db")
    assert listing(tmp_path / "b") == {made.path.name, made.path.name + ".json"}


def test_the_cli_backup_with_compress_and_rotate_leaves_only_the_kept_backups(
    live: Storage, tmp_path: Path
) -> None:
    """`edi-storage backup --dir D --compress --rotate`: D holds the kept backups and their sidecars,
    nothing else; a backup rotated away takes its sidecar (and an older release's -wal/-shm) with it."""
    directory = tmp_path / "b"
    directory.mkdir()
    old = backup_name("live", datetime.now(UTC) - timedelta(days=400), "db.gz")
    older = backup_name("live", datetime.now(UTC) - timedelta(days=401), "db.gz")
    for name in (old, older):
        (directory / name).write_bytes(b"x")
        (directory / (name + ".json")).write_text("{}")
    debris = older.removesuffix(".gz")  # what an older release left beside a compressed backup
    (directory / (debris + "-wal")).write_bytes(b"")
    (directory / (debris + "-shm")).write_bytes(b"")
    url = live.url.render_as_string()
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(
            app, ["--url", url, "backup", "--dir", str(directory), "--compress", "--rotate"]
        )
        assert result.exit_code == 0, result.output
    kept = list_backups(directory)
    # Today's two: the newer is kept (newest of the day), the other one deleted; the 400-day-old
    # ones are outside every bucket.
    assert len(kept) == 1 and kept[0].path.name.endswith(".db.gz")
    assert listing(directory) == {kept[0].path.name, kept[0].path.name + ".json"}


# -- the checked backup before an upgrade ----------------------------------------------------------
def old_database(directory: Path, name: str = "app.db") -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / name
    shutil.copy(FIXTURES / "revisions" / f"{OLD_REVISION}.db", path)
    return path


def test_the_pre_upgrade_backup_is_named_by_revision_reported_and_leaves_no_debris(tmp_path: Path) -> None:
    path = old_database(tmp_path / "db")
    with Storage(f"sqlite:///{path}") as storage:
        storage.upgrade()
        reported = last_pre_upgrade_backup(storage.url)
        assert storage.current_revision() == head_revision()
    assert reported is not None and reported.parent == path.parent
    assert reported.name.startswith(f"app.db.{OLD_REVISION}-to-{head_revision()}.")
    assert reported.name.endswith(".bak")
    assert last_pre_upgrade_backup(path) == reported, "by path as by URL"
    assert not {n for n in listing(path.parent) if n.startswith(reported.name) and n != reported.name}, (
        "no -wal or -shm beside the .bak"
    )
    assert journal_mode(reported) == 1
    with sqlite3.connect(f"file:{reported}?mode=ro&immutable=1", uri=True) as conn:
        assert conn.execute("SELECT version_num FROM edi_storage_version").fetchone()[0] == OLD_REVISION
    [listed] = pre_upgrade_backups(path)
    assert (listed.path, listed.kind, listed.revision) == (reported, "pre-upgrade", OLD_REVISION)


def test_nothing_is_reported_when_there_was_nothing_to_upgrade(tmp_path: Path) -> None:
    with Storage(f"sqlite:///{tmp_path / 'fresh.db'}") as storage:
        storage.upgrade()
        assert last_pre_upgrade_backup(storage.url) is None
    with Storage("sqlite://") as memory:
        assert last_pre_upgrade_backup(memory.url) is None


def test_pre_upgrade_backups_are_rotated_with_the_others(tmp_path: Path) -> None:
    """Rotating the backup directory of a database also applies the policy to the .bak files beside
    it (one set, one policy); a .bak of another database beside it is not touched."""
    path = old_database(tmp_path / "db")
    stale = f"app.db.{OLD_REVISION}-to-0002_x.{(datetime.now(UTC) - timedelta(days=500)).strftime('%Y%m%dT%H%M%S%fZ')}.bak"
    foreign = f"other.db.{OLD_REVISION}-to-0002_x.20200101T000000000000Z.bak"
    (path.parent / stale).write_bytes(b"x")
    (path.parent / foreign).write_bytes(b"x")
    with Storage(f"sqlite:///{path}") as storage:
        storage.upgrade()
        fresh = last_pre_upgrade_backup(path)
        assert fresh is not None
        plan = storage.maintenance.rotate(tmp_path / "b", dry_run=True)
        assert set(plan.deleted) == {path.parent / stale} and set(plan.kept) == {fresh}
        assert (path.parent / stale).exists(), "a dry run deletes nothing"
        made = storage.maintenance.backup(tmp_path / "b")
        done = storage.maintenance.rotate(tmp_path / "b")
    # Today: the regular backup is newer than the .bak, so it is the day's (and the week's, the
    # month's) newest; the .bak taken before it today is deleted like any other same-day backup.
    assert set(done.kept) == {made.path}
    assert set(done.deleted) == {path.parent / stale, fresh}
    assert not (path.parent / stale).exists() and not fresh.exists()
    assert (path.parent / foreign).exists()
    assert listing(tmp_path / "b") == {made.path.name, made.path.name + ".json"}


def test_list_backups_lists_the_bak_files_of_a_directory(tmp_path: Path) -> None:
    path = old_database(tmp_path / "db")
    with Storage(f"sqlite:///{path}") as storage:
        storage.upgrade()
    [bak] = list_backups(path.parent)
    assert bak.kind == "pre-upgrade" and bak.revision == OLD_REVISION
    with Storage(f"sqlite:///{path}") as storage:
        rotation = storage.maintenance.rotate(path.parent)
    assert rotation.kept == [bak.path] and rotation.deleted == [], "the newest backup is always kept"


def test_restoring_a_postgres_dump_into_a_file_says_what_to_do(tmp_path: Path) -> None:
    dump = tmp_path / "edi-20260101T000000000000Z.dump"
    dump.write_bytes(b"PGDMP" + b"\x00" * 100)
    with pytest.raises(BackupError, match=r"PostgreSQL dump.*pg_restore"):
        Maintenance.restore(dump, tmp_path / "target.db")
    assert not (tmp_path / "target.db").exists()


# -- PostgreSQL ------------------------------------------------------------------------------------
@pytest.fixture
def pg(postgres_database: URL) -> Iterator[Storage]:
    """The run's PostgreSQL database, emptied, holding three sessions."""
    storage = Storage(postgres_database)
    empty_postgres_tables(storage)
    storage.sessions.batch_save_sessions([SessionCreateFactory.build() for _ in range(3)])
    try:
        yield storage
    finally:
        storage.close()


@pytest.fixture
def empty_pg() -> Iterator[URL]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    with scratch_postgres_database("edi_restore") as url:
        yield url


needs_pg_tools = pytest.mark.skipif(
    shutil.which("pg_dump") is None or shutil.which("pg_restore") is None, reason="no pg_dump/pg_restore"
)


@needs_pg_tools
def test_postgres_backup_is_a_compressed_custom_dump_with_its_revision(pg: Storage, tmp_path: Path) -> None:
    made = pg.maintenance.backup(tmp_path / "b", compress=True)
    assert made.path.suffix == ".dump" and made.path.read_bytes()[:5] == b"PGDMP"
    assert made.compressed and made.revision == head_revision()
    assert listing(tmp_path / "b") == {made.path.name, made.path.name + ".json"}
    plain = pg.maintenance.backup(tmp_path / "c")
    assert plain.compressed, "a custom-format dump is compressed either way, and says so"


@needs_pg_tools
def test_postgres_dump_restores_into_an_empty_database_and_refuses_to_overwrite(
    pg: Storage, empty_pg: URL, tmp_path: Path
) -> None:
    made = pg.maintenance.backup(tmp_path / "b")
    report = Maintenance.restore(made.path, empty_pg)
    assert report.revision_before == head_revision() == report.revision_after
    with Storage(empty_pg) as restored:
        assert restored.sessions.get_session_count() == 3
        assert restored.maintenance.check().ok
        restored.sessions.save_session(SessionCreateFactory.build())
    with pytest.raises(BackupError, match="refusing to overwrite"):
        Maintenance.restore(made.path, empty_pg)
    with Storage(empty_pg) as unchanged:
        assert unchanged.sessions.get_session_count() == 4
    Maintenance.restore(made.path, empty_pg.render_as_string(hide_password=False), overwrite=True)
    with Storage(empty_pg) as replaced:
        assert replaced.sessions.get_session_count() == 3, "the dump's rows, the fourth is gone"


@needs_pg_tools
def test_postgres_restore_refuses_a_database_of_another_application(
    pg: Storage, empty_pg: URL, tmp_path: Path
) -> None:
    made = pg.maintenance.backup(tmp_path / "b")
    engine = create_engine(empty_pg)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE invoices (id int primary key)"))
    engine.dispose()
    with pytest.raises(BackupError, match="not edi-storage's"):
        Maintenance.restore_postgres(made.path, empty_pg, overwrite=True)
    with pytest.raises(BackupError, match="not a pg_dump"):
        Maintenance.restore_postgres(tmp_path / "b" / (made.path.name + ".json"), empty_pg)


def test_postgres_check_runs_amcheck_and_counts_orphans(pg: Storage) -> None:
    report = pg.maintenance.check()
    assert report.ok, report.problems
    assert report.integrity == "ok", "the test server's role is a superuser: amcheck can run"
    assert any(c.startswith("amcheck: bt_index_check of") for c in report.checked)
    assert report.foreign_key_violations == 0
    assert any("WAL" in n for n in report.not_checked) and report.wal_bytes is None
    with pg.engine.connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'")).scalar()
    assert left == 0, "the extension created for the check was rolled back with it"
    # Rows whose parents are gone (foreign keys bypassed, as a replica-mode load can): found.
    with pg.engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("DELETE FROM sessions"))
    damaged = pg.maintenance.check()
    assert not damaged.ok and (damaged.foreign_key_violations or 0) > 0


def test_postgres_check_says_plainly_when_amcheck_cannot_run(pg: Storage, postgres_database: URL) -> None:
    role = f"edi_plain_{uuid.uuid4().hex[:8]}"
    with pg.engine.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"))
        conn.commit()
    try:
        with Storage(postgres_database.set(username=role, password=None)) as plain:
            report = plain.maintenance.check()
    finally:
        with pg.engine.connect() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
            conn.commit()
    assert report.integrity is not None and "not available on PostgreSQL" in report.integrity
    assert "amcheck not installed" in report.integrity
    assert any("not available on PostgreSQL" in n for n in report.not_checked)
    assert report.ok, "what could be checked passed; what could not is said, not hidden"


def test_postgres_size_and_health_report_catalog_sizes(pg: Storage) -> None:
    with pg.engine.connect() as conn:
        expected = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    size = pg.maintenance.size()
    assert size.database_bytes is not None and abs(size.database_bytes - expected) < 1024 * 1024
    assert size.page_size == 8192
    assert {t.name: t.rows for t in size.tables}["sessions"] == 3
    assert size.objects["sessions"] > 0
    assert any("WAL" in n for n in size.not_available) and any("free pages" in n for n in size.not_available)
    health = pg.maintenance.health()
    assert health.database_bytes and health.objects["sessions"] > 0 and health.rows["sessions"] == 3
    assert health.not_available == size.not_available


def test_postgres_check_without_the_right_to_run_amcheck_is_not_a_problem(empty_pg: URL) -> None:
    """amcheck installed, but its functions not granted to this role: said, not reported as damage."""
    role = f"edi_plain_{uuid.uuid4().hex[:8]}"
    with Storage(empty_pg) as owner, owner.engine.connect() as conn:
        conn.execute(text("CREATE EXTENSION amcheck"))
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"))
        conn.commit()
    try:
        with Storage(empty_pg.set(username=role, password=None)) as plain:
            report = plain.maintenance.check()
    finally:
        with Storage(empty_pg) as owner, owner.engine.connect() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
            conn.commit()
    assert report.ok, report.problems
    assert report.integrity is not None and "not available on PostgreSQL (amcheck:" in report.integrity
    assert "permission denied" in report.integrity
