"""DuckDB references for the outcome reports: win rate, win/loss and sales cycle, each the
same figures as the report (monthly buckets, the benchmark's default interval) computed by
DuckDB from the raw deals."""

from __future__ import annotations

from typing import Any

import duckdb

from refs_common import Params

#: closed_at − created_at in whole seconds, as the reports compute it.
CYCLE = "round(epoch(d.closed_at) - epoch(d.created_at))"
MONTH = "date_trunc('month', d.closed_at AT TIME ZONE 'UTC')"


def _closed(p: Params, status: str) -> str:
    return f"""SELECT * FROM deals d WHERE d.closed_at >= $1 AND d.closed_at < $2 AND d.status IN ({status})
               AND {p.team()}"""


def winrate(duck: duckdb.DuckDBPyConnection, p: Params) -> Any:
    """Closed deals by month, owner, team and status; median cycle of the won deals by
    month, owner and team and overall; deals created per month; deals open at the start."""
    closed = _closed(p, "'won', 'lost', 'disqualified'")
    grouped = duck.execute(f"""
        WITH c AS ({closed})
        SELECT {MONTH.replace('d.', 'c.')} AS m, c.owner_id, c.team_id, c.status, count(*), sum(c.amount),
               count(c.amount)
        FROM c AS c GROUP BY ALL""", p.args).fetchall()
    medians = duck.execute(f"""
        WITH c AS ({_closed(p, "'won'")})
        SELECT {MONTH.replace('d.', 'c.')} AS m, c.owner_id, c.team_id,
               median({CYCLE.replace('d.', 'c.')})
        FROM c AS c GROUP BY GROUPING SETS ((m), (c.owner_id), (c.team_id), ())""", p.args).fetchall()
    created = duck.execute(f"""
        SELECT date_trunc('month', d.created_at AT TIME ZONE 'UTC') AS m, count(*) FROM deals d
        WHERE d.created_at >= $1 AND d.created_at < $2 AND {p.team()} GROUP BY m""", p.args).fetchall()
    open_at_start = duck.execute(f"""
        SELECT count(*) FROM deals d WHERE d.created_at < $1 AND (d.closed_at IS NULL OR d.closed_at >= $1)
        AND {p.team()}""", [p.start]).fetchall()
    return grouped, medians, created, open_at_start


def winloss(duck: duckdb.DuckDBPyConnection, p: Params) -> Any:
    """Lost deals by reason, stage, channel and owner and by month; won against lost deals:
    count, amounts, average and median activities, median cycle."""
    lost = _closed(p, "'lost'")
    combos = duck.execute(f"""
        WITH c AS ({lost})
        SELECT c.lost_reason_id, c.stage_id, c.channel_id, c.owner_id, count(*), sum(c.amount)
        FROM c AS c GROUP BY GROUPING SETS ((c.lost_reason_id), (c.stage_id), (c.channel_id, c.lost_reason_id),
                                            (c.owner_id, c.lost_reason_id))""", p.args).fetchall()
    over_time = duck.execute(f"""
        WITH c AS ({lost}) SELECT {MONTH.replace('d.', 'c.')} AS m, count(*), sum(c.amount) FROM c AS c
        GROUP BY m""", p.args).fetchall()
    compared = duck.execute(f"""
        WITH c AS ({_closed(p, "'won', 'lost'")})
        SELECT c.status, count(*), sum(c.amount), count(c.amount), avg(c.activity_count),
               median(c.activity_count), median({CYCLE.replace('d.', 'c.')})
        FROM c AS c GROUP BY c.status""", p.args).fetchall()
    return combos, over_time, compared


def cycle(duck: duckdb.DuckDBPyConnection, p: Params) -> Any:
    """Won deals: count, amount, mean, median and p90 cycle by channel, team, owner, size
    band and overall (with the shortest and longest), and the cycle-length distribution."""
    won = _closed(p, "'won'")
    band = """CASE WHEN c.amount IS NULL THEN -1 WHEN c.amount < 10000 THEN 0 WHEN c.amount < 50000 THEN 1
              WHEN c.amount < 200000 THEN 2 ELSE 3 END"""
    cyc = CYCLE.replace("d.", "c.")
    groups = duck.execute(f"""
        WITH c AS ({won})
        SELECT c.channel_id, c.team_id, c.owner_id, {band} AS band, count(*), sum(c.amount), avg({cyc}),
               quantile_cont({cyc}, 0.5), quantile_cont({cyc}, 0.9), min({cyc}), max({cyc})
        FROM c AS c GROUP BY GROUPING SETS ((c.channel_id), (c.team_id), (c.owner_id), (band), ())""",
                          p.args).fetchall()
    distribution = duck.execute(f"""
        WITH c AS ({won})
        SELECT CASE WHEN {cyc} <= 7 * 86400 THEN 0 WHEN {cyc} <= 14 * 86400 THEN 1 WHEN {cyc} <= 30 * 86400 THEN 2
                    WHEN {cyc} <= 60 * 86400 THEN 3 WHEN {cyc} <= 90 * 86400 THEN 4
                    WHEN {cyc} <= 180 * 86400 THEN 5 ELSE 6 END AS bin, count(*)
        FROM c AS c GROUP BY bin""", p.args).fetchall()
    return groups, distribution


REFS = {"winrate": winrate, "winloss": winloss, "cycle": cycle}
