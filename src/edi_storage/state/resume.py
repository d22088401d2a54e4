"""A session-state file and a stored session graph, each rebuilt from the other.

So an interrupted session can be written to the database (``save_from_state``) and continued from the
database on another machine (``state_from_session``). What has a table goes to its table (prompts,
entities, the validation); what has none (the stage, intent, the rest of the scene analysis, the edited
image, the validation's delta) goes to ``session_metadata["edi_state"]``, so the round trip is exact.
"""

from __future__ import annotations

import re
from typing import Any

from edi_storage.errors import InvalidInput
from edi_storage.schemas.common import parse
from edi_storage.schemas.sessions import SessionCreate, SessionDetail
from edi_storage.state.model import STATE_VERSION, SessionState, Stage
from edi_storage.vocabulary import SessionStatus

STATE_KEY = "edi_state"
ITERATION = re.compile(r"iteration_(\d+)")
ENTITY_FIELDS = ("label", "confidence", "bbox", "mask_path", "color_hex", "area_percent")


def state_to_session(state: SessionState) -> SessionCreate:
    """The session graph of a state (validated as any input is: InvalidInput names the field)."""
    numbered = {key: int(m.group(1)) for key in state.prompts if (m := ITERATION.fullmatch(key))}
    next_free = max(numbered.values(), default=-1) + 1
    prompts = []
    for key, value in state.prompts.items():
        if key not in numbered:
            numbered[key], next_free = next_free, next_free + 1
        extra = {k: v for k, v in value.items() if k not in ("positive", "negative")}
        prompts.append(
            {
                "iteration": numbered[key],
                "positive_prompt": value.get("positive"),
                "negative_prompt": value.get("negative") or "",
                "prompt_metadata": {"state_key": key, **extra},
            }
        )
    scene = dict(state.scene_analysis)
    given = scene.pop("entities", [])
    if not isinstance(given, list) or not all(isinstance(e, dict) for e in given):
        raise InvalidInput.single("scene_analysis.entities", "must be a list of objects", given)
    entities = [
        {
            "entity_id": e.get("id", e.get("entity_id")),
            **{k: e[k] for k in ENTITY_FIELDS if k in e},
            "entity_metadata": {k: v for k, v in e.items() if k not in {"id", "entity_id", *ENTITY_FIELDS}}
            or None,
        }
        for e in given
    ]
    validation = dict(state.validation)
    score = validation.pop("score", None)
    validations = (
        [{"attempt_number": 1, "alignment_score": score, "validation_metadata": validation}]
        if (state.validation)
        else []
    )
    completed = state.current_stage is Stage.COMPLETED
    metadata = {
        STATE_KEY: {
            "state_version": STATE_VERSION,
            "current_stage": state.current_stage.value,
            "scene_analysis": scene,
            "intent": state.intent,
            "edited_image_path": state.edited_image_path,
        }
    }
    return parse(
        SessionCreate,
        {
            "id": state.session_id,
            "image_path": state.image_path,
            "naive_prompt": state.naive_prompt,
            "status": SessionStatus.COMPLETED if completed else SessionStatus.IN_PROGRESS,
            "final_alignment_score": score if completed else None,
            "session_metadata": metadata,
            "prompts": prompts,
            "entities": entities,
            "validations": validations,
        },
    )


def session_to_state(detail: SessionDetail) -> SessionState:
    """The state a stored session resumes from; a session never saved from a state gets a sensible one."""
    saved: dict[str, Any] = (detail.session_metadata or {}).get(STATE_KEY, {})
    default_stage = Stage.COMPLETED if detail.status is SessionStatus.COMPLETED else Stage.REFINEMENT
    scene = dict(saved.get("scene_analysis", {}))
    if detail.entities:
        scene["entities"] = [
            {
                "id": e.entity_id,
                **{k: getattr(e, k) for k in ENTITY_FIELDS if getattr(e, k) is not None},
                **(e.entity_metadata or {}),
            }
            for e in detail.entities
        ]
    prompts: dict[str, dict[str, Any]] = {}
    for p in detail.prompts:
        extra = dict(p.prompt_metadata or {})
        key = extra.pop("state_key", f"iteration_{p.iteration}")
        prompts[key] = {"positive": p.positive_prompt, "negative": p.negative_prompt, **extra}
    validation: dict[str, Any] = {}
    if detail.validations:
        latest = detail.validations[-1]
        validation = {
            **({"score": latest.alignment_score} if latest.alignment_score is not None else {}),
            **(latest.validation_metadata or {}),
        }
    return SessionState(
        session_id=detail.id,
        current_stage=Stage(saved.get("current_stage", default_stage)),
        image_path=detail.image_path,
        naive_prompt=detail.naive_prompt,
        scene_analysis=scene,
        intent=saved.get("intent", {}),
        prompts=prompts,
        edited_image_path=saved.get("edited_image_path"),
        validation=validation,
    )
