"""The ``edi-storage`` command: look into a database, move sessions in and out of it, migrate it.

Every command is a thin layer over ``Storage`` and its session service: it opens the database, makes
one or two service calls and renders what comes back, as Rich tables on a terminal or, with ``--json``,
as pure JSON on stdout (messages and progress bars go to stderr, so the JSON can be piped).

Errors the user can fix (a wrong id, a bad file, a database behind the code) are one red line on stderr
and an exit code, never a traceback: 1 for a missing record, invalid input and other storage errors,
2 for a database that cannot be used as it is (schema problems, an unreadable file; Click also uses 2
for a wrong command line). Anything else is a bug, and its traceback is worth seeing.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, ParamSpec

import typer
from pydantic import BaseModel
from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from edi_storage.config import Settings, database_url
from edi_storage.engine import sqlite_file
from edi_storage.errors import (
    Conflict,
    DatabaseUnavailable,
    FieldError,
    InvalidInput,
    NotFound,
    SchemaError,
    StorageError,
)
from edi_storage.migrate.safety import last_pre_upgrade_backup
from edi_storage.migrate.state import SchemaState, SchemaStatus
from edi_storage.models.audit import AuditOperation
from edi_storage.models.gallery import CurationStatus
from edi_storage.models.sessions import SessionStatus
from edi_storage.ops.backups import RetentionPolicy
from edi_storage.ops.maintenance import Maintenance
from edi_storage.ops.transfer import ImportMode, export_all, import_all, import_sessions
from edi_storage.schemas.audit import AuditRecord
from edi_storage.schemas.common import parse
from edi_storage.schemas.gallery import ImageOut
from edi_storage.schemas.library import LibraryPromptOut
from edi_storage.schemas.sessions import (
    OrderBy,
    SessionCreate,
    SessionDetail,
    SessionStatistics,
    SessionSummary,
)
from edi_storage.state import load_state_file
from edi_storage.storage import Storage

P = ParamSpec("P")

PROMPT_WIDTH = 60  # history shows the start of each prompt; `show` and `--json` give it whole
SHOWN_FIELD_ERRORS = 5  # a file with a thousand bad rows should still fail in one readable line

app = typer.Typer(
    name="edi-storage",
    help="Inspect, migrate, import and export an edi-storage database of image-editing sessions.",
    no_args_is_help=True,
    add_completion=False,
)


@dataclass(frozen=True)
class Cli:
    """What every command needs: where the database is and where to print.

    The consoles are made per invocation, not at import, so that they measure the terminal (or
    ``COLUMNS``) they actually print to.
    """

    url: str | None
    out: Console
    err: Console

    def storage(self, *, create: bool = False) -> Storage:
        """The database named by ``--url``. Only ``upgrade`` (and ``demo``, on a new database) may create
        one: every other command refuses a missing file, an empty database or another application's,
        naming the command to run, and leaves it as it was."""
        return Storage(self.url, create=create)

    def new_sqlite_file(self) -> Path | None:
        """The SQLite file this command would create (Storage creates a missing database at head)."""
        path = sqlite_file(database_url(self.url or Settings().url))
        return path if path is not None and not path.exists() else None


@app.callback()
def main(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Database URL. Default: $EDI_STORAGE_URL, else sqlite:///edi_sessions.db.",
            show_default=False,
        ),
    ] = None,
) -> None:
    # None, not the default URL, so that Settings applies EDI_STORAGE_URL exactly as the library does.
    ctx.obj = Cli(url=url, out=Console(), err=Console(stderr=True))


# -- errors ----------------------------------------------------------------------------------------
def exit_code(error: Exception) -> int:
    return 2 if isinstance(error, SchemaError | DatabaseUnavailable) else 1


def one_line(error: Exception) -> str:
    """The message on one line; a long list of field errors is cut, since the first ones say enough."""
    if isinstance(error, InvalidInput) and len(error.errors) > SHOWN_FIELD_ERRORS:
        shown = "; ".join(str(e) for e in error.errors[:SHOWN_FIELD_ERRORS])
        more = len(error.errors) - SHOWN_FIELD_ERRORS
        message = f"{error.context + ': ' if error.context else ''}{shown}; and {more} more"
    else:
        message = str(error)
    return " ".join(message.split())


def command(
    name: str | None = None, *, on: typer.Typer = app
) -> Callable[[Callable[P, None]], Callable[P, None]]:
    """``app.command`` whose storage and file errors end as one red line and an exit code.

    One wrapper for every command, so that no command can forget it and none needs a try/except.
    """

    def register(func: Callable[P, None]) -> Callable[P, None]:
        @functools.wraps(func)
        def run(*args: P.args, **kwargs: P.kwargs) -> None:
            try:
                func(*args, **kwargs)
            except (StorageError, OSError) as error:
                Console(stderr=True).print(Text(f"error: {one_line(error)}", style="red"), soft_wrap=True)
                raise typer.Exit(exit_code(error)) from None

        on.command(name)(run)
        return func

    return register


# -- rendering -------------------------------------------------------------------------------------
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
    return Group(panel, prompts, entities, validations, feedback)


def status_table(url: str, status: SchemaStatus) -> Table:
    result = Table.grid(padding=(0, 2))
    result.add_column(style="bold")
    result.add_column(overflow="fold")
    result.add_row(*cells("database", url))
    result.add_row(*cells("state", status.state))
    result.add_row(*cells("revision", status.revision or "none"))
    result.add_row(*cells("head", status.head))
    for difference in status.differences:
        result.add_row(*cells("difference", difference))
    return result


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


# -- input -----------------------------------------------------------------------------------------
def json_items(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:  # not UTF-8, or not JSON
        raise InvalidInput.single(str(path), "is not a JSON file", str(error)) from None
    return data if isinstance(data, list) else [data]


def read_sessions(paths: Sequence[Path]) -> list[SessionCreate]:
    """Every session of every file, validated before anything is written.

    The service validates each batch on its own; checking everything first means that a typo in the
    last file leaves no earlier batch imported, and the error names the file and the item within it.
    """
    sessions: list[SessionCreate] = []
    errors: list[FieldError] = []
    first_seen: dict[str, str] = {}
    for path in paths:
        for index, item in enumerate(json_items(path)):
            where = f"{path.name}[{index}]"
            try:
                session = parse(SessionCreate, item, prefix=f"{where}.")
            except InvalidInput as error:
                errors.extend(error.errors)
                continue
            if session.id is not None and session.id in first_seen:
                message = f"repeats the id of {first_seen[session.id]}: which one to keep is ambiguous"
                errors.append(FieldError(f"{where}.id", message, session.id))
            elif session.id is not None:
                first_seen[session.id] = where
            sessions.append(session)
    if errors:
        raise InvalidInput(errors, context="nothing imported")
    return sessions


# -- commands --------------------------------------------------------------------------------------
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON only, on stdout.")]


@command()
def upgrade(
    ctx: typer.Context,
    no_backup: Annotated[
        bool, typer.Option("--no-backup", help="Skip the SQLite backup taken before migrating.")
    ] = False,
) -> None:
    """Migrate the database to the newest schema (a SQLite file is backed up first)."""
    state: Cli = ctx.obj
    created = state.new_sqlite_file()
    with state.storage(create=True) as storage:
        before = storage.current_revision()
        # None leaves the choice to Settings (EDI_STORAGE_BACKUP_BEFORE_UPGRADE, on by default).
        storage.upgrade(backup=False if no_backup else None)
        after = storage.current_revision()
        backup = last_pre_upgrade_backup(storage.url)
    if backup is not None:
        state.out.print(Text(f"checked backup before the upgrade: {backup}"))
    if created is not None:
        state.out.print(Text(f"created {created} at the newest revision: {after}"))
    elif before == after:
        state.out.print(Text(f"already at the newest revision: {after}"))
    else:
        state.out.print(Text(f"upgraded: {before or 'none'} -> {after}"))


@command()
def current(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Show the database's schema revision and how it stands against this release."""
    state: Cli = ctx.obj
    if (missing := state.new_sqlite_file()) is not None:
        raise DatabaseUnavailable(f"there is no database at {missing}; `edi-storage upgrade` creates one")
    with state.storage() as storage:
        status = storage.schema_status()
        url = storage.url.render_as_string(hide_password=True)
    if as_json:
        print_json(
            {
                "state": status.state.value,
                "revision": status.revision,
                "head": status.head,
                "differences": status.differences,
            }
        )
        return
    state.out.print(status_table(url, status))
    if status.state in {SchemaState.BEHIND, SchemaState.REFERENCE}:
        state.out.print(Text("run `edi-storage upgrade` to migrate it", style="yellow"))


