"""An independent check of the reports: the demo company's raw tables, read with plain SQL
into pandas, recomputed from the stage-transition history (never from the derived columns
reached_mask, stage_entered_at or duration_s), must give exactly the reports' figures,
on SQLite and on PostgreSQL.

From the history alone: a deal's stages reached are the open stages its transitions entered;
its status, stage, creation and closing time are those of its first and last transition
(ordered by time, then id); a stay in a stage lasts from the transition into it to the
deal's next transition, in whole seconds.
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from loudou.analytics import reports
from loudou.analytics.filters import ReportFilters
from loudou.auth.models import Role, User
from loudou.db import Database
from loudou.demo import service as demo_service
from loudou.pipeline import service as pipeline_service
from tests import conftest

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
DAY_S = 86_400
TOL = 1e-9
ADMIN = User(id=0, email="operator@localhost", name="operator", role=Role.admin, is_active=True, team_id=None)
PERIODS = [("2024-06-01", "2026-05-31"), ("2025-10-01", "2025-12-31"), ("2026-05-25", "2026-05-31")]
TABLES = ("deals", "stage_transitions", "stages", "users", "teams", "channels", "products", "companies")


@dataclass
class Raw:
    db: Database
    tables: dict[str, pd.DataFrame]
    pipeline_id: int
    stages: pd.DataFrame        # the default pipeline's active stages in order
    deals: pd.DataFrame         # one row per deal, its facts derived from the history
    reached: pd.DataFrame       # (deal_id, stage_id) pairs: open stages a deal entered
    stays: pd.DataFrame         # completed stays: deal_id, stage_id, seconds


def _utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True, format="ISO8601")


def _money(value: Any) -> Decimal | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return Decimal(str(value)).quantize(Decimal("0.01"))


def dump(db: Database) -> dict[str, pd.DataFrame]:
    with db.engine.connect() as conn:
        frames = {name: pd.read_sql(sa.text(f"SELECT * FROM {name}"), conn) for name in TABLES}
    for frame in frames.values():
        for column in ("created_at", "closed_at", "at", "stage_entered_at"):
            if column in frame:
                frame[column] = _utc(frame[column])
    frames["deals"]["amount"] = frames["deals"]["amount"].map(_money).astype(object)
    return frames


def derive(db: Database, tables: dict[str, pd.DataFrame]) -> Raw:
    stages_all = tables["stages"]
    with db.engine.connect() as conn:
        pipeline_id = int(conn.execute(sa.text(
            "SELECT id FROM pipelines ORDER BY is_default DESC, id LIMIT 1")).scalar_one())
    stages = (stages_all[(stages_all.pipeline_id == pipeline_id) & stages_all.is_active.astype(bool)]
              .sort_values(["position", "id"]).reset_index(drop=True))
    t = tables["stage_transitions"].sort_values(["deal_id", "at", "id"]).reset_index(drop=True)
    t["next_at"] = t.groupby("deal_id")["at"].shift(-1)
    first = t.groupby("deal_id").head(1).set_index("deal_id")
    last = t.groupby("deal_id").tail(1).set_index("deal_id")
    d = tables["deals"].set_index("id")[["pipeline_id", "owner_id", "team_id", "channel_id", "product_id",
                                         "company_id", "amount"]].copy()
    d["created"] = first["at"]
    d["status"] = last["to_status"]
    d["stage_id"] = last["to_stage_id"]
    d["closed"] = last["at"].where(last["to_status"] != "open")
    d["entered"] = last["at"]
    d.index.name = "deal_id"
    opened = t[t.to_status == "open"]
    reached = opened[["deal_id", "to_stage_id"]].drop_duplicates().rename(columns={"to_stage_id": "stage_id"})
    done = opened[opened.next_at.notna()]
    stays = pd.DataFrame({"deal_id": done.deal_id, "stage_id": done.to_stage_id,
                          "seconds": (done.next_at - done["at"]) // pd.Timedelta(seconds=1)})
    return Raw(db, tables, pipeline_id, stages, d.reset_index(), reached, stays)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def raw(request: pytest.FixtureRequest) -> Iterator[Raw]:
    """The ``db`` fixture's databases, filled with the demo once for this module."""
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    database = conftest._database(url)
    conftest.empty_tables(database)
    with database.session_scope() as s:
        pipeline_service.ensure_reference_data(s)
    demo_service.run(database, 3000, 23, "zh", now=NOW, reset=True, password_hash="x")
    tables = dump(database)
    yield derive(database, tables)
    conftest.empty_tables(database)


