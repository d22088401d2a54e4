"""``edi-storage serve``, and the core package staying free of FastAPI."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")  # the api extra; without it there is nothing to test

from fastapi.testclient import TestClient
from sqlalchemy import text

import edi_storage.api.server
from edi_storage.api.server import ServerLimits
from edi_storage.cli import app
from edi_storage.migrate.scripts import VERSION_TABLE, head_revision
from edi_storage.storage import Storage

from ..cli_runner import cli_runner

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
    result = cli_runner().invoke(
        app, ["--url", f"sqlite:///{tmp_path}/x.db", "serve"], env={"COLUMNS": "200"}
    )
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


def upgraded(path: Path) -> str:
    """A database at head (only `upgrade`, or Storage() in Python, creates one), as a URL."""
    url = f"sqlite:///{path}"
    Storage(url).close()
    return url


def wait_for(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVE_TIMEOUT_SECONDS
    while True:
        assert server.poll() is None, server.communicate()[0].decode()
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline, f"no answer from {url} within {SERVE_TIMEOUT_SECONDS} s"
            time.sleep(0.1)


def request(
    port: int, method: str, path: str, body: bytes | None = None, **headers: str
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(
            method, path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()}
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_serve_answers_http_requests(tmp_path: Path) -> None:
    """One real server: health, both slash forms, the Host check and the header timeout over TCP."""
    port = free_port()
    url = upgraded(tmp_path / "x.db")
    server = subprocess.Popen(
        [*command(), "--url", url, "serve", "--port", str(port), "--header-timeout", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/health", server)
        status, body = request(port, "GET", "/api/sessions/statistics")
        assert status == 200 and json.loads(body)["total_sessions"] == 0
        status, body = request(port, "GET", "/health")
        assert status == 200
        assert json.loads(body) == {
            "status": "ok",
            "schema": "current",
            "revision": head_revision(),
            "database": "reachable",
        }
        session = json.dumps({"image_path": "a.png", "naive_prompt": "sky"}).encode()
        for path in ("/api/sessions", "/api/sessions/"):  # both forms, no redirect
            status, body = request(port, "POST", path, session, content_type="application/json")
            assert status == 201, body
        # DNS rebinding: a page of evil.example resolved to 127.0.0.1 sends its own Host
        assert request(port, "GET", "/api/sessions/", Host="evil.example")[0] == 400
        assert request(port, "GET", "/health", Host=f"localhost:{port}")[0] == 200
        # A client that starts a request and never finishes its headers is cut off.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            slow.sendall(b"GET /api/sessions/ HTTP/1.1\r\nHost: localhost\r\n")
            started = time.monotonic()
            assert slow.recv(1024) == b""  # closed by the server, not answered
            assert time.monotonic() - started < 5
        with socket.create_connection(("127.0.0.1", port), timeout=10) as silent:
            assert silent.recv(1024) == b""  # connected, sent nothing: closed too
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0].decode()
    # uvicorn shuts down gracefully (the lifespan closes the storage), then re-raises the SIGTERM
    assert server.returncode in {0, -signal.SIGTERM}, output
    assert "Application shutdown complete" in output


def set_revision(url: str, revision: str) -> None:
    with Storage(url) as store, store.engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = :r"), {"r": revision})


@pytest.mark.parametrize("kind", ["missing", "empty", "foreign", "behind"])
def test_serve_refuses_a_database_it_cannot_serve(tmp_path: Path, kind: str) -> None:
    database = tmp_path / "x.db"
    url = f"sqlite:///{database}"
    if kind == "empty":
        sqlite3.connect(database).close()
    elif kind == "foreign":
        with sqlite3.connect(database) as other:
            other.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    elif kind == "behind":
        set_revision(upgraded(database), "0004_query_performance")
    before = database.read_bytes() if database.exists() else None
    result = cli_runner().invoke(app, ["--url", url, "serve"], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert "edi-storage upgrade" in result.stderr and "Traceback" not in result.output
    assert (database.read_bytes() if database.exists() else None) == before  # nothing created or changed


def test_serve_on_a_database_that_cannot_be_opened_fails_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/missing-directory/x.db"
    result = cli_runner().invoke(app, ["--url", url, "serve"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.output
    assert result.stderr.count("\n") == 1


@dataclass
class Served:
    app: Any = None
    host: str = ""
    limits: Any = None


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Served:
    """What `serve` would hand uvicorn, without serving."""
    seen = Served()

    def run(application: Any, host: str, port: int, limits: Any) -> None:
        seen.app, seen.host, seen.limits = application, host, limits

    monkeypatch.setattr(edi_storage.api.server, "run", run)
    monkeypatch.delenv("EDI_STORAGE_API_TOKEN", raising=False)
    return seen


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.org"])
def test_serve_beyond_loopback_needs_a_token(tmp_path: Path, served: Served, host: str) -> None:
    url = upgraded(tmp_path / "x.db")
    result = cli_runner().invoke(app, ["--url", url, "serve", "--host", host], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and served.app is None
    assert (
        result.stderr.count("\n") == 1
        and "--token" in result.stderr
        and "EDI_STORAGE_API_TOKEN" in result.stderr
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_serve_on_loopback_needs_no_token(tmp_path: Path, served: Served, host: str) -> None:
    url = upgraded(tmp_path / "x.db")
    result = cli_runner().invoke(app, ["--url", url, "serve", "--host", host], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert served.host == host


def test_serve_takes_the_token_from_the_environment_or_the_option(tmp_path: Path, served: Served) -> None:
    url = upgraded(tmp_path / "x.db")
    runner = cli_runner()
    for args, env in (
        (["--token", "s3cret"], {}),
        ([], {"EDI_STORAGE_API_TOKEN": "s3cret"}),
    ):
        result = runner.invoke(
            app,
            ["--url", url, "serve", "--host", "0.0.0.0", "--allowed-host", "edi.lan", *args],
            env={"COLUMNS": "200", **env},
        )
        assert result.exit_code == 0, result.output
        client = TestClient(served.app, base_url="http://edi.lan")
        assert client.get("/api/sessions/statistics").status_code == 401
        authorized = {"Authorization": "Bearer s3cret"}
        assert client.get("/api/sessions/statistics", headers=authorized).status_code == 200
        assert client.get("/health").status_code == 200


def test_serve_hands_uvicorn_its_limits(tmp_path: Path, served: Served) -> None:
    url = upgraded(tmp_path / "x.db")
    options = ["--header-timeout", "3", "--keep-alive", "2", "--limit-concurrency", "9"]
    result = cli_runner().invoke(app, ["--url", url, "serve", *options], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert served.limits == ServerLimits(header_timeout=3, keep_alive=2, limit_concurrency=9)