@command()
def history(
    ctx: typer.Context,
    *,
    limit: Annotated[int, typer.Option(help="At most this many sessions.")] = 50,
    offset: Annotated[int, typer.Option(help="Skip this many first.")] = 0,
    status: Annotated[SessionStatus | None, typer.Option(help="Only sessions in this status.")] = None,
    date_from: Annotated[
        str | None, typer.Option("--from", help="Created at or after (ISO 8601; UTC unless an offset).")
    ] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Created at or before (ISO 8601).")] = None,
    min_score: Annotated[float | None, typer.Option(help="Final alignment score at least this.")] = None,
    search: Annotated[str | None, typer.Option(help="Text in the image path or the prompt.")] = None,
    order_by: Annotated[
        str, typer.Option(help="One of: " + ", ".join(f"'{o.value}'" for o in OrderBy) + ".")
    ] = OrderBy.CREATED_DESC.value,
    as_json: JsonFlag = False,
) -> None:
    """List sessions, newest first, filtered."""
    state: Cli = ctx.obj
    with state.storage() as storage:
        sessions = storage.sessions.query_history(
            limit=limit,
            offset=offset,
            status_filter=status,
            date_from=date_from,
            date_to=date_to,
            min_score=min_score,
            search_term=search,
            order_by=order_by,
        )
    if as_json:
        print_json([s.model_dump(mode="json") for s in sessions])
    elif sessions:
        state.out.print(history_table(sessions))
    else:
        state.out.print(Text("no sessions match"))