def run(raw: Raw, name: str, period: tuple[str, str], viewer: User = ADMIN, **kw: Any) -> dict[str, Any]:
    filters = ReportFilters.model_validate({"from": period[0], "to": period[1], **kw})
    spec = reports.get(name)
    assert spec is not None, name
    with raw.db.session_scope(write=False) as s:
        if "now" in inspect.signature(spec.compute).parameters:  # reports of "now": the demo's now
            return spec.compute(s, viewer, filters, now=NOW)  # type: ignore[call-arg]
        return spec.compute(s, viewer, filters)


def bounds(period: tuple[str, str]) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = pd.Timestamp(period[0], tz="UTC")
    return start, pd.Timestamp(period[1], tz="UTC") + pd.Timedelta(days=1)


def pct(values: list[float] | pd.Series, q: float) -> float | None:
    values = list(values)
    return float(np.percentile(np.asarray(values, dtype=float), q * 100)) if values else None


def stay_hours(seconds: pd.Series) -> list[int]:
    """The funnel's time-in-stage resolution: whole hours below a day, 6 hours below ten
    days, whole days beyond (floored)."""
    hours = seconds.astype("int64") // 3600
    bucketed = np.where(hours < 24, hours, np.where(hours < 240, hours // 6 * 6, hours // 24 * 24))
    return [int(h) for h in bucketed]


def rate(successes: int, trials: int) -> float | None:
    return successes / trials if trials else None


def money(values: pd.Series) -> float:
    return float(sum((v for v in values if v is not None), Decimal(0)))


def close(a: float | None, b: float | None) -> bool:
    """Equal to 1e-9 (relative for sums of money beyond 1)."""
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= TOL * max(1.0, abs(b))


def visible(raw: Raw, viewer: User) -> pd.DataFrame:
    d = raw.deals
    if viewer.role == Role.admin:
        return d
    if viewer.role == Role.manager and viewer.team_id is not None:
        return d[d.team_id == viewer.team_id]
    return d[d.owner_id == viewer.id]


def a_manager(raw: Raw) -> User:
    users = raw.tables["users"]
    row = users[(users.role == "manager") & users.team_id.notna()].sort_values("id").iloc[0]
    return User(id=int(row.id), email=row.email, name=row["name"], role=Role.manager, is_active=True,
                team_id=int(row.team_id))


# --- the history is the truth: the stored state agrees with it -----------------------------

def test_stored_status_stage_and_times_agree_with_the_history(raw: Raw) -> None:
    stored = raw.tables["deals"].set_index("id").sort_index()
    derived = raw.deals.set_index("deal_id").sort_index()
    assert (stored.status == derived.status).all()
    assert (stored.stage_id == derived.stage_id).all()
    assert (stored.created_at == derived.created).all()
    assert ((stored.closed_at == derived.closed) | (stored.closed_at.isna() & derived.closed.isna())).all()
    assert len(derived) == 3000


# --- cohort funnel -------------------------------------------------------------------------

@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize("strict", [False, True])
def test_cohort_funnel(raw: Raw, period: tuple[str, str], strict: bool) -> None:
    start, end = bounds(period)
    d = raw.deals
    cohort = d[(d.pipeline_id == raw.pipeline_id) & (d.created >= start) & (d.created < end)]
    ids = set(cohort.deal_id)
    entered: dict[int, set[int]] = {}
    for deal_id, stage_id in raw.reached[raw.reached.deal_id.isin(ids)].itertuples(index=False):
        entered.setdefault(int(stage_id), set()).add(int(deal_id))
    order = [int(s) for s in raw.stages.id]
    won = set(cohort.deal_id[cohort.status == "won"])

    def reached(i: int) -> set[int]:
        if strict:
            out = set(ids)
            for sid in order[: i + 1]:
                out &= entered.get(sid, set())
            return out
        return entered.get(order[i], set())

    def further(i: int) -> set[int]:
        if i + 1 < len(order):
            if strict:
                return reached(i + 1)
            later: set[int] = set()
            for sid in order[i + 1:]:
                later |= entered.get(sid, set())
            return reached(i) & later
        return reached(i) & won

    amounts = cohort.set_index("deal_id")["amount"]
    report = run(raw, "funnel", period, strict=strict)
    assert report["cohort_size"] == len(cohort)
    for status in ("won", "lost", "disqualified", "open"):
        assert report[status] == int((cohort.status == status).sum()), status
    assert close(report["won_amount"], money(cohort.amount[cohort.status == "won"]))
    assert close(report["win_rate_of_closed"]["rate"],
                 rate(len(won), len(won) + int((cohort.status == "lost").sum())))
    stays = raw.stays[raw.stays.deal_id.isin(ids)]
    previous = len(ids)
    for i, row in enumerate(report["stages"]):
        here = reached(i)
        assert row["stage_id"] == order[i]
        assert row["reached"] == len(here), (i, row)
        assert close(row["reached_amount"], money(amounts.loc[sorted(here)])) if here else row["reached_amount"] == 0
        moved_on = len(here) if i == 0 or strict else len(further(i - 1))
        assert close(row["conversion_from_previous"], rate(moved_on, previous)), (i, row)
        assert close(row["conversion_from_start"], rate(len(here), len(ids)))
        assert row["continued"] == len(further(i))
        assert close(row["continuation"]["rate"], rate(len(further(i)), len(here)))
        hours = sorted(stay_hours(stays.seconds[stays.stage_id == order[i]]))
        assert row["completed_stays"] == len(hours)
        for key, q in (("median_days_in_stage", 0.5), ("p90_days_in_stage", 0.9)):
            value = pct(hours, q)
            assert close(row[key], None if value is None else round(value / 24, 2)), (i, key)
        previous = len(here)


# --- segments --------------------------------------------------------------------------------

def _segment_figures(group: pd.DataFrame) -> dict[str, Any]:
    won = group[group.status == "won"]
    lost = int((group.status == "lost").sum())
    # Whole seconds, as the sales-cycle report counts them (docs/analytics/segments.md).
    cycles = [seconds / DAY_S for seconds in cycle_seconds(won)]
    with_amount = [a for a in won.amount if a is not None]
    return {
        "closed": len(group), "won": len(won), "lost": lost,
        "disqualified": int((group.status == "disqualified").sum()),
        "win_rate": rate(len(won), len(won) + lost),
        "won_amount": money(won.amount),
        "avg_won_amount": round(float(sum(with_amount, Decimal(0))) / len(with_amount), 2) if with_amount else None,
        "median_cycle_days": pct(cycles, 0.5),
        "mean_cycle_days": float(np.mean(cycles)) if cycles else None,
    }


def _assert_figures(row: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    for key, value in expected.items():
        if isinstance(value, float) or value is None:
            assert close(row[key], value), (where, key, row[key], value)
        else:
            assert row[key] == value, (where, key, row[key], value)


@pytest.mark.parametrize("period", PERIODS)
def test_segments_by_rep_and_channel(raw: Raw, period: tuple[str, str]) -> None:
    start, end = bounds(period)
    for viewer in (ADMIN, a_manager(raw)):
        d = visible(raw, viewer)
        closed = d[d.closed.notna() & (d.closed >= start) & (d.closed < end)]
        report = run(raw, "segments", period, viewer=viewer)
        _assert_figures(report["totals"], _segment_figures(closed), "totals")
        users = raw.tables["users"].set_index("id")["name"]
        channels = raw.tables["channels"].set_index("id")
        for key, column in (("by_rep", "owner_id"), ("by_channel", "channel_id")):
            rows = {row["id"]: row for row in report[key]}
            groups = dict(tuple(closed.groupby(closed[column].astype("Int64"), dropna=False)))
            assert len(rows) == len(groups), key
            for group_id, group in groups.items():
                gid = None if pd.isna(group_id) else int(group_id)
                _assert_figures(rows[gid], _segment_figures(group), f"{key} {gid}")
                if gid is not None and key == "by_rep":
                    assert rows[gid]["name"] == users[gid]
                if gid is not None and key == "by_channel":
                    assert (rows[gid]["name"], rows[gid]["name_en"]) == (channels.name[gid], channels.name_en[gid])


# --- snapshot --------------------------------------------------------------------------------

def test_snapshot_open_deals_per_stage(raw: Raw) -> None:
    for viewer in (ADMIN, a_manager(raw)):
        d = visible(raw, viewer)
        now_open = d[(d.status == "open") & (d.pipeline_id == raw.pipeline_id)]
        report = run(raw, "snapshot", PERIODS[0], viewer=viewer)
        assert report["open"] == len(now_open)
        for row in report["stages"]:
            here = now_open[now_open.stage_id == row["stage_id"]]
            assert row["open"] == len(here)
            assert close(row["amount"], round(money(here.amount), 2))
            oldest = (NOW - here.entered.min()).total_seconds() / DAY_S if len(here) else None
            assert close(row["oldest_days"], None if oldest is None else round(oldest, 1))


# --- the outcome reports: cycle, win rate, win/loss ----------------------------------------

def cycle_seconds(group: pd.DataFrame) -> list[int]:
    """closed − created in whole seconds, rounded half away from zero (as SQL ROUND does)."""
    micro = (group.closed - group.created) // pd.Timedelta(microseconds=1)
    return sorted(int((m + 500_000) // 1_000_000) for m in micro)


def days2(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / DAY_S, 2)


def closed_in(raw: Raw, viewer: User, period: tuple[str, str]) -> pd.DataFrame:
    start, end = bounds(period)
    d = visible(raw, viewer)
    return d[d.closed.notna() & (d.closed >= start) & (d.closed < end)]


def _cycle_figures(won: pd.DataFrame) -> dict[str, Any]:
    secs = cycle_seconds(won)
    return {"won": len(won), "won_amount": money(won.amount),
            "median_days": days2(pct(secs, 0.5)), "p90_days": days2(pct(secs, 0.9)),
            "mean_days": days2(sum(secs) / len(secs)) if secs else None}


def groups_of(frame: pd.DataFrame, column: str) -> dict[int | None, pd.DataFrame]:
    out = {}
    for key, group in frame.groupby(frame[column].astype("Int64"), dropna=False):
        out[None if pd.isna(key) else int(key)] = group
    return out


@pytest.mark.parametrize("period", PERIODS)
def test_cycle(raw: Raw, period: tuple[str, str]) -> None:
    for viewer in (ADMIN, a_manager(raw)):
        won = closed_in(raw, viewer, period).query("status == 'won'")
        report = run(raw, "cycle", period, viewer=viewer)
        _assert_figures(report, _cycle_figures(won), "cycle")
        secs = cycle_seconds(won)
        assert report["min_days"] == (days2(secs[0]) if secs else None)
        assert report["max_days"] == (days2(secs[-1]) if secs else None)
        assert sum(b["deals"] for b in report["distribution"]) == len(won)
        for key, column in (("by_owner", "owner_id"), ("by_channel", "channel_id"), ("by_team", "team_id")):
            rows = {row[column]: row for row in report[key]}
            groups = groups_of(won, column)
            assert set(rows) == set(groups), key
            for gid, group in groups.items():
                _assert_figures(rows[gid], _cycle_figures(group), f"cycle {key} {gid}")


def _winrate_figures(group: pd.DataFrame) -> dict[str, Any]:
    won = group[group.status == "won"]
    lost = int((group.status == "lost").sum())
    with_amount = [a for a in won.amount if a is not None]
    return {"won": len(won), "lost": lost, "disqualified": int((group.status == "disqualified").sum()),
            "closed": len(group), "win_rate": rate(len(won), len(won) + lost), "won_amount": money(won.amount),
            "avg_won_amount": round(float(sum(with_amount, Decimal(0)) / len(with_amount)), 2)
            if with_amount else None,
            "median_cycle_days": days2(pct(cycle_seconds(won), 0.5))}


@pytest.mark.parametrize("period", PERIODS)
def test_winrate(raw: Raw, period: tuple[str, str]) -> None:
    for viewer in (ADMIN, a_manager(raw)):
        closed = closed_in(raw, viewer, period)
        report = run(raw, "winrate", period, viewer=viewer, interval="month")
        _assert_figures(report["totals"], _winrate_figures(closed), "winrate totals")
        month = closed.closed.dt.strftime("%Y-%m")
        buckets = {row["bucket"]: row for row in report["buckets"]}
        for key, group in closed.groupby(month):
            _assert_figures(buckets[key], _winrate_figures(group), f"winrate bucket {key}")
        assert sum(row["closed"] for row in report["buckets"]) == len(closed)
        for key, column in (("by_rep", "owner_id"), ("by_team", "team_id")):
            rows = {row[column]: row for row in report[key]}
            groups = groups_of(closed, column)
            assert set(rows) == set(groups), key
            for gid, group in groups.items():
                _assert_figures(rows[gid], _winrate_figures(group), f"winrate {key} {gid}")


@pytest.mark.parametrize("period", PERIODS)
def test_winloss(raw: Raw, period: tuple[str, str]) -> None:
    for viewer in (ADMIN, a_manager(raw)):
        closed = closed_in(raw, viewer, period)
        lost = closed[closed.status == "lost"]
        report = run(raw, "winloss", period, viewer=viewer, interval="month")
        assert report["lost"] == len(lost)
        assert close(report["lost_amount"], money(lost.amount))
        reasons = raw.tables["deals"].set_index("id")["lost_reason_id"]
        with_reason = lost.assign(reason=reasons.reindex(lost.deal_id).to_numpy())
        rows = {row["lost_reason_id"]: row for row in report["by_reason"]}
        groups = groups_of(with_reason, "reason")
        assert set(rows) == set(groups)
        for gid, group in groups.items():
            assert rows[gid]["lost"] == len(group) and close(rows[gid]["lost_amount"], money(group.amount))
            assert close(rows[gid]["share"], rate(len(group), len(lost)))
        at_stage = {row["stage_id"]: row["lost"] for row in report["by_stage"]}
        assert at_stage == {int(k): len(g) for k, g in lost.groupby("stage_id")}
        over_time = {row["bucket"]: row["lost"] for row in report["over_time"] if row["lost"]}
        assert over_time == {k: len(g) for k, g in lost.groupby(lost.closed.dt.strftime("%Y-%m"))}
        sides = {row["status"]: row for row in report["won_vs_lost"]}
        for status in ("won", "lost"):
            group = closed[closed.status == status]
            assert sides[status]["deals"] == len(group)
            assert sides[status]["median_cycle_days"] == days2(pct(cycle_seconds(group), 0.5))


# --- channels ----------------------------------------------------------------------------------

def _channel_figures(leads: pd.DataFrame) -> dict[str, Any]:
    won = leads[leads.status == "won"]
    lost = int((leads.status == "lost").sum())
    cycles = ((won.closed - won.created).dt.total_seconds()).tolist()
    median = pct(sorted(cycles), 0.5)
    return {"leads": len(leads), "won": len(won), "lost": lost,
            "disqualified": int((leads.status == "disqualified").sum()), "open": int((leads.status == "open").sum()),
            "conversion": rate(len(won), len(leads)), "win_rate": rate(len(won), len(won) + lost),
            "median_cycle_days": None if median is None else round(median / DAY_S, 2),
            "won_revenue": round(money(won.amount), 2),
            "customers_won": int(won.company_id.dropna().nunique()) + int(won.company_id.isna().sum())}


@pytest.mark.parametrize("period", PERIODS)
def test_channels(raw: Raw, period: tuple[str, str]) -> None:
    start, end = bounds(period)
    for viewer in (ADMIN, a_manager(raw)):
        d = visible(raw, viewer)
        cohort = d[(d.created >= start) & (d.created < end)]
        report = run(raw, "channels", period, viewer=viewer)
        _assert_figures(report["total"], _channel_figures(cohort), "channels total")
        rows = {row["channel_id"]: row for row in report["channels"] if row["leads"]}
        groups = groups_of(cohort, "channel_id")
        assert set(rows) == set(groups)
        for gid, group in groups.items():
            _assert_figures(rows[gid], _channel_figures(group), f"channel {gid}")


# --- time in stage -------------------------------------------------------------------------------

@pytest.mark.parametrize("period", PERIODS)
def test_timeinstage(raw: Raw, period: tuple[str, str]) -> None:
    start, end = bounds(period)
    t = raw.tables["stage_transitions"].sort_values(["deal_id", "at", "id"])
    t = t.assign(next_at=t.groupby("deal_id")["at"].shift(-1))
    for viewer in (ADMIN, a_manager(raw)):
        d = visible(raw, viewer)
        d = d[d.pipeline_id == raw.pipeline_id]
        mine = t[t.deal_id.isin(set(d.deal_id)) & (t.to_status == "open") & (t["at"] >= start) & (t["at"] < end)]
        done = mine[mine.next_at.notna()]
        seconds = (done.next_at - done["at"]) // pd.Timedelta(seconds=1)
        open_now = d[d.status == "open"]
        report = run(raw, "timeinstage", period, viewer=viewer)
        assert report["pipeline_id"] == raw.pipeline_id
        stays = {row["stage_id"]: row for row in report["stays"]}
        opened = {row["stage_id"]: row for row in report["open"]}
        for stage in raw.stages.itertuples():
            values = sorted(int(v) for v in seconds[done.to_stage_id == stage.id])
            row = stays[stage.id]
            assert row["stays"] == len(values)
            hours = sorted(stay_hours(pd.Series(values, dtype="int64")))
            for key, q in (("median_days", 0.5), ("p90_days", 0.9)):
                value = pct(hours, q)
                assert close(row[key], None if value is None else round(value / 24, 2)), (stage.id, key)
            assert close(row["mean_days"], days2(sum(values) / len(values)) if values else None)
            here = open_now[open_now.stage_id == stage.id]
            assert row["unfinished"] == int(((here.entered >= start) & (here.entered < end)).sum())
            entered = sorted(here.entered)
            o = opened[stage.id]
            assert o["open"] == len(entered)
            assert o["stale"] == sum(e < NOW - pd.Timedelta(days=int(stage.expected_days)) for e in entered)
            if entered:
                lo, hi = entered[(len(entered) - 1) // 2], entered[len(entered) // 2]
                median = lo + (hi - lo) / 2
                assert close(o["median_days_in_stage"], days2((NOW - median).total_seconds()))
            else:
                assert o["median_days_in_stage"] is None
