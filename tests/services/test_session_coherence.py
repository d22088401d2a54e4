"""The session service and the unit of work's ORM Session are one coherent view of the data (issue 12).

An application mixes its own ORM work (``uow.session.add``, ``get``, ``select``) with service calls in
one unit of work. Whatever it does first, every service call sees the pending ORM changes, and every
ORM object the application holds reflects what the service changed, replaced or deleted. The engine's
own machinery (echo logging, cursor events, error hooks) applies to every statement the service issues.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import event, inspect, select, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.orm import Session, selectinload

from edi_storage import Storage
from edi_storage.errors import StorageError
from edi_storage.models import EditSession, Entity, Prompt, UserFeedback, Validation
from edi_storage.testing import SessionCreateFactory

if TYPE_CHECKING:
    from edi_storage.services.sessions import SessionService

SID = "coherence-session-1"
# Fixed text, matched by the search below and by nothing a factory makes.
PROMPT = "paint the lighthouse cobalt blue"
TERM = "lighthouse cobalt"
CHILD_MODELS: tuple[type[Any], ...] = (Prompt, Entity, Validation, UserFeedback)
SELECT_FROM_SESSIONS = re.compile(r"\bSELECT\b.*\b(?:FROM|JOIN)\s+sessions\b", re.IGNORECASE | re.DOTALL)


def _gone(session: Session, obj: object) -> bool:
    """The object is no longer part of the session: evicted, or deleted by a flush, or detached."""
    state = inspect(obj)
    return obj not in session or state.deleted or state.detached


def _save_committed(storage: Storage, **fields: Any) -> str:
    """A session graph stored (and committed) before the unit of work under test starts."""
    return storage.sessions.save_session(SessionCreateFactory.build(id=SID, **fields))


# -- 1. pending ORM objects are visible to every read, whatever the call order ----------------------
def _sees_history(service: SessionService) -> bool:
    return [s.id for s in service.query_history()] == [SID]


def _sees_statistics(service: SessionService) -> bool:
    stats = service.get_statistics()
    return (
        stats.total_sessions == 1
        and stats.status_breakdown == {"completed": 1}
        and stats.average_alignment_score == 0.9
    )


def _sees_count(service: SessionService) -> bool:
    return service.get_session_count() == 1 and service.get_session_count("completed") == 1


def _sees_load(service: SessionService) -> bool:
    loaded = service.load_session(SID)
    return (
        loaded is not None
        and loaded.naive_prompt == PROMPT
        and loaded.status == "completed"
        and loaded.final_alignment_score == 0.9
    )


def _sees_search(service: SessionService) -> bool:
    return [s.id for s in service.search_sessions(TERM)] == [SID]


READS: dict[str, Callable[[SessionService], bool]] = {
    "query_history": _sees_history,
    "get_statistics": _sees_statistics,
    "get_session_count": _sees_count,
    "load_session": _sees_load,
    "search_sessions": _sees_search,
}


@pytest.mark.parametrize("first", list(READS))
def test_every_read_sees_a_pending_orm_session_whatever_comes_first(storage: Storage, first: str) -> None:
    """An object added with uow.session.add is seen by every service read, in any order of calls."""
    order = [first, *(name for name in READS if name != first)]
    with storage.unit_of_work() as uow:
        uow.session.add(
            EditSession(
                id=SID,
                image_path="/images/coherence/lighthouse.jpg",
                naive_prompt=PROMPT,
                status="completed",
                final_alignment_score=0.9,
            )
        )
        seen = {name: READS[name](uow.sessions) for name in order}
    assert seen == dict.fromkeys(order, True), f"calls in the order {order} saw the pending session: {seen}"


def test_a_pending_orm_child_shows_up_in_load_session(storage: Storage) -> None:
    """A prompt added with uow.session.add to a stored session is part of the graph load_session returns."""
    _save_committed(storage, n_prompts=0)
    with storage.unit_of_work() as uow:
        uow.session.add(Prompt(session_id=SID, iteration=0, positive_prompt="added through the ORM"))
        loaded = uow.sessions.load_session(SID)
    assert loaded is not None
    assert [p.positive_prompt for p in loaded.prompts] == ["added through the ORM"]


# -- 2. what a service writes is reflected in the objects the application holds --------------------
def test_a_status_update_is_reflected_in_the_loaded_object(storage: Storage) -> None:
    """After update_session_status the EditSession object already held shows the new status and score."""
    _save_committed(storage, status="in_progress", final_alignment_score=None)
    with storage.unit_of_work() as uow:
        obj = uow.session.get(EditSession, SID)
        assert obj is not None
        assert (obj.status, obj.final_alignment_score) == ("in_progress", None)
        uow.sessions.update_session_status(SID, "completed", 0.9)
        assert (obj.status, obj.final_alignment_score) == ("completed", 0.9)


def test_a_status_update_keeps_a_pending_change_of_the_same_object(storage: Storage) -> None:
    """A change made to the object but not yet flushed survives update_session_status and is committed."""
    _save_committed(storage, status="in_progress", final_alignment_score=None, naive_prompt="original")
    with storage.unit_of_work() as uow:
        obj = uow.session.get(EditSession, SID)
        assert obj is not None
        obj.naive_prompt = "changed"
        uow.sessions.update_session_status(SID, "completed", 0.9)
        loaded = uow.sessions.load_session(SID)
        assert loaded is not None
        assert (loaded.naive_prompt, loaded.status, loaded.final_alignment_score) == (
            "changed",
            "completed",
            0.9,
        ), "the service's read in the same unit of work sees both changes"
        assert (obj.naive_prompt, obj.status, obj.final_alignment_score) == ("changed", "completed", 0.9)
    stored = storage.sessions.load_session(SID)
    assert stored is not None
    assert (stored.naive_prompt, stored.status, stored.final_alignment_score) == ("changed", "completed", 0.9)


# -- 3. what a service deletes leaves the identity map, children included ---------------------------
def test_a_deleted_session_and_its_loaded_children_leave_the_session(storage: Storage) -> None:
    """After delete_session neither the session nor a child loaded before can still be got from the Session."""
    _save_committed(storage, n_prompts=2)
    with storage.unit_of_work() as uow:
        obj = uow.session.get(EditSession, SID)
        prompts = uow.session.scalars(select(Prompt).where(Prompt.session_id == SID)).all()
        assert obj is not None and len(prompts) == 2
        prompt_ids = [p.id for p in prompts]
        uow.sessions.delete_session(SID)
        observed = {
            "prompts still in the session": [
                pid for pid, p in zip(prompt_ids, prompts, strict=True) if not _gone(uow.session, p)
            ],
            "prompts still got by id": [
                pid for pid in prompt_ids if uow.session.get(Prompt, pid) is not None
            ],
            "session still got by id": uow.session.get(EditSession, SID) is not None,
            "session object still in the session": not _gone(uow.session, obj),
        }
        assert observed == {
            "prompts still in the session": [],
            "prompts still got by id": [],
            "session still got by id": False,
            "session object still in the session": False,
        }
    assert storage.sessions.load_session(SID) is None


# -- 4. a pending ORM add and a save of the same id: the save replaces it --------------------------
def test_save_session_replaces_a_pending_orm_add_of_the_same_id(storage: Storage) -> None:
    """save_session of an id just added through the ORM replaces that session instead of raising Conflict."""
    with storage.unit_of_work() as uow:
        pending = EditSession(id=SID, image_path="/images/orm.jpg", naive_prompt="from the ORM add")
        uow.session.add(pending)
        returned = uow.sessions.save_session(
            {
                "id": SID,
                "image_path": "/images/service.jpg",
                "naive_prompt": "from save_session",
                "status": "completed",
                "final_alignment_score": 0.75,
                "prompts": [
                    {"iteration": 0, "positive_prompt": "saved prompt 0"},
                    {"iteration": 1, "positive_prompt": "saved prompt 1"},
                ],
                "entities": [{"entity_id": "sky_0", "label": "sky", "confidence": 0.5}],
            }
        )
        assert returned == SID
        uow.session.flush()  # what the commit does: the ORM add must not be inserted a second time
        assert _gone(uow.session, pending) or pending.naive_prompt == "from save_session", (
            "the object the application added is evicted or shows the saved fields"
        )
    loaded = storage.sessions.load_session(SID)
    assert loaded is not None
    assert (loaded.image_path, loaded.naive_prompt, loaded.status, loaded.final_alignment_score) == (
        "/images/service.jpg",
        "from save_session",
        "completed",
        0.75,
    )
    assert [p.positive_prompt for p in loaded.prompts] == ["saved prompt 0", "saved prompt 1"]
    assert [e.entity_id for e in loaded.entities] == ["sky_0"]
    assert storage.sessions.session_ids() == [SID]
    assert storage.sessions.get_session_count() == 1


# -- 5. replacing a session evicts its old children from the identity map ---------------------------
@pytest.mark.parametrize("parent_loaded_before", [False, True], ids=["children-only", "with-parent"])
def test_replacing_a_session_leaves_none_of_its_old_children_in_the_session(
    storage: Storage, parent_loaded_before: bool
) -> None:
    """After save_session replaces a graph, the old child objects are gone and the ORM sees the new ones."""
    old_prompts = [{"iteration": i, "positive_prompt": f"old prompt {i}"} for i in range(2)]
    storage.sessions.save_session(
        {
            "id": SID,
            "image_path": "/images/old.jpg",
            "naive_prompt": "old graph",
            "prompts": old_prompts,
            "entities": [{"entity_id": "tree_0", "label": "tree", "confidence": 0.4}],
            "validations": [{"attempt_number": 1, "alignment_score": 0.3}],
            "user_feedback": {"feedback_type": "reject", "comments": "old feedback"},
        }
    )
    with storage.unit_of_work() as uow:
        if parent_loaded_before:
            parent = uow.session.scalars(
                select(EditSession).where(EditSession.id == SID).options(selectinload(EditSession.prompts))
            ).one()
            assert [p.positive_prompt for p in parent.prompts] == ["old prompt 0", "old prompt 1"]
        old: list[tuple[type[Any], int, Any]] = [
            (model, child.id, child)
            for model in CHILD_MODELS
            for child in uow.session.scalars(select(model).where(model.session_id == SID)).all()
        ]
        assert len(old) == 5

        uow.sessions.save_session(
            {
                "id": SID,
                "image_path": "/images/new.jpg",
                "naive_prompt": "new graph",
                "prompts": [{"iteration": i, "positive_prompt": f"new prompt {i}"} for i in range(3)],
            }
        )

        left = [(model.__name__, key) for model, key, child in old if not _gone(uow.session, child)]
        got = [(model.__name__, key) for model, key, _ in old if uow.session.get(model, key) is not None]
        reloaded = uow.session.scalars(
            select(EditSession)
            .where(EditSession.id == SID)
            .options(
                selectinload(EditSession.prompts),
                selectinload(EditSession.entities),
                selectinload(EditSession.validations),
                selectinload(EditSession.feedback),
            )
        ).one()
        observed = {
            "old children still in the session": left,
            "old children still got by id": got,
            "naive_prompt": reloaded.naive_prompt,
            "prompts": [p.positive_prompt for p in reloaded.prompts],
            "other children": (reloaded.entities, reloaded.validations, reloaded.feedback),
        }
        assert observed == {
            "old children still in the session": [],
            "old children still got by id": [],
            "naive_prompt": "new graph",
            "prompts": ["new prompt 0", "new prompt 1", "new prompt 2"],
            "other children": ([], [], []),
        }


# -- 6. the engine's logging, events and error hooks apply to the read paths ------------------------
def _read_paths(storage: Storage) -> dict[str, Callable[[], object]]:
    return {
        "load_session": lambda: storage.sessions.load_session(SID),
        "query_history": storage.sessions.query_history,
    }


def test_echo_logs_the_sql_of_load_session_and_query_history(
    storage_factory: Callable[..., Storage], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storage(echo=True) logs the SELECT each read path runs, as SQLAlchemy's echo promises."""
    # echo adds a stdout handler to SQLAlchemy's logger; it is dropped again after the test.
    engine_logger = logging.getLogger("sqlalchemy.engine.Engine")
    monkeypatch.setattr(engine_logger, "handlers", list(engine_logger.handlers))
    storage = storage_factory(echo=True)
    _save_committed(storage)
    logged: dict[str, bool] = {}
    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine.Engine"):
        for name, call in _read_paths(storage).items():
            caplog.clear()
            call()
            logged[name] = any(SELECT_FROM_SESSIONS.search(r.getMessage()) for r in caplog.records)
    assert logged == {"load_session": True, "query_history": True}


