"""storage.analytics: the history read back for learning, on both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from edi_storage import InvalidInput, Storage


def session(sid: str, day: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "id": sid,
        "image_path": f"/{sid}.jpg",
        "naive_prompt": "make it better",
        "created_at": day,
        **fields,
    }


MONDAY = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)  # a Monday, late: UTC days and weeks must hold
SUNDAY = datetime(2026, 3, 8, 0, 15, tzinfo=UTC)
NEXT_MONDAY = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)


@pytest.fixture
def history(storage: Storage) -> Storage:
    storage.sessions.batch_save_sessions(
        [
            session("a", MONDAY, status="completed", final_alignment_score=0.9, model_version="v1",
                    prompts=[{"iteration": 0, "positive_prompt": "p", "quality_score": 0.8}],
                    entities=[{"entity_id": "sky_0", "label": "sky", "confidence": 0.8},
                              {"entity_id": "sky_1", "label": "sky", "confidence": 0.6}],
                    validations=[{"attempt_number": 1, "alignment_score": 0.5},
                                 {"attempt_number": 2, "alignment_score": 0.7}],
                    feedback=[{"feedback_type": "accept", "rating": 5}]),
            session("b", SUNDAY, status="failed", final_alignment_score=0.3, model_version="v2",
                    prompts=[{"iteration": 0, "positive_prompt": "p", "quality_score": 0.4}],
                    entities=[{"entity_id": "sky_0", "label": "sky", "confidence": 1.0},
                              {"entity_id": "car_0", "label": "car", "confidence": 0.5}],
                    validations=[{"attempt_number": 1, "alignment_score": 0.9}],
                    feedback=[{"feedback_type": "reject", "rating": 1}, {"feedback_type": "partial"}]),
            session("c", NEXT_MONDAY, model_version="v1"),
        ]
    )  # fmt: skip
    return storage


def test_feedback_rates_and_rating_distribution(history: Storage) -> None:
    summary = history.analytics.feedback()
    assert summary.total == 3 and summary.per_type == {"accept": 1, "reject": 1, "partial": 1}
    assert summary.rates == {"accept": 33.3, "reject": 33.3, "partial": 33.3}
    assert summary.ratings == {1: 1, 2: 0, 3: 0, 4: 0, 5: 1} and summary.average_rating == 3.0


def test_labels_count_each_session_s_validations_once(history: Storage) -> None:
    sky, car = history.analytics.labels()
    assert (sky.label, sky.entities, sky.sessions, sky.validations) == ("sky", 3, 2, 3)
    assert sky.average_confidence == 0.8 and sky.average_alignment == 0.75  # mean of 0.6 and 0.9
    assert (car.label, car.entities, car.sessions, car.average_alignment) == ("car", 1, 1, 0.9)
    assert [row.label for row in history.analytics.labels(limit=1)] == ["sky"]
    with pytest.raises(InvalidInput, match="limit"):
        history.analytics.labels(limit=0)


def test_trend_per_utc_day_and_week_and_per_model(history: Storage) -> None:
    days = history.analytics.trend("day")
    assert [(p.period, p.sessions, p.completed) for p in days] == [
        (date(2026, 3, 2), 1, 1),
        (date(2026, 3, 8), 1, 0),
        (date(2026, 3, 9), 1, 0),
    ]
    weeks = history.analytics.trend("week")
    assert [(p.period, p.sessions) for p in weeks] == [(date(2026, 3, 2), 2), (date(2026, 3, 9), 1)]
    assert weeks[0].average_alignment == 0.6 and weeks[0].average_quality == 0.6
    by_model = history.analytics.trend("week", by_model=True)
    assert [(p.period, p.model_version, p.sessions) for p in by_model] == [
        (date(2026, 3, 2), "v1", 1),
        (date(2026, 3, 2), "v2", 1),
        (date(2026, 3, 9), "v1", 1),
    ]
    ranged = history.analytics.trend("day", date_from="2026-03-05T00:00:00Z", date_to="2026-03-08T23:59:59Z")
    assert [p.period for p in ranged] == [date(2026, 3, 8)]
    with pytest.raises(InvalidInput, match="period"):
        history.analytics.trend("month")


def test_empty_history_reports_nothing(storage: Storage) -> None:
    assert storage.analytics.feedback().total == 0 and storage.analytics.feedback().average_rating is None
    assert storage.analytics.labels() == [] and storage.analytics.trend() == []


def test_a_trend_over_a_date_range_reads_only_that_range(storage: Storage) -> None:
    """The range walks the (created_at, id) index, and each session's prompts come from theirs."""
    from datetime import timedelta

    from sqlalchemy import text

    from ..plans import plan_nodes, plans_of, postgres_plans_of

    start = datetime(2025, 1, 1, tzinfo=UTC)
    storage.sessions.batch_save_sessions(
        [session(f"s{n}", start + timedelta(hours=2 * n)) for n in range(3000)]
    )
    with storage.engine.begin() as conn:
        conn.execute(text("ANALYZE"))

    def call() -> object:
        return storage.analytics.trend(date_from="2025-03-01T00:00:00Z", date_to="2025-03-02T00:00:00Z")

    if storage.engine.dialect.name == "sqlite":
        plans = plans_of(storage, call)
        assert any("SEARCH sessions USING INDEX ix_sessions_created_at_id" in p for p in plans), plans
    else:
        nodes = [n for plan in postgres_plans_of(storage, call) for n in plan_nodes(plan)]
        # The range is the filter: its rows come from the index. (How the planner reaches the prompts
        # of a dozen sessions, per session or in one pass over a small table, is its choice by cost.)
        assert any(
            n.get("Relation Name") == "sessions" and n.get("Index Name") == "ix_sessions_created_at_id"
            for n in nodes
        )
        assert not any(n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "sessions" for n in nodes)


def test_orders_are_the_same_on_both_backends(storage: Storage) -> None:
    """No model version sorts after every version, and labels tie by code point (B before a)."""
    day = datetime(2026, 3, 4, 12, tzinfo=UTC)
    storage.sessions.batch_save_sessions(
        [
            session("m", day, model_version="m1"),
            session(
                "n", day, entities=[{"entity_id": f"{x}_0", "label": x, "confidence": 0.5} for x in "baB"]
            ),
        ]
    )
    assert [p.model_version for p in storage.analytics.trend(by_model=True)] == ["m1", None]
    assert [row.label for row in storage.analytics.labels()] == ["B", "a", "b"]
