"""Keeping a database healthy: backups and their rotation, restore, integrity and drift checks, vacuum,
analyze, checkpoint, size, and the query-performance metrics.

The operations on a whole database (everything but ``performance_metrics``) work on the file or server
itself, not in a transaction: they run on ``storage.maintenance``, never inside a unit of work.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, func, inspect, select, text
from sqlalchemy import exc as sa_exc

from edi_storage.backups import (
    DEFAULT_POLICY,
    Backup,
    BackupError,
    RetentionPolicy,
    backup_postgres,
    backup_sqlite_file,
    copy_sqlite,
    delete_backup,
    list_backups,
    plain_sqlite,
    plan_rotation,
    sqlite_revision,
    verify_sqlite,
)
from edi_storage.engine import sqlite_file
from edi_storage.error_mapping import database_errors
from edi_storage.errors import InvalidInput
from edi_storage.migrate.scripts import VERSION_TABLE, include_name, known_revisions
from edi_storage.migrate.state import inspect_schema, unusable
from edi_storage.models import Base
from edi_storage.models.base import utcnow
from edi_storage.models.monitoring import QueryPerformance
from edi_storage.monitoring import QueryRecorder
from edi_storage.schemas.maintenance import QueryTypeMetrics
from edi_storage.schemas.operations import (
    BackupReport,
    CheckReport,
    HealthReport,
    RestoreReport,
    RotationReport,
    SizeReport,
    TableSize,
)
from edi_storage.services.base import Service, SessionScope

if TYPE_CHECKING:
    from edi_storage.storage import Storage


def _report(backup: Backup) -> BackupReport:
    return BackupReport(
        path=backup.path, taken_at=backup.taken_at, revision=backup.revision, bytes=backup.bytes
    )


def _sqlite_integrity(conn: Connection) -> tuple[str, int | None]:
    """integrity_check's verdict and the foreign_key_check count. Damage bad enough that SQLite aborts
    the check ("database disk image is malformed") is a verdict too, not an error of the check."""
    try:
        integrity = "; ".join(str(r[0]) for r in conn.exec_driver_sql("PRAGMA integrity_check"))
        violations = len(conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall())
    except sa_exc.DatabaseError as error:
        conn.rollback()
        return f"check aborted: {error.orig}", None
    return integrity, violations


def _wal_bytes(database: Path | None) -> int | None:
    if database is None:
        return None
    wal = database.with_name(database.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


class MaintenanceService(Service):
    def __init__(
        self, scope: SessionScope, recorder: QueryRecorder | None = None, *, storage: Storage | None = None
    ) -> None:
        super().__init__(scope, recorder)
        self._storage = storage

    def performance_metrics(self, hours: float = 24) -> list[QueryTypeMetrics]:
        """Count, average, max and min SQL time and rows per query type over the last ``hours``.

        Empty unless recording is on (``Storage(record_query_performance=True)``); what this process
        recorded but had not written yet is written first.
        """
        if not 0 < hours <= 24 * 366:
            raise InvalidInput.single("hours", "must be more than 0 and at most a year", hours)
        if self.recorder is not None:
            self.recorder.flush()
        qp = QueryPerformance
        statement = (
            select(
                qp.query_type,
                func.count(),
                func.avg(qp.execution_time),
                func.max(qp.execution_time),
                func.min(qp.execution_time),
                func.avg(qp.rows_returned),
                func.sum(qp.rows_returned),
            )
            .where(qp.timestamp >= utcnow() - timedelta(hours=hours))
            .group_by(qp.query_type)
            .order_by(qp.query_type)
        )
        with self._tx(readonly=True) as s:
            rows = s.execute(statement).all()
        return [
            QueryTypeMetrics(
                query_type=kind,
                count=count,
                avg_time=float(avg_time),
                max_time=float(max_time),
                min_time=float(min_time),
                avg_rows=float(avg_rows),
                total_rows=int(total_rows),
            )
            for kind, count, avg_time, max_time, min_time, avg_rows, total_rows in rows
        ]

    def _whole_database(self) -> Storage:
        """The Storage this service runs on: whole-database operations never run in a unit of work."""
        if self._storage is None:
            raise TypeError("whole-database operations run on storage.maintenance, not inside a unit of work")
        return self._storage

    def _file(self) -> Path | None:
        """The SQLite file, or None for PostgreSQL and in-memory databases."""
        return sqlite_file(self._whole_database().url)

    # -- backups ---------------------------------------------------------------------------------
    def backup(self, directory: Path, *, compress: bool = False) -> BackupReport:
        """A verified backup in ``directory``; reported only after it passed its checks."""
        storage = self._whole_database()
        if storage.engine.dialect.name == "postgresql":
            return _report(backup_postgres(storage.url, directory))
        database = self._file()
        if database is None:
            raise BackupError("an in-memory database cannot be backed up to a file")
        return _report(backup_sqlite_file(database, directory, compress=compress))

    @staticmethod
    def rotate(
        directory: Path, *, dry_run: bool = False, policy: RetentionPolicy = DEFAULT_POLICY
    ) -> RotationReport:
        keep, delete = plan_rotation(list_backups(directory), now=utcnow(), policy=policy)
        if not dry_run:
            for backup in delete:
                delete_backup(backup)
        return RotationReport(kept=[b.path for b in keep], deleted=[b.path for b in delete], dry_run=dry_run)

    @staticmethod
    def restore(backup: Path, target: Path, *, overwrite: bool = False) -> RestoreReport:
        """Restore a SQLite backup into ``target`` and bring it to the newest schema.

        The backup is checked first (integrity, a revision this release knows); an existing database at
        ``target`` is only replaced with ``overwrite=True``, and then through SQLite's backup API, so a
        process reading it never sees half a file.
        """
        if not backup.exists():
            raise BackupError(f"no backup at {backup}")
        if target.exists() and target.stat().st_size > 0 and not overwrite:
            raise BackupError(f"{target} already holds a database; refusing to overwrite it without --force")
        with plain_sqlite(backup) as plain:
            verify_sqlite(plain)
            revision = sqlite_revision(plain)
            if revision is not None and revision not in known_revisions():
                raise BackupError(
                    f"{backup} is at revision {revision!r}, newer than this edi-storage knows; "
                    "upgrade edi-storage"
                )
            copy_sqlite(plain, target)
        from edi_storage.storage import Storage

        with Storage(f"sqlite:///{target}", backup_before_upgrade=False) as restored:
            if unusable(restored.schema_status()) is not None:
                restored.upgrade()
            after = restored.current_revision()
        return RestoreReport(target=target, revision_before=revision, revision_after=after)

    # -- health ----------------------------------------------------------------------------------
    def check(self) -> CheckReport:
        """Integrity, foreign keys, schema revision and drift from the models, WAL size."""
        problems: list[str] = []
        integrity: str | None = None
        violations: int | None = None
        with database_errors(), self._whole_database().engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                integrity, violations = _sqlite_integrity(conn)
                if integrity != "ok":
                    problems.append(f"integrity_check: {integrity}")
                if violations:
                    problems.append(f"{violations} rows point at missing parents (foreign_key_check)")
            status = inspect_schema(conn)
            if (error := unusable(status)) is not None:
                problems.append(str(error))
            drift: list[str] = []
            if status.revision == status.head:
                context = MigrationContext.configure(
                    conn,
                    opts={"include_name": include_name, "compare_type": True, "version_table": VERSION_TABLE},
                )
                drift = [repr(diff) for diff in compare_metadata(context, Base.metadata)]
                if drift:
                    problems.append(f"the schema differs from this release's models in {len(drift)} places")
            conn.rollback()
        return CheckReport(
            ok=not problems,
            problems=problems,
            integrity=integrity,
            foreign_key_violations=violations,
            drift=drift,
            revision=status.revision,
            head=status.head,
            wal_bytes=_wal_bytes(self._file()),
        )

    def size(self) -> SizeReport:
        """Rows and bytes per table (bytes from SQLite's dbstat, or pg_total_relation_size)."""
        with database_errors(), self._whole_database().engine.connect() as conn:
            names = sorted(inspect(conn).get_table_names())
            tables = []
            sqlite = conn.dialect.name == "sqlite"
            sizes: dict[str, int] = {}  # every table and index (SQLite)
            if sqlite:
                sizes = {
                    str(n): int(b)
                    for n, b in conn.exec_driver_sql("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")
                }
            for name in names:
                rows = conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                size = (
                    sizes.get(name)
                    if sqlite
                    else conn.execute(text("SELECT pg_total_relation_size(:t)"), {"t": name}).scalar_one()
                )
                tables.append(TableSize(name=name, rows=rows, bytes=size))
            page_size = free = None
            if sqlite:
                page_size = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
                free = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar_one())
            conn.rollback()
        database = self._file()
        return SizeReport(
            database_bytes=database.stat().st_size if database is not None else None,
            wal_bytes=_wal_bytes(database),
            free_pages=free,
            page_size=page_size,
            tables=tables,
            objects=sizes,
        )

    def health(self, history: Path | None = None) -> HealthReport:
        """Bytes of every table and index (SQLite's dbstat), WAL size, free pages, rows per table, and
        growth since the last report (kept in ``history``, by default ``<db>.health.json``)."""
        sizes = self.size()
        objects = sizes.objects
        database = self._file()
        history = history or (database.with_name(database.name + ".health.json") if database else None)
        previous: dict[str, Any] = json.loads(history.read_text()) if history and history.exists() else {}
        now = utcnow()
        growth = {
            name: size - int(previous.get("objects", {}).get(name, 0)) for name, size in objects.items()
        }
        report = HealthReport(
            taken_at=now,
            previous_at=previous.get("taken_at"),
            database_bytes=sizes.database_bytes,
            wal_bytes=sizes.wal_bytes,
            free_pages=sizes.free_pages,
            rows={t.name: t.rows for t in sizes.tables},
            objects=objects,
            growth=growth if previous else {},
        )
        if history is not None:
            history.write_text(json.dumps({"taken_at": now.isoformat(), "objects": objects}) + "\n")
        return report

    def vacuum(self) -> None:
        """Rewrite the file without its free pages (deleting rows alone never shrinks it). Under WAL
        the rewritten pages land in the WAL first, so SQLite's file is checkpointed right after."""
        sqlite = self._whole_database().engine.dialect.name == "sqlite"
        self._autocommit("VACUUM" if sqlite else "VACUUM ANALYZE")
        self.checkpoint()

    def analyze(self) -> None:
        self._autocommit("ANALYZE")

    def checkpoint(self) -> None:
        """Copy the WAL into the database file and truncate it (SQLite only)."""
        if self._whole_database().engine.dialect.name == "sqlite":
            self._autocommit("PRAGMA wal_checkpoint(TRUNCATE)")

    def _autocommit(self, statement: str) -> None:
        """Statements that refuse to run inside a transaction, sent straight to the driver."""
        with database_errors(), self._whole_database().engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                driver = conn.connection.driver_connection
                assert driver is not None
                driver.execute(statement)
            else:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(statement)
