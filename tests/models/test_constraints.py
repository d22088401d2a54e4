"""The database itself rejects bad rows: a raw SQL writer (another tool, a future bug) cannot store
out-of-range scores, unknown statuses or orphans, whatever Pydantic would have caught first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import exc, select, text

from edi_storage import Storage
from edi_storage.models import EditSession, Entity, Prompt, UserFeedback, Validation
from edi_storage.testing import SessionFactory, create

SESSION = "INSERT INTO sessions (id, image_path, naive_prompt, status, created_at, updated_at) VALUES ('s', 'i', 'p', 'completed', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"


def execute(storage: Storage, *statements: str) -> None:
    with storage.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


BAD_ROWS = [
    "INSERT INTO sessions (id, image_path, naive_prompt, status) VALUES ('x', 'i', 'p', 'done')",
    "INSERT INTO sessions (id, image_path, naive_prompt, final_alignment_score) VALUES ('x', 'i', 'p', 1.01)",
    "INSERT INTO sessions (id, image_path, naive_prompt, processing_time) VALUES ('x', 'i', 'p', -1)",
    "INSERT INTO sessions (id, image_path, naive_prompt) VALUES ('', 'i', 'p')",
    "INSERT INTO sessions (id, naive_prompt) VALUES ('x', 'p')",
    "INSERT INTO prompts (session_id, iteration, positive_prompt) VALUES ('s', -1, 'x')",
    "INSERT INTO prompts (session_id, iteration, positive_prompt, quality_score) VALUES ('s', 0, 'x', -0.1)",
    "INSERT INTO prompts (session_id, iteration, positive_prompt, model_confidence) VALUES ('s', 0, 'x', 2)",
    "INSERT INTO prompts (session_id, iteration, positive_prompt) VALUES ('nobody', 0, 'x')",
    "INSERT INTO entities (session_id, entity_id, label, confidence) VALUES ('s', 'a', 'b', 1.5)",
    "INSERT INTO entities (session_id, entity_id, label, confidence, area_percent) VALUES ('s', 'a', 'b', 0.5, 100.5)",
    "INSERT INTO entities (session_id, entity_id, label, confidence, color_hex) VALUES ('s', 'a', 'b', 0.5, '#12345G')",
    "INSERT INTO entities (session_id, entity_id, label, confidence, color_hex) VALUES ('s', 'a', 'b', 0.5, '123456')",
    "INSERT INTO entities (session_id, entity_id, label, confidence, color_hex) VALUES ('s', 'a', 'b', 0.5, '#1234567')",
    "INSERT INTO validations (session_id, attempt_number, unintended_count) VALUES ('s', 1, -2)",
    "INSERT INTO validations (session_id, attempt_number, alignment_score) VALUES ('s', 1, 1.2)",
    "INSERT INTO user_feedback (session_id, feedback_type) VALUES ('s', 'maybe')",
    "INSERT INTO user_feedback (session_id, feedback_type, rating) VALUES ('s', 'accept', 0)",
    "INSERT INTO user_feedback (session_id, feedback_type, rating) VALUES ('s', 'accept', 6)",
    "INSERT INTO user_feedback (session_id, rating) VALUES ('s', 3)",
]


@pytest.mark.parametrize("statement", BAD_ROWS)
def test_database_rejects_bad_rows(storage: Storage, statement: str) -> None:
    execute(storage, SESSION)
    with pytest.raises(exc.IntegrityError):
        execute(storage, statement)


def test_good_colours_pass(storage: Storage) -> None:
    execute(storage, SESSION)
    for colour in ("#87CEEB", "#00ff00", "#aBcDeF"):
        execute(
            storage,
            f"INSERT INTO entities (session_id, entity_id, label, confidence, color_hex) VALUES ('s', 'a', 'b', 0.5, '{colour}')",
        )


def test_deleting_a_session_in_sql_cascades(storage: Storage) -> None:
    doomed_id, kept_id = create(storage, SessionFactory).id, create(storage, SessionFactory).id
    execute(storage, f"DELETE FROM sessions WHERE id = '{doomed_id}'")
    with storage.unit_of_work(readonly=True) as uow:
        for model in (Prompt, Entity, Validation, UserFeedback):
            owners = set(uow.session.scalars(select(model.session_id)))
            assert owners == {kept_id}, model.__tablename__


def test_timestamps_are_aware_utc_and_updated_at_moves(storage: Storage) -> None:
    paris = timezone(timedelta(hours=1))
    with storage.unit_of_work() as uow:
        uow.session.add(
            EditSession(
                id="t", image_path="i", naive_prompt="p", created_at=datetime(2026, 3, 1, 13, tzinfo=paris)
            )
        )
    with storage.unit_of_work() as uow:
        row = uow.session.get_one(EditSession, "t")
        assert row.created_at == datetime(2026, 3, 1, 12, tzinfo=UTC)
        assert row.created_at.tzinfo is UTC
        first_update = row.updated_at
        row.naive_prompt = "changed"
    with storage.unit_of_work() as uow:
        row = uow.session.get_one(EditSession, "t")
        assert row.updated_at > first_update, "every ORM update refreshes updated_at"
        assert row.created_at == datetime(2026, 3, 1, 12, tzinfo=UTC), "created_at never moves"


def test_json_columns_hold_real_json(storage: Storage) -> None:
    session_id = create(
        storage, SessionFactory, session_metadata={"nested": {"k": [1, 2]}}, session_tags=["a", "b"]
    ).id
    json_type = "json_type" if storage.engine.dialect.name == "sqlite" else "jsonb_typeof"
    with storage.engine.connect() as conn:
        kinds = conn.execute(
            text(
                f"SELECT {json_type}(session_metadata), {json_type}(session_tags) FROM sessions WHERE id = :id"
            ),
            {"id": session_id},
        ).one()
        bbox_kind = conn.execute(text(f"SELECT {json_type}(bbox_json) FROM entities LIMIT 1")).scalar_one()
    assert tuple(kinds) == ("object", "array")
    assert bbox_kind == "object"


def test_in_place_json_edits_are_saved(storage: Storage) -> None:
    """MutableDict: editing a JSON value in place is seen by the unit of work."""
    session_id = create(storage, SessionFactory, session_metadata={"a": 1}).id
    with storage.unit_of_work() as uow:
        row = uow.session.get_one(EditSession, session_id)
        assert row.session_metadata is not None
        row.session_metadata["b"] = 2
    loaded: Any = storage.sessions.load_session(session_id)
    assert loaded.session_metadata == {"a": 1, "b": 2}


def test_lazy_loading_is_an_error_not_a_hidden_query(storage: Storage) -> None:
    """Relationships raise instead of issuing one query per row (N+1 shows up in tests)."""
    session_id = create(storage, SessionFactory).id
    with storage.unit_of_work() as uow:
        row = uow.session.get_one(EditSession, session_id)
        with pytest.raises(exc.InvalidRequestError, match="raise_on_sql"):
            _ = row.prompts
