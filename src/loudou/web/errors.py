"""Turns errors into answers: JSON under /api (with the offending field named), a full
error page for browsers, a toast for HTMX requests, and a sign-in redirect for pages."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from loudou.errors import LoudouError
from loudou.web.pages import ANON_COOKIE, LoginRequired, anonymous_page, login_redirect
from loudou.web.templating import is_htmx, render

ERROR_NAMES = {400: "BadRequest", 401: "NotAuthenticated", 403: "PermissionDenied", 404: "NotFound",
               405: "MethodNotAllowed", 409: "Conflict", 422: "ValidationFailed", 429: "TooManyRequests"}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/openapi.json"


def _field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or "body"


def _html_error(request: Request, status: int, detail: str) -> Response:
    page = anonymous_page(request, request.cookies.get(ANON_COOKIE) or secrets.token_urlsafe(8))
    values = {"status": status, "detail": detail}
    if is_htmx(request):
        # A toast swapped out-of-band; the target element stays as it was.
        return render(page, "errors/_toast.html", values, status_code=status,
                      headers={"HX-Reswap": "none"})
    return render(page, "errors/error.html", values, status_code=status)


async def loudou_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoudouError)
    if isinstance(exc, LoginRequired):
        return login_redirect(request, exc.next_path)
    if not _is_api(request):
        return _html_error(request, exc.status_code, exc.detail)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=headers)


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field_of(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    detail = f"{first['field']}: {first['message']}"
    if not _is_api(request):
        return _html_error(request, 422, detail)
    return JSONResponse(
        {"error": "ValidationFailed", "detail": detail, "field": first["field"], "errors": errors},
        status_code=422,
    )


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if not _is_api(request):
        return _html_error(request, exc.status_code, str(exc.detail))
    return JSONResponse({"error": ERROR_NAMES.get(exc.status_code, "HTTPError"), "detail": str(exc.detail)},
                        status_code=exc.status_code, headers=getattr(exc, "headers", None))


def install(app: FastAPI) -> None:
    app.add_exception_handler(LoudouError, loudou_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
