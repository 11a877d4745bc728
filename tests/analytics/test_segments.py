"""Segments report on hand-built histories with hand-computed answers, on SQLite and
PostgreSQL; and the same answers from the derived tables as from the deals, for every
viewer, filter and period (aligned on months or not)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from loudou.analytics import counters, counters_outcomes, counters_segments, rebuild, reports, segments
from loudou.analytics.filters import ReportFilters
from loudou.analytics.stats import wilson
from loudou.auth.models import Role, Team, User
from loudou.channel.models import Channel
from loudou.cli import app as cli_app
from loudou.company.models import Company
from loudou.db import Database, set_database
from loudou.deal.models import Deal
from loudou.deal.models import DealStatus as S
from loudou.errors import ValidationFailed
from loudou.pipeline import queries as pipeline_queries
from loudou.product.models import Product
from tests.analytics.history import History, Step, write
from tests.api.conftest import Clients, api, client  # noqa: F401  (the API fixtures)
from tests.conftest import People, default_pipeline

WON, LOST, DQ = S.won, S.lost, S.disqualified
JANUARY = {"from": "2025-01-01", "to": "2025-01-31"}


@dataclass
class Ids:
    channel_a: int
    channel_b: int
    p1: int
    p2: int
    retail: int
    finance: int
    deals: list[int]


@dataclass
class Spec:
    owner: str
    history: History
    channel: str | None = None   # "a" or "b"
    product: str | None = None   # "p1" or "p2"
    company: str | None = None   # "retail" or "finance"
    no_amount: bool = False


# Days are counted from 2025-01-01 09:00 UTC (tests.analytics.history.day).
SPECS = [
    # 1: won on day 10 after 10 days
    Spec("carol", History(0, [Step(2, 1), Step(10, None, WON)], Decimal(1000)), "a", "p1", "retail"),
    # 2: lost on day 5
    Spec("carol", History(2, [Step(5, None, LOST)], Decimal(500)), "a", "p1", "finance"),
    # 3: created in December, won on day 4: a 24-day cycle, counted in January (closed then)
    Spec("carol", History(-20, [Step(-10, 2), Step(4, None, WON)], Decimal(3000)), "b", "p2", "retail"),
    # 4: won on day 7 after 6 days, no company
    Spec("dave", History(1, [Step(7, None, WON)], Decimal(2000)), "b", "p1"),
    # 5: disqualified on day 4: no channel, product or company
    Spec("dave", History(3, [Step(4, None, DQ)])),
    # 6: lost on day 40 (February): not in January
    Spec("dave", History(5, [Step(40, None, LOST)], Decimal(700)), "a", "p1"),
    # 7: still open
    Spec("dave", History(6, [Step(9, 1)]), "a", "p2"),
    # 8: won on day 9.5 after 1.5 days, without an amount
    Spec("carol", History(8, [Step(9.5, None, WON)]), "a", "p2", "finance", no_amount=True),
]


def load(db: Database, people: People) -> Ids:
    with db.session_scope() as s:
        east = s.get(Team, people.carol.team_id)
        west = s.get(Team, people.dave.team_id)
        assert east is not None and west is not None
        east.region, west.region = "华东", "西部"
        channels = list(s.scalars(sa.select(Channel).order_by(Channel.id)))[:2]
        products = [Product(name="Router"), Product(name="Switch")]
        companies = [Company(name="Shop", industry="retail"), Company(name="Bank", industry="finance")]
        s.add_all(products + companies)
        s.flush()
        ids = Ids(channels[0].id, channels[1].id, products[0].id, products[1].id, companies[0].id, companies[1].id,
                  [])
        refs = {"a": ids.channel_a, "b": ids.channel_b, "p1": ids.p1, "p2": ids.p2, "retail": ids.retail,
                "finance": ids.finance, None: None}
        stages = pipeline_queries.list_stages(s, default_pipeline(s).id)
        for spec in SPECS:
            spec.history.channel_id = refs[spec.channel]
            deal = write(s, getattr(people, spec.owner), stages, spec.history)
            deal.product_id, deal.company_id = refs[spec.product], refs[spec.company]
            if spec.no_amount:
                deal.amount = None
            ids.deals.append(deal.id)
    assert not rebuild.has_mismatches(rebuild.rebuild(db))
    return ids


def report(db: Database, people: People, viewer: str = "alice", **kw: Any) -> dict[str, Any]:
    filters = ReportFilters.model_validate({**JANUARY, **kw})
    with db.session_scope(write=False) as s:
        return segments.segments_report(s, getattr(people, viewer), filters)


def rows(result: dict[str, Any], dimension: str) -> dict[Any, dict[str, Any]]:
    return {row["id"]: row for row in result["by_" + dimension]}


def test_totals(db: Database, people: People) -> None:
    load(db, people)
    r = report(db, people)
    t = r["totals"]
    assert r["report"] == "segments" and r["win_rate_definition"] == "won / (won + lost)"
    assert r["period"] == {"from": "2025-01-01", "to": "2025-01-31", "timezone": "UTC"}
    assert (t["closed"], t["won"], t["lost"], t["disqualified"]) == (6, 4, 1, 1)
    assert t["win_rate"] == 4 / 5
    assert (t["ci_low"], t["ci_high"]) == pytest.approx(wilson(4, 5))
    assert t["won_amount"] == 6000 and t["avg_won_amount"] == 2000  # the won deal without an amount is left out
    assert t["median_cycle_days"] == pytest.approx(8.0)  # 1.5, 6, 10, 24
    assert t["mean_cycle_days"] == pytest.approx(41.5 / 4)
    assert t["cycles"] == 4


def test_by_rep_team_and_region(db: Database, people: People) -> None:
    load(db, people)
    r = report(db, people)
    assert [row["name"] for row in r["by_rep"]] == ["Carol", "Dave"]  # by won revenue
    carol, dave = r["by_rep"]
    assert carol["id"] == people.carol.id and carol["id_field"] == "owner_id"
    assert (carol["won"], carol["lost"], carol["disqualified"], carol["win_rate"]) == (3, 1, 0, 3 / 4)
    assert (carol["won_amount"], carol["avg_won_amount"]) == (4000, 2000)
    assert carol["median_cycle_days"] == pytest.approx(10) and carol["mean_cycle_days"] == pytest.approx(35.5 / 3)
    assert (dave["won"], dave["lost"], dave["disqualified"], dave["win_rate"]) == (1, 0, 1, 1.0)
    assert (dave["won_amount"], dave["median_cycle_days"]) == (2000, pytest.approx(6))
    teams = rows(r, "team")
    assert teams[people.carol.team_id]["name"] == "East" and teams[people.carol.team_id]["won"] == 3
    assert teams[people.dave.team_id]["name"] == "West" and teams[people.dave.team_id]["closed"] == 2
    regions = rows(r, "region")
    assert set(regions) == {"华东", "西部"}
    assert regions["华东"]["name"] == "华东" and regions["华东"]["win_rate"] == 3 / 4


def test_by_product_segment_and_channel(db: Database, people: People) -> None:
    ids = load(db, people)
    r = report(db, people)
    assert [row["id"] for row in r["by_product"]] == [ids.p1, ids.p2, None]  # 3000 (3 closed), 3000 (2), 0
    p1, p2, none = r["by_product"]
    assert (p1["name"], p1["won"], p1["lost"], p1["win_rate"], p1["avg_won_amount"]) == ("Router", 2, 1, 2 / 3, 1500)
    assert p1["median_cycle_days"] == pytest.approx(8)
    assert (p2["name"], p2["win_rate"], p2["won_amount"], p2["avg_won_amount"]) == ("Switch", 1.0, 3000, 3000)
    assert p2["median_cycle_days"] == pytest.approx(12.75)
    assert (none["name"], none["disqualified"], none["win_rate"], none["ci_low"]) == (None, 1, None, None)
    assert none["median_cycle_days"] is None and none["avg_won_amount"] is None
    assert [row["id"] for row in r["by_segment"]] == ["retail", None, "finance"]  # 4000, 2000, 0
    retail, no_company, finance = r["by_segment"]
    assert (retail["won"], retail["win_rate"], retail["won_amount"]) == (2, 1.0, 4000)
    assert (no_company["won"], no_company["disqualified"]) == (1, 1)
    assert (finance["won"], finance["lost"], finance["win_rate"], finance["avg_won_amount"]) == (1, 1, 0.5, None)
    channels = rows(r, "channel")
    a, b = channels[ids.channel_a], channels[ids.channel_b]
    assert (a["won"], a["lost"], a["won_amount"], a["avg_won_amount"]) == (2, 1, 1000, 1000)
    assert (b["won"], b["win_rate"], b["won_amount"], b["avg_won_amount"]) == (2, 1.0, 5000, 2500)
    assert a["name"] and a["name_en"] and channels[None]["name"] is None
    assert [row["id"] for row in r["by_channel"]] == [ids.channel_b, ids.channel_a, None]


def test_policy_and_filters(db: Database, people: People) -> None:
    ids = load(db, people)
    for viewer in ("carol", "bob"):  # a rep sees own deals, a manager the team's
        r = report(db, people, viewer=viewer)
        assert (r["totals"]["won"], r["totals"]["lost"]) == (3, 1)
        assert [row["name"] for row in r["by_rep"]] == ["Carol"]
    for viewer in ("dave", "erin"):
        r = report(db, people, viewer=viewer)
        assert (r["totals"]["won"], r["totals"]["disqualified"], r["totals"]["won_amount"]) == (1, 1, 2000)
        assert list(rows(r, "region")) == ["西部"]
    assert report(db, people, owner_id=people.dave.id)["totals"]["closed"] == 2
    assert report(db, people, product_id=ids.p2)["totals"]["won"] == 2
    assert report(db, people, industry="retail")["totals"]["won_amount"] == 4000
    assert report(db, people, channel_id=ids.channel_a)["totals"]["closed"] == 3
    assert report(db, people, team_id=people.carol.team_id)["totals"]["closed"] == 4
    with db.session_scope(write=False) as s:
        pipeline_id = default_pipeline(s).id
    assert report(db, people, pipeline_id=pipeline_id)["totals"]["closed"] == 6
    with pytest.raises(ValidationFailed) as err:
        report(db, people, pipeline_id=pipeline_id + 1000)
    assert err.value.field == "pipeline_id"


def test_empty_and_one_deal_periods(db: Database, people: People) -> None:
    load(db, people)
    empty = report(db, people, **{"from": "2024-06-01", "to": "2024-06-30"})
    t = empty["totals"]
    assert (t["closed"], t["won"], t["win_rate"], t["ci_low"], t["won_amount"]) == (0, 0, None, None, 0)
    assert t["median_cycle_days"] is None and t["avg_won_amount"] is None
    assert all(empty["by_" + d.key] == [] for d in segments.DIMENSIONS)
    one = report(db, people, **{"from": "2025-01-11", "to": "2025-01-11"})  # deal 1, won on day 10
    assert (one["totals"]["closed"], one["totals"]["won"], one["totals"]["win_rate"]) == (1, 1, 1.0)
    assert one["totals"]["median_cycle_days"] == pytest.approx(10)
    assert one["totals"]["ci_low"] == pytest.approx(wilson(1, 1)[0])
    assert [row["name"] for row in one["by_rep"]] == ["Carol"]


def test_tables_drill_and_charts(db: Database, people: People) -> None:
    ids = load(db, people)
    filters = ReportFilters.model_validate(JANUARY)
    spec = reports.get("segments")
    assert spec is not None and spec.name in reports.all_reports()
    result = report(db, people)
    tables = {t.key: t for t in spec.tables(result, filters)}
    assert list(tables) == ["overall", "rep", "team", "region", "product", "segment", "channel"]
    closed = {"closed_from": "2025-01-01", "closed_to": "2025-01-31"}
    assert tables["overall"].drill(tables["overall"].rows[0]) == closed  # type: ignore[misc]
    rep_drill = tables["rep"].drill
    assert rep_drill is not None and rep_drill(tables["rep"].rows[0]) == {**closed, "owner_id": people.carol.id}
    product_drill = tables["product"].drill
    assert product_drill is not None
    assert [product_drill(row) for row in tables["product"].rows] == [
        {**closed, "product_id": ids.p1}, {**closed, "product_id": ids.p2}, None]
    assert tables["segment"].drill(tables["segment"].rows[0]) == {**closed, "industry": "retail"}  # type: ignore[misc]
    assert tables["region"].drill(tables["region"].rows[0]) is None  # type: ignore[misc]
    assert tables["product"].rows[2]["name"] == "—"
    assert "name_en" in tables["channel"].column_keys()
    for chart in spec.charts:
        assert chart.table in tables and chart.x in tables[chart.table].column_keys()
        assert set(chart.series) <= set(tables[chart.table].column_keys())
    assert [(c.kind, c.table) for c in spec.charts] == [("hbar", "rep"), ("bar", "product")]


def test_cli_json(db: Database, people: People) -> None:
    load(db, people)
    set_database(db)
    try:
        result = CliRunner().invoke(cli_app, [
            "report", "segments", "--from", "2025-01-01", "--to", "2025-01-31", "--format", "json"])
        assert result.exit_code == 0, result.output
        body = json.loads(result.output)
        assert body["totals"]["won"] == 4 and [r["name"] for r in body["by_rep"]] == ["Carol", "Dave"]
        as_dave = CliRunner().invoke(cli_app, [
            "report", "segments", "--from", "2025-01-01", "--to", "2025-01-31", "--format", "json",
            "--as", "dave@example.com"])
        assert as_dave.exit_code == 0, as_dave.output
        assert json.loads(as_dave.output)["totals"]["closed"] == 2
    finally:
        set_database(None)


def test_api(db: Database, people: People, api: Clients) -> None:  # noqa: F811  (the imported fixture)
    load(db, people)
    r = api.alice.get("/api/v1/analytics/segments", params=JANUARY)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"report", "period", "win_rate_definition", "totals", "by_rep", "by_team", "by_region",
                         "by_product", "by_segment", "by_channel"}
    assert body["totals"]["won"] == 4 and body["totals"]["median_cycle_days"] == pytest.approx(8)
    mine = api.carol.get("/api/v1/analytics/segments", params=JANUARY).json()
    assert (mine["totals"]["won"], mine["totals"]["lost"]) == (3, 1)
    listed = [x["name"] for x in api.carol.get("/api/v1/analytics").json()["reports"]]
    assert "segments" in listed


# --- the tables answer what the deals answer ----------------------------------------------

def _by_deals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every figure from the deals: no table carries the filters."""
    monkeypatch.setattr(counters_outcomes, "countable", lambda _filters: False)
    monkeypatch.setattr(counters_segments, "usable", lambda _segment, _filters: False)


