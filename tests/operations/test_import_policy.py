"""An import never overwrites silently: conflicts are refused unless --replace or --merge says what to
do, re-importing a file changes nothing at all, and a file cut short or edited is refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from edi_storage import Conflict, InvalidInput, Storage
from edi_storage.models import GeneratedImage, LibraryPrompt, Prompt, TrainingRun
from edi_storage.ops.transfer import ImportMode, export_all, import_all
from edi_storage.testing.demo import populate

from ..test_cli import invoke


def exported(storage: Storage, path: Path) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        export_all(storage, handle)
    return path


def state(storage: Storage) -> dict[str, Any]:
    """Everything an import could change, ids of child rows included."""
    with storage.unit_of_work(readonly=True) as uow:
        s = uow.session
        return {
            "sessions": {
                sid: (detail.model_dump(mode="json") if detail else None)
                for sid in storage.sessions.session_ids(limit=10_000)
                for detail in [storage.sessions.load_session(sid)]
            },
            "prompt_ids": sorted(s.scalars(select(Prompt.id))),
            "library": sorted(
                s.execute(select(LibraryPrompt.id, LibraryPrompt.prompt_hash, LibraryPrompt.total_uses)).all()
            ),
            "images": sorted(s.execute(select(GeneratedImage.id, GeneratedImage.filename)).all()),
        }


@pytest.fixture
def source_dump(tmp_path: Path) -> Path:
    with Storage(f"sqlite:///{tmp_path / 'a.db'}") as a:
        populate(a, sessions=12, seed_value=5)
        return exported(a, tmp_path / "a.jsonl")


@pytest.fixture
def holding_the_same_ids(storage_factory: Callable[..., Storage]) -> Storage:
    """Database B: the same seed gives the same ids, but its rows were written at other times."""
    b = storage_factory()
    populate(b, sessions=12, seed_value=5)
    return b


def test_conflicts_are_refused_by_default_and_nothing_is_written(
    source_dump: Path, holding_the_same_ids: Storage
) -> None:
    before = state(holding_the_same_ids)
    with pytest.raises(
        Conflict, match=r"nothing was imported: --replace replaces them, --merge keeps both"
    ) as caught:
        import_all(holding_the_same_ids, source_dump)
    assert "training run 1" in str(caught.value) and "image 3" in str(caught.value)
    assert state(holding_the_same_ids) == before


def test_replace_replaces_the_conflicting_records(source_dump: Path, holding_the_same_ids: Storage) -> None:
    library_ids = {h: i for i, h, _ in state(holding_the_same_ids)["library"]}
    report = import_all(holding_the_same_ids, source_dump, mode=ImportMode.REPLACE)
    assert report.outcomes["session"]["replaced"] == 12 and report.outcomes["session"]["created"] == 0
    after = state(holding_the_same_ids)
    assert len(after["sessions"]) == 12
    assert {h: i for i, h, _ in after["library"]} == library_ids, "a replaced library prompt keeps its id"


def test_merge_keeps_both_and_adds_library_uses(source_dump: Path, holding_the_same_ids: Storage) -> None:
    before = state(holding_the_same_ids)
    uses_in_file = {
        json.loads(line)["data"]["prompt_hash"]: json.loads(line)["data"]["total_uses"]
        for line in source_dump.read_text().splitlines()
        if json.loads(line)["kind"] == "library_prompt"
    }
    report = import_all(holding_the_same_ids, source_dump, mode="merge")
    after = state(holding_the_same_ids)
    assert report.outcomes["session"]["merged"] == 12
    assert len(after["sessions"]) == 24 and set(before["sessions"]) <= set(after["sessions"])
    for prompt_id, prompt_hash, uses in after["library"]:
        old = next(u for i, h, u in before["library"] if h == prompt_hash)
        assert uses == old + uses_in_file[prompt_hash]
        assert (prompt_id, prompt_hash) in {(i, h) for i, h, _ in before["library"]}, "B's ids are kept"


def test_reimporting_the_same_file_changes_nothing_not_even_child_ids(
    source_dump: Path, storage_factory: Callable[..., Storage]
) -> None:
    target = storage_factory()
    import_all(target, source_dump)
    before = state(target)
    report = import_all(target, source_dump)
    assert state(target) == before
    assert all(counts["unchanged"] == sum(counts.values()) for counts in report.outcomes.values())


def test_a_file_cut_short_or_edited_is_refused(source_dump: Path, tmp_path: Path, storage: Storage) -> None:
    lines = source_dump.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines[: len(lines) * 2 // 3]), encoding="utf-8")  # at a line boundary
    with pytest.raises(InvalidInput, match="no trailer"):
        import_all(storage, cut)
    edited = tmp_path / "edited.jsonl"
    edited.write_text("".join(lines).replace('"completed"', '"failed"', 1), encoding="utf-8")
    with pytest.raises(InvalidInput, match="does not match its trailer"):
        import_all(storage, edited)
    shortened = tmp_path / "shortened.jsonl"
    shortened.write_text("".join(lines[:3] + lines[4:]), encoding="utf-8")
    with pytest.raises(InvalidInput, match="does not match its trailer"):
        import_all(storage, shortened)
    assert storage.sessions.get_session_count() == 0
    with storage.unit_of_work(readonly=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(LibraryPrompt)) == 0
    report = import_all(storage, cut, verify=False)  # an older release's file, accepted on request
    assert report.total("session") >= 0


def test_the_cli_refuses_then_replaces_and_reports_each_kind(tmp_path: Path, source_dump: Path) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    with Storage(url) as b:
        populate(b, sessions=12, seed_value=5)
    refused = invoke("import", str(source_dump), url=url)
    assert refused.exit_code == 1 and "--replace" in refused.stderr
    replaced = invoke("import", "--replace", str(source_dump), url=url)
    assert replaced.exit_code == 0, replaced.output
    assert "12 sessions (12 replaced)" in " ".join(replaced.stderr.split())
    both = invoke("import", "--replace", "--merge", str(source_dump), url=url)
    assert both.exit_code == 2


def _runs_and_images(storage: Storage) -> tuple[list[tuple[int, str]], list[tuple[str, int | None]]]:
    with storage.unit_of_work(readonly=True) as uow:
        s = uow.session
        runs = sorted((r.id, r.name) for r in s.execute(select(TrainingRun.id, TrainingRun.name)))
        images = sorted(
            (r.filename, r.training_session_id)
            for r in s.execute(select(GeneratedImage.filename, GeneratedImage.training_session_id))
        )
    return runs, images


def test_merge_gives_runs_fresh_ids_that_no_later_row_of_the_file_overwrites(
    storage_factory: Callable[..., Storage], tmp_path: Path
) -> None:
    """A's runs 1 "Y" and 2 "Z" into B holding run 1 "X": Y is kept under an id above every id of the
    file and of B, Z keeps its own, and each image follows its run."""
    with Storage(f"sqlite:///{tmp_path / 'a.db'}") as a:
        y = a.gallery.start_training("Y", "y.safetensors")
        z = a.gallery.start_training("Z", "z.safetensors")
        a.gallery.add_image(
            {"filename": "a1.png", "prompt": "p", "model_id": "m", "training_session_id": y.id}
        )
        a.gallery.add_image(
            {"filename": "a2.png", "prompt": "p", "model_id": "m", "training_session_id": z.id}
        )
        dump = exported(a, tmp_path / "a.jsonl")
    b = storage_factory()
    b.gallery.start_training("X", "x.safetensors")
    import_all(b, dump, mode="merge")
    runs, images = _runs_and_images(b)
    assert runs == [(1, "X"), (2, "Z"), (3, "Y")]
    assert images == [("a1.png", 3), ("a2.png", 2)]


def test_library_prompts_are_known_by_their_text_not_their_id(
    storage_factory: Callable[..., Storage], tmp_path: Path
) -> None:
    """Two databases both number their prompts from 1: a prompt new to B is created whatever its id."""
    with Storage(f"sqlite:///{tmp_path / 'a.db'}") as a:
        a.library.record_prompt("a sunset over the sea")
        dump = exported(a, tmp_path / "a.jsonl")
    b = storage_factory()
    b.library.record_prompt("a cat on a mat")
    report = import_all(b, dump)
    assert report.outcomes["library_prompt"]["created"] == 1
    with b.unit_of_work(readonly=True) as uow:
        texts = sorted(uow.session.scalars(select(LibraryPrompt.prompt_text)))
    assert texts == ["a cat on a mat", "a sunset over the sea"]


def test_an_image_is_its_file_whatever_its_id(
    storage_factory: Callable[..., Storage], tmp_path: Path
) -> None:
    with Storage(f"sqlite:///{tmp_path / 'a.db'}") as a:
        for name in ("x1.png", "x2.png", "shared.png"):
            a.gallery.add_image({"filename": name, "prompt": "from a", "model_id": "m"})
        dump = exported(a, tmp_path / "a.jsonl")
    b = storage_factory()
    b.gallery.add_image({"filename": "shared.png", "prompt": "from b", "model_id": "m"})
    with pytest.raises(Conflict, match="image"):
        import_all(b, dump)
    report = import_all(b, dump, mode="merge")
    # x1.png shares B's id 1 (another file): kept under a fresh id; x2.png is new; shared.png is B's file.
    assert report.outcomes["image"] == {"created": 1, "replaced": 0, "merged": 2, "unchanged": 0}
    with b.unit_of_work(readonly=True) as uow:
        rows = dict(uow.session.execute(select(GeneratedImage.filename, GeneratedImage.prompt)).all())
    assert rows == {"shared.png": "from b", "x1.png": "from a", "x2.png": "from a"}


def test_merging_the_same_file_twice_adds_no_second_copy_of_a_session(
    source_dump: Path, holding_the_same_ids: Storage
) -> None:
    import_all(holding_the_same_ids, source_dump, mode="merge")
    sessions_after_one = holding_the_same_ids.sessions.get_session_count()
    again = import_all(holding_the_same_ids, source_dump, mode="merge")
    assert holding_the_same_ids.sessions.get_session_count() == sessions_after_one == 24
    assert again.outcomes["session"]["unchanged"] == 12
