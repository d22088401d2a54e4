"""Everything in a database as JSON Lines, and back: the way data moves between SQLite and PostgreSQL.

One record per line, ``{"kind": ..., "data": ...}``, in an order that imports without dangling
references: training runs, creation runs, images, library prompts, then sessions with their graphs, and
last a trailer, ``{"kind": "trailer", "data": {"records": {kind: n}, "sha256": ...}}``, over every line
before it, so that a file cut short or edited is refused instead of imported in part.

An import never overwrites silently. Each record is *created* (nothing stored under its id or hash),
*unchanged* (stored exactly so: re-importing a file changes nothing, not even a child's id), or in
conflict with a stored record. What a conflict does is the caller's choice (``ImportMode``):

* ``refuse`` (the default): nothing is written, and the error lists the conflicting records;
* ``replace``: the file's record replaces the stored one (a library prompt keeps its stored id);
* ``merge``: both are kept. Sessions and runs and images get new ids (images follow their merged runs),
  except that an image whose file the database already holds keeps the stored row (the gallery has one
  row per file); library prompts are merged by their normalised hash: use counts added, first and last
  use widened, stored details kept.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from edi_storage.dialects import dialect_of
from edi_storage.errors import Conflict, InvalidInput
from edi_storage.models import CreationRun, GeneratedImage, LibraryPrompt, TrainingRun
from edi_storage.models.base import UTCDateTime, table_of
from edi_storage.schemas.common import InputModel, parse
from edi_storage.schemas.sessions import SessionCreate
from edi_storage.storage import Storage, UnitOfWork

log = logging.getLogger(__name__)

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
TRAILER = "trailer"
# An image's references to runs, remapped when a merge gives a run a new id.
IMAGE_RUNS = {"training_session_id": "training_run", "creation_session_id": "creation_run"}
SHOWN_CONFLICTS = 10


class ImportMode(StrEnum):
    REFUSE = "refuse"
    REPLACE = "replace"
    MERGE = "merge"


@dataclass
class ImportReport:
    """What happened to every record, per kind: created, replaced, merged or unchanged."""

    outcomes: dict[str, dict[str, int]] = field(
        default_factory=lambda: {
            kind: dict.fromkeys(("created", "replaced", "merged", "unchanged"), 0)
            for kind in (*ROW_KINDS, "session")
        }
    )

    def add(self, kind: str, outcome: str, n: int = 1) -> None:
        self.outcomes[kind][outcome] += n

    def total(self, kind: str) -> int:
        return sum(self.outcomes[kind].values())

    def summary(self) -> str:
        """``3 sessions (2 created, 1 unchanged), ...``: the kinds the file held."""
        parts = []
        for kind, counts in self.outcomes.items():
            if any(counts.values()):
                detail = ", ".join(f"{n} {outcome}" for outcome, n in counts.items() if n)
                parts.append(f"{self.total(kind)} {kind}s ({detail})")
        return "; ".join(parts) or "no records"


class ExportWriter:
    """Writes records, one per line, and at ``close()`` the trailer that vouches for all of them."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._digest = hashlib.sha256()
        self.counts: dict[str, int] = dict.fromkeys((*ROW_KINDS, "session"), 0)

    def write(self, kind: str, data: dict[str, Any]) -> None:
        line = json.dumps({"kind": kind, "data": data}, default=_json_default) + "\n"
        self._digest.update(line.encode("utf-8"))
        self._out.write(line)
        self.counts[kind] += 1

    def close(self) -> dict[str, int]:
        trailer = {"records": self.counts, "sha256": self._digest.hexdigest()}
        self._out.write(json.dumps({"kind": TRAILER, "data": trailer}) + "\n")
        return dict(self.counts)


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
    """Write every record and the trailer; returns how many of each kind."""
    step = progress or (lambda _kind, _n: None)
    writer = ExportWriter(out)
    with storage.unit_of_work(readonly=True) as uow:
        for kind, (table, _) in ROW_KINDS.items():
            for row in uow.session.execute(select(table).order_by(table.c.id)).mappings():
                writer.write(kind, _encode(dict(row)))
            step(kind, writer.counts[kind])
    after: str | None = None
    while ids := storage.sessions.session_ids(after=after, limit=BATCH):
        for graph in storage.sessions.load_sessions(ids):
            writer.write("session", graph.as_create().model_dump(mode="json", exclude_none=True))
        step("session", len(ids))
        after = ids[-1]
    return writer.close()


