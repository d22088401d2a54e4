"""The opt-in query-performance log (storage-database.md's ``query_performance`` table)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, func
from sqlalchemy.orm import Mapped, mapped_column

from edi_storage.models.base import Base, utcnow


class QueryPerformance(Base):
    """One service call: its type (``sessions.query_history``), the seconds its SQL took, the rows it
    returned, and when."""

    __tablename__ = "query_performance"

    id: Mapped[int] = mapped_column(primary_key=True)
    query_type: Mapped[str]
    execution_time: Mapped[float]
    rows_returned: Mapped[int]
    timestamp: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.current_timestamp())

    __table_args__ = (
        CheckConstraint("execution_time >= 0", name="execution_time"),
        CheckConstraint("rows_returned >= 0", name="rows_returned"),
        Index(None, "timestamp"),
        Index(None, "query_type", "timestamp"),
        {"sqlite_autoincrement": True},
    )
