"""The session service: the reference design's operations, with typed errors instead of ``False``.

Every method validates its input first (``InvalidInput`` names the field and the value), then runs in
one transaction: its own, or the unit of work's it was created in. Every statement goes through the
SQLAlchemy ``Session`` as an ORM-enabled statement on the mapped classes, so the application's own ORM
code and the service never see two truths:

* pending ORM changes are flushed before a service reads or writes (the unit of work's scope flushes,
  and ORM-enabled statements autoflush);
* what a service changes is reflected in the identity map: ``update()`` and ``delete()`` synchronise the
  objects they match, a replaced or deleted session's child objects are evicted, and parents whose
  children changed have those collections expired.

Whole graphs are written by one path, ``_write_graphs``, for a single save and a batch alike: ORM bulk
INSERTs (one executemany per table) of new rows, a bulk UPDATE by primary key of replaced sessions, and a
replaced session's children deleted and written again, never duplicated. Reads that need no entity
select columns and build the output models from the rows; ``get_edit_session`` hands out the real ORM
graph for an application that wants objects.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Float,
    Integer,
    Select,
    String,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from edi_storage.dialects import SQLDialect, dialect_of
from edi_storage.errors import FieldError, InvalidInput, NotFound
from edi_storage.models.base import columns_of, utcnow
from edi_storage.models.sessions import (
    SESSION_CHILDREN,
    EditSession,
    Entity,
    Prompt,
    UserFeedback,
    Validation,
)
from edi_storage.monitoring import measured
from edi_storage.schemas.common import INT_MAX, InputModel, JSONInput, Score, Text, models_from, parse
from edi_storage.schemas.sessions import (
    EntityIn,
    FeedbackIn,
    HistoryQuery,
    PromptIn,
    SessionCreate,
    SessionDetail,
    SessionStatistics,
    SessionSummary,
    ValidationIn,
)
from edi_storage.services.base import Service
from edi_storage.state.model import SessionState, read_state
from edi_storage.state.resume import session_to_state, state_to_session
from edi_storage.vocabulary import OrderBy, SessionStatus

SessionInput = SessionCreate | Mapping[str, Any]
ChildModel = type[Prompt | Entity | Validation | UserFeedback]
J = TypeVar("J", list[str], dict[str, Any])
RowBuilder = Callable[[str, dict[str, Any], datetime], dict[str, Any]]
_ChildKind = tuple[ChildModel, type[InputModel], RowBuilder]

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
_CHILD_FIELDS = {"prompts", "entities", "validations", "user_feedback", "feedback"}
_CHUNK = 500  # ids per IN (...): well under SQLite's and PostgreSQL's parameter limits
# The graph's child collections: output key, model, relationship and the order they load in.
_CHILDREN: dict[str, tuple[ChildModel, Any, tuple[Any, ...]]] = {
    "prompts": (Prompt, EditSession.prompts, (Prompt.iteration, Prompt.id)),
    "entities": (Entity, EditSession.entities, (Entity.id,)),
    "validations": (Validation, EditSession.validations, (Validation.attempt_number, Validation.id)),
    "feedback": (UserFeedback, EditSession.feedback, (UserFeedback.created_at, UserFeedback.id)),
}


_GRAPH_COLUMNS = {EditSession: columns_of(EditSession)} | {
    model: columns_of(model) for model, _, _ in _CHILDREN.values()
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

    @measured("sessions.get_edit_session")
    def get_edit_session(self, session_id: str) -> EditSession | None:
        """The session as an ORM object with its four child collections loaded (one query each).

        Inside a unit of work it is the identity map's own object, so the application can change it and
        the change is committed with the rest; the collections stay ``raise_on_sql`` for anything not
        loaded here. Outside one, the graph is detached but fully loaded.
        """
        with self._tx(readonly=True) as s:
            options = [selectinload(relationship) for _, relationship, _ in _CHILDREN.values()]
            return s.get(EditSession, session_id, options=options, populate_existing=True)

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
            row = _prompt_row(session_id, item.model_dump(), utcnow())
            return _add_children(s, session_id, Prompt, [row])[0]

    @measured("sessions.add_entities")
    def add_entities(self, session_id: str, entities: Sequence[EntityIn | Mapping[str, Any]]) -> list[int]:
        _check_list("entities", entities)
        items = [parse(EntityIn, e, prefix=f"[{i}].") for i, e in enumerate(entities)]
        with self._tx() as s:
            return _add_children(
                s, session_id, Entity, [_entity_row(session_id, e.model_dump()) for e in items]
            )

    @measured("sessions.record_validation")
    def record_validation(self, session_id: str, validation: ValidationIn | Mapping[str, Any]) -> int:
        item = parse(ValidationIn, validation)
        with self._tx() as s:
            row = _validation_row(session_id, item.model_dump(), utcnow())
            return _add_children(s, session_id, Validation, [row])[0]

    @measured("sessions.record_feedback")
    def record_feedback(self, session_id: str, feedback: FeedbackIn | Mapping[str, Any]) -> int:
        item = parse(FeedbackIn, feedback)
        with self._tx() as s:
            row = _feedback_row(session_id, item.model_dump(), utcnow())
            return _add_children(s, session_id, UserFeedback, [row])[0]

    # -- correcting one record --------------------------------------------------------------------
    @measured("sessions.update_child")
    def update_child(
        self,
        kind: str,
        child_id: int,
        data: InputModel | Mapping[str, Any],
        *,
        session_id: str | None = None,
    ) -> None:
        """Replace the fields of one prompt, entity, validation or feedback row (``kind``) by its id,
        as storage-models.md's ``save_prompt``/``save_entity``/``save_validation`` do: ``data`` is
        validated whole, as for adding one; the row keeps its id, its session and, unless ``data`` gives
        one, its ``created_at``. With ``session_id``, a row of another session is NotFound. The session's
        ``updated_at`` moves; a loaded object of the row shows the new values; the audit trail records
        the UPDATE."""
        model, schema, row_of = _child_kind(kind)
        item = parse(schema, data)
        now = utcnow()
        given = item.model_dump()
        row = {k: v for k, v in row_of("", given, now).items() if k != "session_id"}
        if given.get("created_at") is None:
            row.pop("created_at", None)
        if "updated_at" in row:
            row["updated_at"] = now
        with self._tx() as s:
            statement = update(model).where(*_child_where(model, child_id, session_id)).values(row)
            result = s.execute(statement.returning(model.session_id), execution_options=_SYNCHRONISE)
            owner = result.scalar_one_or_none()
            if owner is None:
                raise NotFound(kind, child_id)
            _update_session(s, owner, {"updated_at": now})

    @measured("sessions.delete_child")
    def delete_child(self, kind: str, child_id: int, *, session_id: str | None = None) -> None:
        """Delete one prompt, entity, validation or feedback row by its id (with ``session_id``, only
        one of that session's); it leaves the identity map and its session's loaded collection. The
        audit trail records the DELETE."""
        model, _, _ = _child_kind(kind)
        with self._tx() as s:
            statement = delete(model).where(*_child_where(model, child_id, session_id))
            result = s.execute(statement.returning(model.session_id), execution_options=_SYNCHRONISE)
            owner = result.scalar_one_or_none()
            if owner is None:
                raise NotFound(kind, child_id)
            _update_session(s, owner, {"updated_at": utcnow()})
            _drop_from_loaded_collection(s, owner, model, child_id)

    @measured("sessions.change_tags")
    def change_tags(self, session_id: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> list[str]:
        """Add tags not yet on the session (after the existing ones, in the order given) and remove
        others, in one write; the session's tags afterwards. Nothing is written when nothing changes."""
        change = parse(_TagChange, {"add": add, "remove": remove})
        gone = set(change.remove)
        return self._change_json(
            session_id,
            "session_tags",
            [],
            lambda old: [t for t in dict.fromkeys([*old, *change.add]) if t not in gone],
        )

    # The simple forms check their argument under its own name, so that an error names what was passed.
    def add_tags(self, session_id: str, tags: Sequence[str]) -> list[str]:
        return self.change_tags(session_id, add=parse(_Tags, {"tags": tags}).tags)

    def remove_tags(self, session_id: str, tags: Sequence[str]) -> list[str]:
        return self.change_tags(session_id, remove=parse(_Tags, {"tags": tags}).tags)

    @measured("sessions.change_metadata")
    def change_metadata(
        self, session_id: str, values: Mapping[str, Any] | None = None, remove: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Set metadata keys (others are kept) and remove others, in one write; the session's metadata
        afterwards. Nothing is written when nothing changes."""
        change = parse(_MetadataChange, {"values": values or {}, "remove": remove})
        gone = set(change.remove)
        return self._change_json(
            session_id,
            "session_metadata",
            {},
            lambda old: {k: v for k, v in {**old, **change.values}.items() if k not in gone},
        )

    def set_metadata(self, session_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
        return self.change_metadata(session_id, values=values)

    def remove_metadata(self, session_id: str, keys: Sequence[str]) -> dict[str, Any]:
        return self.change_metadata(session_id, remove=parse(_Keys, {"keys": keys}).keys)

    def _change_json(self, session_id: str, column: str, empty: J, change: Callable[[J], J]) -> J:
        """Read a JSON column and write ``change(value)`` back in one writing transaction: the row is
        locked first (FOR UPDATE on PostgreSQL; SQLite's writer holds the database's write lock from
        BEGIN IMMEDIATE), so two concurrent changes both land. An unchanged value is not written."""
        attribute = getattr(EditSession, column)
        with self._tx() as s:
            found = s.execute(
                select(attribute).where(EditSession.id == session_id).with_for_update()
            ).one_or_none()
            if found is None:
                raise NotFound("session", session_id)
            old = empty if found[0] is None else found[0]
            new = change(old)
            if new != old:
                _update_session(s, session_id, {column: new, "updated_at": utcnow()})
            return new

    @measured("sessions.update_session_status")
    def update_session_status(
        self, session_id: str, status: SessionStatus | str, final_alignment_score: float | None = None
    ) -> None:
        """Set the status (and score); a loaded ``EditSession`` shows the new values at once."""
        query = parse(_StatusUpdate, {"status": status, "final_alignment_score": final_alignment_score})
        values: dict[str, Any] = {"status": query.status.value, "updated_at": utcnow()}
        if query.final_alignment_score is not None:
            values["final_alignment_score"] = query.final_alignment_score
        with self._tx() as s:
            _update_session(s, session_id, values)

    @measured("sessions.delete_session")
    def delete_session(self, session_id: str) -> None:
        """Delete a session; the database's ON DELETE CASCADE removes its children in the same statement,
        and the session's objects, children included, leave the identity map."""
        with self._tx() as s:
            _evict_children(s, [session_id])
            statement = delete(EditSession).where(EditSession.id == session_id)
            result = s.execute(statement, execution_options=_SYNCHRONISE)
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
        *,
        user_id: str | None = None,
        project_id: str | None = None,
    ) -> list[SessionSummary]:
        """A page of sessions without their children; the filters combine with AND, and every
        combination is read in index order (see ``_filters``)."""
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
                "user_id": user_id,
                "project_id": project_id,
                "order_by": order_by,
            },
        )
        with self._tx(readonly=True) as s:
            return models_from(SessionSummary, _history(s, query))

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
    def get_session_count(
        self,
        status_filter: SessionStatus | str | None = None,
        *,
        user_id: str | None = None,
        project_id: str | None = None,
    ) -> int:
        filters = {"status_filter": status_filter, "user_id": user_id, "project_id": project_id}
        query = parse(HistoryQuery, filters)
        with self._tx(readonly=True) as s:
            values = _filter_values(query)
            terms = _filters(frozenset(values), query.order_by, dialect_of(s))
            return s.scalar(select(func.count()).select_from(EditSession).where(*terms), values) or 0

    @measured("sessions.get_statistics")
    def get_statistics(self) -> SessionStatistics:
        """Two statements in one read transaction: the sessions grouped by status (counts, the completed
        sessions' average score, processing times, recent sessions, the newest change), and the row
        count of each child table."""
        week_ago = utcnow() - timedelta(days=7)
        with self._tx(readonly=True) as s:
            groups = s.execute(_STATISTICS, {"since": week_ago}).mappings().all()
            children = s.execute(_CHILD_COUNTS).mappings().one()
        breakdown = Counter({g["status"]: g["sessions"] for g in groups})
        total = sum(breakdown.values())
        average = next((g["score"] for g in groups if g["status"] == SessionStatus.COMPLETED.value), None)
        timed = sum(g["timed"] for g in groups)
        completed = breakdown[SessionStatus.COMPLETED.value]
        return SessionStatistics(
            total_sessions=total,
            status_breakdown=dict(breakdown),
            average_alignment_score=None if average is None else round(float(average), 3),
            successful_rate=round(completed / total * 100, 1) if total else 0.0,
            average_processing_time=round(sum(g["time"] or 0 for g in groups) / timed, 2) if timed else None,
            recent_sessions_7_days=sum(g["recent"] for g in groups),
            last_updated=max((g["updated"] for g in groups), default=None),
            table_counts={"sessions": total, **children},
        )


