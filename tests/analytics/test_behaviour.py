"""Customer behaviour and winning on hand-built histories with known answers, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner

from loudou.activity.models import Activity, ActivityKind
from loudou.analytics import behaviour, rebuild, reports
from loudou.analytics.filters import ReportFilters
from loudou.analytics.stats import wilson
from loudou.cli import app
from loudou.db import Database, set_database
from loudou.deal.models import DealStatus as S
from loudou.pipeline import queries as pipeline_queries
from tests.analytics.history import History, Step, day, write
from tests.api.conftest import Clients, api, client  # noqa: F401  (the API fixtures)
from tests.conftest import People, default_pipeline

WON, LOST, DQ = S.won, S.lost, S.disqualified
CALL, EMAIL, MEETING, VISIT, NOTE = (ActivityKind.call, ActivityKind.email, ActivityKind.meeting, ActivityKind.visit,
                                     ActivityKind.note)
NOW = day(60)  # 2 March 2025 09:00 UTC


def load(db: Database, people: People) -> None:
    """BASE is 2025-01-01 09:00 UTC and day n is n days later; activities as (kind, day)."""
    plan: list[tuple[str, History, list[tuple[ActivityKind, float]]]] = [
        # closed in January
        ("carol", History(0, [Step(10, None, WON)]), []),
        ("carol", History(1, [Step(12, None, WON)]), [(CALL, 2), (CALL, 3)]),
        ("carol", History(2, [Step(8, None, LOST)]), [(EMAIL, 3)]),
        ("dave", History(3, [Step(20, None, WON)]), [(MEETING, 4), (MEETING, 5), (MEETING, 6), (CALL, 7)]),
        ("dave", History(4, [Step(15, None, LOST)]), []),
        ("dave", History(5, [Step(18, None, LOST)]), [(EMAIL, 6 + i * 0.1) for i in range(25)]),
        ("carol", History(6, [Step(25, None, WON)]), [(VISIT, 7.0 + i) for i in range(6)] + [(CALL, 14), (NOTE, 15)]),
        # not counted: disqualified in January, won in February
        ("carol", History(7, [Step(9, None, DQ)]), [(CALL, 8), (CALL, 8.5), (CALL, 8.7)]),
        ("dave", History(8, [Step(40, None, WON)]), [(CALL, 30)]),
        # open now, by the age of the last activity at NOW
        ("carol", History(20, [], Decimal(1000)), []),                      # never
        ("carol", History(21, [], Decimal(2000)), [(CALL, 50), (CALL, 57)]),  # 3 days
        ("carol", History(22, [], Decimal(2500)), [(EMAIL, 53)]),            # exactly 7 days
        ("dave", History(23, [], Decimal(3000)), [(CALL, 52)]),              # 8 days
        ("dave", History(24, [], Decimal(4000)), [(CALL, 30)]),              # exactly 30 days
        ("dave", History(-60, [], Decimal(500)), [(MEETING, 10)]),           # 50 days
        ("carol", History(-90, [], Decimal(600)), [(NOTE, -40)]),            # 100 days
    ]
    with db.session_scope() as s:
        stages = pipeline_queries.list_stages(s, default_pipeline(s).id)
        for owner_name, history, activities in plan:
            owner = getattr(people, owner_name)
            deal = write(s, owner, stages, history)
            s.add_all(Activity(kind=kind, deal_id=deal.id, owner_id=owner.id, team_id=owner.team_id,
                               occurred_at=day(at)) for kind, at in activities)
    assert not rebuild.has_mismatches(rebuild.rebuild(db))


def report(db: Database, people: People, viewer: str = "alice", **kw: Any) -> dict[str, Any]:
    filters = ReportFilters.model_validate({"from": "2025-01-01", "to": "2025-01-31", **kw})
    with db.session_scope(write=False) as s:
        return behaviour.behaviour_report(s, getattr(people, viewer), filters, now=NOW)


def test_win_rate_by_intensity(db: Database, people: People) -> None:
    load(db, people)
    r = report(db, people)
    assert (r["closed"], r["won"], r["lost"]) == (7, 4, 3)
    assert r["win_rate"] == pytest.approx(4 / 7) and r["win_rate_definition"] == "won / (won + lost)"
    assert r["avg_activities_won"] == 3.5  # 0, 2, 4, 8
    assert r["avg_activities_lost"] == pytest.approx(26 / 3, abs=1e-4)  # 1, 0, 25
    bands = {b["band"]: b for b in r["intensity"]}
    assert list(bands) == ["0", "1-2", "3-5", "6-10", "11-20", "21+"]
    assert [(b["deals"], b["won"], b["lost"]) for b in r["intensity"]] == [
        (2, 1, 1), (2, 1, 1), (1, 1, 0), (1, 1, 0), (0, 0, 0), (1, 0, 1)]
    assert [b["win_rate"] for b in r["intensity"]] == [0.5, 0.5, 1.0, 1.0, None, 0.0]
    lo, hi = wilson(1, 2)
    assert bands["0"]["win_rate_ci_low"] == pytest.approx(lo) and bands["0"]["win_rate_ci_high"] == pytest.approx(hi)
    assert bands["11-20"]["win_rate_ci_low"] is None and bands["0"]["share"] == pytest.approx(2 / 7)
    assert (bands["21+"]["min_activities"], bands["21+"]["max_activities"]) == (21, None)


def test_activity_kinds_per_won_and_lost_deal(db: Database, people: People) -> None:
    load(db, people)
    kinds = {k["kind"]: k for k in report(db, people)["kinds"]}
    assert list(kinds) == ["call", "email", "meeting", "visit", "note"]
    # calls on won deals: 2 + 1 + 1 (the disqualified deal's and the open deals' are not counted)
    assert (kinds["call"]["activities_won"], kinds["call"]["activities_lost"]) == (4, 0)
    assert kinds["call"]["avg_per_won"] == 1.0 and kinds["call"]["avg_per_lost"] == 0.0
    assert kinds["call"]["won_to_lost_ratio"] is None
    assert kinds["email"]["activities_lost"] == 26 and kinds["email"]["avg_per_lost"] == pytest.approx(26 / 3, abs=1e-4)
    assert kinds["email"]["won_to_lost_ratio"] == 0.0
    assert kinds["meeting"]["avg_per_won"] == 0.75 and kinds["visit"]["avg_per_won"] == 1.5
    assert kinds["note"]["avg_per_won"] == 0.25


def test_open_deal_recency(db: Database, people: People) -> None:
    load(db, people)
    r = report(db, people)
    assert r["as_of"] == NOW.isoformat()
    assert [(b["band"], b["deals"], b["amount"]) for b in r["recency"]] == [
        ("never", 1, 1000.0), ("0-7", 2, 4500.0), ("8-30", 2, 7000.0), ("31-90", 1, 500.0), ("90+", 1, 600.0)]
    assert r["open_deals"] == 7 and r["open_amount"] == 13600.0
    assert r["recency"][2]["share"] == pytest.approx(2 / 7)
    assert (r["recency"][1]["label"], r["recency"][1]["label_en"]) == ("7 天内", "Within 7 days")
    assert [(b["age_over_days"], b["age_up_to_days"]) for b in r["recency"][1:]] == [
        (None, 7), (7, 30), (30, 90), (90, None)]


def test_policy(db: Database, people: People) -> None:
    load(db, people)
    carol = report(db, people, viewer="carol")
    assert (carol["won"], carol["lost"]) == (3, 1)
    assert [b["deals"] for b in carol["recency"]] == [1, 2, 0, 0, 1]
    assert {k["kind"]: k["activities_lost"] for k in carol["kinds"]}["email"] == 1
    assert report(db, people, viewer="bob")["closed"] == 4  # East: Carol's
    erin = report(db, people, viewer="erin")  # West: Dave's
    assert (erin["won"], erin["lost"]) == (1, 2) and erin["open_deals"] == 3
    assert report(db, people, viewer="dave")["avg_activities_won"] == 4.0
    assert report(db, people, viewer="carol", owner_id=people.dave.id)["closed"] == 0


def test_empty_and_one_deal_periods(db: Database, people: People) -> None:
    load(db, people)
    empty = report(db, people, **{"from": "2024-01-01", "to": "2024-01-31"})
    assert empty["closed"] == 0 and empty["win_rate"] is None and empty["win_rate_ci_low"] is None
    assert empty["avg_activities_won"] is None and empty["avg_activities_lost"] is None
    assert all(b["deals"] == 0 and b["win_rate"] is None and b["share"] is None for b in empty["intensity"])
    assert all(k["avg_per_won"] is None and k["avg_per_lost"] is None for k in empty["kinds"])
    assert empty["open_deals"] == 7  # open deals are "now", whatever the period
    one = report(db, people, **{"from": "2025-01-11", "to": "2025-01-11"})  # day 10
    assert (one["closed"], one["won"], one["win_rate"]) == (1, 1, 1.0)
    assert one["intensity"][0]["deals"] == 1 and one["intensity"][0]["win_rate"] == 1.0
    assert all(k["avg_per_won"] == 0.0 and k["avg_per_lost"] is None for k in one["kinds"])


def test_tables_drill_and_charts(db: Database, people: People) -> None:
    load(db, people)
    filters = ReportFilters.model_validate({"from": "2025-01-01", "to": "2025-01-31", "pipeline_id": 1})
    spec = reports.get("behaviour")
    assert spec is not None
    tables = {t.key: t for t in spec.tables(report(db, people), filters)}
    assert set(tables) == {"intensity", "kinds", "recency"}
    assert tables["intensity"].drill is None and tables["kinds"].drill is None
    recency = tables["recency"]
    assert recency.drill is not None
    assert recency.drill(recency.rows[0]) == {"pipeline_id": 1, "status": "open"}
    for chart in spec.charts:
        keys = tables[chart.table].column_keys()
        assert chart.x in keys and set(chart.series) <= set(keys)


def test_json_shape(db: Database, people: People) -> None:
    load(db, people)
    r = json.loads(json.dumps(report(db, people)))
    assert r["report"] == "behaviour"
    assert r["period"] == {"from": "2025-01-01", "to": "2025-01-31", "timezone": "UTC"}
    assert set(r) >= {"as_of", "win_rate_definition", "closed", "won", "lost", "win_rate", "win_rate_ci_low",
                      "win_rate_ci_high", "avg_activities_won", "avg_activities_lost", "intensity", "kinds",
                      "recency", "open_deals", "open_amount"}


@pytest.fixture
def cli(db: Database) -> Iterator[CliRunner]:
    set_database(db)
    yield CliRunner()
    set_database(None)


def test_cli(db: Database, people: People, cli: CliRunner) -> None:
    load(db, people)
    args = ["report", "behaviour", "--from", "2025-01-01", "--to", "2025-01-31", "--format", "json"]
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["won"], out["lost"]) == (4, 3) and out["open_deals"] == 7
    as_carol = cli.invoke(app, [*args, "--as", "carol@example.com"])
    assert as_carol.exit_code == 0, as_carol.output
    assert json.loads(as_carol.output)["closed"] == 4
    table = cli.invoke(app, ["report", "behaviour", "--from", "2025-01-01", "--to", "2025-01-31", "--table", "kinds"])
    assert table.exit_code == 0 and "meeting" in table.output


def test_api(db: Database, people: People, api: Clients) -> None:  # noqa: F811  (the imported fixture)
    load(db, people)
    params = {"from": "2025-01-01", "to": "2025-01-31"}
    r = api.erin.get("/api/v1/analytics/behaviour", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["report"] == "behaviour" and (body["won"], body["lost"]) == (1, 2)
    assert api.alice.get("/api/v1/analytics/behaviour", params=params).json()["closed"] == 7
