"""The report registry: every analytics figure is a :class:`ReportSpec`.

A report's ``compute(session, viewer, filters)`` returns plain data (a JSON-ready dict);
its ``tables(result, filters)`` view that data as :class:`Table` objects (columns with a kind, rows
as dicts, and a drill-down to the deals behind a row); its ``charts`` name a table and
the columns to plot. One registry feeds every surface alike:

* the CLI (``loudou report NAME``, one command per report, listed by ``--help``),
* the API (``GET /api/v1/analytics/NAME``),
* the pages (``/reports/NAME`` and the dashboards), with CSV/XLSX export of every table.

Labels are English message ids marked with ``msg`` so the catalog check finds them; the
pages translate them, the CLI and exports in English keep them as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.orm import Session

from loudou.analytics.filters import ReportFilters
from loudou.auth.models import User

ColumnKind = Literal["text", "int", "num", "pct", "money", "days", "date", "pvalue", "bool"]
ChartKind = Literal["funnel", "bar", "hbar", "line", "stacked", "histogram"]


def msg(text: str) -> str:
    """Marks a message id for translation (translated where it is shown)."""
    return text


_ = msg


@dataclass(frozen=True)
class Col:
    key: str
    label: str
    kind: ColumnKind = "text"


@dataclass
class Table:
    key: str
    title: str
    columns: list[Col]
    rows: list[dict[str, Any]]
    #: Deal-list query parameters for a row (the deals behind it), or None.
    drill: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
    note: str | None = None

    def column_keys(self) -> list[str]:
        return [c.key for c in self.columns]


@dataclass(frozen=True)
class Chart:
    kind: ChartKind
    table: str          # key of the table it plots
    x: str              # category column
    series: tuple[str, ...]  # value columns
    title: str


Compute = Callable[[Session, User, ReportFilters], dict[str, Any]]


@dataclass(frozen=True)
class ReportSpec:
    name: str
    title: str
    summary: str
    compute: Compute
    tables: Callable[[dict[str, Any], ReportFilters], list[Table]]
    charts: tuple[Chart, ...] = ()
    #: Which filters the report's period applies to, shown on its page.
    period_meaning: str = ""
    extra_options: tuple[str, ...] = field(default=())  # e.g. ("strict",)


REGISTRY: dict[str, ReportSpec] = {}


def register(spec: ReportSpec) -> ReportSpec:
    if spec.name in REGISTRY:
        raise ValueError(f"report {spec.name} registered twice")
    REGISTRY[spec.name] = spec
    return spec


def all_reports() -> Mapping[str, ReportSpec]:
    """Every report, once their modules are imported (in the order of the menu)."""
    from loudou.analytics import catalog  # importing it registers the reports

    return {name: REGISTRY[name] for name in catalog.MENU if name in REGISTRY}


def get(name: str) -> ReportSpec | None:
    return all_reports().get(name)


def drill_params(filters: ReportFilters, *, cohort: bool = True, **extra: Any) -> dict[str, Any]:
    """Deal-list parameters for the report's filters (created in the period when ``cohort``)."""
    params: dict[str, Any] = {}
    if cohort:
        params["created_from"] = filters.date_from.isoformat()
        params["created_to"] = filters.date_to.isoformat()
    for name in ("pipeline_id", "team_id", "owner_id", "channel_id", "product_id", "industry"):
        value = getattr(filters, name)
        if value is not None:
            params[name] = value
    params.update({k: v for k, v in extra.items() if v is not None})
    return params
