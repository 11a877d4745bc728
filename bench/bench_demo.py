"""Time ``loudou demo`` at 1,000,000 deals into a fresh SQLite file (target: under 90 s).

    .venv/bin/python bench/bench_demo.py [PATH] [--deals 1000000] [--seed 42]

PATH defaults to bench/data/bench.db (git-ignored); it is deleted first. Runs what the
command runs (migrations, generation, the load with its worker process, ANALYZE) in this
process, timed from the migrations to the end, then reads the figures back from the file:
deals, stage transitions, activities, seconds, rows per second, when each phase of the
load ran (the worker process reports "search", "companies", "contacts",
"stage_transitions" and its share of "activities"; this process the rest, "indexes" and
"copy" included), and how the time splits between the load (search index included) and
the analytics counters that follow it. CPU seconds (this process and the worker) and the
load average are printed too: on a shared machine they tell a slow run from a busy machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Timeline:
    """Progress reports turned into when each phase started and ended (seconds)."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.spans: dict[str, list[float]] = {}
        self.started: dict[str, float] = {}

    def start(self, key: str, description: str, total: int) -> None:
        self.started.setdefault(key, time.perf_counter() - self.t0)

    def advance(self, key: str, n: int) -> None:
        now = time.perf_counter() - self.t0
        span = self.spans.setdefault(key, [now, now])
        span[1] = now


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(ROOT / "bench" / "data" / "bench.db"))
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    path = Path(args.path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    os.environ["LOUDOU_DATABASE_URL"] = f"sqlite:///{path}"

    from loudou.cli import run_migrations
    from loudou.config import get_settings
    from loudou.db import get_database, set_database
    from loudou.demo import service

    get_settings.cache_clear()
    set_database(None)
    load_before = os.getloadavg()
    started = time.perf_counter()
    timeline = Timeline(started)
    run_migrations()
    service.run(get_database(), args.deals, args.seed, "zh", progress=timeline)
    seconds = time.perf_counter() - started
    me, worker = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    get_database().dispose()

    con = sqlite3.connect(path)
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("deals", "stage_transitions", "activities", "companies", "contacts", "tasks")}
    con.close()
    rows = sum(counts.values())
    print(f"loudou demo --deals {args.deals:,} into {path} ({path.stat().st_size / 2**20:,.0f} MiB)")
    print()
    print("| deals | transitions | activities | all rows | seconds | rows/s | CPU s this + worker | load before/after |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {counts['deals']:,} | {counts['stage_transitions']:,} | {counts['activities']:,} | {rows:,} "
          f"| {seconds:.1f} | {rows / seconds:,.0f} | {me.ru_utime + me.ru_stime:.1f} + "
          f"{worker.ru_utime + worker.ru_stime:.1f} | {load_before[0]:.1f} / {os.getloadavg()[0]:.1f} |")
    print()
    print("phase (first and last progress report, seconds from the start):")
    for key, (first, last) in timeline.spans.items():
        print(f"  {key:<20} {first:6.1f} .. {last:6.1f}")
    # The load ends with ANALYZE; the analytics counters are computed after it is committed.
    loaded = timeline.spans.get("analyze", [seconds, seconds])[1]
    print()
    print(f"load (migrate, generate, write with the search index, indexes, ANALYZE): {loaded:.1f} s; "
          f"after it (analytics counters): {seconds - loaded:.1f} s; total {seconds:.1f} s (target 90 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