_STATISTICS = select(
    EditSession.status.label("status"),
    func.count().label("sessions"),
    func.avg(
        case((EditSession.status == SessionStatus.COMPLETED.value, EditSession.final_alignment_score))
    ).label("score"),
    func.sum(EditSession.processing_time).label("time"),
    func.count(EditSession.processing_time).label("timed"),
    func.count(
        case((EditSession.created_at >= bindparam("since", type_=EditSession.created_at.type), 1))
    ).label("recent"),
    func.max(EditSession.updated_at).label("updated"),
).group_by(EditSession.status)
_CHILD_COUNTS = select(
    *(
        select(func.count()).select_from(model).scalar_subquery().label(name)
        for name, model in (
            ("prompts", Prompt),
            ("entities", Entity),
            ("validations", Validation),
            ("user_feedback", UserFeedback),
        )
    )
)
# ORM update()/delete() set the attributes of (or remove) the objects they match in the identity map,
# evaluating the WHERE clause in Python rather than reading the rows back.
_SYNCHRONISE = {"synchronize_session": "evaluate"}


def _check_list(name: str, value: object) -> None:
    """A list (or tuple) of items, not one item, a string or nothing; InvalidInput otherwise."""
    if not isinstance(value, list | tuple):
        raise InvalidInput.single(name, "must be a list", value)


