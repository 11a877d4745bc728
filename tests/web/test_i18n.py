"""Both languages complete; language negotiation; locale formatting."""

from __future__ import annotations

import datetime as dt

import pytest

from loudou.web.i18n import Formatter, negotiate
from loudou.web.i18n_catalog import missing_translations, used_messages


def test_every_message_has_a_chinese_translation() -> None:
    assert len(used_messages()) > 20
    missing = missing_translations("zh-CN")
    assert missing == [], "untranslated (run scripts/i18n_missing.py):\n" + "\n".join(
        f"{where}: {msgid}" for msgid, where in missing)


@pytest.mark.parametrize("user,cookie,header,expected", [
    ("en", "zh-CN", "zh-CN,zh;q=0.9", "en"),
    (None, "en", "zh-CN", "en"),
    (None, None, "en-US,en;q=0.9,zh;q=0.5", "en"),
    (None, None, "fr-FR,zh-TW;q=0.8,en;q=0.5", "zh-CN"),
    (None, None, "de-DE", "zh-CN"),
    (None, None, None, "zh-CN"),
    (None, None, "en;q=0.2,zh;q=0.9", "zh-CN"),
])
def test_negotiation(user: str | None, cookie: str | None, header: str | None, expected: str) -> None:
    assert negotiate(user, cookie, header) == expected


def test_money_and_dates_are_formatted_for_the_locale() -> None:
    zh, en = Formatter("zh-CN", "Asia/Shanghai"), Formatter("en", "America/New_York")
    assert zh.money(125000) == "¥125,000"
    assert zh.money_short(125000) == "¥12.5万"
    assert en.money_short(125000) == "CN¥125K"
    moment = dt.datetime(2026, 3, 31, 17, 30, tzinfo=dt.UTC)
    assert zh.date(moment) == "2026年4月1日"  # already the next day in Shanghai
    assert en.date(moment) == "Mar 31, 2026"
    assert zh.percent(0.634) == "63.4%"
