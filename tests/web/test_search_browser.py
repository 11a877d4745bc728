"""The global search in a browser, on the demo database: a rep types the pinyin initials
of one of their contacts into the top bar and finds the Chinese name — and only their
own records."""

from __future__ import annotations

from typing import Any

from pypinyin import Style, lazy_pinyin

from tests.web.conftest import LiveServer, SignIn


def _initials(name: str) -> str:
    return "".join(lazy_pinyin(name, style=Style.FIRST_LETTER)).lower()


def test_a_rep_finds_a_contact_by_pinyin_initials(sign_in: SignIn, live_server: LiveServer) -> None:
    email = live_server.logins["rep"]
    own = [str(r[0]) for r in live_server.sql(
        "SELECT c.name FROM contacts c JOIN users u ON u.id = c.owner_id WHERE u.email = ? ORDER BY c.id", (email,))]
    # A name of three characters: its initials are specific enough to land on the first page.
    name = next(n for n in own if len(n) == 3)
    page: Any = sign_in("rep", locale="zh-CN")
    box = page.locator("header form.search input[name=q]")
    box.fill(_initials(name))
    box.press("Enter")
    page.wait_for_url(lambda url: "/search?q=" in url)
    contacts = page.locator("[data-testid=group-contacts]")
    contacts.get_by_text(name, exact=True).first.wait_for()
    shown = contacts.locator("a.hit-title").all_inner_texts()
    assert name in shown
    assert set(shown) <= set(own), "the search showed contacts the rep may not see"


def test_search_finds_a_phone_typed_with_spaces(sign_in: SignIn, live_server: LiveServer) -> None:
    email = live_server.logins["rep"]
    name, phone = next((str(n), str(p)) for n, p in live_server.sql(
        "SELECT c.name, c.phone FROM contacts c JOIN users u ON u.id = c.owner_id "
        "WHERE u.email = ? AND c.phone LIKE '+861%' ORDER BY c.id", (email,)))
    national = phone.removeprefix("+86")
    page: Any = sign_in("rep", locale="en", viewport=(390, 844))
    box = page.locator("header form.search input[name=q]")
    box.fill(f"{national[:3]} {national[3:7]} {national[7:]}")
    box.press("Enter")
    page.locator("[data-testid=group-contacts]").get_by_text(name, exact=True).first.wait_for()
