"""``GET /health`` (and ``/api/health``): is the database reachable, and is its schema the code's?

No token is needed (``create_app`` exempts these paths), so that a load balancer or a container probe can
ask; the answer says no more than the schema state and revision.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field

from edi_storage.api.errors import ErrorBody, StorageRoute
from edi_storage.errors import StorageError
from edi_storage.migrate.state import unusable
from edi_storage.schemas.common import OutputModel
from edi_storage.storage import Storage

HEALTH_PATH = "/api/health"


class Health(OutputModel):
    """200 when the database answers and its schema is the code's; 503 otherwise, with ``detail``."""

    status: Literal["ok", "unavailable"]
    schema_state: str | None = Field(
        serialization_alias="schema",
        description="current, behind, ahead, empty, foreign, reference or unrecognised; null when the "
        "database could not be reached",
    )
    revision: str | None
    database: Literal["reachable", "unreachable"]
    detail: str | None = Field(default=None, description="Why the server cannot serve (503 only).")


def check(storage: Storage) -> tuple[int, Health]:
    try:
        status = storage.schema_status()
    except StorageError as error:
        return 503, Health(
            status="unavailable", schema_state=None, revision=None, database="unreachable", detail=str(error)
        )
    refused = unusable(status)
    return (503 if refused else 200), Health(
        status="unavailable" if refused else "ok",
        schema_state=status.state.value,
        revision=status.revision,
        database="reachable",
        detail=None if refused is None else str(refused),
    )


def router(storage: Storage, *paths: str) -> APIRouter:
    """The health check at each of ``paths`` (default ``/api/health``)."""
    api = APIRouter(tags=["health"], route_class=StorageRoute)

    def health() -> JSONResponse:
        """The database's reachability and schema state; 503 when the API cannot serve."""
        code, body = check(storage)
        return JSONResponse(body.model_dump(mode="json", by_alias=True, exclude_none=code == 200), code)

    for path in paths or (HEALTH_PATH,):
        api.add_api_route(
            path,
            health,
            methods=["GET"],
            response_model=Health,
            responses={
                500: {"model": ErrorBody, "description": "Server error"},
                503: {"model": Health, "description": "Database unreachable or not current"},
            },
        )
    return api
