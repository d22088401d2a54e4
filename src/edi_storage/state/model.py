"""The session-state file's shape (storage-layer.md 5.2), versioned so that old files stay readable.

A file without ``state_version`` was written by the reference ``SessionStateManager`` (version 0: the
same fields, plus its ``last_updated``). Each upgrade step turns version n into n+1; a file from a newer
edi-storage is refused rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from edi_storage.errors import InvalidInput
from edi_storage.schemas.common import InputModel, JSONInput, RequiredText, Text, UTCDatetime, parse
from edi_storage.schemas.sessions import SessionId

STATE_VERSION = 1


class Stage(StrEnum):
    UPLOAD = "upload"
    REFINEMENT = "refinement"
    VALIDATION = "validation"
    COMPLETED = "completed"


class SessionState(InputModel):
    """Where an editing session is, as the assistant resumes it.

    ``prompts`` maps ``iteration_0``, ``iteration_1``, ... and ``final`` to ``{"positive", "negative"}``;
    ``scene_analysis`` holds ``entities`` (dicts with ``id``, ``label``, ``confidence``, ...) and
    ``spatial_layout``; ``validation`` holds ``score`` and ``delta``.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    # Only this release's version: older files are upgraded by read_state before they get here, and a
    # state saved with any other number would be a file load() refuses.
    state_version: Annotated[int, Field(ge=STATE_VERSION, le=STATE_VERSION)] = STATE_VERSION
    session_id: SessionId
    current_stage: Stage
    image_path: RequiredText
    naive_prompt: RequiredText
    scene_analysis: JSONInput = {}
    intent: JSONInput = {}
    prompts: dict[str, JSONInput] = {}
    edited_image_path: Text | None = None
    validation: JSONInput = {}
    last_updated: UTCDatetime | None = None


def _from_reference(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "state_version": 1}


# version n -> function returning the same state as version n + 1
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _from_reference}


def read_state(data: Mapping[str, Any]) -> SessionState:
    """A state from any version this release knows; InvalidInput names the field that is wrong."""
    if not isinstance(data, Mapping):
        raise InvalidInput.single("input", "must be a JSON object (a session state)", data)
    current = dict(data)
    version = current.get("state_version", 0)
    if not isinstance(version, int) or version < 0:
        raise InvalidInput.single("state_version", "must be a non-negative whole number", version)
    if version > STATE_VERSION:
        raise InvalidInput.single(
            "state_version",
            f"was written by a newer edi-storage (this one reads up to {STATE_VERSION}); upgrade edi-storage",
            version,
        )
    while version < STATE_VERSION:
        current = UPGRADES[version](current)
        version += 1
    return parse(SessionState, current)
