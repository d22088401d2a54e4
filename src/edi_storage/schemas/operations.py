"""Reports of the operations commands (check, size, backup, rotate, restore)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from edi_storage.schemas.common import OutputModel


class CheckReport(OutputModel):
    """What ``check`` found; ``ok`` only when every check that ran passed. ``problems`` says what to look
    at; ``checked`` names the checks that ran and ``not_checked`` those that could not, and why (on
    PostgreSQL without amcheck, ``integrity`` says so too)."""

    ok: bool
    problems: list[str]
    integrity: str | None
    foreign_key_violations: int | None
    drift: list[str]
    revision: str | None
    head: str
    wal_bytes: int | None
    checked: list[str] = []
    not_checked: list[str] = []


class TableSize(OutputModel):
    name: str
    rows: int | None
    bytes: int | None


class SizeReport(OutputModel):
    database_bytes: int | None
    wal_bytes: int | None
    free_pages: int | None
    page_size: int | None
    tables: list[TableSize]
    objects: dict[str, int] = {}  # bytes of every table and index (SQLite's dbstat), every table (PostgreSQL)
    not_available: list[str] = []  # the figures left empty here, and why (PostgreSQL: WAL, free pages)


class VacuumReport(OutputModel):
    """The database's bytes before and after VACUUM: the file on SQLite (None for a database in memory,
    which has none), pg_database_size on PostgreSQL.

    ``freed_bytes`` is what the file shrank by on SQLite, whose VACUUM rewrites it. PostgreSQL's VACUUM
    makes dead rows' space reusable inside the tables and returns none of it to the operating system
    (that takes VACUUM FULL, which locks every table), so there it is None: the size may even grow."""

    bytes_before: int | None
    bytes_after: int | None
    freed_bytes: int | None


class BackupReport(OutputModel):
    path: Path
    taken_at: datetime
    revision: str | None
    bytes: int
    compressed: bool = False  # gzip (SQLite --compress); a PostgreSQL custom-format dump always is
    kind: str = "backup"  # or "pre-upgrade", the checked .bak an upgrade took beside the database


class RotationReport(OutputModel):
    kept: list[Path]
    deleted: list[Path]
    dry_run: bool


class RestoreReport(OutputModel):
    target: Path | str  # a SQLite file, or a PostgreSQL URL (password hidden)
    revision_before: str | None
    revision_after: str | None


class HealthReport(OutputModel):
    taken_at: datetime
    previous_at: datetime | None
    database_bytes: int | None
    wal_bytes: int | None
    free_pages: int | None
    rows: dict[str, int | None]
    objects: dict[str, int]  # table or index name -> bytes (indexes on SQLite only)
    growth: dict[str, int]  # bytes gained since the previous report (empty on the first)
    not_available: list[str] = []  # the figures left empty here, and why
