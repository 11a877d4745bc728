"""Derived tables and covering indexes for the value reports (channel effectiveness,
customer value and tiers, customer behaviour and winning), kept current in the same
transaction as every deal and activity change, like :mod:`loudou.analytics.counters`.

``analytics_channel_counts``: deals by (pipeline, month created, team, owner, channel,
status) with their number and their amount in cents — a period's leads, outcomes and won
revenue per channel of any team or owner. The funnel's cohort counts also carry the stages
reached, which the channels do not need: this table has about 4.6× fewer rows (about 65×
fewer than deals at 1M). Amounts are whole cents, exact on SQLite too.

``analytics_closed_activities``: the activities of the deals won or lost, by (pipeline,
month the deal closed, team, owner, channel, status, activity kind) — the activities per
won and per lost deal without joining the ten million activities (about 200× fewer rows).

``analytics_won_leads``: one row per won deal, keyed by (month created, pipeline, team,
owner, channel, company, deal) with its product and its cycle (closing − creation) in
microseconds — a narrow projection (about 6% of the deals), not a counter: the channels'
customers won are distinct companies and their median cycles exact, so they need the deals
themselves, and this reads a period's as integers in key order instead of two timestamps
per deal from an index.

Missing keys (no team, owner or channel) are stored as 0, as in the funnel's counters.
All three are WITHOUT ROWID tables on SQLite: a range of the primary key is read in key
order, with no lookup per row.

How they stay current:
* a ``before_flush`` listener moves a deal's contribution from its old key to its new one
  when its pipeline, creation or closing time, team, owner, channel, status or amount
  changes (read from the ORM's attribute history: a stage change costs no query), and its
  activities by kind when its closing key changes; it counts activities created, deleted
  or given another kind through the ORM under their deal's current key;
* the same listener notes the deals created, deleted or changed in a field their won-lead
  row holds, and an ``after_flush`` listener (new deals have their id by then) replaces
  those rows;
* the delete hook takes a deal's activities out before ``delete_deal`` deletes them in
  bulk;
* an activity moved in time (or to another deal) or deleted through the ORM gets its
  deal's ``last_activity_at`` recomputed, so that it stays the latest of the deal's
  activities as logging one keeps it (``deal.service.touch_activity``) and as ``loudou
  analytics rebuild`` defines it: the customers report reads a deal's recent activity from
  it;
* :func:`rebuild` (registered in ``counters.REBUILDERS``, so bulk loads and
  ``loudou analytics rebuild`` run it) replaces the three tables from the raw rows, and
  :func:`check` (``counters.CHECKERS``) counts the keys that differ from them.

The reports also read the deals through covering indexes declared here (on the ``deals``
table of :mod:`loudou.deal.models`, created by migration 0006c), named explicitly with
:func:`via` because SQLite's planner does not always pick them:
``ix_deals_value_won`` (won deals by creation: customers won and cycle per channel),
``ix_deals_value_closed`` (closed deals by status and closing time: activity counts,
companies' wins and losses), ``ix_deals_value_open`` (open deals: last activity, amount,
company), ``ix_deals_value_company`` / ``ix_deals_value_team_company`` (deals by company,
and by team then company for a team's view: the customers) and ``ix_deals_value_touched``
(deals with a company by last activity: the customers' activities of the last 90 days).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.selectable import Alias
from sqlalchemy.sql.util import ClauseAdapter

from loudou.activity.models import Activity, ActivityKind
from loudou.analytics import counters
from loudou.db import Base
from loudou.deal.models import Deal, DealStatus
from loudou.deal.service import DELETE_HOOKS

channel_counts = sa.Table(
    "analytics_channel_counts", Base.metadata,
    sa.Column("pipeline_id", sa.Integer, primary_key=True),
    sa.Column("month", sa.Date, primary_key=True),
    sa.Column("team_id", sa.Integer, primary_key=True),
    sa.Column("owner_id", sa.Integer, primary_key=True),
    sa.Column("channel_id", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(16), primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

closed_activities = sa.Table(
    "analytics_closed_activities", Base.metadata,
    sa.Column("pipeline_id", sa.Integer, primary_key=True),
    sa.Column("month", sa.Date, primary_key=True),
    sa.Column("team_id", sa.Integer, primary_key=True),
    sa.Column("owner_id", sa.Integer, primary_key=True),
    sa.Column("channel_id", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(16), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sqlite_with_rowid=False,
)

won_leads = sa.Table(
    "analytics_won_leads", Base.metadata,
    sa.Column("month", sa.Date, primary_key=True),
    sa.Column("pipeline_id", sa.Integer, primary_key=True),
    sa.Column("team_id", sa.Integer, primary_key=True),
    sa.Column("owner_id", sa.Integer, primary_key=True),
    sa.Column("channel_id", sa.Integer, primary_key=True),
    sa.Column("company_id", sa.Integer, primary_key=True),
    sa.Column("deal_id", sa.Integer, primary_key=True),
    sa.Column("product_id", sa.Integer),
    sa.Column("cycle_us", sa.BigInteger),
    sa.Index("ix_analytics_won_leads_deal", "deal_id"),
    sqlite_with_rowid=False,
)

CHANNEL_KEY = ("pipeline_id", "month", "team_id", "owner_id", "channel_id", "status")
CLOSED_KEY = ("pipeline_id", "month", "team_id", "owner_id", "channel_id", "status", "kind")
#: Outcomes whose activities are counted (disqualified deals are no outcome, see behaviour.md).
CLOSED_STATUSES = (DealStatus.won.value, DealStatus.lost.value)
_CHANNEL_FIELDS = ("pipeline_id", "created_at", "team_id", "owner_id", "channel_id", "status", "amount")
_CLOSED_FIELDS = ("pipeline_id", "closed_at", "team_id", "owner_id", "channel_id", "status")
_FIELDS = ("pipeline_id", "created_at", "closed_at", "team_id", "owner_id", "channel_id", "status", "amount")
_WON_FIELDS = ("pipeline_id", "created_at", "closed_at", "team_id", "owner_id", "channel_id", "company_id",
               "product_id", "status")
_US = dt.timedelta(microseconds=1)

# ---------------------------------------------------------------- covering indexes on deals

_deals = cast(sa.Table, Deal.__table__)
WON_INDEX = "ix_deals_value_won"
CLOSED_INDEX = "ix_deals_value_closed"
OPEN_INDEX = "ix_deals_value_open"
COMPANY_INDEX = "ix_deals_value_company"
TEAM_COMPANY_INDEX = "ix_deals_value_team_company"
TOUCHED_INDEX = "ix_deals_value_touched"
#: (name, columns, partial-index condition) — migration 0006c creates the same.
INDEXES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (WON_INDEX, ("status", "created_at", "team_id", "owner_id", "pipeline_id", "channel_id", "product_id",
                 "company_id", "closed_at"), "status = 'won'"),
    (CLOSED_INDEX, ("status", "closed_at", "activity_count", "company_id", "amount", "created_at", "pipeline_id",
                    "team_id", "owner_id", "channel_id", "product_id"), "closed_at IS NOT NULL"),
    (OPEN_INDEX, ("status", "last_activity_at", "amount", "company_id", "created_at", "pipeline_id", "team_id",
                  "owner_id", "channel_id", "product_id"), "status = 'open'"),
    (COMPANY_INDEX, ("company_id", "created_at", "pipeline_id", "team_id", "owner_id", "channel_id", "product_id"),
     "company_id IS NOT NULL"),
    (TEAM_COMPANY_INDEX, ("team_id", "company_id", "created_at", "pipeline_id", "owner_id", "channel_id",
                          "product_id"), "company_id IS NOT NULL"),
    (TOUCHED_INDEX, ("last_activity_at", "company_id", "created_at", "pipeline_id", "team_id", "owner_id",
                     "channel_id", "product_id"), "company_id IS NOT NULL"),
)
for _name, _columns, _where in INDEXES:
    sa.Index(_name, *(_deals.c[c] for c in _columns), sqlite_where=sa.text(_where), postgresql_where=sa.text(_where))


class IndexedBy(Alias):
    """The deals table read through one named index: ``deals AS ix INDEXED BY ix`` on
    SQLite (the documented way to pin an index: SQLAlchemy renders no table hints there),
    ``deals AS ix`` elsewhere. The alias is the index's name, so statements through
    different indexes never share a cached compilation."""

    inherit_cache = True


@compiles(IndexedBy, "sqlite")
def _indexed_by_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    text = str(compiler.visit_alias(element, **kw))
    if kw.get("asfrom") and not kw.get("ashint"):
        text += f" INDEXED BY {compiler.preparer.quote(element.name)}"
    return text


class Via:
    """Deals through one index: its columns (``.c``) and conditions written on ``Deal``
    rewritten onto it (:meth:`adapt`)."""

    def __init__(self, index: str) -> None:
        self.table = IndexedBy._construct(_deals, name=index)
        self.c = self.table.c
        self._adapter = ClauseAdapter(self.table)

    def adapt(self, conditions: Iterable[sa.ColumnElement[bool]]) -> list[sa.ColumnElement[bool]]:
        return [self._adapter.traverse(c) for c in conditions]


@functools.cache
def via(index: str) -> Via:
    """The deals through ``index`` (built once per index: about 2 ms each)."""
    return Via(index)


def status_in(column: Any, *statuses: DealStatus) -> sa.ColumnElement[bool]:
    """``status IN ('won', …)`` with the values written into the SQL: SQLite proves that a
    partial index (``WHERE status = 'won'``) applies when it prepares the statement, before
    any parameter is bound, and a named index it cannot prove is an error."""
    values: list[sa.ColumnElement[Any]] = [sa.literal_column(f"'{DealStatus(s).value}'") for s in statuses]
    return column == values[0] if len(values) == 1 else column.in_(values)


def cents(amount: Any) -> Any:
    """An amount (a column or a sum of one) as whole cents: integers on both databases,
    exact for sums of amounts with two decimals; NULL stays NULL."""
    return sa.cast(sa.func.round(amount * 100), sa.BigInteger)


def as_text_on_sqlite(session: Session, column: Any) -> Any:
    """A timestamp column as its stored text on SQLite (parsed with
    :func:`parse_stored_time`, much cheaper than the ORM type's processing per row), the
    typed column elsewhere."""
    return sa.type_coerce(column, sa.String) if session.get_bind().dialect.name == "sqlite" else column


def fetch_raw(session: Session, stmt: sa.Select[Any] | sa.CompoundSelect[Any]) -> list[Any]:
    """Every row of ``stmt`` as the driver returns it, without SQLAlchemy's per-row result
    processing (about 1 µs a row: a second for a million). For large fetches of integers
    and text only; read timestamps with :func:`as_text_on_sqlite`."""
    result = session.connection().execute(stmt)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def parse_stored_time(value: Any) -> dt.datetime | None:
    """A timestamp read with :func:`as_text_on_sqlite` as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def elapsed_seconds(start: Any, end: Any) -> float:
    """``(end - start).total_seconds()`` of two timestamps read with
    :func:`as_text_on_sqlite` (stored UTC text subtracts as it is, without time zones)."""
    if isinstance(start, str) and isinstance(end, str):
        begin, finish = dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end)
        if begin.tzinfo is None and finish.tzinfo is None:
            return (finish - begin).total_seconds()
    began, ended = parse_stored_time(start), parse_stored_time(end)
    assert began is not None and ended is not None
    return (ended - began).total_seconds()