def test_hand_built_answers_equal_the_deals(db: Database, people: People, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = load(db, people)
    cases = [(viewer, extra) for viewer in ("alice", "bob", "carol", "dave")
             for extra in ({}, {"from": "2024-12-20", "to": "2025-02-10"}, {"product_id": ids.p1},
                           {"industry": "retail"}, {"channel_id": ids.channel_a}, {"owner_id": people.carol.id})]
    fast = [report(db, people, viewer, **extra) for viewer, extra in cases]
    with monkeypatch.context() as m:
        _by_deals(m)
        raw = [report(db, people, viewer, **extra) for viewer, extra in cases]
    for case, got, want in zip(cases, fast, raw, strict=True):
        assert got == want, case
    assert fast[0]["totals"]["won"] == 4


def test_blank_industry_is_no_segment(db: Database, people: People, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = load(db, people)
    with db.session_scope() as s:
        bank = s.get(Company, ids.finance)
        assert bank is not None
        bank.industry = ""
    r = report(db, people)
    segment = rows(r, "segment")
    assert set(segment) == {"retail", None} and segment[None]["closed"] == 4  # deals 2 and 8 join 4 and 5
    blank = report(db, people, industry="")
    assert (blank["totals"]["closed"], [row["id"] for row in blank["by_segment"]]) == (2, [None])
    with monkeypatch.context() as m:
        _by_deals(m)
        assert report(db, people) == r and report(db, people, industry="") == blank


NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
PERIODS = [("2025-01-01", "2025-12-31"), ("2024-12-17", "2026-02-09"), ("2025-03-05", "2025-03-20"),
           ("2025-07-01", "2027-01-31")]


@pytest.fixture
def demo(db: Database) -> Database:
    """A demo company (its deals have products, its teams regions), a quarter of whose
    deals get another product by an UPDATE statement through a session: the tables follow it."""
    from loudou.demo import service as demo_service

    demo_service.run(db, 2500, 3, "zh", now=NOW, reset=True, password_hash="x")
    with db.session_scope() as s:
        # Products changed by a bulk UPDATE after the load: the tables follow it.
        product = Product(name="P0")
        s.add(product)
        s.flush()
        s.execute(sa.update(Deal).where(Deal.id % 4 == 0).values(product_id=product.id))
    with db.engine.connect() as conn:
        assert set(counters_segments.check(conn).values()) == {0}
    return db


def _viewers(s: Session) -> list[User]:
    out = [User(id=0, email="op@x", name="op", role=Role.admin, is_active=True, team_id=None)]
    out += list(s.scalars(sa.select(User).where(User.role == Role.manager).limit(1)))
    out += list(s.scalars(sa.select(User).where(User.role == Role.rep).limit(1)))
    return out


def test_table_answers_equal_the_deals(demo: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole months from the tables plus the rest from the deals give exactly what the
    deals alone give, for an admin, a manager and a rep, aligned on months or not, with
    every filter the tables carry and those they do not."""
    with demo.session_scope(write=False) as s:
        channel, product = s.execute(sa.text(
            "SELECT channel_id, product_id FROM deals WHERE channel_id IS NOT NULL AND product_id IS NOT NULL "
            "AND closed_at IS NOT NULL LIMIT 1")).one()
        industry = s.execute(sa.text("SELECT industry FROM companies WHERE industry IS NOT NULL LIMIT 1")).scalar()
        pipeline = default_pipeline(s).id
        cases = [(viewer, ReportFilters.model_validate({"from": date_from, "to": date_to, **extra}))
                 for viewer in _viewers(s) for date_from, date_to in PERIODS
                 for extra in ({}, {"channel_id": channel}, {"product_id": product}, {"industry": industry},
                               {"pipeline_id": pipeline, "product_id": product, "industry": industry})]
        fast = [segments.segments_report(s, viewer, f) for viewer, f in cases]
        with monkeypatch.context() as m:
            _by_deals(m)
            raw = [segments.segments_report(s, viewer, f) for viewer, f in cases]
    for (viewer, f), got, want in zip(cases, fast, raw, strict=True):
        assert got == want, (viewer.role, f)
    # The tables were used, and every dimension has groups.
    whole_year = fast[0]
    assert whole_year["totals"]["closed"] and all(whole_year["by_" + d.key] for d in segments.DIMENSIONS)
    with demo.session_scope(write=False) as s:
        n_products = s.scalar(sa.select(sa.func.count()).select_from(Product))
    assert n_products == 15 and len(whole_year["by_product"]) == n_products  # the demo's 14 and P0
    assert len(whole_year["by_segment"]) > 1 and len(whole_year["by_region"]) == 2


def test_whole_months_read_no_deal(demo: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the deals out of reach, an aligned period is answered from the tables alone."""
    with demo.session_scope(write=False) as s:
        viewers = _viewers(s)
        f = ReportFilters.model_validate({"from": "2025-01-01", "to": "2025-12-31"})
        want = [segments.segments_report(s, viewer, f) for viewer in viewers]

        def refuse(*_args: Any, **_kw: Any) -> None:
            raise AssertionError("read the deals")

        monkeypatch.setattr(counters_outcomes, "_closed_in", refuse)
        monkeypatch.setattr(counters_segments, "_from_deals", refuse)
        assert [segments.segments_report(s, viewer, f) for viewer in viewers] == want
    assert counters.split_period(f.start, f.end)[1] == []
