"""``gallery``: generated images, curation, training and creation runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from edi_storage.cli.app import Cli, app, command
from edi_storage.cli.library import LimitOption
from edi_storage.cli.render import (
    Columns,
    JsonFlag,
    cells,
    column_table,
    or_none,
    print_json,
    shorten,
    show_rows,
    table,
)
from edi_storage.vocabulary import CurationStatus

if TYPE_CHECKING:
    from edi_storage.schemas.gallery import ImageOut

QUALITY_COLUMNS: Columns = [
    ("tier", lambda t: t.quality_tier),
    ("images", lambda t: t.count),
    ("average score", lambda t: t.avg_score),
]


TRAINING_COLUMNS: Columns = [
    ("name", lambda r: r.name),
    ("dataset", lambda r: r.dataset_size),
    ("final loss", lambda r: r.final_loss),
    ("hours", lambda r: r.training_hours),
    ("status", lambda r: r.status),
]


DAILY_COLUMNS: Columns = [
    ("date", lambda d: d.date),
    ("runs", lambda d: d.sessions),
    ("created", lambda d: d.total_created),
    ("kept", lambda d: d.total_kept),
    ("avg quality", lambda d: d.avg_quality),
]


gallery_app = typer.Typer(
    help="The gallery: generated images, curation, training and creation runs.", no_args_is_help=True
)


app.add_typer(gallery_app, name="gallery")


def images_table(images: Sequence[ImageOut], title: str) -> Table:
    # The prompt goes under the file name (as in `history`), so the table fits 80 columns.
    result = table(title, "id", "image", "score", "status", "created (UTC)")
    for index in (0, 2, 3, 4):
        result.columns[index].no_wrap = True
    for i in images:
        image = Text(i.filename)
        image.append("\n" + shorten(i.prompt), style="dim")
        status = f"{i.status.value}, featured" if i.is_featured else i.status.value
        created = i.created_at.strftime("%Y-%m-%d %H:%M")
        result.add_row(Text(str(i.id)), image, *cells(i.final_score, status, created))
    return result


@command("add", on=gallery_app)
def gallery_add(
    ctx: typer.Context,
    filename: Annotated[str, typer.Argument(metavar="FILENAME", help="Unique image file name.")],
    prompt: Annotated[str, typer.Option(help="The generation prompt.")],
    model_id: Annotated[str, typer.Option("--model", help="The model that made it.")],
    final_score: Annotated[float | None, typer.Option("--score", help="Overall score, 0-10.")] = None,
    tags: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")] = None,
    creation_run: Annotated[int | None, typer.Option(help="The creation run it belongs to.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Add a generated image (pending curation)."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        image = storage.gallery.add_image(
            {"filename": filename, "prompt": prompt, "model_id": model_id, "final_score": final_score,
             "tags": tags, "creation_session_id": creation_run}
        )  # fmt: skip
    if as_json:
        print_json(image.model_dump(mode="json"))
    else:
        cli.out.print(Text(f"image {image.id}: {image.filename} ({image.status.value})"))


@command("curate", on=gallery_app)
def gallery_curate(
    ctx: typer.Context,
    image_id: Annotated[int, typer.Argument(metavar="ID")],
    status: Annotated[
        CurationStatus, typer.Argument(case_sensitive=False, help="pending, curated or rejected.")
    ],
) -> None:
    """Set an image's curation status."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        image = storage.gallery.curate(image_id, status)
    cli.out.print(Text(f"image {image.id} is {image.status.value}"))


@command("scores", on=gallery_app)
def gallery_scores(
    ctx: typer.Context,
    image_id: Annotated[int, typer.Argument(metavar="ID")],
    aesthetic_score: Annotated[float | None, typer.Option("--aesthetic", help="0 to 10.")] = None,
    clip_score: Annotated[float | None, typer.Option("--clip", help="0 to 1.")] = None,
    technical_score: Annotated[float | None, typer.Option("--technical", help="0 to 1.")] = None,
    final_score: Annotated[float | None, typer.Option("--final", help="0 to 10.")] = None,
) -> None:
    """Set an image's scores after it was added (the ones not given are kept)."""
    given = {
        "aesthetic_score": aesthetic_score,
        "clip_score": clip_score,
        "technical_score": technical_score,
        "final_score": final_score,
    }
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        image = storage.gallery.update_scores(image_id, {k: v for k, v in given.items() if v is not None})
    cli.out.print(or_none(images_table([image], f"image {image.id}")))


@command("delete", on=gallery_app)
def gallery_delete(
    ctx: typer.Context,
    image_id: Annotated[int, typer.Argument(metavar="ID")],
    gallery_dir: Annotated[
        Path | None,
        typer.Option(exists=True, file_okay=False, help="Also delete the image's file in this folder."),
    ] = None,
) -> None:
    """Delete an image from the gallery; its file too when --gallery-dir says where it is."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        report = storage.gallery.delete_image(image_id, gallery_dir=gallery_dir)
    if report.file_deleted is not None:
        what = f", and its file {report.file_deleted}"
    elif report.file_missing:
        what = f"; its file was not in {gallery_dir}"
    else:
        what = " (its file, if any, is kept: --gallery-dir deletes it)"
    cli.out.print(Text(f"deleted image {image_id} ({report.image.filename}){what}"))


@command("feature", on=gallery_app)
def gallery_feature(
    ctx: typer.Context,
    image_id: Annotated[int, typer.Argument(metavar="ID")],
    off: Annotated[bool, typer.Option("--off", help="Unfeature it instead.")] = False,
) -> None:
    """Feature an image in the gallery (or, with --off, stop featuring it)."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        image = storage.gallery.feature(image_id, featured=not off)
    cli.out.print(Text(f"image {image.id} {'is' if image.is_featured else 'is not'} featured"))


@command("top", on=gallery_app)
def gallery_top(
    ctx: typer.Context,
    limit: LimitOption = 10,
    min_score: Annotated[float | None, typer.Option(help="Recent curated images at least this good.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The best curated images (or, with --min-score, the most recent at least that good)."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        if min_score is None:
            show_rows(cli, storage.gallery.top(limit), "best curated images", images_table, as_json=as_json)
        else:
            images = storage.gallery.recent_high_quality(min_score=min_score, limit=limit)
            show_rows(
                cli, images, f"recent curated images scoring {min_score:g}+", images_table, as_json=as_json
            )


@command("uncurated", on=gallery_app)
def gallery_uncurated(ctx: typer.Context, limit: LimitOption = 100, as_json: JsonFlag = False) -> None:
    """The curation queue: pending images, oldest first."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        show_rows(
            cli,
            storage.gallery.uncurated(limit),
            "pending curation (oldest first)",
            images_table,
            as_json=as_json,
        )


@command("quality", on=gallery_app)
def gallery_quality(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """How curated images spread over Excellent, Good, Fair and Poor."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        tiers = storage.gallery.quality_distribution()
    show_rows(cli, tiers, "quality of curated images", column_table(QUALITY_COLUMNS), as_json=as_json)


@command("training", on=gallery_app)
def gallery_training(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """LoRA training runs, newest first."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        runs = storage.gallery.training_statistics()
    show_rows(cli, runs, "training runs", column_table(TRAINING_COLUMNS), as_json=as_json)


@command("daily", on=gallery_app)
def gallery_daily(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Creation runs per UTC day: runs, images created and kept, average quality."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        days = storage.gallery.daily_creation_statistics()
    show_rows(cli, days, "daily creation", column_table(DAILY_COLUMNS), as_json=as_json)
