"""Derived tables for the segments report: the closed deals by product and by company
segment (the company's industry), kept current in the same transaction as every change,
like the other ``counters_*`` modules.

The rep, team, region and channel splits of the report come from the outcome reports'
``analytics_outcome_cells`` (:mod:`loudou.analytics.counters_outcomes`). Product and
industry are not in those cells, and a deal's industry is not even on the deal: grouping a
year of a whole company's closed deals (540k at 1M) by it read every one of them through
an index and looked its company up (about 2 s on SQLite, each time). These two tables hold
the same closed deals (won, lost, disqualified) by product and by industry:

``analytics_segment_products``: by (month closed, pipeline, team, owner, product, status);
``analytics_segment_industries``: by (month closed, pipeline, team, owner, industry, status).

Each row has the number of deals, the amount in cents of those with an amount, how many
have one, and ``cycles``: the won deals' cycles (``closed_at − created_at`` in whole
seconds as the database computes it, :func:`counters_outcomes.cycle_expr`), packed as
little-endian int32 (empty for lost and disqualified deals), so that the report's medians
are exact. At 1M deals a year of the whole company is about 15,000 industry rows holding
35,000 cycles (140 kB). The channel is not in the key: with it the industry table would
grow sixfold (180k rows for 910k closed deals); a channel filter reads the deals instead.
Team and owner are, for the access policy. The keys start with the month, so a period is
one range of each table.

Missing keys are stored as 0 (no team, owner or product) and ``''`` (no company, or a
company without an industry). A blank industry is no industry: the report shows those
deals in the "none" row too.

How they stay current:

* a ``before_flush`` listener notes the deals created closed, the closed (or closing,
  reopened) deals whose pipeline, dates, status, team, owner, product, company or amount
  change, the closed deals deleted, and the closed deals of every company whose industry
  changes; it reads their contribution as the database holds it, and an ``after_flush``
  listener reads it again (new deals have their id by then, and the database computes the
  cycles of both states alike) and moves the difference. A change that leaves a deal open
  costs nothing (the ORM's attribute history, no query on a stage change);
* a ``do_orm_execute`` listener does the same around UPDATE and DELETE statements on deals
  and UPDATE statements on companies run through a session, when they set a field the
  tables depend on;
* on PostgreSQL, reading a deal's contribution share-locks its company and an industry
  change locks the company before reading its deals, so that concurrent transactions
  never count a deal under an industry its company no longer has (SQLite has one writer);
* :func:`rebuild` (registered in ``counters.REBUILDERS``) replaces both tables from the
  deals — read once as integers and grouped with NumPy (:func:`closed_deals`,
  :func:`group`, :func:`replace`): 7 s of CPU at 1M deals, where two GROUP BY statements
  took 12 — and :func:`check` (``counters.CHECKERS``) counts the keys that differ from them.

Reading: :func:`closed_groups` answers the whole months of a period from a table and the
partial months, or filters the table does not carry (channel, the other segment), from the
deals through the covering index ``ix_deals_value_closed``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import ORMExecuteState, Session

from loudou.analytics import counters, counters_value
from loudou.analytics.counters_outcomes import NO_CENTS, cents_expr, cycle_expr, table_conditions
from loudou.analytics.filters import ReportFilters, deal_conditions
from loudou.auth.models import User
from loudou.company.models import Company
from loudou.db import Base
from loudou.deal.models import Deal, DealStatus

OPEN = DealStatus.open.value
WON = DealStatus.won.value
CLOSED = (DealStatus.won.value, DealStatus.lost.value, DealStatus.disqualified.value)
#: One won deal's cycle in a row's ``cycles``.
CYCLE = np.dtype("<i4")
NO_INDUSTRY = ""


def _key_columns(segment: sa.Column[Any]) -> list[sa.Column[Any]]:
    return [sa.Column("month", sa.Date, primary_key=True), sa.Column("pipeline_id", sa.Integer, primary_key=True),
            sa.Column("team_id", sa.Integer, primary_key=True), sa.Column("owner_id", sa.Integer, primary_key=True),
            segment, sa.Column("status", sa.String(16), primary_key=True)]


def _value_columns() -> list[sa.Column[Any]]:
    return [sa.Column("n", sa.Integer, nullable=False), sa.Column("cents", sa.BigInteger, nullable=False),
            sa.Column("with_amount", sa.Integer, nullable=False),
            sa.Column("cycles", sa.LargeBinary, nullable=False)]  # last: read only for won rows


# WITHOUT ROWID on SQLite: a period is a range of the primary key, read in key order with
# no lookup per row (the cycles of a row are a few dozen bytes).
products = sa.Table("analytics_segment_products", Base.metadata,
                    *_key_columns(sa.Column("product_id", sa.Integer, primary_key=True)), *_value_columns(),
                    sqlite_with_rowid=False)
industries = sa.Table("analytics_segment_industries", Base.metadata,
                      *_key_columns(sa.Column("industry", sa.String(80), primary_key=True)), *_value_columns(),
                      sqlite_with_rowid=False)


@dataclass(frozen=True)
class Segment:
    """One of the two tables: its segment column, the value standing for "none" there,
    and the report filter on the same attribute."""

    name: str
    table: sa.Table
    column: str
    none: Any

    @property
    def key(self) -> tuple[str, ...]:
        return ("month", "pipeline_id", "team_id", "owner_id", self.column, "status")

    def group_id(self, stored: Any) -> Any:
        """The report's group id of a stored segment value (None for "none")."""
        if stored is None or stored == self.none:
            return None
        return int(stored) if self.column == "product_id" else str(stored)


