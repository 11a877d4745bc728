"""Browser tests: Debian's chromium driven by Playwright against a live server (uvicorn in
a subprocess) on a fresh demo database. Chromium must be installed (`make test` does it
as root); without it the suite fails with the command to run, it never skips."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from loudou.auth.models import User
from loudou.db import Database

CHROMIUM = "/usr/bin/chromium"
BIN = Path(sys.executable).parent
DEMO_PASSWORD = "loudou-demo"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class LiveServer:
    url: str
    db_path: Path
    logins: dict[str, str]  # persona -> e-mail (admin, manager, rep, rep_same_team, other_rep, other_manager)

    def sql(self, query: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        con = sqlite3.connect(self.db_path)
        try:
            return con.execute(query, params).fetchall()
        finally:
            con.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _personas(db_path: Path) -> dict[str, str]:
    con = sqlite3.connect(db_path)
    try:
        admin = con.execute("SELECT email FROM users WHERE role='admin' ORDER BY id LIMIT 1").fetchone()[0]
        manager, team = con.execute(
            "SELECT email, team_id FROM users WHERE role='manager' ORDER BY id LIMIT 1").fetchone()
        reps = [r[0] for r in con.execute(
            "SELECT u.email FROM users u WHERE u.role='rep' AND u.team_id=? ORDER BY "
            "(SELECT count(*) FROM deals d WHERE d.owner_id=u.id AND d.status='open') DESC", (team,))]
        other_manager, other_team = con.execute(
            "SELECT email, team_id FROM users WHERE role='manager' AND team_id<>? ORDER BY id LIMIT 1",
            (team,)).fetchone()
        other_rep = con.execute(
            "SELECT email FROM users WHERE role='rep' AND team_id=? ORDER BY id LIMIT 1", (other_team,)).fetchone()[0]
    finally:
        con.close()
    return {"admin": admin, "manager": manager, "rep": reps[0], "rep_same_team": reps[1],
            "other_rep": other_rep, "other_manager": other_manager}


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("live")
    db_path = folder / "live.db"
    env = {**os.environ, "LOUDOU_DATABASE_URL": f"sqlite:///{db_path}", "LOUDOU_SECRET_KEY": "test-secret-key"}
    subprocess.run([str(BIN / "loudou"), "demo", "--deals", "600", "--seed", "11"], env=env, check=True,
                   capture_output=True)
    port = _free_port()
    log = (folder / "server.log").open("w")
    proc = subprocess.Popen([str(BIN / "uvicorn"), "loudou.app:create_app", "--factory", "--port", str(port),
                             "--log-level", "warning"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.terminate()
        pytest.fail(f"live server did not start; see {folder / 'server.log'}")
    yield LiveServer(url=url, db_path=db_path, logins=_personas(db_path))
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install -y chromium fonts-noto-cjk` "
                    "(make test does this when run as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


SignIn = Callable[..., object]


@pytest.fixture
def sign_in(browser: object, live_server: LiveServer) -> Iterator[SignIn]:
    """sign_in("rep", locale="zh-CN", viewport=(1366, 768)) -> a Playwright page, signed in."""
    contexts: list[object] = []

    def _sign_in(persona: str, *, locale: str = "zh-CN", viewport: tuple[int, int] = (1366, 768)) -> object:
        context = browser.new_context(locale=locale,  # type: ignore[attr-defined]
                                      viewport={"width": viewport[0], "height": viewport[1]})
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{live_server.url}/login")
        page.fill("input[name=email]", live_server.logins[persona])
        page.fill("input[name=password]", DEMO_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login" not in url)
        return page

    yield _sign_in
    for c in contexts:
        c.close()  # type: ignore[attr-defined]


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    """A page client for TestClient tests, in English (users without a saved language
    follow Accept-Language)."""
    from loudou.app import create_app

    with TestClient(create_app(db), headers={"Accept-Language": "en"}) as c:
        yield c


def sign_in_page(client: TestClient, who: User) -> TestClient:
    """Sign ``who`` in through the login form (whoever was signed in is signed out)."""
    from tests.web.test_auth_pages import login

    client.cookies.clear()
    r = login(client, who.email)
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
    return client
