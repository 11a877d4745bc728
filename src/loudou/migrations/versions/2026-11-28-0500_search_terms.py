"""search terms: the prefix index behind the global search

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 05:00:00

Written by hand. The table starts empty: ``loudou.search.service.rebuild_index`` fills it
for data that existed before this revision (the demo loader writes the same rows itself).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Code point order on PostgreSQL too, so prefix ranges match what SQLite's BINARY does.
TERM_TYPE = sa.String(length=200).with_variant(sa.String(length=200, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "search_terms",
        sa.Column("kind", sa.Enum("deal", "company", "contact", name="searchkind", native_enum=False, length=8),
                  nullable=False),
        sa.Column("entity_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("term", TERM_TYPE, nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("kind", "entity_id", "term", name=op.f("pk_search_terms")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("search_terms", schema=None) as batch_op:
        batch_op.create_index("ix_search_terms_kind_term", ["kind", "term", "owner_id", "team_id", "entity_id"],
                              unique=False)
        batch_op.create_index("ix_search_terms_owner_kind_term", ["owner_id", "kind", "term", "entity_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("search_terms", schema=None) as batch_op:
        batch_op.drop_index("ix_search_terms_owner_kind_term")
        batch_op.drop_index("ix_search_terms_kind_term")
    op.drop_table("search_terms")
