"""Every page of history is read in index order and stops after ``limit`` rows.

The data is the awkward case: most sessions share one ``created_at`` (one batch, as a batch import or a
database adopted from the reference code's second-resolution timestamps makes them), some have no score.
For every combination of filters with every ordering the service can issue, the plan must not sort the
matching rows: on SQLite no ``USE TEMP B-TREE FOR ORDER BY`` at all; on PostgreSQL, whose planner
weighs costs from statistics, no Sort over more than a twentieth of the table (it may rightly choose to
sort the few dozen rows an index found for a very selective filter, never to sort the table).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from edi_storage import Storage
from edi_storage.testing.fixtures import BACKENDS
from edi_storage.vocabulary import OrderBy

from ..plans import plan_nodes, plans_of, postgres_plans_of

FILTERS: dict[str, Any] = {
    "status_filter": "completed",
    "date_from": "2026-01-01T00:00:00Z",
    "date_to": "2036-01-01T00:00:00Z",
    "min_score": 0.8,
    "search_term": "sky",
    "user_id": "user-3",
    "project_id": "project-1",
}
QUERIES = [
    {name: FILTERS[name] for name in chosen} | {"order_by": order.value}
    for size in range(len(FILTERS) + 1)
    for chosen in itertools.combinations(FILTERS, size)
    for order in OrderBy
]
SESSIONS = 6000


def _sessions(count: int) -> Iterator[dict[str, Any]]:
    statuses = ["completed", "in_progress", "failed"]
    for n in range(count):
        yield {
            "image_path": f"/photos/{n}.jpg",
            "naive_prompt": "make the sky dramatic" if n % 7 == 0 else f"brighten corner {n}",
            "status": statuses[n % 3],
            "final_alignment_score": None if n % 5 == 0 else (n % 100) / 100,
            "user_id": f"user-{n % 10}",
            "project_id": f"project-{n % 4}",
        }


@pytest.fixture(scope="module", params=BACKENDS)
def history_storage(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Storage]:
    """One database per backend for the whole module: many sessions, one shared timestamp."""
    if request.param == "sqlite":
        storage = Storage(f"sqlite:///{tmp_path_factory.mktemp('plans') / 'plans.db'}")
    else:
        url = request.getfixturevalue("postgres_database")
        storage = Storage(url)
        from edi_storage.testing.fixtures import empty_postgres_tables

        empty_postgres_tables(storage)
    batch = list(_sessions(SESSIONS))
    storage.sessions.batch_save_sessions(batch)  # no created_at: the whole batch shares one
    with storage.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    try:
        yield storage
    finally:
        if request.param != "sqlite":
            from edi_storage.testing.fixtures import empty_postgres_tables

            empty_postgres_tables(storage)
        storage.close()


@pytest.mark.parametrize(
    "query", QUERIES, ids=lambda q: ",".join(f"{k}" for k in q if k != "order_by") + f"|{q['order_by']}"
)
def test_no_history_page_sorts_its_matches(history_storage: Storage, query: dict[str, Any]) -> None:
    def call() -> object:
        return history_storage.sessions.query_history(limit=20, **query)

    if history_storage.engine.dialect.name == "sqlite":
        plans = plans_of(history_storage, call)
        assert plans and not any("TEMP B-TREE" in line for line in plans), plans
    else:
        for plan in postgres_plans_of(history_storage, call):
            sorted_rows = [
                node["Plan Rows"]
                for node in plan_nodes(plan)
                if node["Node Type"] in {"Sort", "Incremental Sort"}
            ]
            assert all(rows <= SESSIONS / 20 for rows in sorted_rows), (sorted_rows, plan)


def test_the_data_really_shares_timestamps(history_storage: Storage) -> None:
    """The plans above are checked on the case that used to sort: one created_at for every session."""
    with history_storage.engine.connect() as conn:
        assert conn.execute(text("SELECT count(DISTINCT created_at) FROM sessions")).scalar_one() == 1


def test_user_and_project_filters_return_exactly_their_sessions(history_storage: Storage) -> None:
    """user-3 is every tenth session, project-1 every fourth; both at once, every twentieth."""
    sessions = history_storage.sessions
    mine = sessions.query_history(limit=10_000, user_id="user-3")
    assert len(mine) == SESSIONS // 10 and {s.user_id for s in mine} == {"user-3"}
    both = sessions.query_history(limit=10_000, user_id="user-3", project_id="project-1")
    assert len(both) == SESSIONS // 20 and {(s.user_id, s.project_id) for s in both} == {
        ("user-3", "project-1")
    }
    assert sessions.get_session_count(user_id="user-3", project_id="project-1") == SESSIONS // 20
    completed = sessions.get_session_count("completed", user_id="user-3")
    assert completed == sum(1 for s in mine if s.status == "completed") > 0
    assert sessions.query_history(user_id="nobody") == [] and sessions.get_session_count(project_id="x") == 0
