"""What every side of the benchmark is given: the session graphs, the history filter mixes, and the rows
a graph becomes in the five session tables (shared by the two hand-written sides, which differ only in
how a JSON value and a timestamp are handed to their driver).

Graphs are plain dicts in the reference shape (``session_data`` of storage-database.md), as an
application would hold them: ``SessionCreateFactory`` graphs dumped to JSON types.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from edi_storage.testing import SessionCreateFactory

Graph = dict[str, Any]
Query = dict[str, Any]

# The columns each table is written with, in the order the row builders below produce them.
SESSION_COLUMNS = (
    "id", "image_path", "naive_prompt", "status", "final_alignment_score", "processing_time",
    "model_version", "session_tags", "session_metadata", "user_id", "project_id", "created_at", "updated_at",
)  # fmt: skip
PROMPT_COLUMNS = (
    "session_id", "iteration", "positive_prompt", "negative_prompt", "quality_score", "generation_time",
    "model_confidence", "prompt_metadata", "generation_parameters", "created_at", "updated_at",
)  # fmt: skip
ENTITY_COLUMNS = (
    "session_id", "entity_id", "label", "confidence", "bbox_json", "mask_path", "color_hex", "area_percent",
    "embedding_vector", "semantic_label", "entity_metadata", "quality_score",
)  # fmt: skip
VALIDATION_COLUMNS = (
    "session_id", "attempt_number", "alignment_score", "preserved_count", "modified_count",
    "unintended_count", "user_feedback", "processing_details", "quality_metrics", "validation_metadata",
    "user_ratings", "created_at",
)  # fmt: skip
FEEDBACK_COLUMNS = (
    "session_id", "feedback_type", "comments", "rating", "feedback_metadata", "created_at", "updated_at",
)  # fmt: skip
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "sessions": SESSION_COLUMNS,
    "prompts": PROMPT_COLUMNS,
    "entities": ENTITY_COLUMNS,
    "validations": VALIDATION_COLUMNS,
    "user_feedback": FEEDBACK_COLUMNS,
}
SUMMARY_COLUMNS = (
    "id", "created_at", "updated_at", "image_path", "naive_prompt", "status", "final_alignment_score",
    "user_id", "project_id",
)  # fmt: skip
CHILD_KEYS = ("prompts", "entities", "validations", "user_feedback", "feedback")

# query_history filter mixes (limit 50 unless given): no filter, status, status + minimum score,
# search, date range, and the other three orderings. DATE_FROM is replaced, per dataset, by the median
# creation time of its sessions (see ``resolve``).
DATE_FROM = "<median created_at>"
MIXES: list[Query] = [
    {},
    {"status_filter": "completed"},
    {"status_filter": "completed", "min_score": 0.8},
    {"search_term": "sky"},
    {"status_filter": "failed", "search_term": "dramatic"},
    {"date_from": DATE_FROM},
    {"order_by": "created_at asc"},
    {"min_score": 0.5, "order_by": "final_alignment_score desc"},
    {"status_filter": "in_progress", "order_by": "final_alignment_score asc"},
]
# The mixes the reference Database.query_history can express (status_filter, search_term, newest first).
REFERENCE_MIXES = [i for i, q in enumerate(MIXES) if set(q) <= {"status_filter", "search_term"}]


def graphs(count: int) -> list[Graph]:
    """Session graphs of 12 rows: 1 session, 3 prompts, 5 entities (bbox JSON), 2 validations, 1 feedback,
    without ``created_at`` (the database's clock stamps them, as when an application saves a step)."""
    out = []
    for _ in range(count):
        graph = SessionCreateFactory.build().model_dump(mode="json", exclude_none=True)
        graph.pop("created_at", None)
        out.append(graph)
    return out


def with_distinct_times(items: Sequence[Graph], rng: random.Random) -> list[Graph]:
    """The same graphs with distinct creation times (30 s apart, shuffled against insertion order)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    order = list(range(len(items)))
    rng.shuffle(order)
    return [
        {**g, "created_at": (start + timedelta(seconds=30 * k, microseconds=k % 997)).isoformat()}
        for g, k in zip(items, order, strict=True)
    ]


def resolve(mixes: Iterable[Query], median_created_at: datetime) -> list[Query]:
    """The mixes with DATE_FROM replaced by a dataset's median creation time."""
    return [{k: (median_created_at if v == DATE_FROM else v) for k, v in q.items()} for q in mixes]


def escape_like(term: str) -> str:
    """``%``, ``_`` and ``\\`` in the search term are literal, as query_history documents."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def parse_time(value: str) -> datetime:
    """An ISO timestamp from a graph as an aware UTC datetime (a naive one is UTC)."""
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def graph_rows(
    items: Sequence[Graph],
    now: Any,
    js: Callable[[Any], Any],
    ts: Callable[[datetime], Any],
) -> dict[str, list[tuple[Any, ...]]]:
    """The rows ``items`` become, per table, in the columns of TABLE_COLUMNS: ``now`` is the driver value
    of the transaction's time, ``js`` turns a JSON value (or None) into the driver's, ``ts`` a datetime.
    Defaults are edi-storage's (status in_progress, empty negative prompt, children stamped ``now``)."""

    def created(child: Graph) -> Any:
        value = child.get("created_at")
        return now if value is None else ts(parse_time(value))

    rows: dict[str, list[tuple[Any, ...]]] = {table: [] for table in TABLE_COLUMNS}
    sessions, prompts, entities = rows["sessions"], rows["prompts"], rows["entities"]
    validations, feedback = rows["validations"], rows["user_feedback"]
    for g in items:
        sid = g["id"]
        sessions.append((
            sid, g["image_path"], g["naive_prompt"], g.get("status", "in_progress"),
            g.get("final_alignment_score"), g.get("processing_time"), g.get("model_version"),
            js(g.get("session_tags")), js(g.get("session_metadata")), g.get("user_id"), g.get("project_id"),
            created(g), now,
        ))  # fmt: skip
        for p in g.get("prompts", ()):
            at = created(p)
            prompts.append((
                sid, p["iteration"], p["positive_prompt"], p.get("negative_prompt", ""),
                p.get("quality_score"), p.get("generation_time"), p.get("model_confidence"),
                js(p.get("prompt_metadata")), js(p.get("generation_parameters")), at, at,
            ))  # fmt: skip
        for e in g.get("entities", ()):
            entities.append((
                sid, e["entity_id"], e["label"], e["confidence"], js(e.get("bbox")), e.get("mask_path"),
                e.get("color_hex"), e.get("area_percent"), js(e.get("embedding_vector")),
                e.get("semantic_label"), js(e.get("entity_metadata")), e.get("quality_score"),
            ))  # fmt: skip
        for v in g.get("validations", ()):
            validations.append((
                sid, v["attempt_number"], v.get("alignment_score"), v.get("preserved_count"),
                v.get("modified_count"), v.get("unintended_count"), v.get("user_feedback"),
                js(v.get("processing_details")), js(v.get("quality_metrics")),
                js(v.get("validation_metadata")), js(v.get("user_ratings")), created(v),
            ))  # fmt: skip
        given = g.get("user_feedback")
        for f in [given] if given is not None else g.get("feedback", ()):
            at = created(f)
            feedback.append((
                sid, f["feedback_type"], f.get("comments"), f.get("rating"), js(f.get("feedback_metadata")),
                at, at,
            ))  # fmt: skip
    return rows


def insert_sql(table: str, placeholder: str) -> str:
    columns = TABLE_COLUMNS[table]
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([placeholder] * len(columns))})"


