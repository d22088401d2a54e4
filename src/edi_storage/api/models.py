"""The few HTTP bodies that edi_storage.schemas has no model for: the keyword arguments of a service
method as one JSON object, and ids or counts wrapped in an object. Their fields reuse the schemas'
types, so they accept exactly what the services accept."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from edi_storage.schemas.common import (
    INT_MAX,
    InputModel,
    JSONInput,
    JSONObject,
    NonNegativeFloat,
    OutputModel,
    Score,
    Text,
)
from edi_storage.schemas.library import PromptText
from edi_storage.schemas.sessions import SessionCreate, SessionId
from edi_storage.vocabulary import CurationStatus, SessionStatus

# Row ids are INTEGER (32 bits on PostgreSQL), counted from 1.
RowId = Annotated[int, Field(ge=1, le=INT_MAX, description="A row id.")]


class PromptUse(InputModel):
    """``POST /api/prompts/`` as JSON: one use of a prompt, without an image. An image comes as a
    multipart upload; a server-side ``image_path`` is deliberately not offered over HTTP."""

    prompt_text: PromptText
    model: Text | None = None


class Cleanup(InputModel):
    """``library.cleanup``: prompts last used more than ``older_than_days`` ago and/or without a
    thumbnail (both given: both must hold). At least one is required."""

    # The document states "at least one"; library.cleanup enforces it.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["older_than_days"], "properties": {"older_than_days": {"type": "number"}}},
                {"required": ["without_thumbnail"], "properties": {"without_thumbnail": {"const": True}}},
            ]
        }
    )

    older_than_days: NonNegativeFloat | None = None
    without_thumbnail: bool = False


class SessionReplacement(SessionCreate):
    """``PUT /api/sessions/{id}``: a session graph whose id is the path's. The document leaves ``id`` out
    (no schema can say "equal to the path"); a body that carries one anyway, as a graph read with GET
    does, must carry the path's."""

    id: SkipJsonSchema[SessionId | None] = None


class Deleted(OutputModel):
    deleted: int


class CreatedSession(OutputModel):
    id: SessionId


class CreatedRow(OutputModel):
    id: int


class CreatedRows(OutputModel):
    ids: list[int]


class StatusChange(InputModel):
    """``sessions.update_session_status``: the new status, and the final score if there is one."""

    status: SessionStatus
    final_alignment_score: Score | None = None


class TagChange(InputModel):
    """Tags to add (after the existing ones, once each) and to remove; one transaction."""

    add: list[Text] = []
    remove: list[Text] = []


class SessionTags(OutputModel):
    tags: list[str]


class MetadataChange(InputModel):
    """Metadata keys to set (others are kept) and to remove; one transaction."""

    set: JSONInput = {}
    remove: list[Text] = []


class SessionMetadata(OutputModel):
    metadata: JSONObject


class Curation(InputModel):
    status: CurationStatus


class Featured(InputModel):
    featured: bool = True


class Tags(InputModel):
    tags: list[Text]
    replace: bool = False


class TrainingFailure(InputModel):
    reason: Annotated[Text, Field(min_length=1)]
    metrics: JSONInput | None = None


class CreationStart(InputModel):
    theme: Text | None = None
