"""alembic/env.py as Alembic's users and tools know it.

From the command line it prints Alembic's usual "Running upgrade ..." lines (the logging sections of
alembic.ini are applied); tools that put an ``Engine`` rather than a ``Connection`` into
``config.attributes["connection"]`` (pytest-alembic does) are accepted; and run programmatically, by
Storage.upgrade(), it leaves the application's logging alone.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import QueuePool

from edi_storage import Storage
from edi_storage.migrate.scripts import alembic_config, head_revision, script_directory
from edi_storage.testing.fixtures import BACKENDS, scratch_postgres_database

from .conftest import sqlite_url

ROOT = Path(__file__).parents[2]


def test_alembic_upgrade_head_prints_each_revision(tmp_path: Path) -> None:
    env = {**os.environ, "EDI_STORAGE_URL": sqlite_url(tmp_path / "x.db")}
    alembic = Path(sys.executable).with_name("alembic")
    result = subprocess.run(
        [str(alembic), "upgrade", "head"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    revisions = list(reversed(list(script_directory().walk_revisions())))
    assert len(revisions) > 1
    for revision in revisions:
        down = revision.down_revision or ""
        assert isinstance(down, str)
        line = f"Running upgrade {down} -> {revision.revision}, "
        assert line in result.stderr, f"{line!r} missing from:\n{result.stderr}"
    assert (tmp_path / "x.db").is_file()


@pytest.fixture(params=BACKENDS)
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A plain SQLAlchemy Engine (not edi-storage's) on an empty database, as pytest-alembic makes one."""
    if request.param == "sqlite":
        engine = create_engine(sqlite_url(tmp_path / "engine.db"))
        try:
            yield engine
        finally:
            engine.dispose()
        return
    with scratch_postgres_database("edi_env") as url:
        engine = create_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def test_an_engine_in_the_attributes_is_accepted(empty_engine: Engine) -> None:
    config = alembic_config()
    config.attributes["connection"] = empty_engine
    pool = empty_engine.pool
    assert isinstance(pool, QueuePool)
    command.upgrade(config, "head")
    assert pool.checkedout() == 0, "the connection env.py opened is closed again"
    with Storage(empty_engine.url) as storage:
        assert storage.current_revision() == head_revision()
    command.check(config)  # the engine still works, and the schema matches the models


def logging_state() -> tuple[object, ...]:
    root, alembic_logger = logging.getLogger(), logging.getLogger("alembic")
    return (list(root.handlers), root.level, list(alembic_logger.handlers), alembic_logger.level)


def test_storage_upgrade_leaves_the_applications_logging_alone(tmp_path: Path) -> None:
    before = logging_state()
    with Storage(sqlite_url(tmp_path / "x.db"), auto_upgrade=False) as storage:
        storage.upgrade()
        assert storage.current_revision() == head_revision()
    assert logging_state() == before


def test_a_tool_passing_its_engine_with_alembic_ini_keeps_its_logging(tmp_path: Path) -> None:
    """pytest-alembic's way: a Config read from alembic.ini (so ``config_file_name`` is set) and an Engine."""
    config = Config(str(ROOT / "alembic.ini"))
    assert config.config_file_name is not None
    engine = create_engine(sqlite_url(tmp_path / "x.db"))
    config.attributes["connection"] = engine
    before = logging_state()
    try:
        command.upgrade(config, "head")
    finally:
        engine.dispose()
    assert logging_state() == before
    with Storage(sqlite_url(tmp_path / "x.db")) as storage:
        assert storage.current_revision() == head_revision()
