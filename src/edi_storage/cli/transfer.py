"""Moving data in and out: ``import`` and ``export``."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import TaskID
from rich.text import Text

from edi_storage.cli.app import Cli, command
from edi_storage.cli.render import progress_bar
from edi_storage.errors import FieldError, InvalidInput, NotFound

if TYPE_CHECKING:
    from edi_storage.ops.transfer import ImportMode
    from edi_storage.schemas.sessions import SessionCreate


def json_items(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:  # not UTF-8, or not JSON
        raise InvalidInput.single(str(path), "is not a JSON file", str(error)) from None
    return data if isinstance(data, list) else [data]


STDIN = Path("-")


def spool_stdin(directory: Path) -> Path:
    """Standard input written to a file in ``directory``: an export is read twice (checked whole, then
    written), and a pipe can be read once. Named ``stdin.jsonl`` when its first line is an export's
    record (``{"kind": ...}``), else ``stdin.json`` (session graphs)."""
    data = sys.stdin.buffer.read()
    first = data.lstrip().split(b"\n", 1)[0]
    try:
        record = json.loads(first)
    except ValueError:
        record = None
    path = directory / ("stdin.jsonl" if isinstance(record, dict) and "kind" in record else "stdin.json")
    path.write_bytes(data)
    return path


def read_sessions(paths: Sequence[Path]) -> list[SessionCreate]:
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

    state: Cli = ctx.obj
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
        files = [spool_stdin(Path(spool)) if f == STDIN else f for f in files]
        imported = _import(state, files, mode, audit=not no_audit, actor=actor, verify=not unverified)
    state.out.print(Text(f"imported {imported} sessions from {len(files)} files"))


def _import(
    state: Cli, files: list[Path], mode: ImportMode, *, audit: bool, actor: str | None, verify: bool
) -> int:
    """The sessions imported from these files (.jsonl exports first, then session graphs)."""
    from edi_storage.ops.transfer import import_all, import_sessions

    everything = [f for f in files if f.suffix == ".jsonl"]
    sessions = read_sessions([f for f in files if f.suffix != ".jsonl"])
    imported = 0
    with state.storage() as storage, progress_bar(state.err) as progress:
        tasks: dict[str, TaskID] = {}

        def advance(kind: str, n: int) -> None:
            if kind not in tasks:
                tasks[kind] = progress.add_task(kind, total=None)
            progress.advance(tasks[kind], n)

        for path in everything:
            report = import_all(storage, path, advance, mode=mode, audit=audit, actor=actor, verify=verify)
            state.err.print(Text(f"{path}: {report.summary()}"))
            imported += report.total("session")
        if sessions:
            report = import_sessions(storage, sessions, mode=mode, audit=audit, actor=actor)
            state.err.print(Text(f"session files: {report.summary()}"))
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

    state: Cli = ctx.obj
    if everything == (session_id is not None):
        raise InvalidInput.single(
            "session_id", "give a session id or --all, not both and not neither", session_id
        )
    if out is not None and out.exists() and not force:
        raise InvalidInput.single("out", "exists: give --force to overwrite it", str(out))
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