def elapsed_seconds_each(starts: Sequence[Any], ends: Sequence[Any]) -> npt.NDArray[np.float64]:
    """:func:`elapsed_seconds` of each pair, NaN where an end is missing. SQLite's stored
    UTC text is parsed by numpy to the microsecond, and microseconds / 10**6 is what
    ``timedelta.total_seconds()`` computes."""
    if starts and isinstance(starts[0], str):
        try:
            began = np.array(starts, dtype="datetime64[us]")
            ended = np.array(["NaT" if v is None else v for v in ends], dtype="datetime64[us]")
        except ValueError:  # not the stored format: one at a time below
            pass
        else:
            micros = (ended - began).astype(np.int64)
            return np.where(np.isnat(ended) | np.isnat(began), np.nan, micros / 10**6)
    return np.array([np.nan if end is None else elapsed_seconds(start, end) for start, end in zip(starts, ends,
                                                                                                  strict=True)],
                    dtype=np.float64)


# ---------------------------------------------------------------- kept current on write

def to_cents(amount: Any) -> int:
    if amount is None:
        return 0
    return int((Decimal(str(amount)) * 100).to_integral_value())


def channel_key(values: dict[str, Any]) -> tuple[Any, ...]:
    return (values["pipeline_id"], counters.month_of(values["created_at"]), values["team_id"] or 0,
            values["owner_id"] or 0, values["channel_id"] or 0, counters._status(values["status"]))


