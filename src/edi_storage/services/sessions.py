"""The session service: the reference design's operations, with typed errors instead of ``False``.

Every method validates its input first (``InvalidInput`` names the field and the value), then writes in
one transaction: its own, or the unit of work's it was created in. Writes of whole graphs go through
one path, ``_write_graphs``, for a single save and a batch alike: parents and children are inserted with
one multi-row statement per table, and a session that already exists is replaced (its children deleted
and written again), never duplicated. Reads build their output from rows, not ORM objects, and load a
whole graph in five queries whatever its size.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Integer,
    Select,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from edi_storage.errors import FieldError, InvalidInput, NotFound
from edi_storage.models.base import table_of, utcnow
from edi_storage.models.sessions import (
    SESSION_CHILDREN,
    EditSession,
    Entity,
    Prompt,
    SessionStatus,
    UserFeedback,
    Validation,
)
from edi_storage.monitoring import measured
from edi_storage.schemas.common import InputModel, Score, models_from, parse
from edi_storage.schemas.sessions import (
    EntityIn,
    FeedbackIn,
    HistoryQuery,
    OrderBy,
    PromptIn,
    SessionCreate,
    SessionDetail,
    SessionStatistics,
    SessionSummary,
    ValidationIn,
)
from edi_storage.services.base import Service
from edi_storage.services.prepared import Prepared
from edi_storage.state.model import SessionState, read_state
from edi_storage.state.resume import session_to_state, state_to_session

SessionInput = SessionCreate | Mapping[str, Any]

SESSIONS = table_of(EditSession)
_SUMMARY_COLUMNS = [getattr(EditSession, name) for name in SessionSummary.model_fields]
_SESSION_FIELDS = (
    "image_path",
    "naive_prompt",
    "status",
    "final_alignment_score",
    "processing_time",
    "model_version",
    "session_tags",
    "session_metadata",
    "user_id",
    "project_id",
)
# Scores sort with NULLs last on every backend. SQLite already puts NULL last in a descending order,
# and there the explicit NULLS LAST would keep the index from serving the sort, so it is left out.
_SQLITE_ORDERINGS: dict[OrderBy, tuple[ColumnElement[Any], ...]] = {
    OrderBy.SCORE_DESC: (EditSession.final_alignment_score.desc(), EditSession.id.desc()),
}
_ORDERINGS: dict[OrderBy, tuple[ColumnElement[Any], ...]] = {
    OrderBy.CREATED_DESC: (EditSession.created_at.desc(), EditSession.id.desc()),
    OrderBy.CREATED_ASC: (EditSession.created_at.asc(), EditSession.id.asc()),
    OrderBy.SCORE_DESC: (EditSession.final_alignment_score.desc().nulls_last(), EditSession.id.desc()),
    OrderBy.SCORE_ASC: (EditSession.final_alignment_score.asc().nulls_last(), EditSession.id.asc()),
}


def escape_like(term: str) -> str:
    """``%`` and ``_`` in user text are literal characters, not wildcards."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SessionService(Service):
    """The session operations; see the module docstring for the contracts they share."""

    # -- whole graphs ----------------------------------------------------------------------------
    @measured("sessions.save_session")
    def save_session(self, data: SessionInput) -> str:
        """Store a whole graph in one transaction and return its id (a new UUID4 when none is given)."""
        item = parse(SessionCreate, data)
        with self._tx() as s:
            return _write_graphs(s, [item])[0]

    @measured("sessions.batch_save_sessions")
    def batch_save_sessions(self, items: Sequence[SessionInput]) -> list[str]:
        """All or nothing: every item is validated before anything is written; errors name the index."""
        _check_list("items", items)
        errors: list[FieldError] = []
        parsed: list[SessionCreate] = []
        for index, data in enumerate(items):
            try:
                parsed.append(parse(SessionCreate, data, prefix=f"[{index}]."))
            except InvalidInput as exc:
                errors.extend(exc.errors)
        seen: dict[str, int] = {}
        for index, item in enumerate(parsed if not errors else []):
            if item.id is not None and item.id in seen:
                errors.append(FieldError(f"[{index}].id", f"repeats the id of item {seen[item.id]}", item.id))
            elif item.id is not None:
                seen[item.id] = index
        if errors:
            raise InvalidInput(errors, context=f"batch of {len(items)} sessions rejected, nothing written")
        with self._tx() as s:
            return _write_graphs(s, parsed)

    @measured("sessions.load_session")
    def load_session(self, session_id: str) -> SessionDetail | None:
        """The whole graph, children in order, in five queries; None when there is no such session."""
        with self._tx(readonly=True) as s:
            found = _load_graphs(s, [session_id])
        return found[0] if found else None

    @measured("sessions.load_sessions")
    def load_sessions(self, session_ids: Sequence[str]) -> list[SessionDetail]:
        """Many whole graphs, in the order of ``session_ids`` (unknown ids are skipped), five queries per
        chunk of ids rather than five per session: the path exports and bulk readers take."""
        with self._tx(readonly=True) as s:
            return [g for start in range(0, len(session_ids), _CHUNK)
                    for g in _load_graphs(s, session_ids[start : start + _CHUNK])]  # fmt: skip

    @measured("sessions.session_ids")
    def session_ids(self, after: str | None = None, limit: int = 1000) -> list[str]:
        """Session ids in id order, after ``after``: keyset pages for walking every session."""
        statement = select(EditSession.id).order_by(EditSession.id).limit(limit)
        if after is not None:
            statement = statement.where(EditSession.id > after)
        with self._tx(readonly=True) as s:
            return list(s.scalars(statement))

    # -- resumable state ------------------------------------------------------------------------
    @measured("sessions.save_from_state")
    def save_from_state(self, state: SessionState | Mapping[str, Any]) -> str:
        """Write a session-state file's graph: created, or replaced if the id is stored (never duplicated)."""
        parsed = state if isinstance(state, SessionState) else read_state(state)
        return self.save_session(state_to_session(parsed))

    @measured("sessions.state_from_session")
    def state_from_session(self, session_id: str) -> SessionState:
        """The state to resume a stored session from, on any machine; NotFound for an unknown id."""
        detail = self.load_session(session_id)
        if detail is None:
            raise NotFound("session", session_id)
        return session_to_state(detail)

    # -- one step at a time ----------------------------------------------------------------------
    @measured("sessions.add_prompt_iteration")
    def add_prompt_iteration(self, session_id: str, prompt: PromptIn | Mapping[str, Any]) -> int:
        item = parse(PromptIn, prompt)
        with self._tx() as s:
            return self._add_children(
                s, session_id, Prompt, [_prompt_row(session_id, item.model_dump(), utcnow())]
            )[0]

    @measured("sessions.add_entities")
    def add_entities(self, session_id: str, entities: Sequence[EntityIn | Mapping[str, Any]]) -> list[int]:
        _check_list("entities", entities)
        items = [parse(EntityIn, e, prefix=f"[{i}].") for i, e in enumerate(entities)]
        with self._tx() as s:
            return self._add_children(
                s, session_id, Entity, [_entity_row(session_id, e.model_dump()) for e in items]
            )

    @measured("sessions.record_validation")
    def record_validation(self, session_id: str, validation: ValidationIn | Mapping[str, Any]) -> int:
        item = parse(ValidationIn, validation)
        with self._tx() as s:
            return self._add_children(
                s, session_id, Validation, [_validation_row(session_id, item.model_dump(), utcnow())]
            )[0]

    @measured("sessions.record_feedback")
    def record_feedback(self, session_id: str, feedback: FeedbackIn | Mapping[str, Any]) -> int:
        item = parse(FeedbackIn, feedback)
        with self._tx() as s:
            return self._add_children(
                s, session_id, UserFeedback, [_feedback_row(session_id, item.model_dump(), utcnow())]
            )[0]

    def _add_children(
        self, s: Session, session_id: str, model: type[Any], rows: list[dict[str, Any]]
    ) -> list[int]:
        _touch(s, session_id)
        if not rows:
            return []
        table = table_of(model)
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(s.execute(statement, rows).scalars())

    @measured("sessions.update_session_status")
    def update_session_status(
        self, session_id: str, status: SessionStatus | str, final_alignment_score: float | None = None
    ) -> None:
        query = parse(_StatusUpdate, {"status": status, "final_alignment_score": final_alignment_score})
        values: dict[str, Any] = {"status": query.status.value, "updated_at": utcnow()}
        if query.final_alignment_score is not None:
            values["final_alignment_score"] = query.final_alignment_score
        with self._tx() as s:
            result = s.execute(update(SESSIONS).where(EditSession.id == session_id).values(values))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound("session", session_id)

    @measured("sessions.delete_session")
    def delete_session(self, session_id: str) -> None:
        """Delete a session; the database's ON DELETE CASCADE removes its children in the same statement."""
        with self._tx() as s:
            result = s.execute(delete(SESSIONS).where(EditSession.id == session_id))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound("session", session_id)

    # -- history ---------------------------------------------------------------------------------
    @measured("sessions.query_history")
    def query_history(
        self,
        limit: int = 50,
        offset: int = 0,
        status_filter: SessionStatus | str | None = None,
        date_from: datetime | str | None = None,
        date_to: datetime | str | None = None,
        min_score: float | None = None,
        search_term: str | None = None,
        order_by: OrderBy | str = OrderBy.CREATED_DESC,
    ) -> list[SessionSummary]:
        query = parse(
            HistoryQuery,
            {
                "limit": limit,
                "offset": offset,
                "status_filter": status_filter,
                "date_from": date_from,
                "date_to": date_to,
                "min_score": min_score,
                "search_term": search_term,
                "order_by": order_by,
            },
        )
        return self._summaries(query)

    def _summaries(self, query: HistoryQuery) -> list[SessionSummary]:
        with self._tx(readonly=True) as s:
            connection = s.connection()
            prepared, params = _history(query, connection.dialect.name)
            return models_from(SessionSummary, prepared.rows(connection, params))

    @measured("sessions.get_recent_sessions")
    def get_recent_sessions(self, count: int = 10) -> list[SessionSummary]:
        return self.query_history(limit=count)

    @measured("sessions.search_sessions")
    def search_sessions(self, term: str, limit: int = 20) -> list[SessionSummary]:
        """Sessions whose image path or prompt contains ``term``; an empty term is an error, not "all"."""
        if not isinstance(term, str) or not term.strip():
            raise InvalidInput.single("term", "must contain text to search for", term)
        return self.query_history(limit=limit, search_term=term)

    @measured("sessions.get_successful_sessions")
    def get_successful_sessions(self, min_score: float = 0.7, limit: int = 50) -> list[SessionSummary]:
        return self.query_history(
            limit=limit,
            status_filter=SessionStatus.COMPLETED,
            min_score=min_score,
            order_by=OrderBy.SCORE_DESC,
        )

    @measured("sessions.get_session_count")
    def get_session_count(self, status_filter: SessionStatus | str | None = None) -> int:
        query = parse(HistoryQuery, {"status_filter": status_filter})
        with self._tx(readonly=True) as s:
            values = _filter_values(query)
            statement = select(func.count()).select_from(EditSession).where(*_filters(values))
            return s.scalar(statement, values) or 0

    @measured("sessions.get_statistics")
    def get_statistics(self) -> SessionStatistics:
        """Counts per status and the completed sessions' average score, in one grouped query."""
        with self._tx(readonly=True) as s:
            rows = [tuple(row.values()) for row in _STATISTICS.rows(s.connection(), {})]
        breakdown = Counter({status: count for status, count, _ in rows})
        total = sum(breakdown.values())
        average = next((avg for status, _, avg in rows if status == SessionStatus.COMPLETED.value), None)
        completed = breakdown[SessionStatus.COMPLETED.value]
        return SessionStatistics(
            total_sessions=total,
            status_breakdown=dict(breakdown),
            average_alignment_score=None if average is None else round(float(average), 3),
            successful_rate=round(completed / total * 100, 1) if total else 0.0,
        )


