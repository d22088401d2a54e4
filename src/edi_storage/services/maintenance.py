"""Keeping a database healthy: for now, the query-performance metrics (backup, retention, integrity and
vacuum join it as the maintenance area grows)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from edi_storage.errors import InvalidInput
from edi_storage.models.base import utcnow
from edi_storage.models.monitoring import QueryPerformance
from edi_storage.schemas.maintenance import QueryTypeMetrics
from edi_storage.services.base import Service


class MaintenanceService(Service):
    def performance_metrics(self, hours: float = 24) -> list[QueryTypeMetrics]:
        """Count, average, max and min SQL time and rows per query type over the last ``hours``.

        Empty unless recording is on (``Storage(record_query_performance=True)``); what this process
        recorded but had not written yet is written first.
        """
        if not 0 < hours <= 24 * 366:
            raise InvalidInput.single("hours", "must be more than 0 and at most a year", hours)
        if self.recorder is not None:
            self.recorder.flush()
        qp = QueryPerformance
        statement = (
            select(
                qp.query_type,
                func.count(),
                func.avg(qp.execution_time),
                func.max(qp.execution_time),
                func.min(qp.execution_time),
                func.avg(qp.rows_returned),
                func.sum(qp.rows_returned),
            )
            .where(qp.timestamp >= utcnow() - timedelta(hours=hours))
            .group_by(qp.query_type)
            .order_by(qp.query_type)
        )
        with self._tx(readonly=True) as s:
            rows = s.execute(statement).all()
        return [
            QueryTypeMetrics(
                query_type=kind,
                count=count,
                avg_time=float(avg_time),
                max_time=float(max_time),
                min_time=float(min_time),
                avg_rows=float(avg_rows),
                total_rows=int(total_rows),
            )
            for kind, count, avg_time, max_time, min_time, avg_rows, total_rows in rows
        ]
