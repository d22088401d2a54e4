"""``/api/prompts``: every route, its success and its errors."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("fastapi")  # the api extra; without it there is nothing to test

from fastapi.testclient import TestClient

from edi_storage.api import library as library_routes
from edi_storage.storage import Storage
from tests.api.conftest import png

PROMPTS = "/api/prompts"


def record(client: TestClient, text: str, **fields: Any) -> dict[str, Any]:
    response = client.post(f"{PROMPTS}/", json={"prompt_text": text, **fields})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def problem(response: Any, status: int = 422) -> list[dict[str, Any]]:
    """The field problems of a 422 answer (asserting its status and shape)."""
    assert response.status_code == status, response.text
    detail: list[dict[str, Any]] = response.json()["detail"]
    assert detail and all(set(p) == {"field", "message", "value"} for p in detail)
    return detail


# -- POST / -----------------------------------------------------------------------------------------
def test_record_as_json_counts_uses(client: TestClient) -> None:
    first = record(client, "A sunset over mountains", model="sdxl")
    again = record(client, "a  SUNSET over mountains")
    assert again["id"] == first["id"]
    assert (first["total_uses"], again["total_uses"]) == (1, 2)
    assert again["model"] == "sdxl" and again["thumbnail_bytes"] == 0 and again["thumbnail_error"] is None


def test_record_with_an_uploaded_image_makes_a_webp_thumbnail(client: TestClient) -> None:
    response = client.post(
        f"{PROMPTS}/",
        data={"prompt_text": "a red square", "model": "sdxl"},
        files={"image": ("out.png", png(640, 480), "image/png")},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["thumbnail_mime"] == "image/webp"
    assert (body["thumbnail_width"], body["thumbnail_height"]) == (256, 192)
    assert body["thumbnail_bytes"] > 0 and body["thumbnail_error"] is None


def test_an_unreadable_upload_still_records_the_use(client: TestClient) -> None:
    response = client.post(
        f"{PROMPTS}/",
        data={"prompt_text": "broken"},
        files={"image": ("x.png", b"not an image", "image/png")},
    )
    assert response.status_code == 200
    assert response.json()["total_uses"] == 1
    assert "not an image" in response.json()["thumbnail_error"]


def test_record_rejects_bad_json(client: TestClient) -> None:
    rejected: list[tuple[Any, str]] = [
        ({}, "prompt_text"),
        ({"prompt_text": ""}, "prompt_text"),
        ({"prompt_text": "x", "image_path": "/etc/passwd"}, "image_path"),  # never read from the server
        ({"prompt_text": "x" * 20_001}, "prompt_text"),
        (["not", "an", "object"], "input"),
    ]
    for body, field in rejected:
        assert [p["field"] for p in problem(client.post(f"{PROMPTS}/", json=body))] == [field], body
    assert client.get(f"{PROMPTS}/stats/overview").json()["total_prompts"] == 0


def test_record_rejects_broken_json_and_other_media_types(client: TestClient) -> None:
    broken = client.post(f"{PROMPTS}/", content=b"{", headers={"content-type": "application/json"})
    assert problem(broken)[0]["field"] == "body"
    text = client.post(f"{PROMPTS}/", content=b"sunset", headers={"content-type": "text/plain"})
    assert text.status_code == 415 and text.json()["error"] == "Unsupported"


def test_record_rejects_bad_forms(client: TestClient) -> None:
    not_a_file = client.post(f"{PROMPTS}/", data={"prompt_text": "x", "image": "a string"})  # urlencoded
    assert problem(not_a_file)[0]["field"] == "image"
    wrong_name = client.post(
        f"{PROMPTS}/", data={"prompt_text": "x"}, files={"picture": ("a.png", png(), "image/png")}
    )
    assert problem(wrong_name)[0]["field"] == "picture"
    missing_text = client.post(f"{PROMPTS}/", files={"image": ("a.png", png(), "image/png")})
    assert problem(missing_text)[0]["field"] == "prompt_text"


def test_record_refuses_an_oversized_upload(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(library_routes, "MAX_UPLOAD_BYTES", 100)
    response = client.post(
        f"{PROMPTS}/", data={"prompt_text": "big"}, files={"image": ("a.png", b"x" * 101, "image/png")}
    )
    assert response.status_code == 413 and response.json()["error"] == "PayloadTooLarge"
    assert client.get(f"{PROMPTS}/stats/overview").json()["total_prompts"] == 0


# -- GET / ------------------------------------------------------------------------------------------
def test_browse_pages_with_the_cursor(client: TestClient) -> None:
    assert client.get(f"{PROMPTS}/").json() == {"items": [], "next_cursor": None}
    texts = [f"prompt number {i}" for i in range(5)]
    for text in texts:
        record(client, text)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get(f"{PROMPTS}/", params=params).json()
        seen += [item["prompt_text"] for item in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == texts[::-1]  # most recently used first


def test_browse_rejects_bad_parameters(client: TestClient) -> None:
    rejected: list[tuple[str, str | int]] = [("cursor", "garbage"), ("limit", 0), ("limit", 1001)]
    for name, value in rejected:
        detail = problem(client.get(f"{PROMPTS}/", params={name: value}))
        assert (detail[0]["field"], str(detail[0]["value"])) == (name, str(value))


# -- GET /search, /popular, /recent ----------------------------------------------------------------
def test_search_popular_and_recent(client: TestClient) -> None:
    record(client, "sunset over the sea", model="sdxl")
    record(client, "sunset over the mountains", model="flux")
    record(client, "a city at night")
    record(client, "a city at night")
    found = client.get(f"{PROMPTS}/search", params={"query": "sunset"}).json()
    assert {p["prompt_text"] for p in found} == {"sunset over the sea", "sunset over the mountains"}
    only_flux = client.get(f"{PROMPTS}/search", params={"query": "sunset", "model": "flux"}).json()
    assert [p["prompt_text"] for p in only_flux] == ["sunset over the mountains"]
    assert client.get(f"{PROMPTS}/popular", params={"limit": 1}).json()[0]["prompt_text"] == "a city at night"
    assert [p["model"] for p in client.get(f"{PROMPTS}/recent", params={"model": "sdxl"}).json()] == ["sdxl"]
    assert client.get(f"{PROMPTS}/recent").json()[0]["prompt_text"] == "a city at night"


def test_lists_reject_bad_parameters(client: TestClient) -> None:
    rejected: list[tuple[str, dict[str, Any], str]] = [
        ("search", {}, "query"),
        ("search", {"query": "   "}, "query"),  # the service's own check: words, not white space
        ("search", {"query": "x", "limit": 1001}, "limit"),
        ("search", {"query": "x", "offset": -1}, "offset"),
        ("search", {"query": "x", "offset": 2**40}, "offset"),  # beyond an INTEGER: refused, not a crash
        ("popular", {"limit": 0}, "limit"),
        ("recent", {"limit": "ten"}, "limit"),
    ]
    for path, params, field in rejected:
        assert problem(client.get(f"{PROMPTS}/{path}", params=params))[0]["field"] == field, (path, params)


# -- GET /{id}, DELETE /{id} -----------------------------------------------------------------------
def test_get_and_delete(client: TestClient) -> None:
    prompt = record(client, "keep me")
    got = client.get(f"{PROMPTS}/{prompt['id']}")
    assert got.status_code == 200 and got.json()["prompt_text"] == "keep me"
    assert "thumbnail_error" not in got.json()
    deleted = client.delete(f"{PROMPTS}/{prompt['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    gone = client.get(f"{PROMPTS}/{prompt['id']}")
    assert gone.status_code == 404
    assert gone.json() == {"detail": f"prompt {prompt['id']} not found", "error": "NotFound"}
    assert client.delete(f"{PROMPTS}/{prompt['id']}").status_code == 404


def test_ids_outside_the_id_range_are_invalid(client: TestClient) -> None:
    for bad_id in ["0", str(2**31)]:
        for response in (
            client.get(f"{PROMPTS}/{bad_id}"),
            client.get(f"{PROMPTS}/{bad_id}/thumbnail"),
            client.delete(f"{PROMPTS}/{bad_id}"),
        ):
            assert problem(response)[0]["field"] == "prompt_id", bad_id
    # Not digits: no route's path matches (ids are {prompt_id:int}), so "popular" never reaches one.
    for not_an_id in ["abc", "-3"]:
        response = client.get(f"{PROMPTS}/{not_an_id}")
        assert response.status_code == 404
        assert response.json() == {"detail": "Not Found", "error": "NotFound"}


# -- GET /{id}/thumbnail ---------------------------------------------------------------------------
def test_thumbnail_bytes_with_cache_headers(client: TestClient, storage: Storage) -> None:
    prompt = storage.library.record_prompt("with picture", image_data=png())
    response = client.get(f"{PROMPTS}/{prompt.id}/thumbnail")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/webp"
    assert response.content == storage.library.get_thumbnail(prompt.id)[0]
    assert response.content[:4] == b"RIFF" and response.content[8:12] == b"WEBP"
    etag = response.headers["etag"]
    assert etag.startswith('"') and response.headers["cache-control"] == "public, no-cache"
    again = client.get(f"{PROMPTS}/{prompt.id}/thumbnail", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    changed = client.get(f"{PROMPTS}/{prompt.id}/thumbnail", headers={"If-None-Match": '"other"'})
    assert changed.status_code == 200


def test_thumbnail_404_without_a_thumbnail_or_a_prompt(client: TestClient) -> None:
    prompt = record(client, "no picture")
    missing = client.get(f"{PROMPTS}/{prompt['id']}/thumbnail")
    assert missing.status_code == 404 and "thumbnail" in missing.json()["detail"]
    assert client.get(f"{PROMPTS}/999999/thumbnail").status_code == 404


# -- GET /stats/overview, POST /cleanup ------------------------------------------------------------
def test_stats_overview(client: TestClient, storage: Storage) -> None:
    record(client, "one", model="sdxl")
    record(client, "one")
    storage.library.record_prompt("two", image_data=png())
    stats = client.get(f"{PROMPTS}/stats/overview").json()
    assert stats["total_prompts"] == 2 and stats["total_uses"] == 3
    assert stats["prompts_with_thumbnails"] == 1 and stats["thumbnail_bytes"] > 0
    assert stats["per_model"]["sdxl"] == {"prompts": 1, "uses": 2}


def test_cleanup(client: TestClient, storage: Storage) -> None:
    record(client, "no thumbnail")
    storage.library.record_prompt("with thumbnail", image_data=png())
    too_old = client.post(f"{PROMPTS}/cleanup", json={"older_than_days": 1e300})  # no date that far back
    assert too_old.status_code == 200 and too_old.json() == {"deleted": 0}
    response = client.post(f"{PROMPTS}/cleanup", json={"without_thumbnail": True})
    assert response.status_code == 200 and response.json() == {"deleted": 1}
    assert client.get(f"{PROMPTS}/stats/overview").json()["total_prompts"] == 1


def test_cleanup_rejects(client: TestClient) -> None:
    rejected: list[tuple[dict[str, Any], str]] = [
        ({}, "cleanup"),
        ({"older_than_days": -1}, "older_than_days"),
        ({"everything": True}, "everything"),
    ]
    for body, field in rejected:
        assert problem(client.post(f"{PROMPTS}/cleanup", json=body))[0]["field"] == field, body
