"""What edi-storage tells an application's logs (under ``edi_storage``): migrations applied, backups
taken and rotated, prunes, imports, and, with the opt-in performance log, slow calls; never a password
and never a stored row."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edi_storage import Storage
from edi_storage.ops.backups import RetentionPolicy
from edi_storage.ops.retention import prune
from edi_storage.ops.transfer import export_all, import_all
from edi_storage.testing import SessionCreateFactory
from edi_storage.testing.fixtures import postgres_url, scratch_postgres_database

SECRET_PROMPT = "a prompt that must never reach a log"


def records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("edi_storage")]


def test_the_package_adds_no_handler_but_a_null_one() -> None:
    handlers = logging.getLogger("edi_storage").handlers
    assert handlers and all(isinstance(h, logging.NullHandler) for h in handlers)


def test_a_new_database_and_an_upgrade_are_logged_with_their_revisions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edi_storage")
    Storage(f"sqlite:///{tmp_path / 'new.db'}").close()
    (created,) = [r for r in records(caplog) if "upgraded" in r.getMessage()]
    assert created.name == "edi_storage.storage" and created.levelno == logging.INFO
    assert "from revision none (new database) to 0008_owner_indexes" in created.getMessage()
    caplog.clear()
    with Storage(f"sqlite:///{tmp_path / 'new.db'}") as storage:
        storage.upgrade()  # already at head: nothing at INFO
    assert not [r for r in records(caplog) if r.levelno >= logging.INFO]


@pytest.mark.skipif(postgres_url() is None, reason="EDI_STORAGE_TEST_POSTGRES_URL is not set")
@pytest.mark.postgres
def test_a_postgres_upgrade_is_logged_without_the_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edi_storage")
    with scratch_postgres_database() as url:  # the test server trusts any password
        Storage(url.set(password="s3cret")).close()
    (created,) = [r for r in records(caplog) if "upgraded" in r.getMessage()]
    assert "s3cret" not in created.getMessage() and "***" in created.getMessage()


def test_backup_rotation_prune_and_import_are_logged_without_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = Storage(f"sqlite:///{tmp_path / 'data.db'}")
    ids = storage.sessions.batch_save_sessions(
        [
            SessionCreateFactory.build(naive_prompt=SECRET_PROMPT, created_at="2020-01-01T00:00:00Z")
            for _ in range(3)
        ]
    )
    caplog.set_level(logging.INFO, logger="edi_storage")
    made = storage.maintenance.backup(tmp_path / "backups")
    storage.maintenance.backup(tmp_path / "backups")  # the same day: one a day keeps this one
    storage.maintenance.rotate(tmp_path / "backups", policy=_one_a_day())
    with (tmp_path / "all.jsonl").open("w") as out:
        export_all(storage, out)
    archive = tmp_path / "old.jsonl"
    prune(storage, archive=archive, older_than_days=1)
    other = Storage(f"sqlite:///{tmp_path / 'other.db'}")
    import_all(other, tmp_path / "all.jsonl")
    messages = [r.getMessage() for r in records(caplog)]
    assert any(f"backup {made.path} taken and verified" in m for m in messages)
    assert any(f"backup {made.path} deleted by the rotation policy" in m for m in messages)
    assert any(f"pruned {len(ids)} sessions" in m and str(archive) in m for m in messages)
    assert any("imported" in m and "3 sessions (3 created)" in m for m in messages)
    assert not any(SECRET_PROMPT in m for m in messages)
    storage.close()
    other.close()


def _one_a_day() -> RetentionPolicy:
    return RetentionPolicy(daily=1, weekly=0, monthly=0)


def test_a_slow_call_is_logged_by_its_query_type_when_recording_is_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDI_STORAGE_SLOW_QUERY_MS", "0")  # every call is slow
    with Storage(f"sqlite:///{tmp_path / 'p.db'}", record_query_performance=True) as storage:
        storage.sessions.save_session({"image_path": "a.jpg", "naive_prompt": SECRET_PROMPT})
        caplog.set_level(logging.WARNING, logger="edi_storage")
        storage.sessions.search_sessions("never logged")
    slow = [r for r in records(caplog) if r.getMessage().startswith("slow ")]
    assert [r.getMessage().split(":")[0] for r in slow] == [
        "slow sessions.save_session",
        "slow sessions.search_sessions",
    ]
    assert all(r.name == "edi_storage.monitoring" and r.levelno == logging.WARNING for r in slow)
    assert not any("never logged" in r.getMessage() or SECRET_PROMPT in r.getMessage() for r in slow)
