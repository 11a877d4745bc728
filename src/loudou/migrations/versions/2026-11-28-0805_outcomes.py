"""analytics tables for the outcome reports (closed deals by cell with their records, lost
deals by reason and by stage)

Revision ID: 0006b
Revises: 0005
Create Date: 2026-11-28 08:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006b"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ("month", "pipeline_id", "team_id", "owner_id", "channel_id")


def _key_columns() -> list[sa.Column[object]]:
    return [sa.Column(name, sa.Date if name == "month" else sa.Integer, primary_key=True) for name in KEY]


def upgrade() -> None:
    op.create_table(
        "analytics_outcome_cells",
        *_key_columns(),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("cents", sa.BigInteger, nullable=False),
        sa.Column("with_amount", sa.Integer, nullable=False),
        sa.Column("activities", sa.BigInteger, nullable=False),
        sa.Column("records", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "analytics_outcome_reasons",
        *_key_columns(),
        sa.Column("lost_reason_id", sa.Integer, primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("cents", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "analytics_outcome_stages",
        *_key_columns(),
        sa.Column("stage_id", sa.Integer, primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("cents", sa.BigInteger, nullable=False),
    )
    # Existing data: fill the tables from the deals (a no-op on an empty database).
    from loudou.analytics import counters_outcomes

    counters_outcomes.rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_table("analytics_outcome_stages")
    op.drop_table("analytics_outcome_reasons")
    op.drop_table("analytics_outcome_cells")
