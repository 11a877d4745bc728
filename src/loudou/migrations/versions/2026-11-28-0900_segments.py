"""analytics tables for the segments report (closed deals by product and by company segment)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 09:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, its segment column and type), as declared in loudou.analytics.counters_segments.
TABLES: tuple[tuple[str, str, sa.types.TypeEngine[Any]], ...] = (
    ("analytics_segment_products", "product_id", sa.Integer()),
    ("analytics_segment_industries", "industry", sa.String(80)),
)


def upgrade() -> None:
    for name, segment, kind in TABLES:
        op.create_table(
            name,
            sa.Column("month", sa.Date, primary_key=True),
            sa.Column("pipeline_id", sa.Integer, primary_key=True),
            sa.Column("team_id", sa.Integer, primary_key=True),
            sa.Column("owner_id", sa.Integer, primary_key=True),
            sa.Column(segment, kind, primary_key=True),
            sa.Column("status", sa.String(16), primary_key=True),
            sa.Column("n", sa.Integer, nullable=False),
            sa.Column("cents", sa.BigInteger, nullable=False),
            sa.Column("with_amount", sa.Integer, nullable=False),
            sa.Column("cycles", sa.LargeBinary, nullable=False),
            sqlite_with_rowid=False,
        )
    # Existing data: fill the tables from the deals (a no-op on an empty database).
    from loudou.analytics import counters_segments

    counters_segments.rebuild(op.get_bind())


def downgrade() -> None:
    for name, _segment, _kind in reversed(TABLES):
        op.drop_table(name)
