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
import logging
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import URL, Connection, create_engine, func, inspect, select, text
from sqlalchemy.exc import DBAPIError

from edi_storage.dialects import dialect_named
from edi_storage.engine import is_sqlite, normalise_url, sqlite_file
from edi_storage.error_mapping import database_errors
from edi_storage.errors import InvalidInput
from edi_storage.migrate.scripts import VERSION_TABLE, include_name, known_revisions
from edi_storage.migrate.state import SchemaState, inspect_schema, unusable
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
    dump_revision,
    is_postgres_dump,
    list_backups,
    pg_restore_into,
    plain_sqlite,
    plan_rotation,
    pre_upgrade_backups,
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
    VacuumReport,
)

if TYPE_CHECKING:
    from edi_storage.storage import Storage

log = logging.getLogger(__name__)


def _report(backup: Backup) -> BackupReport:
    return BackupReport(
        path=backup.path,
        taken_at=backup.taken_at,
        revision=backup.revision,
        bytes=backup.bytes,
        compressed=backup.compressed,
        kind=backup.kind,
    )


PG_WAL = "WAL size: not applicable on PostgreSQL (the server's WAL is shared by all its databases)"
PG_FREE_PAGES = (
    "free pages: not available on PostgreSQL (VACUUM keeps free space inside each table for reuse; "
    "the pgstattuple extension can report it)"
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
        """A verified backup in ``directory``; reported only after it passed its checks.

        SQLite: one file, ``<db>-<stamp>.db`` (``.db.gz`` with ``compress``) and its ``.json`` sidecar,
        nothing else. PostgreSQL: a ``pg_dump`` custom-format archive, which is always compressed.
        """
        storage = self._storage
        if not is_sqlite(storage.url):
            revision = storage.current_revision()
            report = _report(backup_postgres(storage.url, directory, compress=compress, revision=revision))
        else:
            database = self._file()
            if database is None:
                raise BackupError("an in-memory database cannot be backed up to a file")
            report = _report(backup_sqlite_file(database, directory, compress=compress))
        log.info(
            "backup %s taken and verified (%d bytes, revision %s)", report.path, report.bytes, report.revision
        )
        return report

    def rotate(
        self, directory: Path, *, dry_run: bool = False, policy: RetentionPolicy = DEFAULT_POLICY
    ) -> RotationReport:
        """Apply ``policy`` to the backups in ``directory`` together with the checked ``.bak`` backups
        upgrades took beside this database (a SQLite file): one set, one policy; the rest is deleted."""
        found = {b.path.resolve(): b for b in list_backups(directory)}
        database = self._file()
        if database is not None:
            found.update({b.path.resolve(): b for b in pre_upgrade_backups(database)})
        keep, delete = plan_rotation(found.values(), now=utcnow(), policy=policy)
        if not dry_run:
            for backup in delete:
                delete_backup(backup)
                log.info("backup %s deleted by the rotation policy", backup.path)
        return RotationReport(kept=[b.path for b in keep], deleted=[b.path for b in delete], dry_run=dry_run)

    @staticmethod
    def restore(backup: Path, target: Path | URL | str, *, overwrite: bool = False) -> RestoreReport:
        """Restore a backup into ``target`` and bring it to the newest schema.

        A SQLite backup goes into the file ``target``: the backup is checked first (integrity, a
        revision this release knows); an existing database at ``target`` is only replaced with
        ``overwrite=True``, and then through SQLite's backup API, so a process reading it never sees
        half a file. A PostgreSQL dump goes into the database at the URL ``target`` (``restore_postgres``).
        """
        if not backup.exists():
            raise BackupError(f"no backup at {backup}")
        if isinstance(target, URL) or (isinstance(target, str) and "://" in target):
            return Maintenance.restore_postgres(backup, target, overwrite=overwrite)
        target = Path(target)
        if backup.is_file() and is_postgres_dump(backup):
            raise BackupError(
                f"{backup} is a PostgreSQL dump, not a SQLite backup: restore it into a PostgreSQL "
                f"database (Maintenance.restore_postgres(dump, URL), or run "
                f"pg_restore --clean --if-exists --no-owner -d URL {backup})"
            )
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

    @staticmethod
    def restore_postgres(dump: Path, target: URL | str, *, overwrite: bool = False) -> RestoreReport:
        """Restore a ``pg_dump`` archive into the existing PostgreSQL database at ``target`` and bring it
        to the newest schema.

        The archive must be readable and at a revision this release knows. The target must be empty, or
        (only with ``overwrite=True``) an edi-storage database, which ``pg_restore --clean --if-exists``
        replaces; a database holding other tables is refused untouched. ``pg_restore`` runs in one
        transaction: on any error nothing is restored.
        """
        if not dump.is_file():
            raise BackupError(f"no backup at {dump}")
        if not is_postgres_dump(dump):
            raise BackupError(
                f"{dump} is not a pg_dump custom-format archive (a SQLite backup goes to a file)"
            )
        url = normalise_url(target) if isinstance(target, str) else target
        shown = url.render_as_string(hide_password=True)
        revision = dump_revision(dump)
        if revision is not None and revision not in known_revisions():
            raise BackupError(
                f"{dump} is at revision {revision!r}, newer than this edi-storage knows; upgrade edi-storage"
            )
        engine = create_engine(url)
        try:
            with database_errors(), engine.connect() as conn:
                status = inspect_schema(conn)
                conn.rollback()
        finally:
            engine.dispose()
        if status.state in {SchemaState.FOREIGN, SchemaState.UNRECOGNISED}:
            raise BackupError(
                f"{shown} holds tables that are not edi-storage's; restore into an empty database"
            )
        if status.state is not SchemaState.EMPTY and not overwrite:
            raise BackupError(f"{shown} already holds a database; refusing to overwrite it without --force")
        pg_restore_into(dump, url)
        from edi_storage.storage import Storage

        with Storage(url, backup_before_upgrade=False) as restored:
            if unusable(restored.schema_status()) is not None:
                restored.upgrade()
            after = restored.current_revision()
        return RestoreReport(target=shown, revision_before=revision, revision_after=after)

    # -- health ----------------------------------------------------------------------------------
    def check(self) -> CheckReport:
        """Integrity, foreign keys, schema revision and drift from the models, WAL size.

        ``checked`` names what was checked and ``not_checked`` what could not be, and why: on
        PostgreSQL integrity is amcheck's (``bt_index_check`` of every B-tree index with
        ``heapallindexed``, ``verify_heapam`` of every table) where the extension is installed or this
        role may create it (then inside the check's transaction, which is rolled back: nothing stays);
        foreign keys are checked there by counting the rows whose parent is missing.
        """
        problems: list[str] = []
        checked: list[str] = []
        not_checked: list[str] = []
        integrity: str | None = None
        violations: int | None = None
        with database_errors(), self._storage.engine.connect() as conn:
            if is_sqlite(self._storage.url):
                integrity, violations = self.dialect.integrity(conn)
                checked += ["PRAGMA integrity_check", "PRAGMA foreign_key_check"]
                if integrity is not None and integrity != "ok":
                    problems.append(f"integrity_check: {integrity}")
            else:
                integrity, ran = _amcheck(conn)
                (checked if ran else not_checked).append(integrity if not ran else f"amcheck: {ran}")
                if ran and integrity != "ok":
                    problems.append(f"amcheck: {integrity}")
                violations, constraints = _orphans(conn)
                checked.append(f"foreign keys: rows pointing at missing parents, {constraints} constraints")
                not_checked.append(PG_WAL)
            if violations:
                problems.append(f"{violations} rows point at missing parents (foreign key check)")
            status = inspect_schema(conn)
            if (error := unusable(status)) is not None:
                problems.append(str(error))
            drift: list[str] = []
            if status.revision == status.head:
                from alembic.autogenerate import compare_metadata
                from alembic.runtime.migration import MigrationContext

                context = MigrationContext.configure(
                    conn,
                    opts={"include_name": include_name, "compare_type": True, "version_table": VERSION_TABLE},
                )
                drift = [repr(diff) for diff in compare_metadata(context, Base.metadata)]
                if drift:
                    problems.append(f"the schema differs from this release's models in {len(drift)} places")
                checked += ["schema revision", "drift from the models"]
            else:
                checked.append("schema revision")
                not_checked.append("drift from the models: only checked at the newest revision")
            conn.rollback()
        database = self._file()
        if database is not None:
            checked.append("WAL size")
        return CheckReport(
            ok=not problems,
            problems=problems,
            integrity=integrity,
            foreign_key_violations=violations,
            drift=drift,
            revision=status.revision,
            head=status.head,
            wal_bytes=_wal_bytes(database),
            checked=checked,
            not_checked=not_checked,
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
            not_available: list[str] = []
            database = self._file()
            database_bytes = self._database_bytes(conn)
            if not is_sqlite(self._storage.url):
                page_size = int(conn.execute(text("SELECT current_setting('block_size')")).scalar_one())
                not_available += [PG_WAL, PG_FREE_PAGES]
            conn.rollback()
        return SizeReport(
            database_bytes=database_bytes,
            wal_bytes=_wal_bytes(database),
            free_pages=free,
            page_size=page_size,
            tables=tables,
            objects=objects,
            not_available=not_available,
        )

    def health(self, history: Path | None = None) -> HealthReport:
        """Bytes of every table and index (SQLite's dbstat), WAL size, free pages, rows per table, and,
        when given a ``history`` file, growth since the report recorded there (and this one recorded in
        it). Without one nothing is written: a report that only reads leaves no file beside the database.
        """
        sizes = self.size()
        objects = sizes.objects
        previous = _health_history(history) if history is not None and history.exists() else {}
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
            not_available=sizes.not_available,
        )
        if history is not None:
            history.write_text(json.dumps({"taken_at": now.isoformat(), "objects": objects}) + "\n")
        return report

    def _database_bytes(self, conn: Connection) -> int | None:
        """The SQLite file's size (None in memory), or the PostgreSQL database's."""
        if is_sqlite(self._storage.url):
            database = self._file()
            return database.stat().st_size if database is not None else None
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())

    def vacuum(self) -> VacuumReport:
        """SQLite: rewrite the file without its free pages (deleting rows alone never shrinks it) and say
        how many bytes that freed; under WAL the rewritten pages land in the WAL first, so the file is
        checkpointed right after (and measured after that). PostgreSQL: VACUUM ANALYZE, which makes dead
        rows' space reusable and refreshes the planner's statistics (see VacuumReport)."""
        with database_errors(), self._storage.engine.connect() as conn:
            before = self._database_bytes(conn)
            conn.rollback()
            self.dialect.outside_transaction(conn, self.dialect.vacuum_sql)
        self.checkpoint()
        with database_errors(), self._storage.engine.connect() as conn:
            after = self._database_bytes(conn)
            conn.rollback()
        freed = (
            before - after
            if is_sqlite(self._storage.url) and before is not None and after is not None
            else None
        )
        return VacuumReport(bytes_before=before, bytes_after=after, freed_bytes=freed)

    def analyze(self) -> None:
        with database_errors(), self._storage.engine.connect() as conn:
            self.dialect.outside_transaction(conn, "ANALYZE")

    def checkpoint(self) -> None:
        """Copy the WAL into the database file and truncate it (SQLite only; PostgreSQL has no file)."""
        if self.dialect.checkpoint_sql is None:
            return
        with database_errors(), self._storage.engine.connect() as conn:
            self.dialect.outside_transaction(conn, self.dialect.checkpoint_sql)


