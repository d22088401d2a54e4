"""Keeping a database healthy: backups and their rotation, restore, integrity and drift checks, vacuum,
analyze, checkpoint, size, and the query-performance metrics (``storage.maintenance``).

These work on the file or server as a whole, on connections of their own: ``VACUUM`` and SQLite's
checkpoint cannot run inside a transaction, and an integrity check or a size report reads every table,
which is nothing a unit of work's identity map could be coherent with. What differs between SQLite and
PostgreSQL here is in ``edi_storage.dialects``; only ``performance_metrics``, an ordinary read of the
``query_performance`` table, runs in a unit of work.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text

from edi_storage.dialects import dialect_named
from edi_storage.engine import is_sqlite, sqlite_file
from edi_storage.error_mapping import database_errors
from edi_storage.errors import InvalidInput
from edi_storage.migrate.scripts import VERSION_TABLE, include_name, known_revisions
from edi_storage.migrate.state import inspect_schema, unusable
from edi_storage.models import Base
from edi_storage.models.base import utcnow
from edi_storage.models.monitoring import QueryPerformance
from edi_storage.ops.backups import (
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

if TYPE_CHECKING:
    from edi_storage.storage import Storage


def _report(backup: Backup) -> BackupReport:
    return BackupReport(
        path=backup.path, taken_at=backup.taken_at, revision=backup.revision, bytes=backup.bytes
    )


def _wal_bytes(database: Path | None) -> int | None:
    if database is None:
        return None
    wal = database.with_name(database.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


class Maintenance:
    """The whole-database operations of one ``Storage``."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self.dialect = dialect_named(storage.engine.dialect.name)

    def performance_metrics(self, hours: float = 24) -> list[QueryTypeMetrics]:
        """Count, average, max and min SQL time and rows per query type over the last ``hours``.

        Empty unless recording is on (``Storage(record_query_performance=True)``); what this process
        recorded but had not written yet is written first.
        """
        if not 0 < hours <= 24 * 366:
            raise InvalidInput.single("hours", "must be more than 0 and at most a year", hours)
        if self._storage.recorder is not None:
            self._storage.recorder.flush()
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
        with self._storage.unit_of_work(readonly=True) as uow:
            rows = uow.session.execute(statement).all()
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

    def _file(self) -> Path | None:
        """The SQLite file, or None for PostgreSQL and in-memory databases."""
        return sqlite_file(self._storage.url)

    # -- backups ---------------------------------------------------------------------------------
    def backup(self, directory: Path, *, compress: bool = False) -> BackupReport:
        """A verified backup in ``directory``; reported only after it passed its checks."""
        storage = self._storage
        if not is_sqlite(storage.url):
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
        with database_errors(), self._storage.engine.connect() as conn:
            integrity, violations = self.dialect.integrity(conn)
            if integrity is not None:
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
        with database_errors(), self._storage.engine.connect() as conn:
            names = sorted(inspect(conn).get_table_names())
            objects = self.dialect.object_bytes(conn, names)  # every table, and (SQLite) every index
            tables = [
                TableSize(
                    name=name,
                    rows=conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one(),
                    bytes=objects.get(name),
                )
                for name in names
            ]
            page_size, free = self.dialect.pages(conn)
            conn.rollback()
        database = self._file()
        return SizeReport(
            database_bytes=database.stat().st_size if database is not None else None,
            wal_bytes=_wal_bytes(database),
            free_pages=free,
            page_size=page_size,
            tables=tables,
            objects=objects,
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
        """Rewrite the database without its free space (deleting rows alone never shrinks a file).
        Under WAL the rewritten pages land in the WAL first, so SQLite's file is checkpointed right after."""
        with database_errors(), self._storage.engine.connect() as conn:
            self.dialect.outside_transaction(conn, self.dialect.vacuum_sql)
        self.checkpoint()

    def analyze(self) -> None:
        with database_errors(), self._storage.engine.connect() as conn:
            self.dialect.outside_transaction(conn, "ANALYZE")

    def checkpoint(self) -> None:
        """Copy the WAL into the database file and truncate it (SQLite only; PostgreSQL has no file)."""
        if self.dialect.checkpoint_sql is None:
            return
        with database_errors(), self._storage.engine.connect() as conn:
            self.dialect.outside_transaction(conn, self.dialect.checkpoint_sql)
