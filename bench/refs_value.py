"""DuckDB references for the value reports: channel effectiveness, customer value and
tiers, customer behaviour and winning. Each computes the report's whole answer from the
raw tables (deals, activities, channel_spend, companies), the way a columnar engine does
without our derived tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from refs_common import Params


def channels(duck: duckdb.DuckDBPyConnection, p: Params) -> Any:
    """The cohort by channel and status (leads, outcomes, revenue); customers won
    (distinct companies, a won deal without a company counts one) and the median cycle of
    the won leads per channel and overall; the period's spend rows; the channel names."""
    cohort = f"SELECT * FROM deals d WHERE d.created_at >= $1 AND d.created_at < $2 AND {p.team()}"
    by_status = duck.execute(f"""
        WITH c AS ({cohort})
        SELECT channel_id, status, count(*), coalesce(sum(amount), 0) FROM c GROUP BY channel_id, status""",
                             p.args).fetchall()
    won = duck.execute(f"""
        WITH w AS ({cohort} AND d.status = 'won')
        SELECT grouping(channel_id), channel_id,
               count(DISTINCT company_id) + count(*) FILTER (WHERE company_id IS NULL),
               median(epoch(closed_at - created_at)), count(closed_at)
        FROM w GROUP BY GROUPING SETS ((channel_id), ())""", p.args).fetchall()
    spend = duck.execute("""
        SELECT channel_id, month, amount FROM channel_spend WHERE month >= $1 AND month < $2""",
                         [p.start.date().replace(day=1), p.end.date()]).fetchall()
    names = duck.execute("SELECT id, name, name_en FROM channels").fetchall()
    return by_status, won, spend, names


def customers(duck: duckdb.DuckDBPyConnection, p: Params) -> Any:
    """Per company with a visible deal created before the period end: won revenue and wins
    to the end, first win, open pipeline, deals won and lost in the period, activities of
    the 90 days before the end; projected value, A/B/C tier by the cumulative share of the
    companies ranked above, engagement against the median; the tier and segment sums and
    the top 200 companies with their names."""
    window_start = p.end - dt.timedelta(days=90)
    duck.execute(f"""
        CREATE OR REPLACE TEMP TABLE ref_customers AS
        WITH v AS (SELECT * FROM deals d WHERE d.company_id IS NOT NULL AND d.created_at < $2 AND {p.team()}),
        c AS (
            SELECT company_id,
                   coalesce(sum(amount) FILTER (WHERE status = 'won' AND closed_at < $2), 0) AS won_revenue,
                   count(*) FILTER (WHERE status = 'won' AND closed_at < $2) AS won_deals,
                   min(closed_at) FILTER (WHERE status = 'won' AND closed_at < $2) AS first_win,
                   max(closed_at) FILTER (WHERE status = 'won' AND closed_at < $2) AS last_win,
                   coalesce(sum(amount) FILTER (WHERE status = 'open'), 0) AS open_amount,
                   count(*) FILTER (WHERE status = 'open') AS open_deals,
                   count(*) FILTER (WHERE status = 'won' AND closed_at >= $1 AND closed_at < $2) AS won_p,
                   count(*) FILTER (WHERE status = 'lost' AND closed_at >= $1 AND closed_at < $2) AS lost_p
            FROM v GROUP BY company_id),
        a AS (
            SELECT v.company_id, count(*) AS n FROM activities x JOIN v ON v.id = x.deal_id
            WHERE x.occurred_at >= $3 AND x.occurred_at < $2 GROUP BY v.company_id),
        x AS (
            SELECT c.*, coalesce(a.n, 0) AS activities,
                   CASE WHEN won_deals > 0 THEN CAST(won_revenue AS DOUBLE) * (1 + 2 * 365.0
                        / greatest(epoch($2 - first_win) / 86400.0, 90)) ELSE 0 END AS projected
            FROM c LEFT JOIN a USING (company_id)),
        r AS (
            SELECT *, sum(projected) OVER (ORDER BY projected DESC, company_id
                                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS above,
                   sum(projected) OVER () AS total,
                   quantile_cont(activities, 0.5) OVER () AS median
            FROM x)
        SELECT *,
               CASE WHEN total <= 0 OR coalesce(above, 0) / total >= 0.8 THEN 'C'
                    WHEN coalesce(above, 0) / total >= 0.5 THEN 'B' ELSE 'A' END AS tier,
               CASE WHEN activities > 0 AND activities >= median THEN 'high' ELSE 'low' END AS engagement
        FROM r""", [p.start, p.end, window_start])
    segments = duck.execute("""
        SELECT tier, engagement, count(*), sum(won_revenue), sum(projected), sum(open_amount),
               count(*) FILTER (WHERE engagement = 'high'), sum(won_p), sum(lost_p)
        FROM ref_customers GROUP BY GROUPING SETS ((tier), (tier, engagement))""").fetchall()
    totals = duck.execute("SELECT count(*), sum(won_revenue), sum(projected), any_value(median) FROM ref_customers"
                          ).fetchall()
    top = duck.execute("""
        SELECT r.*, co.name, co.industry FROM ref_customers r JOIN companies co ON co.id = r.company_id
        ORDER BY r.projected DESC, r.company_id LIMIT 200""").fetchall()
    return segments, totals, top


def behaviour(duck: duckdb.DuckDBPyConnection, p: Params) -> Any:
    """The deals won or lost in the period by activity count and status, their activities
    by kind and status, and the open deals now by the age of their last activity."""
    closed = (f"SELECT * FROM deals d WHERE d.closed_at >= $1 AND d.closed_at < $2 AND d.status IN ('won', 'lost') "
              f"AND {p.team()}")
    intensity = duck.execute(f"WITH c AS ({closed}) SELECT activity_count, status, count(*) FROM c GROUP BY ALL",
                             p.args).fetchall()
    kinds = duck.execute(f"""
        WITH c AS ({closed})
        SELECT a.kind, c.status, count(*) FROM activities a JOIN c ON c.id = a.deal_id GROUP BY ALL""",
                         p.args).fetchall()
    now = dt.datetime.now(dt.UTC)
    day = dt.timedelta(days=1)
    recency = duck.execute(f"""
        SELECT count(*) FILTER (WHERE last_activity_at IS NULL), sum(amount) FILTER (WHERE last_activity_at IS NULL),
               count(*) FILTER (WHERE last_activity_at >= $2), sum(amount) FILTER (WHERE last_activity_at >= $2),
               count(*) FILTER (WHERE last_activity_at < $2 AND last_activity_at >= $3),
               sum(amount) FILTER (WHERE last_activity_at < $2 AND last_activity_at >= $3),
               count(*) FILTER (WHERE last_activity_at < $3 AND last_activity_at >= $4),
               sum(amount) FILTER (WHERE last_activity_at < $3 AND last_activity_at >= $4),
               count(*) FILTER (WHERE last_activity_at < $4), sum(amount) FILTER (WHERE last_activity_at < $4)
        FROM deals d WHERE d.status = 'open' AND {p.team()} AND $1""",
                           [True, now - 7 * day, now - 30 * day, now - 90 * day]).fetchall()
    return intensity, kinds, recency


REFS = {"channels": channels, "customers": customers, "behaviour": behaviour}