@command()
def show(
    ctx: typer.Context,
    session_id: Annotated[str, typer.Argument(metavar="ID", help="The session id.")],
    as_json: JsonFlag = False,
) -> None:
    """Show one session with its prompts, entities, validations and feedback."""
    state: Cli = ctx.obj
    with state.storage() as storage:
        detail = storage.sessions.load_session(session_id)
    if detail is None:
        raise NotFound("session", session_id)
    if as_json:
        print_json(detail.model_dump(mode="json"))
    else:
        state.out.print(session_view(detail))


@command()
def stats(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Count sessions per status, with the completed ones' average score."""
    state: Cli = ctx.obj
    with state.storage() as storage:
        statistics = storage.sessions.get_statistics()
    if as_json:
        print_json(statistics.model_dump(mode="json"))
    else:
        state.out.print(statistics_table(statistics))


@command("import")
def import_(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE",
            exists=True,
            dir_okay=False,
            readable=True,
            help="JSON files of session graphs (one or a list, as `export ID` writes), or .jsonl files "
            "of everything (as `export --all` writes).",
        ),
    ],
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace stored records that differ from the file's.")
    ] = False,
    merge: Annotated[
        bool,
        typer.Option(
            "--merge",
            help="Keep both: new ids for the file's differing sessions, runs and images; library prompts "
            "merged by text (use counts added).",
        ),
    ] = False,
    unverified: Annotated[
        bool,
        typer.Option("--unverified", help="Accept a .jsonl without a trailer (as older releases wrote)."),
    ] = False,
    no_audit: Annotated[
        bool, typer.Option("--no-audit", help="Do not record the imported rows in the audit trail.")
    ] = False,
    actor: Annotated[str | None, typer.Option(help="Who imports, as the audit trail records it.")] = None,
) -> None:
    """Import session graphs, or whole exports (.jsonl). A record that differs from the stored one with
    the same id is a conflict: nothing is imported unless --replace or --merge says what to do."""
    state: Cli = ctx.obj
    if replace and merge:
        raise typer.BadParameter("give --replace or --merge, not both", param_hint="--replace/--merge")
    mode = ImportMode.REPLACE if replace else ImportMode.MERGE if merge else ImportMode.REFUSE
    everything = [f for f in files if f.suffix == ".jsonl"]
    sessions = read_sessions([f for f in files if f.suffix != ".jsonl"])
    imported = 0
    with state.storage() as storage, progress_bar(state.err) as progress:
        tasks: dict[str, TaskID] = {}

        def advance(kind: str, n: int) -> None:
            if kind not in tasks:
                tasks[kind] = progress.add_task(kind, total=None)
            progress.advance(tasks[kind], n)

        audit = not no_audit
        for path in everything:
            report = import_all(
                storage, path, advance, mode=mode, audit=audit, actor=actor, verify=not unverified
            )
            state.err.print(Text(f"{path}: {report.summary()}"))
            imported += report.total("session")
        if sessions:
            report = import_sessions(storage, sessions, mode=mode, audit=audit, actor=actor)
            state.err.print(Text(f"session files: {report.summary()}"))
            imported += report.total("session")
    state.out.print(Text(f"imported {imported} sessions from {len(files)} files"))


