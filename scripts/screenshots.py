#!/usr/bin/env python3
"""Screenshots of every page at 1366×768 and 390×844, in 简体中文 and English.

    make screenshots          # writes docs/screenshots/*.png and docs/screenshots/README.md

Builds a fresh demo database in a temporary folder, serves it on a free port and drives
Debian's chromium with Playwright, signed in as the persona each page is for."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
BIN = Path(sys.executable).parent
PASSWORD = "loudou-demo"
VIEWPORTS = {"laptop": (1366, 768), "phone": (390, 844)}
LOCALES = {"zh-CN": "zh", "en": "en"}
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pages(db: Path) -> list[tuple[str, str, str]]:
    """(name, persona role, path) for every page worth a screenshot."""
    con = sqlite3.connect(db)
    (rep_id,) = con.execute(
        "SELECT u.id FROM users u WHERE role='rep' ORDER BY "
        "(SELECT count(*) FROM deals d WHERE d.owner_id=u.id AND d.status='open') DESC LIMIT 1").fetchone()
    deal_id = con.execute("SELECT id FROM deals WHERE owner_id=? AND status='open' ORDER BY activity_count DESC "
                          "LIMIT 1", (rep_id,)).fetchone()[0]
    company_id = con.execute("SELECT company_id FROM deals WHERE id=?", (deal_id,)).fetchone()[0]
    contact_id = con.execute("SELECT contact_id FROM deals WHERE owner_id=? AND contact_id IS NOT NULL LIMIT 1",
                             (rep_id,)).fetchone()[0]
    con.close()
    found = [
        ("login", "", "/login"),
        ("board", "rep", "/board"),
        ("deals", "rep", "/deals"),
        ("deal", "rep", f"/deals/{deal_id}"),
        ("companies", "rep", "/companies"),
        ("contacts", "rep", "/contacts"),
        ("my-day", "rep", "/my-day"),
        ("search", "rep", "/search?q=zh"),
        ("settings", "admin", "/settings"),
        ("dashboard", "manager", "/dashboard"),
        ("dashboard-rep", "rep", "/dashboard"),
        ("reports", "manager", "/reports"),
    ]
    from loudou.analytics.catalog import MENU

    found += [(f"report-{name}", "manager", f"/reports/{name}") for name in MENU]
    if company_id:
        found.insert(5, ("company", "rep", f"/companies/{company_id}"))
    if contact_id:
        found.insert(7, ("contact", "rep", f"/contacts/{contact_id}"))
    extra = os.environ.get("SCREENSHOT_EXTRA", "")  # e.g. "dashboard:manager:/dashboard"
    for item in filter(None, extra.split(",")):
        name, role, path = item.split(":", 2)
        found.append((name, role, path))
    return found


def login_email(db: Path, role: str) -> str:
    con = sqlite3.connect(db)
    if role == "rep":
        row = con.execute("SELECT email FROM users u WHERE role='rep' ORDER BY "
                          "(SELECT count(*) FROM deals d WHERE d.owner_id=u.id AND d.status='open') DESC LIMIT 1")
    else:
        row = con.execute("SELECT email FROM users WHERE role=? ORDER BY id LIMIT 1", (role,))
    email = str(row.fetchone()[0])
    con.close()
    return email


def sign_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "shots.db"
        env = {**os.environ, "LOUDOU_DATABASE_URL": f"sqlite:///{db}", "LOUDOU_SECRET_KEY": "screenshots"}
        subprocess.run([str(BIN / "loudou"), "demo", "--deals", "3000", "--seed", "42"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        port = free_port()
        server = subprocess.Popen([str(BIN / "uvicorn"), "loudou.app:create_app", "--factory", "--port", str(port),
                                   "--log-level", "warning"], env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    httpx.get(base + "/health", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            rows = []
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                for name, role, path in pages(db):
                    cells = []
                    for locale, tag in LOCALES.items():
                        for vp_name, (w, h) in VIEWPORTS.items():
                            context = browser.new_context(locale=locale, viewport={"width": w, "height": h})
                            page = context.new_page()
                            if role:
                                sign_in(page, base, login_email(db, role))
                                # Demo users have a saved language, which wins over the
                                # browser's: switch it the way a user would.
                                switch = page.locator(f"[data-testid=lang-{'en' if tag == 'en' else 'zh'}]")
                                if switch.count():
                                    switch.first.click()
                                    page.wait_for_load_state("networkidle")
                            page.goto(base + path)
                            page.wait_for_load_state("networkidle")
                            file = f"{name}-{tag}-{vp_name}.png"
                            page.screenshot(path=str(OUT / file))
                            context.close()
                            cells.append(f"[{tag} {vp_name}]({file})")
                            print("wrote", file)
                    rows.append(f"| {name} | `{path.split('?')[0]}` | " + " · ".join(cells) + " |")
                browser.close()
        finally:
            server.terminate()
            server.wait()
    (OUT / "README.md").write_text(
        "# Screenshots\n\nMade by `make screenshots` on a fresh demo database (3,000 deals), "
        "at 1366×768 (laptop) and 390×844 (phone), in 简体中文 (zh) and English (en).\n\n"
        "| page | URL | screenshots |\n|---|---|---|\n" + "\n".join(rows) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
