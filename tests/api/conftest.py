"""The HTTP API's tests: skipped when the ``api`` extra (FastAPI) is not installed.

Each test module starts with ``pytest.importorskip("fastapi")``; this conftest imports FastAPI only inside
its fixtures, so that ``pytest`` and ``pytest tests/api`` alike report the skip instead of failing to load
it. Every test gets the app over the shared ``storage`` fixture, so they run on SQLite and, when
EDI_STORAGE_TEST_POSTGRES_URL is set, on PostgreSQL too.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest
from PIL import Image

from edi_storage.migrate.scripts import head_revision
from edi_storage.migrate.state import SchemaState, SchemaStatus
from edi_storage.storage import Storage

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient


TEST_HOST = "testserver"  # the Host header of Starlette's TestClient


class CurrentStorage:
    """Stands in for the running test's ``storage``: FastAPI takes about half a second to build the
    app's 38 routes, so one app serves the whole run and each test points it at its own database."""

    def __init__(self) -> None:
        self.target: Storage | None = None

    def __getattr__(self, name: str) -> Any:
        assert self.target is not None, "no test storage is set"
        return getattr(self.target, name)

    def schema_status(self) -> SchemaStatus:
        """create_app checks the schema when it builds the app, before any test storage is set: every
        test storage is at head."""
        if self.target is not None:
            return self.target.schema_status()
        return SchemaStatus(SchemaState.CURRENT, head_revision(), head_revision())


@pytest.fixture(scope="session")
def current_storage() -> CurrentStorage:
    return CurrentStorage()


@pytest.fixture(scope="session")
def shared_app(current_storage: CurrentStorage) -> FastAPI:
    from edi_storage.api import create_app

    return create_app(cast(Storage, current_storage), allowed_hosts=[TEST_HOST])


@pytest.fixture
def app(shared_app: FastAPI, current_storage: CurrentStorage, storage: Storage) -> Iterator[FastAPI]:
    """The API over this test's ``storage``."""
    current_storage.target = storage
    try:
        yield shared_app
    finally:
        current_storage.target = None


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    from fastapi.testclient import TestClient

    return TestClient(app)


@pytest.fixture
def sqlite_client(
    shared_app: FastAPI, current_storage: CurrentStorage, sqlite_storage: Storage
) -> Iterator[TestClient]:
    """For what does not depend on the database (error mapping, request validation): SQLite only."""
    from fastapi.testclient import TestClient

    current_storage.target = sqlite_storage
    try:
        yield TestClient(shared_app)
    finally:
        current_storage.target = None


def png(width: int = 64, height: int = 48) -> bytes:
    """A small PNG image, as an image generator would upload it."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 30)).save(out, format="PNG")
    return out.getvalue()
