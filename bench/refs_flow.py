"""DuckDB references for the flow reports: time in stage, period over period, bottlenecks.
Each computes the report's answer from the raw tables (deals, stage_transitions, stages,
users) for the period and, for a manager, the team."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import duckdb

from refs_common import Params

#: The length buckets of the stay histograms (loudou.analytics.counters.stay_bucket), in SQL
#: (duration_s arrives from pandas as DOUBLE: integer division of doubles is ten times slower).
_HOURS = "(CAST(t.duration_s AS BIGINT) // 3600)"
BUCKET = f"""CASE WHEN {_HOURS} < 24 THEN {_HOURS} WHEN {_HOURS} < 240 THEN {_HOURS} // 6 * 6
                  ELSE {_HOURS} // 24 * 24 END"""


def _now(duck: duckdb.DuckDBPyConnection) -> dt.datetime:
    """The data's "now": the latest transition (the reports' open-deal figures are as of now)."""
    latest = duck.execute("SELECT max(t.at) FROM stage_transitions t").fetchone()
    assert latest is not None
    return latest[0]  # type: ignore[no-any-return]


def _stays(duck: duckdb.DuckDBPyConnection, p: Params, start: dt.datetime, end: dt.datetime) -> Any:
    """Completed stays that started in [start, end) per stage: count, median and p90 (hours, at
    the histograms' resolution, as the reports), mean (seconds)."""
    return duck.execute(f"""
        SELECT t.to_stage_id, count(*), quantile_cont({BUCKET}, 0.5), quantile_cont({BUCKET}, 0.9),
               avg(t.duration_s)
        FROM stage_transitions t JOIN deals d ON d.id = t.deal_id
        WHERE t.at >= $1 AND t.at < $2 AND t.to_status = 'open' AND t.duration_s IS NOT NULL
          AND d.pipeline_id = 1 AND {p.team()}
        GROUP BY t.to_stage_id""", [start, end]).fetchall()


def timeinstage(duck: duckdb.DuckDBPyConnection, p: Params) -> Any:
    """Stays that started in the period (count, median, p90, mean per stage); the open deals
    per stage now (count, over the norm, entered in the period, median age) and the 50 most
    overdue."""
    now = _now(duck)
    stays = _stays(duck, p, p.start, p.end)
    open_deals = duck.execute(f"""
        SELECT d.stage_id, count(*), count(*) FILTER (WHERE d.stage_entered_at < $3 - s.expected_days * INTERVAL 1 DAY),
               count(*) FILTER (WHERE d.stage_entered_at >= $1 AND d.stage_entered_at < $2),
               to_timestamp(quantile_cont(epoch(d.stage_entered_at), 0.5))
        FROM deals d JOIN stages s ON s.id = d.stage_id
        WHERE d.status = 'open' AND d.pipeline_id = 1 AND {p.team()}
        GROUP BY d.stage_id""", [p.start, p.end, now]).fetchall()
    overdue = duck.execute(f"""
        SELECT d.id, d.title, d.stage_entered_at, d.amount, u.name,
               epoch($1 - d.stage_entered_at) - s.expected_days * 86400 AS over
        FROM deals d JOIN stages s ON s.id = d.stage_id LEFT JOIN users u ON u.id = d.owner_id
        WHERE d.status = 'open' AND d.pipeline_id = 1 AND {p.team()}
          AND d.stage_entered_at < $1 - s.expected_days * INTERVAL 1 DAY
        ORDER BY over DESC, d.id LIMIT 50""", [now]).fetchall()
    return stays, open_deals, overdue


def _rank_test(duck: duckdb.DuckDBPyConnection, p: Params, before: tuple[dt.datetime, dt.datetime]) -> Any:
    """Per stage, the Mann–Whitney U of this period's stays against the previous period's
    (lengths at the histograms' resolution, ties averaged): U, the tie term Σ(t³ − t), n1, n2;
    then z and p as the report computes them."""
    rows = duck.execute(f"""
        WITH s AS (
            SELECT t.to_stage_id AS stage, {BUCKET} AS v, t.at >= $3 AS now
            FROM stage_transitions t JOIN deals d ON d.id = t.deal_id
            WHERE t.at >= $1 AND t.at < $2 AND t.to_status = 'open' AND t.duration_s IS NOT NULL
              AND d.pipeline_id = 1 AND {p.team()}),
        g AS (SELECT stage, v, count(*) FILTER (WHERE now) AS a, count(*) AS c FROM s GROUP BY stage, v),
        r AS (SELECT stage, a, c, sum(c) OVER (PARTITION BY stage ORDER BY v) - c AS below FROM g)
        SELECT stage, sum(a * (below + (c + 1) / 2.0)), sum(c * c * c - c), sum(a), sum(c) - sum(a)
        FROM r GROUP BY stage""", [before[0], p.end, p.start]).fetchall()
    out = []
    for stage, rank_sum, ties, n1, n2 in rows:
        n1, n2 = int(n1), int(n2)
        n = n1 + n2
        u = float(rank_sum) - n1 * (n1 + 1) / 2
        variance = n1 * n2 / 12 * ((n + 1) - float(ties) / (n * (n - 1))) if n > 1 else 0.0
        z = (abs(u - n1 * n2 / 2) - 0.5) / math.sqrt(variance) if variance > 0 else 0.0
        out.append((stage, u, z, math.erfc(abs(z) / math.sqrt(2))))
    return out


def change(duck: duckdb.DuckDBPyConnection, p: Params) -> Any:
    """This period against the one of the same length before it: cohort continuation counts
    (by stages reached and status), stays' medians and the rank test per stage, won and
    lost among the deals closed."""
    before = (p.start - (p.end - p.start), p.start)
    out = []
    for start, end in (before, (p.start, p.end)):
        cohort = duck.execute(f"""
            SELECT reached_mask, status, count(*) FROM deals d
            WHERE d.pipeline_id = 1 AND d.created_at >= $1 AND d.created_at < $2 AND {p.team()}
            GROUP BY reached_mask, status""", [start, end]).fetchall()
        closed = duck.execute(f"""
            SELECT status, count(*) FROM deals d
            WHERE d.pipeline_id = 1 AND d.closed_at >= $1 AND d.closed_at < $2 AND d.status IN ('won', 'lost')
              AND {p.team()}
            GROUP BY status""", [start, end]).fetchall()
        out.append((cohort, _stays(duck, p, start, end), closed))
    return out, _rank_test(duck, p, before)


def bottlenecks(duck: duckdb.DuckDBPyConnection, p: Params) -> Any:
    """The cohort by (owner, team, channel, stages reached, status): every rate and norm of
    the report is a sum of these counts."""
    return duck.execute(f"""
        SELECT owner_id, team_id, channel_id, reached_mask, status, count(*) FROM deals d
        WHERE d.pipeline_id = 1 AND d.created_at >= $1 AND d.created_at < $2 AND {p.team()}
        GROUP BY owner_id, team_id, channel_id, reached_mask, status""", p.args).fetchall()


REFS = {"timeinstage": timeinstage, "change": change, "bottlenecks": bottlenecks}
