"""Counter tables for the flow reports (time in stage, period over period), kept current in
the same transaction as every deal change, like :mod:`loudou.analytics.counters`.

``analytics_stay_started``: completed stays in an open stage by (pipeline, month the stay
*started*, team, stage, length bucket) with their number and their total length in seconds.
The funnel's ``analytics_stay_hours`` is keyed by the month the deal was created (a cohort);
time in stage counts the stays that started in the period, whenever their deal was created,
so it needs this key. The buckets are the funnel's (:func:`counters.stay_bucket`: the hour
below one day, 6 hours below ten days, the day beyond), so percentiles and rank tests of time
in stage are exact at that resolution; the sum of seconds gives the exact mean. About 55×
fewer rows than stays at 1M deals.

``analytics_closed_counts``: deals closed by (pipeline, month closed, team, owner, channel,
status) — a year's won and lost counts of any team, owner or channel without reading the
deals closed in it. About 90× fewer rows than deals at 1M.

Missing keys (no team, owner or channel) are stored as 0, as in the funnel's counters.

How they stay current:
* the transition hook adds the stay a deal just ended, under the deal's team as stored
  (read from the ORM's attribute history: no extra query on a stage change);
* a ``before_flush`` listener moves a deal's closing from its old key to its new one when
  its status, closing time, team, owner or channel changes, and moves its stays when its
  team changes;
* the delete hook takes the deal's stays out before its history is deleted;
* :func:`rebuild` (registered in ``counters.REBUILDERS``, so bulk loads and
  ``loudou analytics rebuild`` run it) replaces both tables from the history, and
  :func:`check` (``counters.CHECKERS``) counts the keys that differ from it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session

from loudou.analytics import counters
from loudou.db import Base
from loudou.deal.models import Deal, DealStatus, StageTransition
from loudou.deal.service import DELETE_HOOKS, TRANSITION_HOOKS

stay_started = sa.Table(
    "analytics_stay_started", Base.metadata,
    sa.Column("pipeline_id", sa.Integer, primary_key=True),
    sa.Column("month", sa.Date, primary_key=True),
    sa.Column("team_id", sa.Integer, primary_key=True),
    sa.Column("stage_id", sa.Integer, primary_key=True),
    sa.Column("hours", sa.Integer, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("seconds", sa.BigInteger, nullable=False),
)

closed_counts = sa.Table(
    "analytics_closed_counts", Base.metadata,
    sa.Column("pipeline_id", sa.Integer, primary_key=True),
    sa.Column("month", sa.Date, primary_key=True),
    sa.Column("team_id", sa.Integer, primary_key=True),
    sa.Column("owner_id", sa.Integer, primary_key=True),
    sa.Column("channel_id", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(16), primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
)

STAY_KEY = ("pipeline_id", "month", "team_id", "stage_id", "hours")
CLOSED_KEY = ("pipeline_id", "month", "team_id", "owner_id", "channel_id", "status")
#: The deal's fields its closing is counted under (its stays: the first and the third).
_CLOSED_FIELDS = ("pipeline_id", "closed_at", "team_id", "owner_id", "channel_id", "status")

StayDeltas = dict[tuple[Any, ...], list[int]]  # key -> [n, seconds]


class Unindexed(sa.sql.expression.FunctionElement[Any]):
    """A column that SQLite must not use an index for (unary ``+``, SQLite's documented way
    to rule a term out of index selection); the plain column elsewhere. Lets a query name
    the index that drives it, which SQLAlchemy's ``with_hint`` does not render for SQLite."""

    inherit_cache = True
    name = "unindexed"

    def __init__(self, column: Any) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(Unindexed)
