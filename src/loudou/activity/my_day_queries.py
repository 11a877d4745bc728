"""The SELECTs behind "My day": a person's (or a team's) open tasks by local day and the
open deals that need attention (PRODUCT.md B1, B4).

Every statement is narrowed by ``auth.policy.scope``; the ``owners`` argument only picks
*whose* work is shown among what the viewer may see (a manager's member filter, an
admin's team filter), and it is what lets the databases use the owner-led indexes:

- tasks: ``ix_tasks_owner_open_due (owner_id, done_at, due_at)``, an index range per owner;
- deals: ``ix_deals_owner_status_id (owner_id, status, id)`` per owner, or
  ``ix_deals_status_closed`` for an admin's whole company.

The three deal buckets (no next step, rotting in stage, no recent activity) come from one
statement that reads each open deal once into a materialized CTE and then takes the
counts and the top rows of every bucket from it: one pass over the deals instead of four.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar, TypeVarTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.activity.models import Task
from loudou.auth import policy
from loudou.auth.models import User
from loudou.db import UTCDateTime
from loudou.deal.models import Deal, DealStatus
from loudou.pipeline.models import Stage

#: Rows shown per list unless the viewer asks for more: a day's worth of follow-ups, and
#: the most pressing deals of each kind (a focus list, not a report).
TASK_LIMIT = 25
DEAL_LIMIT = 10
MORE_LIMIT = 200


@dataclass(frozen=True)
class TaskRow:
    id: int
    title: str
    due_at: dt.datetime
    priority: int
    version: int
    owner_id: int | None
    deal_id: int | None
    deal_title: str | None


@dataclass(frozen=True)
class DealRow:
    id: int
    title: str
    amount: Decimal | None
    currency: str
    stage_id: int
    owner_id: int | None
    stage_entered_at: dt.datetime
    last_touch_at: dt.datetime  # last activity, or creation for a deal never worked on


T = TypeVar("T")


@dataclass
class Bucket(Generic[T]):
    count: int = 0
    rows: list[T] = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        return self.count > len(self.rows)


@dataclass
class MyDay:
    overdue: Bucket[TaskRow]
    today: Bucket[TaskRow]
    no_next_step: Bucket[DealRow]
    rotting: Bucket[DealRow]
    idle: Bucket[DealRow]
    open_deals: int


def local_day_bounds(day: dt.date, tz: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """UTC instants of the start of ``day`` and of the next day in ``tz``. Combining with
    the zone (not adding 24 h) keeps 23- and 25-hour days right across DST changes."""
    start = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


_Ts = TypeVarTuple("_Ts")


def _scope(stmt: sa.Select[*_Ts], viewer: User, model: Any) -> sa.Select[*_Ts]:
    # policy.scope's type variable is bound to Select[Any], which mypy reads as one column.
    scoped: sa.Select[*_Ts] = policy.scope(stmt, viewer, model)  # type: ignore[type-var]
    return scoped


def _owned_by(column: Any, owners: Sequence[int] | None) -> sa.ColumnElement[bool]:
    if owners is None:
        return sa.true()
    return column.in_(list(owners)) if len(owners) != 1 else column == owners[0]


# --------------------------------------------------------------------------- tasks


def _task_owners(owners: Sequence[int] | None) -> sa.ColumnElement[bool]:
    # Without an owner list (an admin's whole company) the owner index is still the way in:
    # "owner_id IN (all users)" is one short index range per person.
    if owners is None:
        return Task.owner_id.in_(sa.select(User.id).scalar_subquery())
    return _owned_by(Task.owner_id, owners)


def task_counts(session: Session, viewer: User, owners: Sequence[int] | None, *, now: dt.datetime,
                tz: zoneinfo.ZoneInfo) -> tuple[int, int]:
    """(overdue, due today) open tasks: the counters refreshed after a task is ticked off."""
    today_start, tomorrow_start = local_day_bounds(now.astimezone(tz).date(), tz)
    stmt = _scope(sa.select(sa.func.count().filter(Task.due_at < today_start),
                            sa.func.count().filter(Task.due_at >= today_start)), viewer, Task).where(
        _task_owners(owners), Task.done_at.is_(None), Task.due_at < tomorrow_start)
    overdue, today = session.execute(stmt).one()
    return int(overdue or 0), int(today or 0)


def _task_bucket(session: Session, viewer: User, owners: Sequence[int] | None, *,
                 due_from: dt.datetime | None, due_to: dt.datetime, limit: int) -> Bucket[TaskRow]:
    where = [_task_owners(owners), Task.done_at.is_(None), Task.due_at < due_to]
    if due_from is not None:
        where.append(Task.due_at >= due_from)
    # One pass: the window count is taken over every matching task before the LIMIT, and
    # only the tasks shown are joined to their deals.
    picked = _scope(sa.select(Task.id, Task.due_at, sa.func.count().over().label("total")), viewer, Task
                    ).where(*where).order_by(Task.due_at, Task.id).limit(limit).subquery()
    stmt = (
        sa.select(picked.c.total, Task.id, Task.title, Task.due_at, Task.priority, Task.version, Task.owner_id,
                  Task.deal_id, Deal.title.label("deal_title"))
        .join(Task, Task.id == picked.c.id)
        .outerjoin(Deal, Deal.id == Task.deal_id)
        .order_by(picked.c.due_at, picked.c.id)
    )
    bucket: Bucket[TaskRow] = Bucket()
    for total, *values in session.execute(stmt):
        bucket.count = int(total)
        bucket.rows.append(TaskRow(*values))
    return bucket


# --------------------------------------------------------------------------- deals


def _flag(cond: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    # 1/0 rather than a boolean: PostgreSQL cannot sum booleans, SQLite has none.
    return sa.case((cond, 1), else_=0)


def _deal_buckets(session: Session, viewer: User, owners: Sequence[int] | None, *, now: dt.datetime,
                  idle_days: int, limits: dict[str, int]) -> tuple[int, dict[str, Bucket[DealRow]]]:
    stages = session.execute(sa.select(Stage.id, Stage.expected_days)).all()
    # A deal rots when it has been in its stage longer than the stage's expected days; the
    # threshold is per stage, so it goes in as one bound instant per stage (portable SQL,
    # no date arithmetic in the database).
    if stages:
        rot_after = sa.case(
            {sid: sa.literal(now - dt.timedelta(days=days), UTCDateTime()) for sid, days in stages},
            value=Deal.stage_id,
        )
        rotting = Deal.stage_entered_at < rot_after
    else:
        rotting = sa.false()
    touched = sa.func.coalesce(Deal.last_activity_at, Deal.created_at, type_=UTCDateTime())
    # SELECT deal_id, not *, so an index on (deal_id, done_at) answers without the table.
    has_next = sa.select(Task.deal_id).where(Task.deal_id == Deal.id, Task.done_at.is_(None)).exists()
    idle_since = sa.literal(now - dt.timedelta(days=idle_days), UTCDateTime())
    columns = sa.select(
        Deal.id, Deal.amount, Deal.stage_entered_at.label("entered"), touched.label("touched"),
        _flag(rotting).label("rotting"), _flag(touched < idle_since).label("idle"),
        _flag(~has_next).label("no_next"),
    )
    scanned = _scope(columns, viewer, Deal).where(Deal.status == DealStatus.open,
                                                   _owned_by(Deal.owner_id, owners))
    # MATERIALIZED: read the deals once, then count and rank from the copy (SQLite 3.35+,
    # PostgreSQL 12+); without it each branch below would scan the deals again.
    open_deals = scanned.cte("open_deals").prefix_with("MATERIALIZED")
    c = open_deals.c

    def top(bucket: int, flag_col: Any, order: Sequence[Any], limit: int) -> sa.Select[Any]:
        # Typed NULLs: PostgreSQL takes an untyped one for text, which no bigint sum unites with.
        blank = sa.cast(sa.null(), sa.BigInteger)
        inner = sa.select(sa.literal(bucket).label("bucket"), c.id.label("n"), blank.label("a"), blank.label("b"),
                          blank.label("d")).where(flag_col == 1).order_by(*order, c.id).limit(limit).subquery()
        return sa.select(inner)

    counts = sa.select(sa.literal(0).label("bucket"), sa.func.count().label("n"), sa.func.sum(c.no_next),
                       sa.func.sum(c.rotting), sa.func.sum(c.idle))
    stmt: sa.CompoundSelect[Any] = sa.union_all(
        counts,
        top(1, c.no_next, [sa.nulls_last(c.amount.desc())], limits["no_next_step"]),
        top(2, c.rotting, [c.entered], limits["rotting"]),
        top(3, c.idle, [c.touched], limits["idle"]),
    )
    picked: dict[int, list[int]] = {1: [], 2: [], 3: []}
    total = no_next = rot = idle = 0
    for row in session.execute(stmt):
        if row[0] == 0:  # the counts; SUM over no rows is NULL
            total, no_next, rot, idle = (int(v or 0) for v in row[1:])
        else:
            picked[row[0]].append(row[1])
    details = _deal_rows(session, {i for ids in picked.values() for i in ids})
    return total, {
        "no_next_step": Bucket(no_next, [details[i] for i in picked[1]]),
        "rotting": Bucket(rot, [details[i] for i in picked[2]]),
        "idle": Bucket(idle, [details[i] for i in picked[3]]),
    }


def _deal_rows(session: Session, ids: set[int]) -> dict[int, DealRow]:
    """What a bucket shows of the (already scope-checked) deals it picked."""
    if not ids:
        return {}
    touched = sa.func.coalesce(Deal.last_activity_at, Deal.created_at, type_=UTCDateTime())
    stmt = sa.select(Deal.id, Deal.title, Deal.amount, Deal.currency, Deal.stage_id, Deal.owner_id,
                     Deal.stage_entered_at, touched.label("last_touch_at")).where(Deal.id.in_(sorted(ids)))
    return {row.id: DealRow(**row._mapping) for row in session.execute(stmt)}


# --------------------------------------------------------------------------- the page


def load_my_day(session: Session, viewer: User, owners: Sequence[int] | None, *, now: dt.datetime,
                tz: zoneinfo.ZoneInfo, idle_days: int, more: str | None = None) -> MyDay:
    """Everything "My day" shows for ``owners`` (None: everyone the viewer may see).

    Days are the viewer's local days: a task due at 00:30 local time today is today's,
    one due at 23:59 yesterday is overdue, whatever UTC says."""
    limits = {name: MORE_LIMIT if name == more else (TASK_LIMIT if name in ("overdue", "today") else DEAL_LIMIT)
              for name in ("overdue", "today", "no_next_step", "rotting", "idle")}
    today_start, tomorrow_start = local_day_bounds(now.astimezone(tz).date(), tz)
    overdue = _task_bucket(session, viewer, owners, due_from=None, due_to=today_start, limit=limits["overdue"])
    today = _task_bucket(session, viewer, owners, due_from=today_start, due_to=tomorrow_start,
                         limit=limits["today"])
    total, deals = _deal_buckets(session, viewer, owners, now=now, idle_days=idle_days, limits=limits)
    return MyDay(overdue=overdue, today=today, open_deals=total, **deals)
