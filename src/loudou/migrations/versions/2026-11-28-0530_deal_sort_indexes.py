"""deal indexes: sorted list pages, rotting deals, the board (open deals), open tasks

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_deals_amount_id": ["amount", "id"],
    "ix_deals_expected_close_id": ["expected_close_date", "id"],
    "ix_deals_stage_entered_id": ["stage_entered_at", "id"],
    "ix_deals_last_activity_id": ["last_activity_at", "id"],
    "ix_deals_created_id": ["created_at", "id"],
    "ix_deals_owner_id_id": ["owner_id", "id"],
    "ix_deals_team_id_id": ["team_id", "id"],
    "ix_deals_stage_status_entered": ["stage_id", "status", "stage_entered_at"],
}


OPEN_TASK = sa.text("done_at IS NULL")
OPEN_DEAL = sa.text("status = 'open'")
OPEN_DEAL_INDEXES = {
    "ix_deals_open_board": ["stage_id", "status", "stage_entered_at", "amount", "owner_id", "team_id", "channel_id",
                            "title"],
    "ix_deals_open_owner": ["owner_id", "status", "stage_id", "stage_entered_at", "amount", "title"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "deals", columns)
    for name, columns in OPEN_DEAL_INDEXES.items():
        op.create_index(name, "deals", columns, sqlite_where=OPEN_DEAL, postgresql_where=OPEN_DEAL)
    op.create_index("ix_tasks_open_deal", "tasks", ["deal_id"], sqlite_where=OPEN_TASK, postgresql_where=OPEN_TASK)


def downgrade() -> None:
    op.drop_index("ix_tasks_open_deal", table_name="tasks")
    for name in OPEN_DEAL_INDEXES:
        op.drop_index(name, table_name="deals")
    for name in INDEXES:
        op.drop_index(name, table_name="deals")
