"""``report``: the history read back for learning (``storage.analytics``), as tables and a small chart."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from edi_storage.cli.app import Cli, app, command
from edi_storage.cli.render import JsonFlag, cells, or_none, print_json, table
from edi_storage.vocabulary import Period

report_app = typer.Typer(
    help="Reports over the stored history: feedback, entity labels, trends.", no_args_is_help=True
)
app.add_typer(report_app, name="report")

BLOCKS = "▁▂▃▄▅▆▇█"


def bar(value: float | None, most: float, width: int = 20) -> str:
    """A horizontal bar of ``value`` out of ``most`` (empty for None)."""
    if value is None or most <= 0:
        return ""
    return "█" * max(1 if value > 0 else 0, round(value / most * width))


def sparkline(values: list[float | None]) -> str:
    """One block character per value, from the smallest (▁) to the largest (█); a space for None."""
    known = [v for v in values if v is not None]
    if not known:
        return " " * len(values)
    low, high = min(known), max(known)
    if high == low:
        return "".join(" " if v is None else BLOCKS[3] for v in values)
    return "".join(" " if v is None else BLOCKS[round((v - low) / (high - low) * 7)] for v in values)


@command("feedback", on=report_app)
def report_feedback(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Accept, reject and partial rates, and how often each rating was given."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        summary = storage.analytics.feedback()
    if as_json:
        print_json(summary.model_dump(mode="json"))
        return
    if not summary.total:
        cli.out.print(Text("feedback: none"))
        return
    kinds = table(f"feedback ({summary.total})", "type", "count", "share", "")
    for kind, count in summary.per_type.items():
        rate = summary.rates[kind]
        kinds.add_row(*cells(kind, count, f"{rate}%", bar(rate, 100)))
    cli.out.print(kinds)
    most = max(summary.ratings.values(), default=0)
    ratings = table(f"ratings (average {summary.average_rating or '—'})", "rating", "count", "")
    for rating, count in summary.ratings.items():
        ratings.add_row(*cells("★" * rating, count, bar(count, most)))
    if most:
        cli.out.print(ratings)


@command("labels", on=report_app)
def report_labels(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many labels.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """The entity labels found most often, and how well their sessions' edits validated."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        labels = storage.analytics.labels(limit=limit)
    if as_json:
        print_json([row.model_dump(mode="json") for row in labels])
        return
    result = table("entity labels", "label", "entities", "sessions", "confidence", "alignment", "validations")
    for row in labels:
        result.add_row(
            *cells(
                row.label,
                row.entities,
                row.sessions,
                row.average_confidence,
                row.average_alignment,
                row.validations,
            )
        )
    cli.out.print(or_none(result))


@command("trend", on=report_app)
def report_trend(
    ctx: typer.Context,
    period: Annotated[
        Period, typer.Option(case_sensitive=False, help="One row per UTC day or ISO week.")
    ] = Period.DAY,
    by_model: Annotated[bool, typer.Option(help="A row per model version in each period.")] = False,
    date_from: Annotated[str | None, typer.Option("--from", help="Created at or after (ISO 8601).")] = None,
    date_to: Annotated[
        str | None,
        typer.Option("--to", help="Created at or before this instant (ISO 8601; a date is its midnight)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Sessions, completions, alignment and prompt quality over time, with a sparkline of each."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        points = storage.analytics.trend(period, by_model=by_model, date_from=date_from, date_to=date_to)
    if as_json:
        print_json([p.model_dump(mode="json") for p in points])
        return
    headings = ["period", *(["model"] if by_model else []), "sessions", "completed", "alignment", "quality"]
    result = table(f"per {period.value} (UTC)", *headings)
    most = max((p.sessions for p in points), default=0)
    for p in points:
        model = [p.model_version or "—"] if by_model else []
        result.add_row(*cells(p.period.isoformat(), *model, p.sessions, p.completed, p.average_alignment,
                              p.average_quality), )  # fmt: skip
    cli.out.print(or_none(result))
    if points and not by_model:
        cli.out.print(Text(f"sessions   {sparkline([float(p.sessions) for p in points])}  (most {most})"))
        aligned = [p.average_alignment for p in points]
        known = [a for a in aligned if a is not None]
        span = f"  ({min(known)} to {max(known)})" if known else ""
        cli.out.print(Text(f"alignment  {sparkline(aligned)}{span}"))
