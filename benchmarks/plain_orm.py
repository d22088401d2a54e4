"""A straightforward SQLAlchemy ORM unit of work over edi-storage's models: what an application would
write with ``edi_storage.models`` and no service layer.

Saves ``session.add`` the whole graph (the relationships' cascade inserts the children), loads are
``session.get`` with ``selectinload`` of the four collections, history is a plain ``select`` of
``EditSession`` objects, statistics one grouped ``select``. It uses the engine of a ``Storage`` on its
database (the same pragmas and driver settings as edi-storage's), so the figures compare the code path,
not the connection settings.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, case, func, select
from sqlalchemy.orm import Session, selectinload
from workload import CHILD_KEYS, Graph, Query, as_graph, escape_like, parse_time, statistics_from, week_ago

from edi_storage.models import EditSession, Entity, Prompt, UserFeedback, Validation

_LOAD = [
    selectinload(EditSession.prompts),
    selectinload(EditSession.entities),
    selectinload(EditSession.validations),
    selectinload(EditSession.feedback),
]


def to_orm(g: Graph) -> EditSession:
    fields = {k: v for k, v in g.items() if k not in CHILD_KEYS}
    if isinstance(fields.get("created_at"), str):
        fields["created_at"] = parse_time(fields["created_at"])
    given = g.get("user_feedback")
    return EditSession(
        **fields,
        prompts=[Prompt(**p) for p in g.get("prompts", ())],
        entities=[Entity(**e) for e in g.get("entities", ())],
        validations=[Validation(**v) for v in g.get("validations", ())],
        feedback=[UserFeedback(**f) for f in ([given] if given is not None else g.get("feedback", ()))],
    )


class PlainORM:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"

    def save(self, items: list[Graph]) -> None:
        with Session(self.engine) as s, s.begin():
            s.add_all([to_orm(g) for g in items])

    def load(self, session_id: str) -> EditSession | None:
        with Session(self.engine) as s:
            return s.get(EditSession, session_id, options=_LOAD)

    def history(self, query: Query) -> list[EditSession]:
        statement = select(EditSession)
        if (status := query.get("status_filter")) is not None:
            statement = statement.where(EditSession.status == status)
        if (date_from := query.get("date_from")) is not None:
            statement = statement.where(EditSession.created_at >= date_from)
        if (date_to := query.get("date_to")) is not None:
            statement = statement.where(EditSession.created_at <= date_to)
        if (min_score := query.get("min_score")) is not None:
            statement = statement.where(EditSession.final_alignment_score >= min_score)
        if term := query.get("search_term"):
            pattern = f"%{escape_like(term)}%"
            statement = statement.where(
                EditSession.image_path.ilike(pattern, escape="\\")
                | EditSession.naive_prompt.ilike(pattern, escape="\\")
            )
        score = EditSession.final_alignment_score
        order: tuple[Any, ...] = {
            "created_at desc": (EditSession.created_at.desc(), EditSession.id.desc()),
            "created_at asc": (EditSession.created_at.asc(), EditSession.id.asc()),
            # SQLite already sorts NULLs last in a descending order; PostgreSQL needs to be told.
            "final_alignment_score desc": (
                score.desc() if self.sqlite else score.desc().nulls_last(),
                EditSession.id.desc(),
            ),
            "final_alignment_score asc": (score.asc().nulls_last(), EditSession.id.asc()),
        }[query.get("order_by", "created_at desc")]
        statement = statement.order_by(*order).limit(query.get("limit", 50)).offset(query.get("offset", 0))
        with Session(self.engine) as s:
            return list(s.scalars(statement))

    def statistics(self) -> dict[str, Any]:
        statement = select(
            EditSession.status,
            func.count(),
            func.avg(case((EditSession.status == "completed", EditSession.final_alignment_score))),
            func.sum(EditSession.processing_time),
            func.count(EditSession.processing_time),
            func.count(case((EditSession.created_at >= week_ago(), 1))),
            func.max(EditSession.updated_at),
        ).group_by(EditSession.status)
        children = select(
            *(
                select(func.count()).select_from(m).scalar_subquery()
                for m in (Prompt, Entity, Validation, UserFeedback)
            )
        )
        with Session(self.engine) as s:
            rows = s.execute(statement).all()
            return statistics_from(rows, tuple(s.execute(children).one()), lambda value: value)


def graph_of(obj: EditSession) -> dict[str, Any]:
    """An ORM graph as a dict in load_session's shape (for the correctness checks)."""

    def columns(o: Any) -> dict[str, Any]:
        return {a.key: getattr(o, a.key) for a in type(o).__mapper__.column_attrs}

    children = {
        "prompts": [columns(p) for p in obj.prompts],
        "entities": [{**columns(e), "bbox_json": e.bbox} for e in obj.entities],
        "validations": [columns(v) for v in obj.validations],
        "feedback": [columns(f) for f in obj.feedback],
    }
    return as_graph(columns(obj), children)
