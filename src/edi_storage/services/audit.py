"""The audit trail: reading it, and telling the database triggers who is acting and whether to record.

The trail itself is written by triggers (see edi_storage.models.audit and migrate/audit_triggers.py);
this module only passes them the unit of work's actor and on/off switch, and reads the trail back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from edi_storage.dialects import dialect_of
from edi_storage.models.audit import AuditEntry
from edi_storage.models.base import columns_of
from edi_storage.monitoring import measured
from edi_storage.schemas.audit import AuditQuery, AuditRecord
from edi_storage.schemas.common import parse, rows_as
from edi_storage.services.base import Service
from edi_storage.vocabulary import AuditOperation


def set_audit_context(session: Session, actor: str | None, enabled: bool) -> bool:
    """Tell this transaction's triggers who acts and whether to record; True when anything was set.

    The default (no actor, auditing on) needs no statement at all, so ordinary writes pay nothing.
    """
    if actor is None and enabled:
        return False
    statement, params = dialect_of(session).audit_context(actor, enabled)
    session.execute(statement, params)
    return True


def reset_audit_context(session: Session) -> None:
    """Put the context back before the commit where it outlives the transaction (SQLite's shared
    context row), so that the next writer, whoever it is, starts from the default."""
    if (reset := dialect_of(session).reset_audit_context()) is not None:
        session.execute(*reset)


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
            select(*columns_of(AuditEntry))
            .where(*filters)
            .order_by(AuditEntry.timestamp.desc(), AuditEntry.id.desc())
            .limit(query.limit)
        )
        with self._tx(readonly=True) as s:
            return rows_as(AuditRecord, s.execute(statement))
