"""``library``: the prompt library."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from edi_storage.cli.app import Cli, app, command
from edi_storage.cli.render import JsonFlag, cells, print_json, shorten, show_rows, size_text, table

if TYPE_CHECKING:
    from edi_storage.schemas.library import LibraryPromptOut

library_app = typer.Typer(
    help="The prompt library: deduplicated prompts with thumbnails.", no_args_is_help=True
)


app.add_typer(library_app, name="library")


ModelOption = Annotated[str | None, typer.Option("--model", help="Only prompts of this model.")]


LimitOption = Annotated[int, typer.Option(help="At most this many.")]


def library_table(prompts: Sequence[LibraryPromptOut], title: str) -> Table:
    # Only the prompt may wrap; every other column is short.
    result = table(title, "id", "prompt", "uses", "model", "thumbnail", "last used (UTC)")
    result.columns[1].min_width = 20
    for index in (0, 2, 3, 4, 5):
        result.columns[index].no_wrap = True
    for p in prompts:
        thumb = f"{p.thumbnail_width}x{p.thumbnail_height}" if p.thumbnail_bytes else None
        when = p.last_used_at.strftime("%Y-%m-%d %H:%M")
        result.add_row(*cells(p.id, shorten(p.prompt_text), p.total_uses, p.model, thumb, when))
    return result


@command("add", on=library_app)
def library_add(
    ctx: typer.Context,
    prompt_text: Annotated[str, typer.Argument(metavar="TEXT", help="The prompt.")],
    model: Annotated[str | None, typer.Option(help="The model that used it.")] = None,
    image: Annotated[
        Path | None, typer.Option(dir_okay=False, help="An image it made, for the thumbnail.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Record one use of a prompt (a new prompt, or one more use of a stored one)."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        recorded = storage.library.record_prompt(prompt_text, model=model, image_path=image)
    if as_json:
        print_json(recorded.model_dump(mode="json"))
        return
    cli.out.print(Text(f"prompt {recorded.id}: {recorded.total_uses} uses"))
    if recorded.thumbnail_error:
        cli.err.print(Text(f"no thumbnail: {recorded.thumbnail_error}", style="yellow"))


@command("search", on=library_app)
def library_search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(metavar="QUERY", help="Words the prompt must contain.")],
    model: ModelOption = None,
    limit: LimitOption = 20,
    offset: Annotated[int, typer.Option(help="Skip this many first.")] = 0,
    prefix: Annotated[
        bool, typer.Option(help="Match word starts (sun finds sunset), most used first.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Full-text search, best match first."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        found = storage.library.search(query, model=model, limit=limit, offset=offset, prefix=prefix)
    show_rows(cli, found, f"prompts matching {query!r}", library_table, as_json=as_json)


@command("popular", on=library_app)
def library_popular(
    ctx: typer.Context, limit: LimitOption = 10, model: ModelOption = None, as_json: JsonFlag = False
) -> None:
    """The most used prompts."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        show_rows(
            cli,
            storage.library.popular(limit, model=model),
            "most used prompts",
            library_table,
            as_json=as_json,
        )


@command("recent", on=library_app)
def library_recent(
    ctx: typer.Context, limit: LimitOption = 10, model: ModelOption = None, as_json: JsonFlag = False
) -> None:
    """The most recently used prompts."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        recent = storage.library.recent(limit, model=model)
        show_rows(cli, recent, "recently used prompts", library_table, as_json=as_json)


@command("show", on=library_app)
def library_show(
    ctx: typer.Context, prompt_id: Annotated[int, typer.Argument(metavar="ID")], as_json: JsonFlag = False
) -> None:
    """One prompt, whole."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        prompt = storage.library.get(prompt_id)
    if as_json:
        print_json(prompt.model_dump(mode="json"))
        return
    cli.out.print(library_table([prompt], f"prompt {prompt_id}"))
    cli.out.print(Text(prompt.prompt_text))


@command("thumbnail", on=library_app)
def library_thumbnail(
    ctx: typer.Context,
    prompt_id: Annotated[int, typer.Argument(metavar="ID")],
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="Write the image here.")],
) -> None:
    """Write a prompt's thumbnail to a file."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        data, mime = storage.library.get_thumbnail(prompt_id)
    out.write_bytes(data)
    cli.out.print(Text(f"wrote {len(data)} bytes of {mime} to {out}"))


@command("stats", on=library_app)
def library_stats(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """How many prompts, uses and thumbnail bytes, per model."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        stats_ = storage.library.stats()
    if as_json:
        print_json(stats_.model_dump(mode="json"))
        return
    result = table("prompt library", "metric", "value")
    for label, value in (
        ("prompts", stats_.total_prompts),
        ("uses", stats_.total_uses),
        ("prompts with thumbnails", stats_.prompts_with_thumbnails),
        ("thumbnail bytes", size_text(stats_.thumbnail_bytes)),
    ):
        result.add_row(*cells(label, value))
    for model, usage in sorted(stats_.per_model.items()):
        result.add_row(*cells(f"  {model}", f"{usage.prompts} prompts, {usage.uses} uses"))
    cli.out.print(result)


@command("cleanup", on=library_app)
def library_cleanup(
    ctx: typer.Context,
    older_than_days: Annotated[
        float | None, typer.Option(help="Last used more than this many days ago.")
    ] = None,
    without_thumbnail: Annotated[bool, typer.Option(help="Having no thumbnail.")] = False,
) -> None:
    """Delete prompts matching every criterion given (at least one is required)."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        deleted = storage.library.cleanup(
            older_than_days=older_than_days, without_thumbnail=without_thumbnail
        )
    cli.out.print(Text(f"deleted {deleted} prompts"))