class _Tags(InputModel):
    tags: list[Text]


class _Keys(InputModel):
    keys: list[Text]


class _TagChange(InputModel):
    add: list[Text] = []
    remove: list[Text] = []


class _MetadataChange(InputModel):
    values: JSONInput = {}
    remove: list[Text] = []


def _child_kind(
    kind: str,
) -> tuple[ChildModel, type[InputModel], Callable[[str, dict[str, Any], datetime], dict[str, Any]]]:
    try:
        return _CHILD_KINDS[kind]
    except (KeyError, TypeError):
        raise InvalidInput.single("kind", f"must be one of {', '.join(_CHILD_KINDS)}", kind) from None


def _child_where(model: ChildModel, child_id: int, session_id: str | None) -> list[ColumnElement[bool]]:
    if isinstance(child_id, bool) or not isinstance(child_id, int) or not 1 <= child_id <= INT_MAX:
        raise InvalidInput.single("id", f"must be a whole number from 1 to {INT_MAX}", child_id)
    where = [model.id == child_id]
    if session_id is not None:
        where.append(model.session_id == session_id)
    return where


class _StatusUpdate(InputModel):
    status: SessionStatus
    final_alignment_score: Score | None = None


# -- history ---------------------------------------------------------------------------------------
_SCORE_ORDERS = {OrderBy.SCORE_DESC: True, OrderBy.SCORE_ASC: False}


