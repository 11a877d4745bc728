"""Coarse counter tables that keep the cohort funnel and time in stage cheap at 1M deals
(PERFORMANCE.md technique 1), kept current in the same transaction as every deal change.

``analytics_cohort_counts``: deals by (pipeline, month created, team, owner, channel,
stages ever reached, status) with their count and amount — one row per combination, about
14× fewer rows than deals at 1M, and a month of a manager's team is a few hundred rows.

``analytics_stay_hours``: completed stays in an open stage by (pipeline, month the deal
was created, team, stage, length) — a histogram from which percentiles of time in stage
are exact at its resolution: a stay's length is floored to the hour below one day, to 6
hours below ten days and to the day beyond (:func:`stay_bucket`; about 50× fewer rows
than stays at 1M deals).

Missing keys (no team, owner or channel) are stored as 0, so the composite primary key
works as the upsert target on SQLite and PostgreSQL alike.

How they stay current:
* a ``before_flush`` listener sees every Deal created, changed or deleted through the ORM
  (that is, through the services) and moves the deal's contribution from its old key to
  its new one; a deal that changes team or creation month moves its stays too;
* the transition hook adds the stay a deal just ended (the same moment the service writes
  ``duration_s`` on the previous transition);
* bulk loads (the demo generator, imports) write raw rows and call :func:`rebuild`;
  ``loudou analytics rebuild --check`` proves the tables equal what the history gives.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.orm.base import NO_VALUE

from loudou.db import Base
from loudou.deal.models import Deal, DealStatus, StageTransition
from loudou.deal.service import DELETE_HOOKS, TRANSITION_HOOKS
from loudou.prepared import prepare

HOUR_S = 3600


def stay_bucket(seconds: int) -> int:
    """A stay's length in hours, floored to the histogram's resolution."""
    hours = seconds // HOUR_S
    if hours < 24:
        return hours
    if hours < 240:
        return hours // 6 * 6
    return hours // 24 * 24


def stay_bucket_sql(duration: Any) -> Any:
    """:func:`stay_bucket` as SQL (integer division on both databases)."""
    hours = sa.cast(duration, sa.Integer) // HOUR_S  # floor division on both databases
    return sa.case((hours < 24, hours), (hours < 240, hours // 6 * 6), else_=hours // 24 * 24)

cohort_counts = sa.Table(
    "analytics_cohort_counts", Base.metadata,
    sa.Column("pipeline_id", sa.Integer, primary_key=True),
    sa.Column("month", sa.Date, primary_key=True),
    sa.Column("team_id", sa.Integer, primary_key=True),
    sa.Column("owner_id", sa.Integer, primary_key=True),
    sa.Column("channel_id", sa.Integer, primary_key=True),
    sa.Column("reached_mask", sa.BigInteger, primary_key=True),
    sa.Column("status", sa.String(16), primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("amount", sa.Numeric(18, 2), nullable=False),
)

stay_hours = sa.Table(
    "analytics_stay_hours", Base.metadata,
    sa.Column("pipeline_id", sa.Integer, primary_key=True),
    sa.Column("month", sa.Date, primary_key=True),
    sa.Column("team_id", sa.Integer, primary_key=True),
    sa.Column("stage_id", sa.Integer, primary_key=True),
    sa.Column("hours", sa.Integer, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
)

COHORT_KEY = ("pipeline_id", "month", "team_id", "owner_id", "channel_id", "reached_mask", "status")
STAY_KEY = ("pipeline_id", "month", "team_id", "stage_id", "hours")
_DEAL_FIELDS = ("pipeline_id", "created_at", "team_id", "owner_id", "channel_id", "reached_mask", "status", "amount")


def month_of(moment: dt.datetime | dt.date) -> dt.date:
    return dt.date(moment.year, moment.month, 1)


def _status(value: Any) -> str:
    return value.value if isinstance(value, DealStatus) else str(value)


def cohort_key(values: dict[str, Any]) -> tuple[Any, ...]:
    return (values["pipeline_id"], month_of(values["created_at"]), values["team_id"] or 0, values["owner_id"] or 0,
            values["channel_id"] or 0, int(values["reached_mask"] or 0), _status(values["status"]))


#: Statements of the write paths, built once per dialect (every write runs them).
_STATEMENTS: dict[tuple[str, str, str], Any] = {}


def cached_statement(conn: Connection, owner: str, name: str, build: Callable[[str], Any]) -> Any:
    """The statement ``owner`` (a module) calls ``name``, built by ``build(dialect name)``
    on first use and kept: building a statement costs more than running it."""
    key = (conn.dialect.name, owner, name)
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        stmt = _STATEMENTS[key] = build(conn.dialect.name)
    return stmt


def upsert(conn: Connection, table: sa.Table, key: tuple[str, ...], sums: tuple[str, ...],
           rows: list[dict[str, Any]]) -> None:
    """Add ``rows`` to a counter table: insert new keys, add the ``sums`` columns to
    existing ones (``INSERT … ON CONFLICT DO UPDATE`` on SQLite and PostgreSQL)."""
    if not rows:
        return

    def build(dialect: str) -> Any:
        insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
        return insert.on_conflict_do_update(
            index_elements=list(key), set_={name: table.c[name] + getattr(insert.excluded, name) for name in sums})

    stmt = cached_statement(conn, __name__, f"upsert {table.name}", build)
    # Run on the driver's cursor, in the same transaction: a stage change upserts four
    # counter rows, and SQLAlchemy's execution costs ~3× the driver's own (loudou.prepared).
    prepared = prepare(stmt, conn.dialect)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(prepared.sql, [prepared.parameters(row) for row in rows])
    finally:
        cursor.close()


def add_cohort(conn: Connection, deltas: dict[tuple[Any, ...], tuple[int, Decimal]]) -> None:
    rows = [{**dict(zip(COHORT_KEY, key, strict=True)), "n": n, "amount": amount}
            for key, (n, amount) in deltas.items() if n or amount]
    upsert(conn, cohort_counts, COHORT_KEY, ("n", "amount"), rows)


def add_stays(conn: Connection, deltas: dict[tuple[Any, ...], int]) -> None:
    rows = [{**dict(zip(STAY_KEY, key, strict=True)), "n": n} for key, n in deltas.items() if n]
    upsert(conn, stay_hours, STAY_KEY, ("n",), rows)


# ---------------------------------------------------------------- kept current on write

def _deal_stays(conn: Connection, deal_id: int) -> list[tuple[int, int]]:
    """(stage, whole hours) of the deal's completed stays in open stages."""
    return [(int(s), stay_bucket(int(d or 0))) for s, d in conn.execute(
        sa.select(StageTransition.to_stage_id, StageTransition.duration_s)
        .where(StageTransition.deal_id == deal_id, StageTransition.to_status == DealStatus.open,
               StageTransition.duration_s.is_not(None)))]


