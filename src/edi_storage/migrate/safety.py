"""What makes an upgrade safe to run on a user's only copy of their data.

* A lock serialises upgrades: a lock file beside a SQLite database (a migration can outlast SQLite's
  busy timeout, so the database's own lock is not enough), an advisory lock on PostgreSQL.
* A checked backup comes first: the SQLite online backup API (correct under WAL, unlike copying the
  file), then ``PRAGMA integrity_check`` on the copy before the migration is allowed to start.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock
from sqlalchemy import Connection, text

from edi_storage.errors import StorageError

# An arbitrary, fixed key for pg_advisory_xact_lock: "edi-stor" as a 64-bit integer.
PG_MIGRATION_LOCK_KEY = int.from_bytes(b"edi-stor", "big") >> 1


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


def backup_sqlite(database: Path, target: Path) -> Path:
    """Copy a live SQLite database with the online backup API and verify the copy.

    Raises StorageError (and removes the copy) when the copy does not pass ``PRAGMA integrity_check``.
    """
    with closing(sqlite3.connect(database)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
        result = copy.execute("PRAGMA integrity_check").fetchone()[0]
    if result != "ok":
        target.unlink(missing_ok=True)
        raise StorageError(f"backup of {database} to {target} failed its integrity check: {result}")
    return target


def pre_migration_backup_path(database: Path, from_revision: str | None, to_revision: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return database.with_name(f"{database.name}.{from_revision or 'base'}-to-{to_revision}.{stamp}.bak")
