"""analytics counters (cohort counts, stay histogram) and covering indexes for reports

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLOSED = sa.text("closed_at IS NOT NULL")
STAY = sa.text("duration_s IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "analytics_cohort_counts",
        sa.Column("pipeline_id", sa.Integer, primary_key=True),
        sa.Column("month", sa.Date, primary_key=True),
        sa.Column("team_id", sa.Integer, primary_key=True),
        sa.Column("owner_id", sa.Integer, primary_key=True),
        sa.Column("channel_id", sa.Integer, primary_key=True),
        sa.Column("reached_mask", sa.BigInteger, primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("amount", sa.Numeric(18, 2), nullable=False),
    )
    op.create_table(
        "analytics_stay_hours",
        sa.Column("pipeline_id", sa.Integer, primary_key=True),
        sa.Column("month", sa.Date, primary_key=True),
        sa.Column("team_id", sa.Integer, primary_key=True),
        sa.Column("stage_id", sa.Integer, primary_key=True),
        sa.Column("hours", sa.Integer, primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
    )
    # Cohort reports over a period with arbitrary filters: an index-only range scan.
    op.create_index("ix_deals_cohort", "deals", ["pipeline_id", "created_at", "reached_mask", "status", "amount",
                                                 "owner_id", "team_id", "channel_id"])
    # Reports over deals closed in a period (win rate, cycle, win/loss, segments).
    op.create_index("ix_deals_closed", "deals", ["closed_at", "status", "pipeline_id", "owner_id", "team_id",
                                                 "channel_id", "created_at", "amount", "lost_reason_id"],
                    sqlite_where=CLOSED, postgresql_where=CLOSED)
    # Time in stage: completed stays by the time they started.
    op.create_index("ix_transitions_stays", "stage_transitions", ["at", "to_stage_id", "duration_s", "deal_id"],
                    sqlite_where=STAY, postgresql_where=STAY)
    # Existing data: fill the counters from the history (a no-op on an empty database).
    from loudou.analytics import counters

    counters.rebuild_funnel_tables(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_transitions_stays", table_name="stage_transitions")
    op.drop_index("ix_deals_closed", table_name="deals")
    op.drop_index("ix_deals_cohort", table_name="deals")
    op.drop_table("analytics_stay_hours")
    op.drop_table("analytics_cohort_counts")
