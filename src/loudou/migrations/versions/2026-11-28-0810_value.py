"""derived tables and covering indexes for the value reports (channels, customers, behaviour)

Revision ID: 0006c
Revises: 0005
Create Date: 2026-11-28 08:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006c"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (name, columns, partial-index condition), as declared in loudou.analytics.counters_value.
INDEXES: tuple[tuple[str, list[str], str], ...] = (
    ("ix_deals_value_won", ["status", "created_at", "team_id", "owner_id", "pipeline_id", "channel_id", "product_id",
                            "company_id", "closed_at"], "status = 'won'"),
    ("ix_deals_value_closed", ["status", "closed_at", "activity_count", "company_id", "amount", "created_at",
                               "pipeline_id", "team_id", "owner_id", "channel_id", "product_id"],
     "closed_at IS NOT NULL"),
    ("ix_deals_value_open", ["status", "last_activity_at", "amount", "company_id", "created_at", "pipeline_id",
                             "team_id", "owner_id", "channel_id", "product_id"], "status = 'open'"),
    ("ix_deals_value_company", ["company_id", "created_at", "pipeline_id", "team_id", "owner_id", "channel_id",
                                "product_id"], "company_id IS NOT NULL"),
    ("ix_deals_value_team_company", ["team_id", "company_id", "created_at", "pipeline_id", "owner_id", "channel_id",
                                     "product_id"], "company_id IS NOT NULL"),
    ("ix_deals_value_touched", ["last_activity_at", "company_id", "created_at", "pipeline_id", "team_id", "owner_id",
                                "channel_id", "product_id"], "company_id IS NOT NULL"),
)


def upgrade() -> None:
    op.create_table(
        "analytics_channel_counts",
        sa.Column("pipeline_id", sa.Integer, primary_key=True),
        sa.Column("month", sa.Date, primary_key=True),
        sa.Column("team_id", sa.Integer, primary_key=True),
        sa.Column("owner_id", sa.Integer, primary_key=True),
        sa.Column("channel_id", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "analytics_closed_activities",
        sa.Column("pipeline_id", sa.Integer, primary_key=True),
        sa.Column("month", sa.Date, primary_key=True),
        sa.Column("team_id", sa.Integer, primary_key=True),
        sa.Column("owner_id", sa.Integer, primary_key=True),
        sa.Column("channel_id", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sqlite_with_rowid=False,
    )
    # The reports name these indexes in their queries (no ANALYZE here: on the benchmark
    # database, statistics for them made SQLite's planner turn other reports' grouped
    # scans of closed deals from a covering index to row lookups, four times slower).
    op.create_table(
        "analytics_won_leads",
        sa.Column("month", sa.Date, primary_key=True),
        sa.Column("pipeline_id", sa.Integer, primary_key=True),
        sa.Column("team_id", sa.Integer, primary_key=True),
        sa.Column("owner_id", sa.Integer, primary_key=True),
        sa.Column("channel_id", sa.Integer, primary_key=True),
        sa.Column("company_id", sa.Integer, primary_key=True),
        sa.Column("deal_id", sa.Integer, primary_key=True),
        sa.Column("product_id", sa.Integer),
        sa.Column("cycle_us", sa.BigInteger),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_analytics_won_leads_deal", "analytics_won_leads", ["deal_id"])
    for name, columns, where in INDEXES:
        op.create_index(name, "deals", columns, sqlite_where=sa.text(where), postgresql_where=sa.text(where))
    # Existing data: fill the tables from the raw rows (a no-op on an empty database), and
    # make every deal's last_activity_at its latest activity again where an edit or a
    # deletion left it behind (the customers report now reads recent activity from it).
    from loudou.analytics import counters_value

    counters_value.restore_last_activity(op.get_bind())
    counters_value.rebuild(op.get_bind())


def downgrade() -> None:
    for name, _columns, _where in reversed(INDEXES):
        op.drop_index(name, table_name="deals")
    op.drop_index("ix_analytics_won_leads_deal", table_name="analytics_won_leads")
    op.drop_table("analytics_won_leads")
    op.drop_table("analytics_closed_activities")
    op.drop_table("analytics_channel_counts")