def test_cursor_execute_listeners_see_the_statements_of_the_read_paths(storage: Storage) -> None:
    """A before_cursor_execute listener on the engine sees the SELECT each read path runs."""
    _save_committed(storage)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(storage.engine, "before_cursor_execute", record)
    seen: dict[str, bool] = {}
    try:
        for name, call in _read_paths(storage).items():
            statements.clear()
            call()
            seen[name] = any(SELECT_FROM_SESSIONS.search(s) for s in statements)
    finally:
        event.remove(storage.engine, "before_cursor_execute", record)
    assert seen == {"load_session": True, "query_history": True}


def test_the_engine_handle_error_hook_sees_errors_of_the_read_paths(storage: Storage) -> None:
    """An engine handle_error listener is called for a database error raised by a read path."""
    _save_committed(storage)
    errors: list[str] = []

    def record(context: ExceptionContext) -> None:
        errors.append(context.statement or "")

    event.listen(storage.engine, "handle_error", record)
    seen: dict[str, bool] = {}
    try:
        for name in ("load_session", "query_history"):
            errors.clear()
            # A temporary table named "sessions" shadows the real one (on both backends) for this
            # transaction only, so the service's SELECT fails; the rollback drops it again.
            with pytest.raises(StorageError), storage.unit_of_work() as uow:
                uow.session.execute(text("CREATE TEMPORARY TABLE sessions (unrelated INTEGER)"))
                if name == "load_session":
                    uow.sessions.load_session(SID)
                else:
                    uow.sessions.query_history()
            seen[name] = any(SELECT_FROM_SESSIONS.search(s) for s in errors)
    finally:
        event.remove(storage.engine, "handle_error", record)
    assert seen == {"load_session": True, "query_history": True}
    assert storage.sessions.session_ids() == [SID], "the real table is untouched"