PRODUCTS = Segment("product", products, "product_id", 0)
INDUSTRIES = Segment("industry", industries, "industry", NO_INDUSTRY)
SEGMENTS = (PRODUCTS, INDUSTRIES)

#: The deal's fields its contribution depends on (its company's industry besides).
DEAL_FIELDS = frozenset(("pipeline_id", "created_at", "closed_at", "status", "team_id", "owner_id", "product_id",
                         "company_id", "amount"))
COMPANY_FIELDS = frozenset(("industry",))


def _status(value: Any) -> str:
    return value.value if isinstance(value, DealStatus) else str(value)


def decode(blob: Any) -> np.ndarray:
    return np.frombuffer(blob, dtype=CYCLE) if blob else np.empty(0, dtype=CYCLE)


# ---------------------------------------------------------------- a deal's contribution

@dataclass(frozen=True)
class Contribution:
    """What one closed deal adds to the tables: its key parts, its cycle (won deals) and
    its amount in cents (:data:`NO_CENTS` without one)."""

    month: dt.date
    pipeline_id: int
    team_id: int
    owner_id: int
    product_id: int
    industry: str
    status: str
    cycle: int
    cents: int

    def key(self, segment: Segment) -> tuple[Any, ...]:
        return (self.month, self.pipeline_id, self.team_id, self.owner_id, getattr(self, segment.column),
                self.status)


def _contribution_columns(dialect: str) -> list[Any]:
    d, co = Deal.__table__, Company.__table__
    return [counters._month_expr(d.c.closed_at), d.c.pipeline_id, sa.func.coalesce(d.c.team_id, 0),
            sa.func.coalesce(d.c.owner_id, 0), sa.func.coalesce(d.c.product_id, 0),
            sa.func.coalesce(co.c.industry, NO_INDUSTRY), d.c.status,
            cycle_expr(dialect, d.c.created_at, d.c.closed_at), cents_expr(d.c.amount)]


def _closed_deals() -> tuple[Any, list[sa.ColumnElement[bool]]]:
    """The deals joined to their company, and what makes a deal counted (closed)."""
    d, co = Deal.__table__, Company.__table__
    return d.outerjoin(co, co.c.id == d.c.company_id), [d.c.closed_at.is_not(None), d.c.status != OPEN]


def _contribution(row: Sequence[Any]) -> Contribution:
    month, pipeline, team, owner, product, industry, status, cycle, cents = row
    return Contribution(counters._as_date(month), int(pipeline), int(team), int(owner), int(product),
                        str(industry or NO_INDUSTRY), _status(status), int(cycle or 0),
                        NO_CENTS if cents is None else int(cents))