_FILTER_NAMES = ("status", "user_id", "project_id", "date_from", "date_to", "min_score", "pattern")


def _filter_values(query: HistoryQuery) -> dict[str, Any]:
    """The filters ``query`` sets, as the parameters of the statements ``_history_statements`` builds."""
    values = {
        "status": None if query.status_filter is None else query.status_filter.value,
        "date_from": query.date_from,
        "date_to": query.date_to,
        "min_score": query.min_score,
        "pattern": f"%{escape_like(query.search_term)}%" if query.search_term else None,
        "user_id": query.user_id,
        "project_id": query.project_id,
    }
    return {name: value for name, value in values.items() if value is not None}


def _filters(names: frozenset[str], order_by: OrderBy, dialect: SQLDialect) -> list[ColumnElement[bool]]:
    """The WHERE terms for the filters ``names``, as bound parameters. Every ordering has an index that
    serves it together with the status filter; the other range filters are written so that they never
    take the plan away from that index (walk it in order, stop after ``limit`` matches), rather than
    range-scan and sort every match."""
    by_score = order_by in _SCORE_ORDERS
    created: Any = dialect.unindexed(EditSession.created_at) if by_score else EditSession.created_at
    score: Any = (
        EditSession.final_alignment_score
        if by_score
        else dialect.unindexed(EditSession.final_alignment_score)
    )
    when = EditSession.created_at.type
    pattern: BindParameter[str] = bindparam("pattern", type_=String())
    terms = {
        "status": EditSession.status == bindparam("status"),
        "user_id": EditSession.user_id == bindparam("user_id"),
        "project_id": EditSession.project_id == bindparam("project_id"),
        "date_from": created >= bindparam("date_from", type_=when),
        "date_to": created <= bindparam("date_to", type_=when),
        "min_score": score >= bindparam("min_score", type_=Float()),
        "pattern": EditSession.image_path.ilike(pattern, escape="\\")
        | EditSession.naive_prompt.ilike(pattern, escape="\\"),
    }
    return [terms[name] for name in _FILTER_NAMES if name in names]


