"""The DDL of the audit triggers, for SQLite and PostgreSQL.

Revisions call these with the columns of each table *as of that revision* (a frozen list in the
revision), so a later revision that changes a table recreates its triggers with the new columns. Note
that a batch-mode rebuild of a SQLite table drops its triggers: such a revision must recreate them.

Who did it, and whether auditing is on, reach the triggers differently per dialect:

* PostgreSQL: transaction-local settings, ``set_config('edi_storage.actor', ..., true)`` and
  ``edi_storage.audit`` = ``off``, read with ``current_setting(.., true)``.
* SQLite has no session variables, and triggers cannot read TEMP tables or call functions that other
  writers (the sqlite3 shell, another program) would lack. A one-row table, ``edi_audit_context``, holds
  the actor and the on/off switch: SQLite has one writer at a time, a unit of work that changes the row
  puts it back before it commits, so outside a unit of work it always reads "no actor, auditing on".
"""

from __future__ import annotations

from collections.abc import Sequence

CONTEXT_TABLE = "edi_audit_context"
# The text format SQLAlchemy stores datetimes in on SQLite, microseconds included: values are compared
# as text, so '...:03.800' and '...:03.800000' must not both occur.
SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now') || '000'"
PG_FUNCTION = "edi_audit_row"


def sqlite_context_table() -> list[str]:
    return [
        f"CREATE TABLE {CONTEXT_TABLE} (id INTEGER PRIMARY KEY CHECK (id = 1), actor TEXT, "
        "enabled INTEGER NOT NULL DEFAULT 1)",
        f"INSERT INTO {CONTEXT_TABLE} (id, actor, enabled) VALUES (1, NULL, 1)",
    ]


def _value(row: str, column: str, json_columns: Sequence[str]) -> str:
    # A JSON column is stored as JSON text; json() embeds it as JSON instead of as a quoted string.
    return f"json({row}.{column})" if column in json_columns else f"{row}.{column}"


def _insert_audit(table: str, row: str, operation: str, changes: str) -> str:
    return (
        "INSERT INTO audit_log (table_name, record_id, operation, user_id, timestamp, changes) "
        f"VALUES ('{table}', CAST({row}.id AS TEXT), '{operation}', "
        f"(SELECT actor FROM {CONTEXT_TABLE} WHERE id = 1), {SQLITE_NOW}, {changes});"
    )


def sqlite_triggers(table: str, columns: Sequence[str], json_columns: Sequence[str] = ()) -> list[str]:
    """AFTER INSERT / UPDATE / DELETE triggers on ``table`` writing to audit_log."""
    enabled = f"(SELECT enabled FROM {CONTEXT_TABLE} WHERE id = 1)"

    def whole(row: str) -> str:
        return "json_object(" + ", ".join(f"'{c}', {_value(row, c, json_columns)}" for c in columns) + ")"

    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)
    # One row per changed column; JSON values stay text inside the subquery (SQLite's JSON subtype does
    # not cross a subquery) and become JSON again in the outer json_object.
    per_column = " UNION ALL ".join(
        f"SELECT '{c}' AS name, OLD.{c} AS old, NEW.{c} AS new, {int(c in json_columns)} AS is_json "
        f"WHERE OLD.{c} IS NOT NEW.{c}"
        for c in columns
    )
    update_changes = (
        "(SELECT json_group_object(name, json_object("
        "'old', CASE WHEN is_json THEN json(old) ELSE old END, "
        "'new', CASE WHEN is_json THEN json(new) ELSE new END)) "
        f"FROM ({per_column}))"
    )
    return [
        f"CREATE TRIGGER audit_{table}_insert AFTER INSERT ON {table} WHEN {enabled} "
        f"BEGIN {_insert_audit(table, 'NEW', 'INSERT', whole('NEW'))} END",
        f"CREATE TRIGGER audit_{table}_update AFTER UPDATE ON {table} WHEN {enabled} AND ({changed}) "
        f"BEGIN {_insert_audit(table, 'NEW', 'UPDATE', update_changes)} END",
        f"CREATE TRIGGER audit_{table}_delete AFTER DELETE ON {table} WHEN {enabled} "
        f"BEGIN {_insert_audit(table, 'OLD', 'DELETE', whole('OLD'))} END",
    ]


def sqlite_drop_triggers(table: str) -> list[str]:
    return [f"DROP TRIGGER IF EXISTS audit_{table}_{op}" for op in ("insert", "update", "delete")]


def postgres_function() -> str:
    return f"""
CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changes jsonb;
    row_id text;
BEGIN
    IF coalesce(current_setting('edi_storage.audit', true), '') = 'off' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        changes := to_jsonb(NEW);
        row_id := changes ->> 'id';
    ELSIF TG_OP = 'DELETE' THEN
        changes := to_jsonb(OLD);
        row_id := changes ->> 'id';
    ELSE
        SELECT jsonb_object_agg(n.key, jsonb_build_object('old', o.value, 'new', n.value)) INTO changes
        FROM jsonb_each(to_jsonb(NEW)) AS n JOIN jsonb_each(to_jsonb(OLD)) AS o USING (key)
        WHERE n.value IS DISTINCT FROM o.value;
        IF changes IS NULL THEN
            RETURN NULL;
        END IF;
        row_id := to_jsonb(NEW) ->> 'id';
    END IF;
    INSERT INTO audit_log (table_name, record_id, operation, user_id, timestamp, changes)
    VALUES (TG_TABLE_NAME, row_id, TG_OP, nullif(current_setting('edi_storage.actor', true), ''),
            clock_timestamp(), changes);
    RETURN NULL;
END
$$"""


def postgres_trigger(table: str) -> str:
    return (
        f"CREATE TRIGGER audit_{table} AFTER INSERT OR UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {PG_FUNCTION}()"
    )


def postgres_drop_trigger(table: str) -> str:
    return f"DROP TRIGGER IF EXISTS audit_{table} ON {table}"