def as_graph(session: dict[str, Any], children: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """A loaded graph in load_session's shape: children under their keys, bbox from bbox_json, and
    ``user_feedback`` the latest feedback."""
    for entity in children["entities"]:
        entity["bbox"] = entity.pop("bbox_json")
    feedback = children["feedback"]
    return {**session, **children, "user_feedback": feedback[-1] if feedback else None}


def statistics_from(
    rows: Iterable[Sequence[Any]], children: Sequence[int], read: Callable[[Any], datetime | None]
) -> dict[str, Any]:
    """get_statistics' figures from the rows of ``STATISTICS_SQL`` and the counts of ``CHILD_COUNTS_SQL``;
    ``read`` turns the driver's ``max(updated_at)`` into an aware datetime."""
    breakdown: dict[str, int] = {}
    average: float | None = None
    time_sum, timed, recent, updated = 0.0, 0, 0, []
    for status, count, avg, seconds, with_time, new, newest in rows:
        breakdown[status] = count
        if status == "completed" and avg is not None:
            average = round(float(avg), 3)
        time_sum, timed, recent = time_sum + (seconds or 0), timed + with_time, recent + new
        updated.append(read(newest))
    total = sum(breakdown.values())
    completed = breakdown.get("completed", 0)
    return {
        "total_sessions": total,
        "status_breakdown": breakdown,
        "average_alignment_score": average,
        "successful_rate": round(completed / total * 100, 1) if total else 0.0,
        "average_processing_time": round(time_sum / timed, 2) if timed else None,
        "recent_sessions_7_days": recent,
        "last_updated": max((u for u in updated if u is not None), default=None),
        "table_counts": dict(zip(("sessions", *CHILD_TABLES), (total, *children), strict=True)),
    }


def week_ago() -> datetime:
    return datetime.now(UTC) - timedelta(days=7)


# {since}: the driver's placeholder for week_ago().
STATISTICS_SQL = (
    "SELECT status, count(*), avg(CASE WHEN status = 'completed' THEN final_alignment_score END),"
    " sum(processing_time), count(processing_time), count(CASE WHEN created_at >= {since} THEN 1 END),"
    " max(updated_at) FROM sessions GROUP BY status"
)
CHILD_TABLES = ("prompts", "entities", "validations", "user_feedback")
CHILD_COUNTS_SQL = "SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in CHILD_TABLES)
