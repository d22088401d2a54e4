"""Factories for whole session graphs, in two families that share one vocabulary of realistic values.

* ``*InFactory`` build input schemas (``SessionCreateFactory`` a whole ``SessionCreate`` graph): what an
  application hands to ``storage.sessions``. The demo and the benchmark use them, and so should tests of
  the service, since they exercise the real validation and write path.
* ``SessionFactory`` and its children build ORM rows directly in a SQLAlchemy session (factory-boy's
  ``SQLAlchemyModelFactory``, flushed, never committed): for tests that need rows without the service.
  Call ``bind_factories(session)`` first.

``seed(n)`` makes both families deterministic.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any

import factory
import factory.random
from factory.alchemy import SQLAlchemyModelFactory
from sqlalchemy.orm import Session

from edi_storage.models import (
    CurationStatus,
    EditSession,
    Entity,
    GeneratedImage,
    LibraryPrompt,
    Prompt,
    UserFeedback,
    Validation,
    prompt_hash,
)
from edi_storage.schemas.gallery import ImageCreate
from edi_storage.schemas.sessions import EntityIn, FeedbackIn, PromptIn, SessionCreate, ValidationIn
from edi_storage.vocabulary import FeedbackType, SessionStatus

LABELS = ("sky", "mountain", "person", "tree", "building", "water", "car", "dog", "road", "cloud")
EDITS = (
    "make the {} dramatic",
    "turn the {} golden",
    "remove the {}",
    "make the {} brighter",
    "blur the {}",
    "add snow to the {}",
    "make the {} look like a painting",
    "darken the {}",
)
STYLES = ("cinematic lighting", "storm clouds", "soft focus", "high detail", "film grain", "sunset glow")
COLOURS = ("#87CEEB", "#2E8B57", "#A0522D", "#708090", "#FFD700", "#1E90FF", "#F5F5DC", "#228B22")


def seed(value: int) -> None:
    """Make every factory deterministic from here on."""
    factory.random.reseed_random(value)
    factory.Faker._get_faker().seed_instance(value)


def _random_bbox() -> dict[str, float]:
    rand = factory.random.randgen
    x1, y1 = rand.randint(0, 1500), rand.randint(0, 800)
    return {"x1": x1, "y1": y1, "x2": x1 + rand.randint(20, 400), "y2": y1 + rand.randint(20, 280)}


if TYPE_CHECKING:
    from edi_storage.storage import Storage


# -- input schemas ---------------------------------------------------------------------------------
class PromptInFactory(factory.Factory[PromptIn]):
    class Meta:
        model = PromptIn

    iteration = factory.Sequence(lambda n: n)
    positive_prompt = factory.LazyFunction(lambda: ", ".join(factory.random.randgen.sample(STYLES, 2)))
    negative_prompt = "blurry, low quality"
    quality_score = factory.Faker("pyfloat", min_value=0, max_value=1, right_digits=3)
    generation_time = factory.Faker("pyfloat", min_value=0.2, max_value=9, right_digits=2)
    model_confidence = factory.Faker("pyfloat", min_value=0, max_value=1, right_digits=3)
    generation_parameters = factory.LazyFunction(
        lambda: {"steps": factory.random.randgen.choice([20, 30, 50]), "cfg_scale": 7.5, "sampler": "euler_a"}
    )


class EntityInFactory(factory.Factory[EntityIn]):
    class Meta:
        model = EntityIn

    label = factory.Iterator(LABELS)
    entity_id = factory.LazyAttributeSequence(lambda o, n: f"{o.label}_{n}")
    confidence = factory.Faker("pyfloat", min_value=0.3, max_value=1, right_digits=3)
    bbox = factory.LazyFunction(_random_bbox)
    mask_path = factory.LazyAttribute(lambda o: f"/masks/{o.entity_id}.png")
    color_hex = factory.Iterator(COLOURS)
    area_percent = factory.Faker("pyfloat", min_value=0.5, max_value=80, right_digits=1)
    semantic_label = factory.LazyAttribute(lambda o: f"{o.label} region")


class ValidationInFactory(factory.Factory[ValidationIn]):
    class Meta:
        model = ValidationIn

    attempt_number = factory.Sequence(lambda n: n + 1)
    alignment_score = factory.Faker("pyfloat", min_value=0.2, max_value=1, right_digits=3)
    preserved_count = factory.Faker("pyint", min_value=0, max_value=8)
    modified_count = factory.Faker("pyint", min_value=0, max_value=3)
    unintended_count = factory.Faker("pyint", min_value=0, max_value=2)
    user_feedback = factory.Faker("sentence", nb_words=5)
    quality_metrics = factory.LazyFunction(lambda: {"ssim": round(factory.random.randgen.uniform(0.5, 1), 3)})


class FeedbackInFactory(factory.Factory[FeedbackIn]):
    class Meta:
        model = FeedbackIn

    feedback_type = factory.Iterator(list(FeedbackType))
    comments = factory.Faker("sentence", nb_words=6)
    rating = factory.Faker("pyint", min_value=1, max_value=5)


class SessionCreateFactory(factory.Factory[SessionCreate]):
    """A realistic whole graph: by default 3 prompts, 5 entities, 2 validations and one feedback."""

    class Meta:
        model = SessionCreate

    class Params:
        n_prompts = 3
        n_entities = 5
        n_validations = 2
        with_feedback = True
        target = factory.Iterator(LABELS)

    id = factory.Faker("uuid4")
    image_path = factory.LazyAttributeSequence(lambda o, n: f"/images/{o.target}/{n:06d}.jpg")
    naive_prompt = factory.LazyAttribute(lambda o: factory.random.randgen.choice(EDITS).format(o.target))
    status = factory.Iterator(
        [SessionStatus.COMPLETED, SessionStatus.COMPLETED, SessionStatus.IN_PROGRESS, SessionStatus.FAILED]
    )
    final_alignment_score = factory.LazyAttribute(
        lambda o: (
            round(factory.random.randgen.uniform(0.3, 1), 3)
            if o.status != SessionStatus.IN_PROGRESS
            else None
        )
    )
    created_at = factory.Faker("date_time_between", start_date="-30d", end_date="now", tzinfo=UTC)
    processing_time = factory.Faker("pyfloat", min_value=1, max_value=120, right_digits=2)
    model_version = "edi-1.4"
    session_tags = factory.LazyAttribute(lambda o: [o.target, "demo"])
    prompts = factory.LazyAttribute(
        lambda o: [PromptInFactory.build(iteration=i) for i in range(o.n_prompts)]
    )
    entities = factory.LazyAttribute(
        lambda o: [
            EntityInFactory.build(
                label=o.target if i == 0 else factory.random.randgen.choice(LABELS),
                entity_id=f"{o.target}_{i}",
            )
            for i in range(o.n_entities)
        ]
    )
    validations = factory.LazyAttribute(
        lambda o: [ValidationInFactory.build(attempt_number=i + 1) for i in range(o.n_validations)]
    )
    user_feedback = factory.LazyAttribute(lambda o: FeedbackInFactory.build() if o.with_feedback else None)


# -- ORM rows --------------------------------------------------------------------------------------
class _SessionHolder:
    session: Session | None = None


def bind_factories(session: Session | None) -> None:
    """Point the ORM factories at a SQLAlchemy session (or at none)."""
    _SessionHolder.session = session


def create(storage: Storage, factory: type[Any], *, actor: str | None = None, **fields: Any) -> Any:
    """One row (with its factory's children) built by an ORM ``factory`` in a unit of work of its own,
    committed; its columns stay readable afterwards."""
    with storage.unit_of_work(actor=actor) as uow:
        bind_factories(uow.session)
        try:
            return factory(**fields)
        finally:
            bind_factories(None)


def _current_session() -> Session:
    if _SessionHolder.session is None:
        raise RuntimeError("call edi_storage.testing.bind_factories(session) before using the ORM factories")
    return _SessionHolder.session


class _ModelFactory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = _current_session
        sqlalchemy_session_persistence = "flush"


class SessionFactory(_ModelFactory):
    class Meta:
        model = EditSession

    class Params:
        target = factory.Iterator(LABELS)

    id = factory.Faker("uuid4")
    image_path = factory.LazyAttributeSequence(lambda o, n: f"/images/{o.target}/{n:06d}.jpg")
    naive_prompt = factory.LazyAttribute(lambda o: f"make the {o.target} dramatic")
    status = SessionStatus.COMPLETED.value
    final_alignment_score = factory.Faker("pyfloat", min_value=0, max_value=1, right_digits=3)

    prompts = factory.RelatedFactoryList("edi_storage.testing.factories.PromptFactory", "session", size=3)
    entities = factory.RelatedFactoryList("edi_storage.testing.factories.EntityFactory", "session", size=5)
    validations = factory.RelatedFactoryList(
        "edi_storage.testing.factories.ValidationFactory", "session", size=2
    )
    feedback = factory.RelatedFactoryList("edi_storage.testing.factories.FeedbackFactory", "session", size=1)


class PromptFactory(_ModelFactory):
    class Meta:
        model = Prompt

    session = factory.SubFactory(SessionFactory, prompts=[])
    iteration = factory.Sequence(lambda n: n)
    positive_prompt = factory.LazyFunction(lambda: ", ".join(factory.random.randgen.sample(STYLES, 2)))
    negative_prompt = "blurry"
    quality_score = factory.Faker("pyfloat", min_value=0, max_value=1, right_digits=3)


class EntityFactory(_ModelFactory):
    class Meta:
        model = Entity

    session = factory.SubFactory(SessionFactory, entities=[])
    label = factory.Iterator(LABELS)
    entity_id = factory.LazyAttributeSequence(lambda o, n: f"{o.label}_{n}")
    confidence = factory.Faker("pyfloat", min_value=0, max_value=1, right_digits=3)
    bbox = factory.LazyFunction(_random_bbox)
    color_hex = factory.Iterator(COLOURS)
    area_percent = factory.Faker("pyfloat", min_value=0, max_value=100, right_digits=1)


class ValidationFactory(_ModelFactory):
    class Meta:
        model = Validation

    session = factory.SubFactory(SessionFactory, validations=[])
    attempt_number = factory.Sequence(lambda n: n + 1)
    alignment_score = factory.Faker("pyfloat", min_value=0, max_value=1, right_digits=3)
    preserved_count = factory.Faker("pyint", min_value=0, max_value=8)
    modified_count = factory.Faker("pyint", min_value=0, max_value=3)
    unintended_count = factory.Faker("pyint", min_value=0, max_value=2)


class FeedbackFactory(_ModelFactory):
    class Meta:
        model = UserFeedback

    session = factory.SubFactory(SessionFactory, feedback=[])
    feedback_type = factory.Iterator([t.value for t in FeedbackType])
    rating = factory.Faker("pyint", min_value=1, max_value=5)


# -- gallery ---------------------------------------------------------------------------------------
class ImageCreateFactory(factory.Factory[ImageCreate]):
    """A generated image as the gallery receives it: pending, scored, tagged."""

    class Meta:
        model = ImageCreate

    class Params:
        subject = factory.Iterator(LABELS)

    filename = factory.Sequence(lambda n: f"2026{n:08d}.png")
    prompt = factory.LazyAttribute(
        lambda o: f"{o.subject}, " + ", ".join(factory.random.randgen.sample(STYLES, 2))
    )
    negative_prompt = "blurry, low quality"
    model_id = factory.Iterator(["sdxl-1.0", "flux-dev", "sd-1.5"])
    generation_params = factory.LazyFunction(
        lambda: {"width": 1024, "height": 1024, "steps": factory.random.randgen.choice([20, 30, 50])}
    )
    seed = factory.Faker("pyint", min_value=0, max_value=2**31 - 1)
    aesthetic_score = factory.Faker("pyfloat", min_value=2, max_value=10, right_digits=2)
    clip_score = factory.Faker("pyfloat", min_value=0.2, max_value=1, right_digits=3)
    technical_score = factory.Faker("pyfloat", min_value=0.3, max_value=1, right_digits=3)
    final_score = factory.Faker("pyfloat", min_value=2, max_value=10, right_digits=2)
    tags = factory.LazyAttribute(
        lambda o: [o.subject, factory.random.randgen.choice(["demo", "landscape", "portrait"])]
    )


class LibraryPromptFactory(_ModelFactory):
    """A prompt-library row (no thumbnail); its hash follows its text."""

    class Meta:
        model = LibraryPrompt

    prompt_text = factory.LazyFunction(lambda: ", ".join(factory.random.randgen.sample(STYLES, 3)))
    prompt_hash = factory.LazyAttribute(lambda o: prompt_hash(o.prompt_text))
    total_uses = factory.Faker("pyint", min_value=1, max_value=50)
    model = factory.Iterator(["sdxl-1.0", "flux-dev", None])


class GeneratedImageFactory(_ModelFactory):
    """A gallery row built from the same values as ``ImageCreateFactory``."""

    class Meta:
        model = GeneratedImage

    filename = factory.Sequence(lambda n: f"orm_{n:08d}.png")
    prompt = factory.LazyFunction(lambda: ", ".join(factory.random.randgen.sample(STYLES, 2)))
    model_id = factory.Iterator(["sdxl-1.0", "flux-dev"])
    final_score = factory.Faker("pyfloat", min_value=0, max_value=10, right_digits=2)
    status = factory.Iterator([s.value for s in CurationStatus])
