"""The deal page in Chromium against a live server on a demo database (tests/web/conftest.py).

Demo users keep their saved language (zh-CN), so assertions use data-testid hooks, CSS
state classes and names read from the database rather than English words. Each test
works on its own deal so they can share the session's live server.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any

from tests.web.conftest import LiveServer, SignIn


def _deal_of(live_server: LiveServer, persona: str, where: str = "1=1", order: str = "d.id") -> int:
    rows = live_server.sql(
        "SELECT d.id FROM deals d JOIN users u ON u.id = d.owner_id JOIN stages s ON s.id = d.stage_id "
        f"WHERE u.email = ? AND d.status = 'open' AND {where} ORDER BY {order} LIMIT 1",
        (live_server.logins[persona],))
    assert rows, f"the demo has no open deal of {persona} with {where}"
    return int(rows[0][0])  # type: ignore[call-overload]


def _first_entry(page: Any) -> Any:
    return page.locator("[data-testid=tl-item]").first


def test_rep_logs_a_call_and_sees_it_at_the_top_of_the_timeline(live_server: LiveServer, sign_in: SignIn) -> None:
    deal_id = _deal_of(live_server, "rep")
    page: Any = sign_in("rep")
    page.goto(f"{live_server.url}/deals/{deal_id}")
    page.evaluate("window.__stayed = true")  # gone if the page reloads instead of swapping in place
    subject = f"Call {uuid.uuid4().hex[:8]}"
    page.check("#log-form input[name=kind][value=call]")
    page.fill("#log-subject", subject)
    page.fill("#log-body", "Asked for a revised quote")
    page.press("#log-body", "Control+Enter")  # keyboard: log without leaving the note
    top = _first_entry(page)
    top.locator(".tl-title", has_text=subject).wait_for()
    assert top.get_attribute("data-kind") == "activity"
    assert page.evaluate("window.__stayed") is True
    assert page.input_value("#log-subject") == ""  # a fresh form for the next one
    stored = live_server.sql("SELECT kind, body FROM activities WHERE deal_id = ? AND subject = ?", (deal_id, subject))
    assert stored == [("call", "Asked for a revised quote")]


def test_follow_up_due_today_is_listed_on_my_day(live_server: LiveServer, sign_in: SignIn) -> None:
    deal_id = _deal_of(live_server, "rep")
    tz = live_server.sql("SELECT timezone FROM users WHERE email = ?", (live_server.logins["rep"],))[0][0]
    today = dt.datetime.now(zoneinfo.ZoneInfo(str(tz or "Asia/Shanghai"))).date()
    page: Any = sign_in("rep")
    page.goto(f"{live_server.url}/deals/{deal_id}")
    title = f"Follow up {uuid.uuid4().hex[:8]}"
    page.fill("#task-title", title)
    page.fill("#task-due", today.isoformat())
    page.click("[data-testid=task-submit]")
    page.locator("[data-testid=deal-tasks] .task-title", has_text=title).wait_for()
    page.goto(f"{live_server.url}/my-day")
    assert page.get_by_text(title).count() >= 1


def test_rep_loses_a_deal_with_a_reason(live_server: LiveServer, sign_in: SignIn) -> None:
    deal_id = _deal_of(live_server, "rep", order="d.id DESC")
    page: Any = sign_in("rep")
    page.goto(f"{live_server.url}/deals/{deal_id}")
    page.click("[data-testid=lose-open]")
    page.click("[data-testid=lose-submit]")  # no reason yet: the browser asks for it
    assert page.locator("[data-testid=deal-status]").get_attribute("class") == "badge badge-open"
    page.select_option("#lose-reason", index=1)
    page.fill("#lose-note", "Chose a cheaper supplier")
    page.click("[data-testid=lose-submit]")
    page.locator("[data-testid=deal-status].badge-lost").wait_for()
    top = _first_entry(page)
    assert top.get_attribute("class") is not None and "tl-t-lose" in top.get_attribute("class")
    assert "Chose a cheaper supplier" in top.inner_text()
    status, reason = live_server.sql("SELECT status, lost_reason_id FROM deals WHERE id = ?", (deal_id,))[0]
    assert status == "lost" and reason is not None


def test_rep_opening_another_teams_deal_gets_404(live_server: LiveServer, sign_in: SignIn) -> None:
    other = _deal_of(live_server, "other_rep")
    page: Any = sign_in("rep")
    response = page.goto(f"{live_server.url}/deals/{other}")
    assert response.status == 404
    title = live_server.sql("SELECT title FROM deals WHERE id = ?", (other,))[0][0]
    assert str(title) not in page.content()


def test_manager_opens_a_team_members_deal(live_server: LiveServer, sign_in: SignIn) -> None:
    deal_id = _deal_of(live_server, "rep_same_team")
    page: Any = sign_in("manager")
    response = page.goto(f"{live_server.url}/deals/{deal_id}")
    assert response.status == 200
    title = live_server.sql("SELECT title FROM deals WHERE id = ?", (deal_id,))[0][0]
    assert page.locator("[data-testid=deal-title]").inner_text() == title


def test_stage_move_from_the_page_puts_the_transition_on_top(live_server: LiveServer, sign_in: SignIn) -> None:
    # From the first stage to the second: the default funnel asks nothing for it.
    deal_id = _deal_of(live_server, "rep", where="s.position = (SELECT min(position) FROM stages "
                       "WHERE pipeline_id = d.pipeline_id AND is_active)", order="d.id DESC")
    first, second = live_server.sql(
        "SELECT s.name FROM stages s JOIN deals d ON d.pipeline_id = s.pipeline_id WHERE d.id = ? AND s.is_active "
        "ORDER BY s.position LIMIT 2", (deal_id,))
    page: Any = sign_in("rep")
    page.goto(f"{live_server.url}/deals/{deal_id}")
    page.click("[data-testid=move-submit]")  # the next stage is preselected
    page.locator(".stagebar .step-current", has_text=str(second[0])).wait_for()
    top = _first_entry(page)
    assert top.get_attribute("data-kind") == "transition"
    text = top.locator("[data-testid=tl-transition]").inner_text()
    assert str(first[0]) in text and str(second[0]) in text
    stage = live_server.sql("SELECT s.name FROM deals d JOIN stages s ON s.id = d.stage_id WHERE d.id = ?",
                            (deal_id,))
    assert stage == [second]


def test_phone_layout_does_not_scroll_sideways(live_server: LiveServer, sign_in: SignIn) -> None:
    deal_id = _deal_of(live_server, "rep")
    page: Any = sign_in("rep", viewport=(390, 844))
    page.goto(f"{live_server.url}/deals/{deal_id}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator("#log-form").is_visible()
