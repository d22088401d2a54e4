"""``demo``: a new database filled with realistic data, then shown."""

from __future__ import annotations

import importlib.util
from typing import Annotated

import typer
from rich.text import Text

from edi_storage.cli.app import Cli, command
from edi_storage.cli.gallery import QUALITY_COLUMNS, images_table
from edi_storage.cli.library import library_table
from edi_storage.cli.render import column_table, progress_bar, show_rows
from edi_storage.cli.sessions import history_table, statistics_table
from edi_storage.errors import Conflict


@command()
def demo(
    ctx: typer.Context,
    sessions: Annotated[int, typer.Option(min=0, help="How many sessions to generate.")] = 200,
    seed_value: Annotated[int, typer.Option("--seed", help="Same seed, same sessions (same ids).")] = 1,
    force: Annotated[
        bool, typer.Option("--force", help="Add the demo data to a database that already holds sessions.")
    ] = False,
) -> None:
    """Fill a new database with realistic sessions, the prompt library and a gallery, then show them."""
    # Imported here: factory-boy, Faker and Pillow take a while to import and only this command needs them.
    cli: Cli = ctx.obj
    if importlib.util.find_spec("factory") is None:
        cli.err.print(
            Text("error: the demo needs the testing extra: pip install 'edi-storage[testing]'", style="red")
        )
        raise typer.Exit(1)
    from edi_storage.testing.demo import populate

    with cli.storage(create=True) as storage:
        if not force and storage.sessions.get_session_count():
            raise Conflict(
                f"the database at {storage.url.render_as_string(hide_password=True)} already holds sessions; "
                "the demo fills a new database (give --url sqlite:///demo.db), or --force to add to this one"
            )
        cli.err.print(Text(f"database: {storage.url.render_as_string(hide_password=True)}"))
        with progress_bar(cli.err) as progress:
            tasks = {
                "sessions": progress.add_task("sessions", total=sessions),
                "library": progress.add_task("library", total=max(1, sessions // 4) if sessions else 0),
                "gallery": progress.add_task("gallery", total=15),
            }
            populate(storage, sessions=sessions, seed_value=seed_value,
                     advance=lambda task, n: progress.advance(tasks[task], n))  # fmt: skip
        recent = storage.sessions.get_recent_sessions(10)
        statistics = storage.sessions.get_statistics()
        popular = storage.library.popular(5)
        best = storage.gallery.top(5)
        tiers = storage.gallery.quality_distribution()
    cli.out.print(history_table(recent, title="most recent sessions"))
    cli.out.print(statistics_table(statistics))
    cli.out.print(library_table(popular, "most used prompts in the library"))
    cli.out.print(images_table(best, "best curated images in the gallery"))
    show_rows(cli, tiers, "gallery quality", column_table(QUALITY_COLUMNS))
