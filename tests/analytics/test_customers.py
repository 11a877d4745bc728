"""Customer value and tiers on hand-built histories with known answers, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner

from loudou.activity.models import Activity, ActivityKind
from loudou.analytics import customers, rebuild, reports
from loudou.analytics.filters import ReportFilters
from loudou.analytics.stats import wilson
from loudou.cli import app
from loudou.company.models import Company
from loudou.db import Database, set_database
from loudou.deal.models import DealStatus as S
from loudou.pipeline import queries as pipeline_queries
from tests.analytics.history import History, Step, day, write
from tests.api.conftest import Clients, api, client  # noqa: F401  (the API fixtures)
from tests.conftest import People, default_pipeline

WON, LOST = S.won, S.lost
END = dt.datetime(2025, 2, 1, tzinfo=dt.UTC)  # end of the January 2025 period


def load(db: Database, people: People) -> dict[str, int]:
    """Companies P, Q, R, S, T; BASE is 2025-01-01 09:00 UTC and day n is n days later."""
    plan: list[tuple[str, str | None, History, list[float]]] = [
        # (owner, company, history, days of the activities logged on the deal)
        ("carol", "P", History(-420, [Step(-400, None, WON)], Decimal(10000)), []),
        ("carol", "P", History(-60, [Step(-35, None, WON)], Decimal(20000)), []),
        ("carol", "P", History(5, [Step(10, None, LOST)], Decimal(900)), []),
        ("carol", "P", History(-10, [], Decimal(5000)), [-70, -10, 0, 29, 31]),  # open; 3 in the 90 days
        ("dave", "Q", History(0, [Step(20, None, WON)], Decimal(4000)), [1, 2, 3, 4, 5]),
        ("carol", "R", History(-210, [Step(-200, None, WON)], Decimal(2000)), [-100, -50]),
        ("carol", "R", History(1, [Step(12, None, LOST)], Decimal(700)), []),
        ("dave", "S", History(2, [], Decimal(3000)), []),                 # open only
        ("carol", "T", History(3, [Step(40, None, WON)], Decimal(50000)), []),  # won after the period
        ("carol", None, History(4, [Step(6, None, WON)], Decimal(999)), []),    # no company: not a customer
    ]
    with db.session_scope() as s:
        companies = {name: Company(name=f"Company {name}", industry="Retail" if name == "P" else "Tech")
                     for name in "PQRST"}
        s.add_all(companies.values())
        s.flush()
        stages = pipeline_queries.list_stages(s, default_pipeline(s).id)
        for owner_name, company, history, activities in plan:
            owner = getattr(people, owner_name)
            deal = write(s, owner, stages, history)
            deal.company_id = companies[company].id if company else None
            s.add_all(Activity(kind=ActivityKind.call, deal_id=deal.id, company_id=deal.company_id,
                               owner_id=owner.id, team_id=owner.team_id, occurred_at=day(at)) for at in activities)
        ids = {name: c.id for name, c in companies.items()}
    assert not rebuild.has_mismatches(rebuild.rebuild(db))
    return ids


def report(db: Database, people: People, viewer: str = "alice", **kw: Any) -> dict[str, Any]:
    filters = ReportFilters.model_validate({"from": "2025-01-01", "to": "2025-01-31", **kw})
    with db.session_scope(write=False) as s:
        return customers.customer_report(s, getattr(people, viewer), filters)


def tenure(first_win_day: float, end: dt.datetime = END) -> float:
    return (end - day(first_win_day)).total_seconds() / 86_400


def projected(won: float, wins: int, tenure_days: float) -> float:
    frequency = wins / (max(tenure_days, 90) / 365)
    return won + won / wins * frequency * 2


P_VALUE = projected(30000, 2, tenure(-400))
Q_VALUE = projected(4000, 1, tenure(20))  # tenure under 90 days: the floor applies
R_VALUE = projected(2000, 1, tenure(-200))


def test_company_values(db: Database, people: People) -> None:
    ids = load(db, people)
    r = report(db, people)
    assert r["company_count"] == 5 and r["listed"] == 5 and r["limit"] == 200
    rows = {row["company_id"]: row for row in r["companies"]}
    assert [row["company_id"] for row in r["companies"]] == [ids[n] for n in "PQRST"]  # by projected value
    p = rows[ids["P"]]
    assert p["name"] == "Company P" and p["industry"] == "Retail"
    assert p["won_revenue"] == 30000.0 and p["won_deals"] == 2 and p["average_won_amount"] == 15000.0
    assert (p["first_win"], p["last_win"]) == ("2023-11-28", "2024-11-27")
    assert p["tenure_days"] == pytest.approx(430.625, abs=0.01)
    assert p["frequency_per_year"] == pytest.approx(2 / (430.625 / 365), abs=1e-4)
    assert p["projected_value"] == pytest.approx(P_VALUE, abs=0.01)
    assert p["activities_90d"] == 3 and p["open_amount"] == 5000.0 and p["open_deals"] == 1
    assert (p["won_in_period"], p["lost_in_period"]) == (0, 1)
    q = rows[ids["Q"]]
    assert q["tenure_days"] == pytest.approx(10.625, abs=0.01)
    assert q["frequency_per_year"] == pytest.approx(365 / 90, abs=1e-4)
    assert q["projected_value"] == pytest.approx(4000 + 4000 * 365 / 90 * 2, abs=0.01)
    t = rows[ids["T"]]  # won after the period: nothing won to date
    assert t["won_deals"] == 0 and t["projected_value"] == 0.0 and t["first_win"] is None
    assert t["tenure_days"] is None and t["frequency_per_year"] is None and t["average_won_amount"] is None
    assert rows[ids["S"]]["open_amount"] == 3000.0 and rows[ids["R"]]["activities_90d"] == 1
    assert r["won_revenue"] == 36000.0  # the won deal without a company is left out
    assert r["projected_value"] == pytest.approx(P_VALUE + Q_VALUE + R_VALUE, abs=0.01)


def test_tiers_and_engagement(db: Database, people: People) -> None:
    ids = load(db, people)
    r = report(db, people)
    tiers = {row["company_id"]: row["tier"] for row in r["companies"]}
    # P alone is more than half of the projected value; P + Q more than 80%
    assert P_VALUE / (P_VALUE + Q_VALUE + R_VALUE) > 0.5
    assert (P_VALUE + Q_VALUE) / (P_VALUE + Q_VALUE + R_VALUE) > 0.8
    assert tiers == {ids["P"]: "A", ids["Q"]: "B", ids["R"]: "C", ids["S"]: "C", ids["T"]: "C"}
    # activity counts 3, 5, 1, 0, 0: median 1; high = at least the median and not zero
    assert r["median_activities_90d"] == 1.0
    engagement = {row["company_id"]: row["engagement"] for row in r["companies"]}
    assert engagement == {ids["P"]: "high", ids["Q"]: "high", ids["R"]: "high", ids["S"]: "low", ids["T"]: "low"}
    a, b, c = r["tiers"]
    assert (a["tier"], a["companies"], a["won_revenue"]) == ("A", 1, 30000.0)
    assert a["revenue_share"] == pytest.approx(30000 / 36000)
    assert (a["won_in_period"], a["lost_in_period"], a["win_rate"]) == (0, 1, 0.0)
    lo, hi = wilson(0, 1)
    assert a["win_rate_ci_low"] == pytest.approx(lo) and a["win_rate_ci_high"] == pytest.approx(hi)
    assert (b["tier"], b["companies"], b["won_in_period"], b["win_rate"]) == ("B", 1, 1, 1.0)
    assert (c["tier"], c["companies"], c["won_revenue"], c["high_engagement"]) == ("C", 3, 2000.0, 1)
    assert (c["won_in_period"], c["lost_in_period"], c["closed_in_period"]) == (0, 1, 1)  # T won after the period
    assert c["open_amount"] == 3000.0 and a["projected_share"] == pytest.approx(P_VALUE / r["projected_value"])
    segments = {row["segment"]: row for row in r["segments"]}
    assert list(segments) == ["A-high", "A-low", "B-high", "B-low", "C-high", "C-low"]
    assert segments["C-low"]["companies"] == 2 and segments["C-high"]["companies"] == 1
    assert segments["A-low"]["companies"] == 0 and segments["A-low"]["win_rate"] is None


def test_policy(db: Database, people: People) -> None:
    ids = load(db, people)
    carol = report(db, people, viewer="carol")
    assert {row["company_id"] for row in carol["companies"]} == {ids["P"], ids["R"], ids["T"]}
    assert carol["won_revenue"] == 32000.0
    assert report(db, people, viewer="bob")["company_count"] == 3  # East: Carol's
    erin = report(db, people, viewer="erin")  # West: Dave's
    assert {row["company_id"] for row in erin["companies"]} == {ids["Q"], ids["S"]}
    assert erin["companies"][0]["tier"] == "A" and erin["companies"][1]["tier"] == "C"
    dave = report(db, people, viewer="dave")
    assert dave["won_revenue"] == 4000.0 and dave["tiers"][0]["win_rate"] == 1.0
    assert report(db, people, viewer="carol", owner_id=people.dave.id)["company_count"] == 0


def test_segment_filter(db: Database, people: People) -> None:
    ids = load(db, people)
    r = report(db, people, industry="Retail")
    assert [row["company_id"] for row in r["companies"]] == [ids["P"]] and r["companies"][0]["tier"] == "A"


def test_top_limit(db: Database, people: People, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = load(db, people)
    monkeypatch.setattr(customers, "TOP_LIMIT", 2)
    r = report(db, people)
    assert r["company_count"] == 5 and r["listed"] == 2
    assert [row["company_id"] for row in r["companies"]] == [ids["P"], ids["Q"]]
    assert sum(t["companies"] for t in r["tiers"]) == 5  # the tiers count every company


def test_empty_and_one_deal_periods(db: Database, people: People) -> None:
    ids = load(db, people)
    empty = report(db, people, **{"from": "2020-01-01", "to": "2020-01-31"})
    assert empty["company_count"] == 0 and empty["companies"] == [] and empty["median_activities_90d"] is None
    assert all(t["companies"] == 0 and t["win_rate"] is None and t["revenue_share"] is None for t in empty["tiers"])
    # by 1 January 2024 only P's first deal exists (won on 28 November 2023 09:00)
    one = report(db, people, **{"from": "2024-01-01", "to": "2024-01-01"})
    assert one["company_count"] == 1
    p = one["companies"][0]
    assert p["company_id"] == ids["P"] and p["won_deals"] == 1 and p["won_revenue"] == 10000.0
    assert p["tenure_days"] == pytest.approx(34.625, abs=0.01)
    assert p["projected_value"] == pytest.approx(10000 + 10000 * 365 / 90 * 2, abs=0.01)
    assert p["tier"] == "A" and p["engagement"] == "low" and p["activities_90d"] == 0
    assert one["tiers"][0]["closed_in_period"] == 0 and one["tiers"][0]["win_rate"] is None


def test_tables_drill_and_charts(db: Database, people: People) -> None:
    ids = load(db, people)
    filters = ReportFilters.model_validate({"from": "2025-01-01", "to": "2025-01-31"})
    spec = reports.get("customers")
    assert spec is not None
    tables = {t.key: t for t in spec.tables(report(db, people), filters)}
    assert set(tables) == {"tiers", "segments", "companies"}
    companies_table = tables["companies"]
    assert companies_table.drill is not None and companies_table.note is not None
    assert companies_table.drill(companies_table.rows[0]) == {"company_id": ids["P"]}
    for chart in spec.charts:
        keys = tables[chart.table].column_keys()
        assert chart.x in keys and set(chart.series) <= set(keys)


def test_json_shape(db: Database, people: People) -> None:
    load(db, people)
    r = json.loads(json.dumps(report(db, people)))
    assert r["report"] == "customers" and r["as_of"] == END.isoformat()
    assert r["period"] == {"from": "2025-01-01", "to": "2025-01-31", "timezone": "UTC"}
    assert set(r) >= {"win_rate_definition", "company_count", "listed", "limit", "won_revenue", "projected_value",
                      "median_activities_90d", "tiers", "segments", "companies"}
    assert set(r["companies"][0]) >= {"company_id", "name", "tier", "engagement", "won_revenue", "won_deals",
                                      "first_win", "last_win", "tenure_days", "frequency_per_year",
                                      "average_won_amount", "projected_value", "activities_90d", "open_amount"}


@pytest.fixture
def cli(db: Database) -> Iterator[CliRunner]:
    set_database(db)
    yield CliRunner()
    set_database(None)


def test_cli(db: Database, people: People, cli: CliRunner) -> None:
    ids = load(db, people)
    args = ["report", "customers", "--from", "2025-01-01", "--to", "2025-01-31", "--format", "json"]
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["company_count"] == 5 and out["companies"][0]["company_id"] == ids["P"]
    as_dave = cli.invoke(app, [*args, "--as", "dave@example.com"])
    assert as_dave.exit_code == 0, as_dave.output
    assert json.loads(as_dave.output)["company_count"] == 2
    tiers = cli.invoke(app, ["report", "customers", "--from", "2025-01-01", "--to", "2025-01-31", "--format", "csv"])
    assert tiers.exit_code == 0, tiers.output
    assert tiers.output.splitlines()[1].startswith("A,1,30000")


def test_api(db: Database, people: People, api: Clients) -> None:  # noqa: F811  (the imported fixture)
    ids = load(db, people)
    params = {"from": "2025-01-01", "to": "2025-01-31"}
    r = api.dave.get("/api/v1/analytics/customers", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["report"] == "customers" and [c["company_id"] for c in body["companies"]] == [ids["Q"], ids["S"]]
    assert api.alice.get("/api/v1/analytics/customers", params=params).json()["company_count"] == 5
