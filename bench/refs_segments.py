"""DuckDB reference for the segments report: the deals closed in the period (won, lost,
disqualified) by rep, team, region, product, company segment (industry) and channel, and
all of them together — counts by status, won revenue, won deals with an amount, median
and mean cycle of the won deals — in one pass (GROUPING SETS) over the raw deals joined to
their team and company. :func:`same_answer` compares the report's result with it.
"""

from __future__ import annotations

import math
from typing import Any

import duckdb

from refs_common import Params

#: Report dimension → the reference's grouping column (in GROUPING() bit order).
DIMENSIONS = {
    "rep": "owner_id", "team": "team_id", "region": "region", "product": "product_id", "segment": "industry",
    "channel": "channel_id",
}
#: closed_at − created_at in whole seconds, as the report computes it.
CYCLE = "round(epoch(d.closed_at) - epoch(d.created_at))"
DAY_S = 86_400


def segments(duck: duckdb.DuckDBPyConnection, p: Params) -> list[tuple[Any, ...]]:
    """Rows (grouping bits, owner, team, region, product, industry, channel, won, lost,
    disqualified, won cents, won with an amount, median cycle s, mean cycle s, cycles)."""
    keys = ", ".join(DIMENSIONS.values())
    sets = ", ".join(f"({k})" for k in DIMENSIONS.values())
    won = "FILTER (WHERE status = 'won')"
    return duck.execute(f"""
        WITH c AS (
            SELECT d.owner_id, d.team_id, t.region, d.product_id, nullif(co.industry, '') AS industry, d.channel_id,
                   d.status, CAST(round(d.amount * 100) AS BIGINT) AS cents, {CYCLE} AS cycle
            FROM deals d LEFT JOIN teams t ON t.id = d.team_id LEFT JOIN companies co ON co.id = d.company_id
            WHERE d.closed_at >= $1 AND d.closed_at < $2 AND d.status IN ('won', 'lost', 'disqualified')
              AND {p.team()})
        SELECT GROUPING({keys}), {keys},
               count(*) {won}, count(*) FILTER (WHERE status = 'lost'),
               count(*) FILTER (WHERE status = 'disqualified'), coalesce(sum(cents) {won}, 0), count(cents) {won},
               quantile_cont(cycle, 0.5) {won}, avg(cycle) {won}, count(cycle) {won}
        FROM c GROUP BY GROUPING SETS ({sets}, ())""", p.args).fetchall()


def _by_dimension(rows: list[tuple[Any, ...]]) -> dict[str, dict[Any, tuple[Any, ...]]]:
    """The reference's rows as {dimension or "totals": {group id: figures}}."""
    names = list(DIMENSIONS)
    out: dict[str, dict[Any, tuple[Any, ...]]] = {name: {} for name in (*names, "totals")}
    for row in rows:
        bits, keys, figures = row[0], row[1:1 + len(names)], row[1 + len(names):]
        grouped = [name for i, name in enumerate(names) if not bits & (1 << (len(names) - 1 - i))]
        if not grouped:
            out["totals"][None] = figures
        else:
            value = keys[names.index(grouped[0])]
            out[grouped[0]][int(value) if isinstance(value, float) and value.is_integer() else value] = figures
    return out


#: How far the cycle figures may be apart, in days: SQLite's julianday rounds a cycle to
#: whole seconds from milliseconds in floating point, DuckDB from microseconds, so a deal
#: whose cycle lies within a few milliseconds of half a second may be a second apart.
CYCLE_TOLERANCE_DAYS = 1.01 / DAY_S


def _close(a: float | None, b: float | None, tolerance: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=0, abs_tol=tolerance)


def _differences(where: str, row: dict[str, Any], figures: tuple[Any, ...]) -> list[str]:
    won, lost, disqualified, cents, with_amount, median_s, mean_s, cycles = figures
    want = {"won": won, "lost": lost, "disqualified": disqualified, "closed": won + lost + disqualified,
            "won_amount": round(int(cents) / 100, 2), "cycles": cycles,
            "avg_won_amount": round(int(cents) / 100 / with_amount, 2) if with_amount else None}
    out = [f"{where} {k}: ours {row[k]!r}, DuckDB {v!r}" for k, v in want.items() if row[k] != v]
    for key, seconds in (("median_cycle_days", median_s), ("mean_cycle_days", mean_s)):
        days = None if seconds is None else float(seconds) / DAY_S
        if not _close(row[key], days, CYCLE_TOLERANCE_DAYS):
            out.append(f"{where} {key}: ours {row[key]!r}, DuckDB {days!r}")
    return out


def same_answer(result: dict[str, Any], rows: list[tuple[Any, ...]]) -> list[str]:
    """What differs between the report's result and the reference's rows (nothing: the
    same answer). Counts, cents and group ids exactly; cycles to the second."""
    reference = _by_dimension(rows)
    out = _differences("totals", result["totals"], reference["totals"][None])
    for dimension in DIMENSIONS:
        ours = {row["id"]: row for row in result["by_" + dimension]}
        theirs = reference[dimension]
        if set(ours) != set(theirs):
            out.append(f"{dimension} groups: ours {sorted(map(str, ours))}, DuckDB {sorted(map(str, theirs))}")
        for group_id in set(ours) & set(theirs):
            out += _differences(f"{dimension} {group_id!r}", ours[group_id], theirs[group_id])
    return out


REFS = {"segments": segments}
#: Report → function(our result, the reference's answer) → the differences.
CHECKS = {"segments": same_answer}