# -- the ORM relationships are live code -----------------------------------------------------------
def test_an_orm_delete_of_a_session_removes_its_children(storage: Storage) -> None:
    """``session.delete(edit_session)`` deletes the whole graph (the database's cascade, passive deletes),
    without loading the collections first."""
    _save_committed(storage)
    with storage.unit_of_work() as uow:
        uow.session.delete(uow.session.get(EditSession, SID))
    with storage.engine.connect() as conn:
        left = {
            model.__tablename__: conn.execute(select(model.id).where(model.session_id == SID)).all()
            for model in CHILD_MODELS
        }
    assert left == {model.__tablename__: [] for model in CHILD_MODELS}
    assert storage.sessions.load_session(SID) is None


def test_get_edit_session_hands_out_the_loaded_orm_graph(storage: Storage) -> None:
    """The real ORM graph, children in the service's order; changes to it commit with the unit of work."""
    saved = storage.sessions.load_session(_save_committed(storage))
    assert saved is not None
    with storage.unit_of_work() as uow:
        graph = uow.sessions.get_edit_session(SID)
        assert graph is not None and graph is uow.session.get(EditSession, SID)
        assert [p.id for p in graph.prompts] == [p.id for p in saved.prompts]
        assert [e.id for e in graph.entities] == [e.id for e in saved.entities]
        assert [v.id for v in graph.validations] == [v.id for v in saved.validations]
        assert [f.id for f in graph.feedback] == [f.id for f in saved.feedback]
        graph.prompts[0].positive_prompt = "edited through the ORM"
        del graph.entities[0]  # delete-orphan
    after = storage.sessions.load_session(SID)
    assert after is not None
    assert after.prompts[0].positive_prompt == "edited through the ORM"
    assert [e.id for e in after.entities] == [e.id for e in saved.entities[1:]]
    assert storage.sessions.get_edit_session("nobody") is None


