"""The value reports' derived tables (channel counts, activities of closed deals) stay equal
to the raw rows through every kind of service change, on SQLite and PostgreSQL; their fast
answers (counters, covering indexes) equal the raw answers for every viewer and period."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.activity import service as activity_service
from loudou.activity.models import Activity, ActivityKind
from loudou.activity.schemas import ActivityCreate, ActivityUpdate
from loudou.analytics import behaviour, channels, counters, counters_value, customers, rebuild
from loudou.analytics.filters import ReportFilters, closed_conditions, cohort_conditions, deal_conditions
from loudou.analytics.stats import percentile
from loudou.auth.models import Role, User
from loudou.channel.models import Channel
from loudou.company.models import Company
from loudou.db import Database, utcnow
from loudou.deal import service as deal_service
from loudou.deal.models import Deal, DealStatus
from loudou.deal.schemas import DealClose, DealCreate, DealMove, DealReopen, DealUpdate
from loudou.pipeline import queries as pipeline_queries
from tests.conftest import People, default_pipeline
from tests.deal.test_service import relax


def assert_tables_match(db: Database) -> None:
    with db.engine.connect() as conn:
        assert counters_value.check(conn) == {"analytics_channel_counts": 0, "analytics_closed_activities": 0,
                                              "analytics_won_leads": 0}


def won_leads(db: Database) -> dict[int, tuple[int, int, int | None]]:
    """deal -> (team, company, cycle in microseconds) of the stored won leads."""
    with db.engine.connect() as conn:
        return {r.deal_id: (r.team_id, r.company_id, r.cycle_us)
                for r in conn.execute(sa.select(counters_value.won_leads))}


def stored_totals(db: Database) -> tuple[int, int, int]:
    """Deals counted, their amount in cents, activities of closed deals counted."""
    with db.engine.connect() as conn:
        n, cents = conn.execute(sa.select(sa.func.sum(counters_value.channel_counts.c.n),
                                          sa.func.sum(counters_value.channel_counts.c.amount_cents))).one()
        activities = conn.execute(sa.select(sa.func.sum(counters_value.closed_activities.c.n))).scalar_one()
    return int(n or 0), int(cents or 0), int(activities or 0)


def _deal(s: Session, deal_id: int) -> Deal:
    found = s.get(Deal, deal_id)
    assert found is not None
    return found


def _log(s: Session, who: User, deal_id: int, kind: ActivityKind, at: dt.datetime) -> int:
    return activity_service.log_activity(s, who, ActivityCreate(kind=kind, deal_id=deal_id, occurred_at=at)).id


def test_tables_follow_every_change(db: Database, people: People) -> None:
    relax(db, people)  # stage rules are not what this test is about
    start = utcnow() - dt.timedelta(days=70)
    with db.session_scope() as s:
        stages = pipeline_queries.list_stages(s, default_pipeline(s).id)
        web = s.scalars(sa.select(Channel.id).order_by(Channel.id)).first()
        company = Company(name="Acme", industry="Retail", owner_id=people.carol.id, team_id=people.carol.team_id)
        s.add(company)
        s.flush()
        a = deal_service.create_deal(s, people.carol, DealCreate(title="a", amount=Decimal("1000.50"),
                                                                 channel_id=web, company_id=company.id), at=start)
        b = deal_service.create_deal(s, people.dave, DealCreate(title="b", amount=2000), at=start)
        c = deal_service.create_deal(s, people.carol, DealCreate(title="c"), at=start + dt.timedelta(days=40))
        ids = a.id, b.id, c.id
        _log(s, people.carol, a.id, ActivityKind.call, start + dt.timedelta(days=1))
        _log(s, people.dave, b.id, ActivityKind.email, start + dt.timedelta(days=2))
    assert_tables_match(db)
    assert stored_totals(db) == (3, 300050, 0)  # nothing closed yet

    with db.session_scope() as s:
        d = _deal(s, ids[0])
        deal_service.move_deal(s, people.carol, d.id, DealMove(stage_id=stages[2].id, version=d.version),
                               at=start + dt.timedelta(days=3))
        deal_service.win_deal(s, people.carol, d.id, DealClose(version=d.version, amount=Decimal(1500)),
                              at=start + dt.timedelta(days=20))
        e = _deal(s, ids[1])
        deal_service.lose_deal(s, people.dave, e.id, DealClose(version=e.version, reason="budget"),
                               at=start + dt.timedelta(days=30))
    assert_tables_match(db)
    assert stored_totals(db) == (3, 350000, 2)
    assert won_leads(db) == {ids[0]: (people.carol.team_id, company.id, 20 * 86_400 * 10**6)}  # created .. won

    # Activities logged on closed deals (after the close), one given another kind, one deleted.
    with db.session_scope() as s:
        meeting = _log(s, people.carol, ids[0], ActivityKind.meeting, start + dt.timedelta(days=25))
        _log(s, people.dave, ids[1], ActivityKind.visit, start + dt.timedelta(days=31))
    assert_tables_match(db)
    with db.session_scope() as s:
        logged = s.get(Activity, meeting)
        assert logged is not None
        activity_service.update_activity(s, people.carol, meeting,
                                         ActivityUpdate(version=logged.version, kind=ActivityKind.note))
    assert_tables_match(db)
    with db.session_scope() as s:
        first_call = s.scalars(sa.select(Activity).where(Activity.deal_id == ids[0],
                                                         Activity.kind == ActivityKind.call)).one()
        activity_service.delete_activity(s, people.carol, first_call.id, first_call.version)
    assert_tables_match(db)
    assert stored_totals(db)[2] == 3  # a: note; b: email, visit

    # Reopen the lost deal: its activities leave the closed counts.
    with db.session_scope() as s:
        e = _deal(s, ids[1])
        deal_service.reopen_deal(s, people.dave, e.id, DealReopen(version=e.version, stage_id=stages[1].id),
                                 at=start + dt.timedelta(days=35))
    assert_tables_match(db)
    assert stored_totals(db)[2] == 1

    # The admin moves carol's won deal to dave (team East -> West): counts move with it.
    with db.session_scope() as s:
        d = _deal(s, ids[0])
        deal_service.update_deal(s, people.alice, d.id, DealUpdate(version=d.version, owner_id=people.dave.id))
        f = _deal(s, ids[2])
        deal_service.update_deal(s, people.alice, f.id, DealUpdate(version=f.version, amount=Decimal(99),
                                                                   channel_id=web))
    assert_tables_match(db)
    with db.engine.connect() as conn:
        teams = {r.team_id for r in conn.execute(sa.select(counters_value.closed_activities)) if r.n}
    assert teams == {people.dave.team_id}
    assert [team for team, _company, _cycle in won_leads(db).values()] == [people.dave.team_id]

    with db.session_scope() as s:
        for deal_id in ids[:2]:
            d = _deal(s, deal_id)
            deal_service.delete_deal(s, people.alice, d.id, d.version)
    assert_tables_match(db)
    assert stored_totals(db) == (1, 9900, 0) and won_leads(db) == {}


def test_last_activity_follows_activities_moved_and_deleted(db: Database, people: People) -> None:
    """The customers report reads a deal's recent activity from ``last_activity_at``: it
    stays the latest of the deal's activities when one is moved in time or deleted."""
    start = utcnow() - dt.timedelta(days=40)
    with db.session_scope() as s:
        deal_id = deal_service.create_deal(s, people.carol, DealCreate(title="x"), at=start).id
        call = _log(s, people.carol, deal_id, ActivityKind.call, start + dt.timedelta(days=1))
        note = _log(s, people.carol, deal_id, ActivityKind.note, start + dt.timedelta(days=5))

    def last() -> dt.datetime | None:
        with db.session_scope(write=False) as s:
            return _deal(s, deal_id).last_activity_at

    def move(activity_id: int, when: dt.datetime) -> None:
        with db.session_scope() as s:
            logged = s.get(Activity, activity_id)
            assert logged is not None
            activity_service.update_activity(s, people.carol, activity_id,
                                             ActivityUpdate(version=logged.version, occurred_at=when))

    move(call, start + dt.timedelta(days=30))  # later than the note
    assert last() == start + dt.timedelta(days=30)
    move(call, start + dt.timedelta(days=2))  # back before it: the note is the latest again
    assert last() == start + dt.timedelta(days=5)
    with db.session_scope() as s:
        logged = s.get(Activity, note)
        assert logged is not None
        activity_service.delete_activity(s, people.carol, note, logged.version)
    assert last() == start + dt.timedelta(days=2)
    with db.session_scope() as s:
        logged = s.get(Activity, call)
        assert logged is not None
        activity_service.delete_activity(s, people.carol, call, logged.version)
    assert last() is None
    with db.engine.connect() as conn:
        assert next(r for r in rebuild.verify(conn) if r.column == "last_activity_at").mismatches == 0


