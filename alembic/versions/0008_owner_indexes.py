"""History by user and by project: (user_id, created_at, id), (user_id, final_alignment_score, id),
(project_id, created_at, id), (project_id, final_alignment_score, id).

Revision ID: 0008_owner_indexes
Revises: 0007_history_indexes
Create Date: 2026-12-03

``query_history(user_id=..., project_id=...)`` reads one user's or one project's page in index order, in
creation or score order, and stops after ``limit`` rows, as the other filters do (revision 0007). These
serve what the reference schema's ``idx_sessions_user`` and ``idx_sessions_project`` were for. Only
indexes are added, so SQLite needs no table rebuild.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008_owner_indexes"
down_revision: str | Sequence[str] | None = "0007_history_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = [
    ("ix_sessions_user_id_created_at_id", ["user_id", "created_at", "id"]),
    ("ix_sessions_user_id_final_alignment_score_id", ["user_id", "final_alignment_score", "id"]),
    ("ix_sessions_project_id_created_at_id", ["project_id", "created_at", "id"]),
    ("ix_sessions_project_id_final_alignment_score_id", ["project_id", "final_alignment_score", "id"]),
]


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        for name, columns in INDEXES:
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        for name, _ in reversed(INDEXES):
            batch_op.drop_index(name)
