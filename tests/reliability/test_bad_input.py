"""Reliability: bad input and security.

Every public entry point that takes data is fed arbitrary JSON-like values (whole, or a valid input with
one field mutated), SQL injection payloads, path-like ids and hostile images. The contract checked:

* a call succeeds or raises an ``edi_storage`` error (``StorageError``): never a ``TypeError``,
  ``KeyError``, ``ValueError``, ``RecursionError``, SQLAlchemy or pydantic error;
* bad input is reported as the caller's fault (``InvalidInput``, ``NotFound``, ``Conflict``), never as a
  broken database (``DatabaseUnavailable``, ``Busy``, ``ReadOnly``, ``StorageFull``, ``SchemaError``);
* every ``FieldError`` of an ``InvalidInput`` names a field;
* a rejected call wrote nothing: every table's rows (counted and digested, the audit trail included) and
  the state files are as they were;
* injected SQL is bound as data or rejected, the schema never changes, ids are never paths.

The default run tries a few dozen examples per entry point; ``-m reliability`` runs 500 each.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import inspect, make_url, text

from edi_storage.errors import (
    Busy,
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    NotFound,
    ReadOnly,
    SchemaError,
    StorageError,
    StorageFull,
)
from edi_storage.models.library import prompt_hash
from edi_storage.ops import backups
from edi_storage.ops.maintenance import Maintenance
from edi_storage.ops.transfer import ExportWriter, export_all, import_all
from edi_storage.state import SessionState, StateFileError, StateStore, read_state
from edi_storage.storage import Storage
from edi_storage.testing import (
    EntityInFactory,
    FeedbackInFactory,
    ImageCreateFactory,
    PromptInFactory,
    SessionCreateFactory,
    ValidationInFactory,
    seed,
)
from edi_storage.testing.examples import reference_session
from edi_storage.thumbnails import MAX_PIXELS

DEFAULT_EXAMPLES = 60
THOROUGH_EXAMPLES = 500
MEMORY_LIMIT = 100 * 1024 * 1024  # bytes a hostile image may cost

# Errors that tell the caller the database is broken or unreachable: bad input must never produce them.
MISLEADING = (Busy, DatabaseUnavailable, ReadOnly, StorageFull, SchemaError)


# -- arbitrary JSON-like values --------------------------------------------------------------------
TEXT = st.text(st.characters(codec="utf-8"), max_size=24)  # NUL included, no surrogates
NASTY_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "\\",
        "'",
        '"',
        "%",
        "_",
        "--",
        "NaN",
        "null",
        "true",
        "0",
        "-1",
        "1e999",
        "9" * 40,
        "\u202e",
        "\ufeff",
        "😀",
        "x" * 300,
        "yesterday",
        "2026-01-01",
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00+05:00",
    ]
)
STRINGS = st.one_of(TEXT, NASTY_TEXT)
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),  # NaN and infinities included
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, 2**31, 2**63, -(2**63) - 1]),
)
LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, STRINGS)
JSON: st.SearchStrategy[Any] = st.recursive(
    LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(STRINGS, inner, max_size=4)),
    max_leaves=12,
)


def valid_or_any(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Two draws in three from ``valid`` (so calls get past validation), one arbitrary."""
    return st.one_of(valid, valid, JSON)


def node_paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from node_paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from node_paths(child, (*prefix, index))


