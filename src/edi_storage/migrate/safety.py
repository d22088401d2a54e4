"""What makes an upgrade safe to run on a user's only copy of their data.

* A lock serialises upgrades: a lock file beside a SQLite database (a migration can outlast SQLite's
  busy timeout, so the database's own lock is not enough), an advisory lock on PostgreSQL.
* A checked backup comes first: the SQLite online backup API (correct under WAL, unlike copying the
  file), then ``PRAGMA integrity_check`` on the copy before the migration is allowed to start. The copy
  is one self-contained file (rollback journal, not WAL: no ``-wal``/``-shm`` beside it), named
  ``<db>.<from>-to-<to>.<UTC stamp>.bak`` beside the database, logged, and remembered for this process
  (``last_pre_upgrade_backup``) so that ``upgrade`` can say where it is. ``edi_storage.ops.backups``
  lists these files as backups of the database and rotates them with the others.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock
from sqlalchemy import URL, Connection, text

from edi_storage.engine import sqlite_file
from edi_storage.errors import StorageError

# An arbitrary, fixed key for pg_advisory_xact_lock: "edi-stor" as a 64-bit integer.
PG_MIGRATION_LOCK_KEY = int.from_bytes(b"edi-stor", "big") >> 1
PRE_UPGRADE_STAMP = "%Y%m%dT%H%M%S%fZ"

log = logging.getLogger("edi_storage.migrate")
_taken: dict[Path, Path] = {}  # database (resolved) -> the checked backup this process took before upgrading
_taken_lock = threading.Lock()


@contextmanager
def sqlite_migration_lock(database: Path, timeout_s: float = 600) -> Iterator[None]:
    with FileLock(str(database) + ".migration.lock", timeout=timeout_s):
        yield


@contextmanager
def postgres_migration_lock(connection: Connection) -> Iterator[None]:
    """Wait for any other upgrader: a session-level advisory lock, held from before the database is
    classified until after the migration committed."""
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY})
    connection.commit()
    try:
        yield
    finally:
        if connection.in_transaction():
            connection.rollback()
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PG_MIGRATION_LOCK_KEY})
        connection.commit()


def sqlite_has_tables(database: Path) -> bool:
    if not database.exists() or database.stat().st_size == 0:
        return False
    with closing(sqlite3.connect(database)) as conn:
        tables: int = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        return tables > 0


def checked_copy(database: Path, target: Path) -> Path:
    """Copy a live SQLite database with the online backup API into ``target`` and verify the copy.

    The copy is switched to ``journal_mode=DELETE`` before it is closed: a copy of a WAL database is a
    WAL database too, and any later read-only open of it (reading its revision, a restore's check) would
    leave ``-wal`` and ``-shm`` files beside it that it cannot remove. Raises StorageError (and removes
    the copy) when the copy does not pass ``PRAGMA integrity_check``.
    """
    with closing(sqlite3.connect(database)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE").fetchone()
        result = copy.execute("PRAGMA integrity_check").fetchone()[0]
    for debris in (target.with_name(target.name + "-wal"), target.with_name(target.name + "-shm")):
        debris.unlink(missing_ok=True)  # none after a clean close in DELETE mode; never leave any
    if result != "ok":
        target.unlink(missing_ok=True)
        raise StorageError(f"backup of {database} to {target} failed its integrity check: {result}")
    return target


def backup_sqlite(database: Path, target: Path) -> Path:
    """The checked backup taken before an upgrade: ``checked_copy``, then logged and remembered, so that
    ``last_pre_upgrade_backup(database)`` can tell the caller of the upgrade where it is."""
    checked_copy(database, target)
    with _taken_lock:
        _taken[database.resolve()] = target
    log.info("checked backup of %s before the upgrade: %s", database, target)
    return target


def last_pre_upgrade_backup(database: Path | URL) -> Path | None:
    """The checked backup this process took of ``database`` (a SQLite file or its URL, e.g.
    ``storage.url``) before its latest upgrade, or None when none was taken (PostgreSQL, an in-memory
    database, nothing to migrate, an empty file, the backup switched off)."""
    path = sqlite_file(database) if isinstance(database, URL) else database
    if path is None:
        return None
    with _taken_lock:
        return _taken.get(path.resolve())


def pre_migration_backup_path(database: Path, from_revision: str | None, to_revision: str) -> Path:
    stamp = datetime.now(UTC).strftime(PRE_UPGRADE_STAMP)
    return database.with_name(f"{database.name}.{from_revision or 'base'}-to-{to_revision}.{stamp}.bak")