def read_records(lines: IO[str]) -> Iterator[tuple[int, str, dict[str, Any]]]:
    for number, line in enumerate(lines, start=1):
        if (record := _record(number, line)) is not None:
            yield record


def _record(number: int, line: str) -> tuple[int, str, dict[str, Any]] | None:
    """One line as (number, kind, data); None for a blank line."""
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise InvalidInput.single(f"line {number}", f"is not JSON ({error.msg})", line[:80]) from None
    except RecursionError:
        raise InvalidInput.single(f"line {number}", "is nested too deeply", line[:80]) from None
    kind = record.get("kind") if isinstance(record, dict) else None
    if not isinstance(kind, str) or kind not in {*ROW_KINDS, "session", TRAILER}:
        raise InvalidInput.single(f"line {number}.kind", "must be one of the exported kinds", record)
    if not isinstance(record.get("data"), dict):
        raise InvalidInput.single(f"line {number}.data", "must be an object", record.get("data"))
    return number, kind, record["data"]


def import_all(
    storage: Storage,
    source: Path,
    progress: Progress | None = None,
    *,
    mode: ImportMode | str = ImportMode.REFUSE,
    audit: bool = True,
    actor: str | None = None,
    verify: bool = True,
) -> ImportReport:
    """Load an export in two streaming passes, so memory holds one batch whatever the file's size.

    The first pass validates every record, and the trailer against the lines before it, and writes
    nothing: a bad line anywhere, a file cut short or edited (``verify=False`` accepts a file without a
    trailer, as older releases wrote them) leaves the database untouched. The second writes batches of
    ``BATCH`` records, row kinds before sessions (the order export writes them in, and the order their
    references need), all in one transaction: a conflict refused by ``mode``, or a record only the
    database can refuse (a filename another image holds), leaves nothing of the file behind either.
    """
    chosen = parse(_ImportOptions, {"mode": mode}).mode
    importer = _Importer(chosen, _check_file(source, verify=verify))
    pending: dict[str, list[dict[str, Any]]] = {kind: [] for kind in (*ROW_KINDS, "session")}
    step = progress or (lambda _kind, _n: None)

    def write(uow: UnitOfWork, kind: str) -> None:
        batch, pending[kind] = pending[kind], []
        if batch:
            importer.write(uow, kind, batch)
            step(kind, len(batch))

    with storage.unit_of_work(audit=audit, actor=actor) as uow, source.open(encoding="utf-8") as lines:
        for _, kind, data in read_records(lines):
            if kind == TRAILER:
                continue
            pending[kind].append(data)
            if len(pending[kind]) >= BATCH:
                write(uow, kind)
        for kind in pending:
            write(uow, kind)
        importer.finish(uow)
    log.info("imported %s (%s): %s", source, chosen.value, importer.report.summary())
    return importer.report


def import_sessions(
    storage: Storage,
    sessions: Sequence[SessionCreate],
    *,
    mode: ImportMode | str = ImportMode.REFUSE,
    audit: bool = True,
    actor: str | None = None,
) -> ImportReport:
    """Session graphs (as ``export ID`` writes them) under the same policy as ``import_all``, in one
    transaction."""
    chosen = parse(_ImportOptions, {"mode": mode}).mode
    importer = _Importer(chosen, dict.fromkeys(ROW_KINDS, 0))
    with storage.unit_of_work(audit=audit, actor=actor) as uow:
        for start in range(0, len(sessions), BATCH):
            importer.write(uow, "session", list(sessions[start : start + BATCH]))
        importer.finish(uow)
    log.info("imported session graphs (%s): %s", chosen.value, importer.report.summary())
    return importer.report


class _ImportOptions(InputModel):
    mode: ImportMode


