"""Engine creation, one place per dialect.

SQLite is configured the way a long-lived application database needs it (see docs/architecture.md):

* the sqlite3 driver's own transaction handling is switched off (``isolation_level = None``) and
  SQLAlchemy emits ``BEGIN`` itself, because the driver's legacy mode skips BEGIN before SELECT and
  SAVEPOINT, which breaks rollbacks of released savepoints;
* a unit of work that writes begins with ``BEGIN IMMEDIATE``: it takes the write lock up front and so
  waits on the busy timeout behind another writer, instead of failing with "database is locked" when a
  deferred read lock cannot be upgraded half-way through;
* WAL, ``synchronous=NORMAL``, ``foreign_keys=ON`` and a busy timeout on every connection;
* ``sqlite://`` (memory) has exactly one connection, or every checkout would see a new, empty database;
  it is lent to one unit of work at a time (``MemoryPool``, below).

PostgreSQL gets psycopg 3 and ``pool_pre_ping`` so that a dropped connection is replaced, not reported.

The in-memory database and threads
----------------------------------
A memory database *is* its one DBAPI connection, and a connection carries one transaction at a time.
SQLAlchemy's ``StaticPool`` hands that connection to every checkout at once, so two threads interleave
their transactions on it: "cannot start a transaction within a transaction", statements that see or
roll back another thread's half-done writes, and, as sqlite3 objects are used from two threads at once,
segmentation faults. Serialising is the only correct choice, so ``MemoryPool`` is a ``StaticPool`` whose
one connection is *lent to one thread at a time*: a checkout takes it, the checkin gives it back, and
every other thread waits for its turn (a unit of work holds it from its first statement to its commit
or rollback, a ``storage.<service>`` call for that call). Why this and not the alternatives:

* ``QueuePool(pool_size=1, max_overflow=0)`` serialises too, but a second checkout by the thread that
  holds the connection would wait out the whole timeout and fail (the test suite itself opens a
  connection inside another), its record can be recycled or invalidated and then calls the creator
  again (for ``sqlite://`` a new, empty database), and its timeout says "QueuePool limit of size 1
  overflow 0 reached". Here a lock sits around ``StaticPool``'s single record, the one piece that
  changes.
* The thread that holds the connection may check it out again (nothing in edi-storage nests:
  ``Storage()`` and ``ensure_current`` check the schema on a connection closed before the unit of work
  opens its session, and the query recorder writes in a transaction of its own after the unit of work
  has ended; callers and tests may). That checkout shares the connection, as it always did, and cannot
  deadlock; it gets a pool record of its own, so that every checkout is checked in exactly once
  (``StaticPool``'s one record is checked in by whichever of its checkouts closes first, which would
  give the connection back while the outer one still uses it). The pool's reset-on-return (a rollback)
  is done once, by the last checkin, so that an inner one does not roll back the outer transaction.
  The connection goes to another thread only when the holder has given back every checkout.
* Waits are ordinary (a writer behind another writer), so they are bounded by the busy timeout like
  SQLite's own lock waits, and past it raise ``Busy``, as a file database's lock would.
* The connection is never closed while the ``Storage`` lives: a connection SQLAlchemy invalidates (an
  interrupt half-way through a statement) is rolled back and lent again instead of being closed and
  replaced by an empty database. ``Storage.close()`` (``engine.dispose()``) closes it.
* The lock belongs to one ``Storage``'s engine. Two ``Storage`` objects handed the same DBAPI connection
  through ``creator`` are not serialised against each other; give each thread-shared memory database
  one ``Storage``.

File databases keep SQLAlchemy's ``QueuePool`` (SQLite's own locks and the busy timeout order their
writers); PostgreSQL keeps its ``QueuePool`` too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool
from sqlalchemy.pool.base import _ConnectionRecord

from edi_storage.errors import Busy, DatabaseUnavailable

if TYPE_CHECKING:
    from edi_storage.config import Settings

# Execution option that marks a connection as a writer's: its transaction starts with BEGIN IMMEDIATE.
WRITE_INTENT = "edi_storage_write"
# SQLite's primary result code for "attempt to write a readonly database"; the extended codes
# (SQLITE_READONLY_DIRECTORY, ..._CANTINIT, ...) share its low byte.
SQLITE_READONLY = 8


class MemoryPool(StaticPool):
    """The one connection of an in-memory database, lent to one thread at a time.

    A checkout waits up to ``timeout`` seconds for the thread that holds the connection to give it back,
    then raises ``Busy``. The holder's own further checkouts share it at once (their checkins give it
    back only with the last one, and only that last one rolls back what is left open). The connection
    lives until ``dispose()``: an invalidated one is rolled back and kept, never replaced by an empty
    database. See the module docstring for why.
    """

    def __init__(self, creator: Any, timeout: float = 30.0, **kwargs: Any) -> None:
        # The reset (a rollback) is done by the last checkin of the holder, not by each: a nested
        # checkin must not roll back the transaction of the checkout it is nested in.
        kwargs["reset_on_return"] = None
        super().__init__(creator, **kwargs)
        self._timeout = timeout
        # Re-entrant: the garbage collector may return a connection nobody closed (a checkin, which
        # takes this lock) at any allocation, also in a thread that holds the lock already.
        self._turn = threading.Condition(threading.RLock())
        self._holder: int | None = None  # the thread the connection is lent to
        self._depth = 0  # its checkouts not yet given back
        self._database: DBAPIConnection | None = None
        self._disposing = False
        connect = self._invoke_creator

        def the_one_connection(rec: ConnectionPoolEntry) -> DBAPIConnection:
            if self._database is None:
                self._database = connect(rec)
            return self._database

        self._invoke_creator = the_one_connection

    def status(self) -> str:
        return f"MemoryPool (connection {'lent' if self._holder is not None else 'free'})"

    def checkedout(self) -> int:
        """Checkouts not yet given back (as ``QueuePool.checkedout()``); more than 1 only when nested."""
        return self._depth

    def timeout(self) -> float:
        return self._timeout

    def _do_get(self) -> ConnectionPoolEntry:
        me = threading.get_ident()
        with self._turn:
            nested = self._holder == me
            if nested and self._database is not None and self._database.in_transaction:
                # Sharing would put this checkout's BEGIN, and its rollback, into the transaction of the
                # unit of work this thread has open: the rollback would silently undo that work.
                raise Busy(
                    "this thread has a transaction open on the in-memory database (a unit of work): "
                    "call its services (uow.sessions...) rather than storage.<service> inside it"
                )
            if nested:
                self._depth += 1
            elif self._turn.wait_for(self._free, timeout=self._timeout):
                self._holder, self._depth = me, 1
            else:
                raise Busy(
                    "the in-memory database's one connection stayed in use by another thread past the "
                    f"busy timeout ({self._timeout:g} s)"
                )
        try:
            return self._nested_record() if nested else super()._do_get()
        except BaseException:
            self._give_back()
            raise

    def _free(self) -> bool:
        return self._holder is None

    def _nested_record(self) -> ConnectionPoolEntry:
        """A record of its own over the held connection, so that each checkout is checked in once
        (StaticPool's single record is checked in by whichever of its checkouts closes first)."""
        held = self.connection
        nested = _ConnectionRecord(self, connect=False)
        nested.dbapi_connection = held.dbapi_connection
        nested.starttime = held.starttime
        return nested

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        self._give_back()

    def _give_back(self) -> None:
        # Any thread may give it back: the garbage collector returns a connection nobody closed.
        with self._turn:
            self._depth -= 1
            if self._depth > 0:
                return
            self._rollback()
            self._holder = None
            self._turn.notify()

    def _rollback(self) -> None:
        if self._database is None:
            return
        try:
            self._database.rollback()
        except Exception:  # closed by its owner: there is nothing left to end
            self.logger.debug("rollback of the memory connection failed", exc_info=True)

    def _close_connection(self, connection: DBAPIConnection, *, terminate: bool = False) -> None:
        if connection is self._database:
            if not self._disposing:
                # Invalidated: closing it would drop the database. End the transaction it was in.
                self._rollback()
                return
            self._database = None
        super()._close_connection(connection, terminate=terminate)

    def dispose(self) -> None:
        self._disposing = True
        try:
            super().dispose()
            if self._database is not None:  # kept through an invalidation: no record holds it any more
                self._close_connection(self._database)
        finally:
            self._disposing = False

    def recreate(self) -> MemoryPool:
        self.logger.info("Pool recreating")
        return self.__class__(
            creator=self._creator,
            timeout=self._timeout,
            recycle=self._recycle,
            pre_ping=self._pre_ping,
            echo=self.echo,
            logging_name=self._orig_logging_name,
            _dispatch=self.dispatch,
            dialect=self._dialect,
        )


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
    url: str | URL, settings: Settings, *, creator: Callable[[], Any] | None = None
) -> Engine:
    parsed = normalise_url(url)
    kwargs: dict[str, Any] = {"echo": settings.echo}
    if creator is not None:
        kwargs["creator"] = creator
    pool = {"pool_size": settings.pool_size, "max_overflow": settings.max_overflow}
    if is_sqlite(parsed):
        return _sqlite_engine(parsed, settings, kwargs, pool)
    return create_engine(parsed, pool_pre_ping=True, **kwargs, **_given(pool))


