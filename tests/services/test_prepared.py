"""Prepared statements store and read exactly what the ORM does, and fail the way SQLAlchemy does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Text, insert, select

from edi_storage import Storage
from edi_storage.error_mapping import database_errors
from edi_storage.errors import StorageError
from edi_storage.models.sessions import EditSession
from edi_storage.services.prepared import Prepared
from edi_storage.services.sessions import SESSIONS


def test_values_round_trip_through_the_column_types(storage: Storage) -> None:
    """Datetimes are stored as the ORM stores them (UTC) and come back aware; JSON comes back as JSON."""
    written = datetime(2026, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    row = {
        "id": "prepared-1",
        "image_path": "a.png",
        "naive_prompt": "p",
        "status": "completed",
        "session_metadata": {"k": [1, 2]},
        "created_at": written,
        "updated_at": written,
    }
    with storage.unit_of_work() as uow:
        Prepared(insert(SESSIONS), list(row)).execute(uow.session.connection(), [row])
    with storage.unit_of_work(readonly=True) as uow:
        found = Prepared(select(SESSIONS).where(SESSIONS.c.id == "prepared-1")).rows(
            uow.session.connection(), {}
        )
        orm = uow.session.get(EditSession, "prepared-1")
    assert found[0]["created_at"] == written and found[0]["created_at"].tzinfo == UTC
    assert found[0]["session_metadata"] == {"k": [1, 2]}
    assert orm is not None and orm.created_at == written and orm.session_metadata == {"k": [1, 2]}


def test_an_insert_must_name_every_column_it_binds() -> None:
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("a", Text, default="x"))
    storage = Storage("sqlite://")
    with storage.engine.connect() as connection, pytest.raises(TypeError, match="missing"):
        Prepared(insert(table), ["id"]).execute(connection, [{"id": 1}])


def test_driver_errors_are_translated_like_any_other(storage: Storage) -> None:
    missing = Table("no_such_table", MetaData(), Column("id", Integer))
    with (
        storage.unit_of_work(readonly=True) as uow,
        pytest.raises(StorageError, match="no_such_table"),
        database_errors(),
    ):
        Prepared(select(missing)).rows(uow.session.connection(), {})
