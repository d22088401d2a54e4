"""Schemas of the maintenance area."""

from __future__ import annotations

from edi_storage.schemas.common import OutputModel


class QueryTypeMetrics(OutputModel):
    """How one kind of service call performed over the period asked for (times in seconds)."""

    query_type: str
    count: int
    avg_time: float
    max_time: float
    min_time: float
    avg_rows: float
    total_rows: int
