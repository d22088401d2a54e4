"""Backups of a database and the retention policy that decides which to keep.

A SQLite backup is taken with the online backup API (correct while other processes write in WAL mode,
unlike copying the file), checked with ``PRAGMA integrity_check`` and its schema revision read back,
then optionally gzip-compressed; a JSON sidecar records what was verified. PostgreSQL is backed up with
``pg_dump`` (custom format) when it is installed.

The policy is the reference's by default: the newest backup of each of the last 7 days, of each of the
last 4 weeks and of each of the last 12 months; the newest backup of all is always kept.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import URL

from edi_storage.errors import StorageError
from edi_storage.migrate.safety import backup_sqlite
from edi_storage.migrate.scripts import VERSION_TABLE

STAMP = "%Y%m%dT%H%M%S%fZ"  # microseconds: two backups in one second must not collide
NAME = re.compile(r"^(?P<stem>.+)-(?P<stamp>\d{8}T\d{12}Z)\.(?P<ext>db|db\.gz|dump)$")


class BackupError(StorageError):
    """A backup or restore could not be made or verified; nothing was reported done."""


@dataclass(frozen=True)
class Backup:
    path: Path
    taken_at: datetime
    revision: str | None
    bytes: int


@dataclass(frozen=True)
class RetentionPolicy:
    daily: int = 7
    weekly: int = 4
    monthly: int = 12


DEFAULT_POLICY = RetentionPolicy()


def backup_name(stem: str, taken_at: datetime, ext: str) -> str:
    return f"{stem}-{taken_at.astimezone(UTC).strftime(STAMP)}.{ext}"


def sqlite_revision(path: Path) -> str | None:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        has_table = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,)
        ).fetchone()[0]
        if not has_table:
            return None
        row = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
        return None if row is None else str(row[0])


def backup_sqlite_file(database: Path, directory: Path, *, compress: bool = False) -> Backup:
    directory.mkdir(parents=True, exist_ok=True)
    taken_at = datetime.now(UTC)
    target = directory / backup_name(database.stem, taken_at, "db")
    if target.exists() or target.with_name(target.name + ".gz").exists():
        raise BackupError(f"a backup named {target.name} already exists")
    backup_sqlite(database, target)  # online backup API + integrity_check, or BackupError-like failure
    revision = sqlite_revision(target)
    if compress:
        packed = target.with_name(target.name + ".gz")
        with target.open("rb") as source, gzip.open(packed, "wb", compresslevel=6) as sink:
            shutil.copyfileobj(source, sink)
        target.unlink()
        target = packed
    _write_sidecar(target, taken_at, revision, source=str(database))
    return Backup(target, taken_at, revision, target.stat().st_size)


def backup_postgres(url: URL, directory: Path) -> Backup:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError(
            "PostgreSQL backups need pg_dump, which is not on PATH: install the PostgreSQL client "
            "(Debian/Ubuntu: apt-get install postgresql-client)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    taken_at = datetime.now(UTC)
    # A database's name may hold '/' and '..' (PostgreSQL allows any quoted name): never a path here.
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", str(url.database)).lstrip(".") or "database"
    target = directory / backup_name(stem, taken_at, "dump")
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    result = subprocess.run(
        [pg_dump, "--format=custom", f"--file={target}", f"--dbname={conninfo}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        target.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {result.stderr.strip()}")
    _write_sidecar(target, taken_at, None, source=url.render_as_string(hide_password=True))
    return Backup(target, taken_at, None, target.stat().st_size)


def _write_sidecar(target: Path, taken_at: datetime, revision: str | None, *, source: str) -> None:
    sidecar = {
        "taken_at": taken_at.isoformat(),
        "revision": revision,
        "source": source,
        "bytes": target.stat().st_size,
        "verified": "integrity_check ok" if target.suffix != ".dump" else "pg_dump exit 0",
    }
    target.with_name(target.name + ".json").write_text(json.dumps(sidecar, indent=2) + "\n")


def list_backups(directory: Path) -> list[Backup]:
    """Backups in ``directory`` named as ``backup`` names them, oldest first."""
    found: list[Backup] = []
    for path in directory.glob("*"):
        match = NAME.match(path.name)
        if match is None:
            continue
        taken_at = datetime.strptime(match.group("stamp"), STAMP).replace(tzinfo=UTC)
        sidecar = path.with_name(path.name + ".json")
        revision = json.loads(sidecar.read_text()).get("revision") if sidecar.exists() else None
        found.append(Backup(path, taken_at, revision, path.stat().st_size))
    return sorted(found, key=lambda b: b.taken_at)


def plan_rotation(
    backups: Iterable[Backup], *, now: datetime, policy: RetentionPolicy | None = None
) -> tuple[list[Backup], list[Backup]]:
    """(keep, delete), oldest first: the newest backup of each of the last ``policy.daily`` days, of
    each of the last ``policy.weekly`` ISO weeks and of each of the last ``policy.monthly`` calendar
    months (counted from ``now``, in UTC), and always the newest of all."""
    policy = policy or DEFAULT_POLICY
    newest_first = sorted(backups, key=lambda b: b.taken_at, reverse=True)
    today = now.astimezone(UTC).date()
    this_week = today - timedelta(days=today.weekday())
    filled: set[tuple[str, object]] = set()
    keep: list[Backup] = newest_first[:1]
    for backup in newest_first:
        day = backup.taken_at.astimezone(UTC).date()
        week_start = day - timedelta(days=day.weekday())
        months_back = (today.year - day.year) * 12 + today.month - day.month
        buckets = [
            ("day", day) if (today - day).days < policy.daily else None,
            ("week", week_start) if (this_week - week_start).days < policy.weekly * 7 else None,
            ("month", (day.year, day.month)) if months_back < policy.monthly else None,
        ]
        # Newest first: the first backup met in a bucket is that bucket's newest, the one to keep.
        new = [b for b in buckets if b is not None and b not in filled]
        filled.update(new)
        if new and backup not in keep:
            keep.append(backup)
    delete = [b for b in newest_first if b not in keep]
    return sorted(keep, key=lambda b: b.taken_at), sorted(delete, key=lambda b: b.taken_at)


def delete_backup(backup: Backup) -> None:
    backup.path.unlink(missing_ok=True)
    backup.path.with_name(backup.path.name + ".json").unlink(missing_ok=True)


@contextmanager
def plain_sqlite(backup: Path) -> Iterator[Path]:
    """The backup as a plain SQLite file (a temporary copy when it is compressed)."""
    if not backup.name.endswith(".gz"):
        yield backup
        return
    with tempfile.TemporaryDirectory(prefix="edi-restore-") as work:
        plain = Path(work) / backup.name.removesuffix(".gz")
        with gzip.open(backup, "rb") as source, plain.open("wb") as sink:
            shutil.copyfileobj(source, sink)
        yield plain


def verify_sqlite(path: Path) -> str:
    """``PRAGMA integrity_check`` of a SQLite file; BackupError naming the file when it is not ok."""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            result = str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{path} is not a usable SQLite database: {error}") from error
    if result != "ok":
        raise BackupError(f"{path} fails its integrity check: {result}")
    return result


def copy_sqlite(source: Path, target: Path) -> None:
    with (
        closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src,
        closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)
