"""The hand-written psycopg 3 side: what a careful developer writes for PostgreSQL without edi-storage.

It runs on a copy of edi-storage's schema (a database made from the same migrated template) from which
every trigger and function has been dropped (``strip_schema_extras``): the audit trail, when it is
wanted, is written by this code itself, in the same statement as the row it records.

One long-lived connection in autocommit mode; a save is one transaction with one ``executemany`` per
table (psycopg pipelines them); a whole graph is five queries (each its own snapshot, as five
statements in one READ COMMITTED transaction would be too), history and statistics one query each;
rows come back as dicts (psycopg decodes JSONB and timestamptz itself).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
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

CHILD_QUERIES = {
    "prompts": "SELECT * FROM prompts WHERE session_id = %s ORDER BY iteration, id",
    "entities": "SELECT * FROM entities WHERE session_id = %s ORDER BY id",
    "validations": "SELECT * FROM validations WHERE session_id = %s ORDER BY attempt_number, id",
    "feedback": "SELECT * FROM user_feedback WHERE session_id = %s ORDER BY created_at, id",
}
ORDERINGS = {
    "created_at desc": "created_at DESC, id DESC",
    "created_at asc": "created_at ASC, id ASC",
    "final_alignment_score desc": "final_alignment_score DESC NULLS LAST, id DESC",
    "final_alignment_score asc": "final_alignment_score ASC, id ASC",  # NULLs sort last already
}
# With a minimum score no NULL can match: the plain order, which the (score, id) index serves backwards.
SCORED_ORDERINGS = {**ORDERINGS, "final_alignment_score desc": "final_alignment_score DESC, id DESC"}


def to_jsonb(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def same_time(value: datetime) -> datetime:
    return value


def strip_schema_extras(conninfo: str) -> None:
    """Drop every trigger and every function of the public schema (the audit trail's among them; not
    those of extensions)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        triggers = conn.execute(
            "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal"
        ).fetchall()
        for name, table in triggers:
            conn.execute(f'DROP TRIGGER "{name}" ON {table}')
        functions = conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p"
            " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'"
            " AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')"
        ).fetchall()
        for (function,) in functions:
            conn.execute(f"DROP FUNCTION {function}")


def _audited_insert(table: str) -> str:
    """The INSERT of one row and, in the same statement, its audit row: the whole new row as JSONB, as
    the trigger's ``to_jsonb(NEW)`` gives it, with the transaction's actor and the clock's time."""
    return (
        f"WITH ins AS ({insert_sql(table, '%s')} RETURNING *)"
        " INSERT INTO audit_log (table_name, record_id, operation, user_id, timestamp, changes)"
        f" SELECT '{table}', ins.id::text, 'INSERT', %s, clock_timestamp(), to_jsonb(ins) FROM ins"
    )


_INSERTS = {table: insert_sql(table, "%s") for table in TABLE_COLUMNS}
_AUDITED_INSERTS = {table: _audited_insert(table) for table in TABLE_COLUMNS}


class RawPostgres:
    """See the module docstring. ``save(items, audit=True)`` writes the audit rows the triggers of an
    edi-storage database would write (same table, columns and values), in the same transaction."""

    def __init__(self, conninfo: str) -> None:
        self.conn = psycopg.connect(conninfo, autocommit=True)

    def close(self) -> None:
        self.conn.close()

    def save(self, items: list[Graph], audit: bool = False, actor: str | None = None) -> None:
        rows = graph_rows(items, datetime.now(UTC), to_jsonb, same_time)
        with self.conn.transaction(), self.conn.cursor() as cursor:
            for table, values in rows.items():
                if not values:
                    continue
                if audit:
                    cursor.executemany(_AUDITED_INSERTS[table], [(*v, actor) for v in values])
                else:
                    cursor.executemany(_INSERTS[table], values)

    def load(self, session_id: str) -> dict[str, Any] | None:
        with self.conn.cursor(row_factory=dict_row) as cursor:
            session = cursor.execute("SELECT * FROM sessions WHERE id = %s", (session_id,)).fetchone()
            if session is None:
                return None
            children = {
                key: cursor.execute(sql, (session_id,)).fetchall() for key, sql in CHILD_QUERIES.items()
            }
        return as_graph(session, children)

    def history(self, query: Query) -> list[dict[str, Any]]:
        """One page in one statement, no planner hints (PostgreSQL's planner is cost-based and the
        database is ANALYZEd); with a minimum score the score order needs no NULLS LAST."""
        where: list[str] = []
        params: list[Any] = []
        if (status := query.get("status_filter")) is not None:
            where.append("status = %s")
            params.append(status)
        if (date_from := query.get("date_from")) is not None:
            where.append("created_at >= %s")
            params.append(date_from)
        if (date_to := query.get("date_to")) is not None:
            where.append("created_at <= %s")
            params.append(date_to)
        if (min_score := query.get("min_score")) is not None:
            where.append("final_alignment_score >= %s")
            params.append(min_score)
        if term := query.get("search_term"):
            where.append("(image_path ILIKE %s ESCAPE '\\' OR naive_prompt ILIKE %s ESCAPE '\\')")
            params += [f"%{escape_like(term)}%"] * 2
        sql = f"SELECT {', '.join(SUMMARY_COLUMNS)} FROM sessions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        orderings = ORDERINGS if min_score is None else SCORED_ORDERINGS
        sql += f" ORDER BY {orderings[query.get('order_by', 'created_at desc')]} LIMIT %s OFFSET %s"
        params += [query.get("limit", 50), query.get("offset", 0)]
        with self.conn.cursor(row_factory=dict_row) as cursor:
            return cursor.execute(sql, params).fetchall()

    def statistics(self) -> dict[str, Any]:
        rows = self.conn.execute(STATISTICS_SQL.format(since="%s"), (week_ago(),)).fetchall()
        children = self.conn.execute(CHILD_COUNTS_SQL).fetchone()
        assert children is not None
        return statistics_from(rows, children, lambda value: value)

    def median_created_at(self) -> datetime:
        row = self.conn.execute(
            "SELECT created_at FROM sessions ORDER BY created_at"
            " OFFSET (SELECT count(*) / 2 FROM sessions) LIMIT 1"
        ).fetchone()
        assert row is not None
        value: datetime = row[0]
        return value
