"""Everything in a database as JSON Lines, and back: the way data moves between SQLite and PostgreSQL.

One record per line, ``{"kind": ..., "data": ...}``, in an order that imports without dangling
references: training runs, creation runs, images, library prompts, then sessions with their graphs.
Sessions travel as ``SessionCreate`` (the import replaces a stored session with the same id); library
prompts, runs and images keep every column, ids included, and are upserted (by hash, by id), so
importing the same file twice changes nothing and a round trip compares equal.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from edi_storage.dialects import dialect_of
from edi_storage.errors import InvalidInput
from edi_storage.models import CreationRun, GeneratedImage, LibraryPrompt, TrainingRun
from edi_storage.models.base import UTCDateTime, table_of
from edi_storage.schemas.common import parse
from edi_storage.schemas.sessions import SessionCreate
from edi_storage.storage import Storage, UnitOfWork

BATCH = 500
# kind -> (table, conflict target); in dependency order
ROW_KINDS: dict[str, tuple[Table, str]] = {
    "training_run": (table_of(TrainingRun), "id"),
    "creation_run": (table_of(CreationRun), "id"),
    "image": (table_of(GeneratedImage), "id"),
    "library_prompt": (table_of(LibraryPrompt), "prompt_hash"),
}
BINARY = {"thumbnail_data"}
Progress = Callable[[str, int], None]


def _encode(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (base64.b64encode(v).decode() if k in BINARY and v is not None else v) for k, v in row.items()}


def _decode(table: Table, data: dict[str, Any]) -> dict[str, Any]:
    unknown = set(data) - set(table.c.keys())
    if unknown:
        raise InvalidInput.single(
            f"{table.name}.{sorted(unknown)[0]}", "is not a column of this release", None
        )
    decoded = dict(data)
    for key in BINARY & set(data):
        if data[key] is not None:
            try:
                decoded[key] = base64.b64decode(data[key], validate=True)
            except (ValueError, TypeError):  # binascii.Error is a ValueError
                raise InvalidInput.single(f"{table.name}.{key}", "is not base64", data[key]) from None
    return decoded


def export_all(storage: Storage, out: IO[str], progress: Progress | None = None) -> dict[str, int]:
    """Write every record; returns how many of each kind."""
    step = progress or (lambda _kind, _n: None)
    counts: dict[str, int] = {}
    with storage.unit_of_work(readonly=True) as uow:
        for kind, (table, _) in ROW_KINDS.items():
            counts[kind] = 0
            for row in uow.session.execute(select(table).order_by(table.c.id)).mappings():
                out.write(
                    json.dumps({"kind": kind, "data": _encode(dict(row))}, default=_json_default) + "\n"
                )
                counts[kind] += 1
            step(kind, counts[kind])
    counts["session"] = 0
    after: str | None = None
    while ids := storage.sessions.session_ids(after=after, limit=BATCH):
        for graph in storage.sessions.load_sessions(ids):
            data = graph.as_create().model_dump(mode="json", exclude_none=True)
            out.write(json.dumps({"kind": "session", "data": data}) + "\n")
        counts["session"] += len(ids)
        step("session", len(ids))
        after = ids[-1]
    return counts


def read_records(lines: IO[str]) -> Iterator[tuple[int, str, dict[str, Any]]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InvalidInput.single(f"line {number}", f"is not JSON ({error.msg})", line[:80]) from None
        except RecursionError:
            raise InvalidInput.single(f"line {number}", "is nested too deeply", line[:80]) from None
        kind = record.get("kind") if isinstance(record, dict) else None
        if not isinstance(kind, str) or kind not in {*ROW_KINDS, "session"}:
            raise InvalidInput.single(f"line {number}.kind", "must be one of the exported kinds", record)
        if not isinstance(record.get("data"), dict):
            raise InvalidInput.single(f"line {number}.data", "must be an object", record.get("data"))
        yield number, record["kind"], record["data"]


def import_all(
    storage: Storage, source: Path, progress: Progress | None = None, *, audit: bool = True
) -> dict[str, int]:
    """Load an export in two streaming passes, so memory holds one batch whatever the file's size.

    The first pass validates every record and writes nothing: a bad line anywhere leaves the database
    untouched. The second writes batches of ``BATCH`` records, row kinds before sessions (the order
    export writes them in, and the order their references need), all in one transaction: a record only
    the database can refuse (a filename another image holds, a run that does not exist) leaves nothing
    of the file behind either.
    """
    step = progress or (lambda _kind, _n: None)
    try:
        with source.open(encoding="utf-8") as lines:
            for number, kind, data in read_records(lines):
                if kind == "session":
                    parse(SessionCreate, data, prefix=f"line {number}.")
                else:
                    _typed(ROW_KINDS[kind][0], _decode(ROW_KINDS[kind][0], data))
    except UnicodeDecodeError as error:
        raise InvalidInput.single("file", f"is not UTF-8 text ({error.reason})", str(source)) from None
    counts = dict.fromkeys([*ROW_KINDS, "session"], 0)
    pending: dict[str, list[dict[str, Any]]] = {kind: [] for kind in counts}

    def write(uow: UnitOfWork, kind: str) -> None:
        batch, pending[kind] = pending[kind], []
        if not batch:
            return
        if kind == "session":
            uow.sessions.batch_save_sessions(batch)
        else:
            table, key = ROW_KINDS[kind]
            _upsert(uow.session, table, key, [_decode(table, data) for data in batch])
        counts[kind] += len(batch)
        step(kind, len(batch))

    with storage.unit_of_work(audit=audit) as uow, source.open(encoding="utf-8") as lines:
        for _, kind, data in read_records(lines):
            pending[kind].append(data)
            if len(pending[kind]) >= BATCH:
                write(uow, kind)
        for kind in counts:
            write(uow, kind)
        _reset_sequences(uow.session)
    return counts


def _upsert(s: Session, table: Table, key: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    typed = [_typed(table, row) for row in rows]
    statement = dialect_of(s).insert(table)
    updates = {col.key: statement.excluded[col.key] for col in table.c if col.key != key}
    upsert = statement.on_conflict_do_update(index_elements=[table.c[key]], set_=updates)
    # One executemany per run of rows giving the same columns (a hand-edited file may leave one out).
    for _, same in itertools.groupby(typed, key=sorted):
        s.execute(upsert, list(same))


def _typed(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """JSON text back into Python values the column types accept (datetimes from ISO strings)."""
    out = dict(row)
    for name, value in row.items():
        if isinstance(value, str) and isinstance(table.c[name].type, UTCDateTime):
            try:
                out[name] = datetime.fromisoformat(value)
            except ValueError:
                raise InvalidInput.single(f"{table.name}.{name}", "is not an ISO 8601 time", value) from None
    return out


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot export {type(value).__name__}")


def _reset_sequences(s: Session) -> None:
    """Explicit ids leave PostgreSQL's serial sequences behind; move them past the highest id."""
    for statement in dialect_of(s).reset_sequences_sql([table for table, _ in ROW_KINDS.values()]):
        s.execute(statement)
