"""Correcting what is stored, one record at a time: a prompt, entity, validation or feedback row
updated or deleted by its id, tags added and removed, metadata keys set and removed. Each goes through
the unit of work (a held object shows it), is audited, and refuses bad input or a missing id whole."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from edi_storage import InvalidInput, NotFound, Storage
from edi_storage.models import Entity, Prompt

GRAPH: dict[str, Any] = {
    "id": "s1",
    "image_path": "a.jpg",
    "naive_prompt": "make the sky dramatic",
    "session_tags": ["sky"],
    "session_metadata": {"camera": "x100"},
    "prompts": [
        {"iteration": 0, "positive_prompt": "dramatic sky"},
        {"iteration": 1, "positive_prompt": "more"},
    ],
    "entities": [{"entity_id": "sky_0", "label": "sky", "confidence": 0.9}],
    "validations": [{"attempt_number": 1, "alignment_score": 0.5}],
    "feedback": [{"feedback_type": "partial", "rating": 3}],
}
CORRECTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "prompt": ("prompts", {"iteration": 0, "positive_prompt": "stormy sky", "quality_score": 0.8}),
    "entity": ("entities", {"entity_id": "sky_0", "label": "sky", "confidence": 0.95}),
    "validation": ("validations", {"attempt_number": 1, "alignment_score": 0.9}),
    "feedback": ("feedback", {"feedback_type": "accept", "rating": 5}),
}


@pytest.fixture
def stored(storage: Storage) -> Storage:
    storage.sessions.save_session(GRAPH)
    return storage


def first_id(storage: Storage, collection: str) -> int:
    detail = storage.sessions.load_session("s1")
    assert detail is not None
    child_id: int = getattr(detail, collection)[0].id
    return child_id


@pytest.mark.parametrize("kind", CORRECTIONS)
def test_one_child_is_updated_in_place_and_audited(stored: Storage, kind: str) -> None:
    collection, data = CORRECTIONS[kind]
    child_id = first_id(stored, collection)
    before = stored.sessions.load_session("s1")
    stored.sessions.update_child(kind, child_id, data, session_id="s1")
    after = stored.sessions.load_session("s1")
    assert before is not None and after is not None
    row = next(c for c in getattr(after, collection) if c.id == child_id)
    assert {k: getattr(row, k) if k != "feedback_type" else row.feedback_type.value for k in data} == data
    assert len(getattr(after, collection)) == len(getattr(before, collection))
    assert after.updated_at > before.updated_at
    table = {
        "prompt": "prompts",
        "entity": "entities",
        "validation": "validations",
        "feedback": "user_feedback",
    }
    trail = stored.audit.get_audit_trail(table_name=table[kind], operation="UPDATE")
    assert [e.record_id for e in trail] == [str(child_id)]


@pytest.mark.parametrize("kind", CORRECTIONS)
def test_one_child_is_deleted_and_the_rest_stay(stored: Storage, kind: str) -> None:
    collection, _ = CORRECTIONS[kind]
    child_id = first_id(stored, collection)
    count = len(getattr(stored.sessions.load_session("s1"), collection))
    stored.sessions.delete_child(kind, child_id)
    after = stored.sessions.load_session("s1")
    assert after is not None and child_id not in [c.id for c in getattr(after, collection)]
    assert len(getattr(after, collection)) == count - 1
    with pytest.raises(NotFound):
        stored.sessions.delete_child(kind, child_id)


def test_a_held_graph_sees_the_correction(stored: Storage) -> None:
    prompt_id = first_id(stored, "prompts")
    with stored.unit_of_work() as uow:
        held = uow.sessions.get_edit_session("s1")
        assert held is not None
        prompt = uow.session.get(Prompt, prompt_id)
        uow.sessions.update_child("prompt", prompt_id, CORRECTIONS["prompt"][1])
        assert prompt is not None and prompt.positive_prompt == "stormy sky"
        entity_id = held.entities[0].id
        uow.sessions.delete_child("entity", entity_id)
        assert uow.session.get(Entity, entity_id) is None and held.entities == []
        assert len(held.prompts) == 2  # the rest of the held graph is still there, readable


def test_corrections_refuse_bad_input_and_other_sessions(stored: Storage) -> None:
    prompt_id = first_id(stored, "prompts")
    with pytest.raises(InvalidInput, match="kind"):
        stored.sessions.update_child("prompts", prompt_id, {})
    with pytest.raises(InvalidInput, match="positive_prompt"):
        stored.sessions.update_child("prompt", prompt_id, {"iteration": 0})
    with pytest.raises(InvalidInput, match="id"):
        stored.sessions.delete_child("prompt", "1")  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        stored.sessions.update_child("prompt", prompt_id, CORRECTIONS["prompt"][1], session_id="other")
    with pytest.raises(NotFound):
        stored.sessions.delete_child("prompt", prompt_id, session_id="other")
    detail = stored.sessions.load_session("s1")
    assert detail is not None and [p.positive_prompt for p in detail.prompts] == ["dramatic sky", "more"]


def test_tags_and_metadata_change_key_by_key(stored: Storage) -> None:
    sessions = stored.sessions
    assert sessions.add_tags("s1", ["storm", "sky", "storm"]) == ["sky", "storm"]
    assert sessions.remove_tags("s1", ["sky", "absent"]) == ["storm"]
    assert sessions.set_metadata("s1", {"lens": "23mm", "camera": "x100v"}) == {
        "camera": "x100v",
        "lens": "23mm",
    }
    assert sessions.remove_metadata("s1", ["camera", "absent"]) == {"lens": "23mm"}
    detail = sessions.load_session("s1")
    assert detail is not None and (detail.session_tags, detail.session_metadata) == (
        ["storm"],
        {"lens": "23mm"},
    )
    with pytest.raises(NotFound):
        sessions.add_tags("nope", ["a"])
    with pytest.raises(InvalidInput, match="tags"):
        sessions.add_tags("s1", "not-a-list")
    with pytest.raises(InvalidInput, match="values"):
        sessions.set_metadata("s1", {"bad": float("nan")})
    assert stored.audit.get_audit_trail(table_name="sessions", operation="UPDATE")


def test_concurrent_tag_changes_all_land(storage: Storage) -> None:
    """Each change reads and writes the list in one locked transaction: none is lost."""
    storage.sessions.save_session({"id": "t", "image_path": "a", "naive_prompt": "b"})
    errors: list[Exception] = []

    def tag(n: int) -> None:
        try:
            storage.sessions.add_tags("t", [f"tag-{n}"])
        except Exception as error:  # noqa: BLE001 (any failure fails the test, below)
            errors.append(error)

    threads = [threading.Thread(target=tag, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    detail = storage.sessions.load_session("t")
    assert (
        not errors
        and detail is not None
        and sorted(detail.session_tags or []) == sorted(f"tag-{n}" for n in range(8))
    )


def test_a_change_that_changes_nothing_writes_nothing(stored: Storage) -> None:
    before = stored.sessions.load_session("s1")
    assert stored.sessions.change_tags("s1", add=["sky"], remove=["absent"]) == ["sky"]
    assert stored.sessions.change_metadata("s1", {"camera": "x100"}) == {"camera": "x100"}
    after = stored.sessions.load_session("s1")
    assert before is not None and after is not None and after.updated_at == before.updated_at
    assert stored.audit.get_audit_trail(table_name="sessions", operation="UPDATE") == []


def test_errors_name_the_argument_passed_and_ids_are_bounded(stored: Storage) -> None:
    with pytest.raises(InvalidInput, match=r"^keys\.0: "):
        stored.sessions.remove_metadata("s1", ["a\x00"])
    for bad in (0, 2**31, 2**40):
        with pytest.raises(InvalidInput, match="id"):
            stored.sessions.delete_child("prompt", bad)
