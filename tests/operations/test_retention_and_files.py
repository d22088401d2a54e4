"""Pruning archives before it deletes; the health report sees growth; the file check reports, and
deletes orphans only with the token of a report that found exactly them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edi_storage import Conflict, InvalidInput, Storage
from edi_storage.ops.files import check_files, delete_orphans
from edi_storage.ops.retention import prune
from edi_storage.ops.transfer import import_all
from edi_storage.testing import SessionCreateFactory


def aged(storage: Storage, days: list[int]) -> list[str]:
    now = datetime.now(UTC)
    items = [SessionCreateFactory.build(created_at=now - timedelta(days=d)) for d in days]
    return storage.sessions.batch_save_sessions(items)


def test_prune_by_age_archives_then_deletes_sessions_children_and_audit_rows(
    storage: Storage, tmp_path: Path
) -> None:
    ids = aged(storage, [400, 200, 100, 5, 1])
    assert prune(storage, archive=None, older_than_days=90, dry_run=True).session_ids == ids[:3]
    assert storage.sessions.get_session_count() == 5, "a dry run deletes nothing"
    archive = tmp_path / "archive.jsonl"
    report = prune(storage, archive=archive, older_than_days=90, batch_size=2)
    assert (report.sessions, report.audit_rows) == (3, 3 * 12)
    assert sorted(s.id for s in storage.sessions.query_history()) == sorted(ids[3:])
    assert storage.audit.get_audit_trail(record_id=ids[0]) == []
    assert len(storage.audit.get_audit_trail(limit=1000)) == 2 * 12, "the kept sessions keep their trail"
    kinds = [json.loads(line)["kind"] for line in archive.read_text().splitlines()]
    assert kinds.count("session") == 3 and kinds.count("audit") == 36
    # the archive's sessions load back with the ordinary importer
    storage.sessions.batch_save_sessions(
        [json.loads(line)["data"] for line in archive.read_text().splitlines() if '"kind": "session"' in line]
    )
    assert storage.sessions.get_session_count() == 5


def test_prune_needs_a_criterion_and_an_archive(storage: Storage) -> None:
    aged(storage, [400])
    with pytest.raises(InvalidInput, match="refusing to prune everything"):
        prune(storage, archive=None)
    with pytest.raises(InvalidInput, match="archive"):
        prune(storage, archive=None, older_than_days=1)
    assert storage.sessions.get_session_count() == 1


def test_prune_by_size_budget(tmp_path: Path) -> None:
    storage = Storage(f"sqlite:///{tmp_path / 'big.db'}")
    aged(storage, list(range(200, 0, -1)))
    storage.maintenance.checkpoint()
    size = (tmp_path / "big.db").stat().st_size
    report = prune(storage, archive=tmp_path / "a.jsonl", max_bytes=size // 2)
    assert 80 <= report.sessions <= 120, "about half the sessions, the oldest"
    oldest_left = min(s.created_at for s in storage.sessions.query_history(limit=1000))
    assert oldest_left > datetime.now(UTC) - timedelta(days=200 - report.sessions + 1)
    storage.maintenance.vacuum()
    assert (tmp_path / "big.db").stat().st_size < size
    storage.close()


def test_health_reports_growth_since_the_last_report(tmp_path: Path) -> None:
    storage = Storage(f"sqlite:///{tmp_path / 'h.db'}")

    def ours() -> list[str]:  # SQLite's own -wal/-shm of an open WAL database aside
        return sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm")))

    listing = ours()
    assert storage.maintenance.health().growth == {}
    assert ours() == listing, "without --history nothing is written"
    history = tmp_path / "health-history.json"
    first = storage.maintenance.health(history)
    assert first.previous_at is None and first.growth == {}
    assert first.objects["sessions"] > 0 and "ix_sessions_created_at_id" in first.objects
    storage.sessions.batch_save_sessions([SessionCreateFactory.build() for _ in range(300)])
    storage.maintenance.checkpoint()
    second = storage.maintenance.health(history)
    assert second.previous_at is not None
    assert second.growth["sessions"] > 0 and second.growth["audit_log"] > 0
    assert second.rows["sessions"] == 300
    storage.close()


def test_files_report_then_delete_orphans_with_the_token(storage: Storage, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    kept = images / "kept.jpg"
    kept.write_bytes(b"x")
    orphan = images / "orphan.jpg"
    orphan.write_bytes(b"y")
    storage.sessions.save_session({"id": "a", "image_path": str(kept), "naive_prompt": "p"})
    storage.sessions.save_session({"id": "b", "image_path": str(images / "gone.jpg"), "naive_prompt": "p"})
    report = check_files(storage, [images])
    assert report.missing == [("sessions", "b", str(images / "gone.jpg"))]
    assert report.orphans == [orphan]
    assert orphan.exists(), "reporting deletes nothing"
    late = images / "late.jpg"
    late.write_bytes(b"z")  # appears after the report: the token no longer matches
    with pytest.raises(Conflict, match="run the check again"):
        delete_orphans(storage, [images], report.token)
    assert orphan.exists() and late.exists()
    fresh = check_files(storage, [images])
    assert delete_orphans(storage, [images], fresh.token) == [late, orphan]
    assert kept.exists() and not orphan.exists()


def test_imported_archives_keep_their_audit_rows_out_of_the_way(storage: Storage, tmp_path: Path) -> None:
    """An archive is JSON Lines like an export; import_all refuses its audit records by kind."""
    aged(storage, [400])
    archive = tmp_path / "a.jsonl"
    prune(storage, archive=archive, older_than_days=1)
    with pytest.raises(InvalidInput, match="kind"):
        import_all(storage, archive)


def test_state_files_are_never_orphans(storage: Storage, tmp_path: Path) -> None:
    """A state file whose session is not stored yet is reported as unsynced, never deleted."""
    from edi_storage.state import SessionState, StateStore

    states = StateStore(tmp_path / "states")
    synced = SessionState(session_id="s1", current_stage="upload", image_path="/i.jpg", naive_prompt="p")
    pending = synced.model_copy(update={"session_id": "s2"})
    states.save(synced)
    states.save(pending)
    storage.sessions.save_from_state(synced)
    report = check_files(storage, [tmp_path / "states"], state_dir=tmp_path / "states")
    assert report.orphans == []
    assert report.unsynced_states == [states.path_for("s2")]
    assert delete_orphans(storage, [tmp_path / "states"], report.token, state_dir=tmp_path / "states") == []
    assert states.load("s2").session_id == "s2"
