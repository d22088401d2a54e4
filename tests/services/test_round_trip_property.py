"""Property: any valid session graph, saved and loaded, comes back equal (hypothesis explores the
shapes a hand-written example would not: empty lists, unicode, extreme but valid numbers, nested JSON)."""

from __future__ import annotations

import math
import string
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edi_storage import SessionCreate
from edi_storage.testing.fixtures import sqlite_memory_copy

text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40)
required_text = text.filter(lambda s: len(s) > 0)
score = st.floats(0, 1, allow_nan=False)
maybe = st.none().__or__
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | text
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
json_object = st.dictionaries(text, json_value, max_size=4)
hex_colour = st.text(string.hexdigits, min_size=6, max_size=6).map(lambda s: "#" + s)

prompts: st.SearchStrategy[dict[str, Any]] = st.builds(
    dict,
    iteration=st.integers(0, 1000),
    positive_prompt=required_text,
    negative_prompt=text,
    quality_score=maybe(score),
    generation_time=maybe(st.floats(0, 1e6)),
    model_confidence=maybe(score),
    prompt_metadata=maybe(json_object),
    generation_parameters=maybe(json_object),
)
entities: st.SearchStrategy[dict[str, Any]] = st.builds(
    dict,
    entity_id=required_text,
    label=required_text,
    confidence=score,
    bbox=maybe(st.dictionaries(st.sampled_from(["x1", "y1", "x2", "y2"]), st.floats(0, 1e5), max_size=4)),
    mask_path=maybe(text),
    color_hex=maybe(hex_colour),
    area_percent=maybe(st.floats(0, 100)),
    embedding_vector=maybe(st.lists(st.floats(-1, 1, width=32), max_size=8)),
    semantic_label=maybe(text),
    entity_metadata=maybe(json_object),
    quality_score=maybe(score),
)
validations: st.SearchStrategy[dict[str, Any]] = st.builds(
    dict,
    attempt_number=st.integers(0, 100),
    alignment_score=maybe(score),
    preserved_count=maybe(st.integers(0, 10**6)),
    modified_count=maybe(st.integers(0, 10**6)),
    unintended_count=maybe(st.integers(0, 10**6)),
    user_feedback=maybe(text),
    quality_metrics=maybe(json_object),
    user_ratings=maybe(json_object),
)
feedback: st.SearchStrategy[dict[str, Any]] = st.builds(
    dict,
    feedback_type=st.sampled_from(["accept", "reject", "partial"]),
    comments=maybe(text),
    rating=maybe(st.integers(1, 5)),
    feedback_metadata=maybe(json_object),
)
graphs: st.SearchStrategy[dict[str, Any]] = st.builds(
    dict,
    id=required_text.filter(lambda s: len(s) <= 255),
    image_path=required_text,
    naive_prompt=required_text,
    status=st.sampled_from(["in_progress", "completed", "failed"]),
    final_alignment_score=maybe(score),
    processing_time=maybe(st.floats(0, 1e6)),
    model_version=maybe(text),
    session_tags=maybe(st.lists(text, max_size=4)),
    session_metadata=maybe(json_object),
    user_id=maybe(text),
    project_id=maybe(text),
    prompts=st.lists(prompts, max_size=3),
    entities=st.lists(entities, max_size=3),
    validations=st.lists(validations, max_size=3),
    user_feedback=maybe(feedback),
)


def comparable(graph: SessionCreate) -> dict[str, Any]:
    """The graph as plain data without what the database assigns (timestamps); feedback always as the
    ``feedback`` list; children in the order a load returns them."""
    data = graph.model_dump(mode="json", exclude={"created_at", "user_feedback", "feedback"})
    data["feedback"] = [f.model_dump(mode="json") for f in graph.all_feedback()]
    for key in ("prompts", "validations", "feedback", "entities"):
        for child in data[key]:
            child.pop("created_at", None)
    data["prompts"].sort(key=lambda p: p["iteration"])
    data["validations"].sort(key=lambda v: v["attempt_number"])
    return data


def close(a: Any, b: Any) -> bool:
    """Equal, with floats equal to the precision the database keeps (REAL / double precision)."""
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, int | float)
            and isinstance(b, int | float)
            and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(graph=graphs)
def test_saved_graph_loads_back_equal(sqlite_template: Path, graph: dict[str, Any]) -> None:
    storage = sqlite_memory_copy(sqlite_template)
    try:
        parsed = SessionCreate.model_validate(graph)
        session_id = storage.sessions.save_session(parsed)
        loaded = storage.sessions.load_session(session_id)
        assert loaded is not None
        expected, got = comparable(parsed), comparable(loaded.as_create())
        assert close(expected, got), (expected, got)
    finally:
        storage.close()
