"""The library and gallery services and the unit of work's ORM Session are one view of the data (issue 12).

As with sessions (test_session_coherence.py): an application holding a ``LibraryPrompt``,
``GeneratedImage``, ``TrainingRun`` or ``CreationRun`` in a unit of work sees what a service call in the
same unit of work wrote, deleted objects leave the Session, and pending ORM objects are seen by the
service's reads.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from edi_storage import Storage
from edi_storage.models import CreationRun, GeneratedImage, LibraryPrompt, TrainingRun
from edi_storage.models.library import prompt_hash

TEXT = "a lighthouse at dusk, cobalt sky"


def _gone(session: Session, obj: object) -> bool:
    state = inspect(obj)
    return obj not in session or state.deleted or state.detached


def _image(filename: str, **fields: Any) -> dict[str, Any]:
    return {"filename": filename, "prompt": TEXT, "model_id": "sdxl", **fields}


# -- the prompt library ---------------------------------------------------------------------------
def test_a_held_library_prompt_takes_the_use_and_model_record_prompt_stores(storage: Storage) -> None:
    first = storage.library.record_prompt(TEXT, model="sdxl")
    with storage.unit_of_work() as uow:
        held = uow.session.get(LibraryPrompt, first.id)
        assert held is not None and (held.total_uses, held.model) == (1, "sdxl")
        again = uow.library.record_prompt(TEXT, model="flux")
        assert again.id == first.id
        assert (held.total_uses, held.model) == (2, "flux")
    assert storage.library.get(first.id).total_uses == 2


def test_a_pending_library_prompt_is_seen_by_the_library_reads(storage: Storage) -> None:
    with storage.unit_of_work() as uow:
        uow.session.add(LibraryPrompt(prompt_text=TEXT, prompt_hash=prompt_hash(TEXT), model="sdxl"))
        assert uow.library.stats().total_prompts == 1
        assert [p.prompt_text for p in uow.library.popular()] == [TEXT]
        # ... and record_prompt counts a use of it rather than tripping over its unique hash.
        assert uow.library.record_prompt(TEXT).total_uses == 2


def test_a_held_library_prompt_leaves_the_session_when_deleted(storage: Storage) -> None:
    kept = storage.library.record_prompt("keep this prompt")
    doomed = storage.library.record_prompt(TEXT)
    with storage.unit_of_work() as uow:
        held = uow.session.get(LibraryPrompt, doomed.id)
        other = uow.session.get(LibraryPrompt, kept.id)
        uow.library.delete(doomed.id)
        assert held is not None and _gone(uow.session, held)
        assert uow.session.get(LibraryPrompt, doomed.id) is None
        assert other is not None and not _gone(uow.session, other)


def test_prompts_removed_by_cleanup_leave_the_session(storage: Storage) -> None:
    with_thumbnail = storage.library.record_prompt("has a thumbnail")
    without = storage.library.record_prompt(TEXT)
    with storage.unit_of_work() as uow:
        uow.session.get(LibraryPrompt, with_thumbnail.id).thumbnail_data = b"webp"  # type: ignore[union-attr]
        held = uow.session.get(LibraryPrompt, without.id)
        assert uow.library.cleanup(without_thumbnail=True) == 1
        assert held is not None and _gone(uow.session, held)
        assert uow.session.get(LibraryPrompt, with_thumbnail.id) is not None


# -- the gallery ----------------------------------------------------------------------------------
def test_a_held_image_takes_curation_featuring_and_tags(storage: Storage) -> None:
    image = storage.gallery.add_image(_image("a.png", final_score=8.5, tags=["sky"]))
    with storage.unit_of_work() as uow:
        held = uow.session.get(GeneratedImage, image.id)
        assert held is not None and held.status == "pending"
        uow.gallery.curate(image.id, "curated")
        uow.gallery.feature(image.id)
        uow.gallery.tag(image.id, ["dusk"])
        assert (held.status, held.is_featured, held.tags) == ("curated", True, ["sky", "dusk"])
    assert storage.gallery.get_image(image.id).tags == ["sky", "dusk"]


def test_a_pending_image_change_is_seen_by_the_gallery_reads(storage: Storage) -> None:
    image = storage.gallery.add_image(_image("a.png", final_score=9.0))
    with storage.unit_of_work() as uow:
        held = uow.session.get(GeneratedImage, image.id)
        assert held is not None
        held.status = "curated"  # not flushed yet
        assert [i.id for i in uow.gallery.top()] == [image.id]
        assert uow.gallery.uncurated() == []


def test_a_held_creation_run_follows_its_images(storage: Storage) -> None:
    run = storage.gallery.start_creation("lighthouses")
    with storage.unit_of_work() as uow:
        held = uow.session.get(CreationRun, run.id)
        assert held is not None and (held.images_created, held.images_kept) == (0, 0)
        first = uow.gallery.add_image(_image("a.png", final_score=6.0, creation_session_id=run.id))
        uow.gallery.add_image(_image("b.png", final_score=8.0, creation_session_id=run.id))
        assert (held.images_created, held.images_kept, held.avg_score) == (2, 0, 7.0)
        uow.gallery.curate(first.id, "curated")
        assert held.images_kept == 1
        uow.gallery.complete_creation(run.id)
        assert held.completed_at is not None
    assert storage.gallery.get_creation(run.id).images_kept == 1


def test_a_held_training_run_takes_its_result(storage: Storage) -> None:
    run = storage.gallery.start_training("lora-1", "/models/lora-1")
    with storage.unit_of_work() as uow:
        held = uow.session.get(TrainingRun, run.id)
        assert held is not None and held.status == "running"
        uow.gallery.complete_training(run.id, final_loss=0.12, training_time_seconds=60.0)
        assert (held.status, held.final_loss) == ("completed", 0.12)
        assert held.completed_at is not None
