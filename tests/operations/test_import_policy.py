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
from edi_storage.models import GeneratedImage, LibraryPrompt, Prompt
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
