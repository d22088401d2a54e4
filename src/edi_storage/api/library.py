"""``/api/prompts``: the prompt library (prompt-library.md "API Endpoints"), one service call each."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from edi_storage.api.errors import ErrorBody, StorageRoute, collection_route, links, responses
from edi_storage.api.models import Cleanup, Deleted, PromptUse, RowId
from edi_storage.errors import FieldError, InvalidInput
from edi_storage.schemas.common import Text, parse
from edi_storage.schemas.library import (
    CURSOR_PATTERN,
    LibraryPage,
    LibraryPromptOut,
    LibrarySearch,
    LibraryStats,
    Limit,
    RecordedPrompt,
)
from edi_storage.storage import Storage

MAX_UPLOAD_BYTES = 32 * 1024 * 1024  # an uploaded image larger than this is refused with 413
THUMBNAIL_CACHE_CONTROL = "public, no-cache"  # keep it, but ask again (a later use may replace it)

FORMS = {"multipart/form-data", "application/x-www-form-urlencoded"}
ModelFilter = Annotated[Text | None, Query(description="Only prompts last used with this model.")]


def _record_body_schema() -> dict[str, Any]:
    """The bodies ``POST /api/prompts/`` accepts: JSON, or a form (multipart with an image)."""
    as_json = PromptUse.model_json_schema()
    form: dict[str, Any] = {
        "type": "object",
        "properties": {
            "prompt_text": as_json["properties"]["prompt_text"],
            # A form has no null: the model's text form, with its limits.
            "model": next(v for v in as_json["properties"]["model"]["anyOf"] if v.get("type") == "string"),
            "image": {"type": "string", "format": "binary", "description": "An image the prompt made."},
        },
        "required": ["prompt_text"],
        "additionalProperties": False,
    }
    urlencoded = {**form, "properties": {k: v for k, v in form["properties"].items() if k != "image"}}
    return {
        "required": True,
        "content": {
            "application/json": {"schema": as_json},
            "multipart/form-data": {"schema": form},
            "application/x-www-form-urlencoded": {"schema": urlencoded},
        },
    }


def _bad_request(message: str, status_code: int, error: str) -> JSONResponse:
    return JSONResponse({"detail": message, "error": error}, status_code=status_code)


async def _read_use(request: Request) -> tuple[PromptUse, bytes | None] | JSONResponse:
    """The prompt use a request carries, as JSON or as a multipart form (``image`` being a file)."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type in FORMS:
        try:
            form = await request.form(max_files=1, max_fields=10)
        except HTTPException as error:  # a malformed multipart body
            return _bad_request(str(error.detail), error.status_code, "BadRequest")
        try:
            fields: dict[str, Any] = {}
            image: bytes | None = None
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    if name != "image":
                        raise InvalidInput.single(
                            name, "is not a file field; send the image as 'image'", name
                        )
                    data = await value.read(MAX_UPLOAD_BYTES + 1)
                    if len(data) > MAX_UPLOAD_BYTES:
                        message = f"the image is larger than {MAX_UPLOAD_BYTES} bytes"
                        return _bad_request(message, 413, "PayloadTooLarge")
                    image = data
                elif name == "image":
                    raise InvalidInput.single("image", "must be an uploaded file", value)
                else:
                    fields[name] = value
        finally:
            await form.close()  # the uploaded file's spool
        return parse(PromptUse, fields), image
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            body = json.loads(await request.body())
        except ValueError as error:
            raise InvalidInput([FieldError("body", f"is not valid JSON: {error}", None)]) from None
        return parse(PromptUse, body), None
    return _bad_request(
        "send application/json, multipart/form-data or application/x-www-form-urlencoded",
        415,
        "Unsupported",
    )