def _unindexed_default(element: Any, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(Unindexed, "sqlite")
def _unindexed_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"


# ---------------------------------------------------------------- kept current on write

_upsert = counters.upsert


def add_stays(conn: Connection, deltas: StayDeltas) -> None:
    rows = [{**dict(zip(STAY_KEY, key, strict=True)), "n": n, "seconds": seconds}
            for key, (n, seconds) in deltas.items() if n or seconds]
    _upsert(conn, stay_started, STAY_KEY, ("n", "seconds"), rows)


def add_closed(conn: Connection, deltas: dict[tuple[Any, ...], int]) -> None:
    rows = [{**dict(zip(CLOSED_KEY, key, strict=True)), "n": n} for key, n in deltas.items() if n]
    _upsert(conn, closed_counts, CLOSED_KEY, ("n",), rows)


def closed_key(values: dict[str, Any]) -> tuple[Any, ...] | None:
    """The key a deal's closing is counted under; None while it is open (a new deal's unset
    status is the column's default, open)."""
    status = counters._status(values["status"] or DealStatus.open)
    if values["closed_at"] is None or status == DealStatus.open.value:
        return None
    return (values["pipeline_id"], counters.month_of(values["closed_at"]), values["team_id"] or 0,
            values["owner_id"] or 0, values["channel_id"] or 0, status)


def _stored(conn: Connection, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The deals as the database holds them before this flush (their counted state)."""
    ids = list(ids)
    if not ids:
        return {}
    d = Deal.__table__
    rows = conn.execute(sa.select(d.c.id, *(d.c[f] for f in _CLOSED_FIELDS)).where(d.c.id.in_(ids)))
    return {row[0]: dict(zip(_CLOSED_FIELDS, row[1:], strict=True)) for row in rows}


def _deal_stays(conn: Connection, deal_ids: list[int]) -> dict[int, list[tuple[dt.date, int, int]]]:
    """(month started, stage, seconds) of each deal's completed stays in open stages."""
    out: dict[int, list[tuple[dt.date, int, int]]] = {deal_id: [] for deal_id in deal_ids}
    if not deal_ids:
        return out
    t = StageTransition.__table__
    rows = conn.execute(sa.select(t.c.deal_id, t.c.at, t.c.to_stage_id, t.c.duration_s)
                        .where(t.c.deal_id.in_(deal_ids), t.c.to_status == DealStatus.open.value,
                               t.c.duration_s.is_not(None)))
    for deal_id, at, stage_id, seconds in rows:
        out[deal_id].append((counters.month_of(at), int(stage_id), int(seconds)))
    return out


def _add_stay(deltas: StayDeltas, base: tuple[int, int], month: dt.date, stage_id: int, seconds: int,
              sign: int) -> None:
    key = (base[0], month, base[1], stage_id, counters.stay_bucket(seconds))
    entry = deltas.setdefault(key, [0, 0])
    entry[0] += sign
    entry[1] += sign * seconds


def _changed(deal: Deal, fields: tuple[str, ...]) -> bool:
    attrs = sa.inspect(deal).attrs
    return any(attrs[f].history.has_changes() for f in fields)


@event.listens_for(Session, "before_flush")
def _track_deals(session: Session, _flush_context: Any, _instances: Any) -> None:
    new = [obj for obj in session.new if isinstance(obj, Deal)]
    changed = [obj for obj in session.dirty if isinstance(obj, Deal) and obj.id is not None
               and _changed(obj, _CLOSED_FIELDS)]
    gone = [obj for obj in session.deleted if isinstance(obj, Deal) and obj.id is not None]
    if not (changed or gone or any(d.closed_at is not None for d in new)):
        return
    conn = session.connection()
    closed: dict[tuple[Any, ...], int] = {}

    def count(values: dict[str, Any] | None, sign: int) -> None:
        key = closed_key(values) if values is not None else None
        if key is not None:
            closed[key] = closed.get(key, 0) + sign

    for deal in new:
        count({f: getattr(deal, f) for f in _CLOSED_FIELDS}, +1)
    olds = _stored(conn, [d.id for d in (*changed, *gone)])
    moved: list[tuple[int, tuple[int, int], tuple[int, int]]] = []  # deal, old and new stay key base
    for deal in changed:
        old = olds.get(deal.id)
        count(old, -1)
        count({f: getattr(deal, f) for f in _CLOSED_FIELDS}, +1)
        if old is not None:
            before = (old["pipeline_id"], old["team_id"] or 0)
            after = (deal.pipeline_id, deal.team_id or 0)
            if before != after:
                moved.append((deal.id, before, after))
    for deal in gone:  # its stays left with its history (forget_stays)
        count(olds.get(deal.id), -1)
    add_closed(conn, closed)
    if moved:
        stays: StayDeltas = {}
        found = _deal_stays(conn, [deal_id for deal_id, _b, _a in moved])
        for deal_id, before, after in moved:
            for month, stage_id, seconds in found[deal_id]:
                _add_stay(stays, before, month, stage_id, seconds, -1)
                _add_stay(stays, after, month, stage_id, seconds, +1)
        add_stays(conn, stays)


def _stored_team(session: Session, deal: Deal) -> int | None:
    """The deal's team as the database holds it (the ORM's committed value; a query only
    when the old value was never loaded)."""
    history = sa.inspect(deal).attrs.team_id.history
    if not history.has_changes():
        return deal.team_id
    if history.deleted:
        old: int | None = history.deleted[0]
        return old
    stored = _stored(session.connection(), [deal.id]).get(deal.id)
    return stored["team_id"] if stored else deal.team_id


def count_stay(session: Session, deal: Deal, transition: StageTransition, previous_entered_at: dt.datetime | None
               ) -> None:
    """Transition hook: the stay the deal just left, if it was in an open stage, under the
    month it started. Counted under the team as stored: a change of team in this same
    flush moves the deal's stays (this one included) in the before_flush listener."""
    if previous_entered_at is None or transition.from_status != DealStatus.open or transition.from_stage_id is None:
        return
    seconds = max(0, int((transition.at - previous_entered_at).total_seconds()))
    deltas: StayDeltas = {}
    base = (deal.pipeline_id, _stored_team(session, deal) or 0)
    _add_stay(deltas, base, counters.month_of(previous_entered_at), transition.from_stage_id, seconds, +1)
    add_stays(session.connection(), deltas)


def forget_stays(session: Session, deal: Deal) -> None:
    """Delete hook: the deal's stays leave the histogram before its history is deleted."""
    conn = session.connection()
    stored = _stored(conn, [deal.id]).get(deal.id)
    if stored is None:
        return
    deltas: StayDeltas = {}
    base = (stored["pipeline_id"], stored["team_id"] or 0)
    for month, stage_id, seconds in _deal_stays(conn, [deal.id])[deal.id]:
        _add_stay(deltas, base, month, stage_id, seconds, -1)
    add_stays(conn, deltas)


TRANSITION_HOOKS.append(count_stay)
DELETE_HOOKS.append(forget_stays)


# ---------------------------------------------------------------- rebuilt from the history

def _stays_select() -> sa.Select[Any]:
    d, t = Deal.__table__, StageTransition.__table__
    month = counters._month_expr(t.c.at)
    hours = counters.stay_bucket_sql(t.c.duration_s)
    return (sa.select(d.c.pipeline_id, month, sa.func.coalesce(d.c.team_id, 0), t.c.to_stage_id, hours,
                      sa.func.count(), sa.func.sum(t.c.duration_s))
            .select_from(t.join(d, d.c.id == t.c.deal_id))
            .where(t.c.to_status == DealStatus.open.value, t.c.duration_s.is_not(None))
            .group_by(d.c.pipeline_id, month, d.c.team_id, t.c.to_stage_id, hours))


def _closed_select() -> sa.Select[Any]:
    d = Deal.__table__
    month = counters._month_expr(d.c.closed_at)
    return (sa.select(d.c.pipeline_id, month, sa.func.coalesce(d.c.team_id, 0), sa.func.coalesce(d.c.owner_id, 0),
                      sa.func.coalesce(d.c.channel_id, 0), d.c.status, sa.func.count())
            .where(d.c.closed_at.is_not(None), d.c.status != DealStatus.open.value)
            .group_by(d.c.pipeline_id, month, d.c.team_id, d.c.owner_id, d.c.channel_id, d.c.status))


def expected(conn: Connection) -> tuple[dict[tuple[Any, ...], tuple[int, int]], dict[tuple[Any, ...], int]]:
    """Both tables as the raw history gives them."""
    stays = {(p, counters._as_date(m), team, s, int(h)): (int(n), int(secs))
             for p, m, team, s, h, n, secs in conn.execute(_stays_select())}
    closed = {(p, counters._as_date(m), team, o, c, counters._status(st)): int(n)
              for p, m, team, o, c, st, n in conn.execute(_closed_select())}
    return stays, closed


def stored(conn: Connection) -> tuple[dict[tuple[Any, ...], tuple[int, int]], dict[tuple[Any, ...], int]]:
    stays = {(r.pipeline_id, counters._as_date(r.month), r.team_id, r.stage_id, int(r.hours)): (int(r.n),
                                                                                               int(r.seconds))
             for r in conn.execute(sa.select(stay_started)) if r.n or r.seconds}
    closed = {(r.pipeline_id, counters._as_date(r.month), r.team_id, r.owner_id, r.channel_id, r.status): int(r.n)
              for r in conn.execute(sa.select(closed_counts)) if r.n}
    return stays, closed


def check(conn: Connection) -> dict[str, int]:
    """Keys whose stored counts differ from the history's, per table."""
    want_stays, want_closed = expected(conn)
    have_stays, have_closed = stored(conn)
    return {stay_started.name: counters._diff(want_stays, have_stays),
            closed_counts.name: counters._diff(want_closed, have_closed)}


def rebuild(conn: Connection) -> None:
    """Replace both tables with what the raw history gives (in the caller's transaction)."""
    conn.execute(sa.delete(stay_started))
    conn.execute(sa.delete(closed_counts))
    counters.insert_from(conn, stay_started, (*STAY_KEY, "n", "seconds"), _stays_select())
    counters.insert_from(conn, closed_counts, (*CLOSED_KEY, "n"), _closed_select())


counters.REBUILDERS.append(rebuild)
counters.CHECKERS.append(check)