@cache
def _history_statements(
    dialect: SQLDialect, names: frozenset[str], order_by: OrderBy
) -> tuple[Select[Any], Select[Any] | None, Select[Any] | None]:
    """The statements of one filter shape and ordering, built once (SQLAlchemy compiles and caches each
    per engine): the page, and for a score ordering whose NULLs the database sorts first, the page of
    unscored sessions and the count of scored ones (``_scored_then_unscored``).

    Every ordering ends in ``id``, so that ties (a batch sharing one ``created_at``) have one stable
    order and the index that includes ``id`` serves the sort.
    """
    terms = _filters(names, order_by, dialect)
    base = select(*_SUMMARY_COLUMNS).where(*terms)
    page = (bindparam("limit", type_=Integer()), bindparam("offset", type_=Integer()))
    sid, score = EditSession.id, EditSession.final_alignment_score
    if order_by not in _SCORE_ORDERS:
        created = EditSession.created_at
        order = (
            (created.desc(), sid.desc()) if order_by is OrderBy.CREATED_DESC else (created.asc(), sid.asc())
        )
        return base.order_by(*order).limit(page[0]).offset(page[1]), None, None
    descending = _SCORE_ORDERS[order_by]
    by_score = (score.desc(), sid.desc()) if descending else (score.asc(), sid.asc())
    if "min_score" in names or dialect.native_nulls_last(descending=descending):
        # No NULL can match a minimum score, and elsewhere the database puts them last by itself.
        return base.order_by(*by_score).limit(page[0]).offset(page[1]), None, None
    scored = base.where(score.is_not(None)).order_by(*by_score).limit(page[0]).offset(page[1])
    unscored = base.where(score.is_(None)).order_by(by_score[1]).limit(page[0]).offset(page[1])
    counted = select(func.count()).select_from(EditSession).where(*terms, score.is_not(None))
    return scored, unscored, counted


def _history(s: Session, query: HistoryQuery) -> list[dict[str, Any]]:
    """One page of summaries (see ``_history_statements``)."""
    values = _filter_values(query)
    page, unscored, counted = _history_statements(dialect_of(s), frozenset(values), query.order_by)
    rows = _rows(s, page, values | {"limit": query.limit, "offset": query.offset})
    if unscored is None or counted is None or len(rows) == query.limit:
        return rows
    return rows + _unscored_rest(s, unscored, counted, values, query, len(rows))


def _rows(s: Session, statement: Select[Any], params: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(row) for row in s.execute(statement, params).mappings()]


def _unscored_rest(
    s: Session,
    unscored: Select[Any],
    counted: Select[Any],
    values: dict[str, Any],
    query: HistoryQuery,
    found: int,
) -> list[dict[str, Any]]:
    """A score ordering with NULLs last where the database sorts them first reads the scored sessions,
    then the unscored ones, each in index order (``NULLS LAST`` in one statement would sort every match).

    This second statement runs only for the page where the scored sessions run out; when the page starts
    past them, a count of the scored matches says how many unscored ones to skip.
    """
    skip = 0
    if not found and query.offset:
        skip = max(0, query.offset - (s.scalar(counted, values) or 0))
    return _rows(s, unscored, values | {"limit": query.limit - found, "offset": skip})


# -- reading graphs --------------------------------------------------------------------------------
@cache
def _graph_statement(dialect: SQLDialect, many: bool) -> Select[Any]:
    """One statement that builds each whole graph as JSON in the database: one round trip per load
    instead of five, and one call into pydantic-core per page of graphs (see docs/performance.md)."""
    sid = EditSession.id

    def fields(model: type[Any]) -> dict[str, ColumnElement[Any]]:
        return {column.key: column.expression for column in _GRAPH_COLUMNS[model]}

    members = fields(EditSession) | {
        key: dialect.json_array(dialect.json_object(fields(model)), model.session_id == sid)
        for key, (model, _, _) in _CHILDREN.items()
    }
    wanted = sid.in_(bindparam("ids", expanding=True)) if many else sid == bindparam("id")
    return select(dialect.json_object(members)).where(wanted)


