"""Databases for migration tests: a fresh file, or a fresh PostgreSQL database, per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from edi_storage.migrate.scripts import alembic_config
from edi_storage.testing.fixtures import BACKENDS, postgres_url


def run_alembic(url: str, action: str, revision: str, *, backup: bool = True) -> None:
    """Run an Alembic command the way `alembic upgrade` does (adoption, lock and backup included)."""
    config = alembic_config(url)
    config.attributes["edi_storage.upgrade"] = action == "upgrade"
    config.attributes["edi_storage.downgrade"] = action == "downgrade"
    config.attributes["edi_storage.backup"] = backup
    getattr(command, action)(config, revision)


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: a new SQLite file, or a new PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'edi.db'}"
        return
    server = postgres_url()
    assert server is not None
    name = f"edi_mig_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"