def test_the_migration_restores_last_activity(db: Database, people: People) -> None:
    with db.session_scope() as s:
        deal_id = deal_service.create_deal(s, people.carol, DealCreate(title="x")).id
        _log(s, people.carol, deal_id, ActivityKind.call, utcnow() - dt.timedelta(days=3))
    with db.engine.begin() as conn:
        conn.execute(sa.update(Deal).values(last_activity_at=utcnow()))
        counters_value.restore_last_activity(conn)
    with db.engine.connect() as conn:
        assert next(r for r in rebuild.verify(conn) if r.column == "last_activity_at").mismatches == 0


def test_rebuild_restores_damaged_tables(db: Database, people: People) -> None:
    with db.session_scope() as s:
        deal = deal_service.create_deal(s, people.carol, DealCreate(title="x", amount=10))
        deal_service.win_deal(s, people.carol, deal.id, DealClose(version=deal.version))
        _log(s, people.carol, deal.id, ActivityKind.call, utcnow())
    with db.engine.begin() as conn:
        counts = counters_value.channel_counts
        conn.execute(sa.update(counts).where(counts.c.n > 0).values(n=counts.c.n + 5))
        conn.execute(sa.delete(counters_value.closed_activities))
        conn.execute(sa.update(counters_value.won_leads).values(cycle_us=1))
    with db.engine.connect() as conn:
        assert counters_value.check(conn) == {"analytics_channel_counts": 1, "analytics_closed_activities": 1,
                                              "analytics_won_leads": 1}
        assert any(r.mismatches for r in rebuild.verify(conn))
    assert not rebuild.has_mismatches(rebuild.rebuild(db))
    assert_tables_match(db)


