"""``/api/sessions``: editing sessions, their history and their steps, one service call each."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import BeforeValidator, Field
from starlette.convertors import Convertor, register_url_convertor

from edi_storage.api.errors import StorageRoute, collection_route, links, responses
from edi_storage.api.models import (
    CreatedRow,
    CreatedRows,
    CreatedSession,
    MetadataChange,
    RowId,
    SessionMetadata,
    SessionReplacement,
    SessionTags,
    StatusChange,
    TagChange,
)
from edi_storage.errors import InvalidInput, NotFound
from edi_storage.schemas.common import NUL_FREE_AS_NOT, InputModel, UTCDatetime
from edi_storage.schemas.sessions import (
    EntityIn,
    FeedbackIn,
    HistoryQuery,
    PromptIn,
    SessionCreate,
    SessionDetail,
    SessionId,
    SessionStatistics,
    SessionSummary,
    ValidationIn,
)
from edi_storage.storage import Storage

NO_CONTENT = status.HTTP_204_NO_CONTENT
STATISTICS = "statistics"


# A session id as a path segment: no "/"; not "." or ".." (URLs resolve those as dot-segments, so a
# request for them never reaches the route); no newline at the end (Starlette's routes end in "$", which
# matches before one: "/api/sessions/%0A" is the collection); nor "statistics", which names the
# statistics resource. Any other id the service accepts can be addressed.
SEGMENT = r"^(?:[^/.\n]|[^/.][^/]*[^/\n]|\.[^/.\n]|\.[^/.][^/]*[^/\n]|\.\.[^/]*[^/\n])$"
PathSessionId = Annotated[
    SessionId,
    Field(
        pattern=SEGMENT,
        json_schema_extra={"pattern": SEGMENT, **NUL_FREE_AS_NOT},  # both rules, in the document too
        description=f"A session id; {STATISTICS!r} is the statistics resource, not a session.",
    ),
]


class _SessionIdSegment(Convertor[str]):
    """The ``{session_id:session_id}`` path segment: any but ``statistics``. So the session routes do
    not match ``/api/sessions/statistics``, and a method that path lacks (DELETE, PUT) is 405 with
    ``Allow: GET``, not taken for the session called "statistics"."""

    regex = f"(?!{STATISTICS}(?:/|$))[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("session_id", _SessionIdSegment())


def _iso_8601(value: object) -> object:
    """A date in a query string is ISO 8601 text, as the document's ``date-time`` format says: not a
    number, which pydantic would otherwise take for a Unix time (``date_to=0.5``)."""
    if isinstance(value, datetime):
        return value
    try:
        datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError("must be an ISO 8601 date and time, such as 2026-01-31T12:00:00Z") from None
    return value


IsoDatetime = Annotated[UTCDatetime, BeforeValidator(_iso_8601)]


class HistoryParams(HistoryQuery):
    """``HistoryQuery`` as query parameters: its dates as ISO 8601 only."""

    date_from: IsoDatetime | None = None
    date_to: IsoDatetime | None = None


def router(storage: Storage) -> APIRouter:
    api = APIRouter(prefix="/api/sessions", tags=["sessions"], route_class=StorageRoute)

    @collection_route(api, "GET", response_model=list[SessionSummary], responses=responses(422))
    def history(query: Annotated[HistoryParams, Query()]) -> list[SessionSummary]:
        """Sessions without their children, filtered (the filters combine with AND) and ordered."""
        return storage.sessions.query_history(
            limit=query.limit,
            offset=query.offset,
            status_filter=query.status_filter,
            date_from=query.date_from,
            date_to=query.date_to,
            min_score=query.min_score,
            search_term=query.search_term,
            order_by=query.order_by,
            user_id=query.user_id,
            project_id=query.project_id,
        )

    @collection_route(
        api,
        "POST",
        response_model=CreatedSession,
        status_code=status.HTTP_201_CREATED,
        responses={
            **responses(409, 422, 507),
            **links(
                201,
                "/id",
                GetSession=("get", "/api/sessions/{session_id}"),
                ReplaceSession=("put", "/api/sessions/{session_id}"),
                DeleteSession=("delete", "/api/sessions/{session_id}"),
                AddPrompts=("post", "/api/sessions/{session_id}/prompts"),
                AddFeedback=("post", "/api/sessions/{session_id}/feedback"),
            ),
        },
    )
    def create(session: SessionCreate) -> CreatedSession:
        """Store a whole session graph; a new id is assigned unless one is given (an existing id is
        replaced, as with PUT)."""
        return CreatedSession(id=storage.sessions.save_session(session))

    @api.get(f"/{STATISTICS}", response_model=SessionStatistics, responses=responses())
    def statistics() -> SessionStatistics:
        """Sessions per status, the completed ones' average score, the success rate."""
        return storage.sessions.get_statistics()

    @api.get("/{session_id:session_id}", response_model=SessionDetail, responses=responses(404, 422))
    def load(session_id: PathSessionId) -> SessionDetail:
        """The whole graph: prompts, entities, validations and feedback."""
        detail = storage.sessions.load_session(session_id)
        if detail is None:
            raise NotFound("session", session_id)
        return detail

    @api.put("/{session_id:session_id}", response_model=CreatedSession, responses=responses(409, 422, 507))
    def replace(session_id: PathSessionId, session: SessionReplacement) -> CreatedSession:
        """Create the session with this id, or replace it whole (its children too). The body needs no
        ``id``; one that has it (a graph read with GET) must have the path's."""
        if session.id is not None and session.id != session_id:
            raise InvalidInput.single(
                "id", f"must be the id in the path ({session_id!r}) or absent", session.id
            )
        return CreatedSession(id=storage.sessions.save_session(session.model_copy(update={"id": session_id})))

    @api.patch(
        "/{session_id:session_id}/status",
        status_code=NO_CONTENT,
        response_class=Response,
        responses=responses(404, 422, 507),
    )
    def update_status(session_id: PathSessionId, change: StatusChange) -> None:
        """Set the status, and the final alignment score when given."""
        storage.sessions.update_session_status(session_id, change.status, change.final_alignment_score)

    @api.delete(
        "/{session_id:session_id}",
        status_code=NO_CONTENT,
        response_class=Response,
        responses=responses(404, 422, 507),
    )
    def delete(session_id: PathSessionId) -> None:
        """Delete the session and everything under it."""
        storage.sessions.delete_session(session_id)

    @api.post(
        "/{session_id:session_id}/prompts",
        response_model=CreatedRow,
        status_code=status.HTTP_201_CREATED,
        responses=responses(404, 422, 507),
    )
    def add_prompt(session_id: PathSessionId, prompt: PromptIn) -> CreatedRow:
        """Add one prompt iteration."""
        return CreatedRow(id=storage.sessions.add_prompt_iteration(session_id, prompt))

    @api.post(
        "/{session_id:session_id}/entities",
        response_model=CreatedRows,
        status_code=status.HTTP_201_CREATED,
        responses=responses(404, 422, 507),
    )
    def add_entities(session_id: PathSessionId, entities: list[EntityIn]) -> CreatedRows:
        """Add detected entities; their ids in the order given."""
        return CreatedRows(ids=storage.sessions.add_entities(session_id, entities))

    @api.post(
        "/{session_id:session_id}/validations",
        response_model=CreatedRow,
        status_code=status.HTTP_201_CREATED,
        responses=responses(404, 422, 507),
    )
    def record_validation(session_id: PathSessionId, validation: ValidationIn) -> CreatedRow:
        """Record one validation attempt."""
        return CreatedRow(id=storage.sessions.record_validation(session_id, validation))

    @api.post(
        "/{session_id:session_id}/feedback",
        response_model=CreatedRow,
        status_code=status.HTTP_201_CREATED,
        responses=responses(404, 422, 507),
    )
    def record_feedback(session_id: PathSessionId, feedback: FeedbackIn) -> CreatedRow:
        """Record the user's feedback."""
        return CreatedRow(id=storage.sessions.record_feedback(session_id, feedback))

    @api.patch(
        "/{session_id:session_id}/tags", response_model=SessionTags, responses=responses(404, 422, 507)
    )
    def change_tags(session_id: PathSessionId, change: TagChange) -> SessionTags:
        """Add and remove tags in one transaction; the session's tags afterwards."""
        return SessionTags(tags=storage.sessions.change_tags(session_id, change.add, change.remove))

    @api.patch(
        "/{session_id:session_id}/metadata",
        response_model=SessionMetadata,
        responses=responses(404, 422, 507),
    )
    def change_metadata(session_id: PathSessionId, change: MetadataChange) -> SessionMetadata:
        """Set and remove metadata keys in one transaction; the session's metadata afterwards."""
        metadata = storage.sessions.change_metadata(session_id, change.set, change.remove)
        return SessionMetadata(metadata=metadata)

    for collection, kind, schema in CHILD_ROUTES:
        _child_routes(api, storage, collection, kind, schema)
    return api


