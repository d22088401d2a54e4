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
type in ``edi_storage.api.errors`` (docs/http-api.md has the table). The core package never imports
this one: ``import edi_storage`` works without FastAPI installed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from edi_storage.api import gallery, library, sessions
from edi_storage.storage import Storage

__all__ = ["create_app", "router"]


def router(storage: Storage) -> APIRouter:
    """Every route (``/api/prompts``, ``/api/sessions``, ``/api/gallery``) over ``storage``, which the
    caller owns: the router never closes it."""
    combined = APIRouter()
    for area in (library, sessions, gallery):
        combined.include_router(area.router(storage))
    return combined


def create_app(storage: Storage | None = None, *, url: str | None = None) -> FastAPI:
    """The API as an application. Given a ``storage``, it uses it and leaves it open; otherwise it opens
    ``Storage(url)`` (``url`` None: from the settings, ``EDI_STORAGE_URL``) and closes it at shutdown."""
    from edi_storage import __version__

    owned = storage is None
    store = Storage(url) if storage is None else storage

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
    )
    app.include_router(router(store))
    return app
