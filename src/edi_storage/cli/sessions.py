"""Reading sessions: ``history``, ``show``, ``stats``, ``audit``, ``perf``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from edi_storage.cli.app import Cli, command
from edi_storage.cli.render import JsonFlag, cells, or_none, print_json, shorten, table
from edi_storage.errors import NotFound
from edi_storage.vocabulary import AuditOperation, OrderBy, SessionStatus

if TYPE_CHECKING:
    from edi_storage.schemas.audit import AuditRecord
    from edi_storage.schemas.sessions import SessionDetail, SessionStatistics, SessionSummary


def history_table(sessions: Sequence[SessionSummary], title: str | None = None) -> Table:
    # The prompt goes under the id, not in a column of its own: `show` needs the id whole, and five
    # columns with a 36-character id do not fit an 80-column terminal.
    result = table(title, "session", "created (UTC)", "status", "score")
    result.columns[0].min_width = 36  # a UUID, unbroken
    for column in result.columns[1:]:
        column.no_wrap = True
    for s in sessions:
        session = Text(s.id)
        session.append("\n" + shorten(s.naive_prompt), style="dim")
        created = s.created_at.strftime("%Y-%m-%d %H:%M")
        result.add_row(session, *cells(created, s.status, s.final_alignment_score))
    return result


def audit_table(entries: Sequence[AuditRecord]) -> Table:
    result = table(
        "audit trail (newest first)", "when (UTC)", "operation", "table", "record", "actor", "changes"
    )
    for column in result.columns[:5]:
        column.no_wrap = True
    for e in entries:
        when = e.timestamp.strftime("%Y-%m-%d %H:%M:%S")
        changed = ", ".join(sorted(e.changes)) if e.operation == "UPDATE" and e.changes else ""
        result.add_row(*cells(when, e.operation, e.table_name, e.record_id, e.user_id, changed))
    return result


def statistics_table(stats: SessionStatistics) -> Table:
    result = table("statistics", "metric", "value")
    result.add_row(*cells("sessions", stats.total_sessions))
    for status, count in sorted(stats.status_breakdown.items()):
        result.add_row(*cells(f"  {status}", count))
    result.add_row(*cells("average alignment score (completed)", stats.average_alignment_score))
    result.add_row(*cells("success rate", f"{stats.successful_rate}%"))
    result.add_row(*cells("average processing time (s)", stats.average_processing_time))
    result.add_row(*cells("created in the last 7 days", stats.recent_sessions_7_days))
    result.add_row(*cells("last change (UTC)", stats.last_updated))
    for table_name, count in stats.table_counts.items():
        if table_name != "sessions":
            result.add_row(*cells(f"{table_name} rows", count))
    return result


def session_view(s: SessionDetail) -> Group:
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column(overflow="fold")
    for label, value in (
        ("image", s.image_path),
        ("prompt", s.naive_prompt),
        ("status", s.status),
        ("score", s.final_alignment_score),
        ("created", s.created_at),
        ("updated", s.updated_at),
        ("processing time (s)", s.processing_time),
        ("model", s.model_version),
        ("tags", ", ".join(s.session_tags) if s.session_tags else None),
        ("user", s.user_id),
        ("project", s.project_id),
        ("metadata", s.session_metadata),
    ):
        summary.add_row(*cells(label, value))

    prompts = table("prompts", "iteration", "positive", "negative", "quality", "time (s)", "confidence")
    for p in s.prompts:
        prompts.add_row(
            *cells(
                p.iteration,
                p.positive_prompt,
                p.negative_prompt,
                p.quality_score,
                p.generation_time,
                p.model_confidence,
            )
        )
    entities = table("entities", "entity", "label", "confidence", "bbox", "area %", "colour")
    for e in s.entities:
        entities.add_row(*cells(e.entity_id, e.label, e.confidence, e.bbox, e.area_percent, e.color_hex))
    validations = table("validations", "attempt", "alignment", "preserved", "modified", "unintended", "note")
    for v in s.validations:
        validations.add_row(
            *cells(
                v.attempt_number,
                v.alignment_score,
                v.preserved_count,
                v.modified_count,
                v.unintended_count,
                v.user_feedback,
            )
        )
    feedback = table("feedback", "type", "rating", "comments", "created")
    for f in s.feedback:
        feedback.add_row(*cells(f.feedback_type, f.rating, f.comments, f.created_at))

    panel = Panel(summary, title=Text(f"session {s.id}"), title_align="left")
    return Group(panel, *(or_none(child) for child in (prompts, entities, validations, feedback)))


@command()
def history(
    ctx: typer.Context,
    *,
    limit: Annotated[int, typer.Option(help="At most this many sessions.")] = 50,
    offset: Annotated[int, typer.Option(help="Skip this many first.")] = 0,
    status: Annotated[
        SessionStatus | None, typer.Option(case_sensitive=False, help="Only sessions in this status.")
    ] = None,
    date_from: Annotated[
        str | None, typer.Option("--from", help="Created at or after (ISO 8601; UTC unless an offset).")
    ] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Created at or before (ISO 8601).")] = None,
    min_score: Annotated[float | None, typer.Option(help="Final alignment score at least this.")] = None,
    search: Annotated[str | None, typer.Option(help="Text in the image path or the prompt.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user's sessions.")] = None,
    project: Annotated[str | None, typer.Option(help="Only this project's sessions.")] = None,
    order_by: Annotated[
        OrderBy, typer.Option(case_sensitive=False, help="The ordering; ties go to the newer id.")
    ] = OrderBy.CREATED_DESC,
    as_json: JsonFlag = False,
) -> None:
    """List sessions, newest first, filtered."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        sessions = storage.sessions.query_history(
            limit=limit,
            offset=offset,
            status_filter=status,
            date_from=date_from,
            date_to=date_to,
            min_score=min_score,
            search_term=search,
            order_by=order_by,
            user_id=user,
            project_id=project,
        )
    if as_json:
        print_json([s.model_dump(mode="json") for s in sessions])
    elif sessions:
        cli.out.print(history_table(sessions))
    else:
        cli.out.print(Text("no sessions match"))


