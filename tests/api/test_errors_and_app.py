"""The error mapping, the OpenAPI document, mounting the router, and the app's storage lifecycle."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")  # the api extra; without it there is nothing to test

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

import edi_storage.api
from edi_storage.api import create_app, router
from edi_storage.api.errors import RETRY_AFTER_SECONDS, StorageRoute, json_safe
from edi_storage.errors import (
    UNKNOWN,
    Busy,
    Conflict,
    DatabaseUnavailable,
    FieldError,
    InvalidInput,
    MigrationFailed,
    NotFound,
    ReadOnly,
    SchemaOutOfDate,
    SchemaTooNew,
    StorageError,
    StorageFull,
)
from edi_storage.storage import Storage

LOCAL = "http://localhost"  # a Host create_app accepts by default (TestClient's own is "testserver")


def test_storage_errors_map_by_type(
    sqlite_client: TestClient, sqlite_storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases: list[tuple[StorageError, int]] = [
        (NotFound("session", "x"), 404),
        (Conflict("filename taken"), 409),
        (Busy("locked"), 503),
        (SchemaOutOfDate("run `edi-storage upgrade`"), 503),
        (SchemaTooNew("newer"), 503),
        (MigrationFailed("rolled back"), 503),
        (DatabaseUnavailable("server down"), 503),
        (ReadOnly("read-only file"), 507),
        (StorageFull("disk full"), 507),
        (StorageError("database error: something"), 500),
    ]
    for error, status in cases:

        def fail(error: StorageError = error) -> None:
            raise error

        monkeypatch.setattr(sqlite_storage.sessions, "get_statistics", fail)
        response = sqlite_client.get("/api/sessions/statistics")
        assert response.status_code == status, error
        assert response.json() == {"detail": str(error), "error": type(error).__name__}
        retry_after = str(RETRY_AFTER_SECONDS) if isinstance(error, Busy) else None
        assert response.headers.get("retry-after") == retry_after


def test_invalid_input_from_the_database_has_a_json_safe_value(
    sqlite_client: TestClient, sqlite_storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail() -> None:
        raise InvalidInput(
            [
                FieldError("user_feedback.rating", "violates the database constraint ck_rating", UNKNOWN),
                FieldError("when", "is odd", datetime(2026, 1, 2, tzinfo=UTC)),
                FieldError("score", "is not a number", math.nan),
            ]
        )

    monkeypatch.setattr(sqlite_storage.sessions, "get_statistics", fail)
    response = sqlite_client.get("/api/sessions/statistics")
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "field": "user_feedback.rating",
                "message": "violates the database constraint ck_rating",
                "value": "UNKNOWN",
            },
            {"field": "when", "message": "is odd", "value": "2026-01-02T00:00:00+00:00"},
            {"field": "score", "message": "is not a number", "value": "nan"},
        ]
    }


def test_json_safe() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    assert json_safe({"a": [1, 2.5, None, True, b"\x00\x01"], 3: Opaque()}) == {
        "a": [1, 2.5, None, True, "<2 bytes>"],
        "3": "<opaque>",
    }
    assert json_safe(math.inf) == "inf"
    assert json_safe("x" * 5000).endswith("…") and len(json_safe("x" * 5000)) == 1001
    assert json_safe("\ud800") == "\\ud800"  # a lone surrogate cannot be written as UTF-8


def test_request_validation_errors_have_the_same_shape(sqlite_client: TestClient) -> None:
    response = sqlite_client.post(
        "/api/sessions/", json={"image_path": "a", "naive_prompt": "b", "prompts": [{}]}
    )
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {"field": "prompts.0.iteration", "message": "Field required", "value": {}},
            {"field": "prompts.0.positive_prompt", "message": "Field required", "value": {}},
        ]
    }
    not_utf8 = sqlite_client.post(
        "/api/sessions/", content=b"\xff\xfe", headers={"content-type": "application/json"}
    )
    assert not_utf8.status_code == 422 and not_utf8.json()["detail"][0]["field"] == "body"
    surrogate = sqlite_client.post(
        "/api/sessions/",
        content=b'{"image_path": "a", "naive_prompt": "\\ud800"}',
        headers={"content-type": "application/json"},
    )
    assert surrogate.status_code == 422 and surrogate.json()["detail"][0]["value"] == "\\ud800"


def test_the_openapi_document_describes_the_real_bodies(shared_app: FastAPI) -> None:
    document = shared_app.openapi()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # FastAPI's own 422 shape is nowhere
    operations = [
        (path, method, op) for path, item in document["paths"].items() for method, op in item.items()
    ]
    assert len(operations) == 55  # 53 and the two health checks
    for path, method, operation in operations:
        has_input = bool(operation.get("parameters")) or "requestBody" in operation
        responses = operation["responses"]
        assert ("422" in responses) == has_input, (method, path)
        if has_input:
            assert responses["422"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/InvalidInputBody"
            }
        assert {"500", "503"} <= set(responses), (method, path)
    assert set(document["paths"]["/api/prompts/"]["post"]["requestBody"]["content"]) == {
        "application/json",
        "multipart/form-data",
        "application/x-www-form-urlencoded",
    }
    assert all(isinstance(r, StorageRoute) for r in shared_app.routes if isinstance(r, APIRoute))


def test_the_router_mounts_in_another_app_with_its_error_mapping(sqlite_storage: Storage) -> None:
    own = FastAPI()
    own.include_router(router(sqlite_storage), prefix="/edi")
    client = TestClient(own)
    assert client.get("/edi/api/sessions/statistics").json()["total_sessions"] == 0
    assert client.get("/edi/api/sessions/nope").json() == {
        "detail": "session 'nope' not found",
        "error": "NotFound",
    }
    assert client.get("/edi/api/prompts/", params={"limit": 0}).json()["detail"][0]["field"] == "limit"


def test_create_app_leaves_a_given_storage_open(sqlite_storage: Storage) -> None:
    with TestClient(create_app(sqlite_storage), base_url=LOCAL) as client:
        assert client.get("/api/sessions/statistics").status_code == 200
    assert sqlite_storage.sessions.get_statistics().total_sessions == 0  # still usable


def test_create_app_opens_its_own_storage_and_closes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[Storage] = []

    class Recorded(Storage):
        def close(self) -> None:
            closed.append(self)
            super().close()

    monkeypatch.setattr(edi_storage.api, "Storage", Recorded)
    monkeypatch.setenv("EDI_STORAGE_URL", f"sqlite:///{tmp_path}/from-settings.db")
    for name in ("from-settings.db", "explicit.db"):  # the app opens a database, never creates one
        Storage(f"sqlite:///{tmp_path}/{name}").close()
    app = create_app()
    with TestClient(app, base_url=LOCAL) as client:
        assert client.post("/api/sessions/", json={"image_path": "a", "naive_prompt": "b"}).status_code == 201
        assert not closed
    assert len(closed) == 1 and (tmp_path / "from-settings.db").exists()
    with Storage(f"sqlite:///{tmp_path}/from-settings.db") as check:
        assert check.sessions.get_statistics().total_sessions == 1
    explicit = create_app(url=f"sqlite:///{tmp_path}/explicit.db")
    with TestClient(explicit, base_url=LOCAL):
        pass
    assert len(closed) == 2 and (tmp_path / "explicit.db").exists()


def test_a_database_behind_the_code_answers_503(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def behind(self: Storage) -> None:
        raise SchemaOutOfDate("the database is at 0004, the code at head: run `edi-storage upgrade`")

    monkeypatch.setattr(Storage, "ensure_current", behind)
    with Storage(f"sqlite:///{tmp_path}/x.db") as store:
        response = TestClient(create_app(store), base_url=LOCAL).get("/api/prompts/stats/overview")
    assert response.status_code == 503
    body: dict[str, Any] = response.json()
    assert body["error"] == "SchemaOutOfDate" and "edi-storage upgrade" in body["detail"]