def _health_history(path: Path) -> dict[str, Any]:
    """The report a health history file keeps (``health --history`` wrote it); InvalidInput naming the
    file when it is not one."""
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        kept = None
    if not isinstance(kept, dict) or not isinstance(kept.get("objects", {}), dict):
        raise InvalidInput.single(
            "history", "is not a health history file (JSON written by health)", str(path)
        )
    return kept


def _amcheck(conn: Connection) -> tuple[str, str | None]:
    """amcheck over every table of the current schema and its B-tree indexes: (verdict, what ran), or
    (why not, None). Run inside the caller's transaction, which the caller rolls back, so an extension
    created here for the check does not stay."""
    installed = conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'amcheck'")).first()
    if installed is None:
        available = conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'amcheck'")).first()
        if available is None:
            return "integrity check not available on PostgreSQL (amcheck not installed)", None
        try:
            with conn.begin_nested():
                conn.execute(text("CREATE EXTENSION amcheck"))
        except DBAPIError as error:
            reason = _first_line(error)
            return f"integrity check not available on PostgreSQL (amcheck not installed; {reason})", None
    indexes = (
        conn.execute(
            text(
                "SELECT i.indexrelid::regclass::text FROM pg_index i"
                " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam"
                " JOIN pg_class t ON t.oid = i.indrelid"
                " WHERE am.amname = 'btree' AND t.relnamespace = current_schema()::regnamespace"
                " AND t.relpersistence = 'p' AND i.indisvalid AND i.indisready ORDER BY 1"
            )
        )
        .scalars()
        .all()
    )
    tables = (
        conn.execute(
            text(
                "SELECT c.oid::regclass::text FROM pg_class c WHERE c.relkind = 'r'"
                " AND c.relnamespace = current_schema()::regnamespace AND c.relpersistence = 'p' ORDER BY 1"
            )
        )
        .scalars()
        .all()
    )
    heap = conn.execute(text("SELECT 1 FROM pg_proc WHERE proname = 'verify_heapam'")).first() is not None
    failures: list[str] = []
    for index in indexes:
        try:
            with conn.begin_nested():
                conn.execute(text("SELECT bt_index_check(CAST(:i AS regclass), true)"), {"i": index})
        except DBAPIError as error:
            if _denied(error):
                return f"integrity check not available on PostgreSQL (amcheck: {_first_line(error)})", None
            failures.append(f"index {index}: {_first_line(error)}")
    for table in tables if heap else []:
        try:
            with conn.begin_nested():
                rows = conn.execute(
                    text("SELECT blkno, offnum, msg FROM verify_heapam(CAST(:t AS regclass)) LIMIT 5"),
                    {"t": table},
                ).all()
        except DBAPIError as error:
            if _denied(error):
                return f"integrity check not available on PostgreSQL (amcheck: {_first_line(error)})", None
            failures.append(f"table {table}: {_first_line(error)}")
            continue
        failures += [f"table {table}, block {blk}, item {off}: {msg}" for blk, off, msg in rows]
    ran = f"bt_index_check of {len(indexes)} B-tree indexes (heapallindexed)"
    if heap:
        ran += f", verify_heapam of {len(tables)} tables"
    return ("ok" if not failures else "; ".join(failures)), ran


