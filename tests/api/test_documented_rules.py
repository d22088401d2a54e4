"""The OpenAPI document states the rules the endpoints enforce (issue 13): a value the document refuses
is refused by the endpoint (422, nothing written), and one it accepts is accepted. Checked here with
the document's own schemas, rule by rule; test_schemathesis.py checks the same at random."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("fastapi")

from fastapi import FastAPI
from fastapi.testclient import TestClient

jsonschema_rs = pytest.importorskip("jsonschema_rs")  # a dependency of schemathesis

SESSION = {"image_path": "/images/sky.png", "naive_prompt": "make the sky dramatic"}


def _documented(app: FastAPI, schema: dict[str, Any]) -> Any:
    """A validator of ``schema`` whose ``$ref``s resolve in the app's document."""
    document = app.openapi()
    return jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]})


def _body_schema(app: FastAPI, path: str, method: str) -> dict[str, Any]:
    operation = app.openapi()["paths"][path][method]
    schema: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["schema"]
    return schema


def _parameter_schema(app: FastAPI, path: str, method: str, name: str) -> dict[str, Any]:
    operation = app.openapi()["paths"][path][method]
    [parameter] = [p for p in operation["parameters"] if p["name"] == name]
    schema: dict[str, Any] = parameter["schema"]
    return schema


@pytest.mark.parametrize(
    "body",
    [
        {**SESSION, "naive_prompt": "sky\x00"},
        {**SESSION, "session_metadata": {"key\x00": 1}},
        {**SESSION, "session_metadata": {"deep": [{"deeper": "nul\x00"}]}},
        {**SESSION, "user_feedback": {"feedback_type": "accept"}, "feedback": [{"feedback_type": "accept"}]},
    ],
    ids=["nul-in-text", "nul-in-a-key", "nul-nested", "both-feedback-forms"],
)
def test_a_session_the_document_refuses_is_refused(app: FastAPI, client: TestClient, body: Any) -> None:
    validator = _documented(app, _body_schema(app, "/api/sessions/", "post"))
    assert validator.is_valid(SESSION)
    assert not validator.is_valid(body)
    assert client.post("/api/sessions/", json=body).status_code == 422
    assert client.get("/api/sessions/").json() == []


def test_cleanup_needs_a_criterion_and_the_document_says_so(app: FastAPI, client: TestClient) -> None:
    validator = _documented(app, _body_schema(app, "/api/prompts/cleanup", "post"))
    for refused in ({}, {"older_than_days": None, "without_thumbnail": False}):
        assert not validator.is_valid(refused)
        assert client.post("/api/prompts/cleanup", json=refused).status_code == 422
    for accepted in ({"without_thumbnail": True}, {"older_than_days": 0}):
        assert validator.is_valid(accepted)
        assert client.post("/api/prompts/cleanup", json=accepted).json() == {"deleted": 0}


def test_a_put_body_needs_no_id_and_one_given_must_be_the_paths(app: FastAPI, client: TestClient) -> None:
    schema = app.openapi()["components"]["schemas"]["SessionReplacement"]
    assert "id" not in schema["properties"] and schema["additionalProperties"] is False
    assert client.put("/api/sessions/s-1", json=SESSION).json() == {"id": "s-1"}
    assert client.put("/api/sessions/s-1", json={**SESSION, "id": "s-1"}).status_code == 200
    other = client.put("/api/sessions/s-1", json={**SESSION, "id": "s-2"})
    assert other.status_code == 422 and other.json()["detail"][0]["field"] == "id"
    assert client.get("/api/sessions/s-2").status_code == 404


def test_a_browse_cursor_has_a_documented_form(app: FastAPI, client: TestClient) -> None:
    validator = _documented(app, _parameter_schema(app, "/api/prompts/", "get", "cursor"))
    for text in ("first", "second", "third"):
        client.post("/api/prompts/", json={"prompt_text": text})
    page = client.get("/api/prompts/", params={"limit": 2}).json()
    assert validator.is_valid(page["next_cursor"])
    rest = client.get("/api/prompts/", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [p["prompt_text"] for p in rest["items"]] == ["first"] and rest["next_cursor"] is None
    for refused in ("", "abc", "1_"):
        assert not validator.is_valid(refused)
        assert client.get("/api/prompts/", params={"cursor": refused}).status_code == 422
    # A position beyond the dates a datetime holds is still a position: before every prompt.
    # ... and an id past the 32-bit ids is one too (PostgreSQL compares it, rather than refusing it).
    for beyond in ("9" * 18 + "_1", "9" * 16 + "_" + "9" * 18):
        assert validator.is_valid(beyond)
        assert len(client.get("/api/prompts/", params={"cursor": beyond}).json()["items"]) == 3


def test_a_prompt_or_query_of_white_space_only_is_refused_as_documented(
    app: FastAPI, client: TestClient
) -> None:
    """Python's white space, the rule str.split() applies, is what the document's pattern states: a
    form feed, a no-break space, an ideographic space are white space; a zero-width space is not."""
    body = _documented(app, _body_schema(app, "/api/prompts/", "post"))
    query = _documented(app, _parameter_schema(app, "/api/prompts/search", "get", "query"))
    for blank in (" ", "\f", "\x1c", "\xa0", "\u3000 \t"):
        assert not body.is_valid({"prompt_text": blank}) and not query.is_valid(blank)
        answer = client.post("/api/prompts/", json={"prompt_text": blank})
        assert answer.status_code == 422 and answer.json()["detail"][0]["field"] == "prompt_text"
        answer = client.get("/api/prompts/search", params={"query": blank})
        assert answer.status_code == 422 and answer.json()["detail"][0]["field"] == "query"
    assert client.get("/api/prompts/").json()["items"] == []
    for words in ("sky", " \u200b "):
        assert body.is_valid({"prompt_text": words}) and query.is_valid(words)
        assert client.post("/api/prompts/", json={"prompt_text": words}).status_code == 200
        assert client.get("/api/prompts/search", params={"query": words}).status_code == 200


@pytest.mark.parametrize("segment", ["%0A", "statistics%0A"])
def test_a_session_id_ending_in_a_newline_is_not_routed_elsewhere(
    app: FastAPI, client: TestClient, segment: str
) -> None:
    """Starlette's route patterns end in "$", which matches before a final newline, so GET
    /api/sessions/%0A would answer with the collection: the document refuses such an id, and the path
    names nothing (404)."""
    validator = _documented(app, _parameter_schema(app, "/api/sessions/{session_id}", "get", "session_id"))
    assert not validator.is_valid(segment.replace("%0A", "\n"))
    assert validator.is_valid("statistics-of-tuesday")
    assert client.get(f"/api/sessions/{segment}").status_code == 404
