"""Sign in, sign out, and the language switch."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from loudou.auth import service as auth_service
from loudou.auth.models import User
from loudou.auth.schemas import UserUpdate
from loudou.web.deps import DbSession
from loudou.web.i18n import SUPPORTED
from loudou.web.pages import (
    ANON_COOKIE,
    CurrentPage,
    anonymous_page,
    check_anonymous_csrf,
    codec,
    hx_redirect,
    session_user,
)
from loudou.web.sessions import COOKIE, LOCALE_COOKIE, MAX_AGE_S, safe_next
from loudou.web.templating import render

router = APIRouter(include_in_schema=False)


def _cookie_kwargs(request: Request) -> dict[str, object]:
    return {"httponly": True, "samesite": "lax", "secure": request.url.scheme == "https", "path": "/"}


def _login_form(request: Request, next_path: str, *, email: str = "", error: str | None = None,
                status_code: int = 200) -> Response:
    anon = request.cookies.get(ANON_COOKIE) or secrets.token_urlsafe(24)
    page = anonymous_page(request, anon)
    response = render(page, "auth/login.html", {"next": next_path, "email": email, "error": error},
                      status_code=status_code)
    response.set_cookie(ANON_COOKIE, anon, max_age=3600 * 12, **_cookie_kwargs(request))  # type: ignore[arg-type]
    return response


@router.get("/login", name="login", response_class=HTMLResponse)
def login_page(request: Request, session: DbSession, next: str | None = None) -> Response:
    if session_user(request, session) is not None:
        return hx_redirect(request, safe_next(next))
    return _login_form(request, safe_next(next))


@router.post("/login", name="login_submit")
def login_submit(
    request: Request,
    session: DbSession,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/board",
) -> Response:
    check_anonymous_csrf(request, csrf_token)
    throttle = request.app.state.login_throttle
    client = request.client.host if request.client else "unknown"
    keys = (f"email:{email.strip().lower()}", f"ip:{client}")
    page = anonymous_page(request, request.cookies.get(ANON_COOKIE, ""))
    wait = throttle.blocked_for(*keys)
    if wait:
        minutes = max(1, wait // 60)
        return _login_form(request, safe_next(next), email=email, status_code=429, error=page.gettext(
            "Too many failed attempts. Try again in %(minutes)s minutes.", minutes=minutes))
    user = auth_service.authenticate(session, email, password)
    if user is None:
        throttle.fail(*keys)
        return _login_form(request, safe_next(next), email=email, status_code=401,
                           error=page.gettext("Wrong e-mail or password."))
    throttle.succeed(*keys)
    response = hx_redirect(request, safe_next(next))
    response.set_cookie(COOKIE, codec(request).issue(user), max_age=MAX_AGE_S,
                        **_cookie_kwargs(request))  # type: ignore[arg-type]
    return response


@router.post("/logout", name="logout")
def logout(request: Request, page: CurrentPage) -> Response:
    response = hx_redirect(request, "/login")
    response.delete_cookie(COOKIE, path="/")
    return response


@router.post("/language", name="language")
def switch_language(request: Request, page: CurrentPage, session: DbSession,
                    locale: Annotated[str, Form()], next: Annotated[str, Form()] = "/board") -> Response:
    """Save the signed-in user's language and remember it in a cookie."""
    chosen = locale if locale in SUPPORTED else "zh-CN"
    assert page.user is not None
    user = session.get(User, page.user.id)
    if user is not None and user.locale != chosen:
        auth_service.update_user(session, user, user.id, UserUpdate(version=user.version, locale=chosen))
    response = hx_redirect(request, safe_next(next))
    response.set_cookie(LOCALE_COOKIE, chosen, max_age=365 * 24 * 3600, **_cookie_kwargs(request))  # type: ignore[arg-type]
    return response
