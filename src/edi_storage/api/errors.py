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
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import date, datetime, time
from enum import Enum
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

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

RETRY_AFTER_SECONDS = 5  # Busy: another writer held the lock past the busy timeout; it is usually brief
MAX_VALUE_CHARS = 1000  # a rejected value is echoed back, cut to this many characters

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


class StorageRoute(APIRoute):
    """An APIRoute that answers storage errors and invalid requests in the shared error format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                return invalid_input_response(request_field_errors(error))
            except HTTPException as error:
                if error.status_code != 400:
                    raise
                # FastAPI's "error parsing the body" (not UTF-8, say): answered as invalid JSON is,
                # so that every unreadable body gets the same 422.
                return invalid_input_response([FieldError("body", f"cannot be read: {error.detail}", None)])
            except StorageError as error:
                return storage_error_response(error)

        return handle


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of the error statuses a route can answer with (plus 500 and 503,
    which any route can)."""
    descriptions = {
        404: "Not found",
        409: "Conflicts with stored data",
        422: "Invalid input: every rejected field",
        500: "Storage error",
        503: "Database busy (with Retry-After), unavailable, or its schema out of date",
        507: "Database read-only or full",
    }
    wanted = sorted({*statuses, 500, 503})
    return {
        status: {
            "model": InvalidInputBody if status == 422 else ErrorBody,
            "description": descriptions[status],
        }
        for status in wanted
    }