# --- fast answers equal raw answers -------------------------------------------------------------

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
PERIODS = [("2025-01-01", "2025-12-31"), ("2024-12-17", "2026-02-09"), ("2025-03-05", "2025-03-20"),
           ("2025-07-01", "2027-01-31")]


def _raw_channels(s: Session, viewer: User, f: ReportFilters) -> dict[str, Any]:
    """Leads, won revenue, customers and cycles per channel straight from the deals."""
    counts: dict[Any, dict[DealStatus, int]] = defaultdict(dict)
    revenue: dict[Any, Decimal] = {}
    for channel_id, status, n, amount in s.execute(
            sa.select(Deal.channel_id, Deal.status, sa.func.count(), sa.func.coalesce(sa.func.sum(Deal.amount), 0))
            .where(*cohort_conditions(viewer, f, f.pipeline_id)).group_by(Deal.channel_id, Deal.status)):
        counts[channel_id][DealStatus(status)] = int(n)
        if DealStatus(status) == DealStatus.won:
            revenue[channel_id] = Decimal(str(amount)).quantize(Decimal("0.01"))
    companies: dict[Any, set[Any]] = defaultdict(set)
    cycles: dict[Any, list[float]] = defaultdict(list)
    for channel_id, company_id, deal_id, created, closed in s.execute(
            sa.select(Deal.channel_id, Deal.company_id, Deal.id, Deal.created_at, Deal.closed_at)
            .where(Deal.status == DealStatus.won, *cohort_conditions(viewer, f, f.pipeline_id))):
        companies[channel_id].add(company_id if company_id is not None else -deal_id)
        if closed is not None:
            cycles[channel_id].append((closed - created).total_seconds())
    everyone = set().union(*companies.values()) if companies else set()
    return {"counts": dict(counts), "revenue": revenue,
            "customers": {c: len(ids) for c, ids in companies.items()}, "all_customers": len(everyone),
            "cycles": {c: sorted(v) for c, v in cycles.items()}}


def _fast_channels(s: Session, viewer: User, f: ReportFilters) -> dict[str, Any]:
    counts, revenue = channels.status_counts(s, viewer, f)
    customers_won, (distinct, loose), cycles = channels.won_leads(s, viewer, f)
    return {"counts": dict(counts), "revenue": {c: v.quantize(Decimal("0.01")) for c, v in revenue.items()},
            "customers": customers_won, "all_customers": distinct + loose,
            "cycles": {c: sorted(v) for c, v in cycles.items()}}


