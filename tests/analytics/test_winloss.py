"""Win/loss analysis on hand-built histories with known answers, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from loudou.analytics import cycle, output, reports, winloss
from loudou.analytics.filters import ReportFilters
from loudou.analytics.stats import wilson
from loudou.db import Database
from loudou.deal.models import DealStatus as S
from loudou.pipeline import queries as pipeline_queries
from tests.analytics.history import History, Step
from tests.analytics.outcome_helpers import api_as, channel_id, cli_json, load, reason_id
from tests.conftest import People, default_pipeline

WON, LOST, DQ = S.won, S.lost, S.disqualified


def load_period(db: Database, people: People) -> dict[str, int]:
    """January-February 2025 (BASE is 1 January 09:00 UTC; January is days 0-30, February 31-58)."""
    ids = {"referral": channel_id(db, "Referral"), "show": channel_id(db, "Trade show"),
           "price": reason_id(db, "Price too high"), "rival": reason_id(db, "Chose a competitor"),
           "budget": reason_id(db, "No budget")}
    r, t = ids["referral"], ids["show"]

    def lost(reason: str | None, activities: int) -> dict[str, Any]:
        return {"lost_reason_id": ids[reason] if reason else None, "activities": activities}

    load(db, people, [
        # lost in the period: stage lost at, reason, channel, amount, activities; cycle in days
        ("carol", History(0, [Step(1, 1), Step(5, None, LOST)], Decimal(1000), r), lost("price", 2)),      # 5
        ("carol", History(1, [Step(2, 1), Step(11, None, LOST)], Decimal(3000), t), lost("price", 4)),     # 10
        ("dave", History(2, [Step(3, 2), Step(22, None, LOST)], Decimal(5000), r), lost("rival", 6)),      # 20
        ("dave", History(10, [Step(40, None, LOST)], Decimal(2000), r), lost("price", 0)),                 # 30
        ("carol", History(20, [Step(21, 3), Step(50, None, LOST)], Decimal(4000), None), lost(None, 1)),   # 30
        ("dave", History(30, [Step(31, 1), Step(32, 2), Step(45, None, LOST)], Decimal(6000), t),
         lost("budget", 3)),                                                                              # 15
        # won in the period
        ("carol", History(0, [Step(10, None, WON)], Decimal(10000), r), {"activities": 8}),                # 10
        ("dave", History(5, [Step(45, None, WON)], Decimal(30000), t), {"activities": 5}),                 # 40
        ("carol", History(10, [Step(30, None, WON)], Decimal(20000), r), {"activities": 10}),              # 20
        # not counted: lost in March, won in December 2024, disqualified, open
        ("carol", History(60, [Step(70, None, LOST)], Decimal(1000), r), lost("price", 1)),
        ("dave", History(-30, [Step(-5, None, WON)], Decimal(1000), r)),
        ("carol", History(3, [Step(6, None, DQ)], Decimal(1000), r)),
        ("dave", History(4)),
    ])
    return ids


def report(db: Database, people: People, viewer: str = "alice", **kw: Any) -> dict[str, Any]:
    filters = ReportFilters.model_validate({"from": "2025-01-01", "to": "2025-02-28", **kw})
    with db.session_scope(write=False) as s:
        return winloss.win_loss(s, getattr(people, viewer), filters)


def stage_ids(db: Database) -> list[int]:
    with db.session_scope(write=False) as s:
        return [st.id for st in pipeline_queries.list_stages(s, default_pipeline(s).id)]


def test_by_reason_and_stage(db: Database, people: People) -> None:
    ids = load_period(db, people)
    r = report(db, people)
    assert r["lost"] == 6 and r["lost_amount"] == 21000.0
    reasons = {row["lost_reason_id"]: row for row in r["by_reason"]}
    price = reasons[ids["price"]]
    assert (price["lost"], price["lost_amount"], price["share"]) == (3, 6000.0, 0.5)
    assert price["reason_en"] == "Price too high"
    lo, hi = wilson(3, 6)
    assert price["ci_low"] == pytest.approx(lo) and price["ci_high"] == pytest.approx(hi)
    assert (reasons[ids["rival"]]["lost"], reasons[ids["budget"]]["lost_amount"]) == (1, 6000.0)
    assert reasons[None]["lost"] == 1 and reasons[None]["reason"] == cycle.NO_NAME
    assert r["by_reason"][0]["lost_reason_id"] == ids["price"] and r["by_reason"][-1]["lost_reason_id"] is None
    stages = stage_ids(db)
    assert [(row["stage_id"], row["lost"]) for row in r["by_stage"]] == [
        (stages[0], 1), (stages[1], 2), (stages[2], 2), (stages[3], 1)]
    assert r["by_stage"][1]["lost_amount"] == 4000.0 and r["by_stage"][1]["share"] == pytest.approx(2 / 6)
    assert r["by_stage"][2]["name_en"] == "Needs analysis"


def test_reason_by_channel_and_rep(db: Database, people: People) -> None:
    ids = load_period(db, people)
    r = report(db, people)
    by_channel = {(row["channel_id"], row["lost_reason_id"]): row for row in r["reason_by_channel"]}
    assert {k: v["lost"] for k, v in by_channel.items()} == {
        (ids["referral"], ids["price"]): 2, (ids["referral"], ids["rival"]): 1,
        (ids["show"], ids["price"]): 1, (ids["show"], ids["budget"]): 1, (None, None): 1}
    assert by_channel[(ids["referral"], ids["price"])]["share"] == pytest.approx(2 / 3)  # of Referral's 3
    assert by_channel[(ids["referral"], ids["price"])]["channel_en"] == "Referral"
    assert [row["channel_id"] for row in r["reason_by_channel"]][:2] == [ids["referral"]] * 2  # biggest first
    by_rep = {(row["rep"], row["lost_reason_id"]): row["lost"] for row in r["reason_by_rep"]}
    assert by_rep == {("Carol", ids["price"]): 2, ("Carol", None): 1, ("Dave", ids["rival"]): 1,
                      ("Dave", ids["price"]): 1, ("Dave", ids["budget"]): 1}


def test_over_time(db: Database, people: People) -> None:
    load_period(db, people)
    r = report(db, people)
    assert [(b["bucket"], b["lost"], b["lost_amount"]) for b in r["over_time"]] == [
        ("2025-01", 3, 9000.0), ("2025-02", 3, 12000.0)]
    weekly = report(db, people, **{"from": "2025-01-01", "to": "2025-01-12"}, interval="week")
    # lost on day 5 (6 Jan, W02) and day 11 (12 Jan, W02); W01 is 1-5 January
    assert [(b["bucket"], b["lost"]) for b in weekly["over_time"]] == [("2025-W01", 0), ("2025-W02", 2)]


def test_won_vs_lost(db: Database, people: People) -> None:
    load_period(db, people)
    won, lost = report(db, people)["won_vs_lost"]
    assert (won["status"], won["deals"], lost["status"], lost["deals"]) == ("won", 3, "lost", 6)
    assert won["share"] == pytest.approx(3 / 9)  # the win rate of the period
    assert report(db, people)["win_rate_definition"].startswith("won / (won + lost)")
    assert won["avg_activities"] == pytest.approx(7.67) and won["median_activities"] == 8.0   # 5, 8, 10
    assert lost["avg_activities"] == pytest.approx(2.67) and lost["median_activities"] == 2.5  # 0,1,2,3,4,6
    assert won["median_cycle_days"] == 20.0 and lost["median_cycle_days"] == 17.5  # 10,20,40 / 5,10,15,20,30,30
    assert won["avg_amount"] == 20000.0 and lost["avg_amount"] == 3500.0


def test_drill_down_and_tables(db: Database, people: People) -> None:
    ids = load_period(db, people)
    filters = ReportFilters.model_validate({"from": "2025-01-01", "to": "2025-02-28"})
    r = report(db, people)
    spec = reports.get("winloss")
    assert spec is not None
    tables = {t.key: t for t in spec.tables(r, filters)}
    assert set(tables) == {"reasons", "stages", "reason_channel", "reason_rep", "over_time", "won_vs_lost"}
    for chart in spec.charts:
        table = tables[chart.table]
        assert chart.x in table.column_keys() and set(chart.series) <= set(table.column_keys())
    reasons, stages = tables["reasons"], tables["stages"]
    assert reasons.drill is not None and stages.drill is not None
    assert reasons.drill(reasons.rows[0]) == {"status": "lost", "closed_from": "2025-01-01",
                                             "closed_to": "2025-02-28", "lost_reason_id": ids["price"]}
    assert reasons.drill(reasons.rows[-1]) is None  # no reason given
    assert stages.drill(stages.rows[0])["stage_id"] == stage_ids(db)[0]  # type: ignore[index]
    by_channel = tables["reason_channel"]
    assert by_channel.drill is not None
    assert by_channel.drill(by_channel.rows[0]) == {"status": "lost", "closed_from": "2025-01-01",
                                                   "closed_to": "2025-02-28", "channel_id": ids["referral"],
                                                   "lost_reason_id": ids["price"]}
    over_time = tables["over_time"]
    assert over_time.drill is not None
    assert over_time.drill(over_time.rows[1]) == {"status": "lost", "closed_from": "2025-02-01",
                                                 "closed_to": "2025-02-28"}
    json.dumps(r)
    for table in tables.values():  # every table exports (dates as dates)
        assert b"".join(output.table_csv(table)).count(b"\n") == len(table.rows) + 1
        assert b"".join(output.table_xlsx(table)).startswith(b"PK")


def test_policy(db: Database, people: People) -> None:
    load_period(db, people)
    carol = report(db, people, viewer="carol")
    assert carol["lost"] == 3 and {row["rep"] for row in carol["reason_by_rep"]} == {"Carol"}
    assert [row["deals"] for row in carol["won_vs_lost"]] == [2, 3]
    assert report(db, people, viewer="bob")["lost"] == 3
    erin = report(db, people, viewer="erin")
    assert erin["lost"] == 3 and erin["lost_amount"] == 13000.0
    assert report(db, people, viewer="dave")["won_vs_lost"][0]["deals"] == 1


def test_empty_and_one_deal_periods(db: Database, people: People) -> None:
    load_period(db, people)
    empty = report(db, people, **{"from": "2024-06-01", "to": "2024-06-30"})
    assert empty["lost"] == 0 and empty["by_reason"] == [] and empty["by_stage"] == []
    assert empty["reason_by_channel"] == [] and empty["reason_by_rep"] == []
    assert [b["lost"] for b in empty["over_time"]] == [0]
    assert all(row["deals"] == 0 and row["median_activities"] is None and row["avg_amount"] is None
               and row["share"] is None for row in empty["won_vs_lost"])
    one = report(db, people, **{"from": "2025-01-06", "to": "2025-01-06"})  # day 5: the first loss only
    assert one["lost"] == 1 and one["by_reason"][0]["share"] == 1.0
    assert one["won_vs_lost"][1]["median_activities"] == 2.0 and one["won_vs_lost"][1]["median_cycle_days"] == 5.0
    assert one["won_vs_lost"][0]["deals"] == 0


def test_cli_and_api(db: Database, people: People) -> None:
    load_period(db, people)
    out = cli_json(db, "winloss", "--from", "2025-01-01", "--to", "2025-02-28")
    assert out["report"] == "winloss" and out["lost"] == 6 and len(out["over_time"]) == 2
    assert cli_json(db, "winloss", "--from", "2025-01-01", "--to", "2025-02-28", "--as", "dave@example.com",
                    "--channel", "Trade show")["lost"] == 1
    with api_as(db, people, "erin") as api:
        resp = api["erin"].get("/api/v1/analytics/winloss", params={"from": "2025-01-01", "to": "2025-02-28"})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["report"] == "winloss" and body["lost"] == 3
        assert set(body) >= {"period", "by_reason", "by_stage", "reason_by_channel", "reason_by_rep", "over_time",
                             "won_vs_lost"}
