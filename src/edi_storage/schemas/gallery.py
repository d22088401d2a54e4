"""Schemas of the gallery."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

from pydantic import ConfigDict, Field

from edi_storage.schemas.common import (
    InputModel,
    Int,
    JSONInput,
    JSONObject,
    LongText,
    NonNegativeInt,
    OutputModel,
    RequiredLongText,
    RequiredText,
    Score,
    StoredAmount,
    Text,
)
from edi_storage.vocabulary import CurationStatus, RunStatus

TenPoint = Annotated[float, Field(ge=0.0, le=10.0)]


class ImageCreate(InputModel):
    filename: Annotated[RequiredText, Field(max_length=1024)]
    prompt: RequiredLongText
    negative_prompt: LongText = ""
    source_url: Text | None = None
    source_query: Text | None = None
    model_id: RequiredText
    generation_params: JSONInput | None = None
    seed: Int | None = None
    aesthetic_score: TenPoint | None = None
    clip_score: Score | None = None
    technical_score: Score | None = None
    final_score: TenPoint | None = None
    status: CurationStatus = CurationStatus.PENDING
    is_featured: bool = False
    tags: list[Text] | None = None
    creation_session_id: Int | None = None
    training_session_id: Int | None = None


class ImageOut(OutputModel):
    id: int
    filename: str
    prompt: str
    negative_prompt: str
    source_url: str | None
    source_query: str | None
    model_id: str
    generation_params: JSONObject | None
    seed: int | None
    aesthetic_score: float | None
    clip_score: float | None
    technical_score: float | None
    final_score: float | None
    status: CurationStatus
    is_featured: bool
    tags: list[str] | None
    creation_session_id: int | None
    training_session_id: int | None
    created_at: datetime
    updated_at: datetime


class ScoreUpdate(InputModel):
    """Scores to set on an image (the ones not given are kept); at least one."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    aesthetic_score: TenPoint | None = None
    clip_score: Score | None = None
    technical_score: Score | None = None
    final_score: TenPoint | None = None


class DeletedImage(OutputModel):
    """The deleted image's row, and what became of its file: deleted (``file_deleted``, its path),
    asked for but already missing (``file_missing``), to go when the enclosing unit of work commits
    (``file_pending``), or not asked for (all three empty)."""

    image: ImageOut
    file_deleted: Path | None = None
    file_missing: bool = False
    file_pending: Path | None = None
    file_error: str | None = None  # the row is deleted, but its file could not be (permissions, ...)


class TrainingStart(InputModel):
    name: RequiredText
    model_path: RequiredText
    config: JSONInput | None = None
    dataset_size: NonNegativeInt | None = None


class TrainingResult(InputModel):
    final_loss: StoredAmount | None = None
    training_time_seconds: StoredAmount | None = None
    metrics: JSONInput | None = None


class TrainingRunOut(OutputModel):
    id: int
    name: str
    model_path: str
    config: JSONObject | None
    dataset_size: int | None
    final_loss: float | None
    training_time_seconds: float | None
    metrics: JSONObject | None
    started_at: datetime
    completed_at: datetime | None
    status: RunStatus


class CreationRunOut(OutputModel):
    id: int
    theme: str | None
    images_created: int
    images_kept: int
    avg_score: float | None
    started_at: datetime
    completed_at: datetime | None


class QualityTier(OutputModel):
    quality_tier: str
    count: int
    avg_score: float


class TrainingStatistic(OutputModel):
    name: str
    dataset_size: int | None
    final_loss: float | None
    training_hours: float | None
    status: RunStatus


class DailyCreation(OutputModel):
    date: date
    sessions: int
    total_created: int
    total_kept: int
    avg_quality: float | None