# The collections under a session whose rows can be corrected one by one: path, service kind, body.
CHILD_ROUTES: list[tuple[str, str, type[InputModel]]] = [
    ("prompts", "prompt", PromptIn),
    ("entities", "entity", EntityIn),
    ("validations", "validation", ValidationIn),
    ("feedback", "feedback", FeedbackIn),
]


def _child_routes(
    api: APIRouter, storage: Storage, collection: str, kind: str, schema: type[InputModel]
) -> None:
    """PUT and DELETE ``/{session_id}/{collection}/{id}``: one row of the session, replaced or deleted
    (404 when the session has no such row). One function per method serves the four collections."""
    path = f"/{{session_id:session_id}}/{collection}/{{row_id}}"

    def replace_row(session_id: str, row_id: int, row: InputModel) -> None:
        storage.sessions.update_child(kind, row_id, row, session_id=session_id)

    def delete_row(session_id: str, row_id: int) -> None:
        storage.sessions.delete_child(kind, row_id, session_id=session_id)

    # The annotations FastAPI reads (this module's are strings, and ``schema`` differs per collection).
    replace_row.__annotations__ = {
        "session_id": PathSessionId,
        "row_id": RowId,
        "row": schema,
        "return": None,
    }
    delete_row.__annotations__ = {"session_id": PathSessionId, "row_id": RowId, "return": None}
    for method, endpoint, verb in ((api.put, replace_row, "replace"), (api.delete, delete_row, "delete")):
        method(
            path,
            name=f"{verb}_{kind}",
            summary=f"{verb.capitalize()} one {kind} of the session",
            status_code=NO_CONTENT,
            response_class=Response,
            responses=responses(404, 422, 507),
        )(endpoint)