_STATISTICS = Prepared(
    select(
        EditSession.status,
        func.count().label("sessions"),
        func.avg(
            case((EditSession.status == SessionStatus.COMPLETED.value, EditSession.final_alignment_score))
        ).label("average"),
    ).group_by(EditSession.status)
)


def _check_list(name: str, value: object) -> None:
    """A list (or tuple) of items, not one item, a string or nothing; InvalidInput otherwise."""
    if not isinstance(value, list | tuple):
        raise InvalidInput.single(name, "must be a list", value)


class _StatusUpdate(InputModel):
    status: SessionStatus
    final_alignment_score: Score | None = None


def ordering(order_by: OrderBy, dialect: str) -> tuple[ColumnElement[Any], ...]:
    if dialect == "sqlite" and order_by in _SQLITE_ORDERINGS:
        return _SQLITE_ORDERINGS[order_by]
    return _ORDERINGS[order_by]


def _filter_values(query: HistoryQuery) -> dict[str, Any]:
    """The query's filters that are set, as the parameters of ``_filters``."""
    values: dict[str, Any] = {
        "status": query.status_filter.value if query.status_filter is not None else None,
        "date_from": query.date_from,
        "date_to": query.date_to,
        "min_score": query.min_score,
        "pattern": f"%{escape_like(query.search_term)}%" if query.search_term else None,
    }
    return {name: value for name, value in values.items() if value is not None}


