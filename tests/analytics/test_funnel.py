"""Cohort funnel on hand-built histories with known answers, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from loudou.analytics import funnel, rebuild
from loudou.analytics.filters import ReportFilters
from loudou.analytics.stats import percentile, two_proportion_test, wilson
from loudou.db import Database
from loudou.deal.models import DealStatus as S
from loudou.pipeline import queries as pipeline_queries
from tests.analytics.history import History, Step, write
from tests.conftest import People, default_pipeline

WON, LOST, DQ = S.won, S.lost, S.disqualified


def load(db: Database, people: People, histories: list[tuple[str, History]]) -> None:
    with db.session_scope() as s:
        stages = pipeline_queries.list_stages(s, default_pipeline(s).id)
        for owner, h in histories:
            write(s, getattr(people, owner), stages, h)
    results = rebuild.rebuild(db)
    assert not rebuild.has_mismatches(results)


def report(db: Database, people: People, viewer: str = "alice", **kw: Any) -> dict[str, Any]:
    filters = ReportFilters.model_validate({"from": "2025-01-01", "to": "2025-01-31", **kw})
    with db.session_scope(write=False) as s:
        return funnel.cohort_funnel(s, getattr(people, viewer), filters)


HISTORIES = [
    # straight through to won: 2 days in stage 0, 3 in 1, 4 in 2, 5 in 3, 6 in 4
    ("carol", History(0, [Step(2, 1), Step(5, 2), Step(9, 3), Step(14, 4), Step(20, None, WON)])),
    # lost at stage 1
    ("carol", History(1, [Step(3, 1), Step(10, None, LOST)])),
    # skips stage 2: 0 -> 1 -> 3, then lost
    ("carol", History(2, [Step(3, 1), Step(4, 3), Step(8, None, LOST)])),
    # lost at stage 2, reopened, moved on to stage 3 and still open
    ("dave", History(3, [Step(4, 1), Step(6, 2), Step(7, None, LOST), Step(9, 2, S.open), Step(12, 3)])),
    # disqualified at stage 0
    ("dave", History(4, [Step(5, None, DQ)])),
    # still open in stage 0
    ("dave", History(5)),
    # created outside the period: never counted
    ("carol", History(40, [Step(41, 1)])),
]


def test_any_order_funnel(db: Database, people: People) -> None:
    load(db, people, HISTORIES)
    r = report(db, people)
    assert r["cohort_size"] == 6
    assert [s["reached"] for s in r["stages"]] == [6, 4, 2, 3, 1]
    # stage 2: of the 4 that reached stage 1, 3 got past it (one by skipping stage 2)
    assert [s["conversion_from_previous"] for s in r["stages"]] == [1.0, 4 / 6, 3 / 4, 3 / 3, 1 / 3]
    assert (r["won"], r["lost"], r["disqualified"], r["open"]) == (1, 2, 1, 2)
    lo, hi = wilson(3, 4)
    assert r["stages"][2]["ci_low"] == pytest.approx(lo) and r["stages"][2]["ci_high"] == pytest.approx(hi)
    # the reopened deal counts once at stage 2 and its two stays there are both measured
    assert r["stages"][2]["completed_stays"] == 3


def test_strict_funnel_drops_the_skipper_after_the_skip(db: Database, people: People) -> None:
    load(db, people, HISTORIES)
    r = report(db, people, strict=True)
    assert [s["reached"] for s in r["stages"]] == [6, 4, 2, 2, 1]
    assert r["stages"][3]["conversion_from_previous"] == 1.0


def test_time_in_stage(db: Database, people: People) -> None:
    load(db, people, HISTORIES)
    r = report(db, people)
    stage0 = sorted([2, 2, 1, 1, 1])  # completed stays in stage 0 (days); the open deal's is not complete
    assert r["stages"][0]["median_days_in_stage"] == pytest.approx(percentile([float(x) for x in stage0], 0.5))
    assert r["stages"][0]["p90_days_in_stage"] == pytest.approx(percentile([float(x) for x in stage0], 0.9))


def test_policy_and_filters_narrow_the_cohort(db: Database, people: People) -> None:
    load(db, people, HISTORIES)
    assert report(db, people, viewer="carol")["cohort_size"] == 3
    assert report(db, people, viewer="bob")["cohort_size"] == 3  # East
    assert report(db, people, viewer="erin")["cohort_size"] == 3  # West
    assert report(db, people, owner_id=people.dave.id)["cohort_size"] == 3
    assert report(db, people, team_id=people.carol.team_id)["cohort_size"] == 3


def test_empty_and_one_deal_periods(db: Database, people: People) -> None:
    load(db, people, HISTORIES)
    empty = report(db, people, **{"from": "2024-01-01", "to": "2024-01-31"})
    assert empty["cohort_size"] == 0 and all(s["reached"] == 0 for s in empty["stages"])
    assert all(s["conversion_from_previous"] is None and s["ci_low"] is None for s in empty["stages"])
    one = report(db, people, **{"from": "2025-01-01", "to": "2025-01-01"})
    assert one["cohort_size"] == 1 and one["won"] == 1 and one["stages"][4]["reached"] == 1


def test_same_numbers_on_both_databases_as_json(db: Database, people: People) -> None:
    """Shape of the stable interface (`loudou report funnel --format json`)."""
    load(db, people, HISTORIES)
    r = json.loads(json.dumps(report(db, people), default=str))
    assert set(r) >= {"period", "cohort_size", "stages", "won", "lost", "disqualified", "open"}
    assert set(r["stages"][0]) >= {"stage_id", "name", "reached", "conversion_from_previous", "ci_low", "ci_high",
                                   "median_days_in_stage", "p90_days_in_stage"}
    assert r["period"] == {"from": "2025-01-01", "to": "2025-01-31", "timezone": "UTC"}


def test_wilson_and_two_proportion_reference_values() -> None:
    lo, hi = wilson(8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)  # textbook values
    assert wilson(0, 0) == (None, None)
    t = two_proportion_test(30, 100, 50, 100)
    assert t is not None and t.significant and round(t.z, 3) == -2.887
    assert not two_proportion_test(50, 100, 52, 100).significant  # type: ignore[union-attr]


def test_rebuild_detects_and_fixes_tampering(db: Database, people: People) -> None:
    load(db, people, HISTORIES)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE deals SET reached_mask = 0 WHERE id = 1")
        conn.exec_driver_sql("UPDATE stage_transitions SET duration_s = 7 WHERE id = 2")
    with db.engine.connect() as conn:
        bad = {(r.table, r.column): r.mismatches for r in rebuild.verify(conn)}
    assert bad[("deals", "reached_mask")] == 1 and bad[("stage_transitions", "duration_s")] == 1
    assert not rebuild.has_mismatches(rebuild.rebuild(db))


def test_service_writes_keep_derived_state_exact(db: Database, people: People) -> None:
    """The live write path and the rebuild agree (nothing for rebuild to change)."""
    from loudou.deal import service as deal_service
    from loudou.deal.schemas import DealClose, DealCreate, DealMove, DealReopen

    with db.session_scope() as s:
        st = pipeline_queries.list_stages(s, default_pipeline(s).id)
        d = deal_service.create_deal(s, people.carol, DealCreate(title="x", amount=Decimal(5), contact_id=None))
        d = deal_service.move_deal(s, people.carol, d.id, DealMove(stage_id=st[1].id, version=d.version))
        d = deal_service.lose_deal(s, people.carol, d.id, DealClose(version=d.version, reason="Went silent"))
        d = deal_service.reopen_deal(s, people.carol, d.id, DealReopen(version=d.version))
    with db.engine.connect() as conn:
        assert not rebuild.has_mismatches(rebuild.verify(conn)), rebuild.verify(conn)
    _ = dt
