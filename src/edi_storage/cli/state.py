"""``state``: session-state files, shown and synced into the database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from edi_storage.cli.app import Cli, app, command
from edi_storage.cli.render import JsonFlag, cells, print_json, progress_bar

state_app = typer.Typer(
    help="Session-state files: show them, sync them into the database.", no_args_is_help=True
)


app.add_typer(state_app, name="state")


@command("show", on=state_app)
def state_show(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="FILE", exists=True, dir_okay=False, help="A state file.")],
    as_json: JsonFlag = False,
) -> None:
    """Show a session-state file, validated (a corrupt or invalid file is an error naming it)."""
    from edi_storage.state import load_state_file

    current_state = load_state_file(file)
    if as_json:
        print_json(current_state.model_dump(mode="json"))
        return
    cli: Cli = ctx.obj
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column(overflow="fold")
    for label, value in (
        ("session", current_state.session_id),
        ("stage", current_state.current_stage),
        ("image", current_state.image_path),
        ("prompt", current_state.naive_prompt),
        ("prompts", ", ".join(current_state.prompts) or None),
        ("entities", len(current_state.scene_analysis.get("entities", []))),
        ("edited image", current_state.edited_image_path),
        ("validation", current_state.validation or None),
        ("last updated", current_state.last_updated),
    ):
        summary.add_row(*cells(label, value))
    cli.out.print(Panel(summary, title=Text(str(file)), title_align="left"))


@command("sync", on=state_app)
def state_sync(
    ctx: typer.Context,
    files: Annotated[
        list[Path], typer.Argument(metavar="FILE", exists=True, dir_okay=False, help="State files.")
    ],
) -> None:
    """Write state files' sessions into the database (created, or replaced: never duplicated).

    Every file is read and validated first, so one bad file leaves the database as it was.
    """
    from edi_storage.state import load_state_file

    cli: Cli = ctx.obj
    states = [load_state_file(path) for path in files]
    with cli.storage() as storage, progress_bar(cli.err) as progress:
        task = progress.add_task("syncing", total=len(states))
        with storage.unit_of_work() as uow:
            for current_state in states:
                uow.sessions.save_from_state(current_state)
                progress.advance(task)
    cli.out.print(Text(f"synced {len(states)} state files into the database"))
