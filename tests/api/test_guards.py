"""What guards the application ``create_app`` builds: health, both slash forms, the bearer token, body
and depth limits, allowed hosts, 405s with every method, strict types (docs/http-api.md "Protection")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi")  # the api extra; without it there is nothing to test

from fastapi import FastAPI
from fastapi.testclient import TestClient

from edi_storage.api import create_app
from edi_storage.api.errors import MAX_BODY_DEPTH
from edi_storage.errors import DatabaseUnavailable
from edi_storage.migrate.scripts import head_revision
from edi_storage.migrate.state import SchemaState, SchemaStatus
from edi_storage.schemas.common import MAX_PROMPT_CHARS, MAX_TEXT_CHARS
from edi_storage.storage import Storage

SESSION = {"image_path": "a.png", "naive_prompt": "a sky"}


# -- health -----------------------------------------------------------------------------------------
def test_health_reports_a_current_reachable_database(client: TestClient) -> None:
    for path in ("/health", "/api/health"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.json() == {
            "status": "ok",
            "schema": "current",
            "revision": head_revision(),
            "database": "reachable",
        }


def test_health_is_503_when_the_database_is_unreachable_or_behind(
    sqlite_client: TestClient, sqlite_storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable() -> SchemaStatus:
        raise DatabaseUnavailable("cannot connect to the database server")

    monkeypatch.setattr(sqlite_storage, "schema_status", unreachable)
    down = sqlite_client.get("/health")
    assert down.status_code == 503
    assert down.json() == {
        "status": "unavailable",
        "schema": None,
        "revision": None,
        "database": "unreachable",
        "detail": "cannot connect to the database server",
    }
    behind = SchemaStatus(SchemaState.BEHIND, "0004_query_performance", head_revision())
    monkeypatch.setattr(sqlite_storage, "schema_status", lambda: behind)
    old = sqlite_client.get("/api/health")
    assert old.status_code == 503
    assert old.json()["schema"] == "behind" and old.json()["database"] == "reachable"
    assert "edi-storage upgrade" in old.json()["detail"]


# -- slashes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/sessions", SESSION),
        ("GET", "/api/sessions", None),
        ("POST", "/api/prompts", {"prompt_text": "a sky"}),
        ("GET", "/api/prompts", None),
        ("POST", "/api/gallery/creation-runs/", {"theme": "winter"}),
        ("GET", "/api/gallery/training-runs/", None),
    ],
)
def test_collections_answer_with_and_without_the_slash(
    sqlite_client: TestClient, method: str, path: str, body: Any
) -> None:
    for form in (path, path.rstrip("/") if path.endswith("/") else path + "/"):
        response = sqlite_client.request(method, form, json=body, follow_redirects=False)
        assert response.status_code in {200, 201}, (form, response.status_code, response.text)


def test_the_document_lists_one_slash_form(shared_app: FastAPI) -> None:
    paths = set(shared_app.openapi()["paths"])
    assert "/api/sessions/" in paths and "/api/sessions" not in paths
    assert "/api/gallery/images" in paths and "/api/gallery/images/" not in paths


# -- the bearer token -------------------------------------------------------------------------------
@pytest.fixture
def guarded(sqlite_storage: Storage) -> TestClient:
    return TestClient(create_app(sqlite_storage, token="s3cret"), base_url="http://localhost")


def test_a_token_is_required_everywhere_but_health(guarded: TestClient) -> None:
    for method, path in [
        ("GET", "/api/sessions/"),
        ("POST", "/api/sessions/"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/no/such/path"),
        ("DELETE", "/api/prompts/popular"),
    ]:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
            response = guarded.request(method, path, headers=headers, json=SESSION)
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["error"] == "Unauthorized"
    ok = {"Authorization": "Bearer s3cret"}
    assert guarded.post("/api/sessions/", json=SESSION, headers=ok).status_code == 201
    assert guarded.get("/openapi.json", headers=ok).status_code == 200
    assert guarded.get("/health").status_code == 200 and guarded.get("/api/health").status_code == 200


def test_the_token_comes_from_the_environment(
    sqlite_storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDI_STORAGE_API_TOKEN", "from-env")
    client = TestClient(create_app(sqlite_storage), base_url="http://localhost")
    assert client.get("/api/sessions/").status_code == 401
    assert client.get("/api/sessions/", headers={"Authorization": "Bearer from-env"}).status_code == 200


def test_the_document_declares_the_bearer_scheme(guarded: TestClient) -> None:
    document = guarded.get("/openapi.json", headers={"Authorization": "Bearer s3cret"}).json()
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert document["paths"]["/api/sessions/"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in document["paths"]["/health"]["get"]


def test_a_mounted_router_with_a_token_checks_it(sqlite_storage: Storage) -> None:
    from edi_storage.api import router

    own = FastAPI()
    own.include_router(router(sqlite_storage, token="t"))
    client = TestClient(own)
    denied = client.get("/api/sessions/statistics")
    assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/sessions/statistics", headers={"Authorization": "Bearer t"}).status_code == 200


# -- body limits ------------------------------------------------------------------------------------
def test_a_body_over_the_limit_is_refused_before_it_is_read(
    sqlite_client: TestClient, storage: Storage
) -> None:
    huge = json.dumps({**SESSION, "naive_prompt": "x" * (2 * 1024 * 1024)}).encode()
    declared = sqlite_client.post(
        "/api/sessions/", content=huge, headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413 and declared.json()["error"] == "PayloadTooLarge"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(huge), 64 * 1024):
            yield huge[start : start + 64 * 1024]

    chunked = sqlite_client.post(
        "/api/sessions/", content=chunks(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413
    assert storage.sessions.get_statistics().total_sessions == 0


def test_an_image_upload_may_be_larger(sqlite_client: TestClient) -> None:
    image = b"\x89PNG" + b"\0" * (3 * 1024 * 1024)  # over the 1 MiB of JSON bodies, not an image
    response = sqlite_client.post(
        "/api/prompts/", data={"prompt_text": "big"}, files={"image": ("a.png", image)}
    )
    assert response.status_code == 200 and response.json()["thumbnail_error"]


def test_text_fields_state_and_keep_their_length_limits(
    sqlite_client: TestClient, shared_app: FastAPI
) -> None:
    schemas = shared_app.openapi()["components"]["schemas"]
    assert schemas["SessionCreate"]["properties"]["naive_prompt"]["maxLength"] == MAX_PROMPT_CHARS
    assert schemas["SessionCreate"]["properties"]["image_path"]["maxLength"] == MAX_TEXT_CHARS
    assert schemas["FeedbackIn"]["properties"]["comments"]["anyOf"][0]["maxLength"] == MAX_TEXT_CHARS
    long = sqlite_client.post(
        "/api/sessions/", json={**SESSION, "naive_prompt": "x" * (MAX_PROMPT_CHARS + 1)}
    )
    assert long.status_code == 422 and long.json()["detail"][0]["field"] == "naive_prompt"


@pytest.mark.parametrize("path", ["/api/prompts/", "/api/sessions/", "/api/gallery/training-runs"])
def test_json_nested_too_deep_is_422_not_500(sqlite_client: TestClient, path: str) -> None:
    for depth in (MAX_BODY_DEPTH + 1, 10_000):
        body = b"[" * depth + b"]" * depth
        response = sqlite_client.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, (depth, response.text)
        assert response.json()["detail"][0]["field"] == "body"
    # brackets inside strings are text, not nesting
    text = {**SESSION, "naive_prompt": "[" * 5000}
    assert sqlite_client.post("/api/sessions/", json=text).status_code == 201


# -- hosts ------------------------------------------------------------------------------------------
def test_only_allowed_hosts_are_served(sqlite_storage: Storage) -> None:
    app = create_app(sqlite_storage, allowed_hosts=["edi.lan"])
    for host in ("localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "edi.lan"):
        assert TestClient(app, base_url=f"http://{host}").get("/health").status_code == 200, host
    for host in ("evil.example", "127.0.0.2", "edi.lan.evil.example"):
        assert TestClient(app, base_url=f"http://{host}").get("/health").status_code == 400, host


# -- 405 and Allow ----------------------------------------------------------------------------------
def test_a_wrong_method_is_405_with_every_method_of_the_path(sqlite_client: TestClient) -> None:
    popular = sqlite_client.delete("/api/prompts/popular")
    assert popular.status_code == 405 and popular.headers["allow"] == "GET"
    session = sqlite_client.post("/api/sessions/x")
    assert session.status_code == 405
    assert session.headers["allow"] == "DELETE, GET, PUT"
    collection = sqlite_client.delete("/api/sessions/")
    assert collection.status_code == 405 and collection.headers["allow"] == "GET, POST"
    assert collection.json() == {"detail": "Method Not Allowed", "error": "MethodNotAllowed"}
    # /api/sessions/statistics is the statistics resource, not a session called "statistics".
    for method in ("DELETE", "PUT", "OPTIONS"):
        statistics = sqlite_client.request(method, "/api/sessions/statistics")
        assert statistics.status_code == 405 and statistics.headers["allow"] == "GET", method


# -- strict types -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "method", "body", "field"),
    [
        ("/api/sessions/", "POST", {**SESSION, "final_alignment_score": False}, "final_alignment_score"),
        ("/api/sessions/", "POST", {**SESSION, "prompts": [{"iteration": 0, "positive_prompt": "p",
                                                          "quality_score": False}]}, "prompts.0.quality_score"),
        ("/api/sessions/", "POST", {**SESSION, "created_at": 1700000000}, "created_at"),
        ("/api/gallery/images/1/featured", "PUT", {"featured": 0}, "featured"),
        ("/api/prompts/cleanup", "POST", {"without_thumbnail": 1}, "without_thumbnail"),
    ],
)  # fmt: skip
def test_json_values_of_another_type_are_refused(
    sqlite_client: TestClient, path: str, method: str, body: dict[str, Any], field: str
) -> None:
    response = sqlite_client.request(method, path, json=body)
    assert response.status_code == 422, response.text
    assert [p["field"] for p in response.json()["detail"]] == [field]


def test_strict_bodies_still_take_what_json_carries(sqlite_client: TestClient) -> None:
    body = {
        **SESSION,
        "final_alignment_score": 1,
        "status": "completed",
        "created_at": "2026-01-31T12:00:00Z",
    }
    assert sqlite_client.post("/api/sessions/", json=body).status_code == 201


def test_history_dates_are_iso_8601_only(sqlite_client: TestClient) -> None:
    for bad in ("0.5", "1700000000", "yesterday"):
        response = sqlite_client.get("/api/sessions/", params={"date_to": bad})
        assert response.status_code == 422 and response.json()["detail"][0]["field"] == "date_to", bad
    for good in ("2026-01-31T12:00:00Z", "2026-01-31T12:00:00+01:00", "2026-01-31"):
        assert sqlite_client.get("/api/sessions/", params={"date_from": good}).status_code == 200, good
