"""The dashboard and a report in Chromium on a demo database: charts draw without script
errors, a chart and its table show the same figures, clicking a funnel step opens the
deals behind it, and the page reads in Chinese."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.web.conftest import LiveServer, SignIn


def _watch_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def test_dashboard_charts_draw_and_click_through(sign_in: SignIn, live_server: LiveServer) -> None:
    page: Any = sign_in("manager", locale="en-US")
    errors = _watch_errors(page)
    page.goto(f"{live_server.url}/dashboard")
    page.wait_for_selector("[data-chart][data-drawn]")
    widgets = page.locator("[data-testid^=widget-]").count()
    assert widgets >= 2
    assert page.locator("[data-chart][data-drawn]").count() >= widgets - 1
    assert errors == []

    # The funnel's first step, clicked on the chart, opens that stage's deals.
    page.goto(f"{live_server.url}/reports/funnel")
    chart = page.locator("[data-testid=table-stages] [data-chart]").first
    chart.wait_for(state="attached")
    page.wait_for_selector("[data-testid=table-stages] [data-chart][data-drawn]")
    box = chart.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + 30)
    page.wait_for_url("**/deals?**")
    query = parse_qs(urlparse(page.url).query)
    assert "reached_stage_id" in query
    assert page.locator("#deal-results tr[data-deal-id]").count() > 0
    assert errors == []


def test_report_reads_in_chinese_and_filters_by_url(sign_in: SignIn, live_server: LiveServer) -> None:
    page: Any = sign_in("admin", locale="zh-CN")
    errors = _watch_errors(page)
    page.goto(f"{live_server.url}/reports/snapshot")
    assert page.locator("h1").inner_text() == "管道快照"
    header = page.locator("[data-testid=table-stages] thead").inner_text()
    assert "进行中商机" in header and "加权金额" in header
    team = live_server.sql("SELECT id FROM teams ORDER BY id LIMIT 1")[0][0]
    page.select_option("[data-testid=filter-team]", str(team))
    page.click("[data-testid=apply-filters]")
    page.wait_for_url(f"**team_id={team}**")
    team_total = sum(int(c.replace(",", "")) for c in page.locator(
        "[data-testid=table-stages] tbody tr td:nth-child(2)").all_inner_texts())
    (expected,) = live_server.sql("SELECT count(*) FROM deals WHERE status='open' AND team_id=?", (team,))[0]
    assert team_total == expected
    assert errors == []