def node_at(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


@st.composite
def mutated(draw: st.DrawFn, bases: Sequence[Any]) -> Any:
    """A valid input with ONE field replaced by an arbitrary value, deleted, or joined by a new one."""
    value = copy.deepcopy(draw(st.sampled_from(bases)))
    where = draw(st.sampled_from(list(node_paths(value))))
    operation = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
    new = draw(JSON)
    if not where:
        return new if operation == "replace" else value
    parent, key = node_at(value, where[:-1]), where[-1]
    if operation == "replace":
        parent[key] = new
    elif operation == "delete":
        del parent[key]
    else:
        target = parent[key]
        if isinstance(target, dict):
            target[draw(STRINGS)] = new
        elif isinstance(target, list):
            target.append(new)
        else:
            parent[key] = new
    return value


def whole_or_mutated(bases: Sequence[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(JSON, mutated(bases), mutated(bases), st.sampled_from(bases))


@functools.cache
def valid_bases() -> dict[str, list[Any]]:
    """Valid inputs from the shipped factories, as the JSON a client would send (deterministic)."""
    seed(20261124)

    def dumps(factory: Any, n: int) -> list[Any]:
        return [factory.build().model_dump(mode="json") for _ in range(n)]

    return {
        "session": [*dumps(SessionCreateFactory, 3), reference_session()],
        "prompt": dumps(PromptInFactory, 3),
        "entity": dumps(EntityInFactory, 3),
        "validation": dumps(ValidationInFactory, 3),
        "feedback": dumps(FeedbackInFactory, 3),
        "image": [
            ImageCreateFactory.build(filename=f"fuzz-{i}.png").model_dump(mode="json") for i in range(3)
        ],
        "state": [valid_state("state-1"), valid_state("../../state-2")],
    }


def valid_state(session_id: str) -> dict[str, Any]:
    return SessionState.model_validate(
        {
            "session_id": session_id,
            "current_stage": "refinement",
            "image_path": "/images/lake.jpg",
            "naive_prompt": "make the sky dramatic",
            "scene_analysis": {
                "entities": [{"id": "sky_0", "label": "sky", "confidence": 0.93, "color_hex": "#87CEEB"}],
                "spatial_layout": "sky above water",
            },
            "intent": {"target": "sky", "edit": "dramatic"},
            "prompts": {"iteration_0": {"positive": "storm clouds", "negative": "sunny"}},
            "validation": {"score": 0.8, "delta": {"sky": 0.4}},
        }
    ).model_dump(mode="json")


def png(width: int = 16, height: int = 16, colour: tuple[int, int, int] = (30, 90, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


# -- what the database holds -----------------------------------------------------------------------
def table_names(storage: Storage) -> list[str]:
    with storage.engine.connect() as conn:
        names = sorted(inspect(conn).get_table_names())
        conn.rollback()
    return names


def snapshot(storage: Storage, names: Sequence[str] | None = None) -> dict[str, tuple[int, str]]:
    """Every table (found by inspection: the audit trail, FTS tables and all) with its row count and a
    digest of its rows, so that an UPDATE shows as well as an INSERT or DELETE."""
    out: dict[str, tuple[int, str]] = {}
    with storage.engine.connect() as conn:
        for name in names if names is not None else table_names(storage):
            rows = conn.exec_driver_sql(f'SELECT * FROM "{name}"').all()
            canonical = "\n".join(sorted(repr(tuple(row)) for row in rows))
            digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
            out[name] = (len(rows), digest)
        conn.rollback()
    return out


def row_counts(storage: Storage) -> dict[str, int]:
    return {name: count for name, (count, _) in snapshot(storage).items()}


def schema(storage: Storage) -> list[tuple[Any, ...]]:
    """The catalogue (sqlite_master, or information_schema and triggers) and every table's columns."""
    with storage.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            catalogue = conn.execute(
                text("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
            ).all()
        else:
            catalogue = conn.execute(
                text(
                    "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
                    "WHERE table_schema = current_schema() ORDER BY 1, 2"
                )
            ).all()
            catalogue = [
                *catalogue,
                *conn.execute(
                    text(
                        "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1"
                    )
                ).all(),
            ]
        inspector = inspect(conn)
        columns = [
            (table, column["name"], str(column["type"]))
            for table in sorted(inspector.get_table_names())
            for column in inspector.get_columns(table)
        ]
        conn.rollback()
    return [tuple(row) for row in catalogue] + columns


def directory_digest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def backend(storage: Storage) -> str:
    return storage.engine.dialect.name


# -- one call, judged ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    entry: str
    run: Callable[[Storage], object]
    shown: str
    prepare: Callable[[], None] | None = None  # the harness's own writes (a file to import), not judged


def call(entry: str, run: Callable[[Storage], object], *shown: object, **shown_kw: object) -> Call:
    return Call(entry, run, f"{entry}{shown!r}{shown_kw!r}"[:400])


@dataclass
class Tally:
    """What the fuzzing of one entry point saw."""

    entry: str
    backend: str
    tried: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    untyped: list[str] = field(default_factory=list)
    misclassified: list[str] = field(default_factory=list)
    nameless: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    unclassified: list[str] = field(default_factory=list)  # plain StorageError: typed, but says little

    def summary(self) -> str:
        rejected = ", ".join(f"{k} {v}" for k, v in sorted(self.rejected.items())) or "none"
        return (
            f"[bad-input] {self.entry} on {self.backend}: {self.tried} examples, {self.accepted} accepted, "
            f"rejected: {rejected}; untyped errors = {len(self.untyped)}, misclassified = "
            f"{len(self.misclassified)}, nameless fields = {len(self.nameless)}, partial writes = "
            f"{len(self.partial)}"
        )

    def problems(self) -> list[str]:
        found = [
            *(f"untyped error: {u}" for u in self.untyped),
            *(f"misclassified: {m}" for m in self.misclassified),
            *(f"FieldError without a field: {n}" for n in self.nameless),
            *(f"rejected but wrote: {p}" for p in self.partial),
        ]
        return list(dict.fromkeys(found))  # the same leak met twice is listed once


class World:
    """The database under test, rows to refer to, and the state directory; knows how to snapshot."""

    def __init__(self, storage: Storage, tmp: Path) -> None:
        self.storage = storage
        self.tmp = tmp
        self.store = StateStore(tmp / "states")
        self.session_id = storage.sessions.save_session(reference_session(id="fuzz-session"))
        self.training_id = storage.gallery.start_training("lora", "models/lora.safetensors").id
        self.creation_id = storage.gallery.start_creation("landscapes").id
        self.image_id = storage.gallery.add_image(
            ImageCreateFactory.build(filename="fuzz-base.png", creation_session_id=self.creation_id)
        ).id
        self.prompt_id = storage.library.record_prompt("storm clouds over a lake", image_data=png()).id
        self.store.save(SessionState.model_validate(valid_state("fuzz-update")))
        exported = io.StringIO()
        export_all(storage, exported)
        self.records: list[dict[str, Any]] = [json.loads(line) for line in exported.getvalue().splitlines()]
        self.tables = table_names(storage)

    def snapshot(self) -> tuple[dict[str, tuple[int, str]], dict[str, str]]:
        return snapshot(self.storage, self.tables), directory_digest(self.store.directory)


def attempt(world: World, tally: Tally, call_: Call, before: Any) -> Any:
    """Run one call; record how it ended. Returns the snapshot to compare the next rejection with."""
    if call_.prepare is not None:
        call_.prepare()
        before = world.snapshot()
    tally.tried += 1
    try:
        call_.run(world.storage)
    except StorageError as error:
        tally.rejected[type(error).__name__] += 1
        if isinstance(error, InvalidInput) and (
            not error.errors or any(not (isinstance(e.field, str) and e.field.strip()) for e in error.errors)
        ):
            tally.nameless.append(f"{error!r} <- {call_.shown}")
        if type(error) is StorageError:
            tally.unclassified.append(f"{str(error)[:160]} <- {call_.shown[:200]}")
        if isinstance(error, MISLEADING):
            tally.misclassified.append(f"{type(error).__name__}: {str(error)[:200]} <- {call_.shown}")
        after = world.snapshot()
        if after != before:
            changed = sorted(name for name in after[0] if after[0][name] != before[0].get(name)) + (
                ["state files"] if after[1] != before[1] else []
            )
            tally.partial.append(f"{type(error).__name__} but {changed} changed <- {call_.shown}")
        return after
    # Anything else escaping is exactly what this suite looks for.
    except Exception as error:  # noqa: BLE001
        tally.untyped.append(
            f"{type(error).__module__}.{type(error).__qualname__}: {str(error)[:200]} <- {call_.shown}"
        )
        return world.snapshot()
    tally.accepted += 1
    return world.snapshot()


# -- the entry points ------------------------------------------------------------------------------
STATUSES = st.sampled_from(["in_progress", "completed", "failed", "COMPLETED", "done"])
ORDERS = st.sampled_from(
    ["created_at desc", "created_at asc", "final_alignment_score desc", "Created_At  DESC", "id; --"]
)
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=14))])
DATETIMES = st.datetimes(timezones=st.none() | ZONES)  # the whole range: year 1 to 9999, any offset
WHEN = st.one_of(st.none(), DATETIMES, DATETIMES.map(datetime.isoformat))
SCORES = st.one_of(st.none(), st.floats(0, 1))


def entry_points(world: World) -> dict[str, st.SearchStrategy[Call]]:
    b = valid_bases()
    session_ids = st.one_of(
        st.just(world.session_id), st.sampled_from([s["id"] for s in b["session"]]), STRINGS
    )
    image_ids = st.one_of(st.just(world.image_id), st.integers())
    training_ids = st.one_of(st.just(world.training_id), st.integers())
    creation_ids = st.one_of(st.just(world.creation_id), st.integers())
    prompt_ids = st.one_of(st.just(world.prompt_id), st.integers())

    def children(kind: str, method: str, many: bool = False) -> st.SearchStrategy[Call]:
        data = (
            st.one_of(JSON, st.lists(whole_or_mutated(b[kind]), max_size=3))
            if many
            else whole_or_mutated(b[kind])
        )
        return st.builds(
            lambda sid, d: call(f"sessions.{method}", lambda s: getattr(s.sessions, method)(sid, d), sid, d),
            session_ids,
            data,
        )

    def state_file(content: str | bytes) -> Call:
        path = world.store.path_for("fuzz-file")

        def write() -> None:
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")

        def load(_: Storage) -> object:
            loaded = world.store.load("fuzz-file")
            world.store.list()
            round_trip(world.store, loaded)  # what load() accepts, save() writes back readable
            return loaded

        return Call("state.StateStore.load", load, repr(content)[:400], prepare=write)

    def import_file(content: str | bytes) -> Call:
        path = world.tmp / "fuzz.jsonl"

        def write() -> None:
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")

        return Call("transfer.import_all", lambda s: import_all(s, path), repr(content)[:400], prepare=write)

    record = st.sampled_from(world.records)
    lines = st.one_of(
        STRINGS,
        JSON.map(json.dumps),
        st.builds(
            lambda kind, data: json.dumps({"kind": kind, "data": data}),
            st.sampled_from(["session", "image", "library_prompt", "training_run", "creation_run", "x"]),
            JSON,
        ),
        mutated(world.records).map(json.dumps),
        record.map(json.dumps),
    )
    state_content = st.one_of(
        st.binary(max_size=64),
        STRINGS,
        JSON.map(json.dumps),
        mutated(b["state"]).map(json.dumps),
        st.sampled_from(b["state"]).map(json.dumps),
    )

    return {
        "sessions.save_session": whole_or_mutated(b["session"]).map(
            lambda d: call("sessions.save_session", lambda s: s.sessions.save_session(d), d)
        ),
        "sessions.batch_save_sessions": st.one_of(
            JSON, st.lists(whole_or_mutated(b["session"]), max_size=4)
        ).map(lambda d: call("sessions.batch_save_sessions", lambda s: s.sessions.batch_save_sessions(d), d)),
        "sessions.add_prompt_iteration": children("prompt", "add_prompt_iteration"),
        "sessions.add_entities": children("entity", "add_entities", many=True),
        "sessions.record_validation": children("validation", "record_validation"),
        "sessions.record_feedback": children("feedback", "record_feedback"),
        "sessions.update_session_status": st.builds(
            lambda sid, status, score: call(
                "sessions.update_session_status",
                lambda s: s.sessions.update_session_status(sid, status, score),
                sid,
                status,
                score,
            ),
            session_ids,
            valid_or_any(STATUSES),
            valid_or_any(SCORES),
        ),
        "sessions.query_history": st.fixed_dictionaries(
            {
                "limit": valid_or_any(st.integers(1, 200)),
                "offset": valid_or_any(st.integers(0, 50)),
                "status_filter": valid_or_any(st.none() | STATUSES),
                "date_from": valid_or_any(WHEN),
                "date_to": valid_or_any(WHEN),
                "min_score": valid_or_any(SCORES),
                "search_term": valid_or_any(st.none() | STRINGS),
                "order_by": valid_or_any(ORDERS),
            }
        ).map(lambda kw: call("sessions.query_history", lambda s: s.sessions.query_history(**kw), **kw)),
        "sessions.reads": st.one_of(
            session_ids.map(lambda i: call("sessions.load_session", lambda s: s.sessions.load_session(i), i)),
            session_ids.map(
                lambda i: call("sessions.state_from_session", lambda s: s.sessions.state_from_session(i), i)
            ),
            st.builds(
                lambda term, limit: call(
                    "sessions.search_sessions", lambda s: s.sessions.search_sessions(term, limit), term, limit
                ),
                valid_or_any(STRINGS),
                valid_or_any(st.integers(1, 50)),
            ),
            valid_or_any(STATUSES).map(
                lambda f: call("sessions.get_session_count", lambda s: s.sessions.get_session_count(f), f)
            ),
            st.builds(
                lambda score, limit: call(
                    "sessions.get_successful_sessions",
                    lambda s: s.sessions.get_successful_sessions(score, limit),
                    score,
                    limit,
                ),
                valid_or_any(st.floats(0, 1)),
                valid_or_any(st.integers(1, 50)),
            ),
        ),
        "sessions.save_from_state": whole_or_mutated(b["state"]).map(
            lambda d: call("sessions.save_from_state", lambda s: s.sessions.save_from_state(d), d)
        ),
        "transfer.import_all": st.one_of(
            st.lists(lines, max_size=6).map("\n".join), st.binary(max_size=200)
        ).map(import_file),
        "state.read_state": whole_or_mutated(b["state"]).map(
            lambda d: call("state.read_state", lambda _: read_state(d), d)
        ),
        "state.StateStore.load": state_content.map(state_file),
        "state.StateStore.update": st.dictionaries(
            # session_id is update()'s own parameter: passing it twice is a Python error of the caller
            (st.sampled_from(list(SessionState.model_fields)) | STRINGS).filter(lambda k: k != "session_id"),
            JSON,
            max_size=3,
        ).map(
            lambda changes: call(
                "state.StateStore.update",
                lambda _: round_trip(world.store, world.store.update("fuzz-update", **changes), saved=True),
                changes,
            )
        ),
        "library.record_prompt": st.builds(
            lambda prompt, model, path, data: call(
                "library.record_prompt",
                lambda s: s.library.record_prompt(prompt, model, path, data),
                prompt,
                model,
                path,
                data,
            ),
            valid_or_any(STRINGS),
            valid_or_any(st.none() | STRINGS),
            st.one_of(st.none(), st.none(), STRINGS, JSON),
            st.one_of(st.none(), st.just(png()), st.binary(max_size=64), JSON),
        ),
        "library.search": st.builds(
            lambda query, model, limit, offset: call(
                "library.search",
                lambda s: s.library.search(query, model, limit, offset),
                query,
                model,
                limit,
                offset,
            ),
            valid_or_any(st.sampled_from(["storm", "lake clouds"]) | STRINGS),
            valid_or_any(st.none() | STRINGS),
            valid_or_any(st.integers(1, 100)),
            valid_or_any(st.integers(0, 100)),
        ),
        "library.other": st.one_of(
            st.builds(
                lambda limit, model: call(
                    "library.popular", lambda s: s.library.popular(limit, model), limit, model
                ),
                valid_or_any(st.integers(1, 100)),
                valid_or_any(st.none() | STRINGS),
            ),
            st.builds(
                lambda limit, cursor: call(
                    "library.browse", lambda s: s.library.browse(limit, cursor), limit, cursor
                ),
                valid_or_any(st.integers(1, 100)),
                valid_or_any(st.none() | STRINGS),
            ),
            st.builds(
                lambda days, bare: call(
                    "library.cleanup", lambda s: s.library.cleanup(days, bare), days, bare
                ),
                valid_or_any(st.none() | st.floats(0, 1e4)),
                valid_or_any(st.booleans()),
            ),
            prompt_ids.map(lambda i: call("library.get", lambda s: s.library.get(i), i)),
            prompt_ids.map(lambda i: call("library.get_thumbnail", lambda s: s.library.get_thumbnail(i), i)),
        ),
        "gallery.add_image": whole_or_mutated(b["image"]).map(
            lambda d: call("gallery.add_image", lambda s: s.gallery.add_image(d), d)
        ),
        "gallery.images": st.one_of(
            st.builds(
                lambda i, status: call("gallery.curate", lambda s: s.gallery.curate(i, status), i, status),
                image_ids,
                valid_or_any(st.sampled_from(["pending", "curated", "rejected", "CURATED"])),
            ),
            st.builds(
                lambda i, tags, replace: call(
                    "gallery.tag", lambda s: s.gallery.tag(i, tags, replace=replace), i, tags, replace
                ),
                image_ids,
                valid_or_any(st.lists(STRINGS, max_size=3)),
                st.booleans(),
            ),
            st.builds(
                lambda i, on: call("gallery.feature", lambda s: s.gallery.feature(i, on), i, on),
                image_ids,
                valid_or_any(st.booleans()),
            ),
            st.builds(
                lambda limit, status: call(
                    "gallery.top", lambda s: s.gallery.top(limit, status), limit, status
                ),
                valid_or_any(st.integers(1, 100)),
                valid_or_any(st.sampled_from(["pending", "curated", "rejected"])),
            ),
        ),
        "gallery.runs": st.one_of(
            st.builds(
                lambda name, path, config, size: call(
                    "gallery.start_training",
                    lambda s: s.gallery.start_training(name, path, config, size),
                    name,
                    path,
                    config,
                    size,
                ),
                valid_or_any(STRINGS),
                valid_or_any(STRINGS),
                valid_or_any(st.none() | st.dictionaries(STRINGS, JSON, max_size=3)),
                valid_or_any(st.none() | st.integers(0, 10**6)),
            ),
            st.builds(
                lambda i, loss, seconds, metrics: call(
                    "gallery.complete_training",
                    lambda s: s.gallery.complete_training(i, loss, seconds, metrics),
                    i,
                    loss,
                    seconds,
                    metrics,
                ),
                training_ids,
                valid_or_any(st.none() | st.floats(0, 10)),
                valid_or_any(st.none() | st.floats(0, 1e5)),
                valid_or_any(st.none() | st.dictionaries(STRINGS, JSON, max_size=3)),
            ),
            st.builds(
                lambda i, reason, metrics: call(
                    "gallery.fail_training",
                    lambda s: s.gallery.fail_training(i, reason, metrics),
                    i,
                    reason,
                    metrics,
                ),
                training_ids,
                valid_or_any(STRINGS),
                valid_or_any(st.none() | st.dictionaries(STRINGS, JSON, max_size=3)),
            ),
            valid_or_any(st.none() | STRINGS).map(
                lambda theme: call("gallery.start_creation", lambda s: s.gallery.start_creation(theme), theme)
            ),
            creation_ids.map(
                lambda i: call("gallery.complete_creation", lambda s: s.gallery.complete_creation(i), i)
            ),
        ),
        "audit.get_audit_trail": st.fixed_dictionaries(
            {
                "table_name": valid_or_any(st.none() | st.sampled_from(["sessions", "prompts", "audit_log"])),
                "record_id": valid_or_any(st.none() | session_ids),
                "operation": valid_or_any(st.none() | st.sampled_from(["INSERT", "UPDATE", "delete"])),
                "since": valid_or_any(WHEN),
                "limit": valid_or_any(st.integers(1, 100)),
            }
        ).map(lambda kw: call("audit.get_audit_trail", lambda s: s.audit.get_audit_trail(**kw), **kw)),
        "storage.unit_of_work(actor)": STRINGS.map(
            lambda actor: call("storage.unit_of_work", lambda s: _act_as(s, actor, world.session_id), actor)
        ),
    }


class RoundTripBroken(Exception):
    """A write was accepted but does not read back: counted with the untyped errors (a broken contract)."""


def round_trip(store: StateStore, state: SessionState, *, saved: bool = False) -> SessionState:
    """``state`` saved (unless it already was) and loaded again: equal but for the time stamp."""
    path = store.path_for(state.session_id) if saved else store.save(state)
    try:
        again = store.load(state.session_id)
    except StorageError as error:
        raise RoundTripBroken(f"{path.name} was written but load() refuses it: {error}") from error
    if again.model_copy(update={"last_updated": None}) != state.model_copy(update={"last_updated": None}):
        raise RoundTripBroken(f"{path.name} loads back different: {again!r} != {state!r}")
    return again


def _act_as(storage: Storage, actor: str, session_id: str) -> None:
    with storage.unit_of_work(actor=actor) as uow:
        uow.sessions.update_session_status(session_id, "completed", 0.9)


ENTRY_POINTS = [
    "sessions.save_session",
    "sessions.batch_save_sessions",
    "sessions.add_prompt_iteration",
    "sessions.add_entities",
    "sessions.record_validation",
    "sessions.record_feedback",
    "sessions.update_session_status",
    "sessions.query_history",
    "sessions.reads",
    "sessions.save_from_state",
    "transfer.import_all",
    "state.read_state",
    "state.StateStore.load",
    "state.StateStore.update",
    "library.record_prompt",
    "library.search",
    "library.other",
    "gallery.add_image",
    "gallery.images",
    "gallery.runs",
    "audit.get_audit_trail",
    "storage.unit_of_work(actor)",
]


def fuzz(storage: Storage, tmp_path: Path, entry: str, examples: int) -> None:
    world = World(storage, tmp_path)
    strategy = entry_points(world)[entry]
    tally = Tally(entry, backend(storage))
    last = [world.snapshot()]

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,  # examples depend on this run's rows; replaying another run's would mislead
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(call_=strategy)
    def one(call_: Call) -> None:
        last[0] = attempt(world, tally, call_, last[0])

    one()
    print(tally.summary())
    for sample in dict.fromkeys(tally.unclassified):
        print(f"    unclassified: {sample}")
    assert tally.tried >= min(examples, 20), tally.summary()
    problems = tally.problems()
    assert not problems, f"{tally.summary()}\n" + "\n".join(problems[:25])


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_fuzzed_input_fails_typed_and_writes_nothing(storage: Storage, tmp_path: Path, entry: str) -> None:
    fuzz(storage, tmp_path, entry, DEFAULT_EXAMPLES)


@pytest.mark.reliability
@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_fuzzed_input_fails_typed_and_writes_nothing_thoroughly(
    storage: Storage, tmp_path: Path, entry: str
) -> None:
    fuzz(storage, tmp_path, entry, THOROUGH_EXAMPLES)


def test_the_judge_catches_what_it_is_meant_to(storage: Storage, tmp_path: Path) -> None:
    """The fuzzing harness itself can fail: a leak, a misleading error, a nameless field and a write
    before a rejection are each recorded."""
    world = World(storage, tmp_path)
    tally = Tally("judge", backend(storage))
    before = world.snapshot()

    def leak(_: Storage) -> None:
        raise KeyError("x")

    def misleading(_: Storage) -> None:
        raise DatabaseUnavailable("bad input reported as a broken database")

    def nameless(_: Storage) -> None:
        raise InvalidInput.single("", "no field", 1)

    def writes_then_rejects(s: Storage) -> None:
        s.sessions.save_session(reference_session(id="written"))
        raise InvalidInput.single("id", "rejected after writing", "written")

    for run in (leak, misleading, nameless, writes_then_rejects):
        before = attempt(world, tally, Call("judge", run, run.__name__), before)
    assert [len(tally.untyped), len(tally.misclassified), len(tally.nameless), len(tally.partial)] == [
        1,
        1,
        1,
        1,
    ]


# -- targeted inputs the fuzzing reaches rarely ----------------------------------------------------
def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def test_extreme_values_are_invalid_input_naming_the_field(storage: Storage, tmp_path: Path) -> None:
    """Values at the edge of what Python, JSON and the databases can hold: each is InvalidInput that names
    the field (never a RecursionError, OverflowError or a 'database is broken' error), nothing written."""
    world = World(storage, tmp_path)
    cases: dict[str, tuple[Callable[[Storage], object], str]] = {
        "metadata nested 5000 deep": (
            lambda s: s.sessions.save_session(reference_session(id="deep", session_metadata=nested(5000))),
            "session_metadata",
        ),
        "NaN inside metadata": (
            lambda s: s.sessions.save_session(reference_session(id="nan", session_metadata={"x": math.nan})),
            "session_metadata",
        ),
        "infinity inside generation parameters": (
            lambda s: s.sessions.add_prompt_iteration(
                world.session_id,
                {"iteration": 5, "positive_prompt": "x", "generation_parameters": {"cfg": math.inf}},
            ),
            "generation_parameters",
        ),
        "NUL inside metadata": (
            lambda s: s.sessions.save_session(reference_session(id="nul", session_metadata={"k": "a\x00b"})),
            "session_metadata",
        ),
        "NUL in a metadata key": (
            lambda s: s.gallery.start_training("n", "p", {"a\x00": 1}),
            "config",
        ),
        "NUL in a bbox key": (
            lambda s: s.sessions.add_entities(
                world.session_id,
                [{"entity_id": "e", "label": "l", "confidence": 0.5, "bbox": {"x\x00": 1.0}}],
            ),
            "bbox",
        ),
        "iteration beyond 64 bits": (
            lambda s: s.sessions.add_prompt_iteration(
                world.session_id, {"iteration": 2**64, "positive_prompt": "x"}
            ),
            "iteration",
        ),
        "seed beyond 64 bits": (
            lambda s: s.gallery.add_image(
                {"filename": "big.png", "prompt": "p", "model_id": "m", "seed": 2**70}
            ),
            "seed",
        ),
        "offset beyond 64 bits": (lambda s: s.sessions.query_history(offset=2**64), "offset"),
        "a time that overflows when moved to UTC": (
            lambda s: s.sessions.query_history(date_to="9999-12-31T23:59:59-05:00"),
            "date_to",
        ),
        "created_at before year 1 in UTC": (
            lambda s: s.sessions.save_session(
                reference_session(id="old", created_at="0001-01-01T00:00:00+05:00")
            ),
            "created_at",
        ),
        "search term of a million characters": (
            lambda s: s.sessions.query_history(search_term="x" * 1_000_000),
            "search_term",
        ),
        "state with entities that are not a list": (
            lambda s: s.sessions.save_from_state({**valid_state("st"), "scene_analysis": {"entities": 5}}),
            "scene_analysis",
        ),
        "state with a prompt without text": (
            lambda s: s.sessions.save_from_state({**valid_state("st"), "prompts": {"final": {}}}),
            "prompts",
        ),
        "tags given as one string": (lambda s: s.gallery.tag(world.image_id, "landscape"), "tags"),
        "an image id beyond 64 bits": (lambda s: s.gallery.get_image(2**70), "id"),
        "a row id beyond 32 bits": (lambda s: s.sessions.delete_child("prompt", 2**40), "id"),
        # Parameters no schema validates reach the driver; its refusal is translated (the field unknown).
        "a prompt id beyond 64 bits": (lambda s: s.library.delete(2**70), "input"),
        "a lone surrogate as a session id": (lambda s: s.sessions.delete_session("\ud800"), "input"),
        "featured given as 'yes'": (lambda s: s.gallery.feature(world.image_id, "yes"), "input"),  # type: ignore[arg-type]
        "cleanup older than NaN days": (lambda s: s.library.cleanup(math.nan), "older_than_days"),
        "cleanup older than 'a week'": (lambda s: s.library.cleanup("a week"), "older_than_days"),  # type: ignore[arg-type]
    }
    before = world.snapshot()
    wrong: list[str] = []
    for name, (run, field_) in cases.items():
        try:
            run(storage)
        except InvalidInput as error:
            fields = [e.field for e in error.errors]
            if not any(field_ in f for f in fields):
                wrong.append(f"{name}: InvalidInput names {fields}, not {field_!r}")
        except Exception as error:  # noqa: BLE001 - anything else is the finding
            wrong.append(f"{name}: {type(error).__module__}.{type(error).__name__}: {str(error)[:150]}")
        else:
            wrong.append(f"{name}: accepted")
        if world.snapshot() != before:
            wrong.append(f"{name}: wrote before rejecting")
            before = world.snapshot()
    assert not wrong, "\n".join(wrong)
    # Further back than a datetime reaches is not an error: nothing was used that long ago.
    assert storage.library.cleanup(4e8) == 0
    assert world.snapshot() == before


def test_deeply_nested_files_are_refused_not_crashed_on(storage: Storage, tmp_path: Path) -> None:
    """A state file or an import line nested 100 000 deep (json's recursion limit) is a typed error."""
    store = StateStore(tmp_path / "states")
    store.path_for("deep").write_text("[" * 100_000, encoding="utf-8")
    with pytest.raises(StateFileError, match=r"deep|JSON|nest"):
        store.load("deep")
    dump = tmp_path / "deep.jsonl"
    dump.write_text('{"kind": "session", "data": ' + "[" * 100_000 + "\n", encoding="utf-8")
    before = snapshot(storage)
    with pytest.raises(InvalidInput) as caught:
        import_all(storage, dump)
    assert caught.value.errors[0].field.startswith("line 1")
    dump.write_bytes(b'{"kind": "session", "data": {}}\n\xff\xfe not utf-8\n')
    with pytest.raises(InvalidInput):
        import_all(storage, dump)
    assert snapshot(storage) == before


def test_an_import_is_all_or_nothing(storage: Storage, tmp_path: Path) -> None:
    """Records that pass validation but that only the database can refuse (an image of a creation run
    that does not exist) are found by the write pass: the rows written before them must not stay."""
    world = World(storage, tmp_path)
    before = snapshot(storage)
    taken = next(r["data"] for r in world.records if r["kind"] == "image")
    lines: list[tuple[str, dict[str, Any]]] = [
        ("training_run", {"id": 9001, "name": "new run", "model_path": "m.safetensors"}),
        # a new file, of a run that does not exist: the foreign key refuses it
        ("image", {**taken, "id": 9002, "filename": "new-9002.png", "creation_session_id": 424242}),
    ]
    dump = tmp_path / "conflict.jsonl"
    with dump.open("w", encoding="utf-8") as handle:  # a whole file, trailer included
        writer = ExportWriter(handle)
        for kind, data in lines:
            writer.write(kind, data)
        writer.close()
    with pytest.raises(Conflict):
        import_all(storage, dump)
    assert snapshot(storage) == before


# -- SQL injection ---------------------------------------------------------------------------------
def fullwidth(text_: str) -> str:
    """ASCII letters as their fullwidth forms (NFKC folds them back: the library's identity does)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalpha() else c for c in text_)


PAYLOADS = [
    "'; DROP TABLE sessions; --",
    '" OR 1=1 --',
    "x' UNION SELECT sql FROM sqlite_master --",
    "x' UNION SELECT table_name FROM information_schema.tables --",
    "%' OR '1'='1",
    "1); DELETE FROM prompts; --",
    "' OR ''='",
    "admin'--",
    "1; SELECT pg_sleep(5); --",
    "$$; DROP TABLE sessions; $$",
    "Robert'); DROP TABLE user_feedback;--",
    "' || (SELECT group_concat(name) FROM sqlite_master) || '",
    "\\",
    "\\'",
    "_%",
    "%",
    "_",
    "*",
    '"',
    "NEAR(a b)",
    "a OR b",
    "col:term",
    "^x",
    "a\x00b",
    "\x00",
    "\ud800",  # a lone surrogate: no encoding can send it
    "x" * 100_000,
    "y" * 256,
    "   ",
    "\u202eevil",
    fullwidth("select * from sessions"),
    "😀",
    "../../etc/passwd",
]


def storable(value: str) -> bool:
    """Can be a session id: 1 to 255 characters, no NUL, no lone surrogate."""
    return 0 < len(value) <= 255 and "\x00" not in value and not re.search("[\ud800-\udfff]", value)


def words(value: str) -> list[str]:
    return [w.casefold() for w in re.findall(r"[^\W_]+", value)]


Check = tuple[str, Callable[[], Any], Callable[[Any], bool]]
REJECTED: Callable[[Any], bool] = lambda _: False  # noqa: E731 - succeeding at all is wrong


def read_checks(
    storage: Storage, p: str, sessions: dict[str, Any], stored: list[str], image_id: int
) -> list[Check]:
    """Every string parameter of a read, or of a write aimed at a row that does not exist, given ``p``:
    (parameter, call, what a success must satisfy to show ``p`` was bound as data)."""
    missing = "nope:" + p
    is_id = p in sessions
    own = p in stored

    def literal(rows: Any) -> bool:
        """Only rows containing ``p`` (case-insensitively), and every row containing it exactly."""
        found = {r.id for r in rows}
        folded = p.casefold()
        may = {i for i, s in sessions.items() if folded in f"{s.naive_prompt}\n{s.image_path}".casefold()}
        must = {i for i, s in sessions.items() if p in s.naive_prompt or p in s.image_path}
        return must <= found <= may

    def model_only(rows: Any) -> bool:
        return all(x.model == p for x in rows) and (len(rows) == 1) == own

    sessions_ = storage.sessions
    return [
        ("load_session(id)", lambda: sessions_.load_session(p),
         lambda r: (r is None and not is_id) or (r is not None and r.id == p)),
        ("load_sessions([id])", lambda: sessions_.load_sessions([p]),
         lambda r: [g.id for g in r] == ([p] if is_id else [])),
        ("state_from_session(id)", lambda: sessions_.state_from_session(p), lambda r: r.session_id == p),
        ("update_session_status(id)", lambda: sessions_.update_session_status(missing, "completed"), REJECTED),
        ("delete_session(id)", lambda: sessions_.delete_session(missing), REJECTED),
        ("add_prompt_iteration(id)",
         lambda: sessions_.add_prompt_iteration(missing, {"iteration": 1, "positive_prompt": "x"}), REJECTED),
        ("add_entities(id)",
         lambda: sessions_.add_entities(missing, [{"entity_id": "e", "label": "l", "confidence": 1}]), REJECTED),
        ("record_validation(id)", lambda: sessions_.record_validation(missing, {"attempt_number": 1}), REJECTED),
        ("record_feedback(id)", lambda: sessions_.record_feedback(missing, {"feedback_type": "accept"}), REJECTED),
        ("query_history(search_term)", lambda: sessions_.query_history(limit=10_000, search_term=p), literal),
        ("search_sessions(term)", lambda: sessions_.search_sessions(p, limit=10_000), literal),
        ("query_history(status_filter)", lambda: sessions_.query_history(status_filter=p), REJECTED),
        ("query_history(order_by)", lambda: sessions_.query_history(order_by=p), REJECTED),
        ("query_history(date_from)", lambda: sessions_.query_history(date_from=p), REJECTED),
        ("query_history(date_to)", lambda: sessions_.query_history(date_to=p), REJECTED),
        ("get_session_count(status_filter)", lambda: sessions_.get_session_count(p), REJECTED),
        ("session_ids(after)", lambda: sessions_.session_ids(after=p), lambda r: set(r) <= set(sessions)),
        ("library.search(query)", lambda: storage.library.search(p, limit=1000),
         lambda r: all(all(w in x.prompt_text.casefold() for w in words(p)) for x in r)),
        ("library.search(model)", lambda: storage.library.search("sunset", model=p, limit=1000), model_only),
        ("library.popular(model)", lambda: storage.library.popular(1000, p), model_only),
        ("library.recent(model)", lambda: storage.library.recent(1000, p), model_only),
        ("library.browse(cursor)", lambda: storage.library.browse(cursor=p), REJECTED),
        ("gallery.curate(status)", lambda: storage.gallery.curate(image_id, p), REJECTED),
        ("gallery.top(status)", lambda: storage.gallery.top(status=p), REJECTED),
        ("audit(table_name)", lambda: storage.audit.get_audit_trail(table_name=p), REJECTED),
        ("audit(record_id)", lambda: storage.audit.get_audit_trail(record_id=p),
         lambda r: all(x.record_id == p for x in r) and bool(r) == is_id),
        ("audit(operation)", lambda: storage.audit.get_audit_trail(operation=p), REJECTED),
        ("audit(since)", lambda: storage.audit.get_audit_trail(since=p), REJECTED),
    ]  # fmt: skip


def test_sql_injection_is_bound_as_data_or_rejected(storage: Storage) -> None:
    """Every payload in every string parameter: bound as data (a search returns only rows that literally
    contain it, an unknown id is NotFound or None, a stored payload loads back byte-for-byte) or rejected
    with InvalidInput. After each payload the schema and every table are as they were."""
    stored = [p for p in PAYLOADS if storable(p)]
    for i, p in enumerate(stored):
        storage.sessions.save_session(
            reference_session(id=p, image_path=f"/images/{i}.jpg", naive_prompt=f"make it {p} now")
        )
        storage.library.record_prompt(f"sunset {p} glow", model=p)
    for i in range(5):
        storage.sessions.save_session(
            reference_session(id=f"decoy-{i}", naive_prompt="make the sky dramatic")
        )
    storage.library.record_prompt("plain sunset glow", model="sdxl")
    image_id = storage.gallery.add_image({"filename": "target.png", "prompt": "p", "model_id": "m"}).id
    sessions = {s.id: s for s in storage.sessions.query_history(limit=10_000)}
    assert set(sessions) == {*stored, *(f"decoy-{i}" for i in range(5))}
    catalogue, tables = schema(storage), snapshot(storage)
    tried: Counter[str] = Counter()
    wrong: list[str] = []
    for p in PAYLOADS:
        for param, run, bound in read_checks(storage, p, sessions, stored, image_id):
            tried[param] += 1
            try:
                result = run()
            except (InvalidInput, NotFound):
                continue
            except Exception as error:  # noqa: BLE001 - the finding
                wrong.append(f"{param} <- {p[:60]!r}: {type(error).__name__}: {str(error)[:150]}")
                continue
            if not bound(result):
                wrong.append(f"{param} <- {p[:60]!r}: not bound as data: {str(result)[:200]}")
        if schema(storage) != catalogue or snapshot(storage) != tables:
            wrong.append(f"{p[:60]!r}: the schema or the rows changed")
            catalogue, tables = schema(storage), snapshot(storage)
    total = sum(tried.values())
    print(
        f"[bad-input] injection on {backend(storage)}: {len(PAYLOADS)} payloads x {len(tried)} parameters "
        f"= {total} calls, {len(wrong)} wrong"
    )
    assert not wrong, "\n".join(wrong[:40])


def write_checks(storage: Storage, p: str, image_id: int) -> list[Check]:
    """Writes that store ``p`` as data, and how it must come back; ids only for a session ``p`` names."""

    def status_set() -> Any:
        storage.sessions.update_session_status(p, "failed", 0.25)
        return storage.sessions.load_session(p)

    def prompt_added() -> Any:
        storage.sessions.add_prompt_iteration(p, {"iteration": 9, "positive_prompt": p})
        return storage.sessions.load_session(p)

    def acted() -> Any:
        _act_as(storage, p, p)
        return storage.audit.get_audit_trail(record_id=p, operation="UPDATE")

    by_id: list[Check] = [
        (
            "update_session_status(id)",
            status_set,
            lambda d: (d.status, d.final_alignment_score) == ("failed", 0.25),
        ),
        ("add_prompt_iteration(positive_prompt)", prompt_added, lambda d: d.prompts[-1].positive_prompt == p),
        ("unit_of_work(actor)", acted, lambda trail: trail[0].user_id == p),
    ]
    return [
        *(by_id if storable(p) else []),
        ("gallery.tag(tags)", lambda: storage.gallery.tag(image_id, [p], replace=True), lambda r: r.tags == [p]),
        ("gallery.start_creation(theme)", lambda: storage.gallery.start_creation(p), lambda r: r.theme == p),
        ("gallery.start_training(name)", lambda: storage.gallery.start_training(p, p),
         lambda r: (r.name, r.model_path) == (p, p)),
        ("library.record_prompt(prompt_text)", lambda: storage.library.record_prompt(p, model=p),
         lambda r: r.prompt_hash == prompt_hash(p) and r.model == p),
        ("gallery.add_image(filename)", lambda: storage.gallery.add_image({"filename": p, "prompt": p, "model_id": p}),
         lambda r: (r.filename, r.prompt) == (p, p)),
    ]  # fmt: skip


def test_injection_payloads_stored_as_data_come_back_byte_for_byte(storage: Storage) -> None:
    """Payloads written as ids, text, tags, themes, names and the audit actor: stored exactly, or rejected
    with InvalidInput; the schema never changes, and deleting the payload-named sessions removes exactly
    them."""
    catalogue = schema(storage)
    image_id = storage.gallery.add_image({"filename": "target.png", "prompt": "p", "model_id": "m"}).id
    wrong: list[str] = []
    tried = 0
    ids = []
    for p in PAYLOADS:
        if storable(p):
            ids.append(storage.sessions.save_session(reference_session(id=p, naive_prompt=p, image_path=p)))
            loaded = storage.sessions.load_session(p)
            if (
                ids[-1] != p
                or loaded is None
                or (loaded.id, loaded.naive_prompt, loaded.image_path) != (p, p, p)
            ):
                wrong.append(f"session id {p[:60]!r} did not round-trip")
        for what, run, same in write_checks(storage, p, image_id):
            tried += 1
            try:
                result = run()
            except InvalidInput:
                # Refused only when it cannot be stored as given: NUL, a lone surrogate, no text at all.
                if storable(p) and p.strip():
                    wrong.append(f"{what} <- {p[:60]!r}: a plain storable value was refused")
                continue
            except Exception as error:  # noqa: BLE001 - the finding
                wrong.append(f"{what} <- {p[:60]!r}: {type(error).__name__}: {str(error)[:150]}")
                continue
            if not same(result):
                wrong.append(f"{what} <- {p[:60]!r}: came back as {str(result)[:150]}")
    assert schema(storage) == catalogue
    assert row_counts(storage)["sessions"] == len(ids)
    for session_id in ids:
        storage.sessions.delete_session(session_id)
    assert row_counts(storage)["sessions"] == 0
    print(f"[bad-input] injection payloads stored on {backend(storage)}: {tried} writes, {len(wrong)} wrong")
    assert not wrong, "\n".join(wrong)


# -- path escape -----------------------------------------------------------------------------------
PATH_IDS = [
    "../../etc/passwd",
    "/abs/path",
    "a/../../b",
    "..",
    ".",
    "../",
    "~/.ssh/authorized_keys",
    "C:\\Windows\\System32\\config",
    "..\\..\\windows",
    "a/b/c",
    "%2e%2e%2fetc%2fpasswd",
    "/",
    "\\\\server\\share",
    "file:///etc/passwd",
    "x" * 200 + "/../y",
    ".hidden",
    "-rf",
]


def tree(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")}


def test_path_like_session_ids_are_stored_as_data(storage: Storage) -> None:
    for session_id in PATH_IDS:
        assert storage.sessions.save_session(reference_session(id=session_id)) == session_id
        loaded = storage.sessions.load_session(session_id)
        assert loaded is not None and loaded.id == session_id
        assert storage.sessions.state_from_session(session_id).session_id == session_id
    assert set(storage.sessions.session_ids()) == set(PATH_IDS)


def test_the_state_store_never_writes_outside_its_directory(tmp_path: Path) -> None:
    directory = tmp_path / "deep" / "inside" / "states"
    store = StateStore(directory)
    outside_before = tree(tmp_path) - tree(directory)
    parent_before = set(os.listdir(tmp_path.parent))
    for session_id in PATH_IDS:
        path = store.save(SessionState.model_validate(valid_state(session_id)))
        assert path.resolve().parent == directory.resolve()
        assert path == store.path_for(session_id)
        assert store.load(session_id).session_id == session_id
        assert store.update(session_id, current_stage="validation").current_stage == "validation"
    for hostile in ("\x00", "a\x00/../../x", "\ud800", "/" * 300, "." * 3):
        assert store.path_for(hostile).resolve().parent == directory.resolve()
        with pytest.raises(NotFound):
            store.load(hostile)
    assert {s.session_id for s in store.list()} == set(PATH_IDS)
    assert tree(tmp_path) - tree(directory) == outside_before
    assert set(os.listdir(tmp_path.parent)) == parent_before
    for session_id in PATH_IDS:
        store.delete(session_id)
    assert list(directory.iterdir()) == []


def test_thumbnails_read_only_the_image_named(storage: Storage, tmp_path: Path) -> None:
    """The caller names the image; ``..`` in it is resolved by the file system like any path. Nothing is
    written anywhere, and a file that is not an image never has its content copied into the error."""
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    (images / "real.png").write_bytes(png(64, 32))
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    before = tree(tmp_path)
    made = storage.library.record_prompt("through dot dot", image_path=images / "sub" / ".." / "real.png")
    assert made.thumbnail_error is None and (made.thumbnail_width, made.thumbnail_height) == (64, 32)
    escaped = storage.library.record_prompt(
        "a text file", image_path=images / "sub" / ".." / ".." / "secret.txt"
    )
    assert escaped.thumbnail_error is not None and "not an image" in escaped.thumbnail_error
    assert "root:x" not in escaped.thumbnail_error and escaped.thumbnail_bytes == 0
    relative = storage.library.record_prompt("relative", image_path="../../../../../../../../etc/passwd")
    assert relative.thumbnail_error is not None and "root:" not in relative.thumbnail_error
    assert tree(tmp_path) == before


def test_a_backup_lands_in_the_directory_named(tmp_path: Path) -> None:
    database = tmp_path / "db" / "edi.db"
    database.parent.mkdir()
    with Storage(f"sqlite:///{database}") as storage:
        storage.sessions.save_session(reference_session())
        before = tree(tmp_path)
        named = tmp_path / "elsewhere" / ".." / "backups"
        reports = [storage.maintenance.backup(named), storage.maintenance.backup(named, compress=True)]
    for report in reports:
        assert report.path.resolve().parent == (tmp_path / "backups").resolve()
    new = {Path(p) for p in tree(tmp_path) - before if Path(p).is_file()}
    stray = [p for p in new if p.resolve().parent not in {(tmp_path / "backups").resolve(), database.parent}]
    assert not stray, stray


@pytest.mark.parametrize("name", ["../../escaped", "a/../../escaped", "/tmp/escaped", "..", "x/y"])
def test_a_postgres_backup_stays_in_its_directory_whatever_the_database_is_called(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The dump's name comes from the database's name, which PostgreSQL lets hold '/' and '..'."""
    written: list[Path] = []

    def fake_pg_dump(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        target = Path(next(a for a in argv if a.startswith("--file=")).removeprefix("--file="))
        written.append(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"PGDMP")
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(shutil, "which", lambda _: "/usr/bin/pg_dump")  # what edi_storage.ops.backups calls
    monkeypatch.setattr(subprocess, "run", fake_pg_dump)
    directory = tmp_path / "inner" / "backups"
    url = make_url("postgresql://postgres@127.0.0.1:5432/x").set(database=name)
    backup = backups.backup_postgres(url, directory)
    assert [p.resolve().parent for p in written] == [directory.resolve()]
    assert backup.path.resolve().parent == directory.resolve()
    assert all(
        Path(p).resolve().is_relative_to(directory.resolve()) for p in tree(tmp_path) if Path(p).is_file()
    )


def test_restore_writes_only_its_target(tmp_path: Path) -> None:
    not_a_database = tmp_path / "passwd"
    not_a_database.write_text("root:x:0:0:root:/root:/bin/bash\n")
    target = tmp_path / "x" / ".." / "restored.db"
    (tmp_path / "x").mkdir()
    with pytest.raises(backups.BackupError, match="not a usable SQLite database"):
        Maintenance.restore(not_a_database, target)
    assert not (tmp_path / "restored.db").exists()
    source = tmp_path / "source.db"
    with Storage(f"sqlite:///{source}") as storage:
        storage.sessions.save_session(reference_session())
        backup = storage.maintenance.backup(tmp_path / "backups").path
    before = tree(tmp_path)
    Maintenance.restore(backup, target)
    assert {Path(p).name for p in tree(tmp_path) - before} <= {
        "restored.db",
        "restored.db-wal",
        "restored.db-shm",
    }
    with pytest.raises(backups.BackupError, match="refusing to overwrite"):
        Maintenance.restore(backup, target)


# -- hostile images --------------------------------------------------------------------------------
def png_declaring(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose header (IHDR, CRC fixed up) claims ``width`` x ``height`` pixels."""
    data = bytearray(png(1, 1))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def noise_png(size: int = 256) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (size, size), os.urandom(size * size * 3)).save(out, "PNG")
    return out.getvalue()


def noise_jpeg(size: int = 256) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (size, size), os.urandom(size * size * 3)).save(out, "JPEG")
    return out.getvalue()


def hostile_images(tmp_path: Path) -> dict[str, tuple[str, Path]]:
    """name -> ("bytes" or "path", file): given as bytes (its content) or as a path (the path itself)."""
    files = {
        "bomb-50000x50000": png_declaring(50_000, 50_000),
        "over-max-pixels-9000x9000": png_declaring(9_000, 9_000),
        "bomb-1x2147483647": png_declaring(1, 2**31 - 1),
        "truncated-declaring-7999x7999": png_declaring(7_999, 7_999),  # under MAX_PIXELS, no pixel data
        "truncated-png": noise_png()[:3000],
        "truncated-jpeg": noise_jpeg()[:2000],
        "not-an-image": b"this is plain text, not pixels\n" * 50,
        "random-bytes": os.urandom(4096),
        "png-signature-only": b"\x89PNG\r\n\x1a\n",
        "zero-bytes": b"",
    }
    cases: dict[str, tuple[str, Path]] = {}
    for name, content in files.items():
        path = tmp_path / f"{name}.img"
        path.write_bytes(content)
        cases[f"{name} (bytes)"] = ("bytes", path)
        cases[f"{name} (path)"] = ("path", path)
    (tmp_path / "a-directory").mkdir()
    cases["a directory"] = ("path", tmp_path / "a-directory")
    cases["a missing file"] = ("path", tmp_path / "missing.png")
    if Path("/dev/zero").exists():
        cases["an endless stream (/dev/zero)"] = ("path", Path("/dev/zero"))
    return cases


CHILD = textwrap.dedent(
    """
    import io, json, resource, sys
    from pathlib import Path
    from PIL import Image
    from edi_storage.thumbnails import ThumbnailError, make_thumbnail

    Image.new("RGB", (8, 8)).save(io.BytesIO(), "PNG")  # codecs loaded before the baseline
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = {}
    for name, (kind, value) in json.loads(sys.argv[1]).items():
        source = Path(value) if kind == "path" else Path(value).read_bytes()
        try:
            make_thumbnail(source)
            outcome = "made"
        except ThumbnailError as error:
            outcome = "ThumbnailError: " + str(error)
        except Exception as error:
            outcome = "UNTYPED " + type(error).__name__ + ": " + str(error)
        report[name] = [outcome, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024]
    print(json.dumps(report))
    """
)


def thumbnails_in_a_child(cases: dict[str, tuple[str, Path]]) -> dict[str, tuple[str, int]]:
    """Each case's outcome and the growth of the child's peak RSS (bytes) up to it: Pillow decodes in C,
    so only the process's resident size shows what an image costs."""
    argument = json.dumps({name: [kind, str(path)] for name, (kind, path) in cases.items()})
    done = subprocess.run(
        [sys.executable, "-c", CHILD, argument], capture_output=True, text=True, check=True, timeout=120
    )
    return {name: (outcome, int(grown)) for name, (outcome, grown) in json.loads(done.stdout).items()}


def test_hostile_images_fail_typed_with_bounded_memory(storage: Storage, tmp_path: Path) -> None:
    """Decompression bombs, truncated and non-image files, empty files, a directory, a missing file and an
    endless stream: each is a ThumbnailError saying why, the prompt is still recorded (without a
    thumbnail), and no case costs 100 MB."""
    cases = hostile_images(tmp_path)
    expected = {
        "bomb": "bomb|declares",
        "over-max-pixels": "declares",
        "truncated": "broken|truncated|not an image",
        "directory": "broken|directory",
        "missing": "does not exist",
    }
    report = thumbnails_in_a_child(cases)
    for name, (outcome, grown) in report.items():
        assert outcome.startswith("ThumbnailError: "), (name, outcome)
        pattern = next((v for k, v in expected.items() if name.startswith(k) or k in name), ".")
        assert re.search(pattern, outcome), (name, outcome)
        assert grown < MEMORY_LIMIT, f"{name} grew the peak RSS by {grown / 2**20:.0f} MB"
    tracemalloc.start()  # Python's own allocations (reading the file, the error's text) across all cases
    try:
        for name, (kind, path) in cases.items():
            if kind == "bytes":
                recorded = storage.library.record_prompt(f"hostile {name}", image_data=path.read_bytes())
            else:
                recorded = storage.library.record_prompt(f"hostile {name}", image_path=path)
            assert recorded.thumbnail_error, name
            assert recorded.thumbnail_bytes == 0 and recorded.thumbnail_mime is None, name
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_LIMIT, f"{peak / 2**20:.0f} MB of Python allocations"
    assert storage.library.stats().total_prompts == len(cases)
    worst = max(grown for _, grown in report.values())
    print(
        f"[bad-input] {len(cases)} hostile images on {backend(storage)}: all ThumbnailError, peak RSS growth {worst / 2**20:.1f} MB"
    )


def solid_png(width: int, height: int) -> bytes:
    """A valid black RGB PNG, compressed row by row: the pixels never exist in this process."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * width)  # filter byte, then the row's pixels
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.mark.reliability
def test_the_memory_probe_sees_a_real_decode(tmp_path: Path) -> None:
    """The RSS measurement can fail: a real image of MAX_PIXELS (allowed) costs its decoded size."""
    assert MAX_PIXELS >= 8000 * 8000  # allowed: the thumbnail is made
    big = tmp_path / "big.png"
    big.write_bytes(solid_png(8000, 8000))  # 64 Mpx: 192 MB as RGB, more as Pillow's 4 bytes a pixel
    report = thumbnails_in_a_child({"big": ("path", big)})
    outcome, grown = report["big"]
    print(
        f"[bad-input] a {big.stat().st_size}-byte 8000x8000 PNG grew the peak RSS by {grown / 2**20:.0f} MB"
    )
    assert outcome == "made" and grown > MEMORY_LIMIT, report
