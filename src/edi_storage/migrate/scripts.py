"""Where the Alembic revisions are, and the Alembic configuration that points at them.

The revisions live in the repository's top-level ``alembic/`` and ship inside the wheel as
``edi_storage/_alembic``; an installed package finds the shipped copy, a clone (editable install) the
top-level folder. Either way there is exactly one set of revisions.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from edi_storage.errors import SchemaError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

# Our own version table, so that another Alembic user of the same database never collides with it.
VERSION_TABLE = "edi_storage_version"
# The revision the models of this release are: the head of alembic/versions. Named here so that opening
# a database at this revision (every command, every Storage) needs no Alembic import, which costs more
# than the rest of start-up (the `alembic` package imports its whole runtime); a test checks that it is
# the scripts' head, and revision_history() refuses to run when a release's two disagree.
HEAD_REVISION = "0008_owner_indexes"


@cache
def script_location() -> Path:
    shipped = Path(str(files("edi_storage"))) / "_alembic"
    if (shipped / "env.py").is_file():
        return shipped
    source_tree = Path(__file__).resolve().parents[3] / "alembic"
    if (source_tree / "env.py").is_file():
        return source_tree
    raise FileNotFoundError(
        f"edi-storage's migrations are missing: neither {shipped} nor {source_tree} holds env.py"
    )


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config for our revisions; the caller puts a connection in ``attributes`` to reuse it."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location()))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@cache
def script_directory() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    if (head := scripts.get_current_head()) != HEAD_REVISION:
        raise SchemaError(
            f"this installation's migrations end at {head}, its code at {HEAD_REVISION}: "
            "reinstall edi-storage (the package and its migrations come from different releases)"
        )
    return scripts


def head_revision() -> str:
    return HEAD_REVISION


def known_revisions() -> set[str]:
    return {rev.revision for rev in script_directory().walk_revisions()}


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """What schema comparison (``alembic check``, ``edi-storage check``) looks at: everything but what
    is not a model (Alembic's version table, the audit triggers' context table, the library's FTS5
    table with its shadow tables on SQLite and its expression index on PostgreSQL)."""
    from edi_storage.migrate.audit_triggers import CONTEXT_TABLE
    from edi_storage.models.library import FTS_TABLE, PG_SEARCH_INDEX

    if type_ == "table":
        return name not in {VERSION_TABLE, CONTEXT_TABLE} and not (name or "").startswith(FTS_TABLE)
    return not (type_ == "index" and name == PG_SEARCH_INDEX)