def _check_file(source: Path, *, verify: bool) -> dict[str, int]:
    """Pass one: every record valid, and the trailer true to every line before it. Returns the highest
    id of each row kind in the file (ids given to merged rows start above them)."""
    highest: dict[str, int] = dict.fromkeys(ROW_KINDS, 0)
    digest = hashlib.sha256()
    counts: dict[str, int] = dict.fromkeys((*ROW_KINDS, "session"), 0)
    trailer: dict[str, Any] | None = None
    try:
        with source.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if (record := _record(number, line)) is None:
                    continue
                _, kind, data = record
                if trailer is not None:
                    raise InvalidInput.single(f"line {number}", "follows the trailer", kind)
                if kind == TRAILER:
                    trailer = data
                    continue
                digest.update(line.encode("utf-8"))  # the trailer vouches for every line before it
                if kind == "session":
                    parse(SessionCreate, data, prefix=f"line {number}.")
                else:
                    _typed(ROW_KINDS[kind][0], _decode(ROW_KINDS[kind][0], data))
                    if isinstance(row_id := data.get("id"), int):
                        highest[kind] = max(highest[kind], row_id)
                counts[kind] += 1
    except UnicodeDecodeError as error:
        raise InvalidInput.single("file", f"is not UTF-8 text ({error.reason})", str(source)) from None
    if trailer is None:
        if verify:
            raise InvalidInput.single(
                "file",
                "has no trailer: it was cut short, or not written by `edi-storage export --all` of this "
                "release (import it unverified with --unverified)",
                str(source),
            )
        return highest
    if trailer.get("sha256") != digest.hexdigest() or trailer.get("records") != counts:
        raise InvalidInput.single(
            "file", "does not match its trailer: lines were changed, added or removed", str(source)
        )
    return highest


