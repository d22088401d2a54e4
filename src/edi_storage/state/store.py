"""Session-state files in one directory, written atomically, read strictly.

Save writes a temporary file in the same directory, flushes and fsyncs it, then renames it over the old
file (and fsyncs the directory): a crash at any point leaves the old file or the new one, never half of
one. Load never turns a missing, corrupt or invalid file into an empty state: each is a distinct error
that names the file.

File names come from session ids but are never paths: an id that is not a plain name (``../../etc``,
``a/b``, a 300-character id) is stored under a hash, so no id can leave the directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edi_storage.errors import InvalidInput, NotFound, StorageError
from edi_storage.schemas.common import parse
from edi_storage.state.model import SessionState, read_state

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SUFFIX = ".json"


class StateFileError(StorageError):
    """A state file exists but cannot be used: not JSON, or not a valid state. Names the file."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        super().__init__(f"state file {str(path)!r} cannot be used: {reason}")


def load_state_file(path: Path) -> SessionState:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound("state file", str(path)) from None
    except UnicodeDecodeError as error:
        raise StateFileError(path, f"not UTF-8 text ({error})") from error
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise StateFileError(path, f"not valid JSON ({error})") from error
    except RecursionError:
        raise StateFileError(path, "nested too deeply to be a session state") from None
    if not isinstance(data, dict):
        raise StateFileError(path, f"expected a JSON object, found {type(data).__name__}")
    try:
        return read_state(data)
    except InvalidInput as error:
        raise StateFileError(path, str(error)) from error


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a crash leaves the old content or the new, never a mix."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself must survive a power cut
    finally:
        os.close(directory)


class StateStore:
    """Save, load, update, list and delete session-state files in ``directory``."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory).expanduser()  # "~/.edi/states", as docs/state.md writes it
        self.directory.mkdir(parents=True, exist_ok=True)

    def path_for(self, session_id: str) -> Path:
        if SAFE_NAME.fullmatch(session_id):
            return self.directory / f"{session_id}{SUFFIX}"
        digest = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        return self.directory / f"_{digest}{SUFFIX}"

    def save(self, state: SessionState) -> Path:
        """Write ``state`` (stamped with ``last_updated``) atomically; returns the file's path."""
        return self._write(state)[0]

    def _write(self, state: SessionState) -> tuple[Path, SessionState]:
        stamped = state.model_copy(update={"last_updated": datetime.now(UTC)})
        path = self.path_for(state.session_id)
        write_atomically(path, stamped.model_dump_json(indent=2) + "\n")
        return path, stamped

    def load(self, session_id: str) -> SessionState:
        return load_state_file(self.path_for(session_id))

    def update(self, session_id: str, **changes: Any) -> SessionState:
        """Merge ``changes`` into the stored state (top-level fields replaced), validate, save."""
        current = self.load(session_id)
        merged = parse(SessionState, {**current.model_dump(), **changes, "session_id": session_id})
        return self._write(merged)[1]

    def delete(self, session_id: str) -> None:
        try:
            self.path_for(session_id).unlink()
        except FileNotFoundError:
            raise NotFound("state file", session_id) from None

    def paths(self) -> Iterator[Path]:
        """State files, without the temporary files of a save in progress (or interrupted)."""
        return (p for p in sorted(self.directory.glob(f"*{SUFFIX}")) if not p.name.startswith("."))

    def list(self) -> list[SessionState]:
        return [load_state_file(path) for path in self.paths()]
