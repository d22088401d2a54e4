"""The command line answers without importing what the command does not use (issue 14): ``--help``
imports neither SQLAlchemy nor Pydantic, and no command that only reads sessions imports Alembic, Pillow,
FastAPI or factory-boy. Checked in fresh interpreters; the time it saves is measured by ``make
bench-cli``, not here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edi_storage import Storage
from edi_storage.migrate.scripts import HEAD_REVISION, script_directory

RUN = """
import sys
from edi_storage.cli import app
try:
    app({argv!r})
except SystemExit as exit:
    assert not exit.code, exit.code
print(" ".join(sorted(sys.modules)))
"""


def loaded_modules(argv: list[str]) -> set[str]:
    """The modules a fresh interpreter has imported once ``edi-storage ARGV`` has run."""
    done = subprocess.run(
        [sys.executable, "-c", RUN.format(argv=argv)], capture_output=True, text=True, check=True
    )
    return set(done.stdout.split("\n")[-2].split())


def imported_by(argv: list[str]) -> set[str]:
    """The top-level packages among them."""
    return {module.split(".")[0] for module in loaded_modules(argv)}


HEAVY = {"sqlalchemy", "alembic", "PIL", "fastapi", "factory", "faker"}


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["--version"]])
def test_help_and_version_import_neither_sqlalchemy_nor_pydantic(argv: list[str]) -> None:
    assert imported_by(argv) & (HEAVY | {"pydantic"}) == set()


@pytest.mark.parametrize("argv", [["library", "--help"], ["gallery", "top", "-h"], ["history", "--help"]])
def test_a_command_s_help_imports_no_storage_code(argv: list[str]) -> None:
    """Pydantic is allowed here: Typer 0.2x builds its parameter converters with it."""
    loaded = loaded_modules(argv)
    assert {module.split(".")[0] for module in loaded} & HEAVY == set()
    assert not any(module.startswith(("edi_storage.storage", "edi_storage.models")) for module in loaded)


def test_reading_sessions_imports_no_migration_image_web_or_test_library(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'small.db'}"
    Storage(url).close()
    for argv in (["stats"], ["history"], ["current"]):
        loaded = imported_by(["--url", url, *argv])
        assert "sqlalchemy" in loaded, "the command did run"
        assert loaded & (HEAVY - {"sqlalchemy"}) == set(), argv


def test_the_head_revision_named_in_the_code_is_the_head_of_the_migrations() -> None:
    """Opening a database compares its revision with HEAD_REVISION, without Alembic; a new revision
    must move it (script_directory() refuses to run when they disagree)."""
    assert script_directory().get_current_head() == HEAD_REVISION
