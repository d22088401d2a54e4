"""Settings, from arguments or ``EDI_STORAGE_*`` environment variables (arguments win)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_URL = "sqlite:///edi_sessions.db"


class Settings(BaseSettings):
    """How to reach the database and how careful to be with it.

    ``busy_timeout_ms`` is how long a SQLite writer waits for another writer's lock before ``Busy`` is
    raised; with writes that take the lock up front (``BEGIN IMMEDIATE``) waiting is all a writer ever
    has to do.
    """

    model_config = SettingsConfigDict(env_prefix="EDI_STORAGE_", extra="ignore")

    url: str = DEFAULT_URL
    busy_timeout_ms: int = Field(default=30_000, ge=0)
    auto_upgrade: bool = False
    backup_before_upgrade: bool = True
    echo: bool = False
    record_query_performance: bool = False
    query_performance_retention_days: int = Field(default=30, ge=1)
