"""Page plumbing: who is signed in, which language, CSRF on every unsafe request, and
the redirects and error pages of the HTML side of the app."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from loudou.auth.models import User
from loudou.config import get_settings
from loudou.errors import LoudouError, PermissionDenied
from loudou.web.deps import DbSession
from loudou.web.i18n import negotiate
from loudou.web.sessions import COOKIE, CSRF_FIELD, CSRF_HEADER, LOCALE_COOKIE, SessionCodec
from loudou.web.templating import Page, is_htmx, make_page

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class LoginRequired(LoudouError):
    status_code = 401

    def __init__(self, next_path: str) -> None:
        super().__init__("please sign in")
        self.next_path = next_path


class CsrfFailed(LoudouError):
    status_code = 403


def codec(request: Request) -> SessionCodec:
    c: SessionCodec = request.app.state.session_codec
    return c


def session_user(request: Request, session: Session) -> User | None:
    data = codec(request).read(request.cookies.get(COOKIE))
    if data is None:
        return None
    user = session.get(User, data.user_id)
    return user if codec(request).still_valid(data, user) else None


def page_locale(request: Request, user: User | None) -> str:
    return negotiate(user.locale if user else None, request.cookies.get(LOCALE_COOKIE),
                     request.headers.get("accept-language"), get_settings().default_locale)


async def _check_csrf(request: Request) -> None:
    if request.method not in UNSAFE_METHODS:
        return
    token = request.headers.get(CSRF_HEADER)
    if token is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    if not codec(request).check_csrf(request.cookies.get(COOKIE), token):
        raise CsrfFailed("the form expired or did not come from this site; reload the page and try again")


async def current_page(request: Request, session: DbSession) -> Page:
    """The signed-in viewer's page context; anonymous visitors go to /login?next=…"""
    user = session_user(request, session)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    await _check_csrf(request)
    cookie = request.cookies.get(COOKIE, "")
    return make_page(request, user, page_locale(request, user), codec(request).csrf_token(cookie))


CurrentPage = Annotated[Page, Depends(current_page)]


async def admin_page(page: CurrentPage) -> Page:
    if page.user is None or page.user.role.value != "admin":
        raise PermissionDenied("only an admin may open the settings")
    return page


AdminPage = Annotated[Page, Depends(admin_page)]


ANON_COOKIE = "loudou_anon"


def anonymous_page(request: Request, anon_id: str) -> Page:
    """Pages before sign-in: the CSRF token is bound to a random anonymous cookie."""
    return make_page(request, None, page_locale(request, None), codec(request).csrf_token(anon_id))


def check_anonymous_csrf(request: Request, token: str | None) -> None:
    if not codec(request).check_csrf(request.cookies.get(ANON_COOKIE), token):
        raise CsrfFailed("the form expired or did not come from this site; reload the page and try again")


def login_redirect(request: Request, next_path: str) -> Response:
    url = "/login?next=" + quote(next_path, safe="/")
    return hx_redirect(request, url)


def hx_redirect(request: Request, url: str) -> Response:
    """HTMX follows HX-Redirect; everyone else a 303 See Other."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)

