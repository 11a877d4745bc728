"""The analytics derived tables of a demo company, computed from the generator's arrays.

``loudou demo`` writes raw rows and bypasses the services, so the derived tables that the
services keep current (:mod:`loudou.analytics.counters` and the modules registered in its
``REBUILDERS``) must be filled afterwards. Their SQL rebuild reads the history back and
groups it in the database: about two minutes at 1M deals (3.2M transitions, 10M
activities), more than the whole demo may take. The :class:`~loudou.demo.generator.DemoPlan`
already holds every deal, transition and activity as numpy arrays, so
:func:`write_counters` groups those instead (mixed-radix key codes and bincounts) and
writes the few hundred thousand resulting rows: 8 to 12 s at 1M deals on a shared 2-core
machine, SQLite, commit included.

What makes the result equal to the SQL rebuild, key for key:

* the arrays are the very ``TableData`` columns the writer turns into rows
  (``plan.deals()``, ``plan.stage_transitions()``, ``plan.activities(block)``), read with
  the writer's NULL markers: a missing team, owner, channel, company or lost reason is
  the tables' 0;
* months and days are taken from the UTC timestamps, as the stored UTC text (SQLite) or
  ``AT TIME ZONE 'UTC'`` (PostgreSQL) gives them;
* amounts are the writer's whole cents (``Kind.MONEY``): what ``round(amount * 100)``
  gives back from the stored value on both databases;
* stay lengths are the written ``duration_s`` and go through the same buckets
  (:func:`loudou.analytics.counters.stay_bucket`);
* a closed deal's cycle is what :func:`loudou.analytics.counters_outcomes.cycle_expr`
  computes from the stored timestamps: the exact length rounded half away from zero,
  except that SQLite's ``julianday`` works in floating point on milliseconds. Only when
  the exact length lies within a few milliseconds of half a second can the two differ:
  those few deals (about 1%) have their cycle computed by the database itself, once
  (:attr:`_Company.closed_cycle`, shared by the outcome cells and the segments);
* a deal's industry is its company's, from the generator's company arrays (the labels
  ``plan.companies()`` writes, without building that table's names and phones: 1 s at
  1M deals); the generator writes no product on deals, so every deal has product 0.

It runs on a connection to a database the demo has just been written into (the ambiguous
cycles are read from its deals), in the caller's transaction. Keys, tables and helpers
(record layout, summaries, won-lead rows) are the analytics modules' own. A rebuild in
``counters.REBUILDERS`` that is not covered here (:data:`COVERED`; a derived table added
later) still runs its SQL rebuild, in registration order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection

# Every domain's models, and with them every derived table's module: each registers its
# rebuild in counters.REBUILDERS on import, and an uncovered one must still run.
import loudou.models  # noqa: F401
from loudou.analytics import counters, counters_flow, counters_outcomes, counters_segments, counters_value
from loudou.deal.models import Deal, DealStatus
from loudou.demo.generator import NO_TIME, US, Column, DemoPlan, Kind, TableData
from loudou.demo.writer import NoProgress, Progress

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Rows per INSERT batch.
BATCH_ROWS = 10_000
#: A cycle whose exact length is this close to half a second (µs) is left to the database:
#: SQLite's julianday rounds each timestamp to the millisecond and subtracts in floating
#: point, which can tip such a length either way (a margin of 5 ms covers it amply).
CYCLE_MARGIN_US = 5_000
#: Key codes spanning up to this many values are grouped by counting, not sorting.
COUNTED_CODES = 1 << 24
#: Deal ids per query when reading those cycles back.
IDS_PER_QUERY = 1_000


# ---------------------------------------------------------------- columns as the writer writes them

def _ints(table: TableData, name: str, missing: int = 0) -> IntArray:
    """An integer column of ``table`` with NULL as ``missing`` (the counters' 0 for a
    missing key): the writer's NULL marker is a negative value (``Kind.INT_NULL``,
    ``Kind.MONEY``); a constant column is the same value on every row."""
    column = table.column(name)
    if column.kind is Kind.SAME and column.same_as:
        column = table.column(column.same_as)
    if column.kind is Kind.CONST:
        return np.full(table.n_rows, missing if column.value is None else int(column.value), dtype=np.int64)
    if column.kind is Kind.INT:
        return np.asarray(column.data, dtype=np.int64)
    if column.kind in (Kind.INT_NULL, Kind.MONEY):
        data = np.asarray(column.data, dtype=np.int64)
        return np.where(data < 0, missing, data)
    raise TypeError(f"{table.name}.{name}: {column.kind} is not an integer column")


def _times(table: TableData, name: str) -> IntArray:
    """A timestamp column in µs since the epoch (UTC), ``NO_TIME`` where NULL."""
    column = table.column(name)
    if column.kind is Kind.SAME and column.same_as:
        column = table.column(column.same_as)
    if column.kind is not Kind.TIME:
        raise TypeError(f"{table.name}.{name}: {column.kind} is not a time column")
    return np.asarray(column.data, dtype=np.int64)


def _ints_or_missing(table: TableData, name: str, missing: int = 0) -> IntArray:
    """:func:`_ints`, all ``missing`` when the generator does not write the column (the
    database default: NULL)."""
    try:
        table.column(name)
    except KeyError:
        return np.full(table.n_rows, missing, dtype=np.int64)
    return _ints(table, name, missing)


def _codes(table: TableData, name: str) -> tuple[IntArray, list[str]]:
    """A coded text column (status, kind): its codes and the values they index."""
    column: Column = table.column(name)
    if column.kind is not Kind.CODE or column.pool is None:
        raise TypeError(f"{table.name}.{name}: {column.kind} is not a coded column")
    return np.asarray(column.data, dtype=np.int64), list(column.pool)


def _optional(table: TableData, name: str) -> list[int | None]:
    """A nullable integer column as Python values (None where NULL); all NULL when the
    generator does not write the column (the database default)."""
    try:
        column = table.column(name)
    except KeyError:
        return [None] * table.n_rows
    if column.kind is Kind.CONST:
        return [column.value] * table.n_rows
    data = _ints(table, name, missing=-1)
    return [None if v < 0 else v for v in data.tolist()]


def _month(us: IntArray) -> IntArray:
    """Months since 1970-01 of UTC timestamps (µs), as ``counters._month_expr`` buckets them."""
    return us.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)


def _day_of_month(us: IntArray) -> IntArray:
    """Day of the month (1–31) of UTC timestamps (µs)."""
    days = us.astype("datetime64[us]").astype("datetime64[D]")
    return (days - days.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1


def _dates(months: IntArray) -> list[dt.date]:
    """Months since 1970-01 as the first day of each (the tables' ``month``)."""
    if not len(months):
        return []
    low = int(months.min())
    days = np.array([dt.date(1970 + m // 12, m % 12 + 1, 1) for m in range(low, int(months.max()) + 1)],
                    dtype=object)
    out: list[dt.date] = days[months - low].tolist()
    return out


def _half_away(us: IntArray) -> IntArray:
    """Lengths in µs rounded to whole seconds, halves away from zero (SQL's ``round``)."""
    whole = (np.abs(us) + US // 2) // US
    return np.where(us < 0, -whole, whole)


# ---------------------------------------------------------------- grouping

@dataclass
class _Groups:
    """Rows grouped by integer key columns: the group of each row (``of``) and one row of
    each group (``first``), groups in ascending key order."""

    of: IntArray
    first: IntArray

    @classmethod
    def by(cls, *keys: IntArray) -> _Groups:
        """The keys are combined into one mixed-radix code. Their ranges are small (months,
        teams, owners, channels, stages, hours), so the codes usually span a few million
        values at most and are grouped by counting them, without sorting millions of rows;
        a wider span is sorted (``np.unique``)."""
        n = len(keys[0])
        code = np.zeros(n, dtype=np.int64)
        width = 1
        for key in keys:
            if not n:
                break
            low = int(key.min())
            span = int(key.max()) - low + 1
            if width * span >= 1 << 62:  # keep the mixed-radix code within int64
                _, code = np.unique(code, return_inverse=True)
                width = int(code.max()) + 1
            code = code * span + (key - low)
            width *= span
        if width <= max(COUNTED_CODES, 4 * n):
            present = np.bincount(code, minlength=width) > 0
            of = (np.cumsum(present) - 1)[code]
            size = int(present.sum())
        else:
            _, inverse = np.unique(code, return_inverse=True)
            of = inverse.reshape(-1)
            size = int(of.max()) + 1 if n else 0
        of = of.astype(np.int64)
        first = np.empty(size, dtype=np.int64)
        first[of] = np.arange(n, dtype=np.int64)  # any row of a group stands for its keys
        return cls(of, first)

    @property
    def size(self) -> int:
        return len(self.first)

    def count(self) -> IntArray:
        return np.bincount(self.of, minlength=self.size).astype(np.int64)

    def sum(self, values: IntArray) -> IntArray:
        """Exact integer sums per group."""
        out = np.zeros(self.size, dtype=np.int64)
        np.add.at(out, self.of, values)
        return out

    def keys(self, *columns: IntArray) -> list[list[int]]:
        """Each group's value of each key column, as Python ints."""
        return [c[self.first].tolist() for c in columns]


def _replace(conn: Connection, table: sa.Table, names: Sequence[str], columns: Sequence[Sequence[Any]]) -> None:
    """Empty ``table`` and insert rows given column by column (every column of the table).

    SQLAlchemy's executemany builds and processes a parameter dictionary per row, which
    at 1M deals (about 400k rows in all) costs more than everything else here. So the
    rows go to the driver as they are: on SQLite one INSERT compiled once and the
    DBAPI's ``executemany``; on PostgreSQL ``COPY … FROM STDIN`` (as the demo writer
    does: an ``executemany`` there costs a round trip per row). Both run on the caller's
    connection, in its transaction. Each value still goes through its column type's
    bind processor, so the stored values are the ones SQLAlchemy would store."""
    if sorted(names) != sorted(table.columns.keys()):
        raise ValueError(f"{table.name}: rows of {sorted(names)}, not of every column")
    conn.execute(sa.delete(table))
    dialect = conn.dialect
    processed: dict[str, Sequence[Any]] = {}
    for name, values in zip(names, columns, strict=True):
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        processed[name] = values if process is None else _processed(process, values)
    if dialect.name == "postgresql":
        quote = dialect.identifier_preparer.quote
        sql = f"COPY {quote(table.name)} ({', '.join(quote(n) for n in names)}) FROM STDIN"
        with conn.connection.driver_connection.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[union-attr]
            for row in zip(*processed.values(), strict=True):
                copy.write_row(row)
        return
    compiled = table.insert().compile(dialect=dialect, column_keys=list(names))
    rows: list[Any]
    if compiled.positional:
        rows = list(zip(*(processed[key] for key in compiled.positiontup or ()), strict=True))
    else:
        rows = [dict(zip(names, values, strict=True)) for values in zip(*processed.values(), strict=True)]
    for start in range(0, len(rows), BATCH_ROWS):
        conn.exec_driver_sql(compiled.string, rows[start:start + BATCH_ROWS])


def _processed(process: Callable[[Any], Any], values: Sequence[Any]) -> list[Any]:
    """``process`` applied to each value, once per distinct value (a month column holds
    two dozen distinct dates in tens of thousands of rows)."""
    done: dict[Any, Any] = {}
    out = []
    for value in values:
        try:
            out.append(done[value])
        except KeyError:
            out.append(done.setdefault(value, process(value)))
    return out


def _replace_rows(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """:func:`_replace` with rows as dictionaries (the analytics modules' row builders)."""
    names = list(table.columns.keys())
    _replace(conn, table, names, [[row[name] for row in rows] for name in names])


# ---------------------------------------------------------------- the plan's rows

class _Company:
    """The deals, their open stays and their activities, as the written rows give them."""

    def __init__(self, conn: Connection, plan: DemoPlan) -> None:
        self.conn = conn
        self.plan = plan
        deals = plan.deals()
        self.deals = deals
        self.ids = _ints(deals, "id")
        self.pipeline = _ints(deals, "pipeline_id")
        self.team = _ints(deals, "team_id")
        self.owner = _ints(deals, "owner_id")
        self.channel = _ints(deals, "channel_id")
        self.company = _ints(deals, "company_id")
        self.stage = _ints(deals, "stage_id")
        self.reason = _ints(deals, "lost_reason_id")
        self.mask = _ints(deals, "reached_mask")
        self.activity_count = _ints(deals, "activity_count")
        self.cents = _ints(deals, "amount", missing=-1)  # -1: no amount
        self.created = _times(deals, "created_at")
        self.closed_at = _times(deals, "closed_at")
        self.status, self.statuses = _codes(deals, "status")
        self.created_month = _month(self.created)
        self.consecutive = bool(len(self.ids)) and bool(np.array_equal(
            self.ids, self.ids[0] + np.arange(len(self.ids), dtype=np.int64)))
        self._closed_month: IntArray | None = None
        self._closed_cycle: IntArray | None = None
        self._stays: tuple[IntArray, IntArray, IntArray, IntArray] | None = None
        self._kinds: tuple[IntArray, list[str]] | None = None

    def status_code(self, status: DealStatus) -> int:
        return self.statuses.index(status.value) if status.value in self.statuses else -1

    def closed(self, *statuses: DealStatus) -> BoolArray:
        """Deals with a closing time and one of ``statuses`` (any but open if none)."""
        has_time = self.closed_at != NO_TIME
        if not statuses:
            return has_time & (self.status != self.status_code(DealStatus.open))
        return has_time & np.isin(self.status, [self.status_code(s) for s in statuses])

    @property
    def closed_month(self) -> IntArray:
        """Month closed (UTC), -1 for deals without a closing time."""
        if self._closed_month is None:
            has_time = self.closed_at != NO_TIME
            self._closed_month = np.where(has_time, _month(np.where(has_time, self.closed_at, 0)), -1)
        return self._closed_month

    @property
    def closed_cycle(self) -> IntArray:
        """Each closed deal's cycle (:meth:`cycles`; 0 for the other deals), computed once:
        the outcome cells and the segments both need it."""
        if self._closed_cycle is None:
            sel = np.flatnonzero(self.closed())
            self._closed_cycle = np.zeros(len(self.ids), dtype=np.int64)
            self._closed_cycle[sel] = self.cycles(sel)
        return self._closed_cycle

    def status_values(self, codes: list[int]) -> list[str]:
        return [self.statuses[c] for c in codes]

    def deal_index(self, ids: IntArray) -> IntArray:
        """Positions in the deals' arrays of deal ids (the deals are written in id order,
        and the generator numbers them consecutively: then a subtraction does)."""
        if self.consecutive:
            return ids - self.ids[0]
        return np.searchsorted(self.ids, ids).astype(np.int64)

    def stays(self) -> tuple[IntArray, IntArray, IntArray, IntArray]:
        """The completed stays in an open stage (transitions into an open state with a
        duration): (deal position, stage, start µs, seconds)."""
        if self._stays is None:
            tr = self.plan.stage_transitions()
            status, pool = _codes(tr, "to_status")
            duration = _ints(tr, "duration_s", missing=-1)
            keep = (status == pool.index(DealStatus.open.value)) & (duration >= 0)
            self._stays = (self.deal_index(_ints(tr, "deal_id")[keep]), _ints(tr, "to_stage_id")[keep],
                           _times(tr, "at")[keep], duration[keep])
        return self._stays

    def activity_kinds(self) -> tuple[IntArray, list[str]]:
        """Each deal's activities by kind: a (deals, kinds) matrix and the kinds. The
        activities are built block by block (each block is a few hundred thousand rows)
        and only counted."""
        if self._kinds is None:
            counts: IntArray | None = None
            kinds: list[str] = []
            for block in range(self.plan.n_blocks):
                part = self.plan.activities(block)
                kind, pool = _codes(part, "kind")
                if counts is None:
                    kinds = pool
                    counts = np.zeros((len(self.ids), len(kinds)), dtype=np.int64)
                elif pool != kinds:
                    raise ValueError("activity kinds differ between blocks")
                if not part.n_rows:
                    continue
                deal = self.deal_index(_ints(part, "deal_id"))
                low = int(deal.min())
                span = int(deal.max()) - low + 1
                flat = np.bincount((deal - low) * len(kinds) + kind, minlength=span * len(kinds))
                counts[low:low + span] += flat.reshape(span, len(kinds))
            assert counts is not None
            self._kinds = (counts, kinds)
        return self._kinds

    def cycles(self, sel: IntArray) -> IntArray:
        """The cycle (closed − created, whole seconds) of the deals at positions ``sel``,
        equal to what ``cycle_expr`` computes from the stored timestamps: rounded half
        away from zero, and read from the database where its arithmetic could round the
        other way (a length within :data:`CYCLE_MARGIN_US` of half a second)."""
        span = self.closed_at[sel] - self.created[sel]
        out = _half_away(span)
        near_half = np.abs(np.abs(span) % US - US // 2) <= CYCLE_MARGIN_US
        ambiguous = np.flatnonzero(near_half)
        if len(ambiguous):
            found = _stored_cycles(self.conn, self.ids[sel[ambiguous]].tolist())
            out[ambiguous] = [found[i] for i in self.ids[sel[ambiguous]].tolist()]
        return out


def _stored_cycles(conn: Connection, ids: list[int]) -> dict[int, int]:
    """The cycles the database computes for these deals (``cycle_expr``)."""
    d = Deal.__table__
    stmt = (sa.select(d.c.id, counters_outcomes.cycle_expr(conn.dialect.name, d.c.created_at, d.c.closed_at))
            .where(d.c.id.in_(sa.bindparam("ids", expanding=True))))
    out: dict[int, int] = {}
    for start in range(0, len(ids), IDS_PER_QUERY):
        for deal_id, cycle in conn.execute(stmt, {"ids": ids[start:start + IDS_PER_QUERY]}):
            out[int(deal_id)] = int(cycle or 0)
    missing = set(ids) - set(out)
    if missing:
        raise LookupError(f"{len(missing)} closed deals of the plan are not in the database (e.g. {min(missing)})")
    return out


# ---------------------------------------------------------------- the funnel: cohort counts, stays by cohort

def _funnel(c: _Company) -> None:
    """``analytics_cohort_counts`` and ``analytics_stay_hours`` (``rebuild_funnel_tables``)."""
    g = _Groups.by(c.pipeline, c.created_month, c.team, c.owner, c.channel, c.mask, c.status)
    pipeline, month, team, owner, channel, mask, status = g.keys(
        c.pipeline, c.created_month, c.team, c.owner, c.channel, c.mask, c.status)
    cents = g.sum(np.maximum(c.cents, 0))  # SUM skips NULL amounts; none at all is 0
    amounts = [Decimal(v) / 100 for v in cents.tolist()]
    _replace(c.conn, counters.cohort_counts, (*counters.COHORT_KEY, "n", "amount"),
             (pipeline, _dates(np.array(month)), team, owner, channel, mask, c.status_values(status),
              g.count().tolist(), amounts))

    deal, stage, _start, seconds = c.stays()
    hours = _buckets(seconds)
    g = _Groups.by(c.pipeline[deal], c.created_month[deal], c.team[deal], stage, hours)
    pipeline, month, team, stage_id, bucket = g.keys(
        c.pipeline[deal], c.created_month[deal], c.team[deal], stage, hours)
    _replace(c.conn, counters.stay_hours, (*counters.STAY_KEY, "n"),
             (pipeline, _dates(np.array(month)), team, stage_id, bucket, g.count().tolist()))


def _buckets(seconds: IntArray) -> IntArray:
    """:func:`counters.stay_bucket` of each length: it depends on the whole hours only, so
    it is evaluated once per distinct hour count."""
    hours, where = np.unique(seconds // counters.HOUR_S, return_inverse=True)
    buckets = np.array([counters.stay_bucket(h * counters.HOUR_S) for h in hours.tolist()], dtype=np.int64)
    return buckets[where.reshape(-1)]


# ---------------------------------------------------------------- flow: stays by start, closings

def _flow(c: _Company) -> None:
    """``analytics_stay_started`` and ``analytics_closed_counts`` (``counters_flow.rebuild``)."""
    deal, stage, start, seconds = c.stays()
    started = _month(start)
    hours = _buckets(seconds)
    g = _Groups.by(c.pipeline[deal], started, c.team[deal], stage, hours)
    pipeline, month, team, stage_id, bucket = g.keys(c.pipeline[deal], started, c.team[deal], stage, hours)
    _replace(c.conn, counters_flow.stay_started, (*counters_flow.STAY_KEY, "n", "seconds"),
             (pipeline, _dates(np.array(month)), team, stage_id, bucket, g.count().tolist(), g.sum(seconds).tolist()))

    sel = np.flatnonzero(c.closed())
    cols = (c.pipeline[sel], c.closed_month[sel], c.team[sel], c.owner[sel], c.channel[sel], c.status[sel])
    g = _Groups.by(*cols)
    pipeline, month, team, owner, channel, status = g.keys(*cols)
    _replace(c.conn, counters_flow.closed_counts, (*counters_flow.CLOSED_KEY, "n"),
             (pipeline, _dates(np.array(month)), team, owner, channel, c.status_values(status), g.count().tolist()))


# ---------------------------------------------------------------- outcomes: cells with records, lost deals

def _outcomes(c: _Company) -> None:
    """``analytics_outcome_cells``, ``_reasons`` and ``_stages`` (``counters_outcomes.rebuild``)."""
    out = counters_outcomes
    sel = np.flatnonzero(c.closed())
    cols = (c.pipeline[sel], c.closed_month[sel], c.team[sel], c.owner[sel], c.channel[sel], c.status[sel])
    g = _Groups.by(*cols)
    records = np.empty(len(sel), dtype=out.RECORD)
    records["day"] = _day_of_month(c.closed_at[sel])
    records["activities"] = c.activity_count[sel]
    records["cycle"] = c.closed_cycle[sel]
    records["cents"] = np.where(c.cents[sel] >= 0, c.cents[sel], out.NO_CENTS)
    order = np.argsort(g.of, kind="stable")  # each cell's deals in id order
    bounds = np.concatenate([[0], np.cumsum(g.count())]).tolist()
    ordered = records[order]
    pipeline, month, team, owner, channel, status = g.keys(*cols)
    months, statuses = _dates(np.array(month)), c.status_values(status)
    rows = []
    for i in range(g.size):
        recs = ordered[bounds[i]:bounds[i + 1]]
        n, cents, with_amount, activities = out.summary(recs)
        rows.append({**dict(zip(out.CELL_KEY, (pipeline[i], months[i], team[i], owner[i], channel[i], statuses[i]),
                                strict=True)),
                     "n": n, "cents": cents, "with_amount": with_amount, "activities": activities,
                     "records": recs.tobytes()})
    _replace_rows(c.conn, out.cells, rows)

    lost = np.flatnonzero(c.closed(DealStatus.lost))
    lost_cents = np.maximum(c.cents[lost], 0)
    for table, names, last in ((out.lost_reasons, out.REASON_KEY, c.reason), (out.lost_stages, out.STAGE_KEY, c.stage)):
        cols = (c.pipeline[lost], c.closed_month[lost], c.team[lost], c.owner[lost], c.channel[lost], last[lost])
        g = _Groups.by(*cols)
        pipeline, month, team, owner, channel, key = g.keys(*cols)
        _replace(c.conn, table, (*names, "n", "cents"),
                 (pipeline, _dates(np.array(month)), team, owner, channel, key, g.count().tolist(),
                  g.sum(lost_cents).tolist()))


# ---------------------------------------------------------------- value: channels, activities of outcomes, won leads

def _value(c: _Company) -> None:
    """``analytics_channel_counts``, ``analytics_closed_activities`` and
    ``analytics_won_leads`` (``counters_value.rebuild``)."""
    val = counters_value
    cols = (c.pipeline, c.created_month, c.team, c.owner, c.channel, c.status)
    g = _Groups.by(*cols)
    pipeline, month, team, owner, channel, status = g.keys(*cols)
    _replace(c.conn, val.channel_counts, (*val.CHANNEL_KEY, "n", "amount_cents"),
             (pipeline, _dates(np.array(month)), team, owner, channel, c.status_values(status), g.count().tolist(),
              g.sum(np.maximum(c.cents, 0)).tolist()))

    by_kind, kinds = c.activity_kinds()
    sel = np.flatnonzero(c.closed(*(DealStatus(s) for s in val.CLOSED_STATUSES)))
    cols = (c.pipeline[sel], c.closed_month[sel], c.team[sel], c.owner[sel], c.channel[sel], c.status[sel])
    g = _Groups.by(*cols)
    pipeline, month, team, owner, channel, status = g.keys(*cols)
    months, statuses = _dates(np.array(month)), c.status_values(status)
    rows: list[dict[str, Any]] = []
    for k, kind in enumerate(kinds):
        n = g.sum(by_kind[sel, k]).tolist()
        rows.extend({**dict(zip(val.CLOSED_KEY, (pipeline[i], months[i], team[i], owner[i], channel[i], statuses[i],
                                                 kind), strict=True)), "n": n[i]}
                    for i in range(g.size) if n[i])  # the join yields only kinds that occur
    _replace_rows(c.conn, val.closed_activities, rows)

    won = np.flatnonzero(c.status == c.status_code(DealStatus.won))
    products = _optional(c.deals, "product_id")
    rows = []  # one per won deal
    for i, created, closed in zip(won.tolist(), _datetimes(c.created[won]), _datetimes(c.closed_at[won]),
                                  strict=True):
        row = val.won_lead_row(int(c.ids[i]), {
            "status": DealStatus.won, "created_at": created, "closed_at": closed,
            "pipeline_id": int(c.pipeline[i]), "team_id": int(c.team[i]), "owner_id": int(c.owner[i]),
            "channel_id": int(c.channel[i]), "company_id": int(c.company[i]), "product_id": products[i]})
        if row is not None:
            rows.append(row)
    _replace_rows(c.conn, val.won_leads, rows)


def _datetimes(us: IntArray) -> list[dt.datetime | None]:
    """Aware UTC datetimes of timestamps in µs (None for ``NO_TIME``), as read back."""
    null = us == NO_TIME
    naive = np.where(null, 0, us).astype("datetime64[us]").tolist()
    return [None if missing else moment.replace(tzinfo=dt.UTC)
            for moment, missing in zip(naive, null.tolist(), strict=True)]


# ---------------------------------------------------------------- segments: closed deals by product, by industry

def _segments(c: _Company) -> None:
    """``analytics_segment_products`` and ``analytics_segment_industries``
    (``counters_segments.rebuild``): the closed deals handed to that module's own
    :func:`~loudou.analytics.counters_segments.group` and
    :func:`~loudou.analytics.counters_segments.replace`, as its
    :func:`~loudou.analytics.counters_segments.closed_deals` reads them from the database."""
    seg = counters_segments
    sel = np.flatnonzero(c.closed(*(DealStatus(s) for s in seg.CLOSED)))
    closed_index = np.array([seg.CLOSED.index(s) if s in seg.CLOSED else -1 for s in c.statuses], dtype=np.int64)
    status = closed_index[c.status[sel]]
    industry, industries = _industries(c)
    cents = c.cents[sel]
    seg.replace(c.conn, seg.group(seg.ClosedDeals(
        month=c.closed_month[sel] + 1970 * 12,  # year × 12 + month − 1
        pipeline=c.pipeline[sel], team=c.team[sel], owner=c.owner[sel],
        product=_ints_or_missing(c.deals, "product_id")[sel],
        industry=industry[sel], status=status,
        cents=np.where(cents >= 0, cents, seg.NO_CENTS),
        cycle=np.where(status == seg.CLOSED.index(seg.WON), c.closed_cycle[sel], 0),
        industries=industries)))


def _industries(c: _Company) -> tuple[IntArray, list[str]]:
    """Each deal's company industry as a code (0: no company, or a blank industry, which
    :mod:`~loudou.analytics.counters_segments` counts as none) and the industries by code,
    the first ``NO_INDUSTRY``. Industries are the labels of the generator's pool, each
    company one of them (``comp_industry``), as ``plan.companies()`` writes them; two
    pool entries may share a label, which is then one code."""
    plan = c.plan
    labels = [industry.label for industry in plan.industries]
    names = [counters_segments.NO_INDUSTRY,
             *dict.fromkeys(label for label in labels if label not in (None, counters_segments.NO_INDUSTRY))]
    code_of = {name: code for code, name in enumerate(names)}
    pool_code = np.array([code_of.get(label, 0) for label in labels], dtype=np.int64)
    company_ids = np.asarray(plan.comp_ids, dtype=np.int64)
    if not len(company_ids):
        return np.zeros(len(c.ids), dtype=np.int64), names
    by_id = np.zeros(int(company_ids.max()) + 1, dtype=np.int64)  # index 0: no company
    by_id[company_ids] = pool_code[np.asarray(plan.comp_industry, dtype=np.int64)]
    return by_id[c.company], names


# ---------------------------------------------------------------- the whole set

#: The SQL rebuilds of ``counters.REBUILDERS`` this module replaces, and by what.
COVERED: dict[Callable[[Connection], None], Callable[[_Company], None]] = {
    counters_flow.rebuild: _flow,
    counters_outcomes.rebuild: _outcomes,
    counters_value.rebuild: _value,
    counters_segments.rebuild: _segments,
}


def write_counters(conn: Connection, plan: DemoPlan, progress: Progress | None = None) -> None:
    """Empty and fill every analytics derived table with what ``plan``'s rows give, in the
    caller's transaction: what ``counters.rebuild(conn)`` would write, computed from the
    plan's arrays (a few seconds at 1M deals instead of minutes).

    ``conn`` is a connection to the database ``plan`` was just written into (by
    ``writer.write``): a few cycles are read back from its deals, and a rebuild this
    module does not cover runs its SQL on it."""
    progress = progress or NoProgress()
    rebuilds = list(counters.REBUILDERS)
    progress.start("counters", "analytics counters", 1 + len(rebuilds))
    company = _Company(conn, plan)
    _funnel(company)  # counters.rebuild_funnel_tables
    progress.advance("counters", 1)
    # Every registered rebuild in its order, as counters.rebuild runs them: from the
    # arrays when covered, else by its own SQL.
    for rebuild in rebuilds:
        fill = COVERED.get(rebuild)
        if fill is None:
            rebuild(conn)
        else:
            fill(company)
        progress.advance("counters", 1)
