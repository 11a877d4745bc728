"""The analytics counter tables stay equal to what the raw history gives through every
kind of change the services make, on SQLite and PostgreSQL; `rebuild` restores them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from loudou.analytics import counters, rebuild
from loudou.db import Database, utcnow
from loudou.deal import service as deal_service
from loudou.deal.models import Deal
from loudou.deal.schemas import DealClose, DealCreate, DealMove, DealReopen, DealUpdate
from loudou.pipeline import queries as pipeline_queries
from tests.conftest import People, default_pipeline
from tests.deal.test_service import relax


def assert_counters_match(db: Database) -> None:
    with db.engine.connect() as conn:
        assert set(counters.mismatches(conn).values()) == {0}


def stored_totals(db: Database) -> tuple[int, Decimal, int]:
    with db.engine.connect() as conn:
        n, amount = conn.execute(sa.select(sa.func.sum(counters.cohort_counts.c.n),
                                           sa.func.sum(counters.cohort_counts.c.amount))).one()
        stays = conn.execute(sa.select(sa.func.sum(counters.stay_hours.c.n))).scalar_one()
    return int(n or 0), Decimal(str(amount or 0)), int(stays or 0)


def test_counters_follow_every_change(db: Database, people: People) -> None:
    relax(db, people)  # stage rules are not what this test is about
    start = utcnow() - dt.timedelta(days=70)
    with db.session_scope() as s:
        stages = pipeline_queries.list_stages(s, default_pipeline(s).id)
        a = deal_service.create_deal(s, people.carol, DealCreate(title="a", amount=Decimal("1000.50")), at=start)
        b = deal_service.create_deal(s, people.dave, DealCreate(title="b", amount=2000), at=start)
        c = deal_service.create_deal(s, people.carol, DealCreate(title="c"), at=start + dt.timedelta(days=40))
        ids = a.id, b.id, c.id
    assert_counters_match(db)
    assert stored_totals(db) == (3, Decimal("3000.50"), 0)

    def deal(s: object, deal_id: int) -> Deal:
        found = s.get(Deal, deal_id)  # type: ignore[attr-defined]
        assert found is not None
        return found

    with db.session_scope() as s:
        d = deal(s, ids[0])
        deal_service.move_deal(s, people.carol, d.id, DealMove(stage_id=stages[1].id, version=d.version),
                               at=start + dt.timedelta(days=2, hours=5))
        # A skip, with a change of amount on the way.
        deal_service.move_deal(s, people.carol, d.id, DealMove(stage_id=stages[3].id, version=d.version),
                               at=start + dt.timedelta(days=9))
        deal_service.win_deal(s, people.carol, d.id, DealClose(version=d.version, amount=Decimal(1500)),
                              at=start + dt.timedelta(days=20))
        e = deal(s, ids[1])
        deal_service.lose_deal(s, people.dave, e.id, DealClose(version=e.version, reason="budget"),
                               at=start + dt.timedelta(days=30))
        deal_service.reopen_deal(s, people.dave, e.id, DealReopen(version=e.version, stage_id=stages[2].id),
                                 at=start + dt.timedelta(days=31))
    assert_counters_match(db)
    assert stored_totals(db)[2] == 4  # carol: stages 1, 2 and 4; dave: stage 1 until lost (the lost spell is no stay)

    # The admin moves carol's deal to dave (team East -> West) and changes its channel-less amount.
    with db.session_scope() as s:
        d = deal(s, ids[2])
        deal_service.move_deal(s, people.carol, d.id, DealMove(stage_id=stages[1].id, version=d.version))
        deal_service.update_deal(s, people.alice, d.id, DealUpdate(version=d.version, owner_id=people.dave.id,
                                                                   amount=Decimal(99)))
    assert_counters_match(db)
    with db.session_scope() as s:
        d = deal(s, ids[2])
        assert d.team_id == people.dave.team_id
        deal_service.delete_deal(s, people.alice, d.id, d.version)
    assert_counters_match(db)
    n, amount, _stays = stored_totals(db)
    assert (n, amount) == (2, Decimal(1500) + Decimal(2000))


def test_rebuild_restores_damaged_counters(db: Database, people: People) -> None:
    with db.session_scope() as s:
        deal_service.create_deal(s, people.carol, DealCreate(title="x", amount=10))
    with db.engine.begin() as conn:
        conn.execute(sa.update(counters.cohort_counts).values(n=counters.cohort_counts.c.n + 5))
    with db.engine.connect() as conn:
        assert counters.mismatches(conn)["analytics_cohort_counts"] == 1
        assert any(r.mismatches for r in rebuild.verify(conn))
    assert not rebuild.has_mismatches(rebuild.rebuild(db))
    assert_counters_match(db)


NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def test_counter_answers_equal_the_raw_history(db: Database, people: People) -> None:
    """Whole months from the counters plus partial months from the deals give exactly what
    the raw tables give, for every viewer and filter, aligned or not."""
    from loudou.analytics import funnel
    from loudou.analytics.filters import ReportFilters
    from loudou.auth.models import Role, User
    from loudou.demo import service as demo_service

    demo_service.run(db, 2500, 3, "zh", now=NOW, reset=True, password_hash="x")
    with db.session_scope(write=False) as s:
        pipeline_id = default_pipeline(s).id
        viewers = [User(id=0, email="op@x", name="op", role=Role.admin, is_active=True, team_id=None)]
        viewers += list(s.scalars(sa.select(User).where(User.role == Role.manager).limit(1)))
        viewers += list(s.scalars(sa.select(User).where(User.role == Role.rep).limit(1)))
        channel = s.execute(sa.text("SELECT channel_id FROM deals WHERE channel_id IS NOT NULL LIMIT 1")).scalar()
        periods = [("2025-01-01", "2025-12-31"), ("2024-12-17", "2026-02-09"), ("2025-03-05", "2025-03-20"),
                   ("2025-07-01", "2027-01-31")]
        for viewer in viewers:
            for date_from, date_to in periods:
                for extra in ({}, {"channel_id": channel}):
                    f = ReportFilters.model_validate({"from": date_from, "to": date_to, **extra})
                    fast = sorted((g.mask, g.status, g.count, g.amount)
                                  for g in funnel.cohort_groups(s, viewer, f, pipeline_id))
                    raw = sorted((m, st, n, a) for m, st, n, a in funnel._raw_groups(
                        s, viewer, f, pipeline_id, f.start, f.end))
                    assert fast == [(m, funnel.DealStatus(st), n, a) for m, st, n, a in raw], (viewer.role, f)
                    stays = funnel.stage_durations(s, viewer, f, pipeline_id)
                    raw_stays: dict[int, list[tuple[int, int]]] = {}
                    for stage_id, hours, n in sorted(funnel._raw_stays(s, viewer, f, pipeline_id, f.start, f.end)):
                        raw_stays.setdefault(stage_id, []).append((hours, n))
                    assert stays == raw_stays, (viewer.role, f)


def test_histogram_percentiles_are_numpy_percentiles() -> None:
    import numpy as np

    values = [0, 1, 1, 3, 7, 7, 7, 12, 40]
    hist = sorted({v: values.count(v) for v in values}.items())
    for q in (0.0, 0.1, 0.5, 0.9, 1.0):
        assert counters.histogram_percentile(hist, q) == float(np.percentile(values, q * 100))
    assert counters.histogram_percentile([], 0.5) is None


def test_period_split_into_whole_months_and_edges() -> None:
    utc = dt.UTC
    now = dt.datetime(2026, 6, 15, tzinfo=utc)
    months, edges = counters.split_period(dt.datetime(2025, 1, 1, tzinfo=utc), dt.datetime(2026, 1, 1, tzinfo=utc),
                                          now)
    assert months == (dt.date(2025, 1, 1), dt.date(2026, 1, 1)) and edges == []
    months, edges = counters.split_period(dt.datetime(2025, 1, 10, tzinfo=utc), dt.datetime(2025, 3, 5, tzinfo=utc),
                                          now)
    assert months == (dt.date(2025, 2, 1), dt.date(2025, 3, 1))
    assert edges == [(dt.datetime(2025, 1, 10, tzinfo=utc), dt.datetime(2025, 2, 1, tzinfo=utc)),
                     (dt.datetime(2025, 3, 1, tzinfo=utc), dt.datetime(2025, 3, 5, tzinfo=utc))]
    # Up to today: the current month is whole (nothing is created in the future).
    months, edges = counters.split_period(dt.datetime(2026, 1, 1, tzinfo=utc), dt.datetime(2026, 6, 16, tzinfo=utc),
                                          now)
    assert months == (dt.date(2026, 1, 1), dt.date(2026, 7, 1)) and edges == []
    months, edges = counters.split_period(dt.datetime(2025, 1, 10, tzinfo=utc), dt.datetime(2025, 1, 20, tzinfo=utc),
                                          now)
    assert months is None and edges == [(dt.datetime(2025, 1, 10, tzinfo=utc), dt.datetime(2025, 1, 20, tzinfo=utc))]


def test_stay_lengths_are_floored_to_the_histogram_resolution() -> None:
    hours = (0, 23, 24, 29, 30, 239, 240, 263, 264, 1000)
    assert [counters.stay_bucket(h * 3600 + 59) for h in hours] == [0, 23, 24, 24, 30, 234, 240, 240, 264, 984]
