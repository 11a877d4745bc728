"""Sign-in, sessions, CSRF, throttling and safe redirects, through the HTTP interface."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from loudou.db import Database
from loudou.web.sessions import safe_next
from tests.conftest import PASSWORD, People


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "form without a CSRF token"
    return m.group(1)


def login(client: TestClient, email: str, password: str = PASSWORD, next_path: str = "/board") -> object:
    form = client.get("/login", params={"next": next_path})
    return client.post("/login", data={"email": email, "password": password, "next": next_path,
                                       "csrf_token": csrf_of(form.text)}, follow_redirects=False)


def test_anonymous_page_visit_redirects_to_login_with_next(client: TestClient) -> None:
    r = client.get("/deals?status=open", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/deals%3Fstatus%3Dopen"


def test_htmx_visit_gets_hx_redirect(client: TestClient) -> None:
    r = client.get("/deals", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.status_code == 204 and r.headers["hx-redirect"].startswith("/login?next=")


def test_login_sets_a_safe_cookie_and_redirects(client: TestClient, people: People) -> None:
    r = login(client, "carol@example.com", next_path="/my-day")
    assert r.status_code == 303 and r.headers["location"] == "/my-day"  # type: ignore[attr-defined]
    cookie = r.headers["set-cookie"]  # type: ignore[attr-defined]
    assert "loudou_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie


def test_wrong_password_says_so_in_the_visitors_language(client: TestClient, people: People) -> None:
    r = login(client, "carol@example.com", password="nope-nope")
    assert r.status_code == 401 and "邮箱或密码错误" in r.text  # type: ignore[attr-defined]
    client.headers["Accept-Language"] = "en-US,en;q=0.9"
    r = login(client, "carol@example.com", password="nope-nope")
    assert r.status_code == 401 and "Wrong e-mail or password" in r.text  # type: ignore[attr-defined]


def test_login_form_needs_its_csrf_token(client: TestClient, people: People) -> None:
    client.get("/login")
    r = client.post("/login", data={"email": "carol@example.com", "password": PASSWORD, "csrf_token": "forged"},
                    follow_redirects=False)
    assert r.status_code == 403 and "loudou_session" not in r.headers.get("set-cookie", "")


def test_repeated_failures_are_throttled(client: TestClient, people: People) -> None:
    for _ in range(5):
        login(client, "carol@example.com", password="wrong-pass")
    r = login(client, "carol@example.com")  # even the right password waits now
    assert r.status_code == 429  # type: ignore[attr-defined]


def test_logout_needs_csrf_and_ends_session(client: TestClient, people: People) -> None:
    login(client, "carol@example.com")
    assert client.post("/logout", follow_redirects=False).status_code == 403
    page = client.get("/login", follow_redirects=True)
    r = client.post("/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/my-day", follow_redirects=False).status_code == 303


def test_disabled_user_loses_the_session(client: TestClient, db: Database, people: People) -> None:
    login(client, "carol@example.com")
    with db.session_scope() as s:
        from loudou.auth.models import User

        user = s.get(User, people.carol.id)
        assert user is not None
        user.is_active = False
    assert client.get("/login", follow_redirects=False).status_code == 200  # shown the form again


@pytest.mark.parametrize("target,expected", [
    ("/deals?x=1", "/deals?x=1"), ("https://evil.example/", "/board"), ("//evil.example", "/board"),
    ("/\\evil.example", "/board"), ("javascript:alert(1)", "/board"), ("", "/board"), ("/ok\r\nX: y", "/board"),
])
def test_safe_next(target: str, expected: str) -> None:
    assert safe_next(target) == expected


@pytest.fixture
def client(db: Database) -> TestClient:
    from loudou.app import create_app

    return TestClient(create_app(db))
