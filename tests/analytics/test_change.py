"""Period over period on hand-built histories with known answers, on SQLite and PostgreSQL,
and the Mann–Whitney U test against a hand-computed example."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from loudou.analytics import change, rebuild
from loudou.analytics.filters import ReportFilters
from loudou.analytics.reports import get
from loudou.analytics.stats import RankTest, mann_whitney_u, poisson_count_test, two_proportion_test
from loudou.cli import app
from loudou.db import Database, set_database
from loudou.deal.models import DealStatus as S
from loudou.pipeline import queries as pipeline_queries
from tests.analytics.history import History, Step, write
from tests.api.conftest import Clients, api, client  # noqa: F401  (the API fixtures)
from tests.conftest import People, default_pipeline

WON, LOST = S.won, S.lost
JANUARY = {"from": "2025-01-01", "to": "2025-01-31"}  # previous period: December 2024
DAY = 86_400


def december(c: float, kind: int) -> History:
    """1 day in stage 0, then: lost (0); 2 days in stage 1 and lost (1); or on to stage 2 for a
    day and won (2)."""
    if kind == 0:
        return History(c, [Step(c + 1, None, LOST)])
    if kind == 1:
        return History(c, [Step(c + 1, 1), Step(c + 3, None, LOST)])
    return History(c, [Step(c + 1, 1), Step(c + 3, 2), Step(c + 4, None, WON)])


def january(c: float, kind: int) -> History:
    """The same paths with 5 days in stage 0."""
    if kind == 0:
        return History(c, [Step(c + 5, None, LOST)])
    if kind == 1:
        return History(c, [Step(c + 5, 1), Step(c + 7, None, LOST)])
    return History(c, [Step(c + 5, 1), Step(c + 7, 2), Step(c + 8, None, WON)])


def load(db: Database, people: People) -> None:
    """carol: 20 deals created 1–20 December (4 lost in stage 0, 8 in stage 1, 8 won from stage
    2), 20 created 1–20 January (16 lost in stage 0, 2 in stage 1, 2 won from stage 2), all
    closed within their month; dave: one deal created 10 January, lost in stage 0 after 3 days."""
    histories = [("carol", december(-31 + i, 0 if i < 4 else 1 if i < 12 else 2)) for i in range(20)]
    histories += [("carol", january(i, 0 if i < 16 else 1 if i < 18 else 2)) for i in range(20)]
    histories.append(("dave", History(9, [Step(12, None, LOST)])))
    with db.session_scope() as s:
        stages = pipeline_queries.list_stages(s, default_pipeline(s).id)
        for owner, h in histories:
            write(s, getattr(people, owner), stages, h)
    assert not rebuild.has_mismatches(rebuild.rebuild(db))


def report(db: Database, people: People, viewer: str = "bob", **kw: Any) -> dict[str, Any]:
    filters = ReportFilters.model_validate({**JANUARY, **kw})
    with db.session_scope(write=False) as s:
        return change.period_change(s, getattr(people, viewer), filters)


def test_continuation_period_over_period(db: Database, people: People) -> None:
    load(db, people)
    r = report(db, people)  # bob, East: carol's deals only
    assert r["period"]["from"] == "2025-01-01"
    assert r["previous_period"] == {"from": "2024-12-01", "to": "2024-12-31", "timezone": "UTC"}
    c = r["continuation"]
    assert [(s["reached_before"], s["continued_before"]) for s in c] == [(20, 16), (16, 8), (8, 0), (0, 0), (0, 0)]
    assert [(s["reached_now"], s["continued_now"]) for s in c] == [(20, 4), (4, 2), (2, 0), (0, 0), (0, 0)]
    t = two_proportion_test(4, 20, 16, 20)
    assert t is not None and t.significant
    assert (c[0]["rate_before"], c[0]["rate_now"]) == (0.8, 0.2)
    assert c[0]["difference"] == pytest.approx(-0.6) and c[0]["z"] == pytest.approx(t.z)
    assert c[0]["p_value"] == pytest.approx(t.p_value) and c[0]["significant"]
    assert (c[1]["difference"], c[1]["p_value"], c[1]["significant"]) == (0.0, 1.0, False)
    assert c[3]["rate_now"] is None and c[3]["p_value"] is None and not c[3]["significant"]


def test_time_in_stage_period_over_period(db: Database, people: People) -> None:
    load(db, people)
    tis = report(db, people)["time_in_stage"]
    assert [(s["stays_before"], s["stays_now"]) for s in tis] == [(20, 20), (16, 4), (8, 2), (0, 0), (0, 0)]
    assert (tis[0]["median_days_before"], tis[0]["median_days_now"], tis[0]["difference_days"]) == (1.0, 5.0, 4.0)
    rank = mann_whitney_u([5 * DAY] * 20, [1 * DAY] * 20)
    assert rank is not None
    # every January stay is longer: U = 20 × 20; tie-corrected variance 400/12 · (41 − 2·7980/1560)
    assert tis[0]["u"] == 400.0 and rank.u == 400.0
    assert tis[0]["z"] == pytest.approx((200 - 0.5) / math.sqrt(400 / 12 * (41 - 2 * 7980 / 1560)))
    assert tis[0]["p_value"] == pytest.approx(rank.p_value) and tis[0]["significant"]
    # equal stays: every value tied, no evidence of a change
    assert (tis[1]["difference_days"], tis[1]["p_value"], tis[1]["significant"]) == (0.0, 1.0, False)
    assert tis[3]["median_days_now"] is None and tis[3]["p_value"] is None


def test_rank_test_at_the_histogram_resolution(db: Database, people: People) -> None:
    # Stage 0 stays of 10.2 days in December and 10.8 days in January: both in the 10-day
    # bucket of the stay histogram, so the rank test sees ties only (p = 1, U = n1·n2/2).
    histories = [History(-31 + i, [Step(-31 + i + 10.2, 1)]) for i in range(5)]
    histories += [History(i, [Step(i + 10.8, 1)]) for i in range(5)]
    with db.session_scope() as s:
        stages = pipeline_queries.list_stages(s, default_pipeline(s).id)
        for h in histories:
            write(s, people.carol, stages, h)
    assert not rebuild.has_mismatches(rebuild.rebuild(db))
    stage0 = report(db, people)["time_in_stage"][0]
    assert (stage0["stays_before"], stage0["stays_now"]) == (5, 5)
    assert (stage0["median_days_before"], stage0["median_days_now"], stage0["difference_days"]) == (10.0, 10.0, 0.0)
    assert (stage0["u"], stage0["z"], stage0["p_value"], stage0["significant"]) == (12.5, 0.0, 1.0, False)


def test_win_rate_cohort_size_and_called_out(db: Database, people: People) -> None:
    load(db, people)
    r = report(db, people)
    win = r["win_rate_of_closed"]
    assert (win["before"]["won"], win["before"]["lost"], win["now"]["won"], win["now"]["lost"]) == (8, 12, 2, 18)
    assert (win["before"]["rate"], win["now"]["rate"]) == (0.4, 0.1)
    t = two_proportion_test(2, 20, 8, 20)
    assert t is not None and t.significant and win["p_value"] == pytest.approx(t.p_value) and win["significant"]
    assert "won / (won + lost)" in r["win_rate_definition"]
    assert r["cohort_size"] == {"before": 20, "now": 20, "difference": 0, "relative_change": 0.0, "z": 0.0,
                                "p_value": 1.0, "significant": False}
    called = r["called_out"]
    stage0 = r["continuation"][0]["stage_id"]
    assert [(c["metric"], c["stage_id"]) for c in called] == [
        ("median_days_in_stage", stage0), ("continuation", stage0), ("win_rate_of_closed", None)]
    assert [(c["before"], c["after"], c["direction"]) for c in called] == [
        (1.0, 5.0, "up"), (0.8, 0.2, "down"), (0.4, 0.1, "down")]
    assert called[2]["p_value"] == pytest.approx(t.p_value) and called[0]["stage"] == r["continuation"][0]["name"]


def test_policy_rep_and_manager(db: Database, people: People) -> None:
    load(db, people)
    bob = report(db, people)
    assert report(db, people, viewer="carol") == bob
    alice = report(db, people, viewer="alice")  # dave's January deal as well
    assert alice["cohort_size"]["now"] == 21 and alice["continuation"][0]["reached_now"] == 21
    assert alice["time_in_stage"][0]["stays_now"] == 21 and alice["win_rate_of_closed"]["now"]["lost"] == 19
    dave = report(db, people, viewer="dave")  # a one-deal period for him
    assert (dave["cohort_size"]["before"], dave["cohort_size"]["now"]) == (0, 1)
    assert dave["continuation"][0]["reached_now"] == 1 and dave["continuation"][0]["p_value"] is None
    assert dave["time_in_stage"][0]["median_days_now"] == 3.0 and dave["time_in_stage"][0]["p_value"] is None
    assert dave["win_rate_of_closed"]["now"]["rate"] == 0.0 and dave["win_rate_of_closed"]["p_value"] is None
    assert dave["called_out"] == []
    assert report(db, people, viewer="erin") == dave


def test_empty_and_one_deal_periods(db: Database, people: People) -> None:
    load(db, people)
    empty = report(db, people, viewer="alice", **{"from": "2023-06-01", "to": "2023-06-30"})
    assert empty["cohort_size"]["now"] == empty["cohort_size"]["before"] == 0 and empty["cohort_size"]["z"] is None
    assert all(s["rate_now"] is None and s["p_value"] is None for s in empty["continuation"])
    assert all(s["stays_now"] == 0 and s["median_days_now"] is None for s in empty["time_in_stage"])
    assert empty["win_rate_of_closed"]["now"]["rate"] is None and empty["called_out"] == []
    # 1 January: one deal (5 days in stage 0, lost); 31 December before it: none
    one = report(db, people, viewer="alice", **{"from": "2025-01-01", "to": "2025-01-01"})
    assert one["previous_period"]["from"] == one["previous_period"]["to"] == "2024-12-31"
    assert (one["cohort_size"]["before"], one["cohort_size"]["now"]) == (0, 1)
    assert one["continuation"][0]["reached_now"] == 1 and one["continuation"][0]["rate_now"] == 0.0
    assert one["time_in_stage"][0]["median_days_now"] == 5.0 and one["called_out"] == []


def test_tables_charts_and_drill(db: Database, people: People) -> None:
    load(db, people)
    spec = get("change")
    assert spec is not None
    filters = ReportFilters.model_validate(JANUARY)
    result = report(db, people)
    tables = {t.key: t for t in spec.tables(result, filters)}
    assert set(tables) == {"called_out", "continuation", "time_in_stage", "overall"}
    for chart in spec.charts:
        assert chart.x in tables[chart.table].column_keys()
        assert set(chart.series) <= set(tables[chart.table].column_keys())
    assert len(tables["called_out"].rows) == 3
    row = tables["continuation"].rows[1]
    assert tables["continuation"].drill is not None
    assert tables["continuation"].drill(row) == {"created_from": "2025-01-01", "created_to": "2025-01-31",
                                                 "pipeline_id": result["pipeline_id"],
                                                 "reached_stage_id": row["stage_id"]}


def test_mann_whitney_hand_computed() -> None:
    # x = 1, 2, 2, 5 and y = 2, 3, 6 pooled: 1 | 2 2 2 | 3 | 5 | 6 -> ranks 1 | 3 3 3 | 5 | 6 | 7
    # R1 = 1 + 3 + 3 + 6 = 13, U = 13 − 4·5/2 = 3 (mean 4·3/2 = 6); one tie group of 3:
    # variance = 4·3/12 · (8 − (27 − 3)/(7·6)) = 7.428571…; z = (3 − 6 + 0.5)/√7.428571 = −0.917249
    t = mann_whitney_u([1, 2, 2, 5], [2, 3, 6])
    assert t is not None
    assert (t.u, t.n1, t.n2) == (3.0, 4, 3)
    assert t.z == pytest.approx(-0.917249, abs=1e-6)
    assert t.p_value == pytest.approx(0.359012, abs=1e-6) and not t.significant
    # no ties: U = 6 of 6 pairs, variance 3·2·6/12 = 3, z = (6 − 3 − 0.5)/√3
    t2 = mann_whitney_u([3, 4, 5], [1, 2])
    assert t2 is not None and t2.u == 6.0 and t2.z == pytest.approx(2.5 / math.sqrt(3))
    assert t2.p_value == pytest.approx(0.148915, abs=1e-6)
    assert mann_whitney_u([], [1.0]) is None
    assert mann_whitney_u([1, 1], [1]) == RankTest(1.0, 2, 1, 0.0, 1.0)  # all tied: no evidence
    count = poisson_count_test(30, 10)
    assert count is not None and count.z == pytest.approx(20 / math.sqrt(40)) and count.significant
    assert poisson_count_test(0, 0) is None


@pytest.fixture
def cli_database(db: Database) -> Iterator[Database]:
    set_database(db)
    yield db
    set_database(None)


def test_cli_json(cli_database: Database, people: People) -> None:
    load(cli_database, people)
    out = CliRunner().invoke(app, ["report", "change", "--from", "2025-01-01", "--to", "2025-01-31",
                                   "--as", "bob@example.com", "--format", "json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.output)
    assert body["report"] == "change" and len(body["called_out"]) == 3
    assert set(body) >= {"period", "previous_period", "continuation", "time_in_stage", "win_rate_of_closed",
                         "cohort_size", "called_out"}


def test_api(db: Database, people: People, api: Clients) -> None:  # noqa: F811  (the imported fixture)
    load(db, people)
    r = api.dave.get("/api/v1/analytics/change", params=JANUARY)
    assert r.status_code == 200, r.text
    assert r.json()["cohort_size"]["now"] == 1
    body = api.alice.get("/api/v1/analytics/change", params=JANUARY).json()
    assert body["cohort_size"] == {"before": 20, "now": 21, "difference": 1, "relative_change": 0.05,
                                   "z": pytest.approx(1 / math.sqrt(41)), "p_value": pytest.approx(
                                       math.erfc(1 / math.sqrt(41) / math.sqrt(2))), "significant": False}
