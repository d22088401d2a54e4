"""What ``edi-storage demo`` puts in a database: realistic sessions, the prompt library they feed, and
a gallery with a training run and creation runs. Deterministic for a seed."""

from __future__ import annotations

import io
import random
from collections.abc import Callable

from PIL import Image, ImageDraw

from edi_storage.schemas.sessions import SessionCreate
from edi_storage.storage import Storage
from edi_storage.testing.factories import ImageCreateFactory, SessionCreateFactory, seed
from edi_storage.vocabulary import CurationStatus

BATCH = 100


def picture(rng: random.Random, size: tuple[int, int] = (640, 480)) -> bytes:
    """A small synthetic 'generated image': a sky gradient and a few shapes."""
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    top, bottom = [rng.randrange(256) for _ in range(3)], [rng.randrange(256) for _ in range(3)]
    for y in range(size[1]):
        t = y / size[1]
        draw.line(
            [(0, y), (size[0], y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        )
    for _ in range(6):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        draw.ellipse(
            [x, y, x + rng.randrange(20, 160), y + rng.randrange(20, 120)],
            fill=tuple(rng.randrange(256) for _ in range(3)),
        )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def populate(
    storage: Storage, *, sessions: int, seed_value: int, advance: Callable[[str, int], None] | None = None
) -> None:
    """Sessions in batches, their final prompts into the library (some with thumbnails), and a gallery."""
    seed(seed_value)
    rng = random.Random(seed_value)
    step = advance or (lambda _task, _n: None)
    graphs: list[SessionCreate] = [SessionCreateFactory.build() for _ in range(sessions)]
    for start in range(0, len(graphs), BATCH):
        batch = graphs[start : start + BATCH]
        storage.sessions.batch_save_sessions(batch)
        step("sessions", len(batch))
    for i, graph in enumerate(graphs[: max(1, sessions // 4)] if sessions else []):
        prompt = graph.prompts[-1].positive_prompt if graph.prompts else graph.naive_prompt
        made = picture(rng) if i % 3 == 0 else None
        storage.library.record_prompt(prompt, model=graph.model_version, image_data=made)
        step("library", 1)
    lora = storage.gallery.start_training("landscape_style_v1", "models/lora/landscape_v1.safetensors",
                                          {"network_dim": 64, "learning_rate": 1e-4}, 75)  # fmt: skip
    storage.gallery.complete_training(
        lora.id, final_loss=0.0234, training_time_seconds=7200, metrics={"fid": 28.5}
    )
    for theme in ("landscapes", "portraits", "cities"):
        run = storage.gallery.start_creation(theme)
        for k in range(5):
            # Named after the run, so a second demo on the same database adds images instead of colliding.
            image = storage.gallery.add_image(
                ImageCreateFactory.build(
                    filename=f"demo_{theme}_run{run.id}_{k}.png",
                    creation_session_id=run.id,
                    training_session_id=lora.id,
                )
            )
            if image.final_score is not None:
                status = CurationStatus.CURATED if image.final_score >= 5 else CurationStatus.REJECTED
                storage.gallery.curate(image.id, status)
            step("gallery", 1)
        storage.gallery.complete_creation(run.id)
