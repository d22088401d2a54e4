"""pytest fixtures: a fresh, migrated database per test, fast.

Enable with ``pytest_plugins = ["edi_storage.testing.fixtures"]`` in a conftest.py.

SQLite: the migrations run once per test run into a template file; each test gets its own in-memory
copy of it, made with SQLite's backup API (a millisecond), so tests are isolated without the savepoint
tricks that pysqlite's transaction handling makes unreliable.

PostgreSQL (when ``EDI_STORAGE_TEST_POSTGRES_URL`` is set, e.g. ``postgresql://postgres@127.0.0.1/test``):
a scratch database is created and migrated once per run; each test starts from empty tables.
The ``storage`` fixture then runs every test that uses it on both backends.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import URL, create_engine, text

from edi_storage.engine import normalise_url
from edi_storage.models import Base
from edi_storage.storage import Storage

POSTGRES_ENV = "EDI_STORAGE_TEST_POSTGRES_URL"


def postgres_url() -> URL | None:
    value = os.environ.get(POSTGRES_ENV)
    return normalise_url(value) if value else None


BACKENDS = ["sqlite"] + (["postgres"] if postgres_url() else [])


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database file migrated to head once per run, never written by a test."""
    path = tmp_path_factory.mktemp("edi-template") / "template.db"
    Storage(f"sqlite:///{path}").close()
    return path


def sqlite_memory_copy(template: Path, **options: Any) -> Storage:
    """A Storage (with ``options``) over a private in-memory copy of ``template``."""
    memory = sqlite3.connect(":memory:", check_same_thread=False)
    with sqlite3.connect(template) as source:
        source.backup(memory)
    return Storage("sqlite://", creator=lambda: memory, **options)


@contextmanager
def scratch_postgres_database(prefix: str = "edi_test") -> Iterator[URL]:
    """A new, empty database on the server at ``EDI_STORAGE_TEST_POSTGRES_URL`` (the test is skipped
    without one), dropped afterwards whatever happened to it."""
    server = postgres_url()
    if server is None:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[URL]:
    """A scratch PostgreSQL database, created and migrated once per run, dropped at the end."""
    with scratch_postgres_database() as url:
        Storage(url).close()
        yield url


def empty_postgres_tables(storage: Storage) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with storage.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def storage_factory(
    request: pytest.FixtureRequest, sqlite_template: Path
) -> Iterator[Callable[..., Storage]]:
    """Makes Storages (with any Storage options) over one migrated, empty database of this test's own:
    SQLite, and PostgreSQL when configured. Everything made is closed after the test."""
    made: list[Storage] = []
    memory: sqlite3.Connection | None = None
    if request.param == "sqlite":
        memory = sqlite3.connect(":memory:", check_same_thread=False)
        with sqlite3.connect(sqlite_template) as source:
            source.backup(memory)
    else:
        url = request.getfixturevalue("postgres_database")
        with Storage(url) as cleaner:
            empty_postgres_tables(cleaner)

    def make(**options: Any) -> Storage:
        store = Storage("sqlite://", creator=lambda: memory, **options) if memory else Storage(url, **options)
        made.append(store)
        return store

    try:
        yield make
    finally:
        for store in made:
            store.close()


@pytest.fixture
def storage(storage_factory: Callable[..., Storage]) -> Storage:
    """A migrated, empty database of its own for each test (SQLite, and PostgreSQL when configured)."""
    return storage_factory()


@pytest.fixture
def sqlite_storage(sqlite_template: Path) -> Iterator[Storage]:
    """Like ``storage`` but SQLite only, for tests of SQLite-specific behaviour (query plans, pragmas)."""
    store = sqlite_memory_copy(sqlite_template)
    try:
        yield store
    finally:
        store.close()
