"""The session-state file: strict loading, atomic saving, an autosaver that loses nothing, and resume
through the database."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from edi_storage import InvalidInput, NotFound, Storage
from edi_storage.state import AutoSaver, SessionState, Stage, StateFileError, StateStore, read_state

# The example of storage-layer.md's SessionStateManager, as that code writes it (no version, last_updated).
REFERENCE_STATE: dict[str, Any] = {
    "session_id": "session-json-123",
    "current_stage": "refinement",
    "image_path": "/path/to/image.jpg",
    "naive_prompt": "make sky dramatic",
    "scene_analysis": {
        "entities": [
            {"id": "sky_0", "label": "sky", "confidence": 0.95},
            {"id": "mountain_1", "label": "mountain", "confidence": 0.87, "depth": "far"},
        ],
        "spatial_layout": "sky occupies top half, mountains at horizon",
    },
    "intent": {"target_entities": ["sky_0"], "edit_type": "style", "confidence": 0.85},
    "prompts": {
        "iteration_0": {
            "positive": "dramatic sky with storm clouds",
            "negative": "clear blue sky, no clouds",
        },
        "final": {"positive": "storm clouds, cinematic", "negative": "flat light", "seed": 7},
    },
    "edited_image_path": None,
    "validation": {"score": 0.87, "delta": {"sky": "changed"}},
    "last_updated": "2026-01-01T10:00:00.123456",
}


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "states")


def state(**changes: Any) -> SessionState:
    return read_state({**REFERENCE_STATE, **changes})


# -- the model -------------------------------------------------------------------------------------
def test_a_reference_file_without_a_version_is_read_as_version_1() -> None:
    loaded = read_state(REFERENCE_STATE)
    assert loaded.state_version == 1
    assert loaded.current_stage is Stage.REFINEMENT


def test_a_file_from_a_newer_release_is_refused() -> None:
    with pytest.raises(InvalidInput, match="newer edi-storage"):
        read_state({**REFERENCE_STATE, "state_version": 99})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"current_stage": "editing"}, "current_stage"),
        ({"image_path": ""}, "image_path"),
        ({"colour": 1}, "colour"),
    ],
)
def test_invalid_states_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        read_state({**REFERENCE_STATE, **change})
    assert caught.value.errors[0].field == field


# -- the store -------------------------------------------------------------------------------------
def test_save_load_update_list_delete(store: StateStore) -> None:
    path = store.save(state())
    assert path.name == "session-json-123.json"
    assert store.load("session-json-123").naive_prompt == "make sky dramatic"
    updated = store.update("session-json-123", current_stage="validation", edited_image_path="/out.jpg")
    assert store.load("session-json-123") == updated
    assert updated.current_stage is Stage.VALIDATION
    assert updated.intent == REFERENCE_STATE["intent"], "fields not named in the update are kept"
    store.save(state(session_id="other"))
    assert [s.session_id for s in store.list()] == ["other", "session-json-123"]
    store.delete("other")
    assert [s.session_id for s in store.list()] == ["session-json-123"]
    with pytest.raises(NotFound):
        store.delete("other")
    with pytest.raises(NotFound):
        store.load("other")


def test_a_corrupt_file_is_an_error_naming_it_never_an_empty_state(store: StateStore) -> None:
    path = store.path_for("broken")
    path.write_text('{"session_id": "broken", "current_st')
    with pytest.raises(StateFileError, match=r"broken\.json.*not valid JSON"):
        store.load("broken")
    path.write_text(json.dumps({**REFERENCE_STATE, "current_stage": "nowhere"}))
    with pytest.raises(StateFileError, match=r"broken\.json.*current_stage"):
        store.load("broken")
    path.write_text("[1, 2]")
    with pytest.raises(StateFileError, match="expected a JSON object"):
        store.load("broken")


@pytest.mark.parametrize("session_id", ["../../etc/passwd", "a/b", "..", "x" * 200, "ünïcode id", "/abs"])
def test_session_ids_never_leave_the_directory(store: StateStore, session_id: str) -> None:
    path = store.save(state(session_id=session_id))
    assert path.parent == store.directory
    assert store.load(session_id).session_id == session_id


def test_a_crash_between_temporary_file_and_rename_keeps_the_old_file(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save(state())

    def crash(*args: object) -> None:
        raise OSError("power cut between write and rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        store.save(state(current_stage="completed"))
    monkeypatch.undo()
    assert store.load("session-json-123").current_stage is Stage.REFINEMENT, "the old file, whole"
    assert [p.name for p in store.directory.iterdir()] == ["session-json-123.json"], "no temporary left"


def test_a_leftover_temporary_file_is_not_a_state(store: StateStore) -> None:
    """A process killed mid-write leaves `.name.json.xxx.tmp`; listing ignores it."""
    store.save(state())
    (store.directory / ".session-json-123.json.abc.tmp").write_text('{"half": ')
    assert [s.session_id for s in store.list()] == ["session-json-123"]


# -- the autosaver ---------------------------------------------------------------------------------
def test_significant_events_are_saved_at_once_and_nothing_unchanged_is_written(store: StateStore) -> None:
    with AutoSaver(store, state(), interval=3600) as saver:
        saver.update(current_stage="validation")
        assert saver.saves == 1 and store.load("session-json-123").current_stage is Stage.VALIDATION
        saver.update(prompts={**REFERENCE_STATE["prompts"], "iteration_1": {"positive": "more storm"}})
        assert saver.saves == 2
        saver.update(validation={"score": 0.9})
        assert saver.saves == 3
        saver.update(current_stage="validation")  # no change at all
        assert saver.saves == 3
        saver.update(intent={"edit_type": "colour"})  # a change, not a significant one
        assert saver.saves == 3
    assert saver.saves == 4, "stop() flushed the last change"
    assert store.load("session-json-123").intent == {"edit_type": "colour"}


def test_dirty_state_is_saved_by_the_timer(store: StateStore) -> None:
    with AutoSaver(store, state(), interval=0.05) as saver:
        saver.update(intent={"edit_type": "colour"})
        deadline = time.monotonic() + 5
        while saver.saves == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert saver.saves == 1
        time.sleep(0.2)
        assert saver.saves == 1, "nothing changed since: nothing written"


def test_background_save_errors_are_raised_not_lost(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    saver = AutoSaver(store, state(), interval=0.02).start()

    def broken(_: SessionState) -> Path:
        raise OSError("disk gone")

    monkeypatch.setattr(store, "save", broken)
    saver.update(intent={"edit_type": "colour"})
    time.sleep(0.2)
    with pytest.raises(OSError, match="disk gone"):
        saver.update(intent={"edit_type": "blur"})
    monkeypatch.undo()
    assert saver.state.intent == {"edit_type": "colour"}, "the failed call applied nothing"
    saver.update(intent={"edit_type": "blur"})
    saver.stop()
    assert store.load("session-json-123").intent == {"edit_type": "blur"}


def test_invalid_updates_are_rejected_and_change_nothing(store: StateStore) -> None:
    with AutoSaver(store, state(), interval=3600) as saver:
        with pytest.raises(InvalidInput, match="current_stage"):
            saver.update(current_stage="editing")
        assert saver.state.current_stage is Stage.REFINEMENT


# -- resume through the database -------------------------------------------------------------------
def test_state_round_trips_through_the_database(storage: Storage) -> None:
    original = state()
    storage.sessions.save_from_state(original)
    storage.sessions.save_from_state(original)
    assert storage.sessions.get_session_count() == 1, "saving a state twice never duplicates"
    loaded = storage.sessions.load_session("session-json-123")
    assert loaded is not None and len(loaded.prompts) == 2 and len(loaded.entities) == 2
    resumed = storage.sessions.state_from_session("session-json-123")
    assert resumed == original.model_copy(update={"last_updated": None})


def test_a_completed_state_completes_the_session(storage: Storage) -> None:
    storage.sessions.save_from_state(state(current_stage="completed"))
    loaded = storage.sessions.load_session("session-json-123")
    assert loaded is not None
    assert (loaded.status, loaded.final_alignment_score) == ("completed", 0.87)


def test_a_session_never_saved_from_a_state_still_resumes(storage: Storage) -> None:
    from edi_storage.testing.examples import reference_session

    storage.sessions.save_session(reference_session())
    resumed = storage.sessions.state_from_session("session-789")
    assert resumed.current_stage is Stage.COMPLETED
    assert resumed.prompts["iteration_0"]["positive"] == "dramatic sky with storm clouds"
    assert resumed.scene_analysis["entities"][0]["bbox"] == {"x1": 0, "y1": 0, "x2": 1920, "y2": 768}
    with pytest.raises(NotFound):
        storage.sessions.state_from_session("ghost")
