"""products, deal product, team region; index for cohort reports

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loudou.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(120), nullable=False, unique=True),
        sa.Column("series", sa.String(80)),
        sa.Column("list_price", sa.Numeric(14, 2)),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", loudou.db.UTCDateTime(timezone=True), nullable=False),
    )
    # Plain ADD COLUMN (no table rebuild on SQLite, instant on a large deals table).
    op.add_column("deals", sa.Column("product_id", sa.Integer, sa.ForeignKey("products.id")), inline_references=True)
    op.add_column("teams", sa.Column("region", sa.String(80)))


def downgrade() -> None:
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("region")
    with op.batch_alter_table("deals") as batch:
        batch.drop_column("product_id")
    op.drop_table("products")