def _given(options: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in options.items() if value is not None}


def _sqlite_engine(url: URL, settings: Settings, kwargs: dict[str, Any], pool: dict[str, Any]) -> Engine:
    path = sqlite_file(url)
    if path is not None and not path.parent.exists():
        raise DatabaseUnavailable(
            f"cannot open SQLite database {str(path)!r}: directory {str(path.parent)!r} does not exist"
        )
    timeout = settings.busy_timeout_ms / 1000
    kwargs["connect_args"] = {"timeout": timeout}
    if path is None:
        kwargs["poolclass"] = MemoryPool
        kwargs["pool_timeout"] = timeout
        kwargs["connect_args"]["check_same_thread"] = False
    else:
        kwargs |= _given(pool)
    engine = create_engine(url, **kwargs)
    install_sqlite_hooks(engine, settings)
    return engine


def install_sqlite_hooks(engine: Engine, settings: Settings) -> None:
    """Pragmas on connect and SQLAlchemy-emitted BEGIN [IMMEDIATE]; see the module docstring for why."""
    pragmas = [
        f"PRAGMA busy_timeout = {int(settings.busy_timeout_ms)}",
        "PRAGMA foreign_keys = ON",
        "PRAGMA synchronous = NORMAL",
    ]
    if settings.sqlite_cache_size_kib is not None:
        pragmas.append(f"PRAGMA cache_size = -{int(settings.sqlite_cache_size_kib)}")  # negative: KiB
    if settings.sqlite_temp_store is not None:
        pragmas.append(f"PRAGMA temp_store = {settings.sqlite_temp_store.upper()}")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
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
