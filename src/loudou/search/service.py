"""Keeps the search index (``search_terms``) current.

Rule: every write that changes a deal's title, a company's or contact's name, city,
phone or e-mail, or a record's owner or team, re-indexes that record in the same
transaction (``index_deal``/``index_company``/``index_contact``), and every delete removes
its terms (``remove``). ``rebuild_index`` recomputes the whole index from the records,
after bulk loads that bypass the services (imports) or to repair drift; the demo loader
writes the same rows itself, from its generated columns, with the same code
(``search.bulk``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.company.models import Company
from loudou.contact.models import Contact
from loudou.db import Database
from loudou.deal.models import Deal
from loudou.search import bulk, terms
from loudou.search.models import SearchKind, SearchTerm

log = logging.getLogger(__name__)
_TABLE: sa.Table = SearchTerm.__table__  # type: ignore[assignment]
#: Records read per round trip by the rebuild; terms are inserted per batch of this many.
REBUILD_CHUNK = 20_000


def _rows(kind: SearchKind, entity_id: int, owner_id: int | None, team_id: int | None,
          words: Iterable[str]) -> list[dict[str, Any]]:
    return [{"kind": kind.value, "entity_id": entity_id, "term": w, "owner_id": owner_id, "team_id": team_id}
            for w in words]


def _replace(session: Session, kind: SearchKind, entity_id: int, rows: list[dict[str, Any]]) -> None:
    session.execute(sa.delete(_TABLE).where(_TABLE.c.kind == kind.value, _TABLE.c.entity_id == entity_id))
    if rows:
        session.execute(sa.insert(_TABLE), rows)


def index_company(session: Session, company: Company) -> None:
    _replace(session, SearchKind.company, company.id, _rows(
        SearchKind.company, company.id, company.owner_id, company.team_id,
        terms.company_terms(company.name, company.city, company.phone, company.email)))


def index_contact(session: Session, contact: Contact) -> None:
    _replace(session, SearchKind.contact, contact.id, _rows(
        SearchKind.contact, contact.id, contact.owner_id, contact.team_id,
        terms.contact_terms(contact.name, contact.phone, contact.email)))


def index_deal(session: Session, deal: Deal) -> None:
    _replace(session, SearchKind.deal, deal.id, _rows(
        SearchKind.deal, deal.id, deal.owner_id, deal.team_id, terms.deal_terms(deal.title)))


def remove(session: Session, kind: SearchKind, entity_id: int) -> None:
    _replace(session, kind, entity_id, [])


def remove_deal(session: Session, deal_id: int) -> None:
    remove(session, SearchKind.deal, deal_id)


# --------------------------------------------------------------------------- bulk rebuild

_MODELS: dict[SearchKind, Any] = {SearchKind.company: Company, SearchKind.contact: Contact, SearchKind.deal: Deal}


def _chunks(conn: sa.Connection, table: Any, columns: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """All rows of ``table`` in id order, a chunk at a time (keyset, bounded memory)."""
    stmt = (sa.select(*columns).where(table.c.id > sa.bindparam("after")).order_by(table.c.id)
            .limit(REBUILD_CHUNK))
    after = 0
    while True:
        rows = conn.execute(stmt, {"after": after}).all()
        if not rows:
            return
        yield rows
        after = rows[-1].id


def _insert_rows(conn: sa.Connection, rows: bulk.TermRows) -> None:
    """Bulk insert on the driver: SQLAlchemy's per-row parameter processing cost ~8 µs a
    row, a minute for the eight million terms of a 1M-deal database. PostgreSQL gets COPY
    (PERFORMANCE.md point 7), SQLite multi-row INSERTs (``bulk.insert_sqlite``)."""
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            bulk.copy_postgresql(cursor, rows)
        finally:
            cursor.close()
    elif conn.dialect.name == "sqlite":
        bulk.insert_sqlite(conn.connection.driver_connection, rows)
    else:
        conn.execute(sa.insert(_TABLE), [dict(zip(bulk.COLUMNS, row, strict=True)) for row in rows.tuples()])


class Progress(Protocol):
    """How a long rebuild reports (the demo loader's progress bars have this shape)."""

    def start(self, key: str, description: str, total: int) -> None: ...

    def advance(self, key: str, n: int) -> None: ...


def rebuild_on(conn: sa.Connection, progress: Progress | None = None) -> int:
    """Recompute every term on ``conn``, in the caller's transaction; returns the rows written.

    Like the demo loader: empty the table, drop its secondary indexes, insert in primary
    key order, build the indexes once at the end (a sorted build is far cheaper than
    keeping two indexes current row by row), then refresh the planner's statistics so
    it keeps choosing the owner index for reps."""
    sqlite = conn.dialect.name == "sqlite"
    if not sqlite:
        return _rebuild(conn, progress)
    # Index builds sort in runs of the page cache's size (64 MiB: what the demo loader
    # found fastest) on helper threads; restored after, as the connection goes back to
    # the pool.
    conn.exec_driver_sql("PRAGMA cache_size=-65536")
    conn.exec_driver_sql("PRAGMA threads=2")
    try:
        return _rebuild(conn, progress)
    finally:
        conn.exec_driver_sql("PRAGMA cache_size=-2000")
        conn.exec_driver_sql("PRAGMA threads=0")


def _rebuild(conn: sa.Connection, progress: Progress | None) -> int:
    started = time.perf_counter()
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        conn.execute(sa.delete(_TABLE))
    else:
        conn.exec_driver_sql("TRUNCATE search_terms")
    for index in _TABLE.indexes:
        conn.execute(sa.schema.DropIndex(index, if_exists=True))
    if progress is not None:
        total = sum(conn.scalar(sa.select(sa.func.count()).select_from(_MODELS[kind].__table__)) or 0
                    for kind in bulk.KINDS)
        progress.start("search", "indexing names for search", total)
    written = 0
    memo: dict[Any, list[str]] = {}  # deal titles repeat across chunks too
    for kind in bulk.KINDS:
        table = _MODELS[kind].__table__
        texts = bulk.TEXT_COLUMNS[kind]
        for records in _chunks(conn, table, [table.c.id, table.c.owner_id, table.c.team_id,
                                             *(table.c[name] for name in texts)]):
            columns = list(zip(*records, strict=True))
            words = bulk.term_lists(kind, columns[3:], memo=memo)
            rows = bulk.TermRows.of(kind, columns[0], columns[1], columns[2], words)
            if len(rows):
                _insert_rows(conn, rows)
                written += len(rows)
            if progress is not None:
                progress.advance("search", len(records))
    loaded = time.perf_counter()
    for index in _TABLE.indexes:
        conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))
    if sqlite:
        # Sampled statistics, as the demo loader takes them: exact ones rescan every row.
        conn.exec_driver_sql("PRAGMA analysis_limit=1000")
        conn.exec_driver_sql("ANALYZE search_terms")
        conn.exec_driver_sql("PRAGMA analysis_limit=0")
    else:
        conn.exec_driver_sql("ANALYZE search_terms")
    log.info("search index rebuilt: %d terms; %.1f s to compute and insert, %.1f s for indexes and statistics",
             written, loaded - started, time.perf_counter() - loaded)
    return written


def rebuild_index(db: Database, progress: Progress | None = None) -> int:
    """Rebuild the whole search index in one transaction; returns the number of terms.

    Holds the write lock for its duration (minutes at 1M deals on SQLite), so it belongs
    after bulk loads and in maintenance windows, not on a busy server."""
    with db.session_scope() as session:
        return rebuild_on(session.connection(), progress)