def _raw_behaviour(s: Session, viewer: User, f: ReportFilters, now: dt.datetime) -> dict[str, Any]:
    closed = [*closed_conditions(viewer, f, f.pipeline_id), Deal.status.in_(behaviour.CLOSED)]
    by_count = {(int(n_act), DealStatus(st)): int(n) for n_act, st, n in s.execute(
        sa.select(Deal.activity_count, Deal.status, sa.func.count()).where(*closed)
        .group_by(Deal.activity_count, Deal.status))}
    kinds = {(ActivityKind(k).value, DealStatus(st)): int(n) for k, st, n in s.execute(
        sa.select(Activity.kind, Deal.status, sa.func.count()).join(Deal, Deal.id == Activity.deal_id)
        .where(*closed).group_by(Activity.kind, Deal.status))}
    bands: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (count, status), n in by_count.items():
        bands[behaviour._band(count)][0 if status == DealStatus.won else 1] += n
    opens = s.execute(sa.select(Deal.last_activity_at, Deal.amount)
                      .where(Deal.status == DealStatus.open, *deal_conditions(viewer, f, f.pipeline_id))).all()
    recency: dict[str, list[Any]] = {key: [0, Decimal(0)] for key, *_rest in behaviour.RECENCY_BANDS}
    for last, amount in opens:
        age = None if last is None else now - last
        key = ("never" if age is None else "0-7" if age <= dt.timedelta(days=7) else
               "8-30" if age <= dt.timedelta(days=30) else "31-90" if age <= dt.timedelta(days=90) else "90+")
        recency[key][0] += 1
        recency[key][1] += Decimal(str(amount or 0))
    return {"bands": {k: tuple(v) for k, v in bands.items() if any(v)},
            "activities": {st.value: sum(c * n for (c, s2), n in by_count.items() if s2 == st)
                           for st in behaviour.CLOSED},
            "kinds": kinds, "recency": {k: (n, round(float(a), 2)) for k, (n, a) in recency.items()}}


def _fast_behaviour(s: Session, viewer: User, f: ReportFilters, now: dt.datetime) -> dict[str, Any]:
    rows, totals = behaviour.intensity(s, viewer, f)
    return {"bands": {r["band"]: (r["won"], r["lost"]) for r in rows if r["deals"]},
            "activities": {st.value: totals.get(st.value, 0) for st in behaviour.CLOSED},
            "kinds": {k: n for k, n in behaviour.kind_counts(s, viewer, f).items() if n},
            "recency": {r["band"]: (r["deals"], r["amount"]) for r in behaviour.recency(s, viewer, f, now)}}


def _raw_customers(s: Session, viewer: User, f: ReportFilters) -> dict[str, Any]:
    """Company by company from the visible deals and their activities, as the report's
    definition reads (docs/analytics/customers.md)."""
    end = f.end
    visible = [*deal_conditions(viewer, f, f.pipeline_id), Deal.company_id.is_not(None), Deal.created_at < end]
    values: dict[int | None, dict[str, Any]] = {}
    for cid, status, amount, closed in s.execute(
            sa.select(Deal.company_id, Deal.status, Deal.amount, Deal.closed_at).where(*visible)):
        c = values.setdefault(cid, {"won": Decimal(0), "wins": 0, "first": None, "open": Decimal(0), "lost": 0,
                                    "won_p": 0, "activities": 0})
        amount = Decimal(str(amount or 0))
        if status == DealStatus.won and closed is not None and closed < end:
            c["won"] += amount
            c["wins"] += 1
            c["first"] = closed if c["first"] is None else min(c["first"], closed)
            c["won_p"] += closed >= f.start
        if status == DealStatus.open:
            c["open"] += amount
        if status == DealStatus.lost and closed is not None and f.start <= closed < end:
            c["lost"] += 1
    for cid, n in s.execute(sa.select(Deal.company_id, sa.func.count()).join(Activity, Activity.deal_id == Deal.id)
                            .where(*visible, Activity.occurred_at >= end - dt.timedelta(days=90),
                                   Activity.occurred_at < end).group_by(Deal.company_id)):
        values[cid]["activities"] = int(n)
    for c in values.values():
        c["projected"] = 0.0
        if c["wins"]:
            tenure = (end - c["first"]).total_seconds() / 86_400
            frequency = c["wins"] / (max(tenure, 90) / 365)
            c["projected"] = float(c["won"]) + float(c["won"]) / c["wins"] * frequency * 2
    ranked = sorted(values, key=lambda cid: (-values[cid]["projected"], cid))
    total = sum(values[cid]["projected"] for cid in ranked)
    above = 0.0
    for cid in ranked:
        share = above / total if total > 0 else 1.0
        values[cid]["tier"] = "A" if share < 0.5 else "B" if share < 0.8 else "C"
        above += values[cid]["projected"]
    median = percentile(sorted(float(v["activities"]) for v in values.values()), 0.5)
    groups: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [0, Decimal(0), 0.0, Decimal(0), 0, 0])
    for cid in ranked:
        v = values[cid]
        engagement = "high" if median is not None and v["activities"] > 0 and v["activities"] >= median else "low"
        g = groups[(v["tier"], engagement)]
        g[0] += 1
        g[1] += v["won"]
        g[2] += v["projected"]
        g[3] += v["open"]
        g[4] += v["won_p"]
        g[5] += v["lost"]
    return {"count": len(values), "median": median, "top": ranked[:customers.TOP_LIMIT],
            "groups": {k: (n, round(float(r), 2), round(p, 2), round(float(o), 2), w, lost)
                       for k, (n, r, p, o, w, lost) in groups.items() if n}}


