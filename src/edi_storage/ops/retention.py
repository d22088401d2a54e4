"""Data retention: old sessions archived to JSON Lines, then deleted, in batches.

Each batch is written to the archive (and fsynced) *before* it is deleted: a crash between the two
leaves the sessions in the database and possibly twice in the archive, never in neither. A session
goes with its children and with its audit rows (which are archived too); the deletion itself is not
audited, or pruning would refill the audit log it is meant to shrink.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import delete, func, or_, select

from edi_storage.engine import sqlite_file
from edi_storage.errors import InvalidInput
from edi_storage.models import AUDITED_TABLES, AuditEntry, EditSession
from edi_storage.models.base import table_of, utcnow
from edi_storage.storage import Storage

AUDIT = table_of(AuditEntry)
SESSIONS = table_of(EditSession)

log = logging.getLogger(__name__)


@dataclass
class PruneReport:
    sessions: int = 0
    audit_rows: int = 0
    dry_run: bool = False
    archive: Path | None = None
    session_ids: list[str] = field(default_factory=list)


def candidates(storage: Storage, *, older_than_days: float | None, max_bytes: int | None) -> list[str]:
    """Ids of the sessions to prune, oldest first: older than the age, or as many of the oldest as
    bring the file under the size budget (estimated from its bytes per session)."""
    if older_than_days is None and max_bytes is None:
        raise InvalidInput.single(
            "older_than_days",
            "give an age (older_than_days) or a size budget (max_bytes); refusing to prune everything",
            None,
        )
    with storage.unit_of_work(readonly=True) as uow:
        s = uow.session
        oldest_first = select(SESSIONS.c.id).order_by(SESSIONS.c.created_at, SESSIONS.c.id)
        chosen: list[str] = []
        if older_than_days is not None:
            if older_than_days < 0:
                raise InvalidInput.single("older_than_days", "must not be negative", older_than_days)
            cutoff = utcnow() - timedelta(days=older_than_days)
            chosen = list(s.scalars(oldest_first.where(SESSIONS.c.created_at < cutoff)))
        if max_bytes is not None:
            if max_bytes < 0:
                raise InvalidInput.single("max_bytes", "must not be negative", max_bytes)
            path = sqlite_file(storage.url)
            if path is None:
                raise InvalidInput.single(
                    "max_bytes", "a size budget needs a SQLite file database", max_bytes
                )
            size = path.stat().st_size
            count = s.scalar(select(func.count()).select_from(SESSIONS)) or 0
            if size > max_bytes and count:
                excess = math.ceil(count * (size - max_bytes) / size)
                by_size = list(s.scalars(oldest_first.limit(excess)))
                chosen = list(dict.fromkeys([*chosen, *by_size]))
    return chosen


def _audit_filter(ids: list[str]) -> Any:
    """Audit rows of these sessions: their own, and their children's (which carry session_id)."""
    child_session = AUDIT.c.changes["session_id"].as_string()
    return or_(
        (AUDIT.c.table_name == "sessions") & AUDIT.c.record_id.in_(ids),
        AUDIT.c.table_name.in_([t for t in AUDITED_TABLES if t != "sessions"]) & child_session.in_(ids),
    )


def prune(
    storage: Storage,
    *,
    archive: Path | None,
    older_than_days: float | None = None,
    max_bytes: int | None = None,
    dry_run: bool = False,
    batch_size: int = 500,
) -> PruneReport:
    ids = candidates(storage, older_than_days=older_than_days, max_bytes=max_bytes)
    report = PruneReport(dry_run=dry_run, archive=archive, session_ids=ids)
    if dry_run or not ids:
        report.sessions = len(ids)
        return report
    if archive is None:
        raise InvalidInput.single("archive", "pruning deletes data: name a file to archive it to", None)
    with archive.open("a", encoding="utf-8") as out:
        for start in range(0, len(ids), batch_size):
            batch = ids[start : start + batch_size]
            report.audit_rows += _archive_batch(storage, batch, out)
            with storage.unit_of_work(audit=False) as uow:
                uow.session.execute(delete(AUDIT).where(_audit_filter(batch)))
                uow.session.execute(delete(SESSIONS).where(SESSIONS.c.id.in_(batch)))
            report.sessions += len(batch)
    log.info(
        "pruned %d sessions and %d audit rows, archived to %s", report.sessions, report.audit_rows, archive
    )
    return report


def _archive_batch(storage: Storage, batch: list[str], out: IO[str]) -> int:
    graphs = storage.sessions.load_sessions(batch)
    with storage.unit_of_work(readonly=True) as uow:
        audit_rows = [
            dict(r) for r in uow.session.execute(select(AUDIT).where(_audit_filter(batch))).mappings()
        ]
    for graph in graphs:
        data = graph.as_create().model_dump(mode="json", exclude_none=True)
        out.write(json.dumps({"kind": "session", "data": data}) + "\n")
    for row in audit_rows:
        out.write(json.dumps({"kind": "audit", "data": row}, default=_default) + "\n")
    out.flush()
    os.fsync(out.fileno())
    return len(audit_rows)


def _default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)
