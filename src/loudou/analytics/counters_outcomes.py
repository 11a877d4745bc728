"""Derived tables for the outcome reports (win rate, win/loss, sales cycle), kept current in
the same transaction as every deal change, like :mod:`loudou.analytics.counters`.

``analytics_outcome_cells``: the closed deals (won, lost, disqualified) by (month closed,
pipeline, team, owner, channel, status) — 11,386 rows for 910k closed deals at 1M (80×
fewer). Each row
holds the count, the amount in cents, the deals with an amount and the activities logged
on them, plus ``records``: one packed record per deal of the cell (day of the month
closed, activity count, cycle in seconds, amount in cents; :data:`RECORD`). The records
make the medians and percentiles of the reports exact without reading the deals: a year
of a whole company's won deals is about 2,000 rows and 600 kB of records at 1M deals.

``analytics_outcome_reasons`` and ``analytics_outcome_stages``: the lost deals by (month
closed, pipeline, team, owner, channel) and their lost reason, or the stage they were lost
at, with their count and amount in cents (23,065 and 18,937 rows for 586k lost deals at 1M).
The keys start with the month, so a period is one range of each table.

Missing keys (no team, owner, channel or lost reason) are stored as 0, as in the funnel's
counters. A deal's cycle is ``closed_at − created_at`` in whole seconds as the database
computes it (:func:`cycle_expr`), so the records equal what the reports read from deals.

How they stay current:
* a ``before_flush`` listener moves a closed deal's contribution from its stored state to
  its new one when its status, dates, team, owner, channel, amount, lost reason or stage
  change, when it is created closed and when it is deleted; a change that leaves a deal
  open costs nothing (read from the ORM's attribute history, no query on a stage change);
* a ``do_orm_execute`` listener follows UPDATE and DELETE statements on deals run through a
  session (``deal.service.touch_activity`` bumps ``activity_count`` that way) for the
  closed deals they touch;
* :func:`rebuild` (registered in ``counters.REBUILDERS``, so bulk loads and
  ``loudou analytics rebuild`` run it) replaces the tables from the deals, and :func:`check`
  (``counters.CHECKERS``) counts the keys that differ from them.

Reading: :func:`closed_sums`, :func:`closed_records`, :func:`lost_groups`,
:func:`created_counts` and :func:`open_at_start` answer the whole months of a period from
the tables (and from the funnel's ``analytics_cohort_counts`` for deals created) and its
partial months, or filters no table carries (product, company segment), from the deals.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import ORMExecuteState, Session

from loudou.analytics import counters
from loudou.analytics.filters import ReportFilters, deal_conditions
from loudou.auth import policy
from loudou.auth.models import User
from loudou.db import Base
from loudou.deal.models import Deal, DealStatus
from loudou.pipeline.models import Pipeline

DAY_S = 86_400
OPEN = DealStatus.open.value
CLOSED = (DealStatus.won.value, DealStatus.lost.value, DealStatus.disqualified.value)
LOST = DealStatus.lost.value

#: One closed deal in a cell: day of the month it closed (UTC), activities logged on it,
#: cycle in seconds, amount in cents (:data:`NO_CENTS` without an amount). Packed, 17 bytes.
RECORD = np.dtype([("day", "u1"), ("activities", "<i4"), ("cycle", "<i4"), ("cents", "<i8")])
NO_CENTS = int(np.iinfo(np.int64).min)

cells = sa.Table(
    "analytics_outcome_cells", Base.metadata,
    sa.Column("month", sa.Date, primary_key=True),
    sa.Column("pipeline_id", sa.Integer, primary_key=True),
    sa.Column("team_id", sa.Integer, primary_key=True),
    sa.Column("owner_id", sa.Integer, primary_key=True),
    sa.Column("channel_id", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(16), primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("cents", sa.BigInteger, nullable=False),
    sa.Column("with_amount", sa.Integer, nullable=False),
    sa.Column("activities", sa.BigInteger, nullable=False),
    sa.Column("records", sa.LargeBinary, nullable=False),  # last: read only when asked for
)

lost_reasons = sa.Table(
    "analytics_outcome_reasons", Base.metadata,
    sa.Column("month", sa.Date, primary_key=True),
    sa.Column("pipeline_id", sa.Integer, primary_key=True),
    sa.Column("team_id", sa.Integer, primary_key=True),
    sa.Column("owner_id", sa.Integer, primary_key=True),
    sa.Column("channel_id", sa.Integer, primary_key=True),
    sa.Column("lost_reason_id", sa.Integer, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("cents", sa.BigInteger, nullable=False),
)

lost_stages = sa.Table(
    "analytics_outcome_stages", Base.metadata,
    sa.Column("month", sa.Date, primary_key=True),
    sa.Column("pipeline_id", sa.Integer, primary_key=True),
    sa.Column("team_id", sa.Integer, primary_key=True),
    sa.Column("owner_id", sa.Integer, primary_key=True),
    sa.Column("channel_id", sa.Integer, primary_key=True),
    sa.Column("stage_id", sa.Integer, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("cents", sa.BigInteger, nullable=False),
)

CELL_KEY = ("pipeline_id", "month", "team_id", "owner_id", "channel_id", "status")
REASON_KEY = ("pipeline_id", "month", "team_id", "owner_id", "channel_id", "lost_reason_id")
STAGE_KEY = ("pipeline_id", "month", "team_id", "owner_id", "channel_id", "stage_id")
#: The deal's fields its closing is counted under.
FIELDS = ("pipeline_id", "created_at", "closed_at", "status", "team_id", "owner_id", "channel_id", "amount",
          "activity_count", "lost_reason_id", "stage_id")


# ---------------------------------------------------------------- SQL expressions

def cycle_expr(dialect: str, created: Any, closed: Any) -> sa.ColumnElement[int]:
    """closed − created in whole seconds, rounded, on either database (what the reports
    have always shown: ``julianday`` on SQLite, ``extract(epoch)`` on PostgreSQL)."""
    span: sa.ColumnElement[Any]
    if dialect == "postgresql":
        span = sa.func.extract("epoch", closed - created)
    else:
        span = (sa.func.julianday(closed) - sa.func.julianday(created)) * DAY_S
    return sa.cast(sa.func.round(span), sa.Integer)


def cents_expr(amount: Any) -> sa.ColumnElement[int]:
    return sa.cast(sa.func.round(amount * 100), sa.BigInteger)


class _DayOfMonth(sa.sql.expression.FunctionElement[Any]):
    type = sa.Integer()
    inherit_cache = True
    name = "day_of_month"


@compiles(_DayOfMonth, "sqlite")
def _day_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"CAST(substr({compiler.process(element.clauses, **kw)}, 9, 2) AS INTEGER)"


@compiles(_DayOfMonth, "postgresql")
def _day_pg(element: Any, compiler: Any, **kw: Any) -> str:
    return f"CAST(EXTRACT(DAY FROM {compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC') AS INTEGER)"


def _status(value: Any) -> str:
    return value.value if isinstance(value, DealStatus) else str(value)


def _cents(amount: Any) -> int:
    """An amount (two decimals at most) in cents; :data:`NO_CENTS` without one."""
    if amount is None:
        return NO_CENTS
    return int((Decimal(str(amount)) * 100).to_integral_value())


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC) if moment.tzinfo is not None else moment


# ---------------------------------------------------------------- records

def decode(blob: Any) -> np.ndarray:
    return np.frombuffer(blob, dtype=RECORD) if blob else np.empty(0, dtype=RECORD)


def join_records(parts: Sequence[np.ndarray]) -> np.ndarray:
    """The records of several cells in one array (joined as bytes: quicker than
    concatenating many small structured arrays)."""
    return decode(b"".join(p.tobytes() for p in parts))


def as_records(rows: Iterable[tuple[int, int, int, int]]) -> np.ndarray:
    return np.array(list(rows), dtype=RECORD)


@dataclass
class Cell:
    """Closed deals sharing (month closed, team, owner, channel, status); ``records`` when
    asked for (one per deal, :data:`RECORD`)."""

    month: dt.date
    team_id: int | None
    owner_id: int | None
    channel_id: int | None
    status: str
    n: int
    cents: int
    with_amount: int
    activities: int
    records: np.ndarray | None = None


def summary(records: np.ndarray) -> tuple[int, int, int, int]:
    """(n, cents, with_amount, activities) of some records."""
    has_amount = records["cents"] != NO_CENTS
    return (len(records), int(records["cents"][has_amount].sum()), int(has_amount.sum()),
            int(records["activities"].sum()))


def _none(key: int) -> int | None:
    return int(key) if key else None


# ---------------------------------------------------------------- kept current on write

@dataclass(frozen=True)
class Closing:
    """What one closed deal adds to the tables."""

    cell: tuple[Any, ...]  # CELL_KEY
    record: tuple[int, int, int, int]  # day, activities, cycle, cents
    reason: int
    stage: int

    @property
    def lost(self) -> bool:
        return bool(self.cell[5] == LOST)

    @property
    def cents(self) -> int:
        return self.record[3] if self.record[3] != NO_CENTS else 0


def closing(values: dict[str, Any], cycle: int, cents: int) -> Closing | None:
    """The contribution of a deal with these values; None while it is open."""
    status = _status(values["status"])
    closed_at = values["closed_at"]
    if closed_at is None or status == OPEN:
        return None
    closed_at = _utc(closed_at)
    cell = (values["pipeline_id"], counters.month_of(closed_at), values["team_id"] or 0, values["owner_id"] or 0,
            values["channel_id"] or 0, status)
    return Closing(cell, (closed_at.day, int(values["activity_count"] or 0), int(cycle), int(cents)),
                   values["lost_reason_id"] or 0, values["stage_id"])


def _statement(conn: Connection, name: str, build: Callable[[str], Any]) -> Any:
    """A write-path statement of this module, built once per dialect."""
    return counters.cached_statement(conn, __name__, name, build)


def _stored_select(dialect: str) -> sa.Select[Any]:
    d = Deal.__table__
    cols = [d.c[f] for f in FIELDS if f != "amount"]
    return sa.select(d.c.id, *cols, cycle_expr(dialect, d.c.created_at, d.c.closed_at), cents_expr(d.c.amount))


def _stored(conn: Connection, ids: Sequence[int]) -> dict[int, tuple[dict[str, Any], int, int]]:
    """Deals as the database holds them: {id: (fields, cycle, cents)}."""
    if not ids:
        return {}
    rows = conn.execute(_statement(conn, "stored", lambda dialect: _stored_select(dialect).where(
        Deal.__table__.c.id.in_(sa.bindparam("ids", expanding=True)))), {"ids": list(ids)})
    names = [f for f in FIELDS if f != "amount"]
    out = {}
    for row in rows:
        values = dict(zip(names, row[1:-2], strict=True))
        cents = row[-1]
        values["amount"] = None if cents is None else Decimal(int(cents)) / 100
        out[int(row[0])] = (values, int(row[-2] or 0), NO_CENTS if cents is None else int(cents))
    return out


def _stored_closing(stored: tuple[dict[str, Any], int, int] | None) -> Closing | None:
    if stored is None:
        return None
    values, cycle, cents = stored
    return closing(values, cycle, cents)


def _cycles_of(conn: Connection, pairs: list[tuple[dt.datetime, dt.datetime]]) -> list[int]:
    """The cycle the database computes for (created, closed) pairs (bound like the columns)."""
    def build(dialect: str) -> sa.Select[Any]:
        kind = Deal.__table__.c.created_at.type
        return sa.select(cycle_expr(dialect, sa.bindparam("created", type_=kind), sa.bindparam("closed", type_=kind)))

    stmt = _statement(conn, "cycle", build)
    return [int(conn.execute(stmt, {"created": created, "closed": closed}).scalar() or 0) for created, closed in pairs]


def _changes(deal: Deal) -> set[str]:
    attrs = sa.inspect(deal).attrs
    return {f for f in FIELDS if attrs[f].history.has_changes()}


def _open_throughout(deal: Deal) -> bool:
    """Open before this flush and after it (read from the ORM's attribute history)."""
    return not sa.inspect(deal).attrs.status.history.has_changes() and _status(deal.status) == OPEN


@event.listens_for(Session, "before_flush")
def _track_deals(session: Session, _flush_context: Any, _instances: Any) -> None:
    new = [d for d in session.new if isinstance(d, Deal) and d.status is not None and _status(d.status) != OPEN]
    changed: list[tuple[Deal, set[str]]] = []
    for deal in session.dirty:
        if isinstance(deal, Deal) and deal.id is not None and not _open_throughout(deal):
            fields = _changes(deal)
            if fields:
                changed.append((deal, fields))
    gone = [d for d in session.deleted if isinstance(d, Deal) and d.id is not None and not _open_throughout(d)]
    if not (new or changed or gone):
        return
    conn = session.connection()
    stored = _stored(conn, [d.id for d, _f in changed] + [d.id for d in gone])
    before: list[Closing] = []
    after: list[Closing] = []
    pending: list[tuple[dict[str, Any], int]] = []  # new values whose cycle the database computes

    for deal, fields in changed:
        old = stored.get(deal.id)
        if old is None:
            continue
        values = dict(old[0])
        values.update({f: getattr(deal, f) for f in fields})
        cents = _cents(values["amount"]) if "amount" in fields else old[2]
        if {"created_at", "closed_at"} & fields and values["closed_at"] is not None:
            pending.append((values, cents))
        else:
            new_closing = closing(values, old[1], cents)
            if new_closing is not None:
                after.append(new_closing)
        old_closing = _stored_closing(old)
        if old_closing is not None:
            before.append(old_closing)
    for deal in gone:
        old_closing = _stored_closing(stored.get(deal.id))
        if old_closing is not None:
            before.append(old_closing)
    for deal in new:
        values = {f: getattr(deal, f) for f in FIELDS}
        if values["closed_at"] is not None:
            pending.append((values, _cents(values["amount"])))
    cycles = _cycles_of(conn, [(v["created_at"], v["closed_at"]) for v, _c in pending])
    for (values, cents), cycle in zip(pending, cycles, strict=True):
        new_closing = closing(values, cycle, cents)
        if new_closing is not None:
            after.append(new_closing)
    apply(conn, before, after)


@event.listens_for(Session, "do_orm_execute")
def _follow_statements(state: ORMExecuteState) -> Any:
    """UPDATE and DELETE statements on deals through a session bypass the flush: move the
    closed deals they touch from their state before to their state after."""
    if not (state.is_update or state.is_delete):
        return None
    mapper = state.bind_mapper
    if mapper is None or not issubclass(mapper.class_, Deal):
        return None
    session = state.session
    if session.autoflush:  # what the statement would flush first, counted by the listener above
        session.flush()
    where = getattr(state.statement, "whereclause", None)
    conn = session.connection()
    touched = sa.select(Deal.__table__.c.id).where(*_CLOSED_DEAL, *([where] if where is not None else []))
    ids = [int(i) for i in conn.execute(touched).scalars()]
    if not ids:
        return None
    stored_before = _stored(conn, ids)
    result = state.invoke_statement()
    stored_after = _stored(conn, ids)
    apply(conn, [c for c in map(_stored_closing, stored_before.values()) if c is not None],
          [c for c in map(_stored_closing, stored_after.values()) if c is not None])
    return result


#: A deal that is closed (what the tables count).
_CLOSED_DEAL = (Deal.__table__.c.closed_at.is_not(None), Deal.__table__.c.status != OPEN)


def apply(conn: Connection, removed: list[Closing], added: list[Closing]) -> None:
    """Take ``removed`` out of the tables and put ``added`` in."""
    removed, added = _net(removed, added)
    if not (removed or added):
        return
    records: dict[tuple[Any, ...], tuple[list[tuple[int, int, int, int]], list[tuple[int, int, int, int]]]] = {}
    reasons: dict[tuple[Any, ...], list[int]] = {}
    stages: dict[tuple[Any, ...], list[int]] = {}
    for sign, closings in ((-1, removed), (+1, added)):
        for c in closings:
            records.setdefault(c.cell, ([], []))[0 if sign > 0 else 1].append(c.record)
            if c.lost:
                for table_key, sums in (((*c.cell[:5], c.reason), reasons), ((*c.cell[:5], c.stage), stages)):
                    entry = sums.setdefault(table_key, [0, 0])
                    entry[0] += sign
                    entry[1] += sign * c.cents
    _update_cells(conn, records)
    _add_sums(conn, lost_reasons, REASON_KEY, reasons)
    _add_sums(conn, lost_stages, STAGE_KEY, stages)


def _net(removed: list[Closing], added: list[Closing]) -> tuple[list[Closing], list[Closing]]:
    """Drop what is both removed and added (a change the tables do not see)."""
    left = list(added)
    kept = []
    for c in removed:
        if c in left:
            left.remove(c)
        else:
            kept.append(c)
    return kept, left


def _insert(dialect: str, table: sa.Table) -> Any:
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def _key_params(names: tuple[str, ...], key: tuple[Any, ...]) -> dict[str, Any]:
    return {f"k_{n}": v for n, v in zip(names, key, strict=True)}


def _by_key(table: sa.Table, names: tuple[str, ...]) -> sa.ColumnElement[bool]:
    """The row of one key, as bound parameters ``k_<column>``."""
    return sa.and_(*(table.c[n] == sa.bindparam(f"k_{n}") for n in names))


def _cells_read(dialect: str) -> Any:
    stmt = sa.select(cells.c.records).where(_by_key(cells, CELL_KEY))
    return stmt.with_for_update() if dialect == "postgresql" else stmt


def _cells_write(dialect: str) -> Any:
    insert = _insert(dialect, cells)
    return insert.on_conflict_do_update(
        index_elements=list(CELL_KEY),
        set_={name: getattr(insert.excluded, name) for name in ("n", "cents", "with_amount", "activities", "records")})


def _update_cells(conn: Connection, changes: dict[tuple[Any, ...], tuple[list[Any], list[Any]]]) -> None:
    """Read, change and write back the cells' records (under a row lock on PostgreSQL)."""
    if not changes:
        return
    if conn.dialect.name == "postgresql":  # the rows exist, so that FOR UPDATE locks them
        empty = {"n": 0, "cents": 0, "with_amount": 0, "activities": 0, "records": b""}
        conn.execute(_statement(conn, "cells_ensure", lambda d: _insert(d, cells).on_conflict_do_nothing()),
                     [{**dict(zip(CELL_KEY, key, strict=True)), **empty} for key in changes])
    read = _statement(conn, "cells_read", _cells_read)
    upserts, deletes = [], []
    for key, (adds, removes) in changes.items():
        recs = decode(conn.execute(read, _key_params(CELL_KEY, key)).scalar())
        for record in removes:
            found = np.flatnonzero(recs == np.array(record, dtype=RECORD))
            if len(found):  # absent only if the table drifted: `loudou analytics rebuild --check` shows it
                recs = np.delete(recs, found[0])
        if adds:
            recs = np.concatenate([recs, as_records(adds)])
        if len(recs):
            n, cents, with_amount, activities = summary(recs)
            upserts.append({**dict(zip(CELL_KEY, key, strict=True)), "n": n, "cents": cents,
                            "with_amount": with_amount, "activities": activities, "records": recs.tobytes()})
        else:
            deletes.append(_key_params(CELL_KEY, key))
    if upserts:
        conn.execute(_statement(conn, "cells_write", _cells_write), upserts)
    if deletes:
        conn.execute(_statement(conn, "cells_delete", lambda _d: cells.delete().where(_by_key(cells, CELL_KEY))),
                     deletes)


def _sums_write(table: sa.Table, names: tuple[str, ...]) -> Callable[[str], Any]:
    def build(dialect: str) -> Any:
        insert = _insert(dialect, table)
        return insert.on_conflict_do_update(
            index_elements=list(names),
            set_={"n": table.c.n + insert.excluded.n, "cents": table.c.cents + insert.excluded.cents})
    return build


def _add_sums(conn: Connection, table: sa.Table, names: tuple[str, ...], sums: dict[tuple[Any, ...], list[int]]
              ) -> None:
    rows = [{**dict(zip(names, key, strict=True)), "n": n, "cents": cents} for key, (n, cents) in sums.items()
            if n or cents]
    if rows:
        conn.execute(_statement(conn, f"{table.name}_add", _sums_write(table, names)), rows)


# ---------------------------------------------------------------- rebuilt from the deals

def _deal_records_select(dialect: str) -> sa.Select[Any]:
    d = Deal.__table__
    return (sa.select(d.c.pipeline_id, counters._month_expr(d.c.closed_at), sa.func.coalesce(d.c.team_id, 0),
                      sa.func.coalesce(d.c.owner_id, 0), sa.func.coalesce(d.c.channel_id, 0), d.c.status,
                      _DayOfMonth(d.c.closed_at), d.c.activity_count,
                      cycle_expr(dialect, d.c.created_at, d.c.closed_at), cents_expr(d.c.amount))
            .where(d.c.closed_at.is_not(None), d.c.status != OPEN))


def _lost_select(column: str) -> sa.Select[Any]:
    d = Deal.__table__
    month = counters._month_expr(d.c.closed_at)
    keys = (d.c.pipeline_id, month, sa.func.coalesce(d.c.team_id, 0), sa.func.coalesce(d.c.owner_id, 0),
            sa.func.coalesce(d.c.channel_id, 0), sa.func.coalesce(d.c[column], 0))
    return (sa.select(*keys, sa.func.count(), sa.func.coalesce(sa.func.sum(cents_expr(d.c.amount)), 0))
            .where(d.c.closed_at.is_not(None), d.c.status == LOST).group_by(*keys))


def expected_cells(conn: Connection) -> dict[tuple[Any, ...], np.ndarray]:
    """Every cell's records as the deals give them."""
    grouped: dict[tuple[Any, ...], list[tuple[int, int, int, int]]] = defaultdict(list)
    for p, m, team, owner, channel, status, day, activities, cycle, cents in conn.execute(
            _deal_records_select(conn.dialect.name)):
        grouped[(p, counters._as_date(m), team, owner, channel, _status(status))].append(
            (int(day), int(activities or 0), int(cycle or 0), NO_CENTS if cents is None else int(cents)))
    return {key: as_records(rows) for key, rows in grouped.items()}


def _expected_sums(conn: Connection, column: str) -> dict[tuple[Any, ...], tuple[int, int]]:
    return {(p, counters._as_date(m), t, o, c, k): (int(n), int(cents))
            for p, m, t, o, c, k, n, cents in conn.execute(_lost_select(column))}


def _stored_sums(conn: Connection, table: sa.Table, names: tuple[str, ...]) -> dict[tuple[Any, ...], tuple[int, int]]:
    out = {}
    for row in conn.execute(sa.select(*(table.c[n] for n in names), table.c.n, table.c.cents)):
        if row.n or row.cents:
            out[(row[0], counters._as_date(row[1]), *row[2:len(names)])] = (int(row.n), int(row.cents))
    return out


def check(conn: Connection) -> dict[str, int]:
    """Keys whose stored values differ from what the deals give, per table."""
    want = {key: (summary(recs), np.sort(recs).tobytes()) for key, recs in expected_cells(conn).items()}
    have = {}
    for row in conn.execute(sa.select(cells)):
        recs = decode(row.records)
        if row.n or len(recs):
            key = (row.pipeline_id, counters._as_date(row.month), row.team_id, row.owner_id, row.channel_id,
                   row.status)
            stored_summary = (int(row.n), int(row.cents), int(row.with_amount), int(row.activities))
            have[key] = (stored_summary if stored_summary == summary(recs) else (-1, 0, 0, 0),
                         np.sort(recs).tobytes())
    return {
        cells.name: counters._diff(want, have),
        lost_reasons.name: counters._diff(_expected_sums(conn, "lost_reason_id"),
                                          _stored_sums(conn, lost_reasons, REASON_KEY)),
        lost_stages.name: counters._diff(_expected_sums(conn, "stage_id"),
                                         _stored_sums(conn, lost_stages, STAGE_KEY)),
    }


def rebuild(conn: Connection) -> None:
    """Replace the three tables with what the deals give (in the caller's transaction)."""
    for table in (cells, lost_reasons, lost_stages):
        conn.execute(sa.delete(table))
    rows = []
    for key, recs in expected_cells(conn).items():
        n, cents, with_amount, activities = summary(recs)
        rows.append({**dict(zip(CELL_KEY, key, strict=True)), "n": n, "cents": cents, "with_amount": with_amount,
                     "activities": activities, "records": recs.tobytes()})
        if len(rows) >= 5000:
            conn.execute(cells.insert(), rows)
            rows = []
    if rows:
        conn.execute(cells.insert(), rows)
    counters.insert_from(conn, lost_reasons, (*REASON_KEY, "n", "cents"), _lost_select("lost_reason_id"))
    counters.insert_from(conn, lost_stages, (*STAGE_KEY, "n", "cents"), _lost_select("stage_id"))


counters.REBUILDERS.append(rebuild)
counters.CHECKERS.append(check)


# ---------------------------------------------------------------- reading

def countable(filters: ReportFilters) -> bool:
    """Filters the tables carry (product and company segment are not in them)."""
    return filters.product_id is None and filters.industry is None


def _periods(filters: ReportFilters) -> tuple[tuple[dt.date, dt.date] | None, list[tuple[dt.datetime, dt.datetime]]]:
    """Whole months of the period (from the tables) and the rest (from the deals)."""
    if not countable(filters):
        return None, [(filters.start, filters.end)]
    return counters.split_period(filters.start, filters.end)


def table_conditions(table: sa.Table, viewer: User, filters: ReportFilters) -> list[sa.ColumnElement[bool]]:
    """The filters and the access policy on a table keyed by pipeline, team, owner and channel."""
    c = table.c
    out = [policy.owned_condition(viewer, c.team_id, c.owner_id)]
    if filters.pipeline_id is not None:
        out.append(c.pipeline_id == filters.pipeline_id)
    for name in ("team_id", "owner_id", "channel_id"):
        value = getattr(filters, name)
        if value is not None:
            out.append(c[name] == value)
    return out


def _in_months(table: sa.Table, months: tuple[dt.date, dt.date]) -> list[sa.ColumnElement[bool]]:
    return [table.c.month >= months[0], table.c.month < months[1]]


def _closed_in(viewer: User, filters: ReportFilters, start: dt.datetime, end: dt.datetime,
               statuses: Iterable[str]) -> list[sa.ColumnElement[bool]]:
    return [Deal.closed_at >= start, Deal.closed_at < end, Deal.status.in_(list(statuses)),
            *deal_conditions(viewer, filters, filters.pipeline_id)]


#: The keys :func:`closed_sums` can group by (besides the status).
SUM_KEYS = ("month", "team_id", "owner_id", "channel_id")


def _cell(values: dict[str, Any], status: str, n: int, cents: int, with_amount: int, activities: int,
          records: np.ndarray | None = None) -> Cell:
    month = values.get("month")
    return Cell(counters._as_date(month) if month is not None else dt.date.min, _none(values.get("team_id", 0)),
                _none(values.get("owner_id", 0)), _none(values.get("channel_id", 0)), _status(status), int(n),
                int(cents or 0), int(with_amount or 0), int(activities or 0), records)


def closed_sums(session: Session, viewer: User, filters: ReportFilters, statuses: Sequence[str],
                by: Sequence[str]) -> list[Cell]:
    """The deals closed in the period with one of ``statuses``, narrowed by the filters and
    the policy: their count, amount, deals with an amount and activities by status and the
    keys ``by`` (of :data:`SUM_KEYS`; the others are left None). A key may come more than
    once (whole months and the rest of the period): add them up."""
    months, rest = _periods(filters)
    out: list[Cell] = []
    if months is not None:
        keys = [cells.c[k] for k in by]
        stmt = (sa.select(*keys, cells.c.status, sa.func.sum(cells.c.n), sa.func.sum(cells.c.cents),
                          sa.func.sum(cells.c.with_amount), sa.func.sum(cells.c.activities))
                .where(*_in_months(cells, months), *table_conditions(cells, viewer, filters),
                       cells.c.status.in_(list(statuses)))
                .group_by(*keys, cells.c.status))
        for row in session.execute(stmt):
            out.append(_cell(dict(zip(by, row, strict=False)), *row[len(by):]))
    d = Deal.__table__
    raw_keys = {"month": counters._month_expr(d.c.closed_at), "team_id": sa.func.coalesce(d.c.team_id, 0),
                "owner_id": sa.func.coalesce(d.c.owner_id, 0), "channel_id": sa.func.coalesce(d.c.channel_id, 0)}
    for start, end in rest:
        keys = [raw_keys[k] for k in by]
        stmt = (sa.select(*keys, d.c.status, sa.func.count(), sa.func.coalesce(sa.func.sum(cents_expr(d.c.amount)), 0),
                          sa.func.count(d.c.amount), sa.func.coalesce(sa.func.sum(d.c.activity_count), 0))
                .where(*_closed_in(viewer, filters, start, end, statuses)).group_by(*keys, d.c.status))
        for row in session.execute(stmt):
            out.append(_cell(dict(zip(by, row, strict=False)), *row[len(by):]))
    return out


def closed_records(session: Session, viewer: User, filters: ReportFilters, statuses: Sequence[str]) -> list[Cell]:
    """The deals closed in the period with one of ``statuses``, narrowed by the filters and
    the policy, as cells (month, team, owner, channel, status) with their records."""
    months, rest = _periods(filters)
    out: list[Cell] = []
    if months is not None:
        c = cells.c
        stmt = (sa.select(c.month, c.team_id, c.owner_id, c.channel_id, c.status, c.n, c.cents, c.with_amount,
                          c.activities, c.records)
                .where(*_in_months(cells, months), *table_conditions(cells, viewer, filters),
                       c.status.in_(list(statuses))))
        months_seen: dict[Any, dt.date] = {}
        for row in session.execute(stmt):
            month = months_seen.get(row[0])
            if month is None:
                month = months_seen[row[0]] = counters._as_date(row[0])
            out.append(Cell(month, row[1] or None, row[2] or None, row[3] or None, row[4], row[5], row[6], row[7],
                            row[8], decode(row[9])))
    d = Deal.__table__
    dialect = session.get_bind().dialect.name
    for start, end in rest:
        grouped: dict[tuple[Any, ...], list[tuple[int, int, int, int]]] = defaultdict(list)
        stmt = (sa.select(counters._month_expr(d.c.closed_at), sa.func.coalesce(d.c.team_id, 0),
                          sa.func.coalesce(d.c.owner_id, 0), sa.func.coalesce(d.c.channel_id, 0), d.c.status,
                          _DayOfMonth(d.c.closed_at), d.c.activity_count,
                          cycle_expr(dialect, d.c.created_at, d.c.closed_at), cents_expr(d.c.amount))
                .where(*_closed_in(viewer, filters, start, end, statuses)))
        for row in session.execute(stmt):
            m, team, owner, channel, status, day, activities, cycle, cents = tuple(row)
            grouped[(m, team, owner, channel, _status(status))].append(
                (int(day), int(activities or 0), int(cycle or 0), NO_CENTS if cents is None else int(cents)))
        for (m, team, owner, channel, status), rows in grouped.items():
            recs = as_records(rows)
            n, cents, with_amount, activities = summary(recs)
            out.append(Cell(counters._as_date(m), _none(team), _none(owner), _none(channel), status, n, cents,
                            with_amount, activities, recs))
    return out


@dataclass(frozen=True)
class LostGroup:
    key: int | None  # lost reason or stage
    channel_id: int | None
    owner_id: int | None
    n: int
    cents: int


def lost_groups(session: Session, viewer: User, filters: ReportFilters) -> tuple[list[LostGroup], list[LostGroup]]:
    """The deals lost in the period by (lost reason, channel, owner) and by the stage they
    were lost at (channel and owner None)."""
    months, rest = _periods(filters)
    by_reason: dict[tuple[int, int, int], list[int]] = defaultdict(lambda: [0, 0])
    by_stage: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    if months is not None:
        t = lost_reasons
        for reason, channel, owner, n, cents in session.execute(
                sa.select(t.c.lost_reason_id, t.c.channel_id, t.c.owner_id, sa.func.sum(t.c.n), sa.func.sum(t.c.cents))
                .where(*_in_months(t, months), *table_conditions(t, viewer, filters))
                .group_by(t.c.lost_reason_id, t.c.channel_id, t.c.owner_id)):
            entry = by_reason[(int(reason), int(channel), int(owner))]
            entry[0] += int(n or 0)
            entry[1] += int(cents or 0)
        t = lost_stages
        for stage, n, cents in session.execute(
                sa.select(t.c.stage_id, sa.func.sum(t.c.n), sa.func.sum(t.c.cents))
                .where(*_in_months(t, months), *table_conditions(t, viewer, filters)).group_by(t.c.stage_id)):
            entry = by_stage[int(stage)]
            entry[0] += int(n or 0)
            entry[1] += int(cents or 0)
    d = Deal.__table__
    cents_sum = sa.func.coalesce(sa.func.sum(cents_expr(d.c.amount)), 0)
    for start, end in rest:
        where = _closed_in(viewer, filters, start, end, (LOST,))
        raw_keys = (sa.func.coalesce(d.c.lost_reason_id, 0), sa.func.coalesce(d.c.channel_id, 0),
                    sa.func.coalesce(d.c.owner_id, 0))
        for reason, channel, owner, n, cents in session.execute(
                sa.select(*raw_keys, sa.func.count(), cents_sum).where(*where).group_by(*raw_keys)):
            entry = by_reason[(int(reason), int(channel), int(owner))]
            entry[0] += int(n)
            entry[1] += int(cents)
        for stage, n, cents in session.execute(
                sa.select(d.c.stage_id, sa.func.count(), cents_sum).where(*where).group_by(d.c.stage_id)):
            entry = by_stage[int(stage)]
            entry[0] += int(n)
            entry[1] += int(cents)
    return ([LostGroup(_none(r), _none(c), _none(o), n, cents) for (r, c, o), (n, cents) in by_reason.items() if n],
            [LostGroup(stage, None, None, n, cents) for stage, (n, cents) in by_stage.items() if n])


def _created_in(viewer: User, filters: ReportFilters, start: Any, end: Any) -> list[sa.ColumnElement[bool]]:
    out = [Deal.created_at >= start, Deal.created_at < end, *deal_conditions(viewer, filters, filters.pipeline_id)]
    if filters.pipeline_id is None:  # every pipeline by name: ix_deals_cohort then covers any filter
        out.append(Deal.pipeline_id.in_(sa.select(Pipeline.id).scalar_subquery()))
    return out


def _cohort_conditions(viewer: User, filters: ReportFilters) -> list[sa.ColumnElement[bool]]:
    """:func:`table_conditions` on the funnel's cohort counts, whose key starts with the
    pipeline: every pipeline by name, so that each is a range of months."""
    t = counters.cohort_counts
    out = table_conditions(t, viewer, filters)
    if filters.pipeline_id is None:
        out.append(t.c.pipeline_id.in_(sa.select(Pipeline.id).scalar_subquery()))
    return out


def created_counts(session: Session, viewer: User, filters: ReportFilters,
                   ranges: Sequence[tuple[dt.datetime, dt.datetime]]) -> list[int]:
    """Deals created in each of the ``ranges`` (buckets of the period), narrowed by the
    filters and the policy: whole months from the funnel's cohort counts, the rest counted
    on the deals."""
    out = [0] * len(ranges)
    month_range: dict[dt.date, int] = {}
    kind = Deal.__table__.c.created_at.type
    count = sa.select(sa.func.count()).select_from(Deal).where(  # built once, run per range
        *_created_in(viewer, filters, sa.bindparam("low", type_=kind), sa.bindparam("high", type_=kind)))
    for i, (start, end) in enumerate(ranges):
        months, rest = counters.split_period(start, end) if countable(filters) else (None, [(start, end)])
        if months is not None:
            month = months[0]
            while month < months[1]:
                month_range[month] = i
                month = counters._next_month(month)
        for low, high in rest:
            out[i] += int(session.scalar(count, {"low": low, "high": high}) or 0)
    if month_range:
        t = counters.cohort_counts
        for month, n in session.execute(
                sa.select(t.c.month, sa.func.sum(t.c.n))
                .where(t.c.month >= min(month_range), t.c.month <= max(month_range),
                       *_cohort_conditions(viewer, filters)).group_by(t.c.month)):
            at = month_range.get(counters._as_date(month))
            if at is not None:
                out[at] += int(n or 0)
    return out


def open_at_start(session: Session, viewer: User, filters: ReportFilters) -> int:
    """Deals created before the period's start and not closed before it: those created
    before it less those closed before it (a deal closes after it is created)."""
    start = filters.start
    if not countable(filters):
        stmt = sa.select(sa.func.count()).select_from(Deal).where(
            *deal_conditions(viewer, filters, filters.pipeline_id), Deal.created_at < start,
            sa.or_(Deal.closed_at.is_(None), Deal.closed_at >= start))
        return int(session.scalar(stmt) or 0)
    month = counters.month_of(start)
    month_start = dt.datetime(month.year, month.month, 1, tzinfo=dt.UTC)
    t = counters.cohort_counts
    created = int(session.scalar(sa.select(sa.func.sum(t.c.n)).where(
        t.c.month < month, *_cohort_conditions(viewer, filters))) or 0)
    closed = int(session.scalar(sa.select(sa.func.sum(cells.c.n)).where(
        cells.c.month < month, *table_conditions(cells, viewer, filters))) or 0)
    if month_start < start:
        created += int(session.scalar(sa.select(sa.func.count()).select_from(Deal).where(
            *_created_in(viewer, filters, month_start, start))) or 0)
        closed += int(session.scalar(sa.select(sa.func.count()).select_from(Deal).where(
            *_closed_in(viewer, filters, month_start, start, CLOSED))) or 0)
    return created - closed


# ---------------------------------------------------------------- figures from records

def percentile(values: np.ndarray, q: float) -> float | None:
    """:func:`loudou.analytics.stats.percentile` of integer values, in any order."""
    if not len(values):
        return None
    pos = (len(values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(values) - 1)
    ranked = np.partition(values, (lo, hi))
    low, high = int(ranked[lo]), int(ranked[hi])
    return low + (high - low) * (pos - lo)
