"""The audit trail: one row per inserted, updated or deleted row of the session tables.

Rows are written by database triggers (created in revision 0003), not by Python, so that every path a
change can take is covered: a service call, a unit of work, a bulk insert, a raw SQL statement, and the
rows a ``ON DELETE CASCADE`` removes without the application ever seeing them. A trigger runs inside
the statement's transaction: a rolled-back change leaves no audit row, a committed one always has one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, func
from sqlalchemy.orm import Mapped, mapped_column

from edi_storage.models.base import Base, utcnow
from edi_storage.models.sessions import one_of
from edi_storage.vocabulary import AuditOperation

AUDITED_TABLES = ("sessions", "prompts", "entities", "validations", "user_feedback")


class AuditEntry(Base):
    """``changes``: the new row for an INSERT, ``{column: {"old": .., "new": ..}}`` of the changed
    columns for an UPDATE, the row as it was for a DELETE. ``user_id`` is the unit of work's actor."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    table_name: Mapped[str]
    record_id: Mapped[str | None]
    operation: Mapped[str]
    user_id: Mapped[str | None]
    timestamp: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.current_timestamp())
    changes: Mapped[dict[str, Any] | None]

    __table_args__ = (
        CheckConstraint(one_of("operation", AuditOperation), name="operation"),
        Index(None, "timestamp"),
        Index(None, "table_name", "record_id", "timestamp"),
        {"sqlite_autoincrement": True},
    )
