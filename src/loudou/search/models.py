from __future__ import annotations

import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from loudou.db import Base

#: Longest term stored; longer names are cut (a prefix search never needs more).
TERM_MAX = 200

# Prefix search is a range scan (term >= 'zs' AND term < 'zt'), which must follow code
# point order: SQLite's BINARY collation does; on PostgreSQL the database's default
# (e.g. en_US.UTF-8) does not, so the column uses the "C" collation there.
TERM_TYPE = sa.String(TERM_MAX).with_variant(sa.String(TERM_MAX, collation="C"), "postgresql")


class SearchKind(enum.StrEnum):
    deal = "deal"
    company = "company"
    contact = "contact"


class SearchTerm(Base):
    """One searchable form of one record: its lowercased name, the name's full pinyin and
    initials, phone digits, e-mail. Kept current by the services in the same transaction
    as the change (``search.service``), so a search never converts names per query.

    Owner and team are copies of the record's, so the policy's clause can narrow a search
    inside the index (see ``search.queries``); the records themselves are filtered again
    by the policy when the results are loaded."""

    __tablename__ = "search_terms"
    __table_args__ = (
        # Admins and managers: range over (kind, term); owner and team are in the index
        # so rows the viewer may not see are skipped without reading the table.
        sa.Index("ix_search_terms_kind_term", "kind", "term", "owner_id", "team_id", "entity_id"),
        # Reps, the most numerous viewers, see a small share of the rows: their searches
        # are an exact range over (owner, kind, term).
        sa.Index("ix_search_terms_owner_kind_term", "owner_id", "kind", "term", "entity_id"),
        # On SQLite the rows live in the primary key's B-tree: no separate rowid table
        # (a third copy of every term) to write and keep.
        {"sqlite_with_rowid": False},
    )

    kind: Mapped[SearchKind] = mapped_column(sa.Enum(SearchKind, native_enum=False, length=8), primary_key=True)
    entity_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    term: Mapped[str] = mapped_column(TERM_TYPE, primary_key=True)
    owner_id: Mapped[int | None]
    team_id: Mapped[int | None]
