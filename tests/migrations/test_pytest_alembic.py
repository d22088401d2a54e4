"""pytest-alembic's built-in tests against our migrations, on SQLite and PostgreSQL.

Its plugin cannot collect under pytest 9 (so it is switched off in pyproject.toml); its four default
tests are plain functions of an ``alembic_runner`` fixture, so they are imported here and the fixture
is ours: a runner over an empty database, given as an ``Engine`` the way the plugin gives it, with rows
inserted at each revision that has a table to hold them (``at_revision_data``), so that every step up and
down runs with data in the tables. Downgrades stop at the base revision: below it is the reference
schema, which edi-storage's base downgrade keeps with its rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_alembic import runner
from pytest_alembic.config import Config
from pytest_alembic.runner import MigrationContext
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import Engine, create_engine

from edi_storage.migrate.scripts import alembic_config
from edi_storage.migrate.state import BASE_REVISION
from edi_storage.testing.fixtures import BACKENDS, scratch_postgres_database

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]

SESSION = {"id": "pa-1", "image_path": "/p.jpg", "naive_prompt": "warmer", "status": "completed"}
# Rows pytest-alembic inserts once the revision has run (parents before children).
AT_REVISION: dict[str, list[dict[str, Any]]] = {
    "0001_base_schema": [
        {"__tablename__": "sessions", **SESSION},
        {"__tablename__": "prompts", "session_id": "pa-1", "iteration": 0, "positive_prompt": "golden light"},
        {
            "__tablename__": "entities",
            "session_id": "pa-1",
            "entity_id": "sky_0",
            "label": "sky",
            "confidence": 0.9,
        },
        {"__tablename__": "validations", "session_id": "pa-1", "attempt_number": 1, "alignment_score": 0.8},
        {"__tablename__": "user_feedback", "session_id": "pa-1", "feedback_type": "accept", "rating": 5},
    ],
    "0006_gallery": [{"__tablename__": "training_sessions", "name": "run", "model_path": "m.safetensors"}],
}


@pytest.fixture(params=BACKENDS)
def alembic_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database, as a plain Engine."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'pytest-alembic.db'}")
        yield engine
        engine.dispose()
        return
    with scratch_postgres_database("edi_pa") as url:
        engine = create_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.fixture
def alembic_runner(alembic_engine: Engine) -> Iterator[MigrationContext]:
    config = Config(
        alembic_config=alembic_config(alembic_engine.url.render_as_string(hide_password=False)),
        at_revision_data=AT_REVISION,
        # Below the base revision is the reference schema, which a downgrade keeps with its rows (it
        # is the user's data): pytest-alembic's round trips stop there.
        minimum_downgrade_revision=BASE_REVISION,
    )
    with runner(config=config, engine=alembic_engine) as migrations:
        yield migrations