@command()
def audit(
    ctx: typer.Context,
    *,
    table_name: Annotated[
        str | None, typer.Option("--table", help="Only this table (e.g. sessions).")
    ] = None,
    record: Annotated[str | None, typer.Option(help="Only this record id.")] = None,
    operation: Annotated[AuditOperation | None, typer.Option(help="Only this operation.")] = None,
    since: Annotated[str | None, typer.Option(help="At or after this time (ISO 8601).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many entries.")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """Show the audit trail: who changed which row, when, and how."""
    state: Cli = ctx.obj
    with state.storage() as storage:
        entries = storage.audit.get_audit_trail(
            table_name=table_name, record_id=record, operation=operation, since=since, limit=limit
        )
    if as_json:
        print_json([e.model_dump(mode="json") for e in entries])
    else:
        state.out.print(audit_table(entries))


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


@command()
def export(
    ctx: typer.Context,
    session_id: Annotated[str | None, typer.Argument(metavar="[ID]", help="The session id.")] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Everything (sessions, library, gallery) as JSON Lines.")
    ] = False,
    out: Annotated[Path | None, typer.Option("--out", dir_okay=False, help="Write here, not stdout.")] = None,
) -> None:
    """Write one session graph as JSON, or with --all everything as JSON Lines; `import` reads both."""
    state: Cli = ctx.obj
    if everything == (session_id is not None):
        raise InvalidInput.single("ID", "give a session id or --all, not both and not neither", session_id)
    if everything:
        with state.storage() as storage, progress_bar(state.err) as progress:
            task = progress.add_task("exporting", total=None)
            handle = out.open("w", encoding="utf-8") if out is not None else sys.stdout
            try:
                counts = export_all(storage, handle, lambda _kind, n: progress.advance(task, n))
            finally:
                if out is not None:
                    handle.close()
        state.err.print(Text("exported " + ", ".join(f"{n} {kind}s" for kind, n in counts.items())))
        return
    assert session_id is not None
    with state.storage() as storage:
        detail = storage.sessions.load_session(session_id)
    if detail is None:
        raise NotFound("session", session_id)
    text = json.dumps(
        detail.as_create().model_dump(mode="json", exclude_none=True), indent=2, ensure_ascii=False
    )
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        state.err.print(Text(f"exported session {session_id} to {out}"))


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
    show_rows(cli, tiers, "gallery quality", QUALITY_COLUMNS)


# -- session-state files ---------------------------------------------------------------------------
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
    cli: Cli = ctx.obj
    states = [load_state_file(path) for path in files]
    with cli.storage() as storage, progress_bar(cli.err) as progress:
        task = progress.add_task("syncing", total=len(states))
        with storage.unit_of_work() as uow:
            for current_state in states:
                uow.sessions.save_from_state(current_state)
                progress.advance(task)
    cli.out.print(Text(f"synced {len(states)} state files into the database"))


# -- prompt library --------------------------------------------------------------------------------
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


def show_prompts(cli: Cli, prompts: Sequence[LibraryPromptOut], title: str, as_json: bool) -> None:
    if as_json:
        print_json([p.model_dump(mode="json") for p in prompts])
    else:
        cli.out.print(library_table(prompts, title))


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
    as_json: JsonFlag = False,
) -> None:
    """Full-text search, best match first."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        found = storage.library.search(query, model=model, limit=limit, offset=offset)
    show_prompts(cli, found, f"prompts matching {query!r}", as_json)


@command("popular", on=library_app)
def library_popular(
    ctx: typer.Context, limit: LimitOption = 10, model: ModelOption = None, as_json: JsonFlag = False
) -> None:
    """The most used prompts."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        show_prompts(cli, storage.library.popular(limit, model=model), "most used prompts", as_json)


