"""Languages: 简体中文 and English, chosen by the user's setting, else a language cookie,
else Accept-Language. Message ids are English; zh-CN catalogs are gettext .po files under
``loudou/translations/zh_CN/`` (one per area, merged at start-up, compiled in memory so no
build step is needed). Numbers, money, dates and times are formatted with Babel for the
locale and shown in the user's time zone."""

from __future__ import annotations

import datetime as dt
import gettext
import io
import zoneinfo
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_compact_currency, format_currency, format_decimal, format_percent
from babel.support import Translations

SUPPORTED = ("zh-CN", "en")
DEFAULT_TIMEZONE = "Asia/Shanghai"
TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"


def _babel(locale: str) -> str:
    return locale.replace("-", "_")


def negotiate(user_locale: str | None, cookie_locale: str | None, accept_language: str | None,
              default: str = "zh-CN") -> str:
    for choice in (user_locale, cookie_locale):
        if choice in SUPPORTED:
            return choice
    if accept_language:
        weighted = []
        for part in accept_language.split(","):
            lang, _, q = part.strip().partition(";q=")
            try:
                weight = float(q) if q else 1.0
            except ValueError:
                weight = 0.0
            weighted.append((weight, lang.strip().lower()))
        for _weight, lang in sorted(weighted, key=lambda x: -x[0]):
            if lang.startswith("zh"):
                return "zh-CN"
            if lang.startswith("en"):
                return "en"
    return default if default in SUPPORTED else "zh-CN"


@lru_cache(maxsize=4)
def translations(locale: str) -> gettext.NullTranslations:
    """English is the message id itself; zh-CN merges every .po file of its folder."""
    folder = TRANSLATIONS_DIR / _babel(locale)
    merged: Translations | None = None
    for po_path in sorted(folder.glob("*.po")):
        with po_path.open("rb") as fh:
            catalog = read_po(fh, locale=_babel(locale))
        buf = io.BytesIO()
        write_mo(buf, catalog)
        buf.seek(0)
        part = Translations(buf)
        merged = part if merged is None else merged.merge(part)
    return merged if merged is not None else gettext.NullTranslations()


@lru_cache(maxsize=8192)
def _money(value: Decimal | float, currency: str, locale: str, compact: bool) -> str:
    # Babel parses its pattern on every call (~80 µs); a board shows hundreds of amounts,
    # most of them repeated, so the formatted strings are cached.
    if compact:
        return format_compact_currency(value, currency, locale=locale, fraction_digits=1)
    return format_currency(value, currency, locale=locale, format_type="standard", currency_digits=False,
                           format="¤#,##0")


class Formatter:
    """Locale- and time-zone-aware formatting for templates."""

    def __init__(self, locale: str, timezone: str | None) -> None:
        self.locale = locale
        self.babel_locale = Locale.parse(_babel(locale))
        try:
            self.tz = zoneinfo.ZoneInfo(timezone or DEFAULT_TIMEZONE)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            self.tz = zoneinfo.ZoneInfo(DEFAULT_TIMEZONE)

    def number(self, value: float | int | Decimal | None, digits: int = 0) -> str:
        if value is None:
            return "–"
        fmt = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=fmt, locale=self.babel_locale)

    def percent(self, value: float | None, digits: int = 1) -> str:
        if value is None:
            return "–"
        fmt = "#,##0" + ("." + "0" * digits if digits else "") + "%"
        return format_percent(value, format=fmt, locale=self.babel_locale)

    def money(self, value: float | Decimal | None, currency: str = "CNY") -> str:
        """Whole units, full figure: ¥125,000 (zh-CN) / CN¥125,000 (en)."""
        if value is None:
            return "–"
        return _money(value, currency, _babel(self.locale), False)

    def money_short(self, value: float | Decimal | None, currency: str = "CNY") -> str:
        """Compact: ¥12.5万 in zh-CN, CN¥125K in English."""
        if value is None:
            return "–"
        if abs(float(value)) < 10_000:
            return self.money(value, currency)
        return _money(value, currency, _babel(self.locale), True)

    def local(self, value: dt.datetime) -> dt.datetime:
        return value.astimezone(self.tz)

    def date(self, value: dt.date | dt.datetime | None, format: str = "medium") -> str:
        if value is None:
            return "–"
        if isinstance(value, dt.datetime):
            value = self.local(value).date()
        return format_date(value, format=format, locale=self.babel_locale)

    def datetime(self, value: dt.datetime | None, format: str = "medium") -> str:
        if value is None:
            return "–"
        return format_datetime(value, format=format, tzinfo=self.tz, locale=self.babel_locale)

    def days(self, value: float | None) -> str:
        return "–" if value is None else self.number(value, 0 if value >= 10 else 1)

    def today(self) -> dt.date:
        return dt.datetime.now(self.tz).date()
