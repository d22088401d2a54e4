"""Operations over the whole database: backups, checks, sizes, pruning, files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from edi_storage.cli.app import Cli, command
from edi_storage.cli.render import (
    SHOWN,
    JsonFlag,
    ListAll,
    ListLimit,
    cells,
    fmt,
    left_out,
    listing,
    or_none,
    print_json,
    size_text,
    table,
)


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
    from edi_storage.ops.backups import RetentionPolicy

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
        Text(f"backup {made.path} ({size_text(made.bytes)}, revision {made.revision or 'n/a'}) verified")
    )
    if rotation is not None:
        verb = "would delete" if rotation.dry_run else "deleted"
        cli.out.print(Text(f"rotation: kept {len(rotation.kept)}, {verb} {len(rotation.deleted)}:"))
        listing(cli.out, [str(path) for path in rotation.deleted], limit=None)


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
    from edi_storage.ops.maintenance import Maintenance

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
            "WAL": size_text(report.wal_bytes),
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
        f"database: {size_text(report.database_bytes)}, WAL {size_text(report.wal_bytes)}, "
        f"free pages {fmt(report.free_pages)}"
    )
    result = table(title, "table", "rows", "size")
    for t in report.tables:
        result.add_row(*cells(t.name, t.rows, size_text(t.bytes)))
    cli.out.print(or_none(result))
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


@command()
def vacuum(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Rewrite the database without its free pages (deleting rows alone never shrinks the file)."""
    cli: Cli = ctx.obj
    with cli.storage() as storage:
        report = storage.maintenance.vacuum()
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    before, after = size_text(report.bytes_before), size_text(report.bytes_after)
    if report.freed_bytes is None:
        cli.out.print(
            Text(f"vacuumed: {before} -> {after} (space of dead rows reusable; none returned to the OS)")
        )
    else:
        cli.out.print(Text(f"vacuumed: {before} -> {after}, freed {size_text(report.freed_bytes)}"))


for _name, _summary, _done in (
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
    limit: ListLimit = SHOWN,
    show_all: ListAll = False,
    as_json: JsonFlag = False,
) -> None:
    """Archive old sessions (with their children and audit rows) to JSON Lines, then delete them."""
    from edi_storage.ops.retention import prune as prune_sessions

    cli: Cli = ctx.obj
    with cli.storage() as storage:
        report = prune_sessions(
            storage, archive=archive, older_than_days=older_than_days, max_bytes=max_bytes, dry_run=dry_run
        )
        vacuumed = storage.maintenance.vacuum() if vacuum_after and not dry_run else None
    if as_json:
        print_json({"sessions": report.sessions, "audit_rows": report.audit_rows, "dry_run": report.dry_run,
                    "session_ids": report.session_ids if dry_run else None})  # fmt: skip
        return
    if dry_run and report.sessions:
        cli.out.print(Text(f"would archive and delete {report.sessions} sessions, oldest first:"))
        listing(cli.out, report.session_ids, limit=None if show_all else limit)
    elif not report.sessions:
        cli.out.print(Text("nothing to prune: no session matches"))
    else:
        gone = f"{report.sessions} sessions, {report.audit_rows} audit rows"
        cli.out.print(Text(f"archived to {archive} and deleted {gone}"))
    if vacuumed is not None and vacuumed.freed_bytes is not None:
        cli.out.print(Text(f"vacuumed: freed {size_text(vacuumed.freed_bytes)}"))


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
    limit: ListLimit = SHOWN,
    show_all: ListAll = False,
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
    largest = sorted(report.objects.items(), key=lambda item: -item[1])
    shown = largest if show_all else largest[:limit]
    title = (
        f"health: {size_text(report.database_bytes)}, WAL {size_text(report.wal_bytes)}, "
        f"free pages {fmt(report.free_pages)}; {len(largest)} tables and indexes"
        + ("" if len(shown) == len(largest) else f", the {len(shown)} largest")
    )
    result = table(title, "table or index", "rows", "size", f"growth {since}")
    for name, size in shown:
        growth = report.growth.get(name)
        grew = None if growth is None else ("-" if growth < 0 else "+") + size_text(abs(growth))
        result.add_row(*cells(name, report.rows.get(name), size_text(size), grew))
    cli.out.print(or_none(result))
    left_out(cli.out, len(largest) - len(shown))


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
    limit: ListLimit = SHOWN,
    show_all: ListAll = False,
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
    shown = None if show_all else limit
    missing = [f"{path} ({table_name} {row_id})" for table_name, row_id, path in report.missing]
    for heading, lines in (
        (f"{len(missing)} missing (a row points to them)", missing),
        (f"{len(report.orphans)} orphans (no row points to them)", [str(p) for p in report.orphans]),
        (
            f"{len(report.unsynced_states)} state files of sessions not stored (`edi-storage state sync`)",
            [str(p) for p in report.unsynced_states],
        ),
    ):
        cli.out.print(Text(heading + (":" if lines else "")))
        listing(cli.out, lines, limit=shown)
    if report.orphans:
        cli.out.print(Text(f"to delete the orphans: --delete-orphans {report.token}"))