@command("recent", on=library_app)
def library_recent(
    ctx: typer.Context, limit: LimitOption = 10, model: ModelOption = None, as_json: JsonFlag = False
) -> None:
    """The most recently used prompts."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        show_prompts(cli, storage.library.recent(limit, model=model), "recently used prompts", as_json)


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
        ("thumbnail bytes", stats_.thumbnail_bytes),
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


# -- gallery ---------------------------------------------------------------------------------------
Columns = Sequence[tuple[str, Callable[[Any], object]]]
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


def show_rows(
    cli: Cli, items: Sequence[BaseModel], title: str, columns: Columns, *, as_json: bool = False
) -> None:
    """A report as pure JSON (``--json``) or as a table of the given columns."""
    if as_json:
        print_json([item.model_dump(mode="json") for item in items])
        return
    result = table(title, *(heading for heading, _ in columns))
    for item in items:
        result.add_row(*cells(*(value(item) for _, value in columns)))
    cli.out.print(result)


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


def show_images(cli: Cli, images: Sequence[ImageOut], title: str, as_json: bool) -> None:
    if as_json:
        print_json([i.model_dump(mode="json") for i in images])
    else:
        cli.out.print(images_table(images, title))


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
    status: Annotated[CurationStatus, typer.Argument(help="pending, curated or rejected.")],
) -> None:
    """Set an image's curation status."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        image = storage.gallery.curate(image_id, status)
    cli.out.print(Text(f"image {image.id} is {image.status.value}"))


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
            show_images(cli, storage.gallery.top(limit), "best curated images", as_json)
        else:
            images = storage.gallery.recent_high_quality(min_score=min_score, limit=limit)
            show_images(cli, images, f"recent curated images scoring {min_score:g}+", as_json)


@command("uncurated", on=gallery_app)
def gallery_uncurated(ctx: typer.Context, limit: LimitOption = 100, as_json: JsonFlag = False) -> None:
    """The curation queue: pending images, oldest first."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        show_images(cli, storage.gallery.uncurated(limit), "pending curation (oldest first)", as_json)


@command("quality", on=gallery_app)
def gallery_quality(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """How curated images spread over Excellent, Good, Fair and Poor."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        tiers = storage.gallery.quality_distribution()
    show_rows(cli, tiers, "quality of curated images", QUALITY_COLUMNS, as_json=as_json)


