"""Statements compiled once per dialect and run as driver SQL: the hot paths' way past per-call overhead.

A session graph is a dozen small rows. For statements that small, SQLAlchemy's per-execution work
(cache lookup, parameter construction, expanding-IN rendering, result set-up) costs more than SQLite
spends running them; the benchmark showed it as most of a single save. A ``Prepared`` keeps what that
work produces — the SQL text, the parameter order and each column type's bind and result processors
for the dialect — and runs the text with ``Connection.exec_driver_sql``. That still goes through the
connection: the same transaction, the engine's cursor events (the performance log sees it) and
SQLAlchemy's error wrapping (so ``database_errors`` translates failures into typed errors as before).

Values are converted by the columns' own types, so what is stored is exactly what the ORM would store
(naive-UTC text datetimes and JSON text on SQLite, ``timestamptz`` and JSONB on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Insert, Select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positional: bool
    # (parameter name, its bind processor), in the order a positional driver wants them
    binds: tuple[tuple[str, Processor], ...]
    columns: tuple[Any, ...]  # the SELECT's columns (their types convert the values read)
    names: tuple[str, ...]
    literals: dict[str, Any]  # values the statement carries itself (``status == 'completed'``)
    # the columns' result processors, known at the first execution (some need the driver's type codes)
    results: list[tuple[Processor, ...]]


class Prepared:
    """One INSERT (of fixed columns) or SELECT (with plain, non-expanding parameters)."""

    def __init__(self, statement: Insert | Select[Any], columns: Sequence[str] = ()) -> None:
        self.statement = statement
        self.insert_columns = tuple(columns)
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        if (found := self._by_dialect.get(dialect.name)) is not None:
            return found
        if self.insert_columns:
            compiled = self.statement.compile(dialect=dialect, column_keys=list(self.insert_columns))
        else:
            compiled = self.statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        if self.insert_columns and (extra := set(compiled.binds) - set(self.insert_columns)):
            # Python-side column defaults are filled in by SQLAlchemy's execution, which driver SQL skips.
            raise TypeError(f"rows must give every column; missing {sorted(extra)}")
        keys = tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.binds)
        binds = tuple(
            (key, compiled.binds[key].type.dialect_impl(dialect).bind_processor(dialect)) for key in keys
        )
        selected = self.statement.selected_columns if isinstance(self.statement, Select) else ()
        made = _Compiled(
            sql=compiled.string,
            positional=compiled.positional,
            binds=binds,
            columns=tuple(selected),
            names=tuple(str(column.key) for column in selected),
            literals={key: bind.effective_value for key, bind in compiled.binds.items() if not bind.required},
            results=[],
        )
        self._by_dialect[dialect.name] = made
        return made

    def _params(self, compiled: _Compiled, values: Mapping[str, Any]) -> Any:
        if compiled.literals:
            values = {**compiled.literals, **values}
        if compiled.positional:
            return tuple([v if (v := values[k]) is None or p is None else p(v) for k, p in compiled.binds])
        return {k: v if (v := values[k]) is None or p is None else p(v) for k, p in compiled.binds}

    def execute(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run for every row of ``rows`` (one executemany); nothing is returned."""
        if not rows:
            return
        compiled = self._compiled(connection.dialect)
        connection.exec_driver_sql(compiled.sql, [self._params(compiled, row) for row in rows])

    def rows(self, connection: Connection, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The SELECT's rows as dicts keyed by column, each value converted by its column's type."""
        compiled = self._compiled(connection.dialect)
        description, fetched = self._fetch(connection, compiled.sql, self._params(compiled, params))
        if not compiled.results:
            compiled.results.append(
                tuple(
                    column.type.dialect_impl(connection.dialect).result_processor(
                        connection.dialect, entry[1]
                    )
                    for column, entry in zip(compiled.columns, description, strict=True)
                )
            )
        names, processors = compiled.names, compiled.results[0]
        return [
            {
                name: value if (process := processors[i]) is None or value is None else process(value)
                for i, (name, value) in enumerate(zip(names, row, strict=True))
            }
            for row in fetched
        ]

    @staticmethod
    def _fetch(connection: Connection, sql: str, params: Any) -> tuple[Any, Sequence[Any]]:
        """Run a query; on SQLite with no cursor listeners, on the driver's cursor.

        SQLAlchemy builds result metadata from the cursor description at every execution, which costs
        more than a small SELECT itself. The driver's cursor is used only where nothing is lost by it:
        on SQLite (no disconnects to detect) and with no cursor listeners (the performance log is off).
        Errors are wrapped as SQLAlchemy wraps them, so they are translated the same way.
        """
        events = connection.dispatch
        if connection.dialect.name != "sqlite" or events.before_cursor_execute or events.after_cursor_execute:
            result = connection.exec_driver_sql(sql, params)
            return result.cursor.description, result.fetchall()
        dbapi_connection = connection.connection.driver_connection
        assert dbapi_connection is not None
        try:
            cursor = dbapi_connection.execute(sql, params)
            return cursor.description, cursor.fetchall()
        except connection.dialect.loaded_dbapi.Error as error:
            raise DBAPIError.instance(sql, params, error, connection.dialect.loaded_dbapi.Error) from error
