"""Moving data in and out: ``import`` and ``export``."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import TaskID
from rich.text import Text

from edi_storage.cli.app import Cli, command
from edi_storage.cli.render import progress_bar
from edi_storage.errors import FieldError, InvalidInput, NotFound

if TYPE_CHECKING:
    from edi_storage.ops.transfer import ImportMode
    from edi_storage.schemas.sessions import SessionCreate


def json_items(path: Path, name: str | None = None) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:  # not UTF-8, or not JSON
        raise InvalidInput.single(name or str(path), "is not a JSON file", str(error)) from None
    return data if isinstance(data, list) else [data]


STDIN = Path("-")
STDIN_NAME = "standard input"


def spool_stdin(directory: Path) -> Path:
    """Standard input copied to a file in ``directory`` (a pipe can be read once, and an export is read
    twice: checked whole, then written), in chunks, never whole in memory. Named ``stdin.jsonl`` when
    its first line is an export's record (``{"kind": ...}``), else ``stdin.json`` (session graphs)."""
    first = sys.stdin.buffer.readline()
    try:
        record = json.loads(first)
    except ValueError:
        record = None
    path = directory / ("stdin.jsonl" if isinstance(record, dict) and "kind" in record else "stdin.json")
    with path.open("wb") as spooled:
        spooled.write(first)
        shutil.copyfileobj(sys.stdin.buffer, spooled)
    return path


@contextmanager
def written_atomically(target: Path) -> Iterator[IO[str]]:
    """A file that becomes ``target`` only once everything is written: a failure half-way leaves an
    existing ``target`` as it was (``--force`` replaces a file, it does not truncate one first)."""
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed below, on both paths)
        "w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            yield handle
        os.replace(handle.name, target)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def read_sessions(paths: Sequence[Path], names: dict[Path, str] | None = None) -> list[SessionCreate]:
    """Every session of every file, validated before anything is written.

    The service validates each batch on its own; checking everything first means that a typo in the
    last file leaves no earlier batch imported, and the error names the file and the item within it.
    """
    from edi_storage.schemas.common import parse
    from edi_storage.schemas.sessions import SessionCreate

    sessions: list[SessionCreate] = []
    errors: list[FieldError] = []
    first_seen: dict[str, str] = {}
    for path in paths:
        name = (names or {}).get(path, path.name)
        for index, item in enumerate(json_items(path, (names or {}).get(path))):
            where = f"{name}[{index}]"
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


@command("import")
def import_(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE",
            dir_okay=False,
            help="JSON files of session graphs (one or a list, as `export ID` writes), or .jsonl files "
            "of everything (as `export --all` writes); - reads either from standard input.",
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
    from edi_storage.ops.transfer import ImportMode

    cli: Cli = ctx.obj
    if replace and merge:
        raise typer.BadParameter("give --replace or --merge, not both", param_hint="--replace/--merge")
    mode = ImportMode.REPLACE if replace else ImportMode.MERGE if merge else ImportMode.REFUSE
    # Checked here rather than by Click's exists=True, which takes "-" for a missing file.
    if files.count(STDIN) > 1:
        raise typer.BadParameter("names standard input (-) more than once", param_hint="'FILE'")
    for path in files:
        if path != STDIN and not path.is_file():
            raise typer.BadParameter(f"file {str(path)!r} does not exist.", param_hint="'FILE'")
    with tempfile.TemporaryDirectory(prefix="edi-storage-import-") as spool:
        names = {spool_stdin(Path(spool)): STDIN_NAME} if STDIN in files else {}
        files = [next(iter(names)) if f == STDIN else f for f in files]
        imported = _import(cli, files, names, mode, audit=not no_audit, actor=actor, verify=not unverified)
    cli.out.print(Text(f"imported {imported} sessions from {len(files)} files"))


def _import(
    cli: Cli,
    files: list[Path],
    names: dict[Path, str],
    mode: ImportMode,
    *,
    audit: bool,
    actor: str | None,
    verify: bool,
) -> int:
    """The sessions imported from these files (.jsonl exports first, then session graphs); ``names``:
    what to call a file in messages (standard input, spooled)."""
    from edi_storage.ops.transfer import import_all, import_sessions

    everything = [f for f in files if f.suffix == ".jsonl"]
    sessions = read_sessions([f for f in files if f.suffix != ".jsonl"], names)
    imported = 0
    with cli.storage() as storage, progress_bar(cli.err) as progress:
        tasks: dict[str, TaskID] = {}

        def advance(kind: str, n: int) -> None:
            if kind not in tasks:
                tasks[kind] = progress.add_task(kind, total=None)
            progress.advance(tasks[kind], n)

        for path in everything:
            report = import_all(storage, path, advance, mode=mode, audit=audit, actor=actor, verify=verify)
            cli.err.print(Text(f"{names.get(path, str(path))}: {report.summary()}"))
            imported += report.total("session")
        if sessions:
            report = import_sessions(storage, sessions, mode=mode, audit=audit, actor=actor)
            cli.err.print(Text(f"session files: {report.summary()}"))
            imported += report.total("session")
    return imported


@command()
def export(
    ctx: typer.Context,
    session_id: Annotated[str | None, typer.Argument(metavar="[ID]", help="The session id.")] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Everything (sessions, library, gallery) as JSON Lines.")
    ] = False,
    out: Annotated[Path | None, typer.Option("--out", dir_okay=False, help="Write here, not stdout.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite the --out file if it exists.")] = False,
) -> None:
    """Write one session graph as JSON, or with --all everything as JSON Lines; `import` reads both."""
    from edi_storage.ops.transfer import export_all

    cli: Cli = ctx.obj
    if everything == (session_id is not None):
        raise InvalidInput.single(
            "session_id", "give a session id or --all, not both and not neither", session_id
        )
    if out is not None and out.exists() and not force:
        raise InvalidInput.single("out", "exists: give --force to overwrite it", str(out))
    if everything:
        with cli.storage() as storage, progress_bar(cli.err) as progress:
            task = progress.add_task("exporting", total=None)
            with written_atomically(out) if out is not None else nullcontext(sys.stdout) as handle:
                counts = export_all(storage, handle, lambda _kind, n: progress.advance(task, n))
        cli.err.print(Text("exported " + ", ".join(f"{n} {kind}s" for kind, n in counts.items())))
        return
    assert session_id is not None
    with cli.storage() as storage:
        detail = storage.sessions.load_session(session_id)
    if detail is None:
        raise NotFound("session", session_id)
    text = json.dumps(
        detail.as_create().model_dump(mode="json", exclude_none=True), indent=2, ensure_ascii=False
    )
    if out is None:
        typer.echo(text)
    else:
        with written_atomically(out) as handle:
            handle.write(text + "\n")
        cli.err.print(Text(f"exported session {session_id} to {out}"))
