"""The audit trail records every change, whatever path it takes, in the same transaction as the change."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import text

from edi_storage import InvalidInput, NotFound, Storage
from edi_storage.testing import SessionCreateFactory, SessionFactory, create
from edi_storage.testing.examples import reference_session


def trail(storage: Storage, **filters: Any) -> list[tuple[str, str | None, str]]:
    return [
        (e.table_name, e.record_id, e.operation) for e in storage.audit.get_audit_trail(limit=1000, **filters)
    ]


def test_a_saved_graph_is_audited_row_by_row(storage: Storage) -> None:
    storage.sessions.save_session(reference_session())
    entries = storage.audit.get_audit_trail()
    assert sorted((e.table_name, e.operation) for e in entries) == sorted(
        [(t, "INSERT") for t in ("sessions", "prompts", "entities", "validations", "user_feedback")]
    )
    session_row = next(e for e in entries if e.table_name == "sessions")
    assert session_row.record_id == "session-789"
    assert (
        session_row.changes is not None
        and session_row.changes["naive_prompt"] == "make the sky more dramatic"
    )
    entity_row = next(e for e in entries if e.table_name == "entities")
    assert entity_row.changes is not None and entity_row.changes["bbox_json"]["x2"] == 1920, "JSON stays JSON"
    assert session_row.timestamp.tzinfo is not None


def test_an_update_records_old_and_new_of_changed_columns_only(storage: Storage) -> None:
    storage.sessions.save_session(reference_session(status="in_progress", final_alignment_score=None))
    storage.sessions.update_session_status("session-789", "completed", 0.9)
    [update] = storage.audit.get_audit_trail(operation="UPDATE")
    assert update.changes is not None
    assert update.changes["status"] == {"old": "in_progress", "new": "completed"}
    assert update.changes["final_alignment_score"] == {"old": None, "new": 0.9}
    assert set(update.changes) == {"status", "final_alignment_score", "updated_at"}


def test_a_cascade_delete_is_audited_for_every_child(storage: Storage) -> None:
    storage.sessions.save_session(reference_session())
    storage.sessions.delete_session("session-789")
    deletes = trail(storage, operation="DELETE")
    assert sorted(t for t, _, _ in deletes) == [
        "entities",
        "prompts",
        "sessions",
        "user_feedback",
        "validations",
    ]
    [deleted] = storage.audit.get_audit_trail(table_name="sessions", operation="DELETE")
    assert deleted.changes is not None and deleted.changes["status"] == "completed", "the row as it was"


def test_raw_sql_and_bulk_paths_are_audited(storage: Storage) -> None:
    storage.sessions.batch_save_sessions([SessionCreateFactory.build() for _ in range(3)])
    with storage.engine.begin() as conn:
        conn.execute(text("UPDATE sessions SET model_version = 'raw-sql'"))
    assert len(trail(storage, table_name="sessions", operation="INSERT")) == 3
    assert len(trail(storage, table_name="sessions", operation="UPDATE")) == 3


def test_an_update_that_changes_nothing_is_not_audited(storage: Storage) -> None:
    storage.sessions.save_session(reference_session())
    with storage.engine.begin() as conn:
        conn.execute(text("UPDATE sessions SET status = status"))
    assert trail(storage, operation="UPDATE") == []


def test_a_rolled_back_change_leaves_no_audit_row(storage: Storage) -> None:
    with pytest.raises(NotFound), storage.unit_of_work(actor="alice") as uow:
        uow.sessions.save_session(reference_session())
        uow.sessions.delete_session("ghost")
    assert storage.audit.get_audit_trail() == []


def test_the_actor_comes_from_the_unit_of_work_and_does_not_leak(storage: Storage) -> None:
    with storage.unit_of_work(actor="alice") as uow:
        uow.sessions.save_session(reference_session())
    storage.sessions.update_session_status("session-789", "failed")
    with storage.engine.begin() as conn:
        conn.execute(text("UPDATE sessions SET model_version = 'raw'"))
    actors = {(e.operation.value, e.table_name): e.user_id for e in storage.audit.get_audit_trail()}
    assert actors[("INSERT", "sessions")] == "alice"
    assert actors[("INSERT", "prompts")] == "alice"
    updates = [e.user_id for e in storage.audit.get_audit_trail(operation="UPDATE")]
    assert updates == [None, None], "later writers without an actor are not attributed to alice"


def test_auditing_can_be_switched_off_explicitly_for_one_unit_of_work(storage: Storage) -> None:
    with storage.unit_of_work(audit=False) as uow:
        uow.sessions.batch_save_sessions([SessionCreateFactory.build() for _ in range(5)])
    assert storage.audit.get_audit_trail() == []
    storage.sessions.save_session(SessionCreateFactory.build())
    assert len(trail(storage, table_name="sessions")) == 1, "auditing is back on afterwards"


def test_orm_writes_are_audited(storage: Storage) -> None:
    session_id = create(storage, SessionFactory, actor="factory").id
    assert {e.user_id for e in storage.audit.get_audit_trail(record_id=session_id)} == {"factory"}


def test_trail_filters_and_order(storage: Storage) -> None:
    storage.sessions.save_session(reference_session())
    time.sleep(0.01)  # SQLite's trigger clock has millisecond resolution; `since` needs distinct times
    storage.sessions.update_session_status("session-789", "failed")
    entries = storage.audit.get_audit_trail(table_name="sessions", record_id="session-789")
    assert [e.operation for e in entries] == ["UPDATE", "INSERT"], "newest first"
    assert len(storage.audit.get_audit_trail(limit=2)) == 2
    later = storage.audit.get_audit_trail(since=entries[0].timestamp)
    assert [e.operation for e in later] == ["UPDATE"]
    with pytest.raises(InvalidInput, match="table_name"):
        storage.audit.get_audit_trail(table_name="users; DROP TABLE sessions")
    with pytest.raises(InvalidInput, match="operation"):
        storage.audit.get_audit_trail(operation="TRUNCATE")
