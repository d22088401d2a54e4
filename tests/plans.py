"""Query plans of the statements a service call really issues, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import event

from edi_storage import Storage


def statements_of(storage: Storage, call: Callable[[], object]) -> list[tuple[str, Any]]:
    """Run ``call`` and return the SELECT statements it sent to the driver, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def record(conn: object, cursor: object, sql: str, parameters: Any, *rest: object) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            seen.append((sql, parameters))

    event.listen(storage.engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(storage.engine, "before_cursor_execute", record)
    return seen


def plans_of(storage: Storage, call: Callable[[], object]) -> list[str]:
    """SQLite's EXPLAIN QUERY PLAN lines for every SELECT ``call`` issues, with its real parameters."""
    statements = statements_of(storage, call)  # before connecting: a memory database has one connection
    with storage.engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        return [
            str(row[-1])
            for sql, parameters in statements
            for row in driver.execute(f"EXPLAIN QUERY PLAN {sql}", parameters)
        ]


def postgres_plans_of(storage: Storage, call: Callable[[], object]) -> list[dict[str, Any]]:
    """PostgreSQL's EXPLAIN (FORMAT JSON) plan tree of every SELECT ``call`` issues."""
    statements = statements_of(storage, call)
    with storage.engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        plans = []
        for sql, parameters in statements:
            with driver.cursor() as cursor:
                cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", parameters)
                value = cursor.fetchone()[0]
                plans.append((json.loads(value) if isinstance(value, str) else value)[0]["Plan"])
        conn.rollback()
        return plans


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a PostgreSQL plan tree."""
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)