def _load_graphs(s: Session, session_ids: Sequence[str]) -> list[SessionDetail]:
    """The graphs of ``session_ids`` (in that order, unknown ids skipped) in one query."""
    if not session_ids:
        return []
    many = len(session_ids) > 1
    params = {"ids": list(session_ids)} if many else {"id": session_ids[0]}
    found: dict[str, dict[str, Any]] = {}
    for value in s.scalars(_graph_statement(dialect_of(s), many), params):
        graph = json.loads(value) if isinstance(value, str) else value
        for key, (_, _, order) in _CHILDREN.items():  # the database builds arrays in no set order
            graph[key].sort(key=lambda child, keys=[c.key for c in order]: [child[k] for k in keys])
        feedback = graph["feedback"]
        graph["user_feedback"] = feedback[-1] if feedback else None
        found[graph["id"]] = graph
    return models_from(SessionDetail, [found[sid] for sid in session_ids if sid in found])


# -- writing graphs --------------------------------------------------------------------------------
def _update_session(s: Session, session_id: str, values: dict[str, Any]) -> None:
    """UPDATE one session by id (synchronised into a loaded object); NotFound when there is none."""
    statement = update(EditSession).where(EditSession.id == session_id).values(values)
    if s.execute(statement, execution_options=_SYNCHRONISE).rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("session", session_id)


def _add_children(s: Session, session_id: str, model: ChildModel, rows: list[dict[str, Any]]) -> list[int]:
    """Bump the session's updated_at (NotFound before anything is written), insert ``rows``, and expire
    the parent's collection of them if it is loaded, so that it is read afresh."""
    _update_session(s, session_id, {"updated_at": utcnow()})
    if not rows:
        return []
    ids = list(s.scalars(insert(model).returning(model.id, sort_by_parameter_order=True), rows))
    _expire_parents(s, [session_id], [_COLLECTION[model], "updated_at"])
    return ids


# Built once: statement objects are immutable, and building one costs more than SQLAlchemy's lookup of
# its compiled form (its own cache, per engine).
_PROBE_ONE = select(EditSession.id).where(EditSession.id == bindparam("id"))
_PROBE = select(EditSession.id).where(EditSession.id.in_(bindparam("ids", expanding=True)))
_INSERT = {model: insert(model) for model in (EditSession, *SESSION_CHILDREN)}


def _write_graphs(s: Session, items: Sequence[SessionCreate]) -> list[str]:
    """Insert new sessions and replace existing ones, with one ORM bulk statement per table.

    A session that exists (in the database, or pending in this unit of work: the probe autoflushes it)
    is replaced: its fields by a bulk UPDATE by primary key, its children deleted and inserted again.
    """
    now = utcnow()
    ids = [item.id or str(uuid.uuid4()) for item in items]
    if len(ids) == 1:
        existing = set(s.scalars(_PROBE_ONE, {"id": ids[0]}))
    else:  # in chunks: PostgreSQL takes at most 65,535 parameters per statement
        existing = {sid for chunk in _chunks(ids) for sid in s.scalars(_PROBE, {"ids": chunk})}
    new_rows: list[dict[str, Any]] = []
    replaced: list[dict[str, Any]] = []
    for session_id, item in zip(ids, items, strict=True):
        fields = {name: getattr(item, name) for name in _SESSION_FIELDS}
        fields["status"] = item.status.value
        if session_id in existing:
            # A created_at not given keeps the stored one.
            kept = {} if item.created_at is None else {"created_at": item.created_at}
            replaced.append({"id": session_id, **fields, **kept, "updated_at": now})
        else:
            new_rows.append(
                {"id": session_id, **fields, "created_at": item.created_at or now, "updated_at": now}
            )
    if replaced:
        _evict_children(s, existing)
        s.execute(update(EditSession), replaced)
        for model in SESSION_CHILDREN:
            for chunk in _chunks(sorted(existing)):
                s.execute(
                    delete(model).where(model.session_id.in_(chunk)),
                    execution_options={"synchronize_session": False},  # evicted above
                )
        _expire_parents(s, existing, _SESSION_ATTRIBUTES)
    if new_rows:
        s.execute(_INSERT[EditSession], new_rows)
    children: dict[ChildModel, list[dict[str, Any]]] = {model: [] for model in SESSION_CHILDREN}
    for session_id, item in zip(ids, items, strict=True):
        # One dump of the whole graph: a single call into pydantic-core rather than one per child.
        graph = item.model_dump(include=_CHILD_FIELDS)
        children[Prompt].extend(_prompt_row(session_id, p, now) for p in graph["prompts"])
        children[Entity].extend(_entity_row(session_id, e) for e in graph["entities"])
        children[Validation].extend(_validation_row(session_id, v, now) for v in graph["validations"])
        feedback = [graph["user_feedback"]] if graph["user_feedback"] is not None else graph["feedback"]
        children[UserFeedback].extend(_feedback_row(session_id, f, now) for f in feedback)
    for model, rows in children.items():
        if rows:
            s.execute(_INSERT[model], rows)
    return ids


