"""``/api/gallery``: every route, its success and its errors."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("fastapi")  # the api extra; without it there is nothing to test

from fastapi.testclient import TestClient

from tests.api.test_library import problem

GALLERY = "/api/gallery"


def add_image(client: TestClient, filename: str, **fields: Any) -> dict[str, Any]:
    body = {"filename": filename, "prompt": "sunset over mountains", "model_id": "sdxl", **fields}
    response = client.post(f"{GALLERY}/images", json=body)
    assert response.status_code == 201, response.text
    image: dict[str, Any] = response.json()
    return image


# -- images ----------------------------------------------------------------------------------------
def test_add_and_get_an_image(client: TestClient) -> None:
    image = add_image(client, "a.png", final_score=8.2, tags=["landscape"], seed=42)
    assert (image["status"], image["is_featured"], image["tags"], image["seed"]) == (
        "pending",
        False,
        ["landscape"],
        42,
    )
    assert client.get(f"{GALLERY}/images/{image['id']}").json() == image


def test_add_image_errors(client: TestClient) -> None:
    add_image(client, "taken.png")
    taken = client.post(f"{GALLERY}/images", json={"filename": "taken.png", "prompt": "p", "model_id": "m"})
    assert taken.status_code == 409 and taken.json()["error"] == "Conflict"
    unknown_run = client.post(
        f"{GALLERY}/images",
        json={"filename": "b.png", "prompt": "p", "model_id": "m", "creation_session_id": 99},
    )
    assert unknown_run.status_code == 404 and "creation run" in unknown_run.json()["detail"]
    rejected: list[tuple[dict[str, Any], str]] = [
        ({"final_score": 11}, "final_score"),
        ({"seed": 2**40}, "seed"),  # beyond the INTEGER column: refused on both backends alike
        ({"generation_params": {"steps": "\u0000"}}, "generation_params"),
        ({"filename": ""}, "filename"),
    ]
    for changes, field in rejected:
        body = {"filename": "c.png", "prompt": "p", "model_id": "m", **changes}
        assert problem(client.post(f"{GALLERY}/images", json=body))[0]["field"] == field


def test_get_image_errors(client: TestClient) -> None:
    assert client.get(f"{GALLERY}/images/12345").status_code == 404
    assert problem(client.get(f"{GALLERY}/images/0"))[0]["field"] == "image_id"
    assert client.get(f"{GALLERY}/images/zero").status_code == 404  # no route: ids are digits


def test_curate_feature_and_tag(client: TestClient) -> None:
    image_id = add_image(client, "a.png", tags=["sky"])["id"]
    curated = client.put(f"{GALLERY}/images/{image_id}/status", json={"status": "curated"})
    assert curated.status_code == 200 and curated.json()["status"] == "curated"
    featured = client.put(f"{GALLERY}/images/{image_id}/featured", json={"featured": True})
    assert featured.json()["is_featured"] is True
    assert (
        client.put(f"{GALLERY}/images/{image_id}/featured", json={"featured": False}).json()["is_featured"]
        is False
    )
    tagged = client.post(f"{GALLERY}/images/{image_id}/tags", json={"tags": ["winter", "sky"]})
    assert tagged.json()["tags"] == ["sky", "winter"]
    replaced = client.post(f"{GALLERY}/images/{image_id}/tags", json={"tags": ["only"], "replace": True})
    assert replaced.json()["tags"] == ["only"]


def test_image_updates_404_and_422(client: TestClient) -> None:
    image_id = add_image(client, "a.png")["id"]
    cases: list[tuple[str, str, Any, str, dict[str, Any]]] = [
        ("put", "status", {"status": "great"}, "status", {"status": "rejected"}),
        ("put", "featured", {"featured": "perhaps"}, "featured", {}),
        ("post", "tags", {"tags": "one"}, "tags", {"tags": ["x"]}),
    ]
    for method, path, invalid, field, valid in cases:
        missing = client.request(method, f"{GALLERY}/images/999/{path}", json=valid)
        assert missing.json() == {"detail": "image 999 not found", "error": "NotFound"}, path
        assert missing.status_code == 404
        invalid_response = client.request(method, f"{GALLERY}/images/{image_id}/{path}", json=invalid)
        assert problem(invalid_response)[0]["field"] == field


def test_the_common_queries(client: TestClient) -> None:
    best = add_image(client, "best.png", final_score=9.1, status="curated")
    good = add_image(client, "good.png", final_score=6.5, status="curated")
    queued = add_image(client, "queued.png", final_score=9.9)

    def ids(path: str, **params: Any) -> list[int]:
        response = client.get(f"{GALLERY}/{path}", params=params)
        assert response.status_code == 200, response.text
        return [image["id"] for image in response.json()]

    assert ids("images/top") == [best["id"], good["id"]]
    assert ids("images/top", status="pending") == [queued["id"]]
    assert ids("images/uncurated") == [queued["id"]]
    assert ids("images/recent", min_score=7) == [best["id"]]
    assert ids("images/recent", min_score=6, limit=1) == [good["id"]]
    tiers = client.get(f"{GALLERY}/quality").json()
    assert [(t["quality_tier"], t["count"]) for t in tiers] == [("Excellent", 1), ("Good", 1)]


def test_the_common_queries_reject_bad_parameters(client: TestClient) -> None:
    rejected: list[tuple[str, dict[str, Any], str]] = [
        ("images/top", {"limit": 0}, "limit"),
        ("images/top", {"status": "best"}, "status"),
        ("images/uncurated", {"limit": 10_001}, "limit"),
        ("images/recent", {"min_score": 11}, "min_score"),
    ]
    for path, params, field in rejected:
        assert problem(client.get(f"{GALLERY}/{path}", params=params))[0]["field"] == field, (path, params)


# -- training runs ---------------------------------------------------------------------------------
def test_training_runs(client: TestClient) -> None:
    start = {
        "name": "landscape_v1",
        "model_path": "lora/v1.safetensors",
        "config": {"dim": 64},
        "dataset_size": 75,
    }
    run = client.post(f"{GALLERY}/training-runs", json=start)
    assert run.status_code == 201 and run.json()["status"] == "running"
    run_id = run.json()["id"]
    done = client.post(
        f"{GALLERY}/training-runs/{run_id}/complete",
        json={"final_loss": 0.0234, "training_time_seconds": 7200, "metrics": {"fid": 28.5}},
    )
    assert done.status_code == 200 and done.json()["status"] == "completed"
    again = client.post(f"{GALLERY}/training-runs/{run_id}/complete", json={})
    assert again.status_code == 409 and again.json()["error"] == "Conflict"
    other = client.post(f"{GALLERY}/training-runs", json={"name": "v2", "model_path": "lora/v2"}).json()
    failed = client.post(f"{GALLERY}/training-runs/{other['id']}/fail", json={"reason": "out of memory"})
    assert failed.status_code == 200 and failed.json()["metrics"] == {"error": "out of memory"}
    assert client.post(f"{GALLERY}/training-runs/{other['id']}/fail", json={"reason": "x"}).status_code == 409
    listed = client.get(f"{GALLERY}/training-runs").json()
    assert [(r["name"], r["status"], r["training_hours"]) for r in listed] == [
        ("v2", "failed", None),
        ("landscape_v1", "completed", 2.0),
    ]


def test_training_run_errors(client: TestClient) -> None:
    assert (
        problem(client.post(f"{GALLERY}/training-runs", json={"name": "", "model_path": "m"}))[0]["field"]
        == "name"
    )
    assert client.post(f"{GALLERY}/training-runs/7/complete", json={}).status_code == 404
    assert client.post(f"{GALLERY}/training-runs/7/fail", json={"reason": "x"}).status_code == 404
    run_id = client.post(f"{GALLERY}/training-runs", json={"name": "n", "model_path": "m"}).json()["id"]
    bad_loss = client.post(f"{GALLERY}/training-runs/{run_id}/complete", json={"final_loss": -1})
    assert problem(bad_loss)[0]["field"] == "final_loss"
    assert problem(client.post(f"{GALLERY}/training-runs/{run_id}/fail", json={}))[0]["field"] == "reason"


# -- creation runs ---------------------------------------------------------------------------------
def test_creation_runs(client: TestClient) -> None:
    run = client.post(f"{GALLERY}/creation-runs", json={"theme": "landscapes"})
    assert run.status_code == 201 and run.json()["images_created"] == 0
    run_id = run.json()["id"]
    add_image(client, "a.png", final_score=8.0, creation_session_id=run_id, status="curated")
    add_image(client, "b.png", final_score=6.0, creation_session_id=run_id)
    done = client.post(f"{GALLERY}/creation-runs/{run_id}/complete")
    assert done.status_code == 200
    assert (done.json()["images_created"], done.json()["images_kept"], done.json()["avg_score"]) == (
        2,
        1,
        7.0,
    )
    assert client.get(f"{GALLERY}/creation-runs/{run_id}").json() == done.json()
    again = client.post(f"{GALLERY}/creation-runs/{run_id}/complete")
    assert again.status_code == 409
    daily = client.get(f"{GALLERY}/creation-runs/daily").json()
    assert [(d["sessions"], d["total_created"], d["total_kept"]) for d in daily] == [(1, 2, 1)]


def test_creation_run_errors(client: TestClient) -> None:
    assert client.get(f"{GALLERY}/creation-runs/5").status_code == 404
    assert client.post(f"{GALLERY}/creation-runs/5/complete").status_code == 404
    assert problem(client.get(f"{GALLERY}/creation-runs/0"))[0]["field"] == "run_id"
    assert problem(client.post(f"{GALLERY}/creation-runs/{2**31}/complete"))[0]["field"] == "run_id"
    assert client.post(f"{GALLERY}/creation-runs/x/complete").status_code == 404
    assert problem(client.post(f"{GALLERY}/creation-runs", json={"theme": 3}))[0]["field"] == "theme"


def test_scores_are_patched_and_an_image_deleted(client: TestClient) -> None:
    image = add_image(client, "p.png", final_score=3.0)
    patched = client.patch(f"{GALLERY}/images/{image['id']}/scores", json={"final_score": 9.5})
    assert patched.status_code == 200 and patched.json()["final_score"] == 9.5
    assert client.patch(f"{GALLERY}/images/{image['id']}/scores", json={"clip_score": 2}).status_code == 422
    assert client.delete(f"{GALLERY}/images/{image['id']}").status_code == 204
    assert client.get(f"{GALLERY}/images/{image['id']}").status_code == 404
    assert client.delete(f"{GALLERY}/images/{image['id']}").status_code == 404
