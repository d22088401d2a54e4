"""The HTTP API: FastAPI routers over the storage services (``pip install 'edi-storage[api]'``).

Mount the routers in an application of your own::

    from fastapi import FastAPI
    from edi_storage import Storage
    from edi_storage.api import router

    app = FastAPI()
    app.include_router(router(Storage("sqlite:///edi_sessions.db")))

or run the whole application: ``edi-storage serve`` (uvicorn on ``create_app()``).

Each route calls one service method; requests and responses are the models of ``edi_storage.schemas``,
so the OpenAPI document describes exactly what the services accept and return. Errors are mapped by
type in ``edi_storage.api.errors`` (docs/http-api.md has the table); what guards the application (token,
hosts, body limits) is in ``edi_storage.api.guards``. The core package never imports this one: ``import
edi_storage`` works without FastAPI installed.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from edi_storage.api import analytics, gallery, health, library, sessions
from edi_storage.api.errors import http_error_response
from edi_storage.api.guards import (
    DEFAULT_MAX_BODY_BYTES,
    LOOPBACK_NAMES,
    TOKEN_ENV,
    BearerToken,
    BodyLimit,
    ExactRouting,
    MiB,
    allowed_host_names,
    bearer_dependency,
)
from edi_storage.migrate.state import unusable
from edi_storage.storage import Storage

__all__ = ["create_app", "router"]

UPLOAD_PATHS = frozenset({"/api/prompts", "/api/prompts/"})  # POST takes a multipart image


def router(storage: Storage, *, token: str | None = None) -> APIRouter:
    """Every route (``/api/prompts``, ``/api/sessions``, ``/api/gallery``, ``/api/analytics``,
    ``/api/health``) over
    ``storage``, which the caller owns: the router never closes it. With a ``token``, every route but the
    health check requires ``Authorization: Bearer <token>`` (and the OpenAPI document says so)."""
    combined = APIRouter()
    dependencies = [Depends(bearer_dependency(token))] if token else []
    for area in (library, sessions, gallery, analytics):
        combined.include_router(area.router(storage), dependencies=dependencies)
    combined.include_router(health.router(storage))
    return combined


def ensure_servable(storage: Storage) -> None:
    """Raise the error that keeps the services from ``storage`` (unreachable, or its schema not the
    code's: the error names ``edi-storage upgrade``), rather than start and answer 503 to everything."""
    if (refused := unusable(storage.schema_status())) is not None:
        raise refused


def create_app(
    storage: Storage | None = None,
    *,
    url: str | None = None,
    token: str | None = None,
    allowed_hosts: Iterable[str] = (),
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """The API as an application. Given a ``storage``, it uses it and leaves it open; otherwise it opens
    ``Storage(url, create=False)`` (``url`` None: from the settings, ``EDI_STORAGE_URL``) and closes it
    at shutdown. The server never creates or migrates a database: one that is missing, empty, another
    application's or not at the code's schema revision raises its ``SchemaError`` (or
    ``DatabaseUnavailable``) here, naming ``edi-storage upgrade``.

    ``token`` (default ``$EDI_STORAGE_API_TOKEN``; empty: none): every request but ``/health`` must carry
    ``Authorization: Bearer <token>``. ``allowed_hosts``: ``Host`` names accepted besides localhost,
    127.0.0.1 and ::1. ``max_body_bytes``: the largest request body (an image upload to
    ``POST /api/prompts/`` may be as large as ``library.MAX_UPLOAD_BYTES`` plus 1 MiB of form)."""
    from edi_storage import __version__

    owned = storage is None
    store = Storage(url, create=False) if storage is None else storage
    try:
        ensure_servable(store)
    except BaseException:
        if owned:
            store.close()
        raise
    if token is None:
        token = os.environ.get(TOKEN_ENV)
    token = token or None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owned:
                store.close()

    app = FastAPI(
        title="edi-storage",
        version=__version__,
        description="Sessions, the prompt library and the gallery of an AI image-editing assistant.",
        lifespan=lifespan,
        redirect_slashes=False,  # collection paths answer with and without the slash; nothing redirects
    )
    app.add_exception_handler(StarletteHTTPException, http_error_response)
    app.include_router(router(store, token=token))
    app.include_router(health.router(store, "/health"))

    upload_limit = max(max_body_bytes, library.MAX_UPLOAD_BYTES + MiB)

    def limit_of(method: str, path: str) -> int:
        return upload_limit if method == "POST" and path in UPLOAD_PATHS else max_body_bytes

    # Added innermost first: the host check runs first, then the token, then the body limit.
    app.add_middleware(ExactRouting, routes=lambda: app.router.routes)
    app.add_middleware(BodyLimit, limit_of=limit_of)
    if token:
        app.add_middleware(BearerToken, token=token)
    hosts = allowed_host_names([*LOOPBACK_NAMES, *allowed_hosts])
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)
    return app