def _chunks(ids: Sequence[str]) -> list[Sequence[str]]:
    return [ids[start : start + _CHUNK] for start in range(0, len(ids), _CHUNK)]


def _evict_children(s: Session, session_ids: Sequence[str] | set[str]) -> None:
    """Remove from the identity map every child object of these sessions, before their rows go (the
    database's cascade or a replace deletes them behind the ORM's back). Objects stay readable, detached
    as they were loaded. The children are found by one query per table that has objects loaded, never
    by loading an expired object."""
    wanted = sorted(set(session_ids))
    keys = list(s.identity_map.keys())  # (class, (primary key,), token)
    for model in SESSION_CHILDREN:
        loaded = {key[1][0]: s.identity_map[key] for key in keys if key[0] is model}
        if not loaded:
            continue
        for chunk in _chunks(wanted):
            for child_id in s.scalars(select(model.id).where(model.session_id.in_(chunk))):
                if (obj := loaded.get(child_id)) is not None:
                    s.expunge(obj)


# What a loaded EditSession is told to read afresh: its columns and its collections, by name, so that
# the expiry does not cascade into child objects the application holds (they stay as they were loaded).
_SESSION_ATTRIBUTES = [column.key for column in columns_of(EditSession)] + list(_CHILDREN)
_COLLECTION: dict[ChildModel, str] = {model: key for key, (model, _, _) in _CHILDREN.items()}


def _entity_row_at(session_id: str, e: dict[str, Any], _now: datetime) -> dict[str, Any]:
    return _entity_row(session_id, e)


def _expire_parents(s: Session, session_ids: Sequence[str] | set[str], attributes: list[str]) -> None:
    """Expire ``attributes`` of the loaded sessions among ``session_ids``: read afresh at next access."""
    for session_id in session_ids:
        if (obj := s.identity_map.get(s.identity_key(EditSession, session_id))) is not None:
            s.expire(obj, attributes)


def _drop_from_loaded_collection(s: Session, session_id: str, model: ChildModel, child_id: int) -> None:
    """Take a deleted child out of its session's collection where that is loaded, as committed state
    (no change for the next flush to act on), so that a held graph stays whole and readable."""
    parent = s.identity_map.get(s.identity_key(EditSession, session_id))
    key = _COLLECTION[model]
    if parent is not None and key in parent.__dict__:
        set_committed_value(parent, key, [c for c in parent.__dict__[key] if c.id != child_id])


def _prompt_row(session_id: str, p: dict[str, Any], now: datetime) -> dict[str, Any]:
    created = p["created_at"] or now
    return {"session_id": session_id, **p, "created_at": created, "updated_at": created}


def _entity_row(session_id: str, e: dict[str, Any]) -> dict[str, Any]:
    return {"session_id": session_id, **e}


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


# What update_child and delete_child take as ``kind``: the model, its input schema, its row builder.
_CHILD_KINDS: dict[
    str, tuple[ChildModel, type[InputModel], Callable[[str, dict[str, Any], datetime], dict[str, Any]]]
] = {
    "prompt": (Prompt, PromptIn, _prompt_row),
    "entity": (Entity, EntityIn, _entity_row_at),
    "validation": (Validation, ValidationIn, _validation_row),
    "feedback": (UserFeedback, FeedbackIn, _feedback_row),
}
