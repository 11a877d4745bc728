"""Time in stage on hand-built histories with known answers, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from loudou.analytics import rebuild, timeinstage
from loudou.analytics.filters import ReportFilters
from loudou.analytics.reports import get
from loudou.analytics.stats import wilson
from loudou.cli import app
from loudou.db import Database, set_database
from loudou.deal.models import DealStatus as S
from loudou.pipeline import queries as pipeline_queries
from tests.analytics.history import History, Step, day, write
from tests.api.conftest import Clients, api, client  # noqa: F401  (the API fixtures)
from tests.conftest import People, default_pipeline

WON, LOST = S.won, S.lost
NOW = day(40)  # 2025-02-10 09:00 UTC
# Stage norms of the default pipeline (Stage.expected_days): 7, 10, 14, 14, 21 days.

# (owner, history); days count from 2025-01-01 09:00 UTC, the period is January 2025.
HISTORIES = [
    # 1: straight through to won: stays of 2, 3, 4, 5 and 6 days, all started in January
    ("carol", History(0, [Step(2, 1), Step(5, 2), Step(9, 3), Step(14, 4), Step(20, None, WON)])),
    # 2: 2 days in stage 0, 7 in stage 1, lost
    ("carol", History(1, [Step(3, 1), Step(10, None, LOST)])),
    # 3: 1 day in 0, 2 in 1, 1 in 2, lost (the lost spell is no stay), reopened into 2 for 3 days,
    #    open in stage 3 since day 12 (28 days at NOW, norm 14: stale, 14 days over)
    ("dave", History(3, [Step(4, 1), Step(6, 2), Step(7, None, LOST), Step(9, 2, S.open), Step(12, 3)])),
    # 4: open in stage 0 since day 5 (35 days, norm 7: stale, 28 days over)
    ("dave", History(5)),
    # 5: 5 days in stage 0 started on day 28 (January); stage 1 entered on day 33 (February),
    #    open there for 7 days (norm 10: not stale)
    ("carol", History(28, [Step(33, 1)])),
    # 6: created in December: its stays there are not in January's; open in stage 2 since day 2
    #    (38 days, norm 14: stale, 24 days over)
    ("carol", History(-10, [Step(-5, 1), Step(2, 2)])),
    # 7: open in stage 2 since day -18 (58 days: stale, 44 days over)
    ("dave", History(-20, [Step(-18, 2)])),
]


def load(db: Database, people: People, histories: list[tuple[str, History]] = HISTORIES) -> list[int]:
    ids = []
    with db.session_scope() as s:
        stages = pipeline_queries.list_stages(s, default_pipeline(s).id)
        for owner, h in histories:
            ids.append(write(s, getattr(people, owner), stages, h).id)
    assert not rebuild.has_mismatches(rebuild.rebuild(db))
    return ids


def report(db: Database, people: People, viewer: str = "alice", **kw: Any) -> dict[str, Any]:
    filters = ReportFilters.model_validate({"from": "2025-01-01", "to": "2025-01-31", **kw})
    with db.session_scope(write=False) as s:
        return timeinstage.time_in_stage(s, getattr(people, viewer), filters, now=NOW)


def test_completed_stays_started_in_the_period(db: Database, people: People) -> None:
    load(db, people)
    r = report(db, people)
    stays = r["stays"]
    assert [s["stays"] for s in stays] == [4, 3, 3, 1, 1]
    # stage 0: 2, 2, 1, 5 days -> sorted 1, 2, 2, 5
    assert stays[0]["median_days"] == 2.0
    assert stays[0]["p90_days"] == pytest.approx(2 + (5 - 2) * 0.7)  # position 2.7
    assert stays[0]["mean_days"] == 2.5
    # stage 1: 3, 7, 2 -> median 3, p90 at position 1.8: 3 + 4 * 0.8
    assert (stays[1]["median_days"], stays[1]["p90_days"], stays[1]["mean_days"]) == (3.0, pytest.approx(6.2), 4.0)
    # stage 2: 4, 1 and the reopened deal's second stay of 3 -> 1, 3, 4
    assert (stays[2]["median_days"], stays[2]["p90_days"], stays[2]["mean_days"]) == (3.0, pytest.approx(3.8),
                                                                                      2.67)
    assert (stays[3]["median_days"], stays[4]["median_days"]) == (5.0, 6.0)
    # still running: deal 4 in stage 0 (since day 5), deal 3 in stage 3 (since day 12);
    # deal 6 entered stage 2 on day 2 and is still there
    assert [s["unfinished"] for s in stays] == [1, 0, 1, 1, 0]
    assert r["stays_total"] == 12
    assert [s["norm_days"] for s in stays] == [7, 10, 14, 14, 21]


def test_percentiles_at_the_histogram_resolution_and_the_exact_mean(db: Database, people: People) -> None:
    # Stays in stage 0 of 1.5 h, 36.5 h, 100 h and 301 h: at the stay histogram's resolution
    # (the hour below a day, 6 hours below ten days, the day beyond) 1, 36, 96 and 288 hours.
    hours = [1.5, 36.5, 100, 301]
    load(db, people, [("carol", History(1 + i, [Step(1 + i + h / 24, 1)])) for i, h in enumerate(hours)])
    stage0 = report(db, people)["stays"][0]
    assert stage0["stays"] == 4
    assert stage0["median_days"] == (36 + 96) / 2 / 24  # 2.75, where the stays themselves give 2.84
    assert stage0["p90_days"] == pytest.approx((96 + (288 - 96) * 0.7) / 24)  # 9.6 (position 2.7)
    assert stage0["mean_days"] == round(sum(hours) / 4 / 24, 2)  # 4.57: the mean is of the exact lengths
    # A rep's view reads the transitions, at the same resolution.
    assert report(db, people, viewer="carol")["stays"][0] == stage0


def test_open_deals_against_the_norm(db: Database, people: People) -> None:
    ids = load(db, people)
    r = report(db, people)
    assert [s["open"] for s in r["open"]] == [1, 1, 2, 1, 0]
    assert [s["median_days_in_stage"] for s in r["open"]] == [35.0, 7.0, 48.0, 28.0, None]  # stage 2: (38 + 58) / 2
    assert [s["stale"] for s in r["open"]] == [1, 0, 2, 1, 0]
    assert r["open"][2]["stale_share"] == 1.0
    lo, hi = wilson(2, 2)
    assert (r["open"][2]["ci_low"], r["open"][2]["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert r["open"][4]["stale_share"] is None and r["open"][4]["ci_low"] is None
    assert (r["open_total"], r["stale_total"]) == (5, 4)
    overdue = r["overdue"]
    assert [o["deal_id"] for o in overdue] == [ids[6], ids[3], ids[5], ids[2]]
    assert [o["overdue_days"] for o in overdue] == [44.0, 28.0, 24.0, 14.0]
    assert [o["days_in_stage"] for o in overdue] == [58.0, 35.0, 38.0, 28.0]
    assert overdue[0]["owner"] == "Dave" and overdue[0]["norm_days"] == 14 and overdue[0]["amount"] == 1000.0
    # the period does not narrow the open deals
    assert report(db, people, **{"from": "2024-01-01", "to": "2024-01-31"})["open_total"] == 5


def test_overdue_keeps_the_fifty_furthest_over(db: Database, people: People) -> None:
    # 55 deals open in stage 0 since days -60 … -6: 100 … 46 days in the stage at NOW (norm 7),
    # and one since day 36: 4 days, not over the norm
    histories = [("carol", History(-60 + i)) for i in range(55)] + [("carol", History(36))]
    ids = load(db, people, histories)
    r = report(db, people)
    assert (r["open"][0]["open"], r["open"][0]["stale"]) == (56, 55)
    assert len(r["overdue"]) == timeinstage.OVERDUE_LIMIT
    assert [o["deal_id"] for o in r["overdue"]] == ids[:50]
    assert r["overdue"][0]["overdue_days"] == 100.0 - 7


def test_policy_rep_and_manager(db: Database, people: People) -> None:
    ids = load(db, people)
    carol = report(db, people, viewer="carol")
    # carol's deals 1, 2, 5, 6: stage 0 stays 2, 2, 5; stage 1 3, 7; stage 2 4
    assert [s["stays"] for s in carol["stays"]] == [3, 2, 1, 1, 1]
    assert carol["stays"][0]["median_days"] == 2.0
    assert [s["open"] for s in carol["open"]] == [0, 1, 1, 0, 0]
    assert [o["deal_id"] for o in carol["overdue"]] == [ids[5]]
    assert report(db, people, viewer="bob") == carol  # manager of East sees East
    erin = report(db, people, viewer="erin")  # West: dave's deals 3, 4, 7
    assert [s["stays"] for s in erin["stays"]] == [1, 1, 2, 0, 0]
    assert [o["deal_id"] for o in erin["overdue"]] == [ids[6], ids[3], ids[2]]
    assert report(db, people, viewer="dave") == erin
    assert report(db, people, owner_id=people.dave.id) == erin


def test_empty_and_one_deal_periods(db: Database, people: People) -> None:
    load(db, people)
    empty = report(db, people, **{"from": "2024-06-01", "to": "2024-06-30"})
    assert empty["stays_total"] == 0
    assert all(s["median_days"] is None and s["p90_days"] is None and s["mean_days"] is None for s in empty["stays"])
    one = report(db, people, **{"from": "2025-01-01", "to": "2025-01-01"})  # deal 1's first stay only
    assert [s["stays"] for s in one["stays"]] == [1, 0, 0, 0, 0]
    assert one["stays"][0]["median_days"] == one["stays"][0]["p90_days"] == one["stays"][0]["mean_days"] == 2.0


def test_tables_charts_and_drill(db: Database, people: People) -> None:
    load(db, people)
    spec = get("timeinstage")
    assert spec is not None
    filters = ReportFilters.model_validate({"from": "2025-01-01", "to": "2025-01-31"})
    result = report(db, people)
    tables = {t.key: t for t in spec.tables(result, filters)}
    assert set(tables) == {"stays", "open", "overdue"}
    for chart in spec.charts:
        assert chart.table in tables and chart.x in tables[chart.table].column_keys()
        assert set(chart.series) <= set(tables[chart.table].column_keys())
    row = tables["open"].rows[2]
    assert tables["open"].drill is not None
    assert tables["open"].drill(row) == {"pipeline_id": result["pipeline_id"], "stage_id": row["stage_id"],
                                         "status": "open"}
    assert tables["overdue"].drill is None and "deal_id" in tables["overdue"].rows[0]


@pytest.fixture
def cli_database(db: Database) -> Iterator[Database]:
    set_database(db)
    yield db
    set_database(None)


def test_cli_json(cli_database: Database, people: People) -> None:
    load(cli_database, people)
    out = CliRunner().invoke(app, ["report", "timeinstage", "--from", "2025-01-01", "--to", "2025-01-31",
                                   "--format", "json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.output)
    assert body["report"] == "timeinstage" and [s["stays"] for s in body["stays"]] == [4, 3, 3, 1, 1]
    assert body["open_total"] == 5 and len(body["overdue"]) == 5  # every open deal is long over the norm by now
    out = CliRunner().invoke(app, ["report", "timeinstage", "--from", "2025-01-01", "--to", "2025-01-31",
                                   "--as", "carol@example.com", "--format", "json"])
    assert out.exit_code == 0 and json.loads(out.output)["stays_total"] == 8


def test_api(db: Database, people: People, api: Clients) -> None:  # noqa: F811  (the imported fixture)
    load(db, people)
    r = api.carol.get("/api/v1/analytics/timeinstage", params={"from": "2025-01-01", "to": "2025-01-31"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["period"] == {"from": "2025-01-01", "to": "2025-01-31", "timezone": "UTC"}
    assert [s["stays"] for s in body["stays"]] == [3, 2, 1, 1, 1] and body["open_total"] == 2
    assert api.alice.get("/api/v1/analytics/timeinstage", params={"from": "2025-01-01", "to": "2025-01-31"}
                         ).json()["stays_total"] == 12
    assert api.carol.get("/api/v1/analytics/timeinstage", params={"from": "2025-01-31", "to": "2025-01-01"}
                         ).status_code == 422
