"""Server render time of the pages at 1,000,000 deals on SQLite.

    .venv/bin/python bench/bench_pages.py [--db bench/data/bench.db] [--write]

Serves the benchmark database (filled by bench_api.py / `loudou demo --deals 1000000`)
with one uvicorn worker, signs in as a rep and as a manager, and requests each page
sequentially over loopback; reports the median and p90 time to the full response.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PASSWORD = "loudou-demo"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sign_in(base: str, email: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    r = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token, "next": "/board"})
    assert r.status_code in (200, 303), r.text
    return client


def timed(client: httpx.Client, path: str, n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, (path, r.status_code)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=str(ROOT / "bench/data/bench.db"))
    parser.add_argument("-n", type=int, default=30)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    db = Path(args.db).resolve()
    con = sqlite3.connect(db)
    rep, = con.execute("SELECT email FROM users u WHERE role='rep' ORDER BY id LIMIT 1").fetchone()
    manager, = con.execute("SELECT email FROM users WHERE role='manager' ORDER BY id LIMIT 1").fetchone()
    deal_id, = con.execute("SELECT d.id FROM deals d JOIN users u ON u.id=d.owner_id WHERE u.email=? "
                           "ORDER BY d.activity_count DESC LIMIT 1", (rep,)).fetchone()
    total, = con.execute("SELECT count(*) FROM deals").fetchone()
    con.close()
    port = free_port()
    env = {**os.environ, "LOUDOU_DATABASE_URL": f"sqlite:///{db}"}
    server = subprocess.Popen([str(BIN / "uvicorn"), "loudou.app:create_app", "--factory", "--port", str(port),
                               "--log-level", "warning", "--no-access-log"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(base + "/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        rows = []
        for persona, email in (("rep", rep), ("manager", manager)):
            client = sign_in(base, email)
            for name, path in (("board", "/board"), ("deal list", "/deals"), ("deal list, open, by amount",
                               "/deals?status=open&sort=-amount"), ("deal page", f"/deals/{deal_id}"),
                               ("my day", "/my-day")):
                if persona == "manager" and name == "deal page":
                    continue
                timed(client, path, 3)  # warm up
                p50, p90 = timed(client, path, args.n)
                rows.append(f"| {name} | {persona} | {p50:.1f} ms | {p90:.1f} ms |")
    finally:
        server.terminate()
        server.wait()
    text = "\n".join([
        f"### Pages at {total:,} deals, SQLite",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}. Command: `.venv/bin/python bench/bench_pages.py --write`. One uvicorn worker, "
        f"sequential requests over loopback, {args.n} per page after warm-up; target: median under 150 ms.",
        "",
        "| page | signed in as | median | p90 |",
        "|---|---|---|---|",
        *rows,
        "",
    ])
    print(text)
    if args.write:
        with open(ROOT / "bench/RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