def test_outside_a_unit_of_work_the_orm_graph_is_detached_but_loaded(storage: Storage) -> None:
    """Usable after its own transaction ended: every collection was loaded, none raises."""
    saved = storage.sessions.load_session(_save_committed(storage))
    assert saved is not None
    graph = storage.sessions.get_edit_session(SID)
    assert graph is not None and inspect(graph).detached
    counts = (len(graph.prompts), len(graph.entities), len(graph.validations), len(graph.feedback))
    assert counts == (len(saved.prompts), len(saved.entities), len(saved.validations), len(saved.feedback))


def _statements_during(storage: Storage, action: Callable[[], object]) -> list[str]:
    seen: list[str] = []

    def record(conn: object, cursor: object, sql: str, *rest: object) -> None:
        seen.append(sql)

    event.listen(storage.engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(storage.engine, "before_cursor_execute", record)
    return seen


def test_adding_a_child_leaves_the_other_loaded_children_as_they_were(storage: Storage) -> None:
    """Only the collection that grew is read afresh: the entities the application holds are not expired,
    so reading them costs no query (no N+1 after a service call)."""
    _save_committed(storage)
    with storage.unit_of_work() as uow:
        graph = uow.sessions.get_edit_session(SID)
        assert graph is not None
        entities = list(graph.entities)
        uow.sessions.add_prompt_iteration(SID, {"iteration": 9, "positive_prompt": "later"})
        assert _statements_during(storage, lambda: [e.label for e in entities]) == []
        assert 9 in [p.iteration for p in uow.session.scalars(select(Prompt).where(Prompt.session_id == SID))]


def test_children_held_across_a_replace_or_a_delete_stay_readable_detached(storage: Storage) -> None:
    _save_committed(storage)
    with storage.unit_of_work() as uow:
        held = uow.session.scalars(select(Entity).where(Entity.session_id == SID)).all()
        labels = [e.label for e in held]
        uow.sessions.save_session(SessionCreateFactory.build(id=SID))
        assert all(inspect(e).detached for e in held)
        assert [e.label for e in held] == labels


def test_deleting_a_session_finds_its_loaded_children_in_one_query_per_table(storage: Storage) -> None:
    """Eviction never loads expired objects one by one."""
    _save_committed(storage)
    with storage.unit_of_work() as uow:
        held = [
            *uow.session.scalars(select(Entity).where(Entity.session_id == SID)),
            *uow.session.scalars(select(Prompt).where(Prompt.session_id == SID)),
        ]
        uow.session.expire_all()
        statements = _statements_during(storage, lambda: uow.sessions.delete_session(SID))
    selects = [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, selects  # entities and prompts are loaded: one query each
    assert all(obj not in uow.session for obj in held)
