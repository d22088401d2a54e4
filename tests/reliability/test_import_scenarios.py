"""Import scenarios of the reliability suite: an export cut at every line boundary is refused with
nothing written, and importing one database's export into another that holds the same ids changes
nothing unless asked, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from edi_storage import Conflict, InvalidInput, Storage
from edi_storage.ops.transfer import export_all, import_all
from edi_storage.testing.demo import populate

pytestmark = pytest.mark.reliability


def test_an_export_cut_at_any_line_boundary_is_refused(
    storage_factory: Callable[..., Storage], tmp_path: Path
) -> None:
    source = Storage(f"sqlite:///{tmp_path / 'a.db'}")
    populate(source, sessions=25, seed_value=11)
    dump = tmp_path / "a.jsonl"
    with dump.open("w", encoding="utf-8") as handle:
        export_all(source, handle)
    source.close()
    lines = dump.read_text(encoding="utf-8").splitlines(keepends=True)
    target = storage_factory()
    cut = tmp_path / "cut.jsonl"
    for keep in range(1, len(lines)):
        cut.write_text("".join(lines[:keep]), encoding="utf-8")
        with pytest.raises(InvalidInput, match="trailer"):
            import_all(target, cut)
    assert target.sessions.get_session_count() == 0
    assert import_all(target, dump).total("session") == 25


def test_an_export_into_a_database_holding_the_same_ids_is_refused_whole(
    storage_factory: Callable[..., Storage], tmp_path: Path
) -> None:
    source = Storage(f"sqlite:///{tmp_path / 'a.db'}")
    populate(source, sessions=60, seed_value=12)
    dump = tmp_path / "a.jsonl"
    with dump.open("w", encoding="utf-8") as handle:
        export_all(source, handle)
    source.close()
    target = storage_factory()
    populate(target, sessions=60, seed_value=12)
    before = [s.model_dump() for s in target.sessions.query_history(limit=1000)]
    with pytest.raises(Conflict, match="nothing was imported"):
        import_all(target, dump)
    assert [s.model_dump() for s in target.sessions.query_history(limit=1000)] == before
