"""Shared fixtures: the shipped ones (a migrated database per test, on SQLite and, when
EDI_STORAGE_TEST_POSTGRES_URL is set, PostgreSQL) plus a factory seed per test."""

from __future__ import annotations

import pytest

from edi_storage.testing import seed

pytest_plugins = ["edi_storage.testing.fixtures"]


@pytest.fixture(autouse=True)
def _deterministic_factories() -> None:
    seed(20261123)
