"""``loudou analytics rebuild``: recompute every derived value from the raw history and
prove the stored ones match.

Derived state (kept current by deal.service / activity.service on every write):
- ``stage_transitions.duration_s``: seconds to the deal's next transition (NULL for the last);
- ``deals.reached_mask``: OR of the bits of every open stage the deal entered;
- ``deals.stage_entered_at``: time of the deal's last transition;
- ``deals.activity_count`` and ``deals.last_activity_at``: from its activities;
- the counter tables of :mod:`loudou.analytics.counters` (cohort counts, stay histogram).
Set-based SQL (window functions are fine here: this is an offline job, not a request).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from loudou.analytics import counters
from loudou.db import Database

# Expected values per deal / per transition, as derived tables.
EXPECTED_SQL = {
    "duration": """
        SELECT t.id AS id,
               {seconds_between} AS expected
        FROM stage_transitions t
        LEFT JOIN (
            SELECT id, LEAD(at) OVER (PARTITION BY deal_id ORDER BY at, id) AS next_at FROM stage_transitions
        ) n ON n.id = t.id
    """,
    "mask": """
        SELECT d.id AS id, COALESCE(m.mask, 0) AS expected
        FROM deals d LEFT JOIN (
            SELECT deal_id, SUM({bit_value}) AS mask FROM (
                SELECT DISTINCT t.deal_id, s.bit FROM stage_transitions t JOIN stages s ON s.id = t.to_stage_id
                WHERE t.to_status = 'open'
            ) x GROUP BY deal_id
        ) m ON m.deal_id = d.id
    """,
    "entered": """
        SELECT d.id AS id, (SELECT MAX(t.at) FROM stage_transitions t WHERE t.deal_id = d.id) AS expected
        FROM deals d
    """,
    "activity_count": """
        SELECT d.id AS id, COALESCE(a.n, 0) AS expected FROM deals d
        LEFT JOIN (SELECT deal_id, COUNT(*) AS n FROM activities WHERE deal_id IS NOT NULL GROUP BY deal_id) a
          ON a.deal_id = d.id
    """,
    "last_activity": """
        SELECT d.id AS id, a.last AS expected FROM deals d
        LEFT JOIN (SELECT deal_id, MAX(occurred_at) AS last FROM activities WHERE deal_id IS NOT NULL
                   GROUP BY deal_id) a ON a.deal_id = d.id
    """,
}

# (table, stored column, expected query key)
CHECKS = [
    ("stage_transitions", "duration_s", "duration"),
    ("deals", "reached_mask", "mask"),
    ("deals", "stage_entered_at", "entered"),
    ("deals", "activity_count", "activity_count"),
    ("deals", "last_activity_at", "last_activity"),
]


def _sql(key: str, dialect: str) -> str:
    # Whole seconds, truncated like deal.service's int(timedelta.total_seconds()).
    if dialect == "sqlite":
        # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff': whole seconds from strftime('%s'), the
        # fraction from the text, so no julianday rounding can move a boundary.
        # (strftime rounds a fraction like .999985 up to the next second: cut it off first)
        whole = ("(CAST(strftime('%s', substr(n.next_at, 1, 19)) AS INTEGER)"
                 " - CAST(strftime('%s', substr(t.at, 1, 19)) AS INTEGER))")
        seconds = f"CAST({whole} + (CAST(substr(n.next_at, 20) AS REAL) - CAST(substr(t.at, 20) AS REAL)) AS INTEGER)"
    else:
        seconds = "CAST(FLOOR(EXTRACT(EPOCH FROM (n.next_at - t.at))) AS INTEGER)"
    # Distinct stages' bits summed: the same as OR-ing them (no portable bitwise-OR aggregate).
    bit_value = "(1 << bit)" if dialect == "sqlite" else "(CAST(1 AS BIGINT) << bit)"
    return EXPECTED_SQL[key].format(seconds_between=seconds, bit_value=bit_value)


@dataclass
class CheckResult:
    table: str
    column: str
    mismatches: int


def _mismatch_sql(table: str, column: str, expected: str) -> str:
    return (f"SELECT COUNT(*) FROM {table} x JOIN ({expected}) e ON e.id = x.id "
            f"WHERE NOT (x.{column} = e.expected OR (x.{column} IS NULL AND e.expected IS NULL))")


def verify(conn: Connection) -> list[CheckResult]:
    dialect = conn.dialect.name
    out = []
    for table, column, key in CHECKS:
        n = conn.exec_driver_sql(_mismatch_sql(table, column, _sql(key, dialect))).scalar_one()
        out.append(CheckResult(table, column, int(n)))
    for table, n in counters.mismatches(conn).items():
        out.append(CheckResult(table, "n, amount" if "cohort" in table else "n", n))
    return out


def rebuild(db: Database) -> list[CheckResult]:
    """Recompute every derived value in one transaction, then verify; returns the check
    results after the rebuild (all zero mismatches when the derivation is sound)."""
    with db.engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, conn.begin():
        dialect = conn.dialect.name
        for table, column, key in CHECKS:
            expected = _sql(key, dialect)
            conn.exec_driver_sql(f"CREATE TEMPORARY TABLE rebuild_expected AS {expected}")
            conn.exec_driver_sql("CREATE INDEX ix_rebuild_expected ON rebuild_expected (id)")
            conn.exec_driver_sql(
                f"UPDATE {table} SET {column} = (SELECT e.expected FROM rebuild_expected e WHERE e.id = {table}.id)")
            conn.exec_driver_sql("DROP TABLE rebuild_expected")
        counters.rebuild(conn)  # from the values just recomputed
        results = verify(conn)
    return results


def has_mismatches(results: list[CheckResult]) -> bool:
    return any(r.mismatches for r in results)



