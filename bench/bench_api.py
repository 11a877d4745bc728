"""API benchmark at 1,000,000 deals on SQLite (issue: GET one deal, a filtered page of 50).

    .venv/bin/python bench/bench_api.py [--db bench/data/bench.db] [--deals 1000000]

1. fills the database with `loudou demo` if it holds no deals (timed);
2. times in-process (ASGI, no network) GET one deal and a filtered page of 50;
3. serves the app with uvicorn (1 worker) and loads it over loopback with wrk: p50 at one
   connection, requests/s at 32 connections; the same for the bare reference app
   (bench/reference_app.py: sqlite3 + a minimal route, no auth, no policy);
4. prints a Markdown table (and appends it to bench/RESULTS.md with --write).

Authentication and the access policy are on: requests carry a manager's bearer token, so
every query is narrowed to the manager's team.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PORT_APP, PORT_REF = 18731, 18732


def run(cmd: list[str], env: dict[str, str]) -> str:
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return out.stdout


def fill(db_path: Path, deals: int, env: dict[str, str]) -> float | None:
    if db_path.exists():
        con = sqlite3.connect(db_path)
        try:
            n = con.execute("SELECT count(*) FROM deals").fetchone()[0]
        except sqlite3.OperationalError:
            n = 0
        con.close()
        if n >= deals:
            return None
    db_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    subprocess.run([str(BIN / "loudou"), "demo", "--deals", str(deals), "--seed", "7", "--reset"], env=env,
                   check=True)
    return time.perf_counter() - t0


def pick_viewer(db_path: Path) -> tuple[str, int, int, list[int]]:
    """A manager, their team, the team's busiest open stage, and ids of their team's deals."""
    con = sqlite3.connect(db_path)
    email, team_id = con.execute("SELECT email, team_id FROM users WHERE role='manager' ORDER BY id LIMIT 1").fetchone()
    stage_id = con.execute(
        "SELECT stage_id FROM deals WHERE team_id=? AND status='open' GROUP BY stage_id ORDER BY count(*) DESC LIMIT 1",
        (team_id,),
    ).fetchone()[0]
    ids = [r[0] for r in con.execute("SELECT id FROM deals WHERE team_id=? ORDER BY random() LIMIT 2000", (team_id,))]
    con.close()
    return email, team_id, stage_id, ids


def in_process(env: dict[str, str], token: str, ids: list[int], list_url: str, n: int = 2000) -> dict[str, float]:
    os.environ.update(env)
    from loudou.app import create_app

    app = create_app()
    headers = {"Authorization": f"Bearer {token}"}

    async def go() -> dict[str, float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            out: dict[str, float] = {}
            for name, urls in (("get", [f"/api/v1/deals/{random.choice(ids)}" for _ in range(n)]),
                               ("list", [list_url] * (n // 2))):
                times = []
                for url in urls:
                    t0 = time.perf_counter()
                    r = await client.get(url, headers=headers)
                    times.append(time.perf_counter() - t0)
                    assert r.status_code == 200, r.text
                out[name] = statistics.median(times[len(times) // 10:]) * 1000
            return out

    return asyncio.run(go())


def wait_up(port: int) -> None:
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


def wrk(url_path: str, port: int, conns: int, token: str | None, ids: list[int] | None, seconds: int) -> dict[str, float]:
    header = f'wrk.headers["Authorization"] = "Bearer {token}"\n' if token else ""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        if ids:
            script.write(header + "ids = {" + ",".join(map(str, ids)) + "}\n"
                         "request = function()\n"
                         f'  return wrk.format("GET", "{url_path}" .. ids[math.random(#ids)])\nend\n')
        else:
            script.write(header + f'request = function() return wrk.format("GET", "{url_path}") end\n')
    out = subprocess.run(["wrk", "-t1" if conns == 1 else "-t2", f"-c{conns}", f"-d{seconds}s", "--latency",
                          "-s", script.name, f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    assert p50, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{non2xx.group(1)} failed responses:\n{out}")
    return {"rps": rps, "p50_ms": float(p50.group(1)) * scale}


def serve(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=str(ROOT / "bench/data/bench.db"))
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--write", action="store_true", help="append the results to bench/RESULTS.md")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed for the HTTP figures: apt-get install -y wrk")
    db_path = Path(args.db).resolve()
    env = {**os.environ, "LOUDOU_DATABASE_URL": f"sqlite:///{db_path}"}
    fill_s = fill(db_path, args.deals, env)
    email, team_id, stage_id, ids = pick_viewer(db_path)
    token = run([str(BIN / "loudou"), "token", "create", "--email", email, "--name", "bench"], env).strip().splitlines()[-1]
    list_url = f"/api/v1/deals?team_id={team_id}&stage_id={stage_id}&status=open&limit=50"
    counts = sqlite3.connect(db_path).execute(
        "SELECT (SELECT count(*) FROM deals), (SELECT count(*) FROM stage_transitions),"
        " (SELECT count(*) FROM activities)").fetchone()

    inproc = in_process(env, token, ids, list_url)

    results: dict[str, dict[str, float]] = {}
    app = serve([str(BIN / "uvicorn"), "loudou.app:create_app", "--factory", "--port", str(PORT_APP),
                 "--no-access-log", "--log-level", "warning"], env)
    ref = serve([str(BIN / "uvicorn"), "reference_app:app", "--app-dir", str(ROOT / "bench"), "--port",
                 str(PORT_REF), "--no-access-log", "--log-level", "warning"], {**env, "BENCH_SQLITE_PATH": str(db_path)})
    try:
        wait_up(PORT_APP)
        wait_up(PORT_REF)
        ref_list = f"/deals?team_id={team_id}&stage_id={stage_id}"
        for conns in (1, 32):
            results[f"get c{conns}"] = wrk("/api/v1/deals/", PORT_APP, conns, token, ids, args.seconds)
            results[f"ref get c{conns}"] = wrk("/deal/", PORT_REF, conns, None, ids, args.seconds)
            results[f"list c{conns}"] = wrk(list_url, PORT_APP, conns, token, None, args.seconds)
            results[f"ref list c{conns}"] = wrk(ref_list, PORT_REF, conns, None, None, args.seconds)
    finally:
        app.terminate()
        ref.terminate()
        app.wait()
        ref.wait()

    def ratio(ours: float, ref_value: float) -> str:
        return f"{ours / ref_value:.2f}×"

    lines = [
        f"### API at {counts[0]:,} deals ({counts[1]:,} transitions, {counts[2]:,} activities), SQLite",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}. Command: `.venv/bin/python bench/bench_api.py --write`. "
        "One uvicorn worker; wrk on the same machine (loopback); manager token, policy on.",
        "",
    ]
    if fill_s is not None:
        lines += [f"Demo fill ({args.deals:,} deals): **{fill_s:.1f} s**", ""]
    lines += [
        "| measure | Loudou | bare reference | ratio (Loudou ÷ reference) | target |",
        "|---|---|---|---|---|",
        f"| in-process GET one deal, p50 | {inproc['get']:.2f} ms | – | – | – |",
        f"| in-process page of 50, p50 | {inproc['list']:.2f} ms | – | – | – |",
        f"| HTTP GET one deal, p50 at 1 connection | {results['get c1']['p50_ms']:.2f} ms | "
        f"{results['ref get c1']['p50_ms']:.2f} ms | {ratio(results['get c1']['p50_ms'], results['ref get c1']['p50_ms'])} | ≤ 2 ms |",
        f"| HTTP page of 50, p50 at 1 connection | {results['list c1']['p50_ms']:.2f} ms | "
        f"{results['ref list c1']['p50_ms']:.2f} ms | {ratio(results['list c1']['p50_ms'], results['ref list c1']['p50_ms'])} | ≤ 5 ms |",
        f"| HTTP GET one deal, req/s at 32 connections | {results['get c32']['rps']:,.0f} | "
        f"{results['ref get c32']['rps']:,.0f} | {ratio(results['ref get c32']['rps'], results['get c32']['rps'])} (time per request) | ≥ 2,000/s |",
        f"| HTTP page of 50, req/s at 32 connections | {results['list c32']['rps']:,.0f} | "
        f"{results['ref list c32']['rps']:,.0f} | {ratio(results['ref list c32']['rps'], results['list c32']['rps'])} (time per request) | ≥ 1,000/s |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        with open(ROOT / "bench/RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
