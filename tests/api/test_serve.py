"""``edi-storage serve``, and the core package staying free of FastAPI."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi")  # the api extra; without it there is nothing to test

from typer.testing import CliRunner

from edi_storage.cli import app

SERVE_TIMEOUT_SECONDS = 20


def test_the_core_package_and_the_cli_never_import_fastapi() -> None:
    code = "import edi_storage, edi_storage.cli; import sys; assert 'fastapi' not in sys.modules, 'fastapi imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", ["fastapi", "uvicorn", "python_multipart"])
def test_serve_without_the_extra_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # import fails as if it were not installed
    result = CliRunner().invoke(app, ["--url", f"sqlite:///{tmp_path}/x.db", "serve"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "pip install 'edi-storage[api]'" in result.stderr and missing in result.stderr
    assert not (tmp_path / "x.db").exists()  # nothing opened


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def command() -> list[str]:
    """The installed ``edi-storage`` script next to this interpreter, or the same app through it."""
    script = shutil.which("edi-storage", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-c", "from edi_storage.cli import app; app()"]


def test_serve_answers_http_requests(tmp_path: Path) -> None:
    port = free_port()
    database = tmp_path / "x.db"
    server = subprocess.Popen(
        [*command(), "--url", f"sqlite:///{database}", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api/sessions/statistics"
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT_SECONDS
        while True:
            assert server.poll() is None, server.communicate()[0].decode()
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    assert response.status == 200
                    assert json.load(response)["total_sessions"] == 0
                    break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, f"no answer from {url} within {SERVE_TIMEOUT_SECONDS} s"
                time.sleep(0.1)
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0].decode()
    # uvicorn shuts down gracefully (the lifespan closes the storage), then re-raises the SIGTERM
    assert server.returncode in {0, -signal.SIGTERM}, output
    assert "Application shutdown complete" in output
    assert database.exists()


def test_serve_on_a_database_that_cannot_be_opened_fails_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/missing-directory/x.db"
    result = CliRunner().invoke(app, ["--url", url, "serve"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot open SQLite database") and "Traceback" not in result.output