@command("training", on=gallery_app)
def gallery_training(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """LoRA training runs, newest first."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        runs = storage.gallery.training_statistics()
    show_rows(cli, runs, "training runs", TRAINING_COLUMNS, as_json=as_json)


@command("daily", on=gallery_app)
def gallery_daily(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Creation runs per UTC day: runs, images created and kept, average quality."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        days = storage.gallery.daily_creation_statistics()
    show_rows(cli, days, "daily creation", DAILY_COLUMNS, as_json=as_json)


# -- operations ------------------------------------------------------------------------------------
@command()
def backup(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Option("--dir", file_okay=False, help="Where backups go.")] = Path(
        "backups"
    ),
    compress: Annotated[bool, typer.Option(help="gzip the backup.")] = False,
    rotate: Annotated[
        bool, typer.Option(help="Then delete the backups the retention policy no longer keeps.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="With --rotate: say what would be deleted, delete nothing.")
    ] = False,
    keep_daily: Annotated[
        int, typer.Option(min=0, help="Rotation keeps one backup a day for this many days.")
    ] = 7,
    keep_weekly: Annotated[int, typer.Option(min=0, help="... one a week for this many weeks.")] = 4,
    keep_monthly: Annotated[int, typer.Option(min=0, help="... one a month for this many months.")] = 12,
    as_json: JsonFlag = False,
) -> None:
    """Take a verified backup (SQLite online backup API, or pg_dump), and optionally rotate old ones."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        made = storage.maintenance.backup(directory, compress=compress)
        policy = RetentionPolicy(daily=keep_daily, weekly=keep_weekly, monthly=keep_monthly)
        rotation = storage.maintenance.rotate(directory, dry_run=dry_run, policy=policy) if rotate else None
    if as_json:
        print_json(
            {
                "backup": made.model_dump(mode="json"),
                "rotation": rotation and rotation.model_dump(mode="json"),
            }
        )
        return
    cli.out.print(
        Text(f"backup {made.path} ({made.bytes} bytes, revision {made.revision or 'n/a'}) verified")
    )
    if rotation is not None:
        verb = "would delete" if rotation.dry_run else "deleted"
        cli.out.print(Text(f"rotation: kept {len(rotation.kept)}, {verb} {len(rotation.deleted)}"))
        for path in rotation.deleted:
            cli.out.print(Text(f"  {verb} {path}"))


@command()
def restore(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(metavar="BACKUP", exists=True, dir_okay=False)],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            metavar="FILE|URL",
            help="The SQLite file to restore a .db backup into, or the PostgreSQL URL for a .dump.",
        ),
    ],
    force: Annotated[bool, typer.Option(help="Replace an existing database at --to.")] = False,
) -> None:
    """Restore a backup (checked first) and upgrade it to the newest schema."""
    cli: Cli = ctx.obj
    report = Maintenance.restore(source, to if "://" in to else Path(to), overwrite=force)
    cli.out.print(
        Text(f"restored {source} into {report.target}: {report.revision_before} -> {report.revision_after}")
    )


