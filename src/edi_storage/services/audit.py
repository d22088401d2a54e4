"""The audit trail: reading it, and telling the database triggers who is acting and whether to record.

The trail itself is written by triggers (see edi_storage.models.audit and migrate/audit_triggers.py);
this module only passes them the unit of work's actor and on/off switch, and reads the trail back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from edi_storage.migrate.audit_triggers import CONTEXT_TABLE
from edi_storage.models.audit import AuditEntry, AuditOperation
from edi_storage.models.base import table_of
from edi_storage.monitoring import measured
from edi_storage.schemas.audit import AuditQuery, AuditRecord
from edi_storage.schemas.common import parse, rows_as
from edi_storage.services.base import Service

_SQLITE_CONTEXT = text(f"UPDATE {CONTEXT_TABLE} SET actor = :actor, enabled = :enabled WHERE id = 1")
_PG_CONTEXT = text(
    "SELECT set_config('edi_storage.actor', :actor, true), "
    "set_config('edi_storage.audit', CASE WHEN :enabled THEN 'on' ELSE 'off' END, true)"
)


def set_audit_context(session: Session, actor: str | None, enabled: bool) -> bool:
    """Tell this transaction's triggers who acts and whether to record; True when anything was set.

    The default (no actor, auditing on) needs no statement at all, so ordinary writes pay nothing.
    """
    if actor is None and enabled:
        return False
    if session.get_bind().dialect.name == "sqlite":
        session.execute(_SQLITE_CONTEXT, {"actor": actor, "enabled": int(enabled)})
    else:
        session.execute(_PG_CONTEXT, {"actor": actor or "", "enabled": enabled})
    return True


def reset_audit_context(session: Session) -> None:
    """Put SQLite's shared context row back before the commit (PostgreSQL settings end with the
    transaction by themselves), so that the next writer, whoever it is, starts from the default."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(_SQLITE_CONTEXT, {"actor": None, "enabled": 1})


class AuditService(Service):
    @measured("audit.get_audit_trail")
    def get_audit_trail(
        self,
        table_name: str | None = None,
        record_id: str | int | None = None,
        operation: AuditOperation | str | None = None,
        since: datetime | str | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """Audit rows, newest first, filtered by table, record, operation and time."""
        query = parse(
            AuditQuery,
            {
                "table_name": table_name,
                "record_id": None if record_id is None else str(record_id),
                "operation": operation,
                "since": since,
                "limit": limit,
            },
        )
        filters: list[Any] = []
        if query.table_name is not None:
            filters.append(AuditEntry.table_name == query.table_name)
        if query.record_id is not None:
            filters.append(AuditEntry.record_id == query.record_id)
        if query.operation is not None:
            filters.append(AuditEntry.operation == query.operation.value)
        if query.since is not None:
            filters.append(AuditEntry.timestamp >= query.since)
        statement = (
            select(table_of(AuditEntry))
            .where(*filters)
            .order_by(AuditEntry.timestamp.desc(), AuditEntry.id.desc())
            .limit(query.limit)
        )
        with self._tx(readonly=True) as s:
            return rows_as(AuditRecord, s.execute(statement))
