"""History indexes that end in the tie-breaker: (created_at, id), (status, created_at, id),
(final_alignment_score, id), (status, final_alignment_score, id).

Revision ID: 0007_history_indexes
Revises: 0006_gallery
Create Date: 2026-12-01

Every history ordering breaks ties on ``id``. Indexes that stopped at ``created_at`` (or at the score)
could not serve that order whenever sessions share a timestamp, as a batch import or a database adopted
from the reference code's second-resolution ``CURRENT_TIMESTAMP`` makes them: the whole table was sorted
for each page. Only indexes change, so SQLite needs no table rebuild.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007_history_indexes"
down_revision: str | Sequence[str] | None = "0006_gallery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (old name, old columns) -> (new name, new columns)
CHANGES = [
    (("ix_sessions_created_at", ["created_at"]), ("ix_sessions_created_at_id", ["created_at", "id"])),
    (
        ("ix_sessions_status_created_at", ["status", "created_at"]),
        ("ix_sessions_status_created_at_id", ["status", "created_at", "id"]),
    ),
    (
        ("ix_sessions_final_alignment_score", ["final_alignment_score"]),
        ("ix_sessions_final_alignment_score_id", ["final_alignment_score", "id"]),
    ),
    (
        (
            "ix_sessions_status_final_alignment_score_created_at",
            ["status", "final_alignment_score", "created_at"],
        ),
        ("ix_sessions_status_final_alignment_score_id", ["status", "final_alignment_score", "id"]),
    ),
]


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        for (old, _), (new, columns) in CHANGES:
            batch_op.drop_index(old)
            batch_op.create_index(new, columns, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        for (old, columns), (new, _) in CHANGES:
            batch_op.drop_index(new)
            batch_op.create_index(old, columns, unique=False)