def _stay_key_base(values: dict[str, Any]) -> tuple[Any, ...]:
    return values["pipeline_id"], month_of(values["created_at"]), values["team_id"] or 0


@event.listens_for(Session, "before_flush")
def _track_deals(session: Session, _flush_context: Any, _instances: Any) -> None:
    changed = [obj for obj in session.dirty if isinstance(obj, Deal) and session.is_modified(obj)]
    new = [obj for obj in session.new if isinstance(obj, Deal)]
    gone = [obj for obj in session.deleted if isinstance(obj, Deal)]
    if not (changed or new or gone):
        return
    conn = session.connection()
    cohort: dict[tuple[Any, ...], tuple[int, Decimal]] = {}
    stays: dict[tuple[Any, ...], int] = {}

    def count(values: dict[str, Any], sign: int) -> None:
        key = cohort_key(values)
        n, amount = cohort.get(key, (0, Decimal(0)))
        cohort[key] = (n + sign, amount + sign * Decimal(str(values["amount"] or 0)))

    def move_stays(deal_id: int, old: dict[str, Any] | None, now: dict[str, Any] | None) -> None:
        if old is not None and now is not None and _stay_key_base(old) == _stay_key_base(now):
            return
        for stage_id, hours in _deal_stays(conn, deal_id):
            if old is not None:
                key = (*_stay_key_base(old), stage_id, hours)
                stays[key] = stays.get(key, 0) - 1
            if now is not None:
                key = (*_stay_key_base(now), stage_id, hours)
                stays[key] = stays.get(key, 0) + 1

    for deal in new:
        count({f: getattr(deal, f) for f in _DEAL_FIELDS}, +1)
    olds = {d.id: before for d in (*changed, *gone) if (before := _counted_state(d)) is not None}
    olds.update(_stored(conn, [d.id for d in (*changed, *gone) if d.id is not None and d.id not in olds]))
    for deal in changed:
        old = olds.get(deal.id)
        now = {f: getattr(deal, f) for f in _DEAL_FIELDS}
        if old is not None and all(_same(old[f], now[f]) for f in _DEAL_FIELDS):
            continue
        if old is not None:
            count(old, -1)
            move_stays(deal.id, old, now)
        count(now, +1)
    for deal in gone:  # its stays left with its history (forget_stays)
        old = olds.get(deal.id)
        if old is not None:
            count(old, -1)
    add_cohort(conn, cohort)
    add_stays(conn, stays)


