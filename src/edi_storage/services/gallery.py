"""The gallery service: images and their curation, training runs, creation runs, and the reference's
common queries (gallery-schema.md "Common Queries") as methods.

A creation run's ``images_created``, ``images_kept`` (its curated images) and ``avg_score`` are derived
from its images and recomputed, in the same transaction, whenever one of its images is added or curated
and when the run completes: they cannot drift from the images they describe.

Every statement is ORM-enabled on the mapped classes: a ``GeneratedImage``, ``TrainingRun`` or
``CreationRun`` the application holds in the same unit of work is flushed before a service reads and
takes the values a service writes (``synchronize_session``), so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Integer, case, cast, delete, event, func, insert, select, update
from sqlalchemy.orm import Session, SessionTransaction

from edi_storage.dialects import dialect_of
from edi_storage.errors import Conflict, InvalidInput, NotFound
from edi_storage.models.base import columns_of, utcnow
from edi_storage.models.gallery import CreationRun, GeneratedImage, TrainingRun
from edi_storage.monitoring import measured
from edi_storage.schemas.common import INT_MAX, InputModel, Text, check_limit, parse, rows_as
from edi_storage.schemas.gallery import (
    CreationRunOut,
    DailyCreation,
    DeletedImage,
    ImageCreate,
    ImageOut,
    QualityTier,
    ScoreUpdate,
    TrainingResult,
    TrainingRunOut,
    TrainingStart,
    TrainingStatistic,
)
from edi_storage.services.base import Service
from edi_storage.vocabulary import CurationStatus, RunStatus

IMAGE = GeneratedImage
IMAGE_COLUMNS = columns_of(GeneratedImage)
TRAINING_COLUMNS = columns_of(TrainingRun)
CREATION_COLUMNS = columns_of(CreationRun)
# Updates whose new values are plain Python values: held objects take them without a query.
_EVALUATE = {"synchronize_session": "evaluate"}
TIERS = (("Excellent", 8.0), ("Good", 6.0), ("Fair", 4.0))


MOST = 10_000  # the largest page a gallery query returns


class GalleryService(Service):
    # -- images ----------------------------------------------------------------------------------
    @measured("gallery.add_image")
    def add_image(self, image: ImageCreate | Mapping[str, Any]) -> ImageOut:
        """Store a generated image; Conflict when its filename is taken, NotFound for an unknown run."""
        item = parse(ImageCreate, image)
        with self._tx() as s:
            if s.scalar(select(IMAGE.id).where(IMAGE.filename == item.filename)) is not None:
                raise Conflict(f"an image named {item.filename!r} is already in the gallery")
            for model, key, what in (
                (CreationRun, item.creation_session_id, "creation run"),
                (TrainingRun, item.training_session_id, "training run"),
            ):
                if key is not None and s.scalar(select(model.id).where(model.id == key)) is None:
                    raise NotFound(what, key)
            now = utcnow()
            values = {**item.model_dump(), "status": item.status.value, "created_at": now, "updated_at": now}
            image_id = s.scalars(insert(IMAGE).values(values).returning(IMAGE.id)).one()
            if item.creation_session_id is not None:
                _refresh_creation(s, item.creation_session_id)
            return self._image(s, image_id)

    def _image(self, s: Session, image_id: int) -> ImageOut:
        _check_id(image_id)
        row = s.execute(select(*IMAGE_COLUMNS).where(IMAGE.id == image_id)).mappings().first()
        if row is None:
            raise NotFound("image", image_id)
        return ImageOut.model_validate(row)

    @measured("gallery.get_image")
    def get_image(self, image_id: int) -> ImageOut:
        with self._tx(readonly=True) as s:
            return self._image(s, image_id)

    @measured("gallery.curate")
    def curate(self, image_id: int, status: CurationStatus | str) -> ImageOut:
        """Set an image's curation status (pending, curated, rejected)."""
        new = parse(_Curation, {"status": status}).status
        with self._tx() as s:
            run_id = self._update(s, image_id, status=new.value)
            if run_id is not None:
                _refresh_creation(s, run_id)
            return self._image(s, image_id)

    @measured("gallery.feature")
    def feature(self, image_id: int, featured: bool = True) -> ImageOut:
        with self._tx() as s:
            self._update(s, image_id, is_featured=featured)
            return self._image(s, image_id)

    @measured("gallery.tag")
    def tag(self, image_id: int, tags: Sequence[str], *, replace: bool = False) -> ImageOut:
        """Add tags (kept in order, no duplicates), or with ``replace=True`` set them."""
        new_tags = parse(_Tags, {"tags": tags}).tags  # a string is not a list of tags
        with self._tx() as s:
            current = [] if replace else (self._image(s, image_id).tags or [])
            self._update(s, image_id, tags=list(dict.fromkeys([*current, *new_tags])))
            return self._image(s, image_id)

    @measured("gallery.update_scores")
    def update_scores(self, image_id: int, scores: ScoreUpdate | Mapping[str, Any]) -> ImageOut:
        """Set the scores given (aesthetic, CLIP, technical, final; the others are kept), after the
        image was added; its creation run's average follows."""
        given = parse(ScoreUpdate, scores).model_dump(exclude_unset=True)
        if not given:
            names = " or ".join(ScoreUpdate.model_fields)
            raise InvalidInput.single("scores", f"name at least one score to set ({names})", dict(scores))
        with self._tx() as s:
            run_id = self._update(s, image_id, **given)
            if run_id is not None:
                _refresh_creation(s, run_id)
            return self._image(s, image_id)

    @measured("gallery.delete_image")
    def delete_image(self, image_id: int, *, gallery_dir: Path | None = None) -> DeletedImage:
        """Delete an image's row (its creation run's counts follow). With ``gallery_dir``, also its file
        there, once the deletion has committed: a transaction that rolls back keeps the row and the
        file. Called on its own, that is before this returns; inside a unit of work, at its commit
        (``file_pending`` names the file then). A filename that would lead out of ``gallery_dir`` is
        refused before anything is deleted."""
        outcome: dict[str, Any] = {}
        with self._tx() as s:
            image = self._image(s, image_id)
            target = None if gallery_dir is None else _inside(gallery_dir, image_id, image)
            s.execute(delete(IMAGE).where(IMAGE.id == image_id), execution_options=_EVALUATE)
            if image.creation_session_id is not None:
                _refresh_creation(s, image.creation_session_id)
            if target is not None:
                _on_commit(s, lambda: outcome.update(_remove(target)))
        if target is None:
            return DeletedImage(image=image)
        return DeletedImage(image=image, **(outcome or {"file_pending": target}))

    def _update(self, s: Session, image_id: int, **values: Any) -> int | None:
        """Update one image; returns its creation run's id. NotFound for an unknown image."""
        _check_id(image_id)
        result = s.execute(
            update(IMAGE)
            .where(IMAGE.id == image_id)
            .values(**values, updated_at=utcnow())
            .returning(IMAGE.creation_session_id),
            execution_options=_EVALUATE,
        ).first()
        if result is None:
            raise NotFound("image", image_id)
        run_id: int | None = result[0]
        return run_id

    # -- the reference's common queries ----------------------------------------------------------
    @measured("gallery.recent_high_quality")
    def recent_high_quality(self, min_score: float = 7.0, limit: int = 10) -> list[ImageOut]:
        """Curated images scoring at least ``min_score``, newest first."""
        statement = (
            select(*IMAGE_COLUMNS)
            .where(IMAGE.status == CurationStatus.CURATED.value, IMAGE.final_score >= min_score)
            .order_by(IMAGE.created_at.desc(), IMAGE.id.desc())
            .limit(check_limit(limit, most=MOST))
        )
        with self._tx(readonly=True) as s:
            return rows_as(ImageOut, s.execute(statement))

    @measured("gallery.top")
    def top(self, limit: int = 10, status: CurationStatus | str = CurationStatus.CURATED) -> list[ImageOut]:
        """The best-scoring images of a status (``WHERE status = ? ORDER BY final_score DESC``)."""
        wanted = parse(_Curation, {"status": status}).status
        statement = (
            select(*IMAGE_COLUMNS)
            .where(IMAGE.status == wanted.value, IMAGE.final_score.is_not(None))
            .order_by(IMAGE.final_score.desc(), IMAGE.id.desc())
            .limit(check_limit(limit, most=MOST))
        )
        with self._tx(readonly=True) as s:
            return rows_as(ImageOut, s.execute(statement))

    @measured("gallery.uncurated")
    def uncurated(self, limit: int = 100) -> list[ImageOut]:
        """Pending images, oldest first: the curation queue."""
        statement = (
            select(*IMAGE_COLUMNS)
            .where(IMAGE.status == CurationStatus.PENDING.value)
            .order_by(IMAGE.created_at.asc(), IMAGE.id.asc())
            .limit(check_limit(limit, most=MOST))
        )
        with self._tx(readonly=True) as s:
            return rows_as(ImageOut, s.execute(statement))

    @measured("gallery.quality_distribution")
    def quality_distribution(self) -> list[QualityTier]:
        """Curated images per tier: Excellent (>= 8), Good (>= 6), Fair (>= 4), Poor (below, or unscored)."""
        tier = case(*((IMAGE.final_score >= low, name) for name, low in TIERS), else_="Poor")
        order = case(*((tier == name, rank) for rank, (name, _) in enumerate(TIERS)), else_=len(TIERS))
        statement = (
            select(tier.label("quality_tier"), func.count(IMAGE.id), func.avg(IMAGE.final_score))
            .where(IMAGE.status == CurationStatus.CURATED.value)
            .group_by(tier)
            .order_by(order)
        )
        with self._tx(readonly=True) as s:
            return [
                QualityTier(quality_tier=name, count=count, avg_score=round(float(avg or 0), 3))
                for name, count, avg in s.execute(statement)
            ]

    # -- training runs ---------------------------------------------------------------------------
    @measured("gallery.start_training")
    def start_training(
        self,
        name: str,
        model_path: str,
        config: dict[str, Any] | None = None,
        dataset_size: int | None = None,
    ) -> TrainingRunOut:
        given = {"name": name, "model_path": model_path, "config": config, "dataset_size": dataset_size}
        item = parse(TrainingStart, given)
        now = utcnow()
        with self._tx() as s:
            run_id = s.scalars(
                insert(TrainingRun)
                .values(**item.model_dump(), status=RunStatus.RUNNING.value, started_at=now, updated_at=now)
                .returning(TrainingRun.id)
            ).one()
            return _training(s, run_id)

    @measured("gallery.complete_training")
    def complete_training(
        self,
        run_id: int,
        final_loss: float | None = None,
        training_time_seconds: float | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> TrainingRunOut:
        result = parse(
            TrainingResult,
            {"final_loss": final_loss, "training_time_seconds": training_time_seconds, "metrics": metrics},
        )
        return self._finish_training(run_id, RunStatus.COMPLETED, result.model_dump())

    @measured("gallery.fail_training")
    def fail_training(
        self, run_id: int, reason: str, metrics: dict[str, Any] | None = None
    ) -> TrainingRunOut:
        given = parse(TrainingResult, {"metrics": metrics}).metrics or {}
        result = parse(TrainingResult, {"metrics": {**given, "error": reason}})
        return self._finish_training(run_id, RunStatus.FAILED, {"metrics": result.metrics})

    def _finish_training(self, run_id: int, status: RunStatus, values: dict[str, Any]) -> TrainingRunOut:
        now = utcnow()
        with self._tx() as s:
            current = _training(s, run_id)
            if current.status is not RunStatus.RUNNING:
                raise Conflict(f"training run {run_id} is already {current.status.value}")
            s.execute(
                update(TrainingRun)
                .where(TrainingRun.id == run_id)
                .values(**values, status=status.value, completed_at=now, updated_at=now),
                execution_options=_EVALUATE,
            )
            return _training(s, run_id)

    @measured("gallery.training_statistics")
    def training_statistics(self) -> list[TrainingStatistic]:
        """Every training run, newest first, with its time in hours."""
        statement = select(
            TrainingRun.name,
            TrainingRun.dataset_size,
            TrainingRun.final_loss,
            (TrainingRun.training_time_seconds / 3600.0).label("training_hours"),
            TrainingRun.status,
        ).order_by(TrainingRun.started_at.desc(), TrainingRun.id.desc())
        with self._tx(readonly=True) as s:
            return rows_as(TrainingStatistic, s.execute(statement))

    # -- creation runs ---------------------------------------------------------------------------
    @measured("gallery.start_creation")
    def start_creation(self, theme: str | None = None) -> CreationRunOut:
        checked = parse(_Theme, {"theme": theme}).theme
        now = utcnow()
        with self._tx() as s:
            run_id = s.scalars(
                insert(CreationRun)
                .values(theme=checked, started_at=now, updated_at=now)
                .returning(CreationRun.id)
            ).one()
            return _creation(s, run_id)

    @measured("gallery.complete_creation")
    def complete_creation(self, run_id: int) -> CreationRunOut:
        with self._tx() as s:
            if _creation(s, run_id).completed_at is not None:
                raise Conflict(f"creation run {run_id} is already complete")
            s.execute(
                update(CreationRun).where(CreationRun.id == run_id).values(completed_at=utcnow()),
                execution_options=_EVALUATE,
            )
            _refresh_creation(s, run_id)
            return _creation(s, run_id)

    @measured("gallery.get_creation")
    def get_creation(self, run_id: int) -> CreationRunOut:
        with self._tx(readonly=True) as s:
            return _creation(s, run_id)

    @measured("gallery.daily_creation_statistics")
    def daily_creation_statistics(self) -> list[DailyCreation]:
        """Per UTC day: runs started, images created and kept, average quality; newest day first."""
        with self._tx(readonly=True) as s:
            day = dialect_of(s).utc_day(CreationRun.started_at.expression)
            statement = (
                select(
                    day.label("date"),
                    func.count(CreationRun.id),
                    func.sum(CreationRun.images_created),
                    func.sum(CreationRun.images_kept),
                    func.avg(CreationRun.avg_score),
                )
                .group_by(day)
                .order_by(day.desc())
            )
            return [
                DailyCreation(
                    date=d if isinstance(d, date) else date.fromisoformat(d),
                    sessions=n,
                    total_created=int(created),
                    total_kept=int(kept),
                    avg_quality=None if avg is None else round(float(avg), 2),
                )
                for d, n, created, kept, avg in s.execute(statement)
            ]


def _training(s: Session, run_id: int) -> TrainingRunOut:
    row = s.execute(select(*TRAINING_COLUMNS).where(TrainingRun.id == run_id)).mappings().first()
    if row is None:
        raise NotFound("training run", run_id)
    return TrainingRunOut.model_validate(row)


def _creation(s: Session, run_id: int) -> CreationRunOut:
    row = s.execute(select(*CREATION_COLUMNS).where(CreationRun.id == run_id)).mappings().first()
    if row is None:
        raise NotFound("creation run", run_id)
    return CreationRunOut.model_validate(row)


def _check_id(image_id: object) -> None:
    """An image id as both databases can hold it (INTEGER is 32 bits on PostgreSQL); InvalidInput
    otherwise, rather than NotFound on one backend and a driver error on the other."""
    if isinstance(image_id, bool) or not isinstance(image_id, int) or not 1 <= image_id <= INT_MAX:
        raise InvalidInput.single("id", f"must be a whole number from 1 to {INT_MAX}", image_id)


def _remove(path: Path) -> dict[str, Any]:
    """Delete the file once its row is gone; a failure is reported, not raised (the row's deletion has
    committed: raising would say it had not)."""
    try:
        path.unlink()
    except FileNotFoundError:
        return {"file_missing": True}
    except OSError as error:
        return {"file_error": f"{type(error).__name__}: {error.strerror or error}"}
    return {"file_deleted": path}


def _on_commit(s: Session, action: Callable[[], None]) -> None:
    """Run ``action`` once ``s`` commits; never, if it rolls back first."""

    def committed(_session: Session) -> None:
        event.remove(s, "after_soft_rollback", rolled_back)
        action()

    def rolled_back(_session: Session, previous: SessionTransaction) -> None:
        if previous.parent is not None:  # a savepoint: the outer transaction may still commit
            return
        event.remove(s, "after_commit", committed)
        event.remove(s, "after_soft_rollback", rolled_back)

    event.listen(s, "after_commit", committed, once=True)
    event.listen(s, "after_soft_rollback", rolled_back)


def _inside(gallery_dir: Path, image_id: int, image: ImageOut) -> Path:
    """Where the image's file is in ``gallery_dir``; InvalidInput when its filename leads elsewhere."""
    root = gallery_dir.resolve()
    target = (root / image.filename).resolve()
    if target == root or not target.is_relative_to(root):
        raise InvalidInput.single(
            "filename", f"of image {image_id} leads out of {gallery_dir}", image.filename
        )
    if target.is_dir():
        raise InvalidInput.single(
            "filename", f"of image {image_id} names a folder in {gallery_dir}", image.filename
        )
    return target


def _refresh_creation(s: Session, run_id: int) -> None:
    """Recompute a creation run's counts and average from its images, in the caller's transaction."""
    mine = IMAGE.creation_session_id == run_id
    kept = func.coalesce(func.sum(cast(IMAGE.status == CurationStatus.CURATED.value, Integer)), 0)
    # fetch: the new values are subqueries, so a held CreationRun has them expired and reloaded.
    s.execute(
        update(CreationRun)
        .where(CreationRun.id == run_id)
        .values(
            images_created=select(func.count(IMAGE.id)).where(mine).scalar_subquery(),
            images_kept=select(kept).where(mine).scalar_subquery(),
            avg_score=select(func.avg(IMAGE.final_score)).where(mine).scalar_subquery(),
            updated_at=utcnow(),
        ),
        execution_options={"synchronize_session": "fetch"},
    )


class _Curation(InputModel):
    status: CurationStatus


class _Tags(InputModel):
    tags: list[Text]


class _Theme(InputModel):
    theme: Text | None = None
