"""DuckDB reference queries for bench_analytics.py: for each report, the same answer
computed by DuckDB from the raw tables (deals, stage_transitions, activities …) — what a
columnar engine does without our counters. One module per area (refs_*.py); each exposes
``REFS = {report name: function(duck, params)}`` and the function fetches the results.

Params: the period [start, end) in UTC and, for a manager, the team (None: everyone).
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb

AREAS = ("refs_funnel", "refs_flow", "refs_outcomes", "refs_value", "refs_segments")


@dataclass(frozen=True)
class Params:
    start: dt.datetime
    end: dt.datetime
    team_id: int | None

    def team(self, alias: str = "d") -> str:
        """SQL condition for the viewer's team (an integer, safe to inline)."""
        return "TRUE" if self.team_id is None else f"{alias}.team_id = {int(self.team_id)}"

    @property
    def args(self) -> list[Any]:
        return [self.start, self.end]


Ref = Callable[[duckdb.DuckDBPyConnection, Params], Any]


def all_references() -> dict[str, Ref]:
    out: dict[str, Ref] = {}
    for area in AREAS:
        try:
            module = importlib.import_module(area)
        except ModuleNotFoundError:
            continue
        out.update(module.REFS)
    return out
