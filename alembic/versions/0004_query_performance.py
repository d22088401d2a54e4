"""Query-performance log: the query_performance table (opt-in recording, see edi_storage.monitoring).

Revision ID: 0004_query_performance
Revises: 0003_audit_log
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_query_performance"
down_revision: str | Sequence[str] | None = "0003_audit_log"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "query_performance",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("query_type", sa.Text, nullable=False),
        sa.Column("execution_time", sa.Float, nullable=False),
        sa.Column("rows_returned", sa.Integer, nullable=False),
        sa.Column(
            "timestamp",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("CURRENT_TIMESTAMP"),
        ),
        sa.CheckConstraint("execution_time >= 0", name=op.f("ck_query_performance_execution_time")),
        sa.CheckConstraint("rows_returned >= 0", name=op.f("ck_query_performance_rows_returned")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_query_performance_timestamp", "query_performance", ["timestamp"])
    op.create_index(
        "ix_query_performance_query_type_timestamp", "query_performance", ["query_type", "timestamp"]
    )


def downgrade() -> None:
    op.drop_index("ix_query_performance_query_type_timestamp", table_name="query_performance")
    op.drop_index("ix_query_performance_timestamp", table_name="query_performance")
    op.drop_table("query_performance")
