"""Every analytics report at 1,000,000 deals against DuckDB answering the same question.

    .venv/bin/python bench/bench_analytics.py [--db bench/data/bench.db] [--pg URL] [-n 5]

The SQLite database is a `loudou demo --deals 1000000` fill (bench_api.py makes one at
bench/data/bench.db). In the same run the raw tables are loaded into an in-memory DuckDB
(the reference, R), each report's reference query (bench/refs_*.py) is timed there, and
our report function is timed on SQLite (and on PostgreSQL with --pg, after copying the
same rows there) for an admin (the whole company) and a manager (one team), over the last
twelve whole months of the data. Also timed: the manager's and the rep's dashboard (every
widget's report) and a stage change with everything it keeps current.

Prints a table (median of -n runs, warm cache) and the ratios to DuckDB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import duckdb  # noqa: E402
import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402

import refs_segments  # noqa: E402
from loudou.analytics.filters import ReportFilters  # noqa: E402
from loudou.analytics.reports import all_reports  # noqa: E402
from loudou.auth.models import Role, User  # noqa: E402
from loudou.db import Database  # noqa: E402
from refs_common import Params, all_references  # noqa: E402

#: Columns loaded into DuckDB (activities: what the reports read, not the text).
TABLES = {
    "teams": "*", "users": "id, name, role, team_id", "channels": "*", "channel_spend": "*", "pipelines": "*",
    "stages": "*", "lost_reasons": "*", "products": "*", "companies": "id, name, industry, owner_id, team_id",
    "deals": "*", "stage_transitions": "*",
    "activities": "id, kind, deal_id, company_id, owner_id, team_id, occurred_at",
}
TIMESTAMPS = ("created_at", "updated_at", "closed_at", "stage_entered_at", "last_activity_at", "at", "occurred_at")


def load_duckdb(sqlite_path: str) -> duckdb.DuckDBPyConnection:
    duck = duckdb.connect()
    con = sqlite3.connect(sqlite_path)
    for table, columns in TABLES.items():
        t0 = time.perf_counter()
        df = pd.read_sql(f"SELECT {columns} FROM {table}", con)
        for col in df.columns:
            if col in TIMESTAMPS:
                df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
            elif col in ("month", "expected_close_date"):
                df[col] = pd.to_datetime(df[col]).dt.date
        duck.register("incoming", df)
        duck.execute(f"CREATE TABLE {table} AS SELECT * FROM incoming")
        duck.unregister("incoming")
        print(f"  duckdb <- {table}: {len(df):,} rows in {time.perf_counter() - t0:.1f} s", flush=True)
    con.close()
    return duck


def median_ms(fn: Callable[[], Any], n: int) -> float:
    fn()  # warm
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def last_whole_year(db: Database) -> tuple[dt.date, dt.date]:
    with db.engine.connect() as conn:
        latest = conn.execute(sa.text("SELECT max(created_at) FROM deals")).scalar_one()
    latest_day = latest if isinstance(latest, dt.datetime) else dt.datetime.fromisoformat(str(latest)[:19])
    first_of_month = dt.date(latest_day.year, latest_day.month, 1)
    start = dt.date(first_of_month.year - 1, first_of_month.month, 1)
    return start, first_of_month - dt.timedelta(days=1)


def viewers(db: Database) -> dict[str, User]:
    admin = User(id=0, email="bench@localhost", name="bench", role=Role.admin, is_active=True, team_id=None)
    with db.session_scope(write=False) as s:
        manager = s.scalars(sa.select(User).where(User.role == Role.manager).order_by(User.id)).first()
        rep = s.scalars(sa.select(User).where(User.role == Role.rep).order_by(User.id)).first()
        assert manager is not None and rep is not None
        s.expunge_all()
    return {"admin": admin, "manager": manager, "rep": rep}


def time_reports(db: Database, who: dict[str, User], filters: ReportFilters, n: int, names: list[str]
                 ) -> dict[tuple[str, str], float]:
    out = {}
    for name in names:
        spec = all_reports()[name]
        for role in ("admin", "manager"):
            def run(spec: Any = spec, viewer: User = who[role]) -> None:
                with db.session_scope(write=False) as s:
                    spec.compute(s, viewer, filters)
            out[(name, role)] = median_ms(run, n)
            print(f"  {db.dialect:10s} {name:12s} {role:8s} {out[(name, role)]:9.1f} ms", flush=True)
    return out


def check_answers(db: Database, who: dict[str, User], filters: ReportFilters, names: list[str],
                  duck: duckdb.DuckDBPyConnection, params: dict[str, Params]) -> bool:
    """Our answer against the reference's, for the reports that have a comparison
    (``CHECKS`` of a refs module): prints what differs; True when nothing does."""
    same = True
    for name in names:
        check = refs_segments.CHECKS.get(name)
        if check is None:
            continue
        for role in ("admin", "manager"):
            with db.session_scope(write=False) as s:
                ours = all_reports()[name].compute(s, who[role], filters)
            differences = check(ours, refs_segments.REFS[name](duck, params[role]))
            same = same and not differences
            print(f"  {db.dialect:10s} {name:12s} {role:8s} "
                  + ("same answer as DuckDB" if not differences else f"{len(differences)} differences from DuckDB:"),
                  flush=True)
            for line in differences[:20]:
                print(f"      {line}")
    return same


def time_dashboard(db: Database, viewer: User, layout: tuple[tuple[str, tuple[str, ...], int], ...],
                   filters: ReportFilters, n: int) -> float:
    specs = [all_reports()[name] for name, _tables, _rows in layout if name in all_reports()]

    def run() -> None:
        with db.session_scope(write=False) as s:
            for spec in specs:
                result = spec.compute(s, viewer, filters)
                spec.tables(result, filters)
    return median_ms(run, n)


def time_stage_change(db: Database, n: int = 200) -> float:
    """A stage change through the service (history row, derived state, audit, search,
    counters) on open deals, each in its own transaction."""
    from loudou.deal import service as deal_service
    from loudou.deal.models import Deal
    from loudou.deal.schemas import DealMove
    from loudou.pipeline.models import Pipeline, Stage

    with db.session_scope(write=False) as s:
        admin = s.scalars(sa.select(User).where(User.role == Role.admin).order_by(User.id)).first()
        assert admin is not None
        s.expunge(admin)
        pipeline = s.scalars(sa.select(Pipeline).where(Pipeline.is_default)).one()
        stages = list(s.scalars(sa.select(Stage).where(Stage.pipeline_id == pipeline.id).order_by(Stage.position)))
        ids = list(s.scalars(sa.select(Deal.id).where(Deal.status == "open", Deal.pipeline_id == pipeline.id)
                             .order_by(Deal.id.desc()).limit(n)))
        relaxed = pipeline.is_relaxed
    with db.session_scope() as s:
        s.execute(sa.update(Pipeline).where(Pipeline.id == pipeline.id).values(is_relaxed=True))
    times = []
    try:
        for deal_id in ids:
            with db.session_scope() as s:
                deal = s.get(Deal, deal_id)
                assert deal is not None
                target = next(st for st in stages if st.id != deal.stage_id)
                t0 = time.perf_counter()
                deal_service.move_deal(s, admin, deal_id, DealMove(stage_id=target.id, version=deal.version))
                s.flush()
                times.append((time.perf_counter() - t0) * 1000)
            # the commit is not in the figure: it is the same for any write
    finally:
        with db.session_scope() as s:
            s.execute(sa.update(Pipeline).where(Pipeline.id == pipeline.id).values(is_relaxed=relaxed))
    return statistics.median(times)


def copy_to_postgres(sqlite_path: str, url: str) -> Database:
    """The same rows in PostgreSQL (COPY), migrated schema, counters rebuilt, ANALYZE."""
    from loudou import migrate
    from loudou.analytics import counters

    db = Database(url)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
    migrate.upgrade(db.engine)
    src = sqlite3.connect(sqlite_path)
    tables = [t for t in ("teams", "users", "channels", "channel_spend", "pipelines", "stages", "lost_reasons",
                          "products", "companies", "contacts", "deals", "stage_transitions", "activities")]
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("SET session_replication_role = replica")  # rows are already consistent: no FK checks
        for table in reversed(tables):
            cur.execute(f'DELETE FROM "{table}"')
        for table in tables:
            t0 = time.perf_counter()
            cols = [r[1] for r in src.execute(f'PRAGMA table_info("{table}")')]
            bools = {r[1] for r in src.execute(f'PRAGMA table_info("{table}")') if r[2].upper() == "BOOLEAN"}
            quoted = ", ".join(f'"{c}"' for c in cols)
            with cur.copy(f'COPY "{table}" ({quoted}) FROM STDIN') as copy:
                for row in src.execute(f'SELECT {quoted} FROM "{table}"'):
                    copy.write_row([bool(v) if c in bools and v is not None else v for c, v in zip(cols, row,
                                                                                                     strict=True)])
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"COALESCE((SELECT max(id) FROM \"{table}\"), 1))")
            print(f"  postgres <- {table} in {time.perf_counter() - t0:.1f} s", flush=True)
        raw.commit()
    finally:
        raw.close()
    with db.engine.begin() as conn:
        counters.rebuild(conn)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    return db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=str(ROOT / "bench/data/bench.db"))
    parser.add_argument("--pg", help="also run on PostgreSQL at this URL (its public schema is replaced)")
    parser.add_argument("-n", type=int, default=5)
    parser.add_argument("--only", help="comma-separated report names")
    args = parser.parse_args()
    from loudou.analytics.views import REP_DASHBOARD, TEAM_DASHBOARD

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; db {args.db}")
    sqlite_db = Database(f"sqlite:///{args.db}")
    start, end = last_whole_year(sqlite_db)
    filters = ReportFilters.model_validate({"from": start.isoformat(), "to": end.isoformat()})
    who = viewers(sqlite_db)
    print(f"period {start} … {end}; manager {who['manager'].email} (team {who['manager'].team_id})")
    duck = load_duckdb(args.db)
    refs = all_references()
    names = args.only.split(",") if args.only else list(all_reports())
    params = {role: Params(start=dt.datetime(start.year, start.month, 1, tzinfo=dt.UTC),
                           end=dt.datetime(end.year, end.month, end.day, tzinfo=dt.UTC) + dt.timedelta(days=1),
                           team_id=who[role].team_id if role == "manager" else None)
              for role in ("admin", "manager")}
    reference: dict[tuple[str, str], float | None] = {}
    for name in names:
        for role in ("admin", "manager"):
            ref = refs.get(name)
            if ref is None:
                reference[(name, role)] = None
                continue

            def run_ref(ref: Any = ref, p: Params = params[role]) -> None:
                ref(duck, p)
            reference[(name, role)] = median_ms(run_ref, args.n)
            print(f"  duckdb     {name:12s} {role:8s} {reference[(name, role)]:9.1f} ms", flush=True)
    databases = [sqlite_db]
    if args.pg:
        databases.append(copy_to_postgres(args.db, args.pg))
    results: dict[str, dict[tuple[str, str], float]] = {}
    answers_agree = True
    for db in databases:
        results[db.dialect] = time_reports(db, viewers(db), filters, args.n, names)
        answers_agree = check_answers(db, viewers(db), filters, names, duck, params) and answers_agree
    print(f"\n| report | viewer | DuckDB (R) ms | {' | '.join(f'{d} ms | ×R' for d in results)} |")
    print("|---|---|---:|" + "---:|---:|" * len(results))
    for name in names:
        for role in ("admin", "manager"):
            r = reference[(name, role)]
            cells = []
            for d in results:
                ours = results[d][(name, role)]
                cells.append(f"{ours:,.1f} | {ours / r:.2f}×" if r else f"{ours:,.1f} | –")
            print(f"| {name} | {role} | {r:,.1f} | " if r else f"| {name} | {role} | – | ", " | ".join(cells), "|")
    for db in databases:
        v = viewers(db)
        team_ms = time_dashboard(db, v["manager"], TEAM_DASHBOARD, filters, args.n)
        rep_ms = time_dashboard(db, v["rep"], REP_DASHBOARD, filters, args.n)
        change_ms = time_stage_change(db)
        print(f"{db.dialect}: manager dashboard {team_ms:,.1f} ms; rep dashboard {rep_ms:,.1f} ms; "
              f"stage change p50 {change_ms:.2f} ms")
    if not answers_agree:
        sys.exit("some answers differ from DuckDB's (above)")


if __name__ == "__main__":
    main()
