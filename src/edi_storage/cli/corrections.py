"""Correcting a stored session one record at a time: ``tags``, ``metadata``, ``row update|delete``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from edi_storage.cli.app import Cli, app, command
from edi_storage.cli.render import JsonFlag, print_json
from edi_storage.errors import InvalidInput
from edi_storage.vocabulary import ChildKind

SessionArgument = Annotated[str, typer.Argument(metavar="ID", help="The session id.")]

row_app = typer.Typer(
    help="One prompt, entity, validation or feedback row of a session.", no_args_is_help=True
)
app.add_typer(row_app, name="row")


@command()
def tags(
    ctx: typer.Context,
    session_id: SessionArgument,
    add: Annotated[list[str] | None, typer.Option("--add", help="A tag to add (repeatable).")] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="A tag to remove (repeatable).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Add and remove a session's tags in one transaction, and print them."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        result = storage.sessions.change_tags(session_id, add or [], remove or [])
    if as_json:
        print_json(result)
    else:
        cli.out.print(Text(", ".join(result) if result else "no tags"))


def _key_value(pair: str) -> tuple[str, Any]:
    """``key=value``: the value as JSON when it parses (``n=3``, ``on=true``), else as text."""
    key, sep, raw = pair.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"must be KEY=VALUE (got {pair!r})", param_hint="'--set'")
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


@command()
def metadata(
    ctx: typer.Context,
    session_id: SessionArgument,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="KEY=VALUE", help="Set a key (repeatable; JSON values)."),
    ] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="A key to remove (repeatable).")
    ] = None,
) -> None:
    """Set and remove a session's metadata keys in one transaction, and print the metadata."""
    cli: Cli = ctx.obj
    values = dict(_key_value(pair) for pair in set_ or [])
    with cli.storage() as storage:
        result = storage.sessions.change_metadata(session_id, values, remove or [])
    print_json(result)  # metadata is JSON: printed as such, with or without --json


KindArgument = Annotated[
    ChildKind, typer.Argument(case_sensitive=False, help="prompt, entity, validation or feedback.")
]
RowArgument = Annotated[
    int, typer.Argument(metavar="ROW_ID", help="The row's id (as `show --json` gives it).")
]


@command("update", on=row_app)
def row_update(
    ctx: typer.Context,
    kind: KindArgument,
    row_id: RowArgument,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", dir_okay=False, help="The row as JSON (as `show --json` gives it); - for stdin."
        ),
    ],
    session: Annotated[str | None, typer.Option(help="Only if the row belongs to this session.")] = None,
) -> None:
    """Replace one row's fields with those of FILE (validated whole, as when adding one)."""
    cli: Cli = ctx.obj
    if str(file) != "-" and not file.is_file():  # not exists=True: Click would take "-" for a file
        raise typer.BadParameter(f"file {str(file)!r} does not exist.", param_hint="'FILE'")
    text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except ValueError as error:
        raise InvalidInput.single("file", "is not JSON", str(error)) from None
    if not isinstance(data, dict):
        raise InvalidInput.single("file", "must hold one JSON object (a row)", type(data).__name__)
    # What `show --json` prints carries the row's id and session, which are not fields to set.
    data = {k: v for k, v in data.items() if k not in {"id", "session_id", "updated_at"}}
    with cli.storage() as storage:
        storage.sessions.update_child(kind.value, row_id, data, session_id=session)
    cli.out.print(Text(f"updated {kind.value} {row_id}"))


@command("delete", on=row_app)
def row_delete(
    ctx: typer.Context,
    kind: KindArgument,
    row_id: RowArgument,
    session: Annotated[str | None, typer.Option(help="Only if the row belongs to this session.")] = None,
) -> None:
    """Delete one row (the rest of its session stays)."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        storage.sessions.delete_child(kind.value, row_id, session_id=session)
    cli.out.print(Text(f"deleted {kind.value} {row_id}"))