@command()
def check(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Integrity, foreign keys, schema revision and drift. Exit 0 healthy, 1 problems found, 2 unusable."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        report = storage.maintenance.check()
    if as_json:
        print_json(report.model_dump(mode="json"))
    else:
        facts = {
            "integrity": report.integrity,
            "foreign key violations": report.foreign_key_violations,
            "revision": report.revision,
            "head": report.head,
            "WAL bytes": report.wal_bytes,
        }
        for label, value in facts.items():
            cli.out.print(Text(f"{label}: {fmt(value)}"))
        for problem in report.problems:
            cli.out.print(Text(f"problem: {problem}", style="red"))
        for diff in report.drift:
            cli.out.print(Text(f"  drift: {diff}"))
        for note in report.not_checked:
            cli.out.print(Text(f"not checked: {note}", style="yellow"))
        cli.out.print(Text("healthy" if report.ok else "NOT healthy", style="green" if report.ok else "red"))
    if not report.ok:
        raise typer.Exit(1)


@command()
def size(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The database's size, and rows and bytes per table."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        report = storage.maintenance.size()
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    title = (
        f"database: {fmt(report.database_bytes)} bytes, WAL {fmt(report.wal_bytes)}, "
        f"free pages {fmt(report.free_pages)}"
    )
    result = table(title, "table", "rows", "bytes")
    for t in report.tables:
        result.add_row(*cells(t.name, t.rows, t.bytes))
    cli.out.print(result)
    for note in report.not_available:
        cli.err.print(Text(f"not available: {note}"))


def maintenance_command(name: str, summary: str, done: str) -> None:
    """Register a command that runs one argument-less ``storage.maintenance`` method."""

    def run(ctx: typer.Context) -> None:
        cli: Cli = ctx.obj
        with cli.storage() as storage:
            getattr(storage.maintenance, name)()
        cli.out.print(Text(done))

    run.__doc__ = summary
    run.__name__ = name
    command(name)(run)


for _name, _summary, _done in (
    ("vacuum", "Rewrite the database without its free pages (deleting rows alone never shrinks the file).",
     "vacuumed"),
    ("analyze", "Refresh the query planner's statistics.", "analyzed"),
    ("checkpoint", "Fold the WAL into the database file and truncate it (SQLite).", "checkpointed"),
):  # fmt: skip
    maintenance_command(_name, _summary, _done)


@command()
def prune(
    ctx: typer.Context,
    older_than_days: Annotated[
        float | None, typer.Option(help="Sessions created more than this many days ago.")
    ] = None,
    max_bytes: Annotated[
        int | None, typer.Option(help="Or: the oldest sessions until the file fits this size.")
    ] = None,
    archive: Annotated[
        Path | None, typer.Option(dir_okay=False, help="JSON Lines file the sessions go to first.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Say what would go; archive and delete nothing.")] = False,
    vacuum_after: Annotated[
        bool, typer.Option("--vacuum", help="VACUUM afterwards to shrink the file.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Archive old sessions (with their children and audit rows) to JSON Lines, then delete them."""
    from edi_storage.ops.retention import prune as prune_sessions

    cli: Cli = ctx.obj
    with cli.storage() as storage:
        report = prune_sessions(
            storage, archive=archive, older_than_days=older_than_days, max_bytes=max_bytes, dry_run=dry_run
        )
        if vacuum_after and not dry_run:
            storage.maintenance.vacuum()
    if as_json:
        print_json({"sessions": report.sessions, "audit_rows": report.audit_rows, "dry_run": report.dry_run,
                    "session_ids": report.session_ids if dry_run else None})  # fmt: skip
        return
    if dry_run:
        cli.out.print(Text(f"would archive and delete {report.sessions} sessions:"))
        for session_id in report.session_ids:
            cli.out.print(Text(f"  {session_id}"))
    else:
        gone = f"{report.sessions} sessions, {report.audit_rows} audit rows"
        cli.out.print(Text(f"archived to {archive} and deleted {gone}"))


@command()
def health(
    ctx: typer.Context,
    history: Annotated[
        Path | None,
        typer.Option(
            "--history",
            dir_okay=False,
            help="Compare with the report kept in this file, and keep this one there (growth over time).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Bytes per table and index, WAL, free pages, rows, and (with --history) growth since last time."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        report = storage.maintenance.health(history)
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    for note in report.not_available:
        cli.err.print(Text(f"not available: {note}"))
    since = f"since {report.previous_at:%Y-%m-%d %H:%M}" if report.previous_at else "(first report)"
    title = (
        f"health: {fmt(report.database_bytes)} bytes, WAL {fmt(report.wal_bytes)}, "
        f"free pages {fmt(report.free_pages)}"
    )
    result = table(title, "table or index", "rows", "bytes", f"growth {since}")
    for name, size in sorted(report.objects.items(), key=lambda item: -item[1]):
        result.add_row(*cells(name, report.rows.get(name), size, report.growth.get(name)))
    cli.out.print(result)


@command()
def files(
    ctx: typer.Context,
    folders: Annotated[
        list[Path],
        typer.Option("--dir", exists=True, file_okay=False, help="A managed folder (repeatable)."),
    ],
    gallery_dir: Annotated[
        Path | None, typer.Option(exists=True, file_okay=False, help="Where gallery images live.")
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(exists=True, file_okay=False, help="Where session-state files live (never orphans)."),
    ] = None,
    delete_orphans: Annotated[
        str | None, typer.Option(metavar="TOKEN", help="Delete the orphans of the report that printed TOKEN.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Files rows point to that are missing, and files in the managed folders no row points to.

    Report only; deleting orphans takes the token a report printed, so it always follows a dry run.
    """
    from edi_storage.ops.files import check_files
    from edi_storage.ops.files import delete_orphans as remove

    cli: Cli = ctx.obj
    with cli.storage() as storage:
        if delete_orphans is not None:
            deleted = remove(storage, folders, delete_orphans, gallery_dir, state_dir)
            cli.out.print(Text(f"deleted {len(deleted)} orphan files"))
            return
        report = check_files(storage, folders, gallery_dir, state_dir)
    if as_json:
        print_json(
            {
                "missing": report.missing,
                "orphans": [str(p) for p in report.orphans],
                "unsynced_states": [str(p) for p in report.unsynced_states],
                "token": report.token,
            }
        )
        return
    for table_name, row_id, missing_path in report.missing:
        cli.out.print(Text(f"missing: {missing_path} ({table_name} {row_id})"))
    for orphan in report.orphans:
        cli.out.print(Text(f"orphan: {orphan}"))
    for state_file in report.unsynced_states:
        cli.out.print(
            Text(f"state file of a session not stored (run `edi-storage state sync`): {state_file}")
        )
    summary = f"{len(report.missing)} missing, {len(report.orphans)} orphans"
    if report.orphans:
        summary += f"; to delete these orphans: --delete-orphans {report.token}"
    cli.out.print(Text(summary))


# -- the HTTP API ----------------------------------------------------------------------------------
API_EXTRA = "pip install 'edi-storage[api]'"
API_MODULES = ("fastapi", "uvicorn", "python_multipart")


def missing_api_modules() -> list[str]:
    """The modules of the ``api`` extra that cannot be imported (imported here, only for ``serve``)."""
    missing = []
    for name in API_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


@command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="The interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="The TCP port.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="EDI_STORAGE_API_TOKEN",
            help="Every request but /health must carry 'Authorization: Bearer TOKEN'. "
            "Required unless --host is loopback.",
            show_default=False,
        ),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            help="A Host header to accept besides localhost, 127.0.0.1, ::1 and --host (repeatable): "
            "the names clients use to reach the server.",
            show_default=False,
        ),
    ] = None,
    max_body_bytes: Annotated[
        int, typer.Option(min=1024, help="The largest request body; image uploads may be 33 MiB.")
    ] = 1024 * 1024,
    header_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds a request's line and headers may take to arrive.")
    ] = 10.0,
    keep_alive: Annotated[int, typer.Option(min=1, help="Seconds an idle connection stays open.")] = 5,
    limit_concurrency: Annotated[
        int, typer.Option(min=1, help="Connections at once; beyond them uvicorn answers 503.")
    ] = 256,
) -> None:
    """Serve the HTTP API (/api/sessions, /api/prompts, /api/gallery, /health; OpenAPI at /docs) with
    uvicorn. Refuses a database that is not at the code's schema (run `edi-storage upgrade`), and any
    interface but loopback without a token."""
    cli: Cli = ctx.obj
    if missing := missing_api_modules():
        cli.err.print(
            Text(f"error: the HTTP API needs the api extra ({', '.join(missing)} missing): {API_EXTRA}",
                 style="red"),
            soft_wrap=True,
        )  # fmt: skip
        raise typer.Exit(1)
    from edi_storage.api import create_app
    from edi_storage.api.guards import is_loopback
    from edi_storage.api.server import ServerLimits, run

    if not token and not is_loopback(host):
        cli.err.print(
            Text(f"error: --host {host} serves every session, image and prompt to the network: set a token "
                 "(--token or EDI_STORAGE_API_TOKEN), or serve on 127.0.0.1", style="red"),
            soft_wrap=True,
        )  # fmt: skip
        raise typer.Exit(2)
    # Opened here, without creating or migrating anything (errors end as one line); closed at shutdown.
    application = create_app(
        url=cli.url,
        token=token or "",
        allowed_hosts=[host, *(allowed_host or [])],
        max_body_bytes=max_body_bytes,
    )
    auth = "bearer token required" if token else "no token: loopback only"
    cli.err.print(Text(f"serving {application.title} on http://{host}:{port} (OpenAPI at /docs; {auth})"))
    run(
        application,
        host,
        port,
        ServerLimits(
            header_timeout=header_timeout, keep_alive=keep_alive, limit_concurrency=limit_concurrency
        ),
    )