_FILTERS: dict[str, ColumnElement[bool]] = {
    "status": EditSession.status == bindparam("status"),
    "date_from": EditSession.created_at >= bindparam("date_from", type_=SESSIONS.c.created_at.type),
    "date_to": EditSession.created_at <= bindparam("date_to", type_=SESSIONS.c.created_at.type),
    "min_score": EditSession.final_alignment_score >= bindparam("min_score"),
    "pattern": EditSession.image_path.ilike(bindparam("pattern"), escape="\\")
    | EditSession.naive_prompt.ilike(bindparam("pattern"), escape="\\"),
}


def _filters(values: Mapping[str, Any]) -> list[ColumnElement[bool]]:
    return [_FILTERS[name] for name in values]


# One prepared statement per combination of filters, order and dialect: at most 2^5 x 4 x 2 of them.
_HISTORY: dict[tuple[frozenset[str], OrderBy, str], Prepared] = {}


def _history(query: HistoryQuery, dialect: str) -> tuple[Prepared, dict[str, Any]]:
    values = _filter_values(query)
    key = (frozenset(values), query.order_by, dialect)
    if (prepared := _HISTORY.get(key)) is None:
        prepared = _HISTORY[key] = Prepared(
            select(*_SUMMARY_COLUMNS)
            .where(*_filters(values))
            .order_by(*ordering(query.order_by, dialect))
            .limit(bindparam("limit", type_=Integer))
            .offset(bindparam("offset", type_=Integer))
        )
    return prepared, {**values, "limit": query.limit, "offset": query.offset}


