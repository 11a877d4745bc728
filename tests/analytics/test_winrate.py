"""Win rate, deal size and velocity by period on hand-built histories with known answers,
on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from loudou.analytics import output, reports, winrate
from loudou.analytics.filters import ReportFilters
from loudou.analytics.stats import two_proportion_test, wilson
from loudou.db import Database
from loudou.deal.models import DealStatus as S
from tests.analytics.history import History, Step
from tests.analytics.outcome_helpers import api_as, cli_json, load
from tests.conftest import People

WON, LOST, DQ = S.won, S.lost, S.disqualified

# BASE is 2025-01-01 09:00 UTC and day n is n days later: January is days 0-30,
# February 31-58, March 59-89.
HISTORIES = [
    ("carol", History(-20, [Step(10, None, WON)], Decimal(10000))),   # A: won in Jan, 30-day cycle
    ("carol", History(-10, [Step(20, None, LOST)])),                   # B: lost in Jan
    ("dave", History(5, [Step(8, 1), Step(25, None, WON)], Decimal(20000))),  # C: won in Jan, 20 days
    ("dave", History(2, [Step(40, None, LOST)])),                      # D: lost in Feb
    ("carol", History(15, [Step(45, None, WON)], Decimal(30000))),     # E: won in Feb, 30 days
    ("carol", History(35, [Step(50, None, DQ)])),                      # F: disqualified in Feb
    ("dave", History(40, [Step(70, None, WON)], Decimal(40000))),      # G: won in Mar, 30 days
    ("dave", History(50, [Step(75, None, LOST)])),                     # H: lost in Mar
    ("carol", History(60, [Step(80, None, LOST)])),                    # I: lost in Mar
    ("carol", History(-5)),                                            # J: open throughout
    ("dave", History(-100, [Step(-50, None, LOST)])),                  # K: closed before the period
    ("carol", History(80, [Step(95, None, WON)], Decimal(5000))),      # L: won in April
]


def report(db: Database, people: People, viewer: str = "alice", **kw: Any) -> dict[str, Any]:
    filters = ReportFilters.model_validate({"from": "2025-01-01", "to": "2025-03-31", **kw})
    with db.session_scope(write=False) as s:
        return winrate.win_rate(s, getattr(people, viewer), filters)


def test_monthly_buckets(db: Database, people: People) -> None:
    load(db, people, HISTORIES)
    r = report(db, people)
    assert r["win_rate_definition"].startswith("won / (won + lost)")
    jan, feb, mar = r["buckets"]
    assert [b["bucket"] for b in r["buckets"]] == ["2025-01", "2025-02", "2025-03"]
    assert (jan["start"], jan["end"], feb["end"], mar["end"]) == ("2025-01-01", "2025-01-31", "2025-02-28",
                                                                  "2025-03-31")
    assert all(b["full"] for b in r["buckets"])
    assert [(b["won"], b["lost"], b["disqualified"]) for b in r["buckets"]] == [(2, 1, 0), (1, 1, 1), (1, 2, 0)]
    assert [b["win_rate"] for b in r["buckets"]] == pytest.approx([2 / 3, 1 / 2, 1 / 3])
    lo, hi = wilson(2, 3)
    assert jan["ci_low"] == pytest.approx(lo) and jan["ci_high"] == pytest.approx(hi)
    assert [b["won_amount"] for b in r["buckets"]] == [30000.0, 30000.0, 40000.0]
    assert [b["avg_won_amount"] for b in r["buckets"]] == [15000.0, 30000.0, 40000.0]
    assert [b["median_cycle_days"] for b in r["buckets"]] == [25.0, 30.0, 30.0]
    # open at 1 Jan: A, B, J; at 1 Feb: D, E, J; at 1 Mar: G, H, J
    assert [b["open_at_start"] for b in r["buckets"]] == [3, 3, 3]
    # 3 × 2/3 × 15,000 ÷ 25; 3 × 1/2 × 30,000 ÷ 30; 3 × 1/3 × 40,000 ÷ 30
    assert [b["velocity"] for b in r["buckets"]] == pytest.approx([1200.0, 1500.0, 1333.33])


def test_totals_and_trend(db: Database, people: People) -> None:
    load(db, people, HISTORIES)
    r = report(db, people)
    t = r["totals"]
    assert (t["won"], t["lost"], t["disqualified"], t["closed"]) == (4, 4, 1, 9)
    assert t["win_rate"] == 0.5 and t["won_amount"] == 100000.0 and t["avg_won_amount"] == 25000.0
    assert t["median_cycle_days"] == 30.0 and t["open_at_start"] == 3
    assert t["velocity"] == pytest.approx(1250.0)  # 3 × 0.5 × 25,000 ÷ 30
    trend = r["trend"]
    assert (trend["last_bucket"], trend["previous_bucket"]) == ("2025-03", "2025-02")
    assert trend["win_rate_change"] == pytest.approx(1 / 3 - 1 / 2)
    assert trend["p_value"] == pytest.approx(two_proportion_test(1, 3, 1, 2).p_value)  # type: ignore[union-attr]
    assert trend["won_change"] == 0 and trend["won_amount_change"] == 10000.0
    assert trend["won_amount_change_pct"] == pytest.approx(1 / 3)
    assert trend["win_rate_slope"] == pytest.approx(-1 / 6) and trend["slope_buckets"] == 3


def test_reps_and_teams(db: Database, people: People) -> None:
    load(db, people, HISTORIES)
    r = report(db, people)
    reps = {row["name"]: row for row in r["by_rep"]}
    carol, dave = reps["Carol"], reps["Dave"]
    assert (carol["won"], carol["lost"], carol["disqualified"], carol["win_rate"]) == (2, 2, 1, 0.5)
    assert carol["won_amount"] == 40000.0 and carol["avg_won_amount"] == 20000.0
    assert carol["median_cycle_days"] == 30.0 and carol["owner_id"] == people.carol.id
    assert (dave["won"], dave["lost"], dave["won_amount"], dave["median_cycle_days"]) == (2, 2, 60000.0, 25.0)
    lo, hi = wilson(2, 4)
    assert dave["ci_low"] == pytest.approx(lo) and dave["ci_high"] == pytest.approx(hi)
    teams = {row["name"]: row for row in r["by_team"]}
    assert teams["East"]["won"] == 2 and teams["East"]["won_amount"] == 40000.0
    assert teams["West"]["median_cycle_days"] == 25.0 and teams["West"]["team_id"] == people.dave.team_id


def test_partial_buckets_and_weeks(db: Database, people: People) -> None:
    load(db, people, HISTORIES)
    r = report(db, people, **{"from": "2025-01-15", "to": "2025-03-10"})
    assert [(b["bucket"], b["start"], b["end"], b["full"]) for b in r["buckets"]] == [
        ("2025-01", "2025-01-15", "2025-01-31", False), ("2025-02", "2025-02-01", "2025-02-28", True),
        ("2025-03", "2025-03-01", "2025-03-10", False)]
    # open at 15 Jan: B, C, D, J (A closed on 11 Jan, E created on 16 Jan)
    assert r["buckets"][0]["open_at_start"] == 4 and r["totals"]["open_at_start"] == 4
    assert (r["buckets"][0]["won"], r["buckets"][0]["lost"]) == (1, 1)  # C won, B lost
    assert r["trend"]["last_bucket"] is None and r["trend"]["win_rate_change"] is None  # one full bucket only
    assert r["trend"]["slope_buckets"] == 2  # March 1-10 has no closed deal
    weeks = report(db, people, **{"from": "2025-01-01", "to": "2025-01-31"}, interval="week")
    assert [b["bucket"] for b in weeks["buckets"]] == ["2025-W01", "2025-W02", "2025-W03", "2025-W04", "2025-W05"]
    assert [b["full"] for b in weeks["buckets"]] == [False, True, True, True, False]
    assert weeks["buckets"][0]["start"] == "2025-01-01" and weeks["buckets"][-1]["end"] == "2025-01-31"
    # A won on Sat 11 Jan (W02); B lost on Tue 21 Jan and C won on Sun 26 Jan (W04)
    assert [(b["won"], b["lost"]) for b in weeks["buckets"]] == [(0, 0), (1, 0), (0, 0), (1, 1), (0, 0)]
    assert weeks["trend"]["last_bucket"] == "2025-W04" and weeks["trend"]["win_rate_change"] is None  # W03 none
    quarter = report(db, people, interval="quarter")
    assert [(b["bucket"], b["won"], b["lost"]) for b in quarter["buckets"]] == [("2025-Q1", 4, 4)]
    assert quarter["trend"]["win_rate_slope"] is None


def test_buckets_cross_the_year() -> None:
    filters = ReportFilters.model_validate({"from": "2024-11-15", "to": "2025-02-03", "interval": "quarter"})
    assert [(b.key, b.start, b.end, b.full) for b in winrate.buckets(filters)] == [
        ("2024-Q4", dt.date(2024, 11, 15), dt.date(2024, 12, 31), False),
        ("2025-Q1", dt.date(2025, 1, 1), dt.date(2025, 2, 3), False)]
    weeks = winrate.buckets(filters.model_copy(update={"interval": "week", "date_from": dt.date(2024, 12, 30)}))
    assert weeks[0].key == "2025-W01" and weeks[0].full  # ISO week 1 of 2025 starts on Monday 30 December


def test_policy(db: Database, people: People) -> None:
    load(db, people, HISTORIES)
    carol = report(db, people, viewer="carol")
    assert [row["name"] for row in carol["by_rep"]] == ["Carol"]
    assert (carol["totals"]["won"], carol["totals"]["lost"], carol["totals"]["disqualified"]) == (2, 2, 1)
    assert carol["buckets"][0]["open_at_start"] == 3  # A, B, J are all Carol's
    bob = report(db, people, viewer="bob")
    assert bob["totals"] == carol["totals"]
    erin = report(db, people, viewer="erin")
    assert (erin["totals"]["won"], erin["totals"]["lost"], erin["totals"]["open_at_start"]) == (2, 2, 0)
    assert [b["open_at_start"] for b in erin["buckets"]] == [0, 1, 2]  # D at 1 Feb; G and H at 1 Mar
    assert report(db, people, viewer="dave")["totals"]["won"] == 2


def test_empty_and_one_deal_periods(db: Database, people: People) -> None:
    load(db, people, HISTORIES)
    empty = report(db, people, **{"from": "2024-01-01", "to": "2024-01-31"})
    t = empty["totals"]
    assert (t["won"], t["lost"], t["win_rate"], t["ci_low"], t["avg_won_amount"], t["median_cycle_days"],
            t["velocity"]) == (0, 0, None, None, None, None, None)
    assert empty["by_rep"] == [] and empty["by_team"] == [] and len(empty["buckets"]) == 1
    assert empty["trend"]["win_rate_slope"] is None
    one = report(db, people, **{"from": "2025-01-11", "to": "2025-01-11"})  # day 10: A won
    t = one["totals"]
    assert (t["won"], t["lost"], t["win_rate"]) == (1, 0, 1.0)
    assert (t["ci_low"], t["ci_high"]) == pytest.approx(wilson(1, 1))
    assert t["open_at_start"] == 5  # A, B, C, D, J
    assert t["velocity"] == pytest.approx(5 * 1.0 * 10000 / 30, abs=0.01)


def test_tables_charts_and_drill(db: Database, people: People) -> None:
    load(db, people, HISTORIES)
    filters = ReportFilters.model_validate({"from": "2025-01-01", "to": "2025-03-31"})
    r = report(db, people)
    spec = reports.get("winrate")
    assert spec is not None
    tables = {t.key: t for t in spec.tables(r, filters)}
    assert set(tables) == {"buckets", "totals", "trend", "reps", "teams"}
    for chart in spec.charts:
        table = tables[chart.table]
        assert chart.x in table.column_keys() and set(chart.series) <= set(table.column_keys())
    buckets = tables["buckets"]
    assert buckets.drill is not None
    assert buckets.drill(buckets.rows[1]) == {"closed_from": "2025-02-01", "closed_to": "2025-02-28"}
    reps_table = tables["reps"]
    assert reps_table.drill is not None
    assert reps_table.drill(reps_table.rows[0])["owner_id"] in (people.carol.id, people.dave.id)  # type: ignore[index]
    json.dumps(r)
    for table in tables.values():  # every table exports (dates as dates)
        assert b"".join(output.table_csv(table)).count(b"\n") == len(table.rows) + 1
        assert b"".join(output.table_xlsx(table)).startswith(b"PK")


def test_cli_and_api(db: Database, people: People) -> None:
    load(db, people, HISTORIES)
    out = cli_json(db, "winrate", "--from", "2025-01-01", "--to", "2025-03-31", "--interval", "month")
    assert out["report"] == "winrate" and [b["won"] for b in out["buckets"]] == [2, 1, 1]
    assert out["totals"]["win_rate"] == 0.5
    assert cli_json(db, "winrate", "--from", "2025-01-01", "--to", "2025-03-31", "--interval", "quarter",
                    "--as", "dave@example.com")["totals"]["won"] == 2
    with api_as(db, people, "carol") as api:
        resp = api["carol"].get("/api/v1/analytics/winrate",
                                params={"from": "2025-01-01", "to": "2025-03-31", "interval": "month"})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["report"] == "winrate" and body["totals"]["won"] == 2 and len(body["buckets"]) == 3
        assert set(body) >= {"period", "interval", "win_rate_definition", "totals", "buckets", "trend", "by_rep",
                             "by_team"}
