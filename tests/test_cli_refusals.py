"""Nothing is created, migrated or changed by a command that only reads (issue: nothing changed or lost
by surprise). Only `upgrade` creates or migrates a database named by --url; every other command refuses a
missing file, an empty database or another application's, in one line that names the command to run.
URL and driver mistakes are one line too."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import URL, create_engine, inspect, text

from edi_storage import DatabaseUnavailable, InvalidInput, SchemaOutOfDate, Storage
from edi_storage.migrate.scripts import head_revision
from edi_storage.testing.fixtures import scratch_postgres_database

from .test_cli import assert_clean_failure, invoke

READING = [
    ["current"],
    ["history"],
    ["show", "some-id"],
    ["stats"],
    ["check"],
    ["size"],
    ["health"],
    ["audit"],
    ["perf"],
    ["export", "some-id"],
    ["library", "search", "sky"],
    ["gallery", "top"],
]


def listing(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


@pytest.fixture
def foreign_file(tmp_path: Path) -> Path:
    """Another program's SQLite database."""
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES ('keep me')")
    return path


@pytest.mark.parametrize("args", READING, ids=" ".join)
def test_a_reading_command_on_a_missing_file_creates_nothing(tmp_path: Path, args: list[str]) -> None:
    result = invoke(*args, url=f"sqlite:///{tmp_path}/missing.db")
    assert_clean_failure(result, 2, "no database", "edi-storage upgrade")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", READING, ids=" ".join)
def test_a_reading_command_leaves_another_applications_database_as_it_was(
    foreign_file: Path, args: list[str]
) -> None:
    before = listing(foreign_file.parent)
    result = invoke(*args, url=f"sqlite:///{foreign_file}")
    assert_clean_failure(result, 2, "another application's tables ('notes')", "edi-storage upgrade")
    assert listing(foreign_file.parent) == before, "byte for byte, and nothing beside it"


def test_upgrade_is_what_adds_our_tables_to_another_applications_database(foreign_file: Path) -> None:
    assert invoke("upgrade", url=f"sqlite:///{foreign_file}").exit_code == 0
    with sqlite3.connect(foreign_file) as conn:
        assert conn.execute("SELECT body FROM notes").fetchall() == [("keep me",)]
    assert invoke("stats", url=f"sqlite:///{foreign_file}").exit_code == 0


def test_storage_in_python_creates_a_new_database_but_refuses_a_foreign_one(
    tmp_path: Path, foreign_file: Path
) -> None:
    """Storage() still creates a missing or empty database; another application's it leaves alone until
    upgrade() is called explicitly."""
    with Storage(f"sqlite:///{tmp_path}/new.db") as fresh:
        assert fresh.current_revision() == head_revision()
    before = listing(foreign_file.parent)
    storage = Storage(f"sqlite:///{foreign_file}")
    try:
        with pytest.raises(SchemaOutOfDate, match="another application's tables"):
            storage.sessions.get_session_count()
        assert {k: v for k, v in listing(foreign_file.parent).items() if k in before} == before
        storage.upgrade()
        assert storage.sessions.get_session_count() == 0
    finally:
        storage.close()


def test_create_false_refuses_a_missing_file_before_touching_the_disk(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnavailable, match="no database at"):
        Storage(f"sqlite:///{tmp_path}/missing.db", create=False)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def empty_postgres() -> Iterator[URL]:
    with scratch_postgres_database("edi_empty") as url:
        yield url


@pytest.mark.postgres
@pytest.mark.parametrize("args", READING, ids=" ".join)
def test_a_reading_command_creates_no_table_in_an_empty_postgres_database(
    empty_postgres: URL, args: list[str]
) -> None:
    url = empty_postgres.render_as_string(hide_password=False)
    assert_clean_failure(invoke(*args, url=url), 2, "edi-storage upgrade")
    engine = create_engine(empty_postgres)
    try:
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "fragments"),
    [
        ("edi_sessions.db", ["is not a database URL", "sqlite:///PATH"]),
        ("mysql://root@localhost/test", ["does not support", "postgresql://"]),
        ("sqlite:///C:\\nowhere\\x.db", ["no database"]),
    ],
)
def test_a_url_mistake_is_a_usage_error_naming_the_fix(url: str, fragments: list[str]) -> None:
    """A URL that cannot be one, or a backend we do not support, is a bad --url (Click's usage error,
    exit 2); a path that holds no database is refused in one line naming `edi-storage upgrade`, exit 2."""
    result = invoke("stats", url=url)
    assert result.exit_code == 2 and "Traceback" not in result.output and result.stdout == ""
    message = " ".join(result.stderr.replace("│", " ").split())
    for fragment in fragments:
        assert fragment in message, message


def test_a_missing_postgres_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name, *a)
    )
    with pytest.raises(DatabaseUnavailable, match=r"pip install 'edi-storage\[postgres\]'"):
        Storage("postgresql://postgres@127.0.0.1/test")
    with pytest.raises(InvalidInput, match="url"):
        Storage("not a url at all")


def test_files_refuses_a_missing_folder_and_offers_no_token_for_nothing(
    url_at_head: str, tmp_path: Path
) -> None:
    missing = invoke("files", "--dir", str(tmp_path / "missing"), url=url_at_head)
    assert missing.exit_code == 2 and "--dir" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    report = invoke("files", "--dir", str(empty), url=url_at_head)
    assert report.exit_code == 0 and "0 orphans" in report.stdout and "--delete-orphans" not in report.stdout


def test_a_state_store_under_home_is_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """StateStore("~/.edi/states"), as docs/state.md writes it, is the home folder's, not a folder "~"."""
    from edi_storage.state import StateStore

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert StateStore("~/.edi/states").directory == tmp_path / "home" / ".edi" / "states"
    assert not (tmp_path / "~").exists()


@pytest.fixture
def url_at_head(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'head.db'}"
    Storage(url).close()
    return url


def test_reading_a_backup_leaves_it_in_its_own_journal_mode(url_at_head: str, tmp_path: Path) -> None:
    """A backup is one self-contained file (journal_mode=delete): `stats` on it must not switch it to WAL."""
    backups = tmp_path / "backups"
    assert invoke("backup", "--dir", str(backups), url=url_at_head).exit_code == 0
    (copy,) = backups.glob("*.db")
    assert invoke("stats", url=f"sqlite:///{copy}").exit_code == 0
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert sorted(p.name for p in backups.iterdir()) == sorted([copy.name, copy.name + ".json"])


@pytest.mark.postgres
def test_tables_in_another_postgres_schema_make_a_database_foreign(empty_postgres: URL) -> None:
    engine = create_engine(empty_postgres)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE SCHEMA app"))
            conn.execute(text("CREATE TABLE app.customers (id integer primary key)"))
        with (
            Storage(empty_postgres) as storage,
            pytest.raises(SchemaOutOfDate, match=r"another application's tables \('app\.customers'\)"),
        ):
            storage.sessions.get_session_count()
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == [], "nothing was created in public"
    finally:
        engine.dispose()
