"""Jinja2 pages: one template per page with named blocks; HTMX requests get only the
block they ask for (jinja2-fragments). Autoescape is on for every template."""

from __future__ import annotations

import gettext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from jinja2_fragments import render_block

from loudou import __version__
from loudou.auth.models import User
from loudou.web.i18n import Formatter, translations

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"

env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(default=True, default_for_string=True),
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)


def static_url(path: str) -> str:
    # The version in the query string busts caches on upgrade; files are served long-cached.
    return f"/static/{path}?v={__version__}"


env.globals["static_url"] = static_url


@dataclass
class Page:
    """What every template can use: the viewer, their locale, formatters and CSRF token."""

    request: Request
    user: User | None
    locale: str
    fmt: Formatter
    csrf_token: str
    tr: gettext.NullTranslations

    def gettext(self, message: str, **params: Any) -> str:
        text = self.tr.gettext(message)
        return text % params if params else text

    def name_of(self, obj: Any) -> str:
        """A stage's, pipeline's, channel's or reason's name in the page's language."""
        if obj is None:
            return ""
        english = getattr(obj, "name_en", None)
        return str(english) if self.locale == "en" and english else str(obj.name)

    def ngettext(self, singular: str, plural: str, n: int, **params: Any) -> str:
        text = self.tr.ngettext(singular, plural, n)
        return text % {"num": n, **params}


def _context(page: Page, values: dict[str, Any]) -> dict[str, Any]:
    return {
        "page": page,
        "request": page.request,
        "user": page.user,
        "locale": page.locale,
        "fmt": page.fmt,
        "csrf_token": page.csrf_token,
        "_": page.gettext,
        "gettext": page.gettext,
        "ngettext": page.ngettext,
        "name_of": page.name_of,
        **values,
    }


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(page: Page, template: str, values: dict[str, Any] | None = None, *, block: str | None = None,
           status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    ctx = _context(page, values or {})
    if block is not None:
        html = render_block(env, template, block, ctx)
    else:
        html = env.get_template(template).render(ctx)
    return HTMLResponse(html, status_code=status_code, headers=headers)


def make_page(request: Request, user: User | None, locale: str, csrf_token: str) -> Page:
    return Page(request=request, user=user, locale=locale,
                fmt=Formatter(locale, user.timezone if user else None),
                csrf_token=csrf_token, tr=translations(locale))
