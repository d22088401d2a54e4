"""The hand-written sqlite3 side: what a careful developer writes without edi-storage.

It runs on a copy of edi-storage's schema (the same tables and indexes, made by the same migrations)
from which every trigger and the audit context table have been dropped (``strip_schema_extras``): the
audit trail, when it is wanted, is written by this code itself, never by the project's triggers.

One long-lived connection in autocommit mode with explicit transactions; WAL and
``synchronous=NORMAL`` as edi-storage uses; one ``executemany`` per table; whole graphs read in five
queries in one read transaction; history in one query, written so that the index serving its order
serves it (see ``history``); rows come back as dicts, JSON decoded, timestamps as aware datetimes.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workload import (
    CHILD_COUNTS_SQL,
    STATISTICS_SQL,
    SUMMARY_COLUMNS,
    TABLE_COLUMNS,
    Graph,
    Query,
    as_graph,
    escape_like,
    graph_rows,
    insert_sql,
    statistics_from,
    week_ago,
)

# The JSON columns of each table (stored as JSON text) and its timestamp columns (naive UTC text).
JSON_COLUMNS = {
    "sessions": ("session_tags", "session_metadata"),
    "prompts": ("prompt_metadata", "generation_parameters"),
    "entities": ("bbox_json", "embedding_vector", "entity_metadata"),
    "validations": ("processing_details", "quality_metrics", "validation_metadata", "user_ratings"),
    "user_feedback": ("feedback_metadata",),
}
TIME_COLUMNS = ("created_at", "updated_at")
# The text format datetimes are stored in on SQLite (microseconds always written, so text order is time
# order), and the same clock in SQL for the audit rows.
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
SQL_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now') || '000'"
# The keys of an audit row's ``changes``, per table: the whole new row, its id first (the sessions'
# columns already start with it), in the order of the table's columns.
AUDIT_COLUMNS = {
    table: columns if table == "sessions" else ("id", *columns) for table, columns in TABLE_COLUMNS.items()
}
CHILD_QUERIES = {
    "prompts": "SELECT * FROM prompts WHERE session_id = ? ORDER BY iteration, id",
    "entities": "SELECT * FROM entities WHERE session_id = ? ORDER BY id",
    "validations": "SELECT * FROM validations WHERE session_id = ? ORDER BY attempt_number, id",
    "feedback": "SELECT * FROM user_feedback WHERE session_id = ? ORDER BY created_at, id",
}
ORDERINGS = {
    "created_at desc": "created_at DESC, id DESC",
    "created_at asc": "created_at ASC, id ASC",
    "final_alignment_score desc": "final_alignment_score DESC, id DESC",  # NULLs sort last already
    "final_alignment_score asc": "final_alignment_score ASC NULLS LAST, id ASC",
}
# With a minimum score no NULL can match: the plain order, which the (score, id) index serves.
SCORED_ORDERINGS = {**ORDERINGS, "final_alignment_score asc": "final_alignment_score ASC, id ASC"}


def db_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def read_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def to_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def strip_schema_extras(path: Path) -> None:
    """Drop every trigger (the audit trail's and any other) and the audit context table from ``path``."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        triggers = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
        for (name,) in triggers:
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute("DROP TABLE IF EXISTS edi_audit_context")
    finally:
        conn.close()


def _audit_sql(table: str) -> str:
    """One INSERT ... SELECT writing an audit row (the whole new row as a JSON object, JSON columns as
    JSON) for each row of ``table`` inserted in this transaction: those after the rowid it started at."""
    pairs = ", ".join(
        f"'{c}', json({c})" if c in JSON_COLUMNS[table] else f"'{c}', {c}" for c in AUDIT_COLUMNS[table]
    )
    return (
        "INSERT INTO audit_log (table_name, record_id, operation, user_id, timestamp, changes)"
        f" SELECT '{table}', CAST(id AS TEXT), 'INSERT', ?, {SQL_NOW}, json_object({pairs})"
        f" FROM {table} WHERE rowid > ? ORDER BY rowid"
    )


_INSERTS = {table: insert_sql(table, "?") for table in TABLE_COLUMNS}
_AUDITS = {table: _audit_sql(table) for table in TABLE_COLUMNS}
_LAST_ROWIDS = "SELECT " + ", ".join(
    f"(SELECT coalesce(max(rowid), 0) FROM {table})" for table in TABLE_COLUMNS
)


class RawSQLite:
    """See the module docstring. ``save(items, audit=True)`` writes the audit rows the triggers of an
    edi-storage database would write (same table, columns and values), in the same transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")

    def close(self) -> None:
        self.conn.close()

    def save(self, items: list[Graph], audit: bool = False, actor: str | None = None) -> None:
        c = self.conn
        rows = graph_rows(items, datetime.now(UTC).strftime(TIME_FORMAT), to_json, db_time)
        c.execute("BEGIN IMMEDIATE")
        try:
            # Under BEGIN IMMEDIATE this is the only writer: what it inserts is what lies past these.
            last = c.execute(_LAST_ROWIDS).fetchone() if audit else ()
            for index, (table, values) in enumerate(rows.items()):
                if values:
                    c.executemany(_INSERTS[table], values)
                    if audit:
                        c.execute(_AUDITS[table], (actor, last[index]))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def _rows(self, sql: str, params: tuple[Any, ...], table: str) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        json_columns = JSON_COLUMNS[table]
        out = []
        for values in cursor.fetchall():
            row = dict(zip(names, values, strict=True))
            for name in json_columns:
                if (text := row[name]) is not None:
                    row[name] = json.loads(text)
            for name in TIME_COLUMNS:
                if name in row:
                    row[name] = read_time(row[name])
            out.append(row)
        return out

    def load(self, session_id: str) -> dict[str, Any] | None:
        c = self.conn
        c.execute("BEGIN")
        try:
            found = self._rows("SELECT * FROM sessions WHERE id = ?", (session_id,), "sessions")
            if not found:
                return None
            children = {
                key: self._rows(sql, (session_id,), "user_feedback" if key == "feedback" else key)
                for key, sql in CHILD_QUERIES.items()
            }
        finally:
            c.execute("COMMIT")
        return as_graph(found[0], children)

    def history(self, query: Query) -> list[dict[str, Any]]:
        """One page, written as someone who read EXPLAIN writes it: a range filter on the column the
        page is not ordered by gets SQLite's no-op unary plus, so that it cannot take the plan away from
        the index that serves the order (walk it, stop after ``limit`` matches) for a range scan that
        sorts every match; with a minimum score the score order needs no NULLS LAST."""
        order = query.get("order_by", "created_at desc")
        by_score = order.startswith("final_alignment_score")
        created = "+created_at" if by_score else "created_at"
        score = "final_alignment_score" if by_score else "+final_alignment_score"
        where: list[str] = []
        params: list[Any] = []
        if (status := query.get("status_filter")) is not None:
            where.append("status = ?")
            params.append(status)
        if (date_from := query.get("date_from")) is not None:
            where.append(f"{created} >= ?")
            params.append(db_time(date_from))
        if (date_to := query.get("date_to")) is not None:
            where.append(f"{created} <= ?")
            params.append(db_time(date_to))
        if (min_score := query.get("min_score")) is not None:
            where.append(f"{score} >= ?")
            params.append(min_score)
        if term := query.get("search_term"):
            where.append("(image_path LIKE ? ESCAPE '\\' OR naive_prompt LIKE ? ESCAPE '\\')")
            params += [f"%{escape_like(term)}%"] * 2
        sql = f"SELECT {', '.join(SUMMARY_COLUMNS)} FROM sessions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        orderings = ORDERINGS if min_score is None else SCORED_ORDERINGS
        sql += f" ORDER BY {orderings[order]} LIMIT ? OFFSET ?"
        params += [query.get("limit", 50), query.get("offset", 0)]
        return [
            {
                "id": r[0],
                "created_at": read_time(r[1]),
                "updated_at": read_time(r[2]),
                "image_path": r[3],
                "naive_prompt": r[4],
                "status": r[5],
                "final_alignment_score": r[6],
                "user_id": r[7],
                "project_id": r[8],
            }
            for r in self.conn.execute(sql, params).fetchall()
        ]

    def statistics(self) -> dict[str, Any]:
        rows = self.conn.execute(STATISTICS_SQL.format(since="?"), (db_time(week_ago()),)).fetchall()
        return statistics_from(rows, self.conn.execute(CHILD_COUNTS_SQL).fetchone(), read_time)

    def median_created_at(self) -> datetime:
        count = self.conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
        (value,) = self.conn.execute(
            "SELECT created_at FROM sessions ORDER BY created_at LIMIT 1 OFFSET ?", (count // 2,)
        ).fetchone()
        parsed = read_time(value)
        assert parsed is not None
        return parsed