def _statement(conn: Connection, name: str, build: Callable[[str], Any]) -> Any:
    """A write-path statement of this module, built once per dialect."""
    return counters.cached_statement(conn, __name__, name, build)


def _stored_select(dialect: str) -> sa.Select[Any]:
    joined, closed = _closed_deals()
    return (sa.select(*_contribution_columns(dialect)).select_from(joined)
            .where(*closed, Deal.__table__.c.id.in_(sa.bindparam("ids", expanding=True))))


def _lock_companies_of_deals(dialect: str) -> Any:
    d, co = Deal.__table__, Company.__table__
    return (sa.select(co.c.id).where(co.c.id.in_(sa.select(d.c.company_id).where(
        d.c.id.in_(sa.bindparam("ids", expanding=True))))).with_for_update(read=True))


def _stored(conn: Connection, ids: Iterable[int]) -> list[Contribution]:
    """The contributions of these deals as the database holds them now (closed ones only).

    On PostgreSQL their companies are share-locked first, until the transaction ends: a
    company's industry changed by another transaction (which locks it, then reads its
    deals, :func:`_lock_companies`) is then either seen before this reads the deals or
    waits for this transaction, so that it moves what this one writes. SQLite runs one
    writer at a time."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    if conn.dialect.name == "postgresql":
        conn.execute(_statement(conn, "lock_companies_of_deals", _lock_companies_of_deals), {"ids": wanted})
    stmt = _statement(conn, "stored", _stored_select)
    return [_contribution(row) for row in conn.execute(stmt, {"ids": wanted})]


def _lock_companies(conn: Connection, companies: Any) -> None:
    """Lock companies whose industry changes before reading their deals (PostgreSQL): a
    deal of theirs changed meanwhile by another transaction is then read as it commits."""
    if conn.dialect.name == "postgresql":
        co = Company.__table__
        conn.execute(sa.select(co.c.id).where(co.c.id.in_(companies)).with_for_update())


# ---------------------------------------------------------------- kept current on write

_PENDING = "analytics_segments_pending"


def _open_throughout(deal: Deal) -> bool:
    """Open before this flush and after it (from the ORM's attribute history)."""
    return not sa.inspect(deal).attrs.status.history.has_changes() and _status(deal.status) == OPEN


def _changed(obj: Any, fields: Iterable[str]) -> bool:
    attrs = sa.inspect(obj).attrs
    return any(attrs[f].history.has_changes() for f in fields)


def _closed_deals_of(conn: Connection, companies: Any) -> list[int]:
    """The ids of the closed deals of these companies."""
    d = Deal.__table__
    stmt = sa.select(d.c.id).where(d.c.company_id.in_(companies), d.c.closed_at.is_not(None), d.c.status != OPEN)
    return [int(i) for i in conn.execute(stmt).scalars()]


@event.listens_for(Session, "before_flush")
def _note_changes(session: Session, _flush_context: Any, _instances: Any) -> None:
    """Before the flush: which deals may move, and their contribution as stored."""
    session.info.pop(_PENDING, None)  # a flush that failed left its note behind
    new = [d for d in session.new if isinstance(d, Deal) and d.status is not None and _status(d.status) != OPEN]
    ids = {d.id for d in session.dirty
           if isinstance(d, Deal) and d.id is not None and not _open_throughout(d) and _changed(d, DEAL_FIELDS)}
    ids |= {d.id for d in session.deleted if isinstance(d, Deal) and d.id is not None and not _open_throughout(d)}
    companies = [c.id for c in session.dirty
                 if isinstance(c, Company) and c.id is not None and _changed(c, COMPANY_FIELDS)]
    if not (new or ids or companies):
        return
    conn = session.connection()
    if companies:
        _lock_companies(conn, companies)
        ids.update(_closed_deals_of(conn, companies))
    session.info[_PENDING] = (ids, new, _stored(conn, ids))


@event.listens_for(Session, "after_flush")
def _move_changes(session: Session, _flush_context: Any) -> None:
    """After the flush: the same deals' contribution now, and the difference applied."""
    pending = session.info.pop(_PENDING, None)
    if pending is None:
        return
    ids, new, before = pending
    conn = session.connection()
    apply(conn, before, _stored(conn, {*ids, *(d.id for d in new if d.id is not None)}))


def _sets_any(statement: Any, fields: frozenset[str]) -> bool:
    """Whether an UPDATE statement sets one of ``fields``. The values given to
    ``.values()`` are kept in ``_values``; without them (an UPDATE by primary keys with
    a list of parameters) assume it does."""
    values = getattr(statement, "_values", None)
    if not values:
        return True
    return bool({getattr(k, "key", k) for k in values} & fields)


@event.listens_for(Session, "do_orm_execute")
def _follow_statements(state: ORMExecuteState) -> Any:
    """UPDATE and DELETE statements on deals, and UPDATE statements on companies, run
    through a session bypass the flush: move the closed deals they touch from their state
    before to their state after (an activity logged, which only bumps the deal's activity
    count and time, costs nothing)."""
    if not (state.is_update or state.is_delete):
        return None
    mapper = state.bind_mapper
    if mapper is None:
        return None
    on_deals = issubclass(mapper.class_, Deal)
    if not on_deals and not (issubclass(mapper.class_, Company) and state.is_update):
        return None
    if state.is_update and not _sets_any(state.statement, DEAL_FIELDS if on_deals else COMPANY_FIELDS):
        return None
    session = state.session
    if session.autoflush:  # what the statement would flush first, counted by the listeners above
        session.flush()
    where = getattr(state.statement, "whereclause", None)
    conditions = [where] if where is not None else []
    conn = session.connection()
    if on_deals:
        d = Deal.__table__
        ids = [int(i) for i in conn.execute(sa.select(d.c.id).where(
            d.c.closed_at.is_not(None), d.c.status != OPEN, *conditions)).scalars()]
    else:
        companies = [int(i) for i in conn.execute(sa.select(Company.__table__.c.id).where(*conditions)).scalars()]
        if not companies:
            return None
        _lock_companies(conn, companies)
        ids = _closed_deals_of(conn, companies)
    if not ids:
        return None
    before = _stored(conn, ids)
    result = state.invoke_statement()
    apply(conn, before, _stored(conn, ids))
    return result


@dataclass
class _Change:
    n: int = 0
    cents: int = 0
    with_amount: int = 0
    added: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)


