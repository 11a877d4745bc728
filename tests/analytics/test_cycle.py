"""Sales cycle on hand-built histories with known answers, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from loudou.analytics import cycle, output, rebuild, reports
from loudou.analytics.filters import ReportFilters
from loudou.analytics.stats import wilson
from loudou.db import Database
from loudou.deal.models import DealStatus as S
from loudou.pipeline import queries as pipeline_queries
from tests.analytics.history import History, Step, write
from tests.analytics.outcome_helpers import api_as, channel_id, cli_json, cli_text, load
from tests.conftest import People, default_pipeline

WON, LOST = S.won, S.lost


def load_january(db: Database, people: People) -> dict[str, int]:
    referral, show = channel_id(db, "Referral"), channel_id(db, "Trade show")
    load(db, people, [
        # won in January 2025 (BASE is 2025-01-01 09:00 UTC; day n is n days later)
        ("carol", History(0, [Step(2, 1), Step(5, None, WON)], Decimal(5000), referral)),      # 5 days
        ("carol", History(1, [Step(11, None, WON)], Decimal(20000), referral)),                # 10 days
        ("dave", History(-40, [Step(-30, 1), Step(10, None, WON)], Decimal(60000), show)),     # 50 days
        ("dave", History(-190, [Step(20, None, WON)], Decimal(250000), None)),                  # 210 days
        ("carol", History(2, [Step(9.5, None, WON)], Decimal(8000), show)),                    # 7.5 days
        ("carol", History(3, [Step(10, None, WON)], Decimal(10000), referral)),                # exactly 7 days
        # not counted: lost in January, won in February, still open
        ("carol", History(0, [Step(4, None, LOST)], Decimal(1000), referral)),
        ("dave", History(5, [Step(35, None, WON)], Decimal(1000), show)),
        ("dave", History(6)),
    ])
    return {"referral": referral, "show": show}


def report(db: Database, people: People, viewer: str = "alice", **kw: Any) -> dict[str, Any]:
    filters = ReportFilters.model_validate({"from": "2025-01-01", "to": "2025-01-31", **kw})
    with db.session_scope(write=False) as s:
        return cycle.sales_cycle(s, getattr(people, viewer), filters)


def test_overall_figures_and_distribution(db: Database, people: People) -> None:
    load_january(db, people)
    r = report(db, people)
    # cycles, ascending: 5, 7, 7.5, 10, 50, 210 days
    assert r["won"] == 6 and r["won_amount"] == 353000.0
    assert r["median_days"] == pytest.approx(8.75)   # between 7.5 and 10
    assert r["p90_days"] == pytest.approx(130.0)     # position 4.5: between 50 and 210
    assert r["mean_days"] == pytest.approx(48.25)    # 289.5 / 6
    assert (r["min_days"], r["max_days"]) == (5.0, 210.0)
    bins = {b["bin"]: b["deals"] for b in r["distribution"]}
    # exactly 7 days is in 0–7; 7.5 days is in 8–14
    assert bins == {"0–7": 2, "8–14": 2, "15–30": 0, "31–60": 1, "61–90": 0, "91–180": 0, "181+": 1}
    first = r["distribution"][0]
    lo, hi = wilson(2, 6)
    assert first["share"] == pytest.approx(2 / 6)
    assert first["ci_low"] == pytest.approx(lo) and first["ci_high"] == pytest.approx(hi)
    assert [(b["from_days"], b["to_days"]) for b in r["distribution"][:2]] == [(0, 7), (7, 14)]


def test_breakdowns(db: Database, people: People) -> None:
    ids = load_january(db, people)
    r = report(db, people)
    channels = {c["channel_id"]: c for c in r["by_channel"]}
    assert channels[ids["referral"]]["won"] == 3 and channels[ids["referral"]]["median_days"] == 7.0
    assert channels[ids["referral"]]["name_en"] == "Referral"
    show = channels[ids["show"]]
    assert show["won"] == 2 and show["median_days"] == pytest.approx(28.75)
    assert show["p90_days"] == pytest.approx(45.75)  # 7.5 + 0.9 × 42.5
    assert channels[None]["won"] == 1 and channels[None]["name"] == cycle.NO_NAME
    assert [c["channel_id"] for c in r["by_channel"]] == [ids["referral"], ids["show"], None]  # most won first
    owners = {o["name"]: o for o in r["by_owner"]}
    assert owners["Carol"]["won"] == 4 and owners["Carol"]["median_days"] == pytest.approx(7.25)
    assert owners["Dave"]["won"] == 2 and owners["Dave"]["median_days"] == pytest.approx(130.0)
    assert owners["Carol"]["won_amount"] == 43000.0
    teams = {t["name"]: t for t in r["by_team"]}
    assert teams["East"]["won"] == 4 and teams["West"]["won"] == 2
    assert teams["East"]["team_id"] == people.carol.team_id
    sizes = {b["band"]: b for b in r["by_size"]}
    assert [b["band"] for b in r["by_size"]] == ["< 10k", "10k–50k", "50k–200k", "≥ 200k"]
    assert sizes["< 10k"]["won"] == 2 and sizes["< 10k"]["median_days"] == pytest.approx(6.25)
    # 10,000 exactly belongs to 10k–50k
    assert sizes["10k–50k"]["won"] == 2 and sizes["10k–50k"]["median_days"] == pytest.approx(8.5)
    assert sizes["50k–200k"]["won"] == 1 and sizes["≥ 200k"]["median_days"] == 210.0


def test_deals_without_an_amount_get_a_band_of_their_own(db: Database, people: People) -> None:
    with db.session_scope() as s:
        stages = pipeline_queries.list_stages(s, default_pipeline(s).id)
        deal = write(s, people.carol, stages, History(0, [Step(3, None, WON)]))
        deal.amount = None
    rebuild.rebuild(db)
    r = report(db, people)
    assert r["by_size"][-1]["band"] == cycle.NO_NAME and r["by_size"][-1]["won"] == 1
    assert r["won_amount"] == 0.0 and r["median_days"] == 3.0


def test_drill_down(db: Database, people: People) -> None:
    ids = load_january(db, people)
    filters = ReportFilters.model_validate({"from": "2025-01-01", "to": "2025-01-31"})
    r = report(db, people)
    tables = {t.key: t for t in reports.get("cycle").tables(r, filters)}  # type: ignore[union-attr]
    channels = tables["channels"]
    assert channels.drill is not None
    assert channels.drill(channels.rows[0]) == {"status": "won", "closed_from": "2025-01-01",
                                               "closed_to": "2025-01-31", "channel_id": ids["referral"]}
    assert channels.drill(channels.rows[-1]) is None  # no channel
    sizes = tables["sizes"]
    assert sizes.drill is not None
    assert sizes.drill(sizes.rows[0])["amount_max"] == "9999.99"
    assert "amount_min" not in sizes.drill(sizes.rows[0])  # type: ignore[operator]
    assert sizes.drill(sizes.rows[1])["amount_min"] == 10000  # type: ignore[index]
    assert "amount_max" not in sizes.drill(sizes.rows[3])  # type: ignore[operator]
    owners = tables["owners"]
    assert owners.drill is not None and owners.drill(owners.rows[0])["owner_id"] == people.carol.id  # type: ignore[index]
    assert set(tables) == {"overall", "distribution", "channels", "teams", "owners", "sizes"}
    for chart in reports.get("cycle").charts:  # type: ignore[union-attr]
        table = tables[chart.table]
        assert chart.x in table.column_keys() and set(chart.series) <= set(table.column_keys())
    for table in tables.values():  # every table exports
        assert b"".join(output.table_csv(table)).count(b"\n") == len(table.rows) + 1


def test_policy(db: Database, people: People) -> None:
    load_january(db, people)
    carol = report(db, people, viewer="carol")
    assert carol["won"] == 4 and [o["name"] for o in carol["by_owner"]] == ["Carol"]
    assert carol["median_days"] == pytest.approx(7.25)
    assert report(db, people, viewer="bob")["won"] == 4  # manager of East
    erin = report(db, people, viewer="erin")
    assert erin["won"] == 2 and erin["median_days"] == pytest.approx(130.0)
    assert report(db, people, viewer="dave")["won"] == 2
    assert report(db, people, owner_id=people.dave.id)["won"] == 2
    assert report(db, people, viewer="carol", owner_id=people.dave.id)["won"] == 0


def test_empty_and_one_deal_periods(db: Database, people: People) -> None:
    load_january(db, people)
    empty = report(db, people, **{"from": "2024-01-01", "to": "2024-01-31"})
    assert empty["won"] == 0 and empty["median_days"] is None and empty["p90_days"] is None
    assert empty["mean_days"] is None and empty["min_days"] is None
    assert all(b["deals"] == 0 and b["share"] is None and b["ci_low"] is None for b in empty["distribution"])
    assert empty["by_channel"] == [] and empty["by_owner"] == [] and empty["by_team"] == []
    assert all(b["won"] == 0 and b["median_days"] is None for b in empty["by_size"])
    one = report(db, people, **{"from": "2025-01-06", "to": "2025-01-06"})  # day 5 is 6 January
    assert one["won"] == 1 and one["median_days"] == one["p90_days"] == one["mean_days"] == 5.0
    assert one["distribution"][0]["deals"] == 1 and one["distribution"][0]["share"] == 1.0


def test_json_shape(db: Database, people: People) -> None:
    load_january(db, people)
    r = json.loads(json.dumps(report(db, people)))
    assert r["report"] == "cycle"
    assert r["period"] == {"from": "2025-01-01", "to": "2025-01-31", "timezone": "UTC"}
    assert set(r) >= {"won", "median_days", "p90_days", "mean_days", "distribution", "by_channel", "by_team",
                      "by_owner", "by_size", "definition"}
    assert set(r["by_owner"][0]) >= {"owner_id", "name", "won", "median_days", "p90_days"}


def test_cli(db: Database, people: People) -> None:
    load_january(db, people)
    out = cli_json(db, "cycle", "--from", "2025-01-01", "--to", "2025-01-31")
    assert out["report"] == "cycle" and out["won"] == 6 and out["median_days"] == pytest.approx(8.75)
    as_carol = cli_json(db, "cycle", "--from", "2025-01-01", "--to", "2025-01-31", "--as", "carol@example.com")
    assert as_carol["won"] == 4
    assert "10k–50k" in cli_text(db, "cycle", "--from", "2025-01-01", "--to", "2025-01-31", "--table", "sizes")


def test_api(db: Database, people: People) -> None:
    load_january(db, people)
    period = {"from": "2025-01-01", "to": "2025-01-31"}
    with api_as(db, people, "alice", "carol") as api:
        r = api["carol"].get("/api/v1/analytics/cycle", params=period)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["report"] == "cycle" and body["won"] == 4 and body["median_days"] == pytest.approx(7.25)
        assert api["alice"].get("/api/v1/analytics/cycle", params=period).json()["won"] == 6
        bad = api["alice"].get("/api/v1/analytics/cycle", params={"from": "2025-01-31", "to": "2025-01-01"})
        assert bad.status_code == 422
