"""Typed storage errors as HTTP responses, by type, in one place.

| error                                     | status | body                                                |
|-------------------------------------------|--------|-----------------------------------------------------|
| ``InvalidInput`` (and request validation) | 422    | ``{"detail": [{"field", "message", "value"}, ...]}`` |
| ``NotFound``                              | 404    | ``{"detail": message, "error": "NotFound"}``        |
| ``Conflict``                              | 409    | ``{"detail": message, "error": "Conflict"}``        |
| ``Busy``                                  | 503    | the same, with ``Retry-After``                      |
| ``SchemaError`` (out of date, too new...) | 503    | the same                                            |
| ``DatabaseUnavailable``                   | 503    | the same                                            |
| ``ReadOnly``, ``StorageFull``             | 507    | the same                                            |
| any other ``StorageError``                | 500    | the same                                            |

The routes of ``edi_storage.api`` use ``StorageRoute``, which applies this mapping itself: a router
mounted in someone else's application answers the same way without any exception handler installed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import date, datetime, time
from enum import Enum
from functools import cached_property
from http import HTTPStatus
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, APIRouter
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.exceptions import HTTPException

from edi_storage.api.guards import UNAUTHORIZED
from edi_storage.errors import (
    UNKNOWN,
    Busy,
    Conflict,
    DatabaseUnavailable,
    FieldError,
    InvalidInput,
    NotFound,
    ReadOnly,
    SchemaError,
    StorageError,
    StorageFull,
)
from edi_storage.schemas.common import MAX_JSON_DEPTH, field_errors

RETRY_AFTER_SECONDS = 5  # Busy: another writer held the lock past the busy timeout; it is usually brief
MAX_VALUE_CHARS = 1000  # a rejected value is echoed back, cut to this many characters
# A JSON body nested deeper than this is refused (422) before it is parsed: Python's JSON parser would
# overflow its recursion (a 500) at about 1,000 levels. JSON fields inside may nest MAX_JSON_DEPTH levels.
MAX_BODY_DEPTH = MAX_JSON_DEPTH + 10

# Most specific first: the first class an error is an instance of decides its status.
STATUS_OF: tuple[tuple[type[StorageError], int], ...] = (
    (InvalidInput, 422),
    (NotFound, 404),
    (Conflict, 409),
    (Busy, 503),
    (SchemaError, 503),
    (DatabaseUnavailable, 503),
    (ReadOnly, 507),
    (StorageFull, 507),
    (StorageError, 500),
)


class FieldProblem(BaseModel):
    """One rejected field: where (``entities.0.confidence``), why, and the value given (JSON-safe: a
    value JSON cannot carry comes as its ``repr``; ``"UNKNOWN"`` when the database did not say)."""

    field: str
    message: str
    value: Any = None


class InvalidInputBody(BaseModel):
    """422: every rejected field, whether FastAPI or the storage service rejected it."""

    detail: list[FieldProblem]


class ErrorBody(BaseModel):
    """Every other error: what went wrong, and the edi-storage error type (``NotFound``, ``Busy``...)."""

    detail: str
    error: str = Field(description="The edi_storage.errors class, e.g. NotFound, Conflict, Busy.")


def status_of(error: StorageError) -> int:
    return next(status for kind, status in STATUS_OF if isinstance(error, kind))


def json_safe(value: Any) -> Any:
    """``value`` as JSON can carry it: containers walked, dates as ISO 8601, anything else as its repr."""
    if value is UNKNOWN:
        return "UNKNOWN"
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return utf8(value if len(value) <= MAX_VALUE_CHARS else value[:MAX_VALUE_CHARS] + "…")
    if isinstance(value, Enum):
        return json_safe(value.value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        return {utf8(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return json_safe(repr(value))


def utf8(text: str) -> str:
    """``text`` as UTF-8 can carry it: a lone surrogate (JSON allows ``"\\ud800"``) as its escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def problems(errors: Sequence[FieldError]) -> list[dict[str, Any]]:
    return [{"field": utf8(e.field), "message": utf8(e.message), "value": json_safe(e.value)} for e in errors]


def invalid_input_response(errors: Sequence[FieldError]) -> JSONResponse:
    return JSONResponse({"detail": problems(errors)}, status_code=422)


def storage_error_response(error: StorageError) -> JSONResponse:
    if isinstance(error, InvalidInput):
        return invalid_input_response(error.errors)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if isinstance(error, Busy) else None
    body = {"detail": utf8(str(error)), "error": type(error).__name__}
    return JSONResponse(body, status_code=status_of(error), headers=headers)


async def http_error_response(_request: Request, error: Exception) -> Response:
    """Starlette's own errors (404 for a path no route has, 405, 401) in the shape of every other error:
    ``{"detail": "Not Found", "error": "NotFound"}``, the error's headers (``Allow``) kept."""
    assert isinstance(error, HTTPException)
    name = "".join(HTTPStatus(error.status_code).phrase.title().split())
    body = {"detail": utf8(str(error.detail)), "error": name}
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)


_LOCATIONS = {"body", "query", "path", "header", "cookie"}


def request_field_errors(error: RequestValidationError) -> list[FieldError]:
    """FastAPI's validation errors named as the services name fields: ``entities.0.confidence``,
    ``limit`` (the location, body or query, is left out when there is more to say)."""
    found = []
    for e in error.errors():
        loc = [str(part) for part in e.get("loc", ())]
        if e.get("type") == "json_invalid":
            loc = loc[:1]  # ("body", 17): the position is in the message, not a field
        elif len(loc) > 1 and loc[0] in _LOCATIONS:
            loc = loc[1:]
        found.append(FieldError(".".join(loc) or "request", str(e.get("msg", "invalid")), e.get("input")))
    return found


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_OPENING = frozenset(b"[{")