@command()
def show(
    ctx: typer.Context,
    session_id: Annotated[str, typer.Argument(metavar="ID", help="The session id.")],
    as_json: JsonFlag = False,
) -> None:
    """Show one session with its prompts, entities, validations and feedback."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        detail = storage.sessions.load_session(session_id)
    if detail is None:
        raise NotFound("session", session_id)
    if as_json:
        print_json(detail.model_dump(mode="json"))
    else:
        cli.out.print(session_view(detail))


@command()
def stats(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Count sessions per status, with the completed ones' average score."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        statistics = storage.sessions.get_statistics()
    if as_json:
        print_json(statistics.model_dump(mode="json"))
    else:
        cli.out.print(statistics_table(statistics))


@command()
def audit(
    ctx: typer.Context,
    *,
    table_name: Annotated[
        str | None, typer.Option("--table", help="Only this table (e.g. sessions).")
    ] = None,
    record: Annotated[str | None, typer.Option(help="Only this record id.")] = None,
    operation: Annotated[
        AuditOperation | None, typer.Option(case_sensitive=False, help="Only this operation.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="At or after this time (ISO 8601).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many entries.")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """Show the audit trail: who changed which row, when, and how."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        entries = storage.audit.get_audit_trail(
            table_name=table_name, record_id=record, operation=operation, since=since, limit=limit
        )
    if as_json:
        print_json([e.model_dump(mode="json") for e in entries])
    else:
        cli.out.print(or_none(audit_table(entries)))


@command()
def perf(
    ctx: typer.Context,
    hours: Annotated[float, typer.Option(help="Over the last this many hours.")] = 24,
    as_json: JsonFlag = False,
) -> None:
    """Query-performance metrics per query type (recorded when EDI_STORAGE_RECORD_QUERY_PERFORMANCE=1)."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        metrics = storage.maintenance.performance_metrics(hours=hours)
    if as_json:
        print_json([m.model_dump(mode="json") for m in metrics])
        return
    if not metrics:
        cli.out.print(
            Text("no query-performance records; recording is opt-in (EDI_STORAGE_RECORD_QUERY_PERFORMANCE=1)")
        )
        return
    result = table(
        f"query performance, last {hours:g} hours",
        "query type",
        "count",
        "avg ms",
        "max ms",
        "min ms",
        "avg rows",
    )
    for m in metrics:
        result.add_row(
            *cells(
                m.query_type,
                m.count,
                f"{m.avg_time * 1000:.2f}",
                f"{m.max_time * 1000:.2f}",
                f"{m.min_time * 1000:.2f}",
                f"{m.avg_rows:.1f}",
            )
        )
    cli.out.print(result)
