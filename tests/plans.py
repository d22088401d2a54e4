"""EXPLAIN QUERY PLAN of the statements a service call really issues (SQLite)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event

from edi_storage import Storage


def plans_of(storage: Storage, call: Callable[[], object]) -> list[str]:
    """Run ``call``, capture its SELECT statements, and return SQLite's plan lines for them."""
    statements: list[str] = []

    def seen(conn: object, cursor: object, sql: str, *rest: object) -> None:
        statements.append(sql)

    event.listen(storage.engine, "before_cursor_execute", seen)
    try:
        call()
    finally:
        event.remove(storage.engine, "before_cursor_execute", seen)
    with storage.engine.connect() as conn:
        return [
            str(row[-1])
            for sql in statements
            if sql.lstrip().upper().startswith("SELECT")
            for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", tuple([None] * sql.count("?")))
        ]