def _counted_state(deal: Deal) -> dict[str, Any] | None:
    """The deal's counted values as of its last flush (what the counters hold), from the
    ORM's record of changed attributes: no query. None if one is not loaded."""
    state = sa.inspect(deal)
    out = {}
    for name in _DEAL_FIELDS:
        value = state.committed_state.get(name, state.dict.get(name, NO_VALUE))
        if value is NO_VALUE:
            return None
        out[name] = value
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, DealStatus) or isinstance(b, DealStatus):
        return _status(a) == _status(b)
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return month_of(a) == month_of(b)
    if a is None or b is None:
        return a is b
    if isinstance(a, Decimal | int | float) and isinstance(b, Decimal | int | float):
        return Decimal(str(a)) == Decimal(str(b))
    return bool(a == b)


def _stored(conn: Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The deals as the database holds them before this flush (their counted state)."""
    if not ids:
        return {}
    cols = [Deal.__table__.c[f] for f in _DEAL_FIELDS]
    rows = conn.execute(sa.select(Deal.__table__.c.id, *cols).where(Deal.__table__.c.id.in_(ids)))
    return {row[0]: dict(zip(_DEAL_FIELDS, row[1:], strict=True)) for row in rows}


def count_stay(session: Session, deal: Deal, transition: StageTransition, previous_entered_at: dt.datetime | None
               ) -> None:
    """Transition hook: the stay the deal just left, if it was in an open stage."""
    if previous_entered_at is None or transition.from_status != DealStatus.open or transition.from_stage_id is None:
        return
    seconds = max(0, int((transition.at - previous_entered_at).total_seconds()))
    conn = session.connection()
    # Counted under the deal as last flushed: a change of team in this same flush moves
    # the deal's stays (this one included) from there, in the before_flush listener.
    stored_deal = _counted_state(deal) or _stored(conn, [deal.id]).get(deal.id)
    base = _stay_key_base(stored_deal) if stored_deal else _stay_key_base(
        {"pipeline_id": deal.pipeline_id, "created_at": deal.created_at, "team_id": deal.team_id})
    add_stays(conn, {(*base, transition.from_stage_id, stay_bucket(seconds)): 1})


def forget_stays(session: Session, deal: Deal) -> None:
    """Delete hook: the deal's stays leave the histogram before its history is deleted."""
    conn = session.connection()
    stored_deal = _stored(conn, [deal.id]).get(deal.id)
    if stored_deal is None:
        return
    deltas: dict[tuple[Any, ...], int] = {}
    for stage_id, hours in _deal_stays(conn, deal.id):
        key = (*_stay_key_base(stored_deal), stage_id, hours)
        deltas[key] = deltas.get(key, 0) - 1
    add_stays(conn, deltas)


TRANSITION_HOOKS.append(count_stay)
DELETE_HOOKS.append(forget_stays)


# ---------------------------------------------------------------- rebuilt from the history

def _cohort_select() -> sa.Select[Any]:
    d = Deal.__table__
    month = _month_expr(d.c.created_at)
    return (sa.select(d.c.pipeline_id, month, sa.func.coalesce(d.c.team_id, 0), sa.func.coalesce(d.c.owner_id, 0),
                      sa.func.coalesce(d.c.channel_id, 0), d.c.reached_mask, d.c.status, sa.func.count(),
                      sa.func.coalesce(sa.func.sum(d.c.amount), 0))
            .group_by(d.c.pipeline_id, month, d.c.team_id, d.c.owner_id, d.c.channel_id, d.c.reached_mask,
                      d.c.status))


def _stays_select() -> sa.Select[Any]:
    d, t = Deal.__table__, StageTransition.__table__
    month = _month_expr(d.c.created_at)
    hours = stay_bucket_sql(t.c.duration_s)
    return (sa.select(d.c.pipeline_id, month, sa.func.coalesce(d.c.team_id, 0), t.c.to_stage_id, hours,
                      sa.func.count())
            .select_from(t.join(d, d.c.id == t.c.deal_id))
            .where(t.c.to_status == DealStatus.open.value, t.c.duration_s.is_not(None))
            .group_by(d.c.pipeline_id, month, d.c.team_id, t.c.to_stage_id, hours))


class _MonthStart(sa.sql.expression.FunctionElement[Any]):
    type = sa.Date()
    inherit_cache = True
    name = "month_start"


@compiles(_MonthStart, "sqlite")
def _month_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"date(substr({compiler.process(element.clauses, **kw)}, 1, 7) || '-01')"


@compiles(_MonthStart, "postgresql")
def _month_pg(element: Any, compiler: Any, **kw: Any) -> str:
    return f"CAST(date_trunc('month', {compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC') AS DATE)"


def _month_expr(column: Any) -> Any:
    return _MonthStart(column)


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def expected(conn: Connection) -> tuple[dict[tuple[Any, ...], tuple[int, Decimal]], dict[tuple[Any, ...], int]]:
    """Both tables as the raw history gives them."""
    cohort = {(p, _as_date(m), t, o, c, int(mask), _status(s)): (int(n), Decimal(str(a)).quantize(Decimal("0.01")))
              for p, m, t, o, c, mask, s, n, a in conn.execute(_cohort_select())}
    stays = {(p, _as_date(m), t, s, int(h)): int(n) for p, m, t, s, h, n in conn.execute(_stays_select())}
    return cohort, stays


def stored(conn: Connection) -> tuple[dict[tuple[Any, ...], tuple[int, Decimal]], dict[tuple[Any, ...], int]]:
    cohort = {(r.pipeline_id, _as_date(r.month), r.team_id, r.owner_id, r.channel_id, int(r.reached_mask),
               r.status): (int(r.n), Decimal(str(r.amount)).quantize(Decimal("0.01")))
              for r in conn.execute(sa.select(cohort_counts)) if r.n}
    stays = {(r.pipeline_id, _as_date(r.month), r.team_id, r.stage_id, int(r.hours)): int(r.n)
             for r in conn.execute(sa.select(stay_hours)) if r.n}
    return cohort, stays


#: Other derived tables (in their own modules) register how to rebuild and check them:
#: ``rebuild(conn)`` replaces the table from the raw history; ``check(conn)`` returns
#: {table name: mismatching keys}. Both run in the caller's transaction.
REBUILDERS: list[Callable[[Connection], None]] = []
CHECKERS: list[Callable[[Connection], dict[str, int]]] = []


def mismatches(conn: Connection) -> dict[str, int]:
    """Keys whose stored count differs from the history's, per table."""
    want_cohort, want_stays = expected(conn)
    have_cohort, have_stays = stored(conn)
    out = {
        cohort_counts.name: _diff(want_cohort, have_cohort),
        stay_hours.name: _diff(want_stays, have_stays),
    }
    for check in CHECKERS:
        out.update(check(conn))
    return out


def _diff(want: dict[Any, Any], have: dict[Any, Any]) -> int:
    return sum(1 for k in set(want) | set(have) if want.get(k) != have.get(k))


def rebuild(conn: Connection) -> None:
    """Replace every derived table with what the raw history gives (one transaction: the
    caller's)."""
    rebuild_funnel_tables(conn)
    for rebuild_table in REBUILDERS:
        rebuild_table(conn)


def rebuild_funnel_tables(conn: Connection) -> None:
    """The cohort counts and the stay histogram only (what migration 0005 creates)."""
    conn.execute(sa.delete(cohort_counts))
    conn.execute(sa.delete(stay_hours))
    insert_from(conn, cohort_counts, (*COHORT_KEY, "n", "amount"), _cohort_select())
    insert_from(conn, stay_hours, (*STAY_KEY, "n"), _stays_select())


def insert_from(conn: Connection, table: sa.Table, names: Iterable[str], select: sa.Select[Any]) -> None:
    conn.execute(table.insert().from_select(list(names), select))


# ---------------------------------------------------------------- reading: whole months from the counters

def split_period(start: dt.datetime, end: dt.datetime, now: dt.datetime | None = None
                 ) -> tuple[tuple[dt.date, dt.date] | None, list[tuple[dt.datetime, dt.datetime]]]:
    """The whole months of [start, end) that the counters answer, and the partial-month
    edges left to the raw tables. No deal is created in the future, so an end after now
    counts as the end of its month."""
    now = now or dt.datetime.now(dt.UTC)
    if end > now:
        end = max(start, _midnight(_next_month(month_of(now))))
    first = month_of(start) if start == _midnight(month_of(start)) else _next_month(month_of(start))
    last = month_of(end)  # exclusive: months before the one holding `end`
    if _midnight(first) >= _midnight(last):
        return None, [(start, end)] if start < end else []
    edges = []
    if start < _midnight(first):
        edges.append((start, _midnight(first)))
    if _midnight(last) < end:
        edges.append((_midnight(last), end))
    return (first, last), edges


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _next_month(month: dt.date) -> dt.date:
    return dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)


def histogram_percentile(histogram: list[tuple[int, int]], q: float) -> float | None:
    """Linear-interpolated percentile (like numpy's default) of the values a histogram of
    (value, count) pairs, ascending by value, stands for."""
    total = sum(n for _, n in histogram)
    if total == 0:
        return None
    pos = (total - 1) * q
    lo = int(pos)
    frac = pos - lo

    def value_at(rank: int) -> int:
        seen = 0
        for value, n in histogram:
            seen += n
            if rank < seen:
                return value
        return histogram[-1][0]

    low = value_at(lo)
    high = value_at(min(lo + 1, total - 1)) if frac else low
    return low + (high - low) * frac
