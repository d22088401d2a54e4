"""Rendering shared by the commands: JSON on stdout, plain-text table cells, sizes people read, lists
that stay short, progress bars."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console, RenderableType
from rich.filesize import decimal
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from pydantic import BaseModel

    from edi_storage.cli.app import Cli

PROMPT_WIDTH = 60  # history shows the start of each prompt; `show` and `--json` give it whole


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON only, on stdout.")]
# A report that can list thousands of things (ids, files, tables) prints its counts first and then at
# most this many of each; --all lists every one, and --json always holds them all.
SHOWN = 20
ListLimit = Annotated[int, typer.Option("--limit", min=1, help="List at most this many of each kind.")]
ListAll = Annotated[bool, typer.Option("--all", help="List every one (the counts come first either way).")]


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return str(round(value, 3))
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(", ", ": "))
    return str(value)


def size_text(value: int | None) -> str:
    """Bytes as people read them (``1.2 MB``, powers of 1000 as ``ls -h --si`` and macOS do); ``--json``
    keeps the exact integer."""
    return "—" if value is None else decimal(value)


def listing(console: Console, lines: Sequence[str], *, limit: int | None) -> None:
    """At most ``limit`` lines (all when None), then how many were left out and how to see them."""
    shown = lines if limit is None else lines[:limit]
    for line in shown:
        console.print(Text(f"  {line}"))
    left_out(console, len(lines) - len(shown))


def left_out(console: Console, count: int) -> None:
    """How many a listing or table left out, and how to see them (nothing when none was)."""
    if count > 0:
        console.print(Text(f"  … and {count} more (--all lists every one)", style="dim"))


def or_none(result: Table) -> RenderableType:
    """The table, or its title and "none" when it has no rows (a header over nothing reads as broken)."""
    if result.row_count:
        return result
    return Text(f"{result.title or 'rows'}: none")


def cells(*values: object) -> list[Text]:
    """Plain Text cells: stored strings may hold [brackets], which Rich would take for markup."""
    return [Text(fmt(v)) for v in values]


def shorten(text: str, width: int = PROMPT_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def table(title: str | None, *columns: str) -> Table:
    result = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD)
    for column in columns:
        result.add_column(column, overflow="fold")
    return result


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


Columns = Sequence[tuple[str, Callable[[Any], object]]]
TableOf = Callable[[Sequence[Any], str], Table]  # the items and a title -> the table that shows them


def column_table(columns: Columns) -> TableOf:
    """A table of one row per item and one column per (heading, value of an item)."""

    def draw(items: Sequence[Any], title: str) -> Table:
        result = table(title, *(heading for heading, _ in columns))
        for item in items:
            result.add_row(*cells(*(value(item) for _, value in columns)))
        return result

    return draw


def show_rows(
    cli: Cli, items: Sequence[BaseModel], title: str, draw: TableOf, *, as_json: bool = False
) -> None:
    """A listing as pure JSON (``--json``), or as the table ``draw`` makes of it ("none" when empty)."""
    if as_json:
        print_json([item.model_dump(mode="json") for item in items])
    else:
        cli.out.print(or_none(draw(items, title)))
