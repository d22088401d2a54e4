"""Input the database cannot store is refused as InvalidInput naming the field, on both backends alike,
never a driver error: found by fuzzing the HTTP API (docs/http-api.md), checked here on the services."""

from __future__ import annotations

import re
from typing import Any

import pytest

from edi_storage import InvalidInput, Storage
from edi_storage.schemas.common import INT_MAX, WHITE_SPACE_CLASS


def field_of(error: pytest.ExceptionInfo[InvalidInput]) -> str:
    return error.value.errors[0].field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"prompts": [{"iteration": INT_MAX + 1, "positive_prompt": "p"}]}, "prompts.0.iteration"),
        ({"validations": [{"attempt_number": 1, "preserved_count": 2**40}]}, "validations.0.preserved_count"),
        ({"session_metadata": {"k": ["a\x00b"]}}, "session_metadata"),
        ({"session_metadata": {"a\x00": 1}}, "session_metadata"),
        ({"session_metadata": {"k": "\ud800"}}, "session_metadata"),
        (
            {"entities": [{"entity_id": "e", "label": "l", "confidence": 0.5, "bbox": {"x\x00": 1}}]},
            "entities.0.bbox",
        ),
        ({"created_at": "0001-01-01T00:00:00+01:00"}, "created_at"),
        ({"created_at": "9999-12-31T23:59:59-01:00"}, "created_at"),
    ],
)
def test_sessions_refuse_what_the_database_cannot_store(
    storage: Storage, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as error:
        storage.sessions.save_session({"image_path": "a.jpg", "naive_prompt": "b", **changes})
    assert field_of(error).startswith(field)
    assert storage.sessions.get_session_count() == 0


def test_the_largest_integers_are_stored(storage: Storage) -> None:
    session_id = storage.sessions.save_session(
        {"image_path": "a", "naive_prompt": "b", "prompts": [{"iteration": INT_MAX, "positive_prompt": "p"}]}
    )
    detail = storage.sessions.load_session(session_id)
    assert detail is not None and detail.prompts[0].iteration == INT_MAX
    image = storage.gallery.add_image({"filename": "a.png", "prompt": "p", "model_id": "m", "seed": INT_MAX})
    assert image.seed == INT_MAX


def test_history_and_library_offsets_are_bounded(storage: Storage) -> None:
    with pytest.raises(InvalidInput) as error:
        storage.sessions.query_history(offset=2**40)
    assert field_of(error) == "offset"
    with pytest.raises(InvalidInput) as error:
        storage.library.search("sunset", offset=2**63)
    assert field_of(error) == "offset"
    with pytest.raises(InvalidInput) as error:
        storage.sessions.query_history(date_from="0001-01-01T00:00:00+00:30")
    assert field_of(error) == "date_from"


def test_gallery_integers_are_bounded(storage: Storage) -> None:
    rejected: list[tuple[dict[str, Any], str]] = [
        ({"seed": 2**40}, "seed"),
        ({"creation_session_id": 2**40}, "creation_session_id"),
        ({"generation_params": {"steps": "\x00"}}, "generation_params"),
    ]
    for changes, field in rejected:
        with pytest.raises(InvalidInput) as error:
            storage.gallery.add_image({"filename": "a.png", "prompt": "p", "model_id": "m", **changes})
        assert field_of(error) == field
    with pytest.raises(InvalidInput) as error:
        storage.gallery.start_training("run", "path", dataset_size=2**31)
    assert field_of(error) == "dataset_size"


@pytest.mark.parametrize("days", [1e20, float("inf"), 3_000_000])
def test_cleanup_further_back_than_dates_go_deletes_nothing(storage: Storage, days: float) -> None:
    storage.library.record_prompt("kept")
    assert storage.library.cleanup(older_than_days=days) == 0
    assert storage.library.stats().total_prompts == 1


def test_cleanup_refuses_nan(storage: Storage) -> None:
    with pytest.raises(InvalidInput) as error:
        storage.library.cleanup(older_than_days=float("nan"))
    assert field_of(error) == "older_than_days"


def test_the_documented_white_space_class_is_the_white_space_the_validators_apply() -> None:
    """schemas.common.WHITE_SPACE_CLASS (the OpenAPI pattern of a prompt or a query) holds exactly the
    characters str.split() splits on: a text the document accepts is one the service accepts."""
    in_class = re.compile(f"[{WHITE_SPACE_CLASS}]")
    assert [c for c in map(chr, range(0x110000)) if bool(in_class.fullmatch(c)) != c.isspace()] == []


@pytest.mark.parametrize("cursor", [[], [1], 7, "", "7", "1_2_3"])
def test_a_browse_cursor_not_of_the_documented_form_is_invalid_input(storage: Storage, cursor: Any) -> None:
    with pytest.raises(InvalidInput) as error:
        storage.library.browse(cursor=cursor)
    assert field_of(error) == "cursor"