def _fast_customers(s: Session, viewer: User, f: ReportFilters) -> dict[str, Any]:
    r = customers.customer_report(s, viewer, f)
    return {"count": r["company_count"], "median": r["median_activities_90d"],
            "top": [c["company_id"] for c in r["companies"]],
            "groups": {(g["tier"], g["engagement"]): (g["companies"], g["won_revenue"], g["projected_value"],
                                                      g["open_amount"], g["won_in_period"], g["lost_in_period"])
                       for g in r["segments"] if g["companies"]}}


@pytest.fixture
def demo(db: Database) -> Database:
    from loudou.demo import service as demo_service

    demo_service.run(db, 2500, 3, "zh", now=NOW, reset=True, password_hash="x")
    return db


def _viewers(s: Session) -> list[User]:
    viewers = [User(id=0, email="op@x", name="op", role=Role.admin, is_active=True, team_id=None)]
    viewers += list(s.scalars(sa.select(User).where(User.role == Role.manager).limit(1)))
    viewers += list(s.scalars(sa.select(User).where(User.role == Role.rep).limit(1)))
    return viewers


def _extras(s: Session) -> list[dict[str, Any]]:
    channel = s.execute(sa.text("SELECT channel_id FROM deals WHERE channel_id IS NOT NULL LIMIT 1")).scalar()
    industry = s.execute(sa.text("SELECT industry FROM companies WHERE industry IS NOT NULL LIMIT 1")).scalar()
    return [{}, {"channel_id": channel}, {"industry": industry}]


def test_fast_answers_equal_the_raw_rows(demo: Database) -> None:
    """Whole months from the derived tables plus partial months (and filters they do not
    carry) from the deals, and the covering-index reads, give exactly what the raw rows
    give, for every viewer, filter and period, aligned or not."""
    now = NOW + dt.timedelta(hours=7)
    counted = set()  # customers: the median read from every company's count, or known to be 0
    with demo.session_scope(write=False) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(Activity)).scalar_one() > 0
        for viewer in _viewers(s):
            for date_from, date_to in PERIODS:
                for extra in _extras(s):
                    f = ReportFilters.model_validate({"from": date_from, "to": date_to, **extra})
                    assert _fast_channels(s, viewer, f) == _raw_channels(s, viewer, f), (viewer.role, f)
                    assert _fast_behaviour(s, viewer, f, now) == _raw_behaviour(s, viewer, f, now), (viewer.role, f)
                    assert _fast_customers(s, viewer, f) == _raw_customers(s, viewer, f), (viewer.role, f)
                    counted.add(customers.company_values(s, viewer, f).counted)
    assert counted == {True, False}


def test_counters_are_current_after_the_demo_load(demo: Database) -> None:
    with demo.engine.connect() as conn:
        assert set(counters.mismatches(conn).values()) == {0}
        assert conn.execute(sa.select(sa.func.count()).select_from(counters_value.closed_activities)).scalar_one()
