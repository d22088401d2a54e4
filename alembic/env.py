"""Alembic environment for edi-storage.

Run by ``alembic upgrade head`` (URL from ``EDI_STORAGE_URL``, default ``sqlite:///edi_sessions.db``)
and by ``Storage.upgrade()`` / ``edi-storage upgrade``, which pass their own connection in
``config.attributes["connection"]`` (a ``Connection``, or an ``Engine`` as pytest-alembic passes, from
which a connection is opened for the run and closed after). Both paths get the same guarantees, in this
order:

1. the database is classified (edi_storage.migrate.state): a revision this release does not know is
   refused untouched; a reference database is verified and stamped at the base revision; a database that
   matches nothing we know is refused untouched, with what differs;
2. upgrades are serialised (lock file beside a SQLite file, advisory lock on PostgreSQL);
3. a SQLite file that holds tables is backed up and the backup checked before anything changes;
4. on SQLite, foreign keys are switched off *outside* the transaction (the pragma is a no-op inside one),
   because batch mode's move-and-copy drops parent tables and would cascade-delete every child row; the
   migration runs in one ``BEGIN IMMEDIATE`` transaction and ``PRAGMA foreign_key_check`` must come back
   empty before it commits. Any failure rolls everything back.

From the command line the logging sections of ``alembic.ini`` are applied, so that Alembic prints its
usual "Running upgrade ..." lines; run programmatically (a connection given, or Storage.upgrade()) the
application's logging is left as it is.
"""

from __future__ import annotations

import logging.config
import os
from contextlib import ExitStack
from pathlib import Path

from alembic import command, context
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, text

from edi_storage.config import Settings
from edi_storage.engine import WRITE_INTENT, create_storage_engine, normalise_url, set_sqlite_foreign_keys
from edi_storage.errors import MigrationFailed
from edi_storage.migrate.safety import (
    backup_sqlite,
    postgres_migration_lock,
    pre_migration_backup_path,
    sqlite_has_tables,
    sqlite_migration_lock,
)
from edi_storage.migrate.scripts import VERSION_TABLE, include_name
from edi_storage.migrate.state import (
    BASE_REVISION,
    SchemaState,
    SchemaStatus,
    inspect_schema,
    read_revision,
    refusal,
)
from edi_storage.models import Base

config = context.config


def database_url() -> str:
    return (
        config.get_main_option("sqlalchemy.url")
        or os.environ.get("EDI_STORAGE_URL")
        or "sqlite:///edi_sessions.db"
    )


def configure_logging() -> None:
    """Apply the ini file's logging sections, as Alembic's own templates do, but only for the command line.

    A caller that runs the migrations from its own process (Storage.upgrade(), `edi-storage upgrade`, a
    test harness handing over its connection) owns the logging configuration: a library must not add
    handlers to its root logger or change its levels. ``configure_logger = False`` in the attributes
    (Alembic's cookbook convention) switches it off as well.
    """
    if config.config_file_name is None or not config.attributes.get("configure_logger", True):
        return
    if config.attributes.get("connection") is not None or config.attributes.get("edi_storage.upgrade"):
        return
    if not config.file_config.has_section("loggers"):  # an ini without logging sections: nothing to apply
        return
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def direction(connection: Connection) -> str | None:
    """ "upgrade", "downgrade", or None for a command that migrates nothing (current, check, history,
    revision --autogenerate, which must not write a version stamp or a backup file).

    `alembic upgrade|downgrade` on the command line and Storage.upgrade() say so; a tool calling
    ``command.upgrade``/``command.downgrade`` itself (pytest-alembic) is known by its destination
    revision, compared with where the database stands.
    """
    if config.attributes.get("edi_storage.upgrade"):
        return "upgrade"
    if config.attributes.get("edi_storage.downgrade"):
        return "downgrade"
    cmd: tuple[object, ...] | None = getattr(config.cmd_opts, "cmd", None)
    if cmd is not None:
        return (
            "upgrade" if cmd[0] is command.upgrade else "downgrade" if cmd[0] is command.downgrade else None
        )
    try:
        destination = context.get_revision_argument()
    except KeyError:  # check, revision, current: no destination at all
        return None
    if not isinstance(destination, str):
        return None
    if destination in {"head", "heads"} or destination.startswith("+"):
        return "upgrade"
    if destination == "base" or destination.startswith("-"):
        return "downgrade"
    with connection.begin():
        current = read_revision(connection)
    if current is None:
        return "upgrade"
    below = {r.revision for r in context.script.iterate_revisions(current, "base")}
    return "downgrade" if destination in below and destination != current else "upgrade"


