"""The declarative base every edi-storage model shares.

One registry carries the three decisions that must hold for every table, so that no model can forget them:

* a constraint naming convention, because Alembic's batch mode on SQLite can only drop or recreate
  constraints it can name, and silently loses unnamed CHECK constraints when it rebuilds a table;
* a ``type_annotation_map`` so that ``Mapped[datetime]`` always means timezone-aware UTC and
  ``Mapped[dict[str, Any]]`` / ``Mapped[list[...]]`` always mean real, portable JSON (JSONB on PostgreSQL);
* ``Text`` for every string, as the reference schema declares, so adopted databases keep their types.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, DateTime, Dialect, Float, MetaData, Table, Text, func, inspect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.mutable import MutableDict, MutableList
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Now, aware, in UTC: the only clock the models use (never ``datetime.now()`` evaluated at import)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on the way out, whatever the dialect stores.

    SQLite has no time zone type, so values are stored as naive UTC there (the format SQLite's own
    ``CURRENT_TIMESTAMP`` uses, which keeps server defaults and raw SQL writers consistent); PostgreSQL
    gets ``TIMESTAMP WITH TIME ZONE``. A naive value coming in is taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.replace(tzinfo=None) if dialect.name == "sqlite" else aware

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def portable_json() -> TypeEngine[Any]:
    """JSON that is SQL NULL for a Python None (not the JSON literal 'null'); JSONB on PostgreSQL.

    A new instance per use: ``Mutable*.as_mutable`` tracks columns by type instance, so a dict column and
    a list column sharing one instance would get each other's wrapper.
    """
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        str: Text(),
        float: Float(),
        datetime: UTCDateTime(),
        # Mutable wrappers make in-place edits (obj.meta["k"] = v) visible to the unit of work.
        dict[str, Any]: MutableDict.as_mutable(portable_json()),
        list[str]: MutableList.as_mutable(portable_json()),
        list[float]: MutableList.as_mutable(portable_json()),
    }


def table_of(model: type[Base]) -> Table:
    """A mapped class's Table, typed as one (``__table__`` is declared as the broader FromClause)."""
    return cast(Table, model.__table__)


def columns_of(model: type[Base]) -> list[InstrumentedAttribute[Any]]:
    """Every mapped column attribute of ``model``, keyed by attribute name (``Entity.bbox``).

    ``select(*columns_of(Model))`` reads rows without building entities, yet is an ORM-enabled
    statement: the Session autoflushes before it and its rows are keyed as the model's attributes."""
    return [getattr(model, attr.key) for attr in inspect(model).column_attrs]


class CreatedAt:
    """``created_at``, set once by Python (microsecond precision) or by the database for raw SQL inserts."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.current_timestamp())


class Timestamps(CreatedAt):
    """``created_at`` plus an ``updated_at`` that every ORM UPDATE refreshes.

    Core UPDATE statements issued by the services set ``updated_at`` themselves: ``onupdate`` only fires
    for statements that SQLAlchemy builds from ORM state or table-level ``update()`` without a value.
    """

    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.current_timestamp()
    )
