"""Base schema: the five session tables of storage-layer.md 5.1, as the reference created them.

Revision ID: 0001_base_schema
Revises:
Create Date: 2026-11-23

Databases written by the reference implementation are this shape and are adopted by stamping this
revision (see edi_storage.migrate.state). The tables come from edi_storage.migrate.base_schema, a frozen
definition shared with revision 0002 and the adoption check.

Downgrading past this revision keeps the tables and their rows: the base schema is where a user's data
starts, and ``alembic downgrade base`` must never be the command that deletes it. The database is left
unversioned in the reference shape, which the next ``upgrade`` adopts again. Delete the file to start over.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from edi_storage.migrate.base_schema import base_metadata

revision: str = "0001_base_schema"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    base_metadata().create_all(op.get_bind(), checkfirst=False)


def downgrade() -> None:
    """Nothing to undo: the reference tables stay, with every row (see the module docstring)."""
