"""The demo's derived tables computed from the generator's arrays
(:func:`loudou.demo.counters.write_counters`) are exactly what the SQL rebuild of
:mod:`loudou.analytics.counters` gives from the written rows, on both databases, for
several companies (seeds, locales, several activity blocks, the two-process SQLite load)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from loudou.analytics import counters, counters_flow, counters_outcomes, counters_segments, counters_value
from loudou.db import Database
from loudou.demo import service, writer
from loudou.demo.counters import COVERED, write_counters
from loudou.demo.generator import S_DISQ, S_LOST, S_WON, DemoPlan

NOW = dt.datetime(2026, 1, 15, 9, 0, tzinfo=dt.UTC)
HASH = "$argon2id$v=19$m=65536,t=3,p=4$demo$demo"  # the real hash is slow and salted

#: Every derived table the covered rebuilds write (the funnel's two, then the others').
TABLES = (counters.cohort_counts, counters.stay_hours, counters_flow.stay_started, counters_flow.closed_counts,
          counters_outcomes.cells, counters_outcomes.lost_reasons, counters_outcomes.lost_stages,
          counters_value.channel_counts, counters_value.closed_activities, counters_value.won_leads,
          counters_segments.products, counters_segments.industries)
#: Packed arrays: how each table's binary column decodes.
DECODE = {counters_segments.products.name: counters_segments.decode,
          counters_segments.industries.name: counters_segments.decode}


class Recorder:
    """A progress display that remembers what it was told."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.done: dict[str, int] = {}

    def start(self, key: str, description: str, total: int) -> None:
        self.totals[key] = total
        self.done[key] = 0

    def advance(self, key: str, n: int) -> None:
        self.done[key] += n


def _value(column: sa.Column[Any], value: Any) -> Any:
    """A stored value in a form both databases give alike: dates as dates, amounts as
    Decimals to the cent, a cell's records and a segment row's cycles in sorted order
    (their order is no part of the table's meaning)."""
    if value is None:
        return None
    if isinstance(column.type, sa.Date):
        return counters._as_date(value)
    if isinstance(column.type, sa.Numeric):
        return Decimal(str(value)).quantize(Decimal("0.01"))
    if isinstance(column.type, sa.LargeBinary):
        return np.sort(DECODE.get(column.table.name, counters_outcomes.decode)(value)).tobytes()
    return value


def snapshot(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every derived table, in primary key order."""
    out = {}
    for table in TABLES:
        rows = conn.execute(sa.select(table).order_by(*table.primary_key.columns))
        out[table.name] = [tuple(_value(c, v) for c, v in zip(table.columns, row, strict=True)) for row in rows]
    return out


CASES = [
    pytest.param(1, 3_000, "zh", False, 1 << 16, id="seed1-zh"),
    # Four activity blocks, the second half drawn and written by the worker process.
    pytest.param(2, 4_000, "en", True, 1_024, id="seed2-en-parallel"),
    pytest.param(3, 2_500, "zh", False, 700, id="seed3-zh-blocks"),
]


@pytest.mark.parametrize(("seed", "deals", "locale", "parallel", "block"), CASES)
def test_write_counters_equals_the_sql_rebuild(db: Database, monkeypatch: pytest.MonkeyPatch, seed: int, deals: int,
                                               locale: str, parallel: bool, block: int) -> None:
    plan = DemoPlan(deals, seed, locale, service.load_reference(db), now=NOW, password_hash=HASH,
                    activity_block=block)
    # The two-process load exists for SQLite only (PostgreSQL is always one COPY stream).
    writer.write(db, plan, parallel=parallel and db.dialect == "sqlite")
    db.engine.dispose()

    # A derived table registered later (not covered) still gets its SQL rebuild, in order.
    seen: list[Connection] = []
    monkeypatch.setattr(counters, "REBUILDERS", [*counters.REBUILDERS, seen.append])
    assert set(COVERED) <= set(counters.REBUILDERS)
    progress = Recorder()
    with db.engine.begin() as conn:
        # Left over from before: the tables are emptied, not added to.
        conn.execute(counters.cohort_counts.insert().values(
            pipeline_id=plan.ref.pipeline_id, month=dt.date(2001, 1, 1), team_id=0, owner_id=0, channel_id=0,
            reached_mask=1, status="open", n=7, amount=Decimal("1.00")))
        write_counters(conn, plan, progress)
        assert seen == [conn]
    assert progress.totals == progress.done == {"counters": 1 + len(counters.REBUILDERS)}

    with db.engine.begin() as conn:
        # Every registered table checks out: those computed here and any left to its SQL.
        mismatches = counters.mismatches(conn)
        assert {table.name for table in TABLES} <= set(mismatches)
        assert {name: n for name, n in mismatches.items() if n} == {}
        written = snapshot(conn)
        funnel = counters.stored(conn)
        for table in TABLES:
            assert written[table.name], f"{table.name} is empty"
        # Every deal is counted once, and every won deal is a won lead.
        assert sum(n for n, _amount in funnel[0].values()) == deals
        assert len(written[counters_value.won_leads.name]) == int((plan.status == S_WON).sum()) > 0
        # Every closed deal is in each segments table once; deals of companies have their
        # industry, and won deals their cycles (the demo sets no product: product 0).
        closed = int(np.isin(plan.status, [S_WON, S_LOST, S_DISQ]).sum())
        by_industry = written[counters_segments.industries.name]
        for table in (counters_segments.products, counters_segments.industries):
            assert sum(row[6] for row in written[table.name]) == closed > 0
        assert {row[4] for row in by_industry} - {counters_segments.NO_INDUSTRY}
        assert any(row[9] for row in by_industry if row[5] == counters_segments.WON)

        # The same rows, value for value, as the SQL rebuild writes.
        counters.rebuild(conn)
        assert counters.stored(conn) == funnel
        assert snapshot(conn) == written
