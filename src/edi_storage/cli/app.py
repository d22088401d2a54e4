"""The root command, what every command receives (``Cli``) and the decorator that registers one."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, ParamSpec

import typer
from rich.console import Console
from rich.text import Text

from edi_storage.cli.errors import exit_code, one_line, usage_error
from edi_storage.errors import InvalidInput, StorageError

if TYPE_CHECKING:
    from edi_storage.storage import Storage

P = ParamSpec("P")

# ``-h`` as well as ``--help``, as in git, pip and sqlite-utils: set on the root app, and Click gives
# every sub-command the root's help option names.
CONTEXT = {"help_option_names": ["-h", "--help"]}


def show_version(value: bool) -> None:
    if value:
        from edi_storage import __version__

        print(f"edi-storage {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="edi-storage",
    help="Inspect, migrate, import and export an edi-storage database of image-editing sessions.",
    no_args_is_help=True,
    add_completion=False,
    context_settings=CONTEXT,
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
        from edi_storage.storage import Storage

        return Storage(self.url, create=create)

    def new_sqlite_file(self) -> Path | None:
        """The SQLite file this command would create (Storage creates a missing database at head)."""
        from edi_storage.config import Settings, database_url
        from edi_storage.engine import sqlite_file

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
    version: Annotated[
        bool,
        typer.Option("--version", callback=show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    # None, not the default URL, so that Settings applies EDI_STORAGE_URL exactly as the library does.
    ctx.obj = Cli(url=url, out=Console(), err=Console(stderr=True))


def _context(kwargs: dict[str, object]) -> typer.Context:
    """The command's context: every command takes one as ``ctx``, and Typer passes it by name."""
    ctx = kwargs.get("ctx")
    if ctx is None:
        raise TypeError("a command registered with @command must take ctx: typer.Context")
    return ctx  # type: ignore[return-value]


def fail(error: Exception) -> NoReturn:
    """End the command with the error's one red line on stderr and its exit code."""
    Console(stderr=True).print(Text(f"error: {one_line(error)}", style="red"), soft_wrap=True)
    raise typer.Exit(exit_code(error)) from None


def command(
    name: str | None = None, *, on: typer.Typer = app
) -> Callable[[Callable[P, None]], Callable[P, None]]:
    """``app.command`` whose storage and file errors end as one red line and an exit code, and whose
    invalid input, when it is a value given on the command line, ends as Click's usage error naming
    the flag (exit 2).

    One wrapper for every command, so that no command can forget it and none needs a try/except.
    """

    def register(func: Callable[P, None]) -> Callable[P, None]:
        @functools.wraps(func)
        def run(*args: P.args, **kwargs: P.kwargs) -> None:
            try:
                func(*args, **kwargs)
            except InvalidInput as error:
                mistake = usage_error(error, _context(kwargs))
                if mistake is None:
                    fail(error)
                raise mistake from None
            except (StorageError, OSError) as error:
                fail(error)

        on.command(name)(run)
        return func

    return register
