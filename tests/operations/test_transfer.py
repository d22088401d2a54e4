"""Everything moves between databases as JSON Lines: export, import elsewhere (PostgreSQL when
configured), export again, and the two exports hold the same records."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edi_storage import InvalidInput, Storage
from edi_storage.ops.transfer import export_all, import_all
from edi_storage.testing.demo import populate


def records(storage: Storage) -> list[tuple[str, Any]]:
    out = io.StringIO()
    export_all(storage, out)
    return [
        (r["kind"], r["data"]) for r in map(json.loads, out.getvalue().splitlines()) if r["kind"] != "trailer"
    ]


def normalised(items: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    """Records compared as data: JSON key order (JSONB sorts keys) and float text aside."""
    return sorted((kind, json.dumps(data, sort_keys=True)) for kind, data in items)


def test_round_trip_from_sqlite_into_any_backend(
    storage_factory: Callable[..., Storage], tmp_path: Path
) -> None:
    source = Storage(f"sqlite:///{tmp_path / 'source.db'}")
    populate(source, sessions=40, seed_value=3)
    exported = records(source)
    dump = tmp_path / "all.jsonl"
    with dump.open("w") as handle:
        counts = export_all(source, handle)
    assert (counts["training_run"], counts["creation_run"], counts["image"], counts["session"]) == (
        1,
        3,
        15,
        40,
    )
    assert counts["library_prompt"] > 0

    target = storage_factory()
    report = import_all(target, dump)
    assert {kind: report.outcomes[kind]["created"] for kind in counts} == counts
    assert normalised(records(target)) == normalised(exported)
    again = import_all(target, dump)
    assert {kind: again.outcomes[kind]["unchanged"] for kind in counts} == counts
    assert normalised(records(target)) == normalised(exported), "importing twice changes nothing"
    # ids were kept; new rows still get fresh ids afterwards (sequences moved on, on PostgreSQL)
    run = target.gallery.start_creation("after import")
    assert run.id == 4
    source.close()


def test_a_bad_line_names_itself_and_writes_nothing(storage: Storage, tmp_path: Path) -> None:
    dump = tmp_path / "bad.jsonl"
    good = {"kind": "session", "data": {"id": "s1", "image_path": "/i.jpg", "naive_prompt": "p"}}
    bad = {
        "kind": "session",
        "data": {"id": "s2", "image_path": "/i.jpg", "naive_prompt": "p", "status": "x"},
    }
    dump.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(InvalidInput, match=r"line 2\.status"):
        import_all(storage, dump)
    dump.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(InvalidInput, match="line 2"):
        import_all(storage, dump)
    assert storage.sessions.get_session_count() == 0
