"""Where a database stands against the code: empty, current, behind, ahead, or a reference database.

A "reference database" is one written by the sample implementations edi-storage replaces (the
``EDIDatabase`` of storage-layer.md or the ``Database`` class of storage-database.md): the five session
tables exist, there is no version table, and ids need not be UUIDs. Its shape is the base schema, which
is exactly revision 0001, so it is adopted by stamping 0001 and upgrading from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import Connection, inspect, text

from edi_storage.errors import SchemaError, SchemaOutOfDate, SchemaTooNew, SchemaUnrecognised
from edi_storage.migrate.base_schema import base_metadata
from edi_storage.migrate.scripts import VERSION_TABLE, head_revision, known_revisions

BASE_REVISION = "0001_base_schema"

# The base schema of storage-layer.md 5.1, table -> columns: exactly what revision 0001 creates.
REFERENCE_COLUMNS: dict[str, frozenset[str]] = {
    table.name: frozenset(table.columns.keys()) for table in base_metadata().sorted_tables
}
# Columns a reference implementation may have added on top of the base schema (the Database class adds
# sessions.updated_at); revision 0002 keeps their values instead of adding the column again.
REFERENCE_OPTIONAL_COLUMNS: dict[str, frozenset[str]] = {"sessions": frozenset({"updated_at"})}


class SchemaState(StrEnum):
    EMPTY = "empty"
    FOREIGN = "foreign"  # tables of another application, none of edi-storage's
    CURRENT = "current"
    BEHIND = "behind"
    AHEAD = "ahead"
    REFERENCE = "reference"
    UNRECOGNISED = "unrecognised"


@dataclass(frozen=True)
class SchemaStatus:
    state: SchemaState
    revision: str | None
    head: str
    differences: list[str] = field(default_factory=list)


def read_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return rows[0] if rows else None


def inspect_schema(connection: Connection) -> SchemaStatus:
    head = head_revision()
    revision = read_revision(connection)
    if revision is not None:
        if revision == head:
            return SchemaStatus(SchemaState.CURRENT, revision, head)
        if revision in known_revisions():
            return SchemaStatus(SchemaState.BEHIND, revision, head)
        return SchemaStatus(SchemaState.AHEAD, revision, head)
    existing = set(inspect(connection).get_table_names())
    ours = existing & REFERENCE_COLUMNS.keys()
    if not ours:
        others = sorted(t for t in existing if not t.startswith("sqlite_")) + _elsewhere(connection)
        if others:
            return SchemaStatus(SchemaState.FOREIGN, None, head, [f"it holds table {t!r}" for t in others])
        return SchemaStatus(SchemaState.EMPTY, None, head)
    differences = reference_shape_differences(connection, existing)
    state = SchemaState.UNRECOGNISED if differences else SchemaState.REFERENCE
    return SchemaStatus(state, None, head, differences)


def _elsewhere(connection: Connection) -> list[str]:
    """Another application's objects beside the tables of the default schema: views, and on PostgreSQL
    tables in schemas of their own (``schema.table``)."""
    inspector = inspect(connection)
    found = list(inspector.get_view_names())
    if connection.dialect.name == "postgresql":
        for schema in inspector.get_schema_names():
            if schema in {"public", "information_schema"} or schema.startswith("pg_"):
                continue
            found += [f"{schema}.{t}" for t in inspector.get_table_names(schema=schema)]
            found += [f"{schema}.{v}" for v in inspector.get_view_names(schema=schema)]
    return sorted(found)


def reference_shape_differences(connection: Connection, existing: set[str]) -> list[str]:
    """Everything that keeps the database from being the reference shape, one sentence each."""
    inspector = inspect(connection)
    differences: list[str] = []
    for table, expected in REFERENCE_COLUMNS.items():
        if table not in existing:
            differences.append(f"table {table!r} is missing")
            continue
        columns = {c["name"] for c in inspector.get_columns(table)}
        if missing := sorted(expected - columns):
            differences.append(f"table {table!r} lacks columns {missing}")
        if unexpected := sorted(columns - expected - REFERENCE_OPTIONAL_COLUMNS.get(table, frozenset())):
            differences.append(f"table {table!r} has unexpected columns {unexpected}")
    return differences


UPGRADE_HINT = (
    "run `edi-storage upgrade` (or `alembic upgrade head` with EDI_STORAGE_URL set, "
    "or open it with Storage(..., auto_upgrade=True))"
)


def refusal(status: SchemaStatus) -> SchemaError | None:
    """The error for a database that must not be migrated at all (None when an upgrade may proceed).

    Shared by alembic/env.py, which refuses before touching anything, and by Storage.
    """
    if status.state is SchemaState.AHEAD:
        return SchemaTooNew(
            f"the database is at revision {status.revision!r}, which this release of edi-storage does not "
            f"know (its newest is {status.head!r}); upgrade edi-storage (pip install -U edi-storage). "
            "Nothing was changed."
        )
    if status.state is SchemaState.UNRECOGNISED:
        return SchemaUnrecognised(
            "the database has edi-storage's table names but neither its schema history nor the reference "
            "shape: " + "; ".join(status.differences) + ". Nothing was changed."
        )
    return None


def unusable(status: SchemaStatus) -> SchemaError | None:
    """The error for a database the services cannot use as it is (None when it is at head)."""
    if status.state is SchemaState.CURRENT:
        return None
    if (error := refusal(status)) is not None:
        return error
    if status.state is SchemaState.FOREIGN:
        tables = ", ".join(d.removeprefix("it holds table ") for d in status.differences)
        return SchemaOutOfDate(
            f"the database holds another application's tables ({tables}) and none of edi-storage's; "
            "edi-storage adds its tables to it only when asked: run `edi-storage upgrade` "
            "(or storage.upgrade())"
        )
    where = {
        SchemaState.REFERENCE: "a database written by the reference implementation",
        SchemaState.EMPTY: "without edi-storage tables",
    }.get(status.state, f"at revision {status.revision!r}")
    return SchemaOutOfDate(f"the database is {where}, behind this release ({status.head!r}); {UPGRADE_HINT}")