_CHILD_FIELDS = {"prompts", "entities", "validations", "user_feedback", "feedback"}
_CHUNK = 500  # ids per IN (...): well under SQLite's and PostgreSQL's parameter limits
_CHILD_ORDER: dict[str, tuple[type[Any], tuple[Any, ...]]] = {
    "prompts": (Prompt, (Prompt.iteration, Prompt.id)),
    "entities": (Entity, (Entity.id,)),
    "validations": (Validation, (Validation.attempt_number, Validation.id)),
    "feedback": (UserFeedback, (UserFeedback.created_at, UserFeedback.id)),
}
# Built once, with an expanding IN parameter: every load reuses the same compiled statements, and runs
# them as Core statements on the session's connection (no ORM loading machinery for plain rows).
_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
_ID: BindParameter[Any] = bindparam("id")


def _loaders(many: bool) -> tuple[Select[Any], dict[str, Select[Any]]]:
    """The session and child statements, for one id (``= :id``) or many (an expanding ``IN``, whose
    per-call rendering a single load need not pay)."""

    def matching(column: Any) -> Any:
        return column.in_(_IDS) if many else column == _ID

    children = {
        key: select(table_of(model))
        .where(matching(table_of(model).c.session_id))
        .order_by(*(table_of(model).c[column.key] for column in order))
        for key, (model, order) in _CHILD_ORDER.items()
    }
    return select(SESSIONS).where(matching(SESSIONS.c.id)), children


