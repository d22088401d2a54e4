"""The session service's contracts, on every configured backend (see edi_storage.testing.fixtures)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from edi_storage import InvalidInput, NotFound, SessionStatus, Storage
from edi_storage.models import EditSession, Entity, Prompt, UserFeedback, Validation
from edi_storage.testing import SessionCreateFactory
from edi_storage.testing.examples import reference_session


def count_rows(storage: Storage, model: type[Any]) -> int:
    with storage.unit_of_work(readonly=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(model)) or 0


def all_counts(storage: Storage) -> dict[str, int]:
    return {
        m.__tablename__: count_rows(storage, m)
        for m in (EditSession, Prompt, Entity, Validation, UserFeedback)
    }


class StatementCounter:
    def __init__(self, storage: Storage) -> None:
        self.count = 0
        event.listen(storage.engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: object) -> None:
        self.count += 1


# -- save and load ---------------------------------------------------------------------------------
def test_reference_dict_round_trips_in_reference_shape(storage: Storage) -> None:
    session_id = storage.sessions.save_session(reference_session())
    loaded = storage.sessions.load_session(session_id)
    assert loaded is not None
    dumped = loaded.model_dump(mode="json")
    assert dumped["id"] == "session-789"
    assert dumped["status"] == "completed"
    assert dumped["entities"][0]["bbox"] == {"x1": 0, "y1": 0, "x2": 1920, "y2": 768}
    assert dumped["prompts"][0]["positive_prompt"] == "dramatic sky with storm clouds"
    assert dumped["validations"][0]["preserved_count"] == 3
    assert dumped["user_feedback"]["rating"] == 5
    assert loaded.created_at.tzinfo is UTC


def test_save_without_id_assigns_a_uuid4(storage: Storage) -> None:
    data = reference_session()
    del data["id"]
    session_id = storage.sessions.save_session(data)
    assert len(session_id) == 36
    assert session_id[14] == "4"


def test_saving_an_existing_id_replaces_and_never_duplicates(storage: Storage) -> None:
    storage.sessions.save_session(reference_session())
    first = storage.sessions.load_session("session-789")
    storage.sessions.save_session(reference_session())
    assert all_counts(storage) == {
        "sessions": 1,
        "prompts": 1,
        "entities": 1,
        "validations": 1,
        "user_feedback": 1,
    }

    storage.sessions.save_session(reference_session(status="failed", prompts=[], entities=[]))
    again = storage.sessions.load_session("session-789")
    assert again is not None and first is not None
    assert again.status is SessionStatus.FAILED
    assert again.prompts == [] and again.entities == []
    assert again.created_at == first.created_at, "replacing keeps the original creation time"
    assert again.updated_at > first.updated_at


def test_load_unknown_session_is_none(storage: Storage) -> None:
    assert storage.sessions.load_session("nope") is None


def test_children_come_back_in_order(storage: Storage) -> None:
    data = reference_session(
        prompts=[{"iteration": i, "positive_prompt": f"p{i}"} for i in (2, 0, 1)],
        validations=[{"attempt_number": n} for n in (3, 1, 2)],
    )
    storage.sessions.save_session(data)
    loaded = storage.sessions.load_session("session-789")
    assert loaded is not None
    assert [p.iteration for p in loaded.prompts] == [0, 1, 2]
    assert [v.attempt_number for v in loaded.validations] == [1, 2, 3]


def test_load_is_a_bounded_number_of_queries(storage: Storage) -> None:
    small = SessionCreateFactory.build(n_prompts=1, n_entities=1, n_validations=1)
    large = SessionCreateFactory.build(n_prompts=30, n_entities=60, n_validations=20)
    storage.sessions.batch_save_sessions([small, large])
    counts = []
    for item in (small, large):
        counter = StatementCounter(storage)
        assert item.id is not None
        storage.sessions.load_session(item.id)
        counts.append(counter.count)
        event.remove(storage.engine, "before_cursor_execute", counter._seen)
    assert counts[0] == counts[1], "a bigger graph must not cost more queries (no N+1)"
    assert counts[1] <= 8


def test_saving_a_graph_is_a_bounded_number_of_statements(storage: Storage) -> None:
    counter = StatementCounter(storage)
    storage.sessions.save_session(SessionCreateFactory.build(n_prompts=40, n_entities=40, n_validations=40))
    assert counter.count <= 12, "children are inserted with one multi-row statement per table"


# -- validation ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "field", "value"),
    [
        ({"status": "done"}, "status", "done"),
        ({"final_alignment_score": 1.5}, "final_alignment_score", 1.5),
        ({"image_path": ""}, "image_path", ""),
        ({"entities": [{"entity_id": "a", "label": "b", "confidence": 2}]}, "entities.0.confidence", 2),
        (
            {"entities": [{"entity_id": "a", "label": "b", "confidence": 0.5, "color_hex": "blue"}]},
            "entities.0.color_hex",
            "blue",
        ),
        (
            {"entities": [{"entity_id": "a", "label": "b", "confidence": 0.5, "area_percent": 101}]},
            "entities.0.area_percent",
            101,
        ),
        (
            {"validations": [{"attempt_number": 1, "unintended_count": -1}]},
            "validations.0.unintended_count",
            -1,
        ),
        ({"user_feedback": {"feedback_type": "maybe"}}, "user_feedback.feedback_type", "maybe"),
        ({"user_feedback": {"feedback_type": "accept", "rating": 6}}, "user_feedback.rating", 6),
        ({"prompts": [{"iteration": -1, "positive_prompt": "x"}]}, "prompts.0.iteration", -1),
        ({"colour": "red"}, "colour", "red"),
        ({"final_alignment_score": float("nan")}, "final_alignment_score", None),
    ],
)
def test_bad_input_names_field_and_value_and_writes_nothing(
    storage: Storage, change: dict[str, Any], field: str, value: object
) -> None:
    with pytest.raises(InvalidInput) as caught:
        storage.sessions.save_session(reference_session(**change))
    assert caught.value.errors[0].field == field
    if value is not None:
        assert caught.value.errors[0].value == value
        assert repr(value) in str(caught.value)
    assert all_counts(storage)["sessions"] == 0


def test_batch_is_all_or_nothing_and_names_the_index(storage: Storage) -> None:
    good = [SessionCreateFactory.build() for _ in range(3)]
    bad = reference_session(id="bad", entities=[{"entity_id": "x", "label": "y", "confidence": 7}])
    with pytest.raises(InvalidInput) as caught:
        storage.sessions.batch_save_sessions([*good, bad, *good[:0]])
    assert caught.value.errors[0].field == "[3].entities.0.confidence"
    assert "nothing written" in str(caught.value)
    assert all_counts(storage)["sessions"] == 0


def test_batch_rejects_repeated_ids(storage: Storage) -> None:
    with pytest.raises(InvalidInput, match=r"\[1\]\.id"):
        storage.sessions.batch_save_sessions([reference_session(), reference_session()])


def test_batch_saves_everything_and_replaces_existing(storage: Storage) -> None:
    storage.sessions.save_session(reference_session())
    items = [SessionCreateFactory.build() for _ in range(20)] + [reference_session(status="failed")]
    ids = storage.sessions.batch_save_sessions(items)
    assert len(ids) == 21
    assert all_counts(storage)["sessions"] == 21
    replaced = storage.sessions.load_session("session-789")
    assert replaced is not None and replaced.status is SessionStatus.FAILED
    assert count_rows(storage, Prompt) == 20 * 3 + 1


def test_database_rejects_what_slipped_past_validation(storage: Storage) -> None:
    """A database CHECK failure arrives as InvalidInput naming the table and constraint."""
    with pytest.raises(InvalidInput, match=r"sessions\.status"), storage.unit_of_work() as uow:
        uow.session.add(EditSession(id="x", image_path="a", naive_prompt="b", status="weird"))
        uow.session.flush()
    assert all_counts(storage)["sessions"] == 0


# -- growing a session step by step ----------------------------------------------------------------
def test_step_by_step_growth(storage: Storage) -> None:
    session_id = storage.sessions.save_session({"image_path": "/i.jpg", "naive_prompt": "make sky dramatic"})
    before = storage.sessions.load_session(session_id)
    prompt_id = storage.sessions.add_prompt_iteration(
        session_id, {"iteration": 0, "positive_prompt": "storm"}
    )
    entity_ids = storage.sessions.add_entities(
        session_id,
        [
            {"entity_id": "sky_0", "label": "sky", "confidence": 0.9},
            {"entity_id": "tree_1", "label": "tree", "confidence": 0.4},
        ],
    )
    validation_id = storage.sessions.record_validation(
        session_id, {"attempt_number": 1, "alignment_score": 0.8}
    )
    feedback_id = storage.sessions.record_feedback(session_id, {"feedback_type": "partial", "rating": 3})
    storage.sessions.record_feedback(session_id, {"feedback_type": "accept", "rating": 5})
    loaded = storage.sessions.load_session(session_id)
    assert loaded is not None and before is not None
    assert [p.id for p in loaded.prompts] == [prompt_id]
    assert [e.id for e in loaded.entities] == entity_ids
    assert [v.id for v in loaded.validations] == [validation_id]
    assert loaded.feedback[0].id == feedback_id
    assert loaded.user_feedback is not None and loaded.user_feedback.feedback_type == "accept"
    assert loaded.updated_at > before.updated_at


@pytest.mark.parametrize(
    ("method", "payload"),
    [
        ("add_prompt_iteration", {"iteration": 0, "positive_prompt": "x"}),
        ("add_entities", [{"entity_id": "a", "label": "b", "confidence": 0.1}]),
        ("record_validation", {"attempt_number": 1}),
        ("record_feedback", {"feedback_type": "accept"}),
    ],
)
def test_step_methods_raise_not_found_for_unknown_session(
    storage: Storage, method: str, payload: Any
) -> None:
    with pytest.raises(NotFound, match="'ghost'"):
        getattr(storage.sessions, method)("ghost", payload)
    assert sum(all_counts(storage).values()) == 0


# -- status, delete --------------------------------------------------------------------------------
def test_update_status(storage: Storage) -> None:
    storage.sessions.save_session(reference_session(status="in_progress", final_alignment_score=None))
    storage.sessions.update_session_status("session-789", "completed", 0.91)
    loaded = storage.sessions.load_session("session-789")
    assert loaded is not None
    assert (loaded.status, loaded.final_alignment_score) == (SessionStatus.COMPLETED, 0.91)
    storage.sessions.update_session_status("session-789", SessionStatus.FAILED)
    loaded = storage.sessions.load_session("session-789")
    assert loaded is not None and loaded.final_alignment_score == 0.91, "score kept when not given"
    with pytest.raises(NotFound):
        storage.sessions.update_session_status("ghost", "completed")
    with pytest.raises(InvalidInput, match="status"):
        storage.sessions.update_session_status("session-789", "finished")


def test_delete_cascades_to_every_child(storage: Storage) -> None:
    storage.sessions.save_session(reference_session())
    other = storage.sessions.save_session(SessionCreateFactory.build())
    storage.sessions.delete_session("session-789")
    assert storage.sessions.load_session("session-789") is None
    assert all_counts(storage) == {
        "sessions": 1,
        "prompts": 3,
        "entities": 5,
        "validations": 2,
        "user_feedback": 1,
    }
    assert storage.sessions.load_session(other) is not None
    with pytest.raises(NotFound):
        storage.sessions.delete_session("session-789")


# -- history ---------------------------------------------------------------------------------------
@pytest.fixture
def history(storage: Storage) -> Storage:
    """Six sessions with known fields, one hour apart (oldest first)."""
    start = datetime(2026, 1, 1, 12, tzinfo=UTC)
    rows = [
        ("a", "/img/beach.jpg", "make the sky dramatic", "completed", 0.9),
        ("b", "/img/forest.jpg", "brighten the trees", "completed", 0.6),
        ("c", "/img/city.jpg", "remove 100% of the cars", "failed", 0.2),
        ("d", "/img/sky_2.jpg", "turn the SKY golden", "in_progress", None),
        ("e", "/img/lake.jpg", "blur the water", "completed", 0.75),
        ("f", "/img/snow_field.jpg", "add snow", "failed", None),
    ]
    storage.sessions.batch_save_sessions(
        [
            {
                "id": i,
                "image_path": p,
                "naive_prompt": n,
                "status": s,
                "final_alignment_score": sc,
                "created_at": start + timedelta(hours=k),
            }
            for k, (i, p, n, s, sc) in enumerate(rows)
        ]
    )
    return storage


def ids(rows: list[Any]) -> list[str]:
    return [r.id for r in rows]


def test_history_defaults_to_newest_first(history: Storage) -> None:
    assert ids(history.sessions.query_history()) == ["f", "e", "d", "c", "b", "a"]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"status_filter": "completed"}, ["e", "b", "a"]),
        ({"min_score": 0.7}, ["e", "a"]),
        ({"status_filter": "failed", "min_score": 0.1}, ["c"]),
        ({"search_term": "sky"}, ["d", "a"]),
        ({"search_term": "SKY"}, ["d", "a"]),
        ({"search_term": "%"}, ["c"]),
        ({"search_term": "_"}, ["f", "d"]),
        ({"search_term": "sky_"}, ["d"]),
        ({"date_from": "2026-01-01T14:00:00+00:00"}, ["f", "e", "d", "c"]),
        ({"date_to": datetime(2026, 1, 1, 13, tzinfo=UTC)}, ["b", "a"]),
        (
            {
                "date_from": "2026-01-01T13:00:00",
                "date_to": "2026-01-01T15:00:00Z",
                "status_filter": "completed",
            },
            ["b"],
        ),
        ({"order_by": "created_at asc", "limit": 2}, ["a", "b"]),
        ({"order_by": "created_at DESC", "limit": 2, "offset": 2}, ["d", "c"]),
        ({"order_by": "final_alignment_score desc"}, ["a", "e", "b", "c", "f", "d"]),
        ({"order_by": "final_alignment_score asc", "limit": 4}, ["c", "b", "e", "a"]),
        ({"offset": 10}, []),
    ],
)
def test_history_filters_combine(history: Storage, kwargs: dict[str, Any], expected: list[str]) -> None:
    assert ids(history.sessions.query_history(**kwargs)) == expected


def test_pagination_visits_every_row_once(history: Storage) -> None:
    seen: list[str] = []
    for offset in range(0, 6, 4):
        seen += ids(history.sessions.query_history(limit=4, offset=offset))
    assert sorted(seen) == ["a", "b", "c", "d", "e", "f"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"order_by": "id; DROP TABLE sessions"}, "order_by"),
        ({"order_by": "naive_prompt"}, "order_by"),
        ({"status_filter": "x' OR '1'='1"}, "status_filter"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
        ({"min_score": 2}, "min_score"),
        ({"date_from": "yesterday"}, "date_from"),
    ],
)
def test_history_rejects_bad_parameters(history: Storage, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        history.sessions.query_history(**kwargs)
    assert caught.value.errors[0].field == field
    assert history.sessions.get_session_count() == 6


def test_search_text_is_never_sql(history: Storage) -> None:
    assert history.sessions.query_history(search_term="' OR 1=1 --") == []
    assert history.sessions.get_session_count() == 6


def test_convenience_queries(history: Storage) -> None:
    assert ids(history.sessions.get_recent_sessions(2)) == ["f", "e"]
    assert ids(history.sessions.search_sessions("blur")) == ["e"]
    assert ids(history.sessions.get_successful_sessions(min_score=0.7)) == ["a", "e"]
    assert ids(history.sessions.get_successful_sessions(min_score=0.5, limit=1)) == ["a"]
    assert history.sessions.get_session_count() == 6
    assert history.sessions.get_session_count("failed") == 2
    assert history.sessions.get_session_count(SessionStatus.IN_PROGRESS) == 1


def test_statistics(history: Storage) -> None:
    stats = history.sessions.get_statistics()
    assert stats.total_sessions == 6
    assert stats.status_breakdown == {"completed": 3, "failed": 2, "in_progress": 1}
    assert stats.average_alignment_score == round((0.9 + 0.6 + 0.75) / 3, 3)
    assert stats.successful_rate == 50.0


def test_statistics_have_the_reference_s_fields(storage: Storage) -> None:
    """Average processing time of the sessions that record one, sessions of the last 7 days (by
    created_at, whatever the batch), the newest change, and rows per session table."""
    now = datetime.now(UTC)
    storage.sessions.batch_save_sessions(
        [
            {"id": "old", "image_path": "a", "naive_prompt": "b", "processing_time": 10.0,
             "created_at": now - timedelta(days=30), "prompts": [{"iteration": 0, "positive_prompt": "p"}]},
            {"id": "new", "image_path": "a", "naive_prompt": "b", "processing_time": 20.5, "status": "completed",
             "created_at": now - timedelta(days=1), "feedback": [{"feedback_type": "accept"}]},
            {"id": "untimed", "image_path": "a", "naive_prompt": "b", "created_at": now - timedelta(days=6)},
        ]
    )  # fmt: skip
    storage.sessions.update_session_status("old", "failed", 0.1)
    stats = storage.sessions.get_statistics()
    assert stats.average_processing_time == 15.25
    assert stats.recent_sessions_7_days == 2
    assert stats.table_counts == {
        "sessions": 3,
        "prompts": 1,
        "entities": 0,
        "validations": 0,
        "user_feedback": 1,
    }
    loaded = storage.sessions.load_session("old")
    assert loaded is not None and stats.last_updated == loaded.updated_at


def test_statistics_of_an_empty_database(storage: Storage) -> None:
    stats = storage.sessions.get_statistics()
    assert (
        stats.total_sessions,
        stats.status_breakdown,
        stats.average_alignment_score,
        stats.successful_rate,
    ) == (
        0,
        {},
        None,
        0.0,
    )


def test_database_check_failures_name_tables_with_underscores(storage: Storage) -> None:
    """ck_user_feedback_rating is user_feedback.rating, and no value is claimed that was not seen."""
    from edi_storage.models import UserFeedback

    storage.sessions.save_session(reference_session())
    with pytest.raises(InvalidInput) as caught, storage.unit_of_work() as uow:
        uow.session.add(UserFeedback(session_id="session-789", feedback_type="accept", rating=9))
        uow.session.flush()
    assert caught.value.errors[0].field == "user_feedback.rating"
    assert "got" not in str(caught.value) and "ck_user_feedback_rating" in str(caught.value)


@pytest.mark.parametrize("term", ["", "   "])
def test_search_needs_a_term(history: Storage, term: str) -> None:
    with pytest.raises(InvalidInput, match="term"):
        history.sessions.search_sessions(term)


@pytest.mark.parametrize("order_by", ["final_alignment_score desc", "final_alignment_score asc"])
def test_score_orderings_page_through_every_session_with_nulls_last(storage: Storage, order_by: str) -> None:
    """Pages of any size, at any offset, give the sessions sorted by score (ties by id, in the direction
    of the order) with the unscored ones after all scored ones: none repeated, none missing."""
    scores = [None, 0.5, 0.9, None, 0.5, 0.1, None, 0.9, 0.3, None, 0.7]
    storage.sessions.batch_save_sessions(
        [
            {
                "id": f"s{n:02}",
                "image_path": f"/p/{n}.jpg",
                "naive_prompt": "x",
                "final_alignment_score": score,
            }
            for n, score in enumerate(scores)
        ]
    )
    descending = order_by.endswith("desc")
    scored = sorted(
        ((score, f"s{n:02}") for n, score in enumerate(scores) if score is not None), reverse=descending
    )
    unscored = sorted((f"s{n:02}" for n, score in enumerate(scores) if score is None), reverse=descending)
    expected = [sid for _, sid in scored] + unscored
    for limit in (1, 3, 4, 20):
        pages = [
            [s.id for s in storage.sessions.query_history(limit=limit, offset=offset, order_by=order_by)]
            for offset in range(0, len(scores) + limit, limit)
        ]
        assert [sid for page in pages for sid in page] == expected, limit
    assert storage.sessions.query_history(offset=len(scores), order_by=order_by) == []


def test_feedback_order_and_latest_hold_under_any_server_time_zone(
    storage_factory: Callable[..., Storage],
) -> None:
    """Across the autumn clock change in Berlin, the latest feedback is still the latest: timestamps are
    read as instants, whatever the PostgreSQL session's TimeZone (SQLite stores UTC text)."""
    storage = storage_factory()
    if storage.engine.dialect.name == "postgresql":
        event.listen(
            storage.engine, "connect", lambda dbapi, _: dbapi.execute("SET TIME ZONE 'Europe/Berlin'")
        )
        storage.engine.dispose()
    feedback = [
        {"feedback_type": "accept", "created_at": "2024-10-27T01:10:00Z"},
        {"feedback_type": "reject", "created_at": "2024-10-27T00:30:00Z"},
    ]
    storage.sessions.save_session(
        {"id": "tz", "image_path": "/a.jpg", "naive_prompt": "p", "feedback": feedback}
    )
    loaded = storage.sessions.load_session("tz")
    assert loaded is not None and loaded.user_feedback is not None
    assert [f.feedback_type.value for f in loaded.feedback] == ["reject", "accept"]
    assert loaded.user_feedback.feedback_type.value == "accept"
