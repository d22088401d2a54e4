"""How a failed command ends: one line on stderr and an exit code, never a traceback.

Two kinds of failure, as in Click and git: a mistake on the command line (a bad value, a missing
flag) exits 2 and names the flag the user typed; anything that goes wrong while running (a record
not found, a file whose content is invalid, a database error) exits 1. A ``--url`` that names no
usable database (a missing file, another application's database, one behind the code) is a bad value
on the command line too, and exits 2 naming the command that fixes it.
"""

from __future__ import annotations

import re

import typer

from edi_storage.errors import DatabaseUnavailable, FieldError, InvalidInput, SchemaError

SHOWN_FIELD_ERRORS = 5  # a file with a thousand bad rows should still fail in one readable line

# The service's names for what the command line spells differently; every other field is named like
# the command's parameter (``older_than_days`` is ``--older-than-days``).
FIELD_PARAMS = {
    "status_filter": "status",
    "search_term": "search",
    "user_id": "user",
    "project_id": "project",
    "values": "set_",  # metadata --set
}

# A field named inside a message ("give older_than_days or max_bytes"): only names with an underscore,
# so that the words of a sentence ("name a file to archive it to") stay words.
_IDENTIFIER = re.compile(r"\b[a-z][a-z0-9]*_[a-z0-9_]+\b")


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


def _flags(ctx: typer.Context) -> dict[str, str]:
    """Each parameter's Python name and what the user types for it: its longest flag, or its metavar;
    the command's own first, then its groups' (``--url`` is the root's)."""
    flags: dict[str, str] = {}
    context: typer.Context | None = ctx
    while context is not None:
        for param in context.command.params:
            if param.name is None or param.name in flags:
                continue
            if param.param_type_name == "option":
                flags[param.name] = max(param.opts, key=len)
            else:
                flags[param.name] = getattr(param, "metavar", None) or param.name.upper()
        context = context.parent  # type: ignore[assignment]
    for field, name in FIELD_PARAMS.items():
        if name in flags:
            flags[field] = flags[name]
    return flags


def _on_command_line(problem: FieldError, flags: dict[str, str]) -> tuple[str | None, str] | None:
    """The flag a problem is about and the problem in the command line's words; None when it is not
    about the command line."""
    flag = flags.get(problem.field)
    message = _IDENTIFIER.sub(lambda m: flags.get(m.group(), m.group()), problem.message)
    names_flags = message != problem.message
    if flag is None:
        # A rule over several flags ("give --older-than-days or --without-thumbnail") still is one.
        return (None, message) if names_flags else None
    if problem.value is None:
        return flag, message
    return flag, f"{message} (got {problem.shown_value})"


def usage_error(error: InvalidInput, ctx: typer.Context) -> typer.BadParameter | None:
    """The error as Click's bad-parameter error (exit 2) when every problem in it is a value the user
    typed; None when any is not (a bad row of an imported file is a runtime failure, exit 1)."""
    flags = _flags(ctx)
    problems = [_on_command_line(problem, flags) for problem in error.errors]
    if not problems or any(p is None for p in problems):
        return None
    found = [p for p in problems if p is not None]
    if len(found) == 1:
        flag, message = found[0]
        return typer.BadParameter(message, ctx=ctx, param_hint=f"'{flag}'" if flag else None)
    return typer.BadParameter("; ".join(f"{f}: {m}" if f else m for f, m in found), ctx=ctx)
