"""Reading the history back for learning: feedback rates and ratings, which entity labels get edited and
how well those edits validate, alignment and quality over time (per day or week, per model version).

Each report is one statement. The trend's date range walks the ``(created_at, id)`` index; the others
read whole tables, which an aggregate over everything has to do."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Integer, String, case, cast, func, null, select

from edi_storage.dialects import dialect_of
from edi_storage.models.sessions import EditSession, Entity, Prompt, UserFeedback, Validation
from edi_storage.monitoring import measured
from edi_storage.schemas.analytics import (
    FeedbackSummary,
    LabelEdits,
    LabelQuery,
    TrendPoint,
    TrendQuery,
)
from edi_storage.schemas.common import parse
from edi_storage.services.base import Service
from edi_storage.vocabulary import FeedbackType, Period, SessionStatus


class AnalyticsService(Service):
    @measured("analytics.feedback")
    def feedback(self) -> FeedbackSummary:
        """Accept, reject and partial counts and rates, and the distribution of ratings."""
        statement = select(UserFeedback.feedback_type, UserFeedback.rating, func.count()).group_by(
            UserFeedback.feedback_type, UserFeedback.rating
        )
        with self._tx(readonly=True) as s:
            rows = s.execute(statement).all()
        per_type = dict.fromkeys((t.value for t in FeedbackType), 0)
        ratings = dict.fromkeys(range(1, 6), 0)
        for kind, rating, count in rows:
            per_type[str(kind)] += count
            if rating is not None:
                ratings[int(rating)] += count
        total = sum(per_type.values())
        rated = sum(ratings.values())
        return FeedbackSummary(
            total=total,
            per_type=per_type,
            rates={k: round(v / total * 100, 1) if total else 0.0 for k, v in per_type.items()},
            ratings=ratings,
            average_rating=round(sum(r * n for r, n in ratings.items()) / rated, 2) if rated else None,
        )

    @measured("analytics.labels")
    def labels(self, limit: int = 20) -> list[LabelEdits]:
        """The entity labels found most often (then by name): how many entities and sessions, their
        average detection confidence, and how well those sessions' edits validated (the mean, over the
        sessions, of each session's average validation alignment)."""
        query = parse(LabelQuery, {"limit": limit})
        scores = (
            select(
                Validation.session_id.label("session_id"),
                func.avg(Validation.alignment_score).label("score"),
                func.count().label("validations"),
            )
            .group_by(Validation.session_id)
            .subquery()
        )
        # One row per label and session first, so that a session with several entities of a label
        # counts its validations once.
        found = (
            select(
                Entity.label.label("label"),
                Entity.session_id.label("session_id"),
                func.count().label("entities"),
                func.sum(Entity.confidence).label("confidence"),
            )
            .group_by(Entity.label, Entity.session_id)
            .subquery()
        )
        entities = func.sum(found.c.entities)
        with self._tx(readonly=True) as s:
            label = dialect_of(s).binary(found.c.label)
            statement = (
                select(
                    found.c.label,
                    entities,
                    func.count(),
                    func.sum(found.c.confidence) / entities,
                    func.avg(scores.c.score),
                    func.coalesce(func.sum(scores.c.validations), 0),
                )
                .outerjoin(scores, scores.c.session_id == found.c.session_id)
                .group_by(found.c.label)
                .order_by(entities.desc(), label)
                .limit(query.limit)
            )
            rows = s.execute(statement).all()
        return [
            LabelEdits(
                label=label,
                entities=int(count),
                sessions=sessions,
                average_confidence=_rounded(confidence),
                average_alignment=_rounded(alignment),
                validations=int(validations),
            )
            for label, count, sessions, confidence, alignment, validations in rows
        ]

    @measured("analytics.trend")
    def trend(
        self,
        period: Period | str = Period.DAY,
        *,
        by_model: bool = False,
        date_from: Any = None,
        date_to: Any = None,
    ) -> list[TrendPoint]:
        """Sessions per UTC day or week (oldest first), how many completed, their average final
        alignment and their prompts' average quality (each session's mean, averaged over the period's
        sessions); per model version with ``by_model``. A date range is read from the created_at index."""
        fields = {"period": period, "by_model": by_model, "date_from": date_from, "date_to": date_to}
        query = parse(TrendQuery, fields)
        # Per session, through the prompts' (session_id, iteration) index: only the sessions in range.
        quality = (
            select(func.avg(Prompt.quality_score))
            .where(Prompt.session_id == EditSession.id)
            .scalar_subquery()
        )
        with self._tx(readonly=True) as s:
            dialect = dialect_of(s)
            created = EditSession.created_at.expression
            bucket = dialect.utc_day(created) if query.period is Period.DAY else dialect.utc_week(created)
            model: Any = EditSession.model_version if query.by_model else cast(null(), String)
            completed = EditSession.status == SessionStatus.COMPLETED.value
            statement = (
                select(
                    bucket.label("period"),
                    model.label("model"),
                    func.count(EditSession.id),
                    func.sum(cast(case((completed, 1), else_=0), Integer)),
                    func.avg(EditSession.final_alignment_score),
                    func.avg(quality),
                )
                .group_by(bucket, model)
                .order_by(bucket, *dialect.nulls_last(dialect.binary(model), descending=False))
            )
            if query.date_from is not None:
                statement = statement.where(EditSession.created_at >= query.date_from)
            if query.date_to is not None:
                statement = statement.where(EditSession.created_at <= query.date_to)
            rows = s.execute(statement).all()
        return [
            TrendPoint(
                period=day if isinstance(day, date) else date.fromisoformat(day),
                model_version=model_version,
                sessions=count,
                completed=int(done or 0),
                average_alignment=_rounded(alignment),
                average_quality=_rounded(quality_),
            )
            for day, model_version, count, done, alignment, quality_ in rows
        ]


def _rounded(value: object) -> float | None:
    return None if value is None else round(float(value), 3)  # type: ignore[arg-type]
