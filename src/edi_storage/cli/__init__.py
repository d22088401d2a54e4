"""The ``edi-storage`` command: look into a database, move sessions in and out of it, migrate it.

Every command is a thin layer over ``Storage`` and its session service: it opens the database, makes
one or two service calls and renders what comes back, as Rich tables on a terminal or, with ``--json``,
as pure JSON on stdout (messages and progress bars go to stderr, so the JSON can be piped).

Errors the user can fix are never a traceback (errors.py says which exit code each gets): 2 for a mistake
on the command line, named by the flag as typed, with the value and what is accepted (a --url that
names no usable database is one); 1, one red line on stderr, for what goes wrong while running (a
missing record, a file whose content is invalid, a database error). Anything else is a bug, and its
traceback is worth seeing.
"""

from edi_storage.cli import (  # noqa: F401 (each module registers its commands on app)
    corrections,
    database,
    demo,
    gallery,
    library,
    maintenance,
    report,
    serve,
    sessions,
    state,
    transfer,
)
from edi_storage.cli.app import app

__all__ = ["app"]
