"""deal sort indexes: keyset pages of the deal list in any sort order, rotting deals, open tasks

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
    "ix_deals_stage_status_entered": ["stage_id", "status", "stage_entered_at"],
}


OPEN_ONLY = sa.text("done_at IS NULL")


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "deals", columns)
    op.create_index("ix_tasks_open_deal", "tasks", ["deal_id"], sqlite_where=OPEN_ONLY, postgresql_where=OPEN_ONLY)


def downgrade() -> None:
    op.drop_index("ix_tasks_open_deal", table_name="tasks")
    for name in INDEXES:
        op.drop_index(name, table_name="deals")
