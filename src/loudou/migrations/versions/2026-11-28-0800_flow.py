"""analytics counters for the flow reports (stays by the month they started, closed deals)

Revision ID: 0006a
Revises: 0005
Create Date: 2026-11-28 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006a"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_stay_started",
        sa.Column("pipeline_id", sa.Integer, primary_key=True),
        sa.Column("month", sa.Date, primary_key=True),
        sa.Column("team_id", sa.Integer, primary_key=True),
        sa.Column("stage_id", sa.Integer, primary_key=True),
        sa.Column("hours", sa.Integer, primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("seconds", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "analytics_closed_counts",
        sa.Column("pipeline_id", sa.Integer, primary_key=True),
        sa.Column("month", sa.Date, primary_key=True),
        sa.Column("team_id", sa.Integer, primary_key=True),
        sa.Column("owner_id", sa.Integer, primary_key=True),
        sa.Column("channel_id", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
    )
    # Existing data: fill the tables from the history (a no-op on an empty database).
    from loudou.analytics import counters_flow

    counters_flow.rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_table("analytics_closed_counts")
    op.drop_table("analytics_stay_started")