def backup_wanted() -> bool:
    if "edi_storage.backup" in config.attributes:
        return bool(config.attributes["edi_storage.backup"])
    x_args = context.get_x_argument(as_dictionary=True)
    value = x_args.get("backup", os.environ.get("EDI_STORAGE_BACKUP_BEFORE_UPGRADE", "true"))
    return value.lower() not in {"0", "false", "no", "off"}


def classify(connection: Connection) -> SchemaStatus:
    """Refuse, untouched, a database this release must not migrate; otherwise say where it stands."""
    with connection.begin():
        status = inspect_schema(connection)
    if (error := refusal(status)) is not None:
        raise error
    return status


def adopt(connection: Connection) -> None:
    """Stamp a verified reference database at the base revision, inside the migration's transaction,
    so that a migration that fails afterwards leaves it exactly as it was, unstamped."""
    MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).stamp(
        context.script, BASE_REVISION
    )


def refuse_orphans(connection: Connection) -> None:
    """With foreign keys off during the migration, check them before the commit instead."""
    violations = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
    if violations:
        raise MigrationFailed(
            f"the migration would leave {len(violations)} rows pointing at missing parents "
            f"(first: table {violations[0][0]!r}, rowid {violations[0][1]})"
        )


def restore_foreign_keys(connection: Connection) -> None:
    if connection.in_transaction():  # an aborted run: nothing of it may be kept
        connection.rollback()
    set_sqlite_foreign_keys(connection, True)


def run_on(connection: Connection) -> None:
    if connection.in_transaction():
        connection.commit()
    sqlite = connection.dialect.name == "sqlite"
    database = connection.engine.url.database if sqlite else None
    file_path = Path(database) if database not in (None, "", ":memory:") else None

    with ExitStack() as stack:
        moving = direction(connection)
        upgrading = moving == "upgrade"
        if moving is not None:
            # Serialise before looking at the database, so two upgraders cannot both decide to adopt it.
            if file_path is not None:
                stack.enter_context(sqlite_migration_lock(file_path))
            elif connection.dialect.name == "postgresql":
                stack.enter_context(postgres_migration_lock(connection))
        backup: Path | None = None
        status = classify(connection) if upgrading else None
        pending = status is not None and status.state is not SchemaState.CURRENT
        if pending and file_path is not None and backup_wanted() and sqlite_has_tables(file_path):
            assert status is not None
            backup = backup_sqlite(
                file_path, pre_migration_backup_path(file_path, status.revision, status.head)
            )
        if sqlite:
            set_sqlite_foreign_keys(connection, False)
            stack.callback(restore_foreign_keys, connection)
        connection.execution_options(**{WRITE_INTENT: True})
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            version_table=VERSION_TABLE,
            render_as_batch=True,
            compare_type=True,
            compare_server_default=True,
            include_name=include_name,
            # tools that drive autogenerate (pytest-alembic's model/DDL test) hand their own hook in
            process_revision_directives=config.attributes.get("process_revision_directives"),
        )
        try:
            with context.begin_transaction():
                if status is not None and status.state is SchemaState.REFERENCE:
                    adopt(connection)
                context.run_migrations()
                if sqlite:
                    refuse_orphans(connection)
        except Exception as exc:
            # A failed migration is MigrationFailed; other commands (revision --autogenerate, check)
            # migrate nothing, and their exceptions are their callers'.
            if isinstance(exc, MigrationFailed) or moving is None:
                raise
            where = f"; a backup taken before it is at {backup}" if backup is not None else ""
            raise MigrationFailed(
                f"the migration failed and was rolled back, the database is as it was{where}. Cause: {exc}"
            ) from exc


def main() -> None:
    configure_logging()
    if context.is_offline_mode():
        context.configure(
            url=database_url(),
            target_metadata=Base.metadata,
            version_table=VERSION_TABLE,
            render_as_batch=True,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    given: Connection | Engine | None = config.attributes.get("connection")
    if isinstance(given, Engine):  # the caller's engine: it stays theirs, only our connection is closed
        with given.connect() as connection:
            run_on(connection)
        return
    if given is not None:
        run_on(given)
        return
    engine = create_storage_engine(normalise_url(database_url()), Settings())  # EDI_STORAGE_* apply
    try:
        with engine.connect() as connection:
            run_on(connection)
    finally:
        engine.dispose()


main()
