"""Engine creation, one place per dialect.

SQLite is configured the way a long-lived application database needs it (see docs/architecture.md):

* the sqlite3 driver's own transaction handling is switched off (``isolation_level = None``) and
  SQLAlchemy emits ``BEGIN`` itself, because the driver's legacy mode skips BEGIN before SELECT and
  SAVEPOINT, which breaks rollbacks of released savepoints;
* a unit of work that writes begins with ``BEGIN IMMEDIATE``: it takes the write lock up front and so
  waits on the busy timeout behind another writer, instead of failing with "database is locked" when a
  deferred read lock cannot be upgraded half-way through;
* WAL, ``synchronous=NORMAL``, ``foreign_keys=ON`` and a busy timeout on every connection;
* ``sqlite://`` (memory) uses one shared connection, or every checkout would see a new, empty database.

PostgreSQL gets psycopg 3 and ``pool_pre_ping`` so that a dropped connection is replaced, not reported.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.pool import StaticPool

from edi_storage.errors import DatabaseUnavailable

# Execution option that marks a connection as a writer's: its transaction starts with BEGIN IMMEDIATE.
WRITE_INTENT = "edi_storage_write"
# SQLite's primary result code for "attempt to write a readonly database"; the extended codes
# (SQLITE_READONLY_DIRECTORY, ..._CANTINIT, ...) share its low byte.
SQLITE_READONLY = 8


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def is_memory(url: URL) -> bool:
    return is_sqlite(url) and url.database in (None, "", ":memory:")


def sqlite_file(url: URL) -> Path | None:
    """The database file a SQLite URL points at, or None for a memory database."""
    if not is_sqlite(url) or is_memory(url):
        return None
    return Path(str(url.database))


def normalise_url(url: str | URL) -> URL:
    """Parse a URL; a bare ``postgresql://`` means psycopg 3, the driver edi-storage installs."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_storage_engine(
    url: str | URL,
    *,
    busy_timeout_ms: int = 30_000,
    echo: bool = False,
    creator: Callable[[], Any] | None = None,
) -> Engine:
    parsed = normalise_url(url)
    if is_sqlite(parsed):
        return _sqlite_engine(parsed, busy_timeout_ms=busy_timeout_ms, echo=echo, creator=creator)
    extra: dict[str, Any] = {"creator": creator} if creator is not None else {}
    return create_engine(parsed, pool_pre_ping=True, echo=echo, **extra)


def _sqlite_engine(
    url: URL, *, busy_timeout_ms: int, echo: bool, creator: Callable[[], Any] | None
) -> Engine:
    path = sqlite_file(url)
    if path is not None and not path.parent.exists():
        raise DatabaseUnavailable(
            f"cannot open SQLite database {str(path)!r}: directory {str(path.parent)!r} does not exist"
        )
    kwargs: dict[str, Any] = {"echo": echo, "connect_args": {"timeout": busy_timeout_ms / 1000}}
    if path is None:
        kwargs["poolclass"] = StaticPool
        kwargs["connect_args"]["check_same_thread"] = False
    if creator is not None:
        kwargs["creator"] = creator
    engine = create_engine(url, **kwargs)
    install_sqlite_hooks(engine, busy_timeout_ms=busy_timeout_ms)
    return engine


def install_sqlite_hooks(engine: Engine, *, busy_timeout_ms: int) -> None:
    """Pragmas on connect and SQLAlchemy-emitted BEGIN [IMMEDIATE]; see the module docstring for why."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_INTENT, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    @event.listens_for(engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        # SQLite decides when it opens a file whether the connection may write: one opened while the
        # file was read-only stays read-only after the file is made writable again. Such connections
        # are dropped like disconnected ones, so that the next call opens the file afresh.
        code = getattr(context.original_exception, "sqlite_errorcode", None)
        if code is not None and code & 0xFF == SQLITE_READONLY and sqlite_file(engine.url) is not None:
            context.is_disconnect = True


def ensure_wal(engine: Engine) -> None:
    """Put a SQLite file database in WAL mode (readers never wait on the writer).

    The journal mode is stored in the file, so this runs once a database is known to be ours (after a
    migration, or when its schema is found current) rather than on every connect: a database that
    edi-storage refuses to use must not be changed, not even in its header.
    """
    if sqlite_file(engine.url) is None:
        return
    with engine.connect() as connection:
        dbapi_connection = connection.connection.driver_connection
        assert dbapi_connection is not None
        if dbapi_connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            dbapi_connection.execute("PRAGMA journal_mode = WAL")


def set_sqlite_foreign_keys(connection: Connection, enabled: bool) -> None:
    """Switch foreign key enforcement on or off for one connection.

    SQLite ignores this pragma inside a transaction, so it is sent straight to the driver connection
    (which is in autocommit mode, see above) and only when no transaction is open.
    """
    if connection.in_transaction():
        raise RuntimeError("PRAGMA foreign_keys has no effect inside a transaction")
    dbapi_connection = connection.connection.driver_connection
    assert dbapi_connection is not None
    dbapi_connection.execute(f"PRAGMA foreign_keys = {'ON' if enabled else 'OFF'}")
