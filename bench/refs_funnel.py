"""DuckDB references for the cohort funnel and the pipeline snapshot."""

from __future__ import annotations

from typing import Any

import duckdb

from refs_common import Params


def funnel(duck: duckdb.DuckDBPyConnection, p: Params) -> Any:
    """Cohort of the period: deals that ever reached each open stage (from the history),
    outcome counts and amounts, and median / p90 of completed stays per stage."""
    cohort = f"""SELECT id, status, amount FROM deals d
                 WHERE d.pipeline_id = 1 AND d.created_at >= $1 AND d.created_at < $2 AND {p.team()}"""
    reached = duck.execute(f"""
        WITH c AS ({cohort})
        SELECT t.to_stage_id, count(DISTINCT t.deal_id)
        FROM stage_transitions t JOIN c ON c.id = t.deal_id
        WHERE t.to_status = 'open' GROUP BY t.to_stage_id""", p.args).fetchall()
    outcome = duck.execute(f"WITH c AS ({cohort}) SELECT status, count(*), sum(amount) FROM c GROUP BY status",
                           p.args).fetchall()
    stays = duck.execute(f"""
        WITH c AS ({cohort})
        SELECT t.to_stage_id, median(t.duration_s), quantile_cont(t.duration_s, 0.9)
        FROM stage_transitions t JOIN c ON c.id = t.deal_id
        WHERE t.to_status = 'open' AND t.duration_s IS NOT NULL GROUP BY t.to_stage_id""", p.args).fetchall()
    return reached, outcome, stays


def snapshot(duck: duckdb.DuckDBPyConnection, p: Params) -> Any:
    return duck.execute(f"""
        SELECT d.stage_id, count(*), sum(d.amount), sum(d.amount * s.probability / 100.0), min(d.stage_entered_at)
        FROM deals d JOIN stages s ON s.id = d.stage_id
        WHERE d.status = 'open' AND d.pipeline_id = 1 AND {p.team()} GROUP BY d.stage_id""").fetchall()


REFS = {"funnel": funnel, "snapshot": snapshot}