def closed_key(values: dict[str, Any] | None) -> tuple[Any, ...] | None:
    """The key a deal's activities are counted under; None unless it is won or lost."""
    if values is None or values["closed_at"] is None or counters._status(values["status"]) not in CLOSED_STATUSES:
        return None
    return (values["pipeline_id"], counters.month_of(values["closed_at"]), values["team_id"] or 0,
            values["owner_id"] or 0, values["channel_id"] or 0, counters._status(values["status"]))


def _kind(value: Any) -> str:
    return value.value if isinstance(value, ActivityKind) else str(value)


_upsert = counters.upsert


def add_channels(conn: Connection, deltas: dict[tuple[Any, ...], list[int]]) -> None:
    rows = [{**dict(zip(CHANNEL_KEY, key, strict=True)), "n": n, "amount_cents": amount}
            for key, (n, amount) in deltas.items() if n or amount]
    _upsert(conn, channel_counts, CHANNEL_KEY, ("n", "amount_cents"), rows)


def add_activities(conn: Connection, deltas: dict[tuple[Any, ...], int]) -> None:
    rows = [{**dict(zip(CLOSED_KEY, key, strict=True)), "n": n} for key, n in deltas.items() if n]
    _upsert(conn, closed_activities, CLOSED_KEY, ("n",), rows)


