"""The cohort funnel recovers the demo generator's true continuation rates (issue: at least
90% of channel × stage cells inside the reported 95% interval), and the demo's derived
state matches its own history (analytics rebuild --check)."""

from __future__ import annotations

import datetime as dt

from loudou.analytics import funnel, rebuild
from loudou.analytics.filters import ReportFilters
from loudou.auth.models import Role, User
from loudou.db import Database
from loudou.demo import service as demo_service

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
ADMIN = User(id=0, email="operator@localhost", name="operator", role=Role.admin, is_active=True, team_id=None)


def test_channel_continuation_rates_are_recovered(db: Database) -> None:
    plan = demo_service.run(db, 12_000, 5, "zh", now=NOW, reset=True, password_hash="x")
    truth = plan.truth()
    # Only cohorts old enough that every decision has been made (no censoring).
    first = (NOW - dt.timedelta(days=truth["window_days"])).date()
    last = (NOW - dt.timedelta(days=truth["decided_after_days"] + 1)).date()
    cells = inside = 0
    with db.session_scope(write=False) as s:
        for channel in truth["channels"]:
            filters = ReportFilters.model_validate(
                {"from": first.isoformat(), "to": last.isoformat(), "channel_id": channel["channel_id"]})
            report = funnel.cohort_funnel(s, ADMIN, filters)
            assert report["cohort_size"] > 200
            for k, stage in enumerate(report["stages"]):
                c = stage["continuation"]
                if c["ci_low"] is None:
                    continue
                cells += 1
                inside += c["ci_low"] <= channel["continuation"][k] <= c["ci_high"]
    assert cells >= 35
    assert inside / cells >= 0.9, f"{inside}/{cells} cells inside their 95% interval"


def test_demo_history_and_derived_state_agree(db: Database) -> None:
    demo_service.run(db, 1500, 9, "en", now=NOW, reset=True, password_hash="x")
    with db.engine.connect() as conn:
        results = rebuild.verify(conn)
    assert not rebuild.has_mismatches(results), results
