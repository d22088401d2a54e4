"""Settings, from arguments or ``EDI_STORAGE_*`` environment variables (arguments win)."""

from __future__ import annotations

import importlib.util
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import URL, make_url
from sqlalchemy.exc import ArgumentError

from edi_storage.errors import DatabaseUnavailable, InvalidInput

DEFAULT_URL = "sqlite:///edi_sessions.db"


class Settings(BaseSettings):
    """How to reach the database and how careful to be with it.

    ``busy_timeout_ms`` is how long a SQLite writer waits for another writer's lock before ``Busy`` is
    raised; with writes that take the lock up front (``BEGIN IMMEDIATE``) waiting is all a writer ever
    has to do.

    ``sqlite_cache_size_kib`` and ``sqlite_temp_store`` are set on every SQLite connection when given
    (``PRAGMA cache_size = -N``, ``PRAGMA temp_store``); unset, SQLite's own defaults apply (2 MiB,
    temporary tables on disk). ``pool_size`` and ``max_overflow`` size the connection pool of a file or
    server database (a database in memory has one connection); unset, SQLAlchemy's (5 and 10).
    """

    model_config = SettingsConfigDict(env_prefix="EDI_STORAGE_", extra="ignore")

    url: str = DEFAULT_URL
    busy_timeout_ms: int = Field(default=30_000, ge=0)
    auto_upgrade: bool = False
    backup_before_upgrade: bool = True
    echo: bool = False
    record_query_performance: bool = False
    query_performance_retention_days: int = Field(default=30, ge=1)
    slow_query_ms: float = Field(default=500, ge=0, allow_inf_nan=False)
    sqlite_cache_size_kib: int | None = Field(default=None, ge=1)
    sqlite_temp_store: Literal["default", "file", "memory"] | None = None
    pool_size: int | None = Field(default=None, ge=1)
    max_overflow: int | None = Field(default=None, ge=0)


URL_FORMS = "a SQLite file is sqlite:///PATH, PostgreSQL postgresql://USER@HOST/DATABASE"


def database_url(value: str | URL) -> URL:
    """Parse a database URL; a mistake is one clear error naming the fix, never a driver traceback.

    A bare ``postgresql://`` means psycopg 3, the driver the ``postgres`` extra installs.
    """
    try:
        url = make_url(value)
    except ArgumentError:
        raise InvalidInput.single("url", f"is not a database URL ({URL_FORMS})", value) from None
    backend = url.get_backend_name()
    if backend not in {"sqlite", "postgresql"}:
        shown = url.render_as_string(hide_password=True)
        problem = f"names a database edi-storage does not support ({URL_FORMS})"
        raise InvalidInput.single("url", problem, shown)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if url.drivername == "postgresql+psycopg" and importlib.util.find_spec("psycopg") is None:
        raise DatabaseUnavailable(
            "PostgreSQL needs the psycopg driver, which is not installed: pip install 'edi-storage[postgres]'"
        )
    return url
