"""Switching the language in the top bar: English and back to 简体中文, remembered."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import LiveServer, SignIn


def test_switch_to_english_and_back(sign_in: SignIn, live_server: LiveServer) -> None:
    page: Any = sign_in("rep_same_team", locale="zh-CN")
    page.goto(f"{live_server.url}/my-day")
    assert page.locator("nav.mainnav").inner_text().find("看板") >= 0
    page.click("[data-testid=lang-en]")
    page.wait_for_url("**/my-day")
    assert "Board" in page.locator("nav.mainnav").inner_text()
    assert page.locator("html").get_attribute("lang") == "en"
    page.goto(f"{live_server.url}/deals")  # the choice is saved for the user
    assert "Deals" in page.locator("nav.mainnav").inner_text()
    page.click("[data-testid=lang-zh]")
    page.wait_for_url("**/deals")
    assert "商机" in page.locator("nav.mainnav").inner_text()
    assert page.locator("html").get_attribute("lang") == "zh-CN"


def test_unauthenticated_visit_goes_to_login_and_back(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(f"{live_server.url}/deals?status=open")
    assert "/login?next=" in page.url
    page.fill("input[name=email]", live_server.logins["manager"])
    page.fill("input[name=password]", "loudou-demo")
    page.click("button[type=submit]")
    page.wait_for_url("**/deals?status=open")
    context.close()
