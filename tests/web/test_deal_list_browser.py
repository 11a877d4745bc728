"""The deal list in Chromium against a live server on a demo database: a manager sees
the team's deals only, filters without a page reload, exports, selects rows, creates a
deal; on a phone the rows become cards."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from tests.web.conftest import LiveServer, SignIn


def _listed(page: Any) -> list[int]:
    return [int(x) for x in page.locator("#deal-results tr[data-deal-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.dealId)")]


def _team_of(live_server: LiveServer, persona: str) -> int:
    rows = live_server.sql("SELECT team_id FROM users WHERE email = ?", (live_server.logins[persona],))
    return int(rows[0][0])  # type: ignore[call-overload]


def test_manager_lists_filters_exports_and_creates(sign_in: SignIn, live_server: LiveServer) -> None:
    page: Any = sign_in("manager", locale="en-US")
    page.goto(f"{live_server.url}/deals")
    team = _team_of(live_server, "manager")
    ids = _listed(page)
    assert ids, "the demo manager's team has deals"
    marks = ",".join("?" * len(ids))
    teams = {r[0] for r in live_server.sql(f"SELECT DISTINCT team_id FROM deals WHERE id IN ({marks})", tuple(ids))}
    assert teams == {team}
    other = live_server.sql("SELECT id FROM deals WHERE team_id <> ? ORDER BY id DESC LIMIT 1", (team,))[0][0]
    page.goto(f"{live_server.url}/deals?q=&limit=500")
    assert other not in _listed(page)

    # A filter swaps the results in place and keeps the URL bookmarkable.
    page.goto(f"{live_server.url}/deals")
    page.select_option("select[name=status]", "won")
    page.wait_for_url(re.compile(r"status=won"))
    page.wait_for_function("() => [...document.querySelectorAll('#deal-results .col-status .badge')]"
                           ".every(b => b.classList.contains('badge-won'))")
    won = _listed(page)
    assert won

    with page.expect_download() as info:
        page.click("[data-testid=export-csv]")
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    with open(download.path(), "rb") as fh:
        data = fh.read()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    # The demo users may have a saved language: headers and values in either one.
    status = next(i for i, h in enumerate(rows[0]) if h in ("Status", "状态"))
    assert len(rows) > 1 and {r[status] for r in rows[1:]} in ({"Won"}, {"赢单"})
    exported = {int(r[0]) for r in rows[1:]}
    assert set(won) <= exported
    marks = ",".join("?" * len(exported))
    assert {r[0] for r in live_server.sql(f"SELECT DISTINCT team_id FROM deals WHERE id IN ({marks})",
                                          tuple(exported))} == {team}

    # Select all on the page: the bulk bar counts them and enables its buttons.
    page.check("[data-select-all]")
    assert page.locator("[data-selected-count]").inner_text() in (f"{len(won)} selected", f"已选 {len(won)} 个")
    assert page.locator("button[value=move]").is_enabled()
    page.uncheck("[data-select-all]")
    assert page.locator("button[value=move]").is_disabled()

    page.click("[data-testid=new-deal]")
    page.fill("input[name=title]", "Browser-made deal 浏览器")
    page.fill("input[name=amount]", "88000")
    page.click("[data-testid=create-deal]")
    page.wait_for_url(re.compile(r"/deals/\d+$"))
    deal_id = int(page.url.rsplit("/", 1)[1])
    row = live_server.sql("SELECT title, amount, team_id FROM deals WHERE id = ?", (deal_id,))
    assert row and row[0][0] == "Browser-made deal 浏览器" and row[0][2] == team


def test_a_bad_title_is_named_in_the_form(sign_in: SignIn, live_server: LiveServer) -> None:
    page: Any = sign_in("rep", locale="en-US")
    page.goto(f"{live_server.url}/deals/new")
    page.fill("input[name=amount]", "not a number")
    page.fill("input[name=title]", "Has a bad amount")
    page.click("[data-testid=create-deal]")
    page.wait_for_selector("[data-testid=error-amount]")
    assert page.url.endswith("/deals/new")


def test_rows_become_cards_on_a_phone(sign_in: SignIn, live_server: LiveServer) -> None:
    page: Any = sign_in("rep", locale="zh-CN", viewport=(390, 844))
    page.goto(f"{live_server.url}/deals")
    assert page.locator(".deal-table thead").is_hidden()
    first = page.locator("#deal-results tbody tr").first
    box = first.bounding_box()
    assert box is not None and box["width"] <= 390
    assert first.locator(".col-title a").is_visible()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, "nothing scrolls sideways on a phone"
