"""The ``edi-storage`` command: look into a database, move sessions in and out of it, migrate it.

Every command is a thin layer over ``Storage`` and its session service: it opens the database, makes
one or two service calls and renders what comes back, as Rich tables on a terminal or, with ``--json``,
as pure JSON on stdout (messages and progress bars go to stderr, so the JSON can be piped).

Errors the user can fix (a wrong id, a bad file, a database behind the code) are one red line on stderr
and an exit code, never a traceback: 1 for a missing record, invalid input and other storage errors,
2 for a database that cannot be used as it is (schema problems, an unreadable file; Click also uses 2
for a wrong command line). Anything else is a bug, and its traceback is worth seeing.
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
