"""The gallery: each of the reference's common queries checked against an answer computed by hand,
curation and run life cycles, creation counts that follow their images, and indexed query plans."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text, update

from edi_storage import Conflict, InvalidInput, NotFound, Storage
from edi_storage.models import GeneratedImage
from edi_storage.models.base import table_of

from ..plans import plans_of

# filename, final score, status, hours after the start
IMAGES: list[tuple[str, float | None, str, int]] = [
    ("a.png", 9.1, "curated", 0),
    ("b.png", 8.0, "curated", 1),
    ("c.png", 7.2, "curated", 2),
    ("d.png", 6.0, "curated", 3),
    ("e.png", 5.5, "curated", 4),
    ("f.png", 3.9, "curated", 5),
    ("g.png", 9.9, "rejected", 6),
    ("h.png", None, "pending", 7),
    ("i.png", 4.4, "pending", 8),
    ("j.png", None, "curated", 9),
]
START = datetime(2026, 1, 8, 9, tzinfo=UTC)


@pytest.fixture
def gallery(storage: Storage) -> Storage:
    for filename, score, status, hours in IMAGES:
        storage.gallery.add_image(
            {"filename": filename, "prompt": f"prompt of {filename}", "model_id": "sdxl", "final_score": score,
             "status": status}
        )  # fmt: skip
        # created_at is set by the service and never changes through it; set it here to make order known
        with storage.engine.begin() as conn:
            conn.execute(
                update(table_of(GeneratedImage))
                .where(table_of(GeneratedImage).c.filename == filename)
                .values(created_at=START + timedelta(hours=hours))
            )
    return storage


def names(images: list[Any]) -> list[str]:
    return [i.filename for i in images]


def test_recent_high_quality(gallery: Storage) -> None:
    # curated and >= 7.0: a (h0), b (h1), c (h2); newest first
    assert names(gallery.gallery.recent_high_quality()) == ["c.png", "b.png", "a.png"]
    assert names(gallery.gallery.recent_high_quality(min_score=8.0, limit=1)) == ["b.png"]


def test_uncurated_oldest_first(gallery: Storage) -> None:
    assert names(gallery.gallery.uncurated()) == ["h.png", "i.png"]


def test_top_by_score(gallery: Storage) -> None:
    assert names(gallery.gallery.top(3)) == ["a.png", "b.png", "c.png"]
    assert names(gallery.gallery.top(5, status="rejected")) == ["g.png"]


def test_quality_distribution(gallery: Storage) -> None:
    # curated: a 9.1, b 8.0 -> Excellent; c 7.2, d 6.0 -> Good; e 5.5 -> Fair; f 3.9, j None -> Poor
    tiers = {t.quality_tier: (t.count, t.avg_score) for t in gallery.gallery.quality_distribution()}
    assert tiers == {
        "Excellent": (2, round((9.1 + 8.0) / 2, 3)),
        "Good": (2, round((7.2 + 6.0) / 2, 3)),
        "Fair": (1, 5.5),
        "Poor": (2, 3.9),
    }
    assert [t.quality_tier for t in gallery.gallery.quality_distribution()] == [
        "Excellent",
        "Good",
        "Fair",
        "Poor",
    ]


def test_curate_feature_tag(gallery: Storage) -> None:
    pending = gallery.gallery.uncurated()[0]
    curated = gallery.gallery.curate(pending.id, "curated")
    assert curated.status == "curated" and curated.updated_at > pending.updated_at
    assert curated.created_at == pending.created_at, "created_at never changes"
    assert gallery.gallery.feature(pending.id).is_featured
    assert not gallery.gallery.feature(pending.id, featured=False).is_featured
    assert gallery.gallery.tag(pending.id, ["sunset", "winter"]).tags == ["sunset", "winter"]
    assert gallery.gallery.tag(pending.id, ["winter", "snow"]).tags == ["sunset", "winter", "snow"]
    assert gallery.gallery.tag(pending.id, ["only"], replace=True).tags == ["only"]
    with pytest.raises(InvalidInput, match="status"):
        gallery.gallery.curate(pending.id, "approved")
    with pytest.raises(NotFound):
        gallery.gallery.curate(10_000, "curated")


def test_filenames_are_unique_with_a_clear_conflict(gallery: Storage) -> None:
    with pytest.raises(Conflict, match=r"'a\.png' is already in the gallery"):
        gallery.gallery.add_image({"filename": "a.png", "prompt": "x", "model_id": "m"})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"final_score": 10.5}, "final_score"),
        ({"clip_score": 1.5}, "clip_score"),
        ({"status": "approved"}, "status"),
        ({"filename": ""}, "filename"),
        ({"model_id": ""}, "model_id"),
    ],
)
def test_bad_images_name_the_field(storage: Storage, change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        storage.gallery.add_image({"filename": "x.png", "prompt": "p", "model_id": "m", **change})
    assert caught.value.errors[0].field == field


def test_training_run_life_cycle_and_statistics(storage: Storage) -> None:
    first = storage.gallery.start_training("landscape_v1", "models/lora/l1.safetensors", {"dim": 64}, 75)
    second = storage.gallery.start_training("portrait_v1", "models/lora/p1.safetensors", dataset_size=40)
    assert first.status == "running" and first.completed_at is None
    done = storage.gallery.complete_training(
        first.id, final_loss=0.0234, training_time_seconds=7200, metrics={"fid": 28.5}
    )
    assert (done.status, done.final_loss, done.metrics) == ("completed", 0.0234, {"fid": 28.5})
    assert done.completed_at is not None
    failed = storage.gallery.fail_training(second.id, "out of memory")
    assert failed.status == "failed" and failed.metrics == {"error": "out of memory"}
    with pytest.raises(Conflict, match="already completed"):
        storage.gallery.complete_training(first.id)
    stats = storage.gallery.training_statistics()
    assert [(s.name, s.training_hours, s.status) for s in stats] == [
        ("portrait_v1", None, "failed"),
        ("landscape_v1", 2.0, "completed"),
    ]


def test_creation_run_counts_follow_its_images(storage: Storage) -> None:
    run = storage.gallery.start_creation("landscapes")
    lora = storage.gallery.start_training("l", "m.safetensors")
    made = [
        storage.gallery.add_image({"filename": f"{n}.png", "prompt": "p", "model_id": "sdxl", "final_score": score,
                                   "creation_session_id": run.id, "training_session_id": lora.id})
        for n, score in [("x", 8.0), ("y", 6.0), ("z", 4.0)]
    ]  # fmt: skip
    assert (
        storage.gallery.get_creation(run.id).images_created,
        storage.gallery.get_creation(run.id).images_kept,
    ) == (3, 0)
    storage.gallery.curate(made[0].id, "curated")
    storage.gallery.curate(made[1].id, "curated")
    storage.gallery.curate(made[1].id, "rejected")
    completed = storage.gallery.complete_creation(run.id)
    assert (completed.images_created, completed.images_kept, completed.avg_score) == (3, 1, 6.0)
    assert completed.completed_at is not None
    with pytest.raises(Conflict):
        storage.gallery.complete_creation(run.id)
    with pytest.raises(NotFound, match="creation run"):
        storage.gallery.add_image(
            {"filename": "w.png", "prompt": "p", "model_id": "m", "creation_session_id": 999}
        )


def test_deleting_a_run_keeps_its_images(storage: Storage) -> None:
    run = storage.gallery.start_creation("t")
    image = storage.gallery.add_image(
        {"filename": "k.png", "prompt": "p", "model_id": "m", "creation_session_id": run.id}
    )
    with storage.engine.begin() as conn:
        conn.execute(text("DELETE FROM creation_sessions WHERE id = :id"), {"id": run.id})
    kept = storage.gallery.get_image(image.id)
    assert kept.creation_session_id is None


def test_daily_creation_statistics(storage: Storage) -> None:
    days = [
        datetime(2026, 1, 8, 9, tzinfo=UTC),
        datetime(2026, 1, 8, 23, 30, tzinfo=UTC),
        datetime(2026, 1, 9, 0, 15, tzinfo=UTC),
    ]
    for i, started in enumerate(days):
        run = storage.gallery.start_creation(f"theme {i}")
        with storage.engine.begin() as conn:
            conn.execute(
                text("UPDATE creation_sessions SET started_at = :s, images_created = :c, images_kept = :k, avg_score = :a WHERE id = :id"),
                {"s": started.replace(tzinfo=None) if storage.engine.dialect.name == "sqlite" else started,
                 "c": 5 + i, "k": 2, "a": 6.0 + i, "id": run.id},
            )  # fmt: skip
    stats = storage.gallery.daily_creation_statistics()
    assert [(d.date, d.sessions, d.total_created, d.total_kept, d.avg_quality) for d in stats] == [
        (date(2026, 1, 9), 1, 7, 2, 8.0),
        (date(2026, 1, 8), 2, 11, 4, 6.5),
    ]


@pytest.mark.parametrize(
    ("method", "index"),
    [
        # either composite serves it; SQLite picks by its statistics
        ("recent_high_quality", "ix_generated_images_status_"),
        ("uncurated", "ix_generated_images_status_created_at"),
        ("top", "ix_generated_images_status_final_score"),
        ("quality_distribution", "ix_generated_images_status"),
        ("training_statistics", "ix_training_sessions_started_at"),
    ],
)
def test_gallery_queries_use_the_indexes(sqlite_storage: Storage, method: str, index: str) -> None:
    plans = plans_of(sqlite_storage, getattr(sqlite_storage.gallery, method))
    assert any(index in plan for plan in plans), plans


def test_orm_factory_images_appear_in_the_queries(storage: Storage) -> None:
    from edi_storage.testing import GeneratedImageFactory, create

    made_id = create(storage, GeneratedImageFactory, status="pending").id
    assert [i.id for i in storage.gallery.uncurated()] == [made_id]


def test_queries_match_answers_computed_in_python_on_factory_data(storage: Storage) -> None:
    """Forty factory images with random scores and statuses: every query equals the same question
    answered in plain Python over the inputs."""
    import random

    from edi_storage.testing import ImageCreateFactory

    rng = random.Random(5)
    made = [
        storage.gallery.add_image(
            ImageCreateFactory.build(status=rng.choice(["pending", "curated", "rejected"]))
        )
        for _ in range(40)
    ]
    curated = [i for i in made if i.status == "curated"]
    expected_top = sorted(
        (i for i in curated if i.final_score is not None), key=lambda i: (-(i.final_score or 0), -i.id)
    )
    assert [i.id for i in storage.gallery.top(5)] == [i.id for i in expected_top[:5]]
    expected_queue = sorted((i for i in made if i.status == "pending"), key=lambda i: (i.created_at, i.id))
    assert [i.id for i in storage.gallery.uncurated()] == [i.id for i in expected_queue]
    high = sorted(
        (i for i in curated if (i.final_score or 0) >= 7), key=lambda i: (i.created_at, i.id), reverse=True
    )
    assert [i.id for i in storage.gallery.recent_high_quality(limit=100)] == [i.id for i in high]

    def tier(score: float | None) -> str:
        if score is None or score < 4:
            return "Poor"
        return "Excellent" if score >= 8 else "Good" if score >= 6 else "Fair"

    by_tier: dict[str, list[float]] = {}
    for i in curated:
        by_tier.setdefault(tier(i.final_score), []).append(i.final_score or 0)
    got = {t.quality_tier: (t.count, t.avg_score) for t in storage.gallery.quality_distribution()}
    assert {k: n for k, (n, _) in got.items()} == {k: len(v) for k, v in by_tier.items()}
    for name, values in by_tier.items():  # the service rounds to 3 decimals; summation order may differ
        assert abs(got[name][1] - sum(values) / len(values)) <= 0.0006, name


# -- scores after adding, deleting -----------------------------------------------------------------
def test_scores_are_updated_after_adding_and_the_run_follows(storage: Storage) -> None:
    run = storage.gallery.start_creation("dusk")
    image = storage.gallery.add_image(
        {
            "filename": "s.png",
            "prompt": "p",
            "model_id": "m",
            "final_score": 4.0,
            "creation_session_id": run.id,
        }
    )
    updated = storage.gallery.update_scores(image.id, {"final_score": 8.5, "clip_score": 0.31})
    assert (updated.final_score, updated.clip_score, updated.aesthetic_score) == (8.5, 0.31, None)
    assert storage.gallery.get_creation(run.id).avg_score == 8.5
    with pytest.raises(InvalidInput, match="final_score"):
        storage.gallery.update_scores(image.id, {"final_score": 11})
    with pytest.raises(InvalidInput, match="at least one score"):
        storage.gallery.update_scores(image.id, {})
    with pytest.raises(NotFound):
        storage.gallery.update_scores(999, {"final_score": 1})
    assert storage.gallery.get_image(image.id).final_score == 8.5


def test_deleting_an_image_deletes_its_file_only_when_asked_and_committed(
    storage: Storage, tmp_path: Any
) -> None:
    run = storage.gallery.start_creation("dusk")
    for name in ("keep.png", "go.png", "later.png"):
        (tmp_path / name).write_bytes(b"png")
    ids = {
        name: storage.gallery.add_image(
            {"filename": name, "prompt": "p", "model_id": "m", "creation_session_id": run.id}
        ).id
        for name in ("keep.png", "go.png", "later.png", "nofile.png", "../out.png")
    }
    assert storage.gallery.delete_image(ids["keep.png"]).file_deleted is None
    assert (tmp_path / "keep.png").exists()
    assert (
        storage.gallery.delete_image(ids["go.png"], gallery_dir=tmp_path).file_deleted == tmp_path / "go.png"
    )
    assert not (tmp_path / "go.png").exists()
    assert storage.gallery.delete_image(ids["nofile.png"], gallery_dir=tmp_path).file_missing
    with pytest.raises(InvalidInput, match="leads out of"):
        storage.gallery.delete_image(ids["../out.png"], gallery_dir=tmp_path)
    assert storage.gallery.get_image(ids["../out.png"]).filename == "../out.png"  # refused whole
    with pytest.raises(RuntimeError), storage.unit_of_work() as uow:
        assert uow.gallery.delete_image(ids["later.png"], gallery_dir=tmp_path).file_pending is not None
        raise RuntimeError("the unit of work rolls back")
    assert (tmp_path / "later.png").exists() and storage.gallery.get_image(ids["later.png"])
    with storage.unit_of_work() as uow:
        uow.gallery.delete_image(ids["later.png"], gallery_dir=tmp_path)
        assert (tmp_path / "later.png").exists()  # not before the commit
    assert not (tmp_path / "later.png").exists()
    assert storage.gallery.get_creation(run.id).images_created == 1
    with pytest.raises(NotFound):
        storage.gallery.delete_image(ids["go.png"])


def test_a_rolled_back_savepoint_keeps_the_pending_file_deletion(storage: Storage, tmp_path: Any) -> None:
    (tmp_path / "b.png").write_bytes(b"png")
    image_id = storage.gallery.add_image({"filename": "b.png", "prompt": "p", "model_id": "m"}).id
    with storage.unit_of_work() as uow:
        uow.gallery.delete_image(image_id, gallery_dir=tmp_path)
        with pytest.raises(RuntimeError), uow.session.begin_nested():
            raise RuntimeError("an unrelated savepoint rolls back")
    assert not (tmp_path / "b.png").exists()  # the unit of work committed the deletion: the file went


@pytest.mark.parametrize("filename", [".", "sub", "sub/"])
def test_a_filename_naming_the_folder_or_a_subfolder_is_refused_whole(
    storage: Storage, tmp_path: Any, filename: str
) -> None:
    (tmp_path / "sub").mkdir()
    image_id = storage.gallery.add_image({"filename": filename, "prompt": "p", "model_id": "m"}).id
    with pytest.raises(InvalidInput, match="filename"):
        storage.gallery.delete_image(image_id, gallery_dir=tmp_path)
    assert storage.gallery.get_image(image_id).filename == filename


@pytest.mark.parametrize("image_id", [0, 2**31, 2**40])
def test_image_ids_are_bounded_alike_on_both_backends(storage: Storage, image_id: int) -> None:
    with pytest.raises(InvalidInput, match="id"):
        storage.gallery.update_scores(image_id, {"final_score": 1.0})
