"""What differs between SQLite and PostgreSQL, in one place.

Every service statement is portable SQLAlchemy except for the few things the two databases spell
differently: the upsert ``INSERT``, where NULLs sort, how to keep the planner off an index, the audit
context of a transaction, a UTC calendar day, full-text search and sequences. Services ask
``dialect_of(session)`` for the object that knows its database and never test ``dialect.name``
themselves.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Date,
    Float,
    Select,
    Table,
    TextClause,
    case,
    cast,
    func,
    literal_column,
    null,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import UnaryExpression

from edi_storage.migrate.audit_triggers import CONTEXT_TABLE
from edi_storage.models.base import UTCDateTime
from edi_storage.models.library import FTS_TABLE

_ColumnLike = ColumnElement[Any] | QueryableAttribute[Any]


class SQLDialect:
    """The portable defaults; each database overrides what it spells its own way."""

    name = ""
    vacuum_sql = "VACUUM"
    checkpoint_sql: str | None = None

    # -- whole-database operations (edi_storage.ops), on a connection of their own ----------------
    def integrity(self, conn: Connection) -> tuple[str | None, int | None]:
        """The database's own integrity verdict and count of rows pointing at missing parents, or
        ``(None, None)`` where there is no such check."""
        return None, None

    def object_bytes(self, conn: Connection, tables: list[str]) -> dict[str, int]:
        """Bytes on disk per table (and, where the database can tell, per index)."""
        raise NotImplementedError

    def pages(self, conn: Connection) -> tuple[int | None, int | None]:
        """Page size and free pages of the file, where the database is a file."""
        return None, None

    def outside_transaction(self, conn: Connection, statement: str) -> None:
        """Run a statement that refuses to run inside a transaction (VACUUM, a checkpoint)."""
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text(statement))

    def insert(self, target: Table | type[Any]) -> Any:
        """An ``INSERT`` that can take ``on_conflict_do_update`` (both databases spell it alike); on a
        mapped class it is an ORM-enabled statement."""
        raise NotImplementedError

    def nulls_last(self, column: ColumnElement[Any], *, descending: bool) -> tuple[ColumnElement[Any], ...]:
        """Order by ``column`` with NULLs after every value, written so that an index on ``column``
        still serves it where the database's own NULL placement already agrees."""
        ordered = column.desc() if descending else column.asc()
        return (ordered.nulls_last(),)

    def binary(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """``column`` compared by its characters' code points, as SQLite's default BINARY collation does,
        so that an ORDER BY on text gives the same order on both databases."""
        return column

    def native_nulls_last(self, *, descending: bool) -> bool:
        """Whether a plain ``ORDER BY column [DESC]`` already puts NULLs last here."""
        raise NotImplementedError

    def unindexed(self, column: _ColumnLike) -> ColumnElement[Any]:
        """``column`` as the planner should not use an index for (a filter that must not outrank the
        index serving the ORDER BY); PostgreSQL's cost-based planner needs no such hint."""
        return column.expression

    def audit_context(self, actor: str | None, enabled: bool) -> tuple[TextClause, dict[str, Any]]:
        """The statement that tells this transaction's audit triggers who acts and whether to record."""
        raise NotImplementedError

    def reset_audit_context(self) -> tuple[TextClause, dict[str, Any]] | None:
        """The statement that puts the audit context back before commit, if it outlives a transaction."""
        return None

    def utc_day(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """The UTC calendar day of a timestamp column."""
        raise NotImplementedError

    def utc_week(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """The Monday (a date) that starts the UTC ISO week of a timestamp column."""
        raise NotImplementedError

    def reset_sequences_sql(self, tables: list[Table]) -> list[TextClause]:
        """Statements that move serial sequences past the highest id, after rows with explicit ids."""
        return []

    def json_object(self, fields: dict[str, ColumnElement[Any]]) -> ColumnElement[Any]:
        """A JSON object built in the database from ``fields`` (key -> column), every value exact."""
        raise NotImplementedError

    def json_array(self, element: ColumnElement[Any], *where: ColumnElement[bool]) -> ColumnElement[Any]:
        """A scalar subquery: the JSON array of ``element`` over the rows ``where`` selects (``[]`` for
        none), in no particular order."""
        raise NotImplementedError

    def text_search(self, statement: Select[Any], table: Table, words: str) -> Select[Any]:
        """``statement`` over ``table`` narrowed to the rows whose ``prompt_text`` holds every word of
        ``words``, best match first (then by id); words are matched as words, never as operators."""
        raise NotImplementedError

    def prefix_search(self, statement: Select[Any], table: Table, words: list[str]) -> Select[Any]:
        """``statement`` narrowed to the rows with a word starting with each of ``words`` (letters and
        digits only, see ``prefix_words``), in no order: the caller orders them, alike on both."""
        raise NotImplementedError


class SQLiteDialect(SQLDialect):
    name = "sqlite"
    checkpoint_sql = "PRAGMA wal_checkpoint(TRUNCATE)"

    def integrity(self, conn: Connection) -> tuple[str | None, int | None]:
        # Damage bad enough that SQLite aborts the check ("database disk image is malformed") is a
        # verdict too, not an error of the check.
        try:
            verdict = "; ".join(str(r[0]) for r in conn.execute(text("PRAGMA integrity_check")))
            violations = len(conn.execute(text("PRAGMA foreign_key_check")).all())
        except DatabaseError as error:
            conn.rollback()
            return f"check aborted: {error.orig}", None
        return verdict, violations

    def object_bytes(self, conn: Connection, tables: list[str]) -> dict[str, int]:
        rows = conn.execute(text("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
        return {str(name): int(size) for name, size in rows}

    def pages(self, conn: Connection) -> tuple[int | None, int | None]:
        page_size = int(conn.execute(text("PRAGMA page_size")).scalar_one())
        return page_size, int(conn.execute(text("PRAGMA freelist_count")).scalar_one())

    def outside_transaction(self, conn: Connection, statement: str) -> None:
        # SQLAlchemy's AUTOCOMMIT level on pysqlite would hand the connection back to the driver's legacy
        # transaction mode when it is reset (see engine.py); edi-storage's connections are in driver
        # autocommit already, with BEGIN emitted by SQLAlchemy, so outside a transaction the driver
        # connection runs the statement as it is.
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute(statement)

    def insert(self, target: Table | type[Any]) -> Any:
        return sqlite.insert(target)

    def native_nulls_last(self, *, descending: bool) -> bool:
        return descending  # NULL is the smallest value in SQLite

    def nulls_last(self, column: ColumnElement[Any], *, descending: bool) -> tuple[ColumnElement[Any], ...]:
        if descending:
            return (column.desc(),)  # already last; NULLS LAST would keep the index from serving it
        return super().nulls_last(column, descending=descending)

    def unindexed(self, column: _ColumnLike) -> ColumnElement[Any]:
        # SQLite's documented way to keep a term from using an index: the no-op unary plus.
        return UnaryExpression(column.expression, operator=operators.custom_op("+"), type_=column.type)

    def audit_context(self, actor: str | None, enabled: bool) -> tuple[TextClause, dict[str, Any]]:
        return _SQLITE_CONTEXT, {"actor": actor, "enabled": int(enabled)}

    def reset_audit_context(self) -> tuple[TextClause, dict[str, Any]] | None:
        # The context is a shared one-row table: the next writer must start from the default.
        return _SQLITE_CONTEXT, {"actor": None, "enabled": 1}

    def utc_day(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.date(column)  # stored as naive UTC text

    def utc_week(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        # Six days back, then forward to a Monday ('weekday 1' stays on one): the week's Monday.
        return func.date(column, "-6 days", "weekday 1")

    def json_object(self, fields: dict[str, ColumnElement[Any]]) -> ColumnElement[Any]:
        return func.json_object(
            *(part for key, column in fields.items() for part in (_key(key), _exact(column)))
        )

    def json_array(self, element: ColumnElement[Any], *where: ColumnElement[bool]) -> ColumnElement[Any]:
        # json(): the array stays JSON in the outer object even where a subquery would lose its subtype.
        return func.json(select(func.json_group_array(element)).where(*where).scalar_subquery())

    def text_search(self, statement: Select[Any], table: Table, words: str) -> Select[Any]:
        # The FTS5 index (migrate: prompt_library_fts) shares the table's rowid; BM25 ranks it.
        fts: ColumnElement[Any] = literal_column(FTS_TABLE)
        return self._fts(statement, table, fts5_query(words)).order_by(func.bm25(fts), table.c.id)

    def prefix_search(self, statement: Select[Any], table: Table, words: list[str]) -> Select[Any]:
        return self._fts(statement, table, " ".join(f'"{word}"*' for word in words))

    def _fts(self, statement: Select[Any], table: Table, match: str) -> Select[Any]:
        fts: ColumnElement[Any] = literal_column(FTS_TABLE)
        joined = table.join(text(FTS_TABLE), table.c.id == literal_column(f"{FTS_TABLE}.rowid"))
        return statement.select_from(joined).where(fts.op("MATCH")(match))


class PostgreSQLDialect(SQLDialect):
    name = "postgresql"
    vacuum_sql = "VACUUM ANALYZE"

    def object_bytes(self, conn: Connection, tables: list[str]) -> dict[str, int]:
        statement = text("SELECT pg_total_relation_size(:t)")
        return {name: int(conn.execute(statement, {"t": name}).scalar_one()) for name in tables}

    def insert(self, target: Table | type[Any]) -> Any:
        return postgresql.insert(target)

    def native_nulls_last(self, *, descending: bool) -> bool:
        return not descending  # NULL is the largest value in PostgreSQL

    def binary(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        return column.collate("C")

    def nulls_last(self, column: ColumnElement[Any], *, descending: bool) -> tuple[ColumnElement[Any], ...]:
        if not descending:
            return (column.asc(),)
        return super().nulls_last(column, descending=descending)

    def audit_context(self, actor: str | None, enabled: bool) -> tuple[TextClause, dict[str, Any]]:
        return _PG_CONTEXT, {"actor": actor or "", "enabled": enabled}

    def utc_day(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        return cast(func.timezone("UTC", column), Date)

    def utc_week(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        return cast(func.date_trunc("week", func.timezone("UTC", column)), Date)  # ISO weeks start Monday

    def json_object(self, fields: dict[str, ColumnElement[Any]]) -> ColumnElement[Any]:
        # float8 is rendered in its shortest exact form and JSONB as it is; timestamps in UTC, whatever the
        # server's TimeZone, so that they read back (and sort) as the instants they are.
        return func.json_build_object(
            *(part for key, column in fields.items() for part in (_key(key), _in_utc(column)))
        )

    def json_array(self, element: ColumnElement[Any], *where: ColumnElement[bool]) -> ColumnElement[Any]:
        return (
            select(func.coalesce(func.json_agg(element), text("'[]'::json"))).where(*where).scalar_subquery()
        )

    def text_search(self, statement: Select[Any], table: Table, words: str) -> Select[Any]:
        # The GIN index on to_tsvector('simple', prompt_text) serves the match; ts_rank orders it.
        vector = func.to_tsvector(text("'simple'"), table.c.prompt_text)
        query = func.plainto_tsquery(text("'simple'"), words)
        return statement.where(vector.op("@@")(query)).order_by(
            func.ts_rank(vector, query).desc(), table.c.id
        )

    def prefix_search(self, statement: Select[Any], table: Table, words: list[str]) -> Select[Any]:
        # The same GIN index serves prefix lexemes (word:*).
        vector = func.to_tsvector(text("'simple'"), table.c.prompt_text)
        query = func.to_tsquery(text("'simple'"), " & ".join(f"{word}:*" for word in words))
        return statement.where(vector.op("@@")(query))

    def reset_sequences_sql(self, tables: list[Table]) -> list[TextClause]:
        return [
            text(
                f"SELECT setval(pg_get_serial_sequence('{t.name}', 'id'), "
                f"coalesce((SELECT max(id) FROM {t.name}), 0) + 1, false)"
            )
            for t in tables
        ]


def _key(name: str) -> ColumnElement[Any]:
    """A JSON key written into the SQL (our own attribute names, never user text)."""
    return literal_column(f"'{name}'")


def _exact(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A SQLite column value as a JSON object member without loss: JSON text as JSON (not a string),
    and REALs as 17-digit text, since SQLite's JSON functions print floats with only 15 digits. (SQLite's
    printf is exact up to about 10^100; the input models bound every REAL column far below that.)"""
    if isinstance(column.type, JSON):
        return func.json(column)
    if isinstance(column.type, Float):
        return case((column.is_(None), null()), else_=func.printf("%!.17g", column))
    return column


def _in_utc(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.timezone("UTC", column) if isinstance(column.type, UTCDateTime) else column


def prefix_words(text_: str) -> list[str]:
    """The words of ``text_`` as both full-text engines split them: runs of letters and digits,
    lower-cased (FTS5's unicode61 tokenizer and PostgreSQL's 'simple' parser both break at
    punctuation, white space and underscores). Being letters and digits only, no word can be read as
    an operator by either query language."""
    return re.findall(r"[^\W_]+", text_.lower())


def fts5_query(words: str) -> str:
    """User text as an FTS5 query that matches every word, with FTS5's operators taken literally."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in words.split())


_SQLITE_CONTEXT = text(f"UPDATE {CONTEXT_TABLE} SET actor = :actor, enabled = :enabled WHERE id = 1")
_PG_CONTEXT = text(
    "SELECT set_config('edi_storage.actor', :actor, true), "
    "set_config('edi_storage.audit', CASE WHEN :enabled THEN 'on' ELSE 'off' END, true)"
)
_DIALECTS: dict[str, SQLDialect] = {d.name: d for d in (SQLiteDialect(), PostgreSQLDialect())}


def dialect_named(name: str) -> SQLDialect:
    try:
        return _DIALECTS[name]
    except KeyError:
        raise ValueError(f"edi-storage supports SQLite and PostgreSQL, not {name!r}") from None


def dialect_of(session: Session) -> SQLDialect:
    """The dialect of the database ``session`` is bound to."""
    return dialect_named(session.get_bind().dialect.name)
