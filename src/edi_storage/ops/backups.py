"""Backups of a database and the retention policy that decides which to keep.

A SQLite backup is taken with the online backup API (correct while other processes write in WAL mode,
unlike copying the file), switched to a rollback journal so that it is one self-contained file (no
``-wal``/``-shm`` beside it, ever), checked with ``PRAGMA integrity_check`` and its schema revision read
back, then optionally gzip-compressed; a JSON sidecar records what was verified. Backups are only ever
opened read-only and immutable afterwards. PostgreSQL is backed up with ``pg_dump`` in its custom
format (always compressed) when it is installed, and restored with ``pg_restore``.

The checked backups taken before an upgrade (``<db>.<from>-to-<to>.<stamp>.bak``, beside the database,
see ``edi_storage.migrate.safety``) are backups too: ``list_backups`` lists them, and rotation treats
them like any other.

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
from urllib.parse import quote

from sqlalchemy import URL

from edi_storage.errors import StorageError
from edi_storage.migrate.safety import checked_copy
from edi_storage.migrate.scripts import VERSION_TABLE

STAMP = "%Y%m%dT%H%M%S%fZ"  # microseconds: two backups in one second must not collide
NAME = re.compile(r"^(?P<stem>.+)-(?P<stamp>\d{8}T\d{12}Z)\.(?P<ext>db|db\.gz|dump)$")
# The checked backup taken before an upgrade: <database file name>.<from>-to-<to>.<stamp>.bak
PRE_UPGRADE_NAME = re.compile(
    r"^(?P<database>.+)\.(?P<from>[^.]+)-to-(?P<to>[^.]+)\.(?P<stamp>\d{8}T\d{12}Z)\.bak$"
)
PG_MAGIC = b"PGDMP"  # the first bytes of every pg_dump custom-format archive


class BackupError(StorageError):
    """A backup or restore could not be made or verified; nothing was reported done."""


@dataclass(frozen=True)
class Backup:
    path: Path
    taken_at: datetime
    revision: str | None
    bytes: int
    kind: str = "backup"  # or "pre-upgrade": the checked .bak an upgrade took beside the database
    compressed: bool = False


@dataclass(frozen=True)
class RetentionPolicy:
    daily: int = 7
    weekly: int = 4
    monthly: int = 12


DEFAULT_POLICY = RetentionPolicy()


def backup_name(stem: str, taken_at: datetime, ext: str) -> str:
    return f"{stem}-{taken_at.astimezone(UTC).strftime(STAMP)}.{ext}"


def open_backup(path: Path) -> sqlite3.Connection:
    """A read-only connection to a SQLite backup that writes nothing beside it: ``immutable`` means no
    locks, no ``-shm`` and no ``-wal`` (a plain ``mode=ro`` open of a WAL-mode file creates both and
    cannot remove them). Only for files nothing else writes, as backups are."""
    return sqlite3.connect(f"file:{quote(str(path))}?mode=ro&immutable=1", uri=True)


def sqlite_revision(path: Path) -> str | None:
    with closing(open_backup(path)) as conn:
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
    try:
        checked_copy(database, target)  # online backup API, journal_mode=DELETE, integrity_check
    except StorageError as error:
        raise BackupError(str(error)) from error
    revision = sqlite_revision(target)
    if compress:
        packed = target.with_name(target.name + ".gz")
        try:
            with target.open("rb") as source, gzip.open(packed, "wb", compresslevel=6) as sink:
                shutil.copyfileobj(source, sink)
        except BaseException:
            packed.unlink(missing_ok=True)
            raise
        target.unlink()
        target = packed
    _write_sidecar(target, taken_at, revision, source=str(database))
    return Backup(target, taken_at, revision, target.stat().st_size, compressed=compress)


def backup_postgres(
    url: URL, directory: Path, *, compress: bool = True, revision: str | None = None
) -> Backup:
    """A ``pg_dump --format=custom`` archive of the database at ``url``.

    The custom format is always compressed (pg_dump's default zlib level); ``compress=True`` asks for
    what it does anyway, so the flag is never ignored silently: the report says ``compressed``.
    ``revision`` (read by the caller from the database) goes into the sidecar and the report.
    """
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
    result = subprocess.run(
        [pg_dump, "--format=custom", f"--file={target}", f"--dbname={_conninfo(url)}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        target.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {result.stderr.strip()}")
    with target.open("rb") as archive:
        if archive.read(len(PG_MAGIC)) != PG_MAGIC:
            target.unlink(missing_ok=True)
            raise BackupError(f"pg_dump exited 0 but {target} is not a custom-format archive")
    _write_sidecar(target, taken_at, revision, source=url.render_as_string(hide_password=True))
    return Backup(target, taken_at, revision, target.stat().st_size, compressed=True)


def _conninfo(url: URL) -> str:
    """A libpq connection URI (``postgresql://``; libpq knows no ``+psycopg``)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _write_sidecar(target: Path, taken_at: datetime, revision: str | None, *, source: str) -> None:
    sidecar = {
        "taken_at": taken_at.isoformat(),
        "revision": revision,
        "source": source,
        "bytes": target.stat().st_size,
        "verified": "integrity_check ok" if target.suffix != ".dump" else "pg_dump exit 0, PGDMP archive",
    }
    target.with_name(target.name + ".json").write_text(json.dumps(sidecar, indent=2) + "\n")


def _as_backup(path: Path) -> Backup | None:
    """The backup ``path`` is, by its name, or None when it is named as no backup is."""
    if (match := NAME.match(path.name)) is not None:
        taken_at = datetime.strptime(match.group("stamp"), STAMP).replace(tzinfo=UTC)
        sidecar = path.with_name(path.name + ".json")
        revision = json.loads(sidecar.read_text()).get("revision") if sidecar.exists() else None
        compressed = match.group("ext") in {"db.gz", "dump"}
        return Backup(path, taken_at, revision, path.stat().st_size, compressed=compressed)
    if (match := PRE_UPGRADE_NAME.match(path.name)) is not None:
        taken_at = datetime.strptime(match.group("stamp"), STAMP).replace(tzinfo=UTC)
        revision = None if match.group("from") == "base" else match.group("from")
        return Backup(path, taken_at, revision, path.stat().st_size, kind="pre-upgrade")
    return None


def list_backups(directory: Path) -> list[Backup]:
    """Backups in ``directory``, oldest first: those ``backup`` names (``<stem>-<stamp>.db[.gz]`` or
    ``.dump``) and the checked ``.bak`` files an upgrade takes beside a database."""
    found = [b for path in directory.glob("*") if path.is_file() and (b := _as_backup(path)) is not None]
    return sorted(found, key=lambda b: b.taken_at)


def pre_upgrade_backups(database: Path) -> list[Backup]:
    """The checked backups upgrades took of the SQLite file ``database``, beside it, oldest first."""
    return [
        backup
        for backup in list_backups(database.parent)
        if (match := PRE_UPGRADE_NAME.match(backup.path.name)) is not None
        and match.group("database") == database.name
    ]


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
    """The backup, its sidecar, and any ``-wal``/``-shm`` an older release's backup left beside it
    (for a ``.db.gz``: beside the ``.db`` it was compressed from, when that file is gone)."""
    path = backup.path
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".json").unlink(missing_ok=True)
    names = [path.name]
    if path.name.endswith(".gz") and not path.with_name(path.name.removesuffix(".gz")).exists():
        names.append(path.name.removesuffix(".gz"))
    for name in names:
        for suffix in ("-wal", "-shm"):
            path.with_name(name + suffix).unlink(missing_ok=True)


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
        with closing(open_backup(path)) as conn:
            result = str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{path} is not a usable SQLite database: {error}") from error
    if result != "ok":
        raise BackupError(f"{path} fails its integrity check: {result}")
    return result


def copy_sqlite(source: Path, target: Path) -> None:
    with closing(open_backup(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


# -- PostgreSQL restore ----------------------------------------------------------------------------
def _pg_tool(name: str) -> str:
    tool = shutil.which(name)
    if tool is None:
        raise BackupError(
            f"PostgreSQL restores need {name}, which is not on PATH: install the PostgreSQL client "
            "(Debian/Ubuntu: apt-get install postgresql-client)"
        )
    return tool


def is_postgres_dump(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(len(PG_MAGIC)) == PG_MAGIC


def dump_revision(dump: Path) -> str | None:
    """The schema revision recorded in a pg_dump archive (the row of its version table), read with
    ``pg_restore`` without restoring anything; None when the archive holds no version table."""
    pg_restore = _pg_tool("pg_restore")
    listed = subprocess.run([pg_restore, "--list", str(dump)], capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        raise BackupError(f"{dump} is not a readable pg_dump archive: {listed.stderr.strip()}")
    if not re.search(rf"TABLE DATA \S+ {VERSION_TABLE} ", listed.stdout):
        return None
    data = subprocess.run(
        [pg_restore, "--data-only", f"--table={VERSION_TABLE}", "--file=-", str(dump)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if data.returncode != 0:
        raise BackupError(f"could not read the revision in {dump}: {data.stderr.strip()}")
    lines = data.stdout.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("COPY ") and line.rstrip().endswith("FROM stdin;"):
            row = lines[number + 1] if number + 1 < len(lines) else "\\."
            return None if row == "\\." else row.split("\t")[0]
    return None


def pg_restore_into(dump: Path, target: URL) -> None:
    """``pg_restore --clean --if-exists --no-owner --no-privileges`` into the database at ``target``, in
    one transaction (``--single-transaction --exit-on-error``): all of it or, on any error, nothing."""
    pg_restore = _pg_tool("pg_restore")
    result = subprocess.run(
        [pg_restore, "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
         "--exit-on-error", f"--dbname={_conninfo(target)}", str(dump)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed, nothing was restored: {result.stderr.strip()}")
