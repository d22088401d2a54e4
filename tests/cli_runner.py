"""One CliRunner for every test that runs the command line, with stderr kept apart from stdout."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner


def cli_runner() -> CliRunner:
    """Click 8.2 and later keep stderr apart by default and have no ``mix_stderr``; Click 8.1 (the
    lowest-versions leg) mixes them unless told not to."""
    separate: dict[str, Any] = {"mix_stderr": False}
    try:
        return CliRunner(**separate)
    except TypeError:
        return CliRunner()