def apply(conn: Connection, removed: Iterable[Contribution], added: Iterable[Contribution]) -> None:
    """Take ``removed`` out of both tables and put ``added`` in (what is in both cancels)."""
    before, after = Counter(removed), Counter(added)
    gone, new = before - after, after - before
    if not (gone or new):
        return
    for segment in SEGMENTS:
        changes: dict[tuple[Any, ...], _Change] = defaultdict(_Change)
        for sign, contributions in ((-1, gone), (+1, new)):
            for c, times in contributions.items():
                change = changes[c.key(segment)]
                change.n += sign * times
                if c.cents != NO_CENTS:
                    change.cents += sign * times * c.cents
                    change.with_amount += sign * times
                if c.status == WON:
                    (change.added if sign > 0 else change.removed).extend([c.cycle] * times)
        _write(conn, segment, changes)


def _by_key(segment: Segment) -> sa.ColumnElement[bool]:
    t = segment.table
    return sa.and_(*(t.c[n] == sa.bindparam(f"k_{n}") for n in segment.key))


def _key_params(segment: Segment, key: tuple[Any, ...]) -> dict[str, Any]:
    return {f"k_{n}": v for n, v in zip(segment.key, key, strict=True)}


def _insert(dialect: str, table: sa.Table) -> Any:
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def _write(conn: Connection, segment: Segment, changes: Mapping[tuple[Any, ...], _Change]) -> None:
    """Read, change and write back the rows of ``changes`` (under a row lock on
    PostgreSQL, so that concurrent writers' cycles are never lost)."""
    changes = {k: c for k, c in changes.items() if c.n or c.cents or c.with_amount or c.added or c.removed}
    if not changes:
        return
    t = segment.table
    if conn.dialect.name == "postgresql":  # the rows exist, so that FOR UPDATE locks them
        empty = {"n": 0, "cents": 0, "with_amount": 0, "cycles": b""}
        conn.execute(_statement(conn, f"{t.name}_ensure", lambda d: _insert(d, t).on_conflict_do_nothing()),
                     [{**dict(zip(segment.key, key, strict=True)), **empty} for key in changes])

    def read(dialect: str) -> Any:
        stmt = sa.select(t.c.n, t.c.cents, t.c.with_amount, t.c.cycles).where(_by_key(segment))
        return stmt.with_for_update() if dialect == "postgresql" else stmt

    def write(dialect: str) -> Any:
        insert = _insert(dialect, t)
        return insert.on_conflict_do_update(index_elements=list(segment.key), set_={
            name: getattr(insert.excluded, name) for name in ("n", "cents", "with_amount", "cycles")})

    upserts, deletes = [], []
    for key, change in changes.items():
        row = conn.execute(_statement(conn, f"{t.name}_read", read), _key_params(segment, key)).one_or_none()
        n, cents, with_amount, blob = row if row is not None else (0, 0, 0, b"")
        cycles = decode(blob)
        for cycle in change.removed:
            found = np.flatnonzero(cycles == cycle)
            if len(found):  # absent only if the table drifted: `loudou analytics rebuild --check` shows it
                cycles = np.delete(cycles, found[0])
        if change.added:
            cycles = np.concatenate([cycles, np.array(change.added, dtype=CYCLE)])
        n = int(n) + change.n
        if n > 0:
            upserts.append({**dict(zip(segment.key, key, strict=True)), "n": n,
                            "cents": int(cents) + change.cents, "with_amount": int(with_amount) + change.with_amount,
                            "cycles": cycles.astype(CYCLE).tobytes()})
        else:
            deletes.append(_key_params(segment, key))
    if upserts:
        conn.execute(_statement(conn, f"{t.name}_write", write), upserts)
    if deletes:
        conn.execute(_statement(conn, f"{t.name}_delete", lambda _d: t.delete().where(_by_key(segment))), deletes)