_LOAD_MANY = _loaders(many=True)
_one_session, _one_session_children = _loaders(many=False)
_LOAD_ONE = (Prepared(_one_session), {key: Prepared(child) for key, child in _one_session_children.items()})


def _fetch(
    connection: Connection, statement: Select[Any] | Prepared, params: dict[str, Any]
) -> list[dict[str, Any]]:
    if isinstance(statement, Prepared):
        return statement.rows(connection, params)
    return [dict(row) for row in connection.execute(statement, params).mappings()]


def _load_graphs(s: Session, session_ids: Sequence[str]) -> list[SessionDetail]:
    """The graphs of ``session_ids`` (in that order, unknown ids skipped) in one query per table."""
    connection = s.connection()
    many = len(session_ids) != 1
    load_sessions, load_children = _LOAD_MANY if many else _LOAD_ONE
    params: dict[str, Any] = {"ids": list(session_ids)} if many else {"id": session_ids[0]}
    sessions = {row["id"]: row for row in _fetch(connection, load_sessions, params)}
    children: dict[str, dict[str, list[dict[str, Any]]]] = {
        sid: {k: [] for k in _CHILD_ORDER} for sid in sessions
    }
    if sessions:
        found = {"ids": list(sessions)} if many else params
        for key, statement in load_children.items():
            for row in _fetch(connection, statement, found):
                children[row["session_id"]][key].append(row)
    graphs = []
    for sid in session_ids:
        if sid not in sessions:
            continue
        mine = children[sid]
        # bbox is stored in the reference column bbox_json.
        for entity in mine["entities"]:
            entity["bbox"] = entity["bbox_json"]
        feedback = mine["feedback"]
        graphs.append(
            SessionDetail.model_validate(
                {**sessions[sid], **mine, "user_feedback": feedback[-1] if feedback else None}
            )
        )
    return graphs


def _touch(s: Session, session_id: str) -> None:
    """Bump the session's updated_at; NotFound when it does not exist (before any child is written)."""
    result = s.execute(update(SESSIONS).where(EditSession.id == session_id).values(updated_at=utcnow()))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("session", session_id)


_EXISTING = select(SESSIONS.c.id).where(SESSIONS.c.id.in_(_IDS))
_EXISTS_ONE = Prepared(select(SESSIONS.c.id).where(SESSIONS.c.id == _ID))
_INSERTS: dict[tuple[type[Any], tuple[str, ...]], Prepared] = {}


