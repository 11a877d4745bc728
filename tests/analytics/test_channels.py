"""Channel effectiveness on hand-built histories with known answers, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from loudou.analytics import channels, rebuild, reports
from loudou.analytics.filters import ReportFilters
from loudou.analytics.stats import wilson
from loudou.channel.models import Channel, ChannelSpend
from loudou.cli import app
from loudou.company.models import Company
from loudou.db import Database, set_database
from loudou.deal.models import DealStatus as S
from loudou.pipeline import queries as pipeline_queries
from tests.analytics.history import History, Step, write
from tests.api.conftest import Clients, api, client  # noqa: F401  (the API fixtures)
from tests.conftest import People, default_pipeline

WON, LOST, DQ = S.won, S.lost, S.disqualified


def channel_ids(db: Database) -> dict[str, int]:
    with db.session_scope(write=False) as s:
        found = {name: int(cid) for name, cid in s.execute(sa.select(Channel.name_en, Channel.id))}
    return {"web": found["Website form"], "ads": found["Search ads"], "show": found["Trade show"]}


def load(db: Database, people: People) -> dict[str, int]:
    ids = channel_ids(db)
    web, ads = ids["web"], ids["ads"]
    # BASE is 2025-01-01 09:00 UTC; day n is n days later.
    histories = [
        ("carol", History(0, [Step(10, None, WON)], Decimal(1000), web), "X"),   # 10-day cycle
        ("carol", History(1, [Step(21, None, WON)], Decimal(3000), web), "X"),   # 20 days, same customer
        ("dave", History(2, [Step(5, None, LOST)], Decimal(500), web), None),
        ("dave", History(3, [], Decimal(700), web), None),                        # still open
        ("carol", History(4, [Step(8, None, WON)], Decimal(2000), ads), None),    # 4 days, no company
        ("dave", History(5, [Step(6, None, DQ)], Decimal(100), ads), None),
        ("dave", History(6, [Step(16, None, WON)], Decimal(400), None), "Y"),    # no channel, 10 days
        ("carol", History(40, [Step(45, None, WON)], Decimal(1000), web), None),  # created 10 February
    ]
    with db.session_scope() as s:
        companies = {name: Company(name=name, industry="Retail") for name in ("X", "Y")}
        s.add_all(companies.values())
        s.flush()
        stages = pipeline_queries.list_stages(s, default_pipeline(s).id)
        for owner, h, company in histories:
            deal = write(s, getattr(people, owner), stages, h)
            deal.company_id = companies[company].id if company else None
        s.add_all([
            ChannelSpend(channel_id=web, month=dt.date(2024, 12, 1), amount=Decimal(9999)),
            ChannelSpend(channel_id=web, month=dt.date(2025, 1, 1), amount=Decimal(3100)),
            ChannelSpend(channel_id=web, month=dt.date(2025, 2, 1), amount=Decimal(2800)),
            ChannelSpend(channel_id=ads, month=dt.date(2025, 1, 1), amount=Decimal(6200)),
            ChannelSpend(channel_id=ids["show"], month=dt.date(2025, 1, 1), amount=Decimal(1000)),
        ])
    assert not rebuild.has_mismatches(rebuild.rebuild(db))
    return ids


def report(db: Database, people: People, viewer: str = "alice", **kw: Any) -> dict[str, Any]:
    filters = ReportFilters.model_validate({"from": "2025-01-01", "to": "2025-01-31", **kw})
    with db.session_scope(write=False) as s:
        return channels.channel_report(s, getattr(people, viewer), filters)


def by_channel(r: dict[str, Any]) -> dict[int | None, dict[str, Any]]:
    return {row["channel_id"]: row for row in r["channels"]}


def test_per_channel_figures(db: Database, people: People) -> None:
    ids = load(db, people)
    r = report(db, people)
    assert r["spend_visible"] is True and r["win_rate_definition"] == "won / (won + lost)"
    rows = by_channel(r)
    web = rows[ids["web"]]
    assert (web["leads"], web["won"], web["lost"], web["disqualified"], web["open"]) == (4, 2, 1, 0, 1)
    assert web["conversion"] == 0.5 and web["win_rate"] == pytest.approx(2 / 3)
    lo, hi = wilson(2, 4)
    assert web["conversion_ci_low"] == pytest.approx(lo) and web["conversion_ci_high"] == pytest.approx(hi)
    lo, hi = wilson(2, 3)
    assert web["win_rate_ci_low"] == pytest.approx(lo) and web["win_rate_ci_high"] == pytest.approx(hi)
    assert web["median_cycle_days"] == 15.0  # 10 and 20 days
    assert web["won_revenue"] == 4000.0 and web["customers_won"] == 1  # two wins at one company
    assert web["spend"] == 3100.0 and web["cac"] == 3100.0 and web["cost_per_lead"] == 775.0
    assert web["roi"] == pytest.approx((4000 - 3100) / 3100, abs=1e-4)
    ads = rows[ids["ads"]]
    assert (ads["leads"], ads["won"], ads["lost"], ads["disqualified"]) == (1 + 1, 1, 0, 1)
    assert ads["win_rate"] == 1.0 and ads["conversion"] == 0.5 and ads["median_cycle_days"] == 4.0
    assert ads["customers_won"] == 1  # a won deal without a company is one customer
    assert ads["spend"] == 6200.0 and ads["cac"] == 6200.0 and ads["cost_per_lead"] == 3100.0
    assert ads["roi"] == pytest.approx((2000 - 6200) / 6200, abs=1e-4)
    show = rows[ids["show"]]  # spend, no leads
    assert show["leads"] == 0 and show["spend"] == 1000.0 and show["roi"] == -1.0
    assert show["cac"] is None and show["cost_per_lead"] is None and show["conversion"] is None
    none = rows[None]
    assert none["name_en"] == "No channel" and none["leads"] == 1 and none["won_revenue"] == 400.0
    assert none["spend"] is None and none["roi"] is None and none["cac"] is None
    # ranked by ROI; the deals without a channel last
    assert [row["channel_id"] for row in r["channels"]] == [ids["web"], ids["ads"], ids["show"], None]


def test_totals(db: Database, people: People) -> None:
    load(db, people)
    total = report(db, people)["total"]
    assert (total["leads"], total["won"], total["lost"], total["disqualified"], total["open"]) == (7, 4, 1, 1, 1)
    assert total["conversion"] == pytest.approx(4 / 7) and total["win_rate"] == pytest.approx(4 / 5)
    assert total["won_revenue"] == 6400.0
    assert total["customers_won"] == 3  # X, Y and the won deal without a company
    assert total["spend"] == 10300.0 and total["cac"] == pytest.approx(10300 / 3, abs=0.01)
    assert total["roi"] == pytest.approx((6400 - 10300) / 10300, abs=1e-4)
    assert total["median_cycle_days"] == 10.0  # 4, 10, 10, 20


def test_spend_is_prorated_by_the_days_of_each_month(db: Database, people: People) -> None:
    ids = load(db, people)
    r = report(db, people, **{"from": "2025-01-16", "to": "2025-02-14"})
    rows = by_channel(r)
    # January: 16 of 31 days; February: 14 of 28 days
    assert rows[ids["web"]]["spend"] == pytest.approx(3100 * 16 / 31 + 2800 * 14 / 28)
    assert rows[ids["ads"]]["spend"] == pytest.approx(3200.0)
    web = rows[ids["web"]]  # the deal created on 10 February
    assert web["leads"] == 1 and web["won_revenue"] == 1000.0 and web["roi"] == pytest.approx(-2 / 3, abs=1e-4)
    assert None not in rows


def test_policy_rep_sees_no_spend(db: Database, people: People) -> None:
    ids = load(db, people)
    carol = report(db, people, viewer="carol")
    assert carol["spend_visible"] is False
    rows = by_channel(carol)
    assert set(rows) == {ids["web"], ids["ads"]}  # no spend-only channel, no deal of Dave's
    assert rows[ids["web"]]["leads"] == 2 and rows[ids["web"]]["won"] == 2 and rows[ids["ads"]]["leads"] == 1
    assert all(row[k] is None for row in carol["channels"] for k in ("spend", "cac", "roi", "cost_per_lead"))
    assert carol["total"]["spend"] is None and carol["total"]["leads"] == 3
    assert [row["channel_id"] for row in carol["channels"]] == [ids["web"], ids["ads"]]  # by won revenue

    bob = report(db, people, viewer="bob")  # manager of East: Carol's deals, with spend
    rows = by_channel(bob)
    assert rows[ids["web"]]["leads"] == 2 and rows[ids["web"]]["spend"] == 3100.0
    assert rows[ids["web"]]["roi"] == pytest.approx((4000 - 3100) / 3100, abs=1e-4)
    assert ids["show"] in rows and None not in rows

    erin = report(db, people, viewer="erin")  # manager of West: Dave's deals
    rows = by_channel(erin)
    assert (rows[ids["web"]]["leads"], rows[ids["web"]]["won"], rows[ids["web"]]["lost"]) == (2, 0, 1)
    assert rows[ids["web"]]["roi"] == -1.0 and rows[ids["web"]]["cac"] is None
    assert rows[None]["won"] == 1
    assert [row["channel_id"] for row in erin["channels"]] == [ids["web"], ids["ads"], ids["show"], None]
    assert report(db, people, viewer="dave")["spend_visible"] is False


def test_channel_filter(db: Database, people: People) -> None:
    ids = load(db, people)
    r = report(db, people, channel_id=ids["ads"])
    assert [row["channel_id"] for row in r["channels"]] == [ids["ads"]]
    assert r["total"]["spend"] == 6200.0 and r["total"]["leads"] == 2


def test_empty_and_one_deal_periods(db: Database, people: People) -> None:
    ids = load(db, people)
    empty = report(db, people, **{"from": "2024-06-01", "to": "2024-06-30"})
    assert empty["channels"] == []
    assert empty["total"]["leads"] == 0 and empty["total"]["conversion"] is None
    assert empty["total"]["win_rate_ci_low"] is None and empty["total"]["spend"] is None
    assert empty["total"]["median_cycle_days"] is None
    one = report(db, people, **{"from": "2025-01-01", "to": "2025-01-01"})
    rows = by_channel(one)
    web = rows[ids["web"]]
    assert web["leads"] == 1 and web["won"] == 1 and web["spend"] == 100.0  # 3100 / 31
    assert web["roi"] == 9.0 and web["median_cycle_days"] == 10.0
    assert rows[ids["ads"]]["spend"] == 200.0 and rows[ids["show"]]["spend"] == pytest.approx(32.26)
    assert one["channels"][0]["channel_id"] == ids["web"] and one["total"]["leads"] == 1


def test_tables_drill_and_charts(db: Database, people: People) -> None:
    ids = load(db, people)
    filters = ReportFilters.model_validate({"from": "2025-01-01", "to": "2025-01-31"})
    r = report(db, people)
    spec = reports.get("channels")
    assert spec is not None
    tables = {t.key: t for t in spec.tables(r, filters)}
    table = tables["channels"]
    assert table.drill is not None
    assert table.drill(table.rows[0]) == {"created_from": "2025-01-01", "created_to": "2025-01-31",
                                          "channel_id": ids["web"]}
    assert table.drill(table.rows[-1]) is None  # without a channel
    assert table.note is None
    for chart in spec.charts:
        keys = tables[chart.table].column_keys()
        assert chart.x in keys and set(chart.series) <= set(keys)
    assert [c.kind for c in spec.charts] == ["hbar", "bar"]
    carol = spec.tables(report(db, people, viewer="carol"), filters)
    assert carol[0].note is not None


def test_json_shape(db: Database, people: People) -> None:
    load(db, people)
    r = json.loads(json.dumps(report(db, people)))
    assert r["report"] == "channels"
    assert r["period"] == {"from": "2025-01-01", "to": "2025-01-31", "timezone": "UTC"}
    assert set(r) >= {"win_rate_definition", "conversion_definition", "spend_visible", "channels", "total"}
    assert set(r["channels"][0]) >= {"channel_id", "name", "name_en", "leads", "won", "lost", "conversion",
                                     "win_rate", "median_cycle_days", "won_revenue", "customers_won", "spend",
                                     "cac", "roi", "cost_per_lead"}


@pytest.fixture
def cli(db: Database) -> Iterator[CliRunner]:
    set_database(db)
    yield CliRunner()
    set_database(None)


def test_cli(db: Database, people: People, cli: CliRunner) -> None:
    ids = load(db, people)
    args = ["report", "channels", "--from", "2025-01-01", "--to", "2025-01-31", "--format", "json"]
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["channels"][0]["channel_id"] == ids["web"] and out["total"]["spend"] == 10300.0
    as_carol = cli.invoke(app, [*args, "--as", "carol@example.com"])
    assert as_carol.exit_code == 0, as_carol.output
    assert json.loads(as_carol.output)["total"]["leads"] == 3 and json.loads(as_carol.output)["total"]["spend"] is None
    csv = cli.invoke(app, ["report", "channels", "--from", "2025-01-01", "--to", "2025-01-31", "--format", "csv"])
    assert csv.exit_code == 0, csv.output
    lines = csv.output.splitlines()
    assert lines[0].startswith("Channel,Leads,Won,Lost") and lines[-1].startswith("无渠道,1,1,0")


def test_api(db: Database, people: People, api: Clients) -> None:  # noqa: F811  (the imported fixture)
    ids = load(db, people)
    params = {"from": "2025-01-01", "to": "2025-01-31"}
    r = api.carol.get("/api/v1/analytics/channels", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["report"] == "channels" and body["spend_visible"] is False and body["total"]["leads"] == 3
    admin = api.alice.get("/api/v1/analytics/channels", params=params).json()
    assert admin["channels"][0]["channel_id"] == ids["web"] and admin["total"]["won_revenue"] == 6400.0
    assert api.alice.get("/api/v1/analytics/channels", params={"from": "2025-01-31", "to": "2025-01-01"}
                         ).status_code == 422
