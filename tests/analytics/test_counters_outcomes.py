"""The outcome reports' tables (closed deals by cell with their records, lost deals by
reason and by stage) stay equal to what the deals give through every kind of change the
services make, on SQLite and PostgreSQL; the reports answer from them exactly what they
answer from the deals, for every viewer and filter, aligned on months or not."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.activity import service as activity_service
from loudou.activity.models import ActivityKind
from loudou.activity.schemas import ActivityCreate
from loudou.analytics import counters, counters_outcomes, cycle, rebuild, winloss, winrate
from loudou.analytics.filters import ReportFilters
from loudou.auth.models import Role, User
from loudou.db import Database, utcnow
from loudou.deal import service as deal_service
from loudou.deal.models import Deal
from loudou.deal.schemas import DealClose, DealCreate, DealMove, DealReopen, DealUpdate
from loudou.pipeline import queries as pipeline_queries
from tests.analytics.history import deal, recorded_statements
from tests.conftest import People, default_pipeline
from tests.deal.test_service import relax

OUTCOME_TABLES = ("analytics_outcome_cells", "analytics_outcome_reasons", "analytics_outcome_stages")


def assert_tables_match(db: Database) -> None:
    with db.engine.connect() as conn:
        found = counters_outcomes.check(conn)
    assert set(found) == set(OUTCOME_TABLES) and set(found.values()) == {0}, found


def stored(db: Database) -> dict[str, Any]:
    """Totals of the three tables and every stored record, sorted."""
    with db.engine.connect() as conn:
        cells = list(conn.execute(sa.select(counters_outcomes.cells)))
        reasons = conn.execute(sa.select(sa.func.sum(counters_outcomes.lost_reasons.c.n),
                                         sa.func.sum(counters_outcomes.lost_reasons.c.cents))).one()
        stages = conn.execute(sa.select(counters_outcomes.lost_stages.c.stage_id, counters_outcomes.lost_stages.c.n)
                              .where(counters_outcomes.lost_stages.c.n != 0)).all()
    by_status: dict[str, int] = {}
    records = []
    for row in cells:
        by_status[row.status] = by_status.get(row.status, 0) + row.n
        records += [(row.status, *map(int, r)) for r in counters_outcomes.decode(row.records)]
    return {"by_status": by_status, "records": sorted(records), "lost_reasons": (int(reasons[0] or 0),
                                                                                 int(reasons[1] or 0)),
            "lost_stages": sorted((int(s), int(n)) for s, n in stages)}



def test_tables_follow_every_change(db: Database, people: People) -> None:
    relax(db, people)  # stage rules are not what this test is about
    start = utcnow() - dt.timedelta(days=70)
    with db.session_scope() as s:
        stages = pipeline_queries.list_stages(s, default_pipeline(s).id)
        a = deal_service.create_deal(s, people.carol, DealCreate(title="a", amount=Decimal("1000.50")), at=start)
        b = deal_service.create_deal(s, people.dave, DealCreate(title="b", amount=2000), at=start)
        c = deal_service.create_deal(s, people.carol, DealCreate(title="c"), at=start + dt.timedelta(days=1))
        ids = a.id, b.id, c.id
    assert_tables_match(db)
    assert stored(db)["by_status"] == {}

    with db.session_scope() as s:
        d = deal(s, ids[0])
        deal_service.move_deal(s, people.carol, d.id, DealMove(stage_id=stages[1].id, version=d.version),
                               at=start + dt.timedelta(days=2, hours=5))
        # Won with a new amount, 20 days and 30 seconds after it was created.
        deal_service.win_deal(s, people.carol, d.id, DealClose(version=d.version, amount=Decimal(1500)),
                              at=start + dt.timedelta(days=20, seconds=30))
        e = deal(s, ids[1])
        deal_service.move_deal(s, people.dave, e.id, DealMove(stage_id=stages[2].id, version=e.version),
                               at=start + dt.timedelta(days=3))
        deal_service.lose_deal(s, people.dave, e.id, DealClose(version=e.version, reason="budget"),
                               at=start + dt.timedelta(days=30))
        f = deal(s, ids[2])
        deal_service.disqualify_deal(s, people.carol, f.id, DealClose(version=f.version, reason="spam"),
                                     at=start + dt.timedelta(days=4))
    assert_tables_match(db)
    now = stored(db)
    assert now["by_status"] == {"won": 1, "lost": 1, "disqualified": 1}
    won = next(r for r in now["records"] if r[0] == "won")
    assert won[2:] == (0, 20 * 86_400 + 30, 150_000)  # no activities, the cycle, the new amount in cents
    assert now["lost_reasons"] == (1, 200_000) and now["lost_stages"] == [(stages[2].id, 1)]

    # Activities logged on a closed deal (a plain UPDATE of activity_count), and any other
    # UPDATE statement on closed deals run through a session.
    with db.session_scope() as s:
        for _n in range(2):
            activity_service.log_activity(s, people.dave, ActivityCreate(kind=ActivityKind.call, deal_id=ids[1]))
    assert_tables_match(db)
    assert [r[2] for r in stored(db)["records"] if r[0] == "lost"] == [2]
    with db.session_scope() as s:
        s.execute(sa.update(Deal).where(Deal.id.in_(ids[1:])).values(amount=Decimal(7)))
    assert_tables_match(db)
    assert stored(db)["lost_reasons"] == (1, 700)

    # Reopened and lost again at another stage with another reason; the won deal moves to
    # another owner and team, and gets another amount and channel.
    with db.session_scope() as s:
        e = deal(s, ids[1])
        deal_service.reopen_deal(s, people.dave, e.id, DealReopen(version=e.version, stage_id=stages[3].id),
                                 at=start + dt.timedelta(days=31))
    assert_tables_match(db)
    assert stored(db)["lost_reasons"] == (0, 0)
    with db.session_scope() as s:
        e = deal(s, ids[1])
        deal_service.lose_deal(s, people.dave, e.id, DealClose(version=e.version, reason="competitor"),
                               at=start + dt.timedelta(days=40))
        d = deal(s, ids[0])
        channel = s.execute(sa.text("SELECT id FROM channels ORDER BY id LIMIT 1")).scalar_one()
        deal_service.update_deal(s, people.alice, d.id, DealUpdate(version=d.version, owner_id=people.dave.id,
                                                                   amount=Decimal("99.99"), channel_id=channel))
    assert_tables_match(db)
    with db.engine.connect() as conn:
        row = conn.execute(sa.select(counters_outcomes.cells).where(counters_outcomes.cells.c.status == "won")).one()
    assert (row.owner_id, row.team_id, row.channel_id, row.cents) == (people.dave.id, people.dave.team_id, channel,
                                                                      9999)
    assert stored(db)["lost_stages"] == [(stages[3].id, 1)]

    # Deleting closed deals takes them out.
    with db.session_scope() as s:
        for deal_id in ids[:2]:
            d = deal(s, deal_id)
            deal_service.delete_deal(s, people.alice, d.id, d.version)
    assert_tables_match(db)
    assert stored(db)["by_status"] == {"disqualified": 1} and stored(db)["lost_reasons"] == (0, 0)


def test_open_deals_cost_no_statement(db: Database, people: People) -> None:
    """A stage change of an open deal reads nor writes any of the tables."""
    relax(db, people)
    with db.session_scope() as s:
        stages = pipeline_queries.list_stages(s, default_pipeline(s).id)
        deal_id = deal_service.create_deal(s, people.carol, DealCreate(title="a", amount=10)).id
    with recorded_statements(db) as seen, db.session_scope() as s:
        d = deal(s, deal_id)
        deal_service.move_deal(s, people.carol, d.id, DealMove(stage_id=stages[1].id, version=d.version))
    assert seen and not [q for q in seen if "analytics_outcome" in q]


def test_rebuild_restores_damaged_tables(db: Database, people: People) -> None:
    with db.session_scope() as s:
        d = deal_service.create_deal(s, people.carol, DealCreate(title="x", amount=10))
        deal_service.lose_deal(s, people.carol, d.id, DealClose(version=d.version, reason="price"))
    with db.engine.begin() as conn:
        conn.execute(sa.update(counters_outcomes.lost_stages).values(n=counters_outcomes.lost_stages.c.n + 1))
        conn.execute(sa.update(counters_outcomes.cells).values(records=b""))
    with db.engine.connect() as conn:
        found = counters_outcomes.check(conn)
        assert found["analytics_outcome_stages"] == 1 and found["analytics_outcome_cells"] == 1
        assert any(r.mismatches for r in rebuild.verify(conn))
    assert not rebuild.has_mismatches(rebuild.rebuild(db))
    assert_tables_match(db)


def test_records_pack_every_field() -> None:
    recs = counters_outcomes.as_records([(31, 7, -5, counters_outcomes.NO_CENTS), (1, 0, 2**31 - 1, 123)])
    back = counters_outcomes.decode(recs.tobytes())
    assert [tuple(map(int, r)) for r in back] == [(31, 7, -5, counters_outcomes.NO_CENTS), (1, 0, 2**31 - 1, 123)]
    assert counters_outcomes.summary(back) == (2, 123, 1, 7)
    assert len(counters_outcomes.decode(b"")) == 0


def test_percentiles_are_the_reports_percentiles() -> None:
    from loudou.analytics.stats import percentile

    values = [0, 1, 1, 3, 7, 7, 7, 12, 40]
    for q in (0.0, 0.1, 0.5, 0.9, 1.0):
        assert counters_outcomes.percentile(np.array(values), q) == percentile(values, q)  # type: ignore[arg-type]
    assert counters_outcomes.percentile(np.array([], dtype=np.int64), 0.5) is None


NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
PERIODS = [("2025-01-01", "2025-12-31"), ("2024-12-17", "2026-02-09"), ("2025-03-05", "2025-03-20"),
           ("2025-07-01", "2027-01-31")]


@pytest.fixture
def demo(db: Database) -> Database:
    from loudou.demo import service as demo_service

    demo_service.run(db, 2500, 3, "zh", now=NOW, reset=True, password_hash="x")
    return db


def _viewers(s: Session) -> list[User]:
    out = [User(id=0, email="op@x", name="op", role=Role.admin, is_active=True, team_id=None)]
    out += list(s.scalars(sa.select(User).where(User.role == Role.manager).limit(1)))
    out += list(s.scalars(sa.select(User).where(User.role == Role.rep).limit(1)))
    return out


def test_demo_tables_equal_the_deals(demo: Database) -> None:
    assert_tables_match(demo)
    with demo.engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.sum(counters_outcomes.cells.c.n))).scalar_one()
        closed = conn.execute(sa.text("SELECT count(*) FROM deals WHERE closed_at IS NOT NULL "
                                      "AND status <> 'open'")).scalar_one()
    assert n == closed > 0


@pytest.mark.parametrize("interval", ["month", "week", "quarter"])
def test_table_answers_equal_the_deals(demo: Database, interval: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole months from the tables plus the rest from the deals give exactly what the
    deals alone give, for every viewer and filter, aligned on months or not."""
    computes = (winrate.win_rate, winloss.win_loss, cycle.sales_cycle)
    with demo.session_scope(write=False) as s:
        channel = s.execute(sa.text("SELECT channel_id FROM deals WHERE channel_id IS NOT NULL LIMIT 1")).scalar()
        cases = [(viewer, ReportFilters.model_validate({"from": date_from, "to": date_to, "interval": interval,
                                                        **extra}))
                 for viewer in _viewers(s) for date_from, date_to in PERIODS
                 for extra in ({}, {"channel_id": channel})]
        fast = [[compute(s, viewer, f) for compute in computes] for viewer, f in cases]
        with monkeypatch.context() as m:
            m.setattr(counters_outcomes, "countable", lambda _filters: False)
            raw = [[compute(s, viewer, f) for compute in computes] for viewer, f in cases]
    for (viewer, f), got, want in zip(cases, fast, raw, strict=True):
        assert got == want, (viewer.role, f)
    # The tables were used: a year of the whole company comes from them.
    assert any(r[0]["totals"]["closed"] for r in fast)


def test_period_split_reads_whole_months_only(demo: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the deals out of reach, an aligned period is answered from the tables alone."""
    with demo.session_scope(write=False) as s:
        admin = _viewers(s)[0]
        f = ReportFilters.model_validate({"from": "2025-01-01", "to": "2025-12-31"})
        want = winloss.win_loss(s, admin, f), cycle.sales_cycle(s, admin, f)

        def refuse(*_args: Any, **_kw: Any) -> None:
            raise AssertionError("read the deals")

        monkeypatch.setattr(counters_outcomes, "_closed_in", refuse)
        assert (winloss.win_loss(s, admin, f), cycle.sales_cycle(s, admin, f)) == want
    assert counters.split_period(f.start, f.end)[1] == []