# ---------------------------------------------------------------- rebuilt from the deals

@dataclass
class Row:
    """A row of a table: its sums and its won deals' cycles."""

    n: int = 0
    cents: int = 0
    with_amount: int = 0
    cycles: list[np.ndarray] = field(default_factory=list)

    def packed(self) -> bytes:
        return b"".join(c.astype(CYCLE).tobytes() for c in self.cycles)


class _MonthNumber(sa.sql.expression.FunctionElement[Any]):
    """A timestamp's month (UTC) as ``year × 12 + month − 1``: an integer, so that a
    million deals come back as integers only."""

    type = sa.Integer()
    inherit_cache = True
    name = "month_number"


@compiles(_MonthNumber, "sqlite")
def _month_number_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"(CAST(substr({column}, 1, 4) AS INTEGER) * 12 + CAST(substr({column}, 6, 2) AS INTEGER) - 1)"


@compiles(_MonthNumber, "postgresql")
def _month_number_pg(element: Any, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return (f"CAST(EXTRACT(YEAR FROM {column} AT TIME ZONE 'UTC') * 12 "
            f"+ EXTRACT(MONTH FROM {column} AT TIME ZONE 'UTC') - 1 AS INTEGER)")


def _fetch_raw(conn: Connection, stmt: sa.Select[Any]) -> list[Any]:
    """Every row as the driver returns it (no per-row processing by SQLAlchemy)."""
    result = conn.execute(stmt)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def _industry_codes(conn: Connection) -> tuple[np.ndarray, list[str]]:
    """Every company's industry as a small integer (index: company id; 0: none), and the
    industries by code."""
    co = Company.__table__
    rows = _fetch_raw(conn, sa.select(co.c.id, co.c.industry).where(co.c.industry.is_not(None),
                                                                     co.c.industry != NO_INDUSTRY))
    if not rows:
        return np.zeros(1, dtype=np.int64), [NO_INDUSTRY]
    ids, named = zip(*rows, strict=True)
    names = [NO_INDUSTRY, *dict.fromkeys(named)]
    code_of = {name: code for code, name in enumerate(names)}
    companies = np.array(ids, dtype=np.int64)
    codes = np.zeros(int(companies.max()) + 1, dtype=np.int64)
    codes[companies] = np.fromiter(map(code_of.__getitem__, named), dtype=np.int64, count=len(named))
    return codes, names


def _group(columns: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """The distinct combinations of equally long integer columns (one array per column,
    in ascending order of the combination) and each row's combination. Each column is
    ranked on its own and the ranks combined into one integer: a sort of plain integers,
    where sorting the rows as records is ten times slower."""
    values, ranks = zip(*(np.unique(c, return_inverse=True) for c in columns), strict=True)
    combined = np.zeros(len(columns[0]), dtype=np.int64)
    for column_values, column_ranks in zip(values, ranks, strict=True):
        combined = combined * len(column_values) + column_ranks.reshape(-1)
    distinct, inverse = np.unique(combined, return_inverse=True)
    keys = []
    for column_values in reversed(values):
        keys.append(column_values[distinct % len(column_values)])
        distinct = distinct // len(column_values)
    return keys[::-1], inverse.reshape(-1)


@dataclass
class ClosedDeals:
    """Closed deals as parallel integer arrays: what both tables are grouped from (by
    :func:`expected` from the database; a bulk loader holding the same values as arrays
    can hand them to :func:`group` and :func:`replace` directly)."""

    month: np.ndarray  # of closing (UTC), as year × 12 + month − 1
    pipeline: np.ndarray
    team: np.ndarray  # 0: none
    owner: np.ndarray  # 0: none
    product: np.ndarray  # 0: none
    industry: np.ndarray  # the company's industry: an index into ``industries`` (0: none)
    status: np.ndarray  # an index into CLOSED
    cents: np.ndarray  # NO_CENTS: no amount
    cycle: np.ndarray  # seconds (read for the won deals only)
    industries: list[str]  # by index; the first is NO_INDUSTRY


def closed_deals(conn: Connection) -> ClosedDeals:
    """Every closed deal, read once as integers (910k at 1M deals: SQLite's GROUP BY sorts
    them, which took longer than reading them and grouping them with NumPy)."""
    d = Deal.__table__
    codes, industries = _industry_codes(conn)
    stmt = sa.select(
        _MonthNumber(d.c.closed_at), d.c.pipeline_id, sa.func.coalesce(d.c.team_id, 0),
        sa.func.coalesce(d.c.owner_id, 0), sa.func.coalesce(d.c.product_id, 0), sa.func.coalesce(d.c.company_id, 0),
        sa.case({status: i for i, status in enumerate(CLOSED)}, value=d.c.status),
        sa.func.coalesce(cents_expr(d.c.amount), NO_CENTS),
        sa.case((d.c.status == WON, cycle_expr(conn.dialect.name, d.c.created_at, d.c.closed_at)), else_=0),
    ).where(d.c.closed_at.is_not(None), d.c.status.in_(CLOSED))
    deals = np.array(_fetch_raw(conn, stmt), dtype=np.int64).reshape(-1, 9)
    month, pipeline, team, owner, product, company, status, cents, cycle = deals.T
    industry = np.zeros(len(company), dtype=np.int64)
    known = company < len(codes)  # companies past the last one with an industry have none
    industry[known] = codes[company[known]]
    return ClosedDeals(month, pipeline, team, owner, product, industry, status, cents, cycle, industries)


def group(deals: ClosedDeals) -> dict[str, dict[tuple[Any, ...], Row]]:
    """Both tables' rows, {segment name: {key: row}}, from the closed deals."""
    has_amount = deals.cents != NO_CENTS
    is_won = deals.status == CLOSED.index(WON)
    out: dict[str, dict[tuple[Any, ...], Row]] = {}
    for segment, value in ((PRODUCTS, deals.product), (INDUSTRIES, deals.industry)):
        keys, inverse = _group([deals.month, deals.pipeline, deals.team, deals.owner, value, deals.status])
        size = len(keys[0])
        n = np.bincount(inverse, minlength=size)
        with_amount = np.bincount(inverse[has_amount], minlength=size)
        cents = np.zeros(size, dtype=np.int64)
        np.add.at(cents, inverse[has_amount], deals.cents[has_amount])
        rows = [Row(int(n[i]), int(cents[i]), int(with_amount[i])) for i in range(size)]
        won_rows, won_cycles = inverse[is_won], deals.cycle[is_won]
        order = np.argsort(won_rows, kind="stable")
        won_rows, won_cycles = won_rows[order], won_cycles[order]
        bounds = np.flatnonzero(np.diff(won_rows)) + 1
        for part_rows, part in zip(np.split(won_rows, bounds), np.split(won_cycles, bounds), strict=True):
            if len(part):
                rows[int(part_rows[0])].cycles.append(part.astype(CYCLE))
        out[segment.name] = {
            (dt.date(m // 12, m % 12 + 1, 1), p, t, o, v if segment is PRODUCTS else deals.industries[v], CLOSED[st]):
            row for row, (m, p, t, o, v, st) in zip(rows, zip(*(k.tolist() for k in keys), strict=True), strict=True)}
    return out


def expected(conn: Connection) -> dict[str, dict[tuple[Any, ...], Row]]:
    """Both tables as the deals give them."""
    return group(closed_deals(conn))


def replace(conn: Connection, tables: dict[str, dict[tuple[Any, ...], Row]]) -> None:
    """Replace both tables' rows with these (in the caller's transaction)."""
    for segment in SEGMENTS:
        conn.execute(sa.delete(segment.table))
        batch: list[dict[str, Any]] = []
        for key, row in tables[segment.name].items():
            batch.append({**dict(zip(segment.key, key, strict=True)), "n": row.n, "cents": row.cents,
                          "with_amount": row.with_amount, "cycles": row.packed()})
            if len(batch) >= 5000:
                conn.execute(segment.table.insert(), batch)
                batch = []
        if batch:
            conn.execute(segment.table.insert(), batch)


def rebuild(conn: Connection) -> None:
    """Replace both tables with what the deals give (in the caller's transaction): about
    7 s of CPU at 1M deals, most of it the driver turning 910k rows into Python values."""
    replace(conn, expected(conn))


def _comparable(row: Row) -> tuple[int, int, int, bytes]:
    cycles = decode(row.packed())
    return row.n, row.cents, row.with_amount, np.sort(cycles).tobytes()


def check(conn: Connection) -> dict[str, int]:
    """Keys whose stored values differ from what the deals give, per table."""
    want = expected(conn)
    out = {}
    for segment in SEGMENTS:
        have = {}
        for r in conn.execute(sa.select(segment.table)):
            key = (counters._as_date(r.month), r.pipeline_id, r.team_id, r.owner_id, r[4], r.status)
            have[key] = _comparable(Row(int(r.n), int(r.cents), int(r.with_amount), [decode(r.cycles)]))
        out[segment.table.name] = counters._diff({k: _comparable(r) for k, r in want[segment.name].items()}, have)
    return out


counters.REBUILDERS.append(rebuild)
counters.CHECKERS.append(check)


# ---------------------------------------------------------------- reading

@dataclass(frozen=True)
class Piece:
    """Closed deals of one segment and status: their number, amount in cents, how many
    have an amount, and the won ones' cycles in seconds. A segment may come in several
    pieces (whole months and the rest of the period): add them up."""

    group_id: Any  # product id or industry; None for none
    status: str
    n: int
    cents: int
    with_amount: int
    cycles: np.ndarray | None


def usable(segment: Segment, filters: ReportFilters) -> bool:
    """Whether the table carries every filter: not the channel nor the other segment.
    A filter on the blank industry is left to the deals: the table stores it as none."""
    if filters.channel_id is not None:
        return False
    if segment is PRODUCTS:
        return filters.industry is None
    return filters.product_id is None and filters.industry != NO_INDUSTRY


def _conditions(segment: Segment, viewer: User, filters: ReportFilters) -> list[sa.ColumnElement[bool]]:
    t = segment.table
    out = table_conditions(t, viewer, filters)  # policy, pipeline, team, owner (and channel: never here)
    value = filters.product_id if segment is PRODUCTS else filters.industry
    if value is not None:
        out.append(t.c[segment.column] == value)
    return out


def closed_groups(session: Session, viewer: User, filters: ReportFilters, segment: Segment) -> list[Piece]:
    """The deals closed in the period, narrowed by the filters and the policy, by segment
    and status: whole months from the table, the rest of the period from the deals."""
    if usable(segment, filters):
        months, rest = counters.split_period(filters.start, filters.end)
    else:
        months, rest = None, [(filters.start, filters.end)]
    out: list[Piece] = []
    if months is not None:
        out += _from_table(session, viewer, filters, segment, months)
    for start, end in rest:
        out += _from_deals(session, viewer, filters, segment, start, end)
    return out


def _from_table(session: Session, viewer: User, filters: ReportFilters, segment: Segment,
                months: tuple[dt.date, dt.date]) -> list[Piece]:
    t = segment.table
    column = t.c[segment.column]
    where = [t.c.month >= months[0], t.c.month < months[1], *_conditions(segment, viewer, filters)]
    blobs: dict[Any, list[bytes]] = defaultdict(list)
    for value, blob in session.execute(sa.select(column, t.c.cycles).where(*where, t.c.status == WON)):
        blobs[value].append(blob)
    out = []
    for value, status, n, cents, with_amount in session.execute(
            sa.select(column, t.c.status, sa.func.sum(t.c.n), sa.func.sum(t.c.cents), sa.func.sum(t.c.with_amount))
            .where(*where).group_by(column, t.c.status)):
        cycles = decode(b"".join(blobs.get(value, ()))) if status == WON else None
        out.append(Piece(segment.group_id(value), _status(status), int(n or 0), int(cents or 0),
                         int(with_amount or 0), cycles))
    return out


def _from_deals(session: Session, viewer: User, filters: ReportFilters, segment: Segment, start: dt.datetime,
                end: dt.datetime) -> list[Piece]:
    """Closed deals of [start, end) through the covering index of closed deals (with the
    company looked up for its industry): sums grouped in the database, the won deals'
    cycles (their statuses first in the index: a small range) grouped here."""
    deals = counters_value.via(counters_value.CLOSED_INDEX)
    c = deals.c
    source: Any = deals.table
    if segment is PRODUCTS:
        value: Any = sa.func.coalesce(c.product_id, 0)
    else:
        co = Company.__table__
        source = source.outerjoin(co, co.c.id == c.company_id)
        value = sa.func.coalesce(co.c.industry, NO_INDUSTRY)
    where = [c.closed_at >= start, c.closed_at < end,
             *deals.adapt(deal_conditions(viewer, filters, filters.pipeline_id))]
    dialect = session.get_bind().dialect.name
    cycles: dict[Any, list[int]] = defaultdict(list)
    for key, cycle in counters_value.fetch_raw(session, sa.select(value, cycle_expr(dialect, c.created_at, c.closed_at))
                                               .select_from(source)
                                               .where(counters_value.status_in(c.status, DealStatus.won), *where)):
        cycles[key].append(int(cycle or 0))
    out = []
    closed = counters_value.status_in(c.status, DealStatus.won, DealStatus.lost, DealStatus.disqualified)
    for key, status, n, cents, with_amount in session.execute(
            sa.select(value, c.status, sa.func.count(), sa.func.coalesce(sa.func.sum(cents_expr(c.amount)), 0),
                      sa.func.count(c.amount))
            .select_from(source).where(closed, *where).group_by(value, c.status)):
        status = _status(status)
        won_cycles = np.array(cycles.get(key, ()), dtype=np.int64) if status == WON else None
        out.append(Piece(segment.group_id(key), status, int(n), int(cents), int(with_amount), won_cycles))
    return out
