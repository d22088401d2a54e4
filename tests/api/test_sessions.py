"""``/api/sessions``: every route, its success and its errors."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("fastapi")  # the api extra; without it there is nothing to test

from fastapi.testclient import TestClient

from edi_storage.storage import Storage
from edi_storage.testing import examples
from tests.api.test_library import problem

SESSIONS = "/api/sessions"


def create(client: TestClient, **fields: Any) -> str:
    body = {"image_path": "/photos/beach.jpg", "naive_prompt": "make the sky dramatic", **fields}
    response = client.post(f"{SESSIONS}/", json=body)
    assert response.status_code == 201, response.text
    session_id: str = response.json()["id"]
    return session_id


# -- POST /, GET /{id} ------------------------------------------------------------------------------
def test_create_and_load_the_whole_graph(client: TestClient) -> None:
    reference = examples.reference_session()
    response = client.post(f"{SESSIONS}/", json=reference)
    assert response.status_code == 201 and response.json() == {"id": "session-789"}
    graph = client.get(f"{SESSIONS}/session-789").json()
    assert graph["status"] == "completed" and graph["final_alignment_score"] == 0.85
    assert graph["entities"][0]["bbox"] == reference["entities"][0]["bbox"]
    assert graph["prompts"][0]["positive_prompt"] == "dramatic sky with storm clouds"
    assert graph["user_feedback"]["rating"] == 5 and len(graph["validations"]) == 1


def test_create_without_an_id_assigns_one(client: TestClient, storage: Storage) -> None:
    session_id = create(client)
    assert storage.sessions.load_session(session_id) is not None


def test_create_rejects_invalid_graphs_naming_the_field(client: TestClient) -> None:
    rejected: list[tuple[dict[str, Any], str, Any]] = [
        ({"final_alignment_score": 1.7}, "final_alignment_score", 1.7),
        ({"entities": [{"entity_id": "e", "label": "l", "confidence": 1.5}]}, "entities.0.confidence", 1.5),
        ({"prompts": [{"iteration": 2**31, "positive_prompt": "p"}]}, "prompts.0.iteration", 2**31),
        ({"session_metadata": {"k": "a\u0000b"}}, "session_metadata", {"k": "a\u0000b"}),
        ({"created_at": "0001-01-01T00:00:00+01:00"}, "created_at", "0001-01-01T00:00:00+01:00"),
        ({"status": "finished"}, "status", "finished"),
        ({"colour": "red"}, "colour", "red"),
    ]
    for changes, field, value in rejected:
        body = {"image_path": "a.jpg", "naive_prompt": "b", **changes}
        first = problem(client.post(f"{SESSIONS}/", json=body))[0]
        assert (first["field"], first["value"]) == (field, value)
    assert client.get(f"{SESSIONS}/statistics").json()["total_sessions"] == 0


def test_load_unknown_and_invalid_ids(client: TestClient) -> None:
    missing = client.get(f"{SESSIONS}/nope")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "session 'nope' not found", "error": "NotFound"}
    assert problem(client.get(f"{SESSIONS}/{'x' * 256}"))[0]["field"] == "session_id"


# -- PUT /{id} -------------------------------------------------------------------------------------
def test_put_creates_then_replaces(client: TestClient) -> None:
    graph = examples.reference_session()
    del graph["id"]
    created = client.put(f"{SESSIONS}/mine", json=graph)
    assert created.status_code == 200 and created.json() == {"id": "mine"}
    replacement = {"id": "mine", "image_path": "b.jpg", "naive_prompt": "brighter", "status": "failed"}
    assert client.put(f"{SESSIONS}/mine", json=replacement).status_code == 200
    stored = client.get(f"{SESSIONS}/mine").json()
    assert (stored["image_path"], stored["status"], stored["prompts"], stored["entities"]) == (
        "b.jpg",
        "failed",
        [],
        [],
    )


def test_put_refuses_another_id_in_the_body(client: TestClient) -> None:
    body = {"id": "other", "image_path": "a.jpg", "naive_prompt": "b"}
    detail = problem(client.put(f"{SESSIONS}/mine", json=body))
    assert detail[0]["field"] == "id" and detail[0]["value"] == "other"
    assert client.get(f"{SESSIONS}/mine").status_code == 404
    assert problem(client.put(f"{SESSIONS}/mine", json={"image_path": "a.jpg"}))[0]["field"] == "naive_prompt"


# -- GET / ------------------------------------------------------------------------------------------
def test_history_filters_and_orders(client: TestClient) -> None:
    low = create(
        client, status="completed", final_alignment_score=0.4, naive_prompt="dim the sun", user_id="ann"
    )
    high = create(
        client, status="completed", final_alignment_score=0.9, naive_prompt="sky please", project_id="p1"
    )
    pending = create(
        client, naive_prompt="more sky", created_at="2020-01-01T00:00:00Z", user_id="ann", project_id="p1"
    )

    def ids(**params: Any) -> list[str]:
        response = client.get(f"{SESSIONS}/", params=params)
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()]

    assert set(ids()) == {low, high, pending}
    assert ids(status_filter="completed", order_by="final_alignment_score desc") == [high, low]
    assert ids(min_score=0.5) == [high]
    assert set(ids(search_term="sky")) == {high, pending}
    assert ids(date_to="2021-01-01T00:00:00Z") == [pending]
    assert pending not in ids(date_from="2021-01-01T00:00:00+02:00")
    assert ids(order_by="created_at asc", limit=1) == [pending]
    assert len(ids(limit=2, offset=2)) == 1
    assert ids(order_by="CREATED_AT  Asc", limit=1) == [pending]  # the reference's spellings too
    assert ids(user_id="ann") == [low, pending] and ids(project_id="p1") == [high, pending]
    assert ids(user_id="ann", project_id="p1") == [pending] and ids(user_id="bob") == []


def test_history_rejects_bad_filters(client: TestClient) -> None:
    rejected: list[tuple[dict[str, Any], str]] = [
        ({"limit": 0}, "limit"),
        ({"offset": 2**31}, "offset"),
        ({"status_filter": "done"}, "status_filter"),
        ({"min_score": 2}, "min_score"),
        ({"order_by": "name"}, "order_by"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"date_from": "9999-12-31T23:59:59-01:00"}, "date_from"),
        ({"sort": "x"}, "sort"),
    ]
    for params, field in rejected:
        assert problem(client.get(f"{SESSIONS}/", params=params))[0]["field"] == field, params


# -- GET /statistics -------------------------------------------------------------------------------
def test_statistics(client: TestClient) -> None:
    create(client, status="completed", final_alignment_score=0.8)
    create(client, status="completed", final_alignment_score=0.6)
    create(client, status="failed")
    create(client, processing_time=3.0)
    stats = client.get(f"{SESSIONS}/statistics").json()
    last_updated = stats.pop("last_updated")
    assert stats == {
        "total_sessions": 4,
        "status_breakdown": {"completed": 2, "failed": 1, "in_progress": 1},
        "average_alignment_score": 0.7,
        "successful_rate": 50.0,
        "average_processing_time": 3.0,
        "recent_sessions_7_days": 4,
        "table_counts": {"sessions": 4, "prompts": 0, "entities": 0, "validations": 0, "user_feedback": 0},
    }
    assert last_updated.endswith("Z")


# -- PATCH /{id}/status, DELETE /{id} --------------------------------------------------------------
def test_update_status(client: TestClient) -> None:
    session_id = create(client)
    response = client.patch(
        f"{SESSIONS}/{session_id}/status", json={"status": "completed", "final_alignment_score": 0.91}
    )
    assert response.status_code == 204 and response.content == b""
    stored = client.get(f"{SESSIONS}/{session_id}").json()
    assert (stored["status"], stored["final_alignment_score"]) == ("completed", 0.91)
    assert client.patch(f"{SESSIONS}/nope/status", json={"status": "failed"}).status_code == 404
    assert (
        problem(client.patch(f"{SESSIONS}/{session_id}/status", json={"status": "?"}))[0]["field"] == "status"
    )
    assert problem(client.patch(f"{SESSIONS}/{session_id}/status", json={}))[0]["field"] == "status"


def test_delete(client: TestClient) -> None:
    session_id = create(client, **{k: v for k, v in examples.reference_session().items() if k != "id"})
    response = client.delete(f"{SESSIONS}/{session_id}")
    assert response.status_code == 204 and response.content == b""
    assert client.get(f"{SESSIONS}/{session_id}").status_code == 404
    assert client.delete(f"{SESSIONS}/{session_id}").status_code == 404
    assert problem(client.delete(f"{SESSIONS}/{'x' * 300}"))[0]["field"] == "session_id"


# -- POST /{id}/prompts, /entities, /validations, /feedback ----------------------------------------
def test_steps_are_added_to_the_graph(client: TestClient) -> None:
    session_id = create(client)
    base = f"{SESSIONS}/{session_id}"
    prompt = client.post(f"{base}/prompts", json={"iteration": 0, "positive_prompt": "storm clouds"})
    entities = client.post(
        f"{base}/entities",
        json=[
            {
                "entity_id": "sky_0",
                "label": "sky",
                "confidence": 0.9,
                "bbox": {"x1": 0, "y1": 0, "x2": 9, "y2": 9},
            },
            {"entity_id": "sea_0", "label": "sea", "confidence": 0.8},
        ],
    )
    validation = client.post(f"{base}/validations", json={"attempt_number": 1, "alignment_score": 0.87})
    feedback = client.post(f"{base}/feedback", json={"feedback_type": "accept", "rating": 5})
    for response in (prompt, entities, validation, feedback):
        assert response.status_code == 201, response.text
    graph = client.get(base).json()
    assert [p["id"] for p in graph["prompts"]] == [prompt.json()["id"]]
    assert [e["id"] for e in graph["entities"]] == entities.json()["ids"]
    assert [v["id"] for v in graph["validations"]] == [validation.json()["id"]]
    assert graph["user_feedback"]["id"] == feedback.json()["id"]


def test_steps_reject_invalid_input_and_unknown_sessions(client: TestClient) -> None:
    session_id = create(client)
    cases: list[tuple[str, Any, str, Any]] = [
        (
            "prompts",
            {"iteration": -1, "positive_prompt": "p"},
            "iteration",
            {"iteration": 0, "positive_prompt": "p"},
        ),
        (
            "entities",
            [{"entity_id": "e", "label": "l", "confidence": 0.5, "color_hex": "red"}],
            "0.color_hex",
            [],
        ),
        (
            "validations",
            {"attempt_number": 1, "alignment_score": 3},
            "alignment_score",
            {"attempt_number": 1},
        ),
        ("feedback", {"feedback_type": "accept", "rating": 6}, "rating", {"feedback_type": "reject"}),
    ]
    for step, invalid, field, valid in cases:
        assert problem(client.post(f"{SESSIONS}/{session_id}/{step}", json=invalid))[0]["field"] == field
        missing = client.post(f"{SESSIONS}/nope/{step}", json=valid)
        assert missing.status_code == 404 and missing.json()["error"] == "NotFound", step


# -- one row corrected, tags and metadata ----------------------------------------------------------
@pytest.mark.parametrize(
    ("collection", "body", "field"),
    [
        ("prompts", {"iteration": 0, "positive_prompt": "stormy"}, "positive_prompt"),
        ("entities", {"entity_id": "sky_0", "label": "sea", "confidence": 0.5}, "label"),
        ("validations", {"attempt_number": 1, "alignment_score": 0.9}, "alignment_score"),
        ("feedback", {"feedback_type": "reject", "rating": 1}, "feedback_type"),
    ],
)
def test_one_row_of_a_session_is_replaced_or_deleted(
    client: TestClient, collection: str, body: dict[str, Any], field: str
) -> None:
    graph = {
        "image_path": "a.jpg",
        "naive_prompt": "b",
        "prompts": [{"iteration": 0, "positive_prompt": "p"}],
        "entities": [{"entity_id": "sky_0", "label": "sky", "confidence": 0.9}],
        "validations": [{"attempt_number": 1, "alignment_score": 0.2}],
        "feedback": [{"feedback_type": "accept"}],
    }
    session_id = client.post(f"{SESSIONS}/", json=graph).json()["id"]
    other = create(client)
    row_id = client.get(f"{SESSIONS}/{session_id}").json()[collection][0]["id"]
    assert client.put(f"{SESSIONS}/{session_id}/{collection}/{row_id}", json=body).status_code == 204
    assert client.get(f"{SESSIONS}/{session_id}").json()[collection][0][field] == body[field]
    assert client.put(f"{SESSIONS}/{other}/{collection}/{row_id}", json=body).status_code == 404
    assert client.delete(f"{SESSIONS}/{other}/{collection}/{row_id}").status_code == 404
    assert problem(client.put(f"{SESSIONS}/{session_id}/{collection}/{row_id}", json={}))[0]["field"]
    assert client.delete(f"{SESSIONS}/{session_id}/{collection}/{row_id}").status_code == 204
    assert client.get(f"{SESSIONS}/{session_id}").json()[collection] == []
    assert client.delete(f"{SESSIONS}/{session_id}/{collection}/{row_id}").status_code == 404


def test_tags_and_metadata_are_changed_by_patch(client: TestClient) -> None:
    session_id = create(client, session_tags=["sky"], session_metadata={"camera": "x100"})
    changed = client.patch(f"{SESSIONS}/{session_id}/tags", json={"add": ["storm", "sky"], "remove": ["sky"]})
    assert changed.status_code == 200 and changed.json() == {"tags": ["storm"]}
    metadata = client.patch(
        f"{SESSIONS}/{session_id}/metadata", json={"set": {"lens": 23}, "remove": ["camera"]}
    )
    assert metadata.json() == {"metadata": {"lens": 23}}
    stored = client.get(f"{SESSIONS}/{session_id}").json()
    assert (stored["session_tags"], stored["session_metadata"]) == (["storm"], {"lens": 23})
    assert client.patch(f"{SESSIONS}/missing/tags", json={"add": ["a"]}).status_code == 404
    assert problem(client.patch(f"{SESSIONS}/{session_id}/tags", json={"add": "a"}))[0]["field"] == "add"


# -- /api/analytics --------------------------------------------------------------------------------
def test_analytics_endpoints(client: TestClient) -> None:
    graph = {
        "image_path": "a.jpg",
        "naive_prompt": "b",
        "created_at": "2026-03-02T10:00:00Z",
        "model_version": "v1",
        "status": "completed",
        "final_alignment_score": 0.8,
        "entities": [{"entity_id": "sky_0", "label": "sky", "confidence": 0.9}],
        "validations": [{"attempt_number": 1, "alignment_score": 0.7}],
        "feedback": [{"feedback_type": "accept", "rating": 4}],
    }
    assert client.post(f"{SESSIONS}/", json=graph).status_code == 201
    feedback = client.get("/api/analytics/feedback").json()
    assert feedback["per_type"]["accept"] == 1 and feedback["ratings"]["4"] == 1
    assert client.get("/api/analytics/labels", params={"limit": 5}).json()[0]["label"] == "sky"
    weeks = client.get("/api/analytics/trend", params={"period": "week", "by_model": "true"}).json()
    assert weeks == [
        {"period": "2026-03-02", "model_version": "v1", "sessions": 1, "completed": 1,
         "average_alignment": 0.8, "average_quality": None}
    ]  # fmt: skip
    assert problem(client.get("/api/analytics/trend", params={"period": "month"}))[0]["field"] == "period"
    assert problem(client.get("/api/analytics/trend", params={"date_from": "0.5"}))[0]["field"] == "date_from"