def _first_line(error: DBAPIError) -> str:
    return (str(error.orig).strip().splitlines() or ["error"])[0]


def _denied(error: DBAPIError) -> bool:
    """A permission error (SQLSTATE 42501): amcheck is there but this role may not run it."""
    return getattr(error.orig, "sqlstate", None) == "42501"


def _orphans(conn: Connection) -> tuple[int, int]:
    """(rows whose foreign key points at a missing parent, foreign keys counted over), for a database
    with no check of its own: each foreign key as an anti-join."""
    inspector = inspect(conn)
    orphans = constraints = 0
    for table in inspector.get_table_names():
        for fk in inspector.get_foreign_keys(table):
            constraints += 1
            parent = fk["referred_table"]
            local, remote = fk["constrained_columns"], fk["referred_columns"]
            present = " AND ".join(f'c."{col}" IS NOT NULL' for col in local)
            joined = " AND ".join(f'p."{r}" = c."{col}"' for col, r in zip(local, remote, strict=True))
            orphans += int(
                conn.execute(
                    text(
                        f'SELECT count(*) FROM "{table}" c WHERE {present} '
                        f'AND NOT EXISTS (SELECT 1 FROM "{parent}" p WHERE {joined})'
                    )
                ).scalar_one()
            )
    return orphans, constraints
