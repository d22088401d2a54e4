"""``Storage``: one database, its engine, its schema version, and units of work over it.

Each service call on ``storage.sessions`` runs in a transaction of its own; inside
``storage.unit_of_work()`` every call joins one transaction that commits once at the end or rolls back
on any exception. The schema is checked once, at the first unit of work: a database behind the code is
refused with the command that fixes it, never silently used or silently migrated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import URL, Engine
from sqlalchemy.orm import Session, sessionmaker

from edi_storage.config import Settings, database_url
from edi_storage.engine import WRITE_INTENT, create_storage_engine, ensure_wal, sqlite_file
from edi_storage.error_mapping import database_errors
from edi_storage.errors import DatabaseUnavailable, InvalidInput
from edi_storage.migrate.scripts import alembic_config
from edi_storage.migrate.state import SchemaState, SchemaStatus, inspect_schema, unusable
from edi_storage.monitoring import QueryRecorder
from edi_storage.schemas.common import field_errors
from edi_storage.services.audit import AuditService, reset_audit_context, set_audit_context
from edi_storage.services.sessions import SessionService

if TYPE_CHECKING:
    # Imported when first used: a command that reads sessions need not import the library (and Pillow),
    # the gallery or the whole-database operations.
    from edi_storage.ops.maintenance import Maintenance
    from edi_storage.services.analytics import AnalyticsService
    from edi_storage.services.gallery import GalleryService
    from edi_storage.services.library import LibraryService

log = logging.getLogger(__name__)
# A library logs and leaves the handlers to the application (logging HOWTO, "Configuring Logging for a
# Library"): records under "edi_storage" go nowhere until the application configures logging. Set here,
# where every logging module is reached from, not in the package's __init__: importing logging there
# would cost the command line's --help what it does not use.
logging.getLogger("edi_storage").addHandler(logging.NullHandler())


class UnitOfWork:
    """One transaction: the SQLAlchemy session and the services bound to it (made when first used, as
    most units of work use one or two of them).

    The services run every statement through ``session``; before each call, whatever the application
    changed through the same session is flushed, so both always see the same rows.
    """

    def __init__(self, session: Session, actor: str | None, recorder: QueryRecorder | None = None) -> None:
        self.session = session
        self.actor = actor
        self._recorder = recorder

    @contextmanager
    def _joined(self, *, readonly: bool = False) -> Iterator[Session]:
        self.session.flush()
        yield self.session

    @cached_property
    def sessions(self) -> SessionService:
        return SessionService(self._joined, self._recorder)

    @cached_property
    def audit(self) -> AuditService:
        return AuditService(self._joined, self._recorder)

    @cached_property
    def library(self) -> LibraryService:
        from edi_storage.services.library import LibraryService

        return LibraryService(self._joined, self._recorder)

    @cached_property
    def gallery(self) -> GalleryService:
        from edi_storage.services.gallery import GalleryService

        return GalleryService(self._joined, self._recorder)

    @cached_property
    def analytics(self) -> AnalyticsService:
        from edi_storage.services.analytics import AnalyticsService

        return AnalyticsService(self._joined, self._recorder)


class Storage:
    """The storage of one database.

    ``Storage()`` opens ``./edi_sessions.db`` (or ``EDI_STORAGE_URL``); a missing or empty database is
    created at the newest schema, unless ``create=False``: then a missing, empty or foreign database is
    refused at once, and nothing is written (the command line opens every database this way but for
    ``upgrade``). A
    database that holds another application's tables is never changed unless ``upgrade()`` is called.
    ``auto_upgrade=True`` also upgrades an older one (after a checked backup).
    ``creator`` hands SQLAlchemy a ready DBAPI connection (tests copy a migrated template into memory).
    ``settings`` gives every option at once (``Settings(pool_size=20, sqlite_cache_size_kib=65536)``);
    without it they come from ``EDI_STORAGE_*``, and the arguments above win over either.
    """

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        auto_upgrade: bool | None = None,
        backup_before_upgrade: bool | None = None,
        busy_timeout_ms: int | None = None,
        echo: bool | None = None,
        record_query_performance: bool | None = None,
        creator: Callable[[], Any] | None = None,
        create: bool = True,
        settings: Settings | None = None,
    ) -> None:
        given: dict[str, Any] = {
            "auto_upgrade": auto_upgrade,
            "backup_before_upgrade": backup_before_upgrade,
            "busy_timeout_ms": busy_timeout_ms,
            "echo": echo,
            "record_query_performance": record_query_performance,
        }
        if url is not None:
            given["url"] = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        chosen = settings.model_dump() if settings is not None else {}
        try:
            self.settings = Settings(**chosen | {k: v for k, v in given.items() if v is not None})
        except ValidationError as error:
            raise InvalidInput(field_errors(error)) from None
        self.url = database_url(self.settings.url)
        path = sqlite_file(self.url)
        if not create and creator is None and path is not None and not path.exists():
            raise DatabaseUnavailable(f"there is no database at {path}; `edi-storage upgrade` creates one")
        self.engine: Engine = create_storage_engine(self.url, self.settings, creator=creator)
        self._writer = sessionmaker(
            self.engine.execution_options(**{WRITE_INTENT: True}), expire_on_commit=False
        )
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._schema_ok = False
        self._wal_ok = False
        self._opened_as: SchemaStatus | None = None
        self.recorder = (
            QueryRecorder(
                self.engine,
                retention_days=self.settings.query_performance_retention_days,
                slow_query_ms=self.settings.slow_query_ms,
            )
            if self.settings.record_query_performance
            else None
        )
        self.sessions = SessionService(self._own_transaction, self.recorder)
        self.audit = AuditService(self._own_transaction, self.recorder)

        try:
            self._open(create=create)
        except BaseException:
            # Refused, or not a database at all: no connection (and so no -wal or -shm file beside a
            # file that is not ours to change) outlives the constructor that raised.
            self.engine.dispose()
            raise

    def _open(self, *, create: bool) -> None:
        status = self.schema_status()
        if not create and status.state in {SchemaState.EMPTY, SchemaState.FOREIGN}:
            refused = unusable(status)
            assert refused is not None
            raise refused
        if (create and status.state is SchemaState.EMPTY) or (
            self.settings.auto_upgrade and status.state in {SchemaState.BEHIND, SchemaState.REFERENCE}
        ):
            self.upgrade()
        elif status.state is SchemaState.CURRENT:
            self._opened_as = status  # the first unit of work need not inspect the schema again

    # -- schema ----------------------------------------------------------------------------------

    @cached_property
    def maintenance(self) -> Maintenance:
        from edi_storage.ops.maintenance import Maintenance

        return Maintenance(self)

    @cached_property
    def library(self) -> LibraryService:
        from edi_storage.services.library import LibraryService

        return LibraryService(self._own_transaction, self.recorder)

    @cached_property
    def gallery(self) -> GalleryService:
        from edi_storage.services.gallery import GalleryService

        return GalleryService(self._own_transaction, self.recorder)

    @cached_property
    def analytics(self) -> AnalyticsService:
        from edi_storage.services.analytics import AnalyticsService

        return AnalyticsService(self._own_transaction, self.recorder)

    def schema_status(self) -> SchemaStatus:
        with database_errors(), self.engine.connect() as connection:
            return inspect_schema(connection)

    def current_revision(self) -> str | None:
        return self.schema_status().revision

    def upgrade(self, *, backup: bool | None = None) -> None:
        """``alembic upgrade head`` on this database, with the same revisions, lock and backup."""
        from alembic import command

        config = alembic_config(self.url.render_as_string(hide_password=False))
        config.attributes["edi_storage.upgrade"] = True
        config.attributes["edi_storage.backup"] = (
            self.settings.backup_before_upgrade if backup is None else backup
        )
        before = self.schema_status().revision
        with database_errors(), self.engine.connect() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        status = self.schema_status()
        after = status.revision
        where = self.url.render_as_string(hide_password=True)
        if before != after:
            log.info("upgraded %s from revision %s to %s", where, before or "none (new database)", after)
        else:
            log.debug("%s already at revision %s", where, after)
        ensure_wal(self.engine)  # a database edi-storage created or migrated is one it writes
        self._wal_ok = True
        self._schema_ok = False
        self._opened_as = status  # the first unit of work need not inspect the schema again

    def ensure_current(self) -> None:
        """Raise the schema error that keeps the services from this database; checked once."""
        if self._schema_ok:
            return
        status, self._opened_as = self._opened_as or self.schema_status(), None
        if (error := unusable(status)) is not None:
            raise error
        self._schema_ok = True

    # -- transactions ----------------------------------------------------------------------------
    @contextmanager
    def unit_of_work(
        self, *, actor: str | None = None, audit: bool = True, readonly: bool = False
    ) -> Iterator[UnitOfWork]:
        """One transaction over several service calls: commits at the end, rolls back on any exception.

        ``actor`` is recorded in the audit trail of every change made in it; ``audit=False`` records
        none of them (an explicit choice, for bulk imports). A writing unit of work takes SQLite's write
        lock up front (BEGIN IMMEDIATE) and so queues behind another writer; ``readonly=True`` starts a
        plain read transaction, which under WAL never waits.
        """
        self.ensure_current()
        if not readonly and not self._wal_ok:
            # The journal mode is written into the file: switched at the first write, never by a read
            # (a backup opened to look at it stays a single file in its own mode).
            ensure_wal(self.engine)
            self._wal_ok = True
        factory = self._reader if readonly else self._writer
        with database_errors(), factory() as session, session.begin():
            context_set = not readonly and set_audit_context(session, actor, audit)
            yield UnitOfWork(session, actor, self.recorder)
            if context_set:
                reset_audit_context(session)
        if self.recorder is not None:  # after the commit: its own transaction cannot wait on ours
            self.recorder.flush_if_full()

    @contextmanager
    def _own_transaction(self, *, readonly: bool = False) -> Iterator[Session]:
        """The session scope of ``storage.<service>`` calls: a unit of work per call."""
        with self.unit_of_work(readonly=readonly) as uow:
            yield uow.session

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
        self.engine.dispose()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Storage({self.url.render_as_string(hide_password=True)!r})"