def router(storage: Storage) -> APIRouter:
    api = APIRouter(prefix="/api/prompts", tags=["prompt library"], route_class=StorageRoute)

    @collection_route(
        api,
        "GET",
        response_model=LibraryPage,
        responses=responses(422),
    )
    def browse(
        limit: Limit = 50,
        cursor: Annotated[
            str | None, Query(description="next_cursor of the previous page.", pattern=CURSOR_PATTERN)
        ] = None,
    ) -> LibraryPage:
        """The library, most recently used first, a page at a time (keyset pagination)."""
        return storage.library.browse(limit=limit, cursor=cursor)

    @collection_route(
        api,
        "POST",
        response_model=RecordedPrompt,
        responses={
            **responses(422, 507),
            **links(
                200,
                "/id",
                GetPrompt=("get", "/api/prompts/{prompt_id}"),
                DeletePrompt=("delete", "/api/prompts/{prompt_id}"),
            ),
            400: {"model": ErrorBody, "description": "Malformed multipart body"},
            413: {"model": ErrorBody, "description": f"Image larger than {MAX_UPLOAD_BYTES} bytes"},
            415: {"model": ErrorBody, "description": "Neither JSON nor a form"},
        },
        openapi_extra={"requestBody": _record_body_schema()},
    )
    async def record(request: Request) -> Any:
        """Record one use of a prompt (created, or one more use), with a thumbnail of an uploaded image.

        JSON: ``{"prompt_text": ..., "model": ...}``. Multipart: the same fields and the file ``image``.
        An image that cannot be read does not cost the use: ``thumbnail_error`` says why."""
        read = await _read_use(request)
        if isinstance(read, JSONResponse):
            return read
        use, image = read
        return await run_in_threadpool(
            storage.library.record_prompt, use.prompt_text, model=use.model, image_data=image
        )

    @api.get("/search", response_model=list[LibraryPromptOut], responses=responses(422))
    def search(query: Annotated[LibrarySearch, Query()]) -> list[LibraryPromptOut]:
        """Prompts containing every word of ``query``, best match first."""
        return storage.library.search(
            query.query, model=query.model, limit=query.limit, offset=query.offset, prefix=query.prefix
        )

    @api.get("/popular", response_model=list[LibraryPromptOut], responses=responses(422))
    def popular(limit: Limit = 10, model: ModelFilter = None) -> list[LibraryPromptOut]:
        """The most used prompts."""
        return storage.library.popular(limit, model=model)

    @api.get("/recent", response_model=list[LibraryPromptOut], responses=responses(422))
    def recent(limit: Limit = 10, model: ModelFilter = None) -> list[LibraryPromptOut]:
        """The most recently used prompts."""
        return storage.library.recent(limit, model=model)

    @api.get("/stats/overview", response_model=LibraryStats, responses=responses())
    def stats() -> LibraryStats:
        """Prompts, uses, thumbnails and their bytes, per model."""
        return storage.library.stats()

    @api.post("/cleanup", response_model=Deleted, responses=responses(422, 507))
    def cleanup(criteria: Cleanup) -> Deleted:
        """Delete prompts last used long ago and/or without a thumbnail; says how many."""
        count = storage.library.cleanup(
            criteria.older_than_days, without_thumbnail=criteria.without_thumbnail
        )
        return Deleted(deleted=count)

    @api.get("/{prompt_id:int}", response_model=LibraryPromptOut, responses=responses(404, 422))
    def get(prompt_id: RowId) -> LibraryPromptOut:
        """One prompt."""
        return storage.library.get(prompt_id)

    @api.get(
        "/{prompt_id:int}/thumbnail",
        response_class=Response,
        responses={
            200: {
                "content": {"image/webp": {"schema": {"type": "string", "format": "binary"}}},
                "description": "The WebP thumbnail",
            },
            304: {"description": "Not modified (If-None-Match matched the ETag)"},
            **responses(404, 422),
        },
    )
    def thumbnail(
        prompt_id: RowId, if_none_match: Annotated[str | None, Header(include_in_schema=False)] = None
    ) -> Response:
        """The prompt's WebP thumbnail, with an ETag; 404 when the prompt has none."""
        data, mime = storage.library.get_thumbnail(prompt_id)
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        headers = {"ETag": etag, "Cache-Control": THUMBNAIL_CACHE_CONTROL}
        if if_none_match is not None and {etag, "*"} & {tag.strip() for tag in if_none_match.split(",")}:
            return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(content=data, media_type=mime, headers=headers)

    @api.delete(
        "/{prompt_id:int}",
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        responses=responses(404, 422, 507),
    )
    def delete(prompt_id: RowId) -> None:
        """Delete one prompt."""
        storage.library.delete(prompt_id)

    return api