def nested_deeper_than(raw: bytes, most: int) -> bool:
    """Whether the JSON text ``raw`` nests arrays and objects more than ``most`` levels deep (brackets
    inside strings do not count). Read without parsing, so that no depth can overflow anything."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if len(brackets) <= most:
        return False
    depth = 0
    for byte in brackets:
        depth = depth + 1 if byte in _OPENING else depth - 1
        if depth > most:
            return True
    return False


def _integral(error: Any) -> bool:
    """``181039.0`` where an integer is wanted: JSON Schema counts it an integer, so strict mode must not
    refuse it (the handler's validation takes it as 181039)."""
    value = error.get("input")
    return error["type"] == "int_type" and isinstance(value, float) and value.is_integer()


def is_json(request: Request) -> bool:
    """A body FastAPI reads as JSON: no content type, ``application/json`` or ``application/*+json``."""
    content_type = request.headers.get("content-type")
    if content_type is None:
        return True
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class StorageRoute(APIRoute):
    """An APIRoute that answers storage errors and invalid requests in the shared error format.

    A JSON body is also checked before FastAPI parses it: nested no deeper than ``MAX_BODY_DEPTH``, and
    valid in pydantic's strict mode over the JSON text, so that a value of another JSON type is refused
    rather than converted (``false`` or ``0`` as a number or a flag, a number as a date): the OpenAPI
    document's types are the rule. The services, called from Python, keep pydantic's lax conversions.
    """

    @cached_property
    def strict_body(self) -> TypeAdapter[Any] | None:
        annotation = None if self.body_field is None else self.body_field.field_info.annotation
        return None if annotation is None else TypeAdapter(annotation)

    async def check_json_body(self, request: Request) -> Response | None:
        """The 422 for a JSON body too deep or not strictly valid (None: the handler takes it)."""
        if request.method not in {"POST", "PUT", "PATCH"} or not is_json(request):
            return None
        raw = await request.body()  # kept by the request: the handler reads the same bytes
        if nested_deeper_than(raw, MAX_BODY_DEPTH):
            message = f"nests arrays and objects deeper than {MAX_BODY_DEPTH} levels"
            return invalid_input_response([FieldError("body", message, None)])
        if self.strict_body is None or not raw.strip():
            return None
        try:
            self.strict_body.validate_json(raw, strict=True)
        except ValidationError as error:
            details = error.errors(include_url=False)
            if any(e["type"] == "json_invalid" for e in details):
                return None  # FastAPI says where the JSON breaks
            refused = [f for f, e in zip(field_errors(error), details, strict=True) if not _integral(e)]
            return invalid_input_response(refused) if refused else None
        return None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                if (refused := await self.check_json_body(request)) is not None:
                    return refused
                return await handler(request)
            except RequestValidationError as error:
                return invalid_input_response(request_field_errors(error))
            except HTTPException as error:
                if error.status_code == 401:  # the bearer dependency of a mounted router
                    return JSONResponse(UNAUTHORIZED, status_code=401, headers=error.headers)
                if error.status_code != 400:
                    raise
                # FastAPI's "error parsing the body" (not UTF-8, say): answered as invalid JSON is,
                # so that every unreadable body gets the same 422.
                return invalid_input_response([FieldError("body", f"cannot be read: {error.detail}", None)])
            except StorageError as error:
                return storage_error_response(error)

        return handle


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of the error statuses a route can answer with (plus 404, 500 and 503,
    which any route can: a path that only looks like the route's, ending in a newline, is a 404)."""
    descriptions = {
        404: "Not found (no such row, or no such path)",
        409: "Conflicts with stored data",
        422: "Invalid input: every rejected field",
        500: "Storage error",
        503: "Database busy (with Retry-After), unavailable, or its schema out of date",
        507: "Database read-only or full",
    }
    wanted = sorted({*statuses, 404, 500, 503})
    return {
        status: {
            "model": InvalidInputBody if status == 422 else ErrorBody,
            "description": descriptions[status],
        }
        for status in wanted
    }


def links(status: int, source: str, **targets: tuple[str, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI links of a response: where the id it returns (at the JSON pointer ``source``, as
    ``$response.body#/id``) is the path parameter of another operation. Clients and Schemathesis's
    stateful tests follow them. ``targets``: name=(method, path); the path's one parameter is filled."""
    return {
        status: {
            "links": {
                name: {
                    "operationRef": "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method,
                    "parameters": {path[path.index("{") + 1 : path.index("}")]: f"$response.body#{source}"},
                }
                for name, (method, path) in targets.items()
            }
        }
    }


def collection_route(
    api: APIRouter, method: str, path: str = "/", **options: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a route of a collection at ``path`` (the form the OpenAPI document lists) and at the
    other slash form (``/api/sessions/`` and ``/api/sessions``; ``/images`` and ``/images/``), the same
    route left out of the document: both answer, and neither redirects."""
    other = path.removesuffix("/") if path.endswith("/") else path + "/"

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        api.add_api_route(path, endpoint, methods=[method], **options)
        api.add_api_route(other, endpoint, methods=[method], include_in_schema=False, **options)
        return endpoint

    return register
