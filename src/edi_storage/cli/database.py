"""``upgrade`` and ``current``: the schema of the database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from edi_storage.cli.app import Cli, command
from edi_storage.cli.render import JsonFlag, cells, print_json
from edi_storage.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from edi_storage.migrate.state import SchemaStatus


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


@command()
def upgrade(
    ctx: typer.Context,
    no_backup: Annotated[
        bool, typer.Option("--no-backup", help="Skip the SQLite backup taken before migrating.")
    ] = False,
) -> None:
    """Migrate the database to the newest schema (a SQLite file is backed up first)."""
    from edi_storage.migrate.safety import last_pre_upgrade_backup

    cli: Cli = ctx.obj
    created = cli.new_sqlite_file()
    with cli.storage(create=True) as storage:
        before = storage.current_revision()
        # None leaves the choice to Settings (EDI_STORAGE_BACKUP_BEFORE_UPGRADE, on by default).
        storage.upgrade(backup=False if no_backup else None)
        after = storage.current_revision()
        backup = last_pre_upgrade_backup(storage.url)
    if backup is not None:
        cli.out.print(Text(f"checked backup before the upgrade: {backup}"))
    if created is not None:
        cli.out.print(Text(f"created {created} at the newest revision: {after}"))
    elif before == after:
        cli.out.print(Text(f"already at the newest revision: {after}"))
    else:
        cli.out.print(Text(f"upgraded: {before or 'none'} -> {after}"))


@command()
def current(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Show the database's schema revision and how it stands against this release."""
    cli: Cli = ctx.obj
    if (missing := cli.new_sqlite_file()) is not None:
        raise DatabaseUnavailable(f"there is no database at {missing}; `edi-storage upgrade` creates one")
    with cli.storage() as storage:
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
    cli.out.print(status_table(url, status))
    from edi_storage.migrate.state import SchemaState

    if status.state in {SchemaState.BEHIND, SchemaState.REFERENCE}:
        cli.out.print(Text("run `edi-storage upgrade` to migrate it", style="yellow"))