class _Importer:
    """Writes batches of one kind under an ``ImportMode``, counting every outcome."""

    def __init__(self, mode: ImportMode, highest_in_file: dict[str, int]) -> None:
        self.mode = mode
        self.report = ImportReport()
        self.conflicts: list[str] = []
        self.new_ids: dict[str, dict[int, int]] = {"training_run": {}, "creation_run": {}}
        self.highest_in_file = highest_in_file
        self.next_id: dict[str, int] = {}

    def _fresh_id(self, s: Session, kind: str, table: Table) -> int:
        """An id no stored row and no row of the file has: above the highest of both, so that a row
        given one never collides with a row of the file written later with its own id."""
        if kind not in self.next_id:
            stored = s.scalar(select(func.max(table.c.id))) or 0
            self.next_id[kind] = max(stored, self.highest_in_file.get(kind, 0)) + 1
        self.next_id[kind] += 1
        return self.next_id[kind] - 1

    def write(self, uow: UnitOfWork, kind: str, batch: list[Any]) -> None:
        if kind == "session":
            self._sessions(uow, [parse(SessionCreate, item) for item in batch])
        else:
            self._rows(uow.session, kind, batch)

    def finish(self, uow: UnitOfWork) -> None:
        if self.conflicts:
            shown = ", ".join(self.conflicts[:SHOWN_CONFLICTS])
            more = len(self.conflicts) - SHOWN_CONFLICTS
            raise Conflict(
                f"{len(self.conflicts)} records differ from the stored ones with the same ids ({shown}"
                f"{f', and {more} more' if more > 0 else ''}); nothing was imported: "
                "--replace replaces them, --merge keeps both"
            )
        for statement in dialect_of(uow.session).reset_sequences_sql(
            [table for table, _ in ROW_KINDS.values()]
        ):
            uow.session.execute(statement)

    def _sessions(self, uow: UnitOfWork, items: list[SessionCreate]) -> None:
        ids = [item.id for item in items if item.id is not None]
        stored = _stored_graphs(uow, ids)
        save: list[SessionCreate] = []
        merged: dict[str, SessionCreate] = {}
        for item in items:
            dumped = item.model_dump(mode="json", exclude_none=True)
            if item.id is None or item.id not in stored:
                save.append(item)
                self.report.add("session", "created")
            elif dumped == stored[item.id]:
                self.report.add("session", "unchanged")
            elif self.mode is ImportMode.REFUSE:
                self.conflicts.append(f"session {item.id!r}")
            elif self.mode is ImportMode.REPLACE:
                save.append(item)
                self.report.add("session", "replaced")
            else:
                # The copy's id is derived from the session and its content: merging the same file
                # again finds the copy and leaves it alone.
                digest = hashlib.sha256(json.dumps(dumped, sort_keys=True).encode()).hexdigest()
                copy_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"edi-storage:merge:{item.id}:{digest}"))
                merged[copy_id] = item.model_copy(update={"id": copy_id})
        already = set(_stored_graphs(uow, list(merged)))
        for copy_id, copy in merged.items():
            self.report.add("session", "unchanged" if copy_id in already else "merged")
            if copy_id not in already:
                save.append(copy)
        if save:
            uow.sessions.batch_save_sessions(save)

    def _rows(self, s: Session, kind: str, batch: list[dict[str, Any]]) -> None:
        table, key = ROW_KINDS[kind]
        rows = [self._remapped(kind, _typed(table, _decode(table, data))) for data in batch]
        stored = _stored(s, table, key, [row[key] for row in rows if row.get(key) is not None])
        # An image is its file: one whose id is new but whose filename is stored is that stored row.
        by_file = (
            _stored(s, table, "filename", [row["filename"] for row in rows if "filename" in row])
            if kind == "image"
            else {}
        )
        taken_ids = (
            set(_stored(s, table, "id", [row["id"] for row in rows if "id" in row])) if key != "id" else set()
        )
        writes: list[dict[str, Any]] = []
        for row in rows:
            old = stored.get(row.get(key)) or by_file.get(row.get("filename"))
            if old is None:
                clash = key != "id" and row.get("id") in taken_ids  # a new prompt whose id another one has
                writes.append({**row, "id": self._fresh_id(s, kind, table)} if clash else row)
                self.report.add(kind, "created")
            elif all(old.get(column) == value for column, value in row.items() if column != "id"):
                self.report.add(kind, "unchanged")
            elif self.mode is ImportMode.REFUSE:
                self.conflicts.append(f"{kind.replace('_', ' ')} {row.get(key)!r}")
            elif self.mode is ImportMode.REPLACE:
                writes.append({**row, "id": old["id"]})  # the stored row's id is kept
                self.report.add(kind, "replaced")
            else:
                merged = self._merge(s, kind, table, row, old)
                if merged is not None:
                    writes.append(merged)
                self.report.add(kind, "merged")
        _upsert(s, table, "id", writes)

    def _remapped(self, kind: str, row: dict[str, Any]) -> dict[str, Any]:
        if kind != "image":
            return row
        return {
            column: self.new_ids[IMAGE_RUNS[column]].get(value, value) if column in IMAGE_RUNS else value
            for column, value in row.items()
        }

    def _merge(
        self, s: Session, kind: str, table: Table, row: dict[str, Any], old: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The row to write for a conflict under ``merge``, or None when the stored row stays as it is."""
        if kind == "library_prompt":
            # One prompt, used in both places: uses add up, the use period widens, stored details win.
            return {
                **{column: value for column, value in row.items() if old.get(column) is None},
                **{column: value for column, value in old.items() if value is not None},
                "total_uses": old["total_uses"] + row.get("total_uses", 1),
                "first_used_at": min(old["first_used_at"], row.get("first_used_at", old["first_used_at"])),
                "last_used_at": max(old["last_used_at"], row.get("last_used_at", old["last_used_at"])),
            }
        if kind == "image" and old.get("filename") == row.get("filename"):
            return None  # one row per image file: the stored row for this file stays
        # Runs (and images of other files): kept beside the stored one under a fresh id; images follow
        # a merged run.
        fresh = self._fresh_id(s, kind, table)
        if kind in self.new_ids:
            self.new_ids[kind][row["id"]] = fresh
        return {**row, "id": fresh}


def _stored_graphs(uow: UnitOfWork, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The stored graphs among ``ids``, each as an export writes it."""
    return {
        graph.id: graph.as_create().model_dump(mode="json", exclude_none=True)
        for graph in uow.sessions.load_sessions(ids)
    }


def _stored(s: Session, table: Table, column: str, values: list[Any]) -> dict[Any, dict[str, Any]]:
    """Stored rows of ``table`` whose ``column`` is one of ``values``, by that value."""
    if not values:
        return {}
    found = s.execute(select(table).where(table.c[column].in_(values))).mappings()
    return {row[column]: dict(row) for row in found}


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
