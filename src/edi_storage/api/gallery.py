"""``/api/gallery``: generated images and their curation, training runs and creation runs, one service
call each (the reference's common queries each have their route)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import Field

from edi_storage.api.errors import StorageRoute, collection_route, responses
from edi_storage.api.models import CreationStart, Curation, Featured, RowId, Tags, TrainingFailure
from edi_storage.schemas.gallery import (
    CreationRunOut,
    DailyCreation,
    ImageCreate,
    ImageOut,
    QualityTier,
    ScoreUpdate,
    TenPoint,
    TrainingResult,
    TrainingRunOut,
    TrainingStart,
    TrainingStatistic,
)
from edi_storage.services.gallery import MOST
from edi_storage.storage import Storage
from edi_storage.vocabulary import CurationStatus

PageSize = Annotated[int, Field(ge=1, le=MOST)]
CREATED = status.HTTP_201_CREATED
NO_CONTENT = status.HTTP_204_NO_CONTENT


def router(storage: Storage) -> APIRouter:
    api = APIRouter(prefix="/api/gallery", tags=["gallery"], route_class=StorageRoute)

    # -- images ----------------------------------------------------------------------------------
    @collection_route(
        api,
        "POST",
        "/images",
        response_model=ImageOut,
        status_code=CREATED,
        responses=responses(404, 409, 422, 507),
    )
    def add_image(image: ImageCreate) -> ImageOut:
        """Store a generated image; 409 when its filename is taken, 404 for an unknown run."""
        return storage.gallery.add_image(image)

    @api.get("/images/top", response_model=list[ImageOut], responses=responses(422))
    def top(
        limit: PageSize = 10,
        status: Annotated[
            CurationStatus, Query(description="Images of this status.")
        ] = CurationStatus.CURATED,
    ) -> list[ImageOut]:
        """The best-scoring images of a status (curated by default)."""
        return storage.gallery.top(limit, status=status)

    @api.get("/images/uncurated", response_model=list[ImageOut], responses=responses(422))
    def uncurated(limit: PageSize = 100) -> list[ImageOut]:
        """Pending images, oldest first: the curation queue."""
        return storage.gallery.uncurated(limit)

    @api.get("/images/recent", response_model=list[ImageOut], responses=responses(422))
    def recent_high_quality(min_score: TenPoint = 7.0, limit: PageSize = 10) -> list[ImageOut]:
        """Curated images scoring at least ``min_score``, newest first."""
        return storage.gallery.recent_high_quality(min_score=min_score, limit=limit)

    @api.get("/images/{image_id:int}", response_model=ImageOut, responses=responses(404, 422))
    def get_image(image_id: RowId) -> ImageOut:
        """One image."""
        return storage.gallery.get_image(image_id)

    @api.put("/images/{image_id:int}/status", response_model=ImageOut, responses=responses(404, 422, 507))
    def curate(image_id: RowId, curation: Curation) -> ImageOut:
        """Set the curation status: pending, curated or rejected."""
        return storage.gallery.curate(image_id, curation.status)

    @api.put("/images/{image_id:int}/featured", response_model=ImageOut, responses=responses(404, 422, 507))
    def feature(image_id: RowId, featured: Featured) -> ImageOut:
        """Feature the image, or stop featuring it."""
        return storage.gallery.feature(image_id, featured.featured)

    @api.post("/images/{image_id:int}/tags", response_model=ImageOut, responses=responses(404, 422, 507))
    def tag(image_id: RowId, tags: Tags) -> ImageOut:
        """Add tags (kept in order, no duplicates), or with ``replace`` set them."""
        return storage.gallery.tag(image_id, tags.tags, replace=tags.replace)

    @api.patch("/images/{image_id:int}/scores", response_model=ImageOut, responses=responses(404, 422, 507))
    def update_scores(image_id: RowId, scores: ScoreUpdate) -> ImageOut:
        """Set the scores given (the others are kept); the image's creation run's average follows."""
        return storage.gallery.update_scores(image_id, scores)

    @api.delete(
        "/images/{image_id:int}",
        status_code=NO_CONTENT,
        response_class=Response,
        responses=responses(404, 422, 507),
    )
    def delete_image(image_id: RowId) -> None:
        """Delete the image's row. Its file stays: the server is not told where the gallery's files are,
        and deleting them is for the command line or Python, which name the folder."""
        storage.gallery.delete_image(image_id)

    @api.get("/quality", response_model=list[QualityTier], responses=responses())
    def quality_distribution() -> list[QualityTier]:
        """Curated images per quality tier: Excellent >= 8, Good >= 6, Fair >= 4, Poor."""
        return storage.gallery.quality_distribution()

    # -- training runs ---------------------------------------------------------------------------
    @collection_route(
        api, "GET", "/training-runs", response_model=list[TrainingStatistic], responses=responses()
    )
    def training_statistics() -> list[TrainingStatistic]:
        """Every training run, newest first, with its time in hours."""
        return storage.gallery.training_statistics()

    @collection_route(
        api,
        "POST",
        "/training-runs",
        response_model=TrainingRunOut,
        status_code=CREATED,
        responses=responses(422, 507),
    )
    def start_training(run: TrainingStart) -> TrainingRunOut:
        """Start a training run (status running)."""
        return storage.gallery.start_training(run.name, run.model_path, run.config, run.dataset_size)

    @api.post(
        "/training-runs/{run_id:int}/complete",
        response_model=TrainingRunOut,
        responses=responses(404, 409, 422, 507),
    )
    def complete_training(run_id: RowId, result: TrainingResult) -> TrainingRunOut:
        """Complete a running training run with its results; 409 if it is not running."""
        return storage.gallery.complete_training(
            run_id, result.final_loss, result.training_time_seconds, result.metrics
        )

    @api.post(
        "/training-runs/{run_id:int}/fail",
        response_model=TrainingRunOut,
        responses=responses(404, 409, 422, 507),
    )
    def fail_training(run_id: RowId, failure: TrainingFailure) -> TrainingRunOut:
        """Mark a running training run failed, with the reason; 409 if it is not running."""
        return storage.gallery.fail_training(run_id, failure.reason, failure.metrics)

    # -- creation runs ---------------------------------------------------------------------------
    @collection_route(
        api,
        "POST",
        "/creation-runs",
        response_model=CreationRunOut,
        status_code=CREATED,
        responses=responses(422, 507),
    )
    def start_creation(run: CreationStart) -> CreationRunOut:
        """Start a batch creation run; add its images with ``creation_session_id``."""
        return storage.gallery.start_creation(run.theme)

    @api.get("/creation-runs/daily", response_model=list[DailyCreation], responses=responses())
    def daily_creation_statistics() -> list[DailyCreation]:
        """Per UTC day: runs started, images created and kept, average quality; newest day first."""
        return storage.gallery.daily_creation_statistics()

    @api.get("/creation-runs/{run_id:int}", response_model=CreationRunOut, responses=responses(404, 422))
    def get_creation(run_id: RowId) -> CreationRunOut:
        """One creation run, with its counts."""
        return storage.gallery.get_creation(run_id)

    @api.post(
        "/creation-runs/{run_id:int}/complete",
        response_model=CreationRunOut,
        responses=responses(404, 409, 422, 507),
    )
    def complete_creation(run_id: RowId) -> CreationRunOut:
        """Complete a creation run; 409 if it already is."""
        return storage.gallery.complete_creation(run_id)

    return api
