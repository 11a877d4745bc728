"""The flow reports' counter tables (stays by the month they started, closed deals) stay
equal to what the raw history gives through every kind of change the services make, on
SQLite and PostgreSQL; the reports' fast paths give what the raw tables give."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from loudou.analytics import bottlenecks, change, counters, counters_flow, rebuild, timeinstage
from loudou.analytics.filters import ReportFilters
from loudou.analytics.stats import mann_whitney_u
from loudou.auth.models import Role, User
from loudou.db import Database, utcnow
from loudou.deal import service as deal_service
from loudou.deal.schemas import DealClose, DealCreate, DealFields, DealMove, DealReopen, DealUpdate
from loudou.demo import service as demo_service
from loudou.pipeline import queries as pipeline_queries
from tests.analytics.history import deal, recorded_statements
from tests.conftest import People, default_pipeline
from tests.deal.test_service import relax


def assert_counters_match(db: Database) -> None:
    with db.engine.connect() as conn:
        found = counters.mismatches(conn)
    assert {name: n for name, n in found.items() if n} == {}
    assert {counters_flow.stay_started.name, counters_flow.closed_counts.name} <= set(found)


def stored_totals(db: Database) -> tuple[int, int, dict[str, int]]:
    """(stays, their seconds, closed deals per status) as the counter tables hold them."""
    with db.engine.connect() as conn:
        n, seconds = conn.execute(sa.select(sa.func.sum(counters_flow.stay_started.c.n),
                                            sa.func.sum(counters_flow.stay_started.c.seconds))).one()
        c = counters_flow.closed_counts.c
        closed = {str(s): int(k) for s, k in conn.execute(sa.select(c.status, sa.func.sum(c.n)).group_by(c.status))
                  if k}
    return int(n or 0), int(seconds or 0), closed



def test_flow_counters_follow_every_change(db: Database, people: People) -> None:
    relax(db, people)  # stage rules are not what this test is about
    start = utcnow() - dt.timedelta(days=70)
    hours = dt.timedelta(hours=1)
    with db.session_scope() as s:
        stages = pipeline_queries.list_stages(s, default_pipeline(s).id)
        a = deal_service.create_deal(s, people.carol, DealCreate(title="a", amount=Decimal("1000.50")), at=start)
        b = deal_service.create_deal(s, people.dave, DealCreate(title="b", amount=2000), at=start)
        c = deal_service.create_deal(s, people.carol, DealCreate(title="c"), at=start + dt.timedelta(days=40))
        ids = a.id, b.id, c.id
    assert_counters_match(db)
    assert stored_totals(db) == (0, 0, {})

    with db.session_scope() as s:
        d = deal(s, ids[0])
        deal_service.move_deal(s, people.carol, d.id, DealMove(stage_id=stages[1].id, version=d.version),
                               at=start + 53 * hours)  # 53 h in stage 0: the 48 h bucket
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
    # carol's deal: stages 0, 1 and 3; dave's: stage 0 until lost (the lost spell is no stay)
    n, seconds, closed = stored_totals(db)
    assert (n, seconds, closed) == (4, 20 * 86_400 + 30 * 86_400, {"won": 1})

    # A move that also hands the deal to dave (team East -> West) in the same flush: the stay
    # it ends is counted under the stored team, then moved with the deal's other stays.
    with db.session_scope() as s:
        d = deal(s, ids[2])
        deal_service.move_deal(s, people.carol, d.id, DealMove(stage_id=stages[1].id, version=d.version),
                               at=start + dt.timedelta(days=45))
        deal_service.move_deal(s, people.alice, d.id, DealMove(
            stage_id=stages[2].id, version=d.version, fields=DealFields(owner_id=people.dave.id)),
            at=start + dt.timedelta(days=47))
        assert d.team_id == people.dave.team_id
    assert_counters_match(db)

    # Reassign the won deal (its closing and stays move to West), change its channel, lose
    # the reopened one again, then delete a deal with stays.
    with db.session_scope() as s:
        d = deal(s, ids[0])
        deal_service.update_deal(s, people.alice, d.id, DealUpdate(version=d.version, owner_id=people.dave.id))
        e = deal(s, ids[1])
        deal_service.lose_deal(s, people.dave, e.id, DealClose(version=e.version, reason="price"),
                               at=start + dt.timedelta(days=35))
    assert_counters_match(db)
    assert stored_totals(db)[2] == {"won": 1, "lost": 1}
    with db.session_scope() as s:
        d = deal(s, ids[2])
        deal_service.delete_deal(s, people.alice, d.id, d.version)
    assert_counters_match(db)
    n, seconds, closed = stored_totals(db)
    assert (n, closed) == (5, {"won": 1, "lost": 1})  # a: 3 stays, b: stage 0 and the 4 days in stage 2


def test_a_stage_change_writes_one_counter_row_and_reads_nothing_for_it(
        db: Database, people: People, monkeypatch: pytest.MonkeyPatch) -> None:
    relax(db, people)
    with db.session_scope() as s:
        stages = pipeline_queries.list_stages(s, default_pipeline(s).id)
        deal_id = deal_service.create_deal(s, people.carol, DealCreate(title="x")).id
    # Counter upserts run on the driver's cursor (no SQLAlchemy events): record them here.
    upserted: list[tuple[str, int]] = []

    def recording_upsert(conn: Any, table: sa.Table, *args: Any) -> None:
        upserted.append((table.name, len(args[-1])))
        counters.upsert(conn, table, *args)

    monkeypatch.setattr(counters_flow, "_upsert", recording_upsert)
    with recorded_statements(db) as statements, db.session_scope() as s:
        d = deal(s, deal_id)
        deal_service.move_deal(s, people.carol, deal_id, DealMove(stage_id=stages[1].id, version=d.version))
    assert upserted == [("analytics_stay_started", 1)]
    assert statements and not [x for x in statements if "analytics_stay_started" in x or
                               "analytics_closed_counts" in x]
    assert_counters_match(db)


def test_rebuild_restores_damaged_flow_counters(db: Database, people: People) -> None:
    with db.session_scope() as s:
        d = deal_service.create_deal(s, people.carol, DealCreate(title="x", amount=10))
        deal_service.win_deal(s, people.carol, d.id, DealClose(version=d.version))
    with db.engine.begin() as conn:
        conn.execute(sa.update(counters_flow.closed_counts).values(n=counters_flow.closed_counts.c.n + 2))
        conn.execute(counters_flow.stay_started.insert().values(
            pipeline_id=1, month=dt.date(2020, 1, 1), team_id=0, stage_id=1, hours=0, n=1, seconds=5))
    with db.engine.connect() as conn:
        assert counters_flow.check(conn) == {"analytics_stay_started": 1, "analytics_closed_counts": 1}
    assert not rebuild.has_mismatches(rebuild.rebuild(db))
    assert_counters_match(db)


# --- the fast paths answer what the raw tables answer -----------------------------------------

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
PERIODS = [("2025-01-01", "2025-12-31"), ("2024-12-17", "2026-02-09"), ("2025-03-05", "2025-03-20"),
           ("2025-07-01", "2027-01-31")]


def raw_stays(s: Any, viewer: User, f: ReportFilters, stage_ids: list[int]) -> dict[int, timeinstage.Stays]:
    merged: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    seconds: dict[int, int] = defaultdict(int)
    for stage_id, hours, n, secs in timeinstage._raw_histograms(s, viewer, f, stage_ids, f.start, f.end):
        merged[stage_id][hours] += n
        seconds[stage_id] += secs
    return {stage_id: timeinstage.Stays(sum(hist.values()), seconds[stage_id], sorted(hist.items()))
            for stage_id, hist in merged.items()}


def by_group(rows: list[Any]) -> dict[tuple[Any, ...], tuple[list[int], list[int], int]]:
    out: dict[tuple[Any, ...], bottlenecks.Counts] = {}
    for owner_id, team_id, channel_id, counts in rows:
        out.setdefault((owner_id, team_id, channel_id), bottlenecks.Counts.empty(len(counts.reached))).add(counts)
    return {key: (c.reached, c.continued, c.deals) for key, c in out.items() if c.deals}


def test_fast_paths_equal_the_raw_history(db: Database) -> None:
    demo_service.run(db, 2500, 3, "zh", now=NOW, reset=True, password_hash="x")
    with db.session_scope(write=False) as s:
        pipeline_id = default_pipeline(s).id
        stages = pipeline_queries.list_stages(s, pipeline_id)
        stage_ids, bits = [st.id for st in stages], [1 << st.bit for st in stages]
        viewers = [User(id=0, email="op@x", name="op", role=Role.admin, is_active=True, team_id=None)]
        viewers += list(s.scalars(sa.select(User).where(User.role == Role.manager).limit(1)))
        viewers += list(s.scalars(sa.select(User).where(User.role == Role.rep).limit(1)))
        channel = s.execute(sa.text("SELECT channel_id FROM deals WHERE channel_id IS NOT NULL LIMIT 1")).scalar()
        team = s.execute(sa.text("SELECT team_id FROM deals WHERE team_id IS NOT NULL LIMIT 1")).scalar()
        checked = 0
        for viewer in viewers:
            for date_from, date_to in PERIODS:
                for extra in ({}, {"channel_id": channel}, {"team_id": team}):
                    f = ReportFilters.model_validate({"from": date_from, "to": date_to, **extra})
                    where = (viewer.role, f)
                    fast = timeinstage.completed_stays(s, viewer, f, pipeline_id, stage_ids)
                    assert fast == raw_stays(s, viewer, f, stage_ids), where
                    checked += sum(x.n for x in fast.values())
                    won, lost = change._closed(s, viewer, f, pipeline_id)
                    raw = dict(change._raw_closed(s, viewer, f, pipeline_id, f.start, f.end))
                    assert (won, lost) == (raw.get("won", 0), raw.get("lost", 0)), where
                    assert by_group(bottlenecks.group_counts(s, viewer, f, pipeline_id, bits)) == by_group(
                        bottlenecks._raw_groups(s, viewer, f, pipeline_id, bits, f.start, f.end)), where
        assert checked > 0


# --- Mann–Whitney from histograms ----------------------------------------------------------------

def test_rank_test_is_mann_whitney_of_the_values_the_histograms_stand_for() -> None:
    rng = random.Random(7)
    for _ in range(200):
        x = sorted({rng.randrange(0, 30): rng.randrange(1, 9) for _ in range(rng.randrange(1, 12))}.items())
        y = sorted({rng.randrange(0, 30): rng.randrange(1, 9) for _ in range(rng.randrange(1, 12))}.items())
        want = mann_whitney_u([v for v, n in x for _ in range(n)], [v for v, n in y for _ in range(n)])
        got = change.rank_test(x, y)
        assert want is not None and got is not None
        assert (got.u, got.n1, got.n2) == (want.u, want.n1, want.n2)
        assert got.z == pytest.approx(want.z, abs=1e-12) and got.p_value == pytest.approx(want.p_value, abs=1e-12)
    assert change.rank_test([], [(1, 2)]) is None
    assert change.rank_test([(4, 3)], [(4, 1)]) == mann_whitney_u([4, 4, 4], [4])  # all tied: p = 1