def _insert(connection: Connection, model: type[Any], rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (all with the same keys, as the row builders below make them) in one executemany."""
    if not rows:
        return
    keys = tuple(rows[0])
    if (prepared := _INSERTS.get((model, keys))) is None:
        prepared = _INSERTS[model, keys] = Prepared(insert(table_of(model)), keys)
    prepared.execute(connection, rows)


_DELETE_CHILDREN = [delete(table_of(m)).where(table_of(m).c.session_id.in_(_IDS)) for m in SESSION_CHILDREN]
# One executemany for every replaced session; a created_at not given keeps the stored one.
_REPLACE_SESSION = (
    update(SESSIONS)
    .where(SESSIONS.c.id == bindparam("b_id"))
    .values(
        {name: bindparam(name) for name in (*_SESSION_FIELDS, "updated_at")}
        | {
            "created_at": func.coalesce(
                bindparam("b_created_at", type_=SESSIONS.c.created_at.type), SESSIONS.c.created_at
            )
        }
    )
)


def _write_graphs(s: Session, items: Sequence[SessionCreate]) -> list[str]:
    """Insert new sessions and replace existing ones, with one multi-row statement per table.

    The statements are built once (module level) and run as Core statements on the session's
    connection: the graph is plain rows, and the ORM's per-statement machinery would only cost time.
    """
    connection = s.connection()
    now = utcnow()
    ids = [item.id or str(uuid.uuid4()) for item in items]
    if len(ids) == 1:
        existing = {row["id"] for row in _EXISTS_ONE.rows(connection, {"id": ids[0]})}
    else:
        existing = set(connection.scalars(_EXISTING, {"ids": ids}))
    new_rows: list[dict[str, Any]] = []
    replaced: list[dict[str, Any]] = []
    for session_id, item in zip(ids, items, strict=True):
        fields = {name: getattr(item, name) for name in _SESSION_FIELDS}
        fields["status"] = item.status.value
        if session_id in existing:
            replaced.append(
                {**fields, "b_id": session_id, "b_created_at": item.created_at, "updated_at": now}
            )
        else:
            new_rows.append(
                {"id": session_id, **fields, "created_at": item.created_at or now, "updated_at": now}
            )
    if replaced:
        connection.execute(_REPLACE_SESSION, replaced)
        for statement in _DELETE_CHILDREN:
            connection.execute(statement, {"ids": list(existing)})
    _insert(connection, EditSession, new_rows)
    children: dict[type[Any], list[dict[str, Any]]] = {model: [] for model in SESSION_CHILDREN}
    for session_id, item in zip(ids, items, strict=True):
        # One dump of the whole graph: a single call into pydantic-core rather than one per child.
        graph = item.model_dump(include=_CHILD_FIELDS)
        children[Prompt].extend(_prompt_row(session_id, p, now) for p in graph["prompts"])
        children[Entity].extend(_entity_row(session_id, e) for e in graph["entities"])
        children[Validation].extend(_validation_row(session_id, v, now) for v in graph["validations"])
        feedback = [graph["user_feedback"]] if graph["user_feedback"] is not None else graph["feedback"]
        children[UserFeedback].extend(_feedback_row(session_id, f, now) for f in feedback)
    for model, rows in children.items():
        _insert(connection, model, rows)
    for session_id in existing:  # anything loaded earlier in this unit of work is now stale
        if (obj := s.identity_map.get(s.identity_key(EditSession, session_id))) is not None:
            s.expire(obj)
    return ids


def _prompt_row(session_id: str, p: dict[str, Any], now: datetime) -> dict[str, Any]:
    created = p["created_at"] or now
    return {"session_id": session_id, **p, "created_at": created, "updated_at": created}


def _entity_row(session_id: str, e: dict[str, Any]) -> dict[str, Any]:
    row = {"session_id": session_id, **e, "bbox_json": e["bbox"]}
    del row["bbox"]  # stored in the reference column bbox_json
    return row


def _validation_row(session_id: str, v: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"session_id": session_id, **v, "created_at": v["created_at"] or now}


def _feedback_row(session_id: str, f: dict[str, Any], now: datetime) -> dict[str, Any]:
    created = f["created_at"] or now
    return {
        "session_id": session_id,
        **f,
        "feedback_type": f["feedback_type"].value,
        "created_at": created,
        "updated_at": created,
    }