def _changed(obj: Any, fields: tuple[str, ...]) -> bool:
    state = sa.inspect(obj)
    if state.unmodified.issuperset(fields):  # none of them set since loaded: a stage change
        return False
    attrs = state.attrs
    return any(attrs[f].history.has_changes() for f in fields)


def _stored_deals(conn: Connection, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The deals as the database holds them before this flush (their counted state)."""
    ids = list(ids)
    if not ids:
        return {}
    rows = conn.execute(sa.select(_deals.c.id, *(_deals.c[f] for f in _FIELDS)).where(_deals.c.id.in_(ids)))
    return {row[0]: dict(zip(_FIELDS, row[1:], strict=True)) for row in rows}


def _deal_kinds(conn: Connection, ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """The activities stored for each deal, by kind."""
    ids = list(ids)
    out: dict[int, dict[str, int]] = {deal_id: {} for deal_id in ids}
    if not ids:
        return out
    a = Activity.__table__
    for deal_id, kind, n in conn.execute(sa.select(a.c.deal_id, a.c.kind, sa.func.count())
                                         .where(a.c.deal_id.in_(ids)).group_by(a.c.deal_id, a.c.kind)):
        out[deal_id][_kind(kind)] = int(n)
    return out


def _current_deals(session: Session, conn: Connection, ids: Iterable[int]) -> dict[int, dict[str, Any] | None]:
    """Each deal as it stands in this flush: the session's object with its pending changes
    when it is loaded, else the stored row; None for a deal being deleted or not found."""
    out: dict[int, dict[str, Any] | None] = {}
    missing = []
    for deal_id in set(ids):
        obj = session.identity_map.get(identity_key(Deal, deal_id))
        if obj is not None and obj in session.deleted:
            out[deal_id] = None
        elif obj is not None and not (sa.inspect(obj).unloaded & set(_CLOSED_FIELDS)):
            out[deal_id] = {f: getattr(obj, f) for f in _CLOSED_FIELDS}
        else:
            missing.append(deal_id)
    stored = _stored_deals(conn, missing)
    for deal_id in missing:
        out[deal_id] = stored.get(deal_id)
    return out


@event.listens_for(Session, "before_flush")
def _track(session: Session, _flush_context: Any, _instances: Any) -> None:
    added, dirty, deleted = session.new, session.dirty, session.deleted
    new_deals = [o for o in added if isinstance(o, Deal)]
    changed_deals = [o for o in dirty if isinstance(o, Deal) and o.id is not None and _changed(o, _FIELDS)]
    gone_deals = [o for o in deleted if isinstance(o, Deal) and o.id is not None]
    new_activities = [o for o in added if isinstance(o, Activity) and o.deal_id is not None]
    changed_activities = [o for o in dirty if isinstance(o, Activity) and o.id is not None
                          and _changed(o, ("deal_id", "kind", "occurred_at"))]
    gone_activities = [o for o in deleted if isinstance(o, Activity) and o.id is not None]
    won_changed = [o for o in dirty if isinstance(o, Deal) and _changed(o, _WON_FIELDS)]
    if won_changed or gone_deals or any(counters._status(o.status) == DealStatus.won.value for o in new_deals):
        session.info[_WON_PENDING] = (new_deals, won_changed, gone_deals)
    if not (new_deals or changed_deals or gone_deals or new_activities or changed_activities or gone_activities):
        return
    conn = session.connection()
    channels: dict[tuple[Any, ...], list[int]] = {}
    kinds: dict[tuple[Any, ...], int] = {}

    def count_deal(values: dict[str, Any], sign: int) -> None:
        entry = channels.setdefault(channel_key(values), [0, 0])
        entry[0] += sign
        entry[1] += sign * to_cents(values["amount"])

    def count_activity(deal: dict[str, Any] | None, kind: Any, sign: int) -> None:
        key = closed_key(deal)
        if key is not None:
            full = (*key, _kind(kind))
            kinds[full] = kinds.get(full, 0) + sign

    for deal in new_deals:
        count_deal({f: getattr(deal, f) for f in _CHANNEL_FIELDS}, +1)
    olds = _stored_deals(conn, [d.id for d in (*changed_deals, *gone_deals)])
    moved: list[tuple[int, tuple[Any, ...] | None, tuple[Any, ...] | None]] = []  # deal, old and new closed key
    for deal in changed_deals:
        old = olds.get(deal.id)
        now = {f: getattr(deal, f) for f in _FIELDS}
        if old is not None:
            count_deal(old, -1)
        count_deal(now, +1)
        before, after = closed_key(old), closed_key(now)
        if before != after:
            moved.append((deal.id, before, after))
    for deal in gone_deals:
        old = olds.get(deal.id)
        if old is not None:
            count_deal(old, -1)
            if closed_key(old) is not None:  # what is left of its activities (delete_deal took them out already)
                moved.append((deal.id, closed_key(old), None))
    if moved:
        stored_kinds = _deal_kinds(conn, [deal_id for deal_id, _b, _a in moved])
        for deal_id, before, after in moved:
            for kind, n in stored_kinds[deal_id].items():
                for key, sign in ((before, -n), (after, n)):
                    if key is not None:
                        kinds[(*key, kind)] = kinds.get((*key, kind), 0) + sign
    if new_activities or changed_activities or gone_activities:
        a = Activity.__table__
        ids = [o.id for o in (*changed_activities, *gone_activities)]
        stored_activities = {row.id: (row.deal_id, row.kind) for row in conn.execute(
            sa.select(a.c.id, a.c.deal_id, a.c.kind).where(a.c.id.in_(ids)))} if ids else {}
        wanted = {o.deal_id for o in (*new_activities, *changed_activities) if o.deal_id is not None}
        wanted |= {deal_id for deal_id, _k in stored_activities.values() if deal_id is not None}
        deals = _current_deals(session, conn, wanted)
        for activity in new_activities:
            if activity.deal_id is not None:
                count_activity(deals.get(activity.deal_id), activity.kind, +1)
        for activity in changed_activities:
            stored_deal, stored_kind = stored_activities.get(activity.id, (None, None))
            if stored_deal is not None:
                count_activity(deals.get(stored_deal), stored_kind, -1)
            if activity.deal_id is not None:
                count_activity(deals.get(activity.deal_id), activity.kind, +1)
        for activity in gone_activities:
            stored_deal, stored_kind = stored_activities.get(activity.id, (None, None))
            if stored_deal is not None:
                count_activity(deals.get(stored_deal), stored_kind, -1)
        _keep_last_activity(conn, new_activities, [o for o in changed_activities
                                                   if _changed(o, ("deal_id", "occurred_at"))],
                            gone_activities, {key: deal_id for key, (deal_id, _k) in stored_activities.items()})
    add_channels(conn, channels)
    add_activities(conn, kinds)


def won_lead_row(deal_id: int, values: dict[str, Any]) -> dict[str, Any] | None:
    """A deal's row in ``analytics_won_leads``; None unless it is won."""
    if counters._status(values["status"]) != DealStatus.won.value:
        return None
    created, closed = values["created_at"], values["closed_at"]
    return {"month": counters.month_of(created), "pipeline_id": values["pipeline_id"],
            "team_id": values["team_id"] or 0, "owner_id": values["owner_id"] or 0,
            "channel_id": values["channel_id"] or 0, "company_id": values["company_id"] or 0, "deal_id": deal_id,
            "product_id": values["product_id"], "cycle_us": None if closed is None else (closed - created) // _US}


_WON_PENDING = "analytics_value_won_leads"


@event.listens_for(Session, "after_flush")
def _track_won(session: Session, _flush_context: Any) -> None:
    """After the flush (new deals have their id): the won leads of the deals created,
    changed where it matters or deleted (noted before the flush), replaced by what they
    are now."""
    pending = session.info.pop(_WON_PENDING, None)
    if pending is None:
        return
    new, changed, gone = pending
    conn = session.connection()
    replaced = [o.id for o in (*changed, *gone) if o.id is not None]
    if replaced:
        conn.execute(sa.delete(won_leads).where(won_leads.c.deal_id.in_(replaced)))
    rows = [row for o in (*new, *changed) if o.id is not None
            and (row := won_lead_row(o.id, {f: getattr(o, f) for f in _WON_FIELDS})) is not None]
    if rows:
        conn.execute(won_leads.insert(), rows)


def _keep_last_activity(conn: Connection, new: list[Activity], moved: list[Activity], gone: list[Activity],
                        stored_deal: dict[int, int | None]) -> None:
    """A deal whose activity is moved in time (or to another deal) or deleted gets its
    ``last_activity_at`` recomputed: the latest of its activities, as ``loudou analytics
    rebuild`` defines it (logging one keeps it so: ``deal.service.touch_activity``). The
    customers report relies on it: a deal last touched before a window has no activity in
    it, one last touched inside it has one."""
    if not (moved or gone):
        return
    excluded: dict[int, set[int]] = {}  # deal -> its activities whose stored time no longer counts
    pending: dict[int, list[dt.datetime]] = {}  # deal -> the times this flush gives its activities
    for activity in (*moved, *gone):
        before = stored_deal.get(activity.id)
        if before is not None:
            excluded.setdefault(before, set()).add(activity.id)
    for activity in moved:
        if activity.deal_id is not None:
            excluded.setdefault(activity.deal_id, set()).add(activity.id)
            pending.setdefault(activity.deal_id, []).append(activity.occurred_at)
    for activity in new:
        if activity.deal_id in excluded:
            pending.setdefault(activity.deal_id, []).append(activity.occurred_at)
    a = Activity.__table__
    for deal_id, ids in excluded.items():
        stored = conn.execute(sa.select(sa.func.max(a.c.occurred_at))
                              .where(a.c.deal_id == deal_id, a.c.id.not_in(ids))).scalar()
        times = [t for t in (stored, *pending.get(deal_id, ())) if t is not None]
        conn.execute(sa.update(_deals).where(_deals.c.id == deal_id)
                     .values(last_activity_at=max(times) if times else None))


def latest_activity() -> Any:
    """Each deal's latest activity time (a correlated scalar subquery on ``deals``)."""
    a = Activity.__table__
    return sa.select(sa.func.max(a.c.occurred_at)).where(a.c.deal_id == _deals.c.id).scalar_subquery()


def restore_last_activity(conn: Connection) -> None:
    """``deals.last_activity_at`` set to each deal's latest activity where it is not."""
    latest = latest_activity()
    conn.execute(sa.update(_deals).where(_deals.c.last_activity_at.is_distinct_from(latest))
                 .values(last_activity_at=latest))


def forget_activities(session: Session, deal: Deal) -> None:
    """Delete hook: the deal's activities leave the counts before they are deleted in bulk."""
    conn = session.connection()
    key = closed_key(_stored_deals(conn, [deal.id]).get(deal.id))
    if key is None:
        return
    add_activities(conn, {(*key, kind): -n for kind, n in _deal_kinds(conn, [deal.id])[deal.id].items()})


DELETE_HOOKS.append(forget_activities)


# ---------------------------------------------------------------- rebuilt from the raw rows

def _channels_select() -> sa.Select[Any]:
    d = _deals
    month = counters._month_expr(d.c.created_at)
    return (sa.select(d.c.pipeline_id, month, sa.func.coalesce(d.c.team_id, 0), sa.func.coalesce(d.c.owner_id, 0),
                      sa.func.coalesce(d.c.channel_id, 0), d.c.status, sa.func.count(),
                      sa.func.coalesce(sa.func.sum(cents(d.c.amount)), 0))
            .group_by(d.c.pipeline_id, month, d.c.team_id, d.c.owner_id, d.c.channel_id, d.c.status))


def _activities_select() -> sa.Select[Any]:
    d, a = _deals, Activity.__table__
    month = counters._month_expr(d.c.closed_at)
    return (sa.select(d.c.pipeline_id, month, sa.func.coalesce(d.c.team_id, 0), sa.func.coalesce(d.c.owner_id, 0),
                      sa.func.coalesce(d.c.channel_id, 0), d.c.status, a.c.kind, sa.func.count())
            .select_from(a.join(d, d.c.id == a.c.deal_id))
            .where(d.c.closed_at.is_not(None), d.c.status.in_(CLOSED_STATUSES))
            .group_by(d.c.pipeline_id, month, d.c.team_id, d.c.owner_id, d.c.channel_id, d.c.status, a.c.kind))


def expected(conn: Connection) -> tuple[dict[tuple[Any, ...], tuple[int, int]], dict[tuple[Any, ...], int]]:
    """Both tables as the raw rows give them."""
    channels = {(p, counters._as_date(m), t, o, c, counters._status(s)): (int(n), int(amount))
                for p, m, t, o, c, s, n, amount in conn.execute(_channels_select())}
    activities = {(p, counters._as_date(m), t, o, c, counters._status(s), _kind(k)): int(n)
                  for p, m, t, o, c, s, k, n in conn.execute(_activities_select())}
    return channels, activities


def stored(conn: Connection) -> tuple[dict[tuple[Any, ...], tuple[int, int]], dict[tuple[Any, ...], int]]:
    channels = {(r.pipeline_id, counters._as_date(r.month), r.team_id, r.owner_id, r.channel_id, r.status):
                (int(r.n), int(r.amount_cents)) for r in conn.execute(sa.select(channel_counts))
                if r.n or r.amount_cents}
    activities = {(r.pipeline_id, counters._as_date(r.month), r.team_id, r.owner_id, r.channel_id, r.status,
                   r.kind): int(r.n) for r in conn.execute(sa.select(closed_activities)) if r.n}
    return channels, activities


def expected_won_leads(conn: Connection) -> dict[int, dict[str, Any]]:
    """``analytics_won_leads`` as the won deals give it, by deal."""
    d = _deals
    rows = conn.execute(sa.select(d.c.id, *(d.c[f] for f in _WON_FIELDS)).where(d.c.status == DealStatus.won.value))
    out = {}
    for row in rows:
        won = won_lead_row(row[0], dict(zip(_WON_FIELDS, row[1:], strict=True)))
        if won is not None:
            out[row[0]] = won
    return out


def stored_won_leads(conn: Connection) -> dict[int, dict[str, Any]]:
    return {row.deal_id: {**row._asdict(), "month": counters._as_date(row.month)}
            for row in conn.execute(sa.select(won_leads))}


def check(conn: Connection) -> dict[str, int]:
    """Keys whose stored counts (rows) differ from the raw rows', per table."""
    want_channels, want_activities = expected(conn)
    have_channels, have_activities = stored(conn)
    return {channel_counts.name: counters._diff(want_channels, have_channels),
            closed_activities.name: counters._diff(want_activities, have_activities),
            won_leads.name: counters._diff(expected_won_leads(conn), stored_won_leads(conn))}


def rebuild(conn: Connection) -> None:
    """Replace the tables with what the raw rows give (in the caller's transaction)."""
    conn.execute(sa.delete(channel_counts))
    conn.execute(sa.delete(closed_activities))
    conn.execute(sa.delete(won_leads))
    counters.insert_from(conn, channel_counts, (*CHANNEL_KEY, "n", "amount_cents"), _channels_select())
    counters.insert_from(conn, closed_activities, (*CLOSED_KEY, "n"), _activities_select())
    rows = list(expected_won_leads(conn).values())
    for start in range(0, len(rows), 10_000):
        conn.execute(won_leads.insert(), rows[start:start + 10_000])


counters.REBUILDERS.append(rebuild)
counters.CHECKERS.append(check)
