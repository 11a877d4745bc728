"""merge the analytics counter branches (flow, outcomes, value)

Revision ID: 0007
Revises: 0006a, 0006b, 0006c
Create Date: 2026-11-28 08:40:00
"""

from collections.abc import Sequence

revision: str = "0007"
down_revision: str | Sequence[str] | None = ("0006a", "0006b", "0006c")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to change: the three branches add independent tables."""


def downgrade() -> None:
    """Nothing to change: downgrading goes back through each branch."""
