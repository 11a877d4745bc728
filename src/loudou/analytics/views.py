"""Report pages (``/reports``, ``/reports/NAME``, CSV/XLSX export of every table) and the
dashboard (``/dashboard``). Filters live in the query string, so every view is a link
that can be shared; figures come from the same report functions as the API and the CLI,
narrowed by the access policy for the signed-in user.

Each chart is drawn by ECharts from the rows of a table shown beside it (every chart is
also a table); clicking a bar, a funnel step or a row's number opens the deal list
filtered to the deals behind it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from loudou.analytics import output, reports
from loudou.analytics.filters import ReportFilters
from loudou.analytics.reports import Chart, Col, ReportSpec, Table
from loudou.analytics.reports import msg as _
from loudou.auth.models import Role, User
from loudou.company.models import Company
from loudou.deal.list_queries import Reference, filterable_owners, load_reference
from loudou.errors import NotFound
from loudou.product.models import Product
from loudou.transfer import export
from loudou.web.deps import DbSession
from loudou.web.pages import CurrentPage
from loudou.web.templating import Page, render

router = APIRouter(include_in_schema=False)

FILTER_FIELDS = ("from", "to", "pipeline_id", "team_id", "owner_id", "channel_id", "product_id", "industry",
                 "interval", "strict")
DEFAULT_DAYS = 365
ROWS_SHOWN = 200  # a page shows this many rows of a table; exports carry every row


# ---------------------------------------------------------------- filters from the URL

@dataclass
class FilterState:
    raw: dict[str, str]          # what the URL holds (cleaned)
    filters: ReportFilters | None
    error: str | None            # names the field that is wrong

    def query(self, **changes: str | None) -> str:
        values = {**self.raw, **changes}
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def default_period(today: dt.date) -> tuple[dt.date, dt.date]:
    return today - dt.timedelta(days=DEFAULT_DAYS - 1), today


def parse_filters(page: Page, request: Request) -> FilterState:
    raw = {k: v.strip() for k, v in request.query_params.items() if k in FILTER_FIELDS and v.strip()}
    start, end = default_period(page.fmt.today())
    values: dict[str, Any] = {"from": raw.get("from", start.isoformat()), "to": raw.get("to", end.isoformat())}
    values.update({k: v for k, v in raw.items() if k not in ("from", "to")})
    if "strict" in values:
        values["strict"] = values["strict"] in ("1", "true", "on")
    try:
        return FilterState(raw, ReportFilters.model_validate(values), None)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "from"
        label = filter_labels(page).get(field, field)
        return FilterState(raw, None, page.gettext("%(field)s: %(problem)s", field=label, problem=first["msg"]))


def filter_labels(page: Page) -> dict[str, str]:
    _ = page.gettext
    return {"from": _("From"), "date_from": _("From"), "to": _("To"), "date_to": _("To"),
            "pipeline_id": _("Pipeline"), "team_id": _("Team"), "owner_id": _("Owner"),
            "channel_id": _("Channel"), "product_id": _("Product"), "industry": _("Segment"),
            "interval": _("Interval"), "strict": _("Strict order")}


@dataclass
class Choices:
    ref: Reference
    owners: list[Any]
    teams: list[Any]
    products: list[Any]
    industries: list[str]


def filter_choices(session: Session, viewer: User) -> Choices:
    ref = load_reference(session)
    industries: list[str] = [str(r[0]) for r in session.execute(
        sa.select(Company.industry).where(Company.industry.is_not(None)).distinct().order_by(Company.industry)
        .limit(200))]
    products = list(session.execute(sa.select(Product.id, Product.name).where(Product.is_active)
                                    .order_by(Product.name)))
    return Choices(
        ref=ref,
        owners=list(filterable_owners(viewer, ref)) if viewer.role != Role.rep else [],
        teams=sorted(ref.teams.values(), key=lambda t: t.name) if viewer.role == Role.admin else [],
        products=products,
        industries=industries,
    )


# ---------------------------------------------------------------- tables and charts as view data

#: Values that reports give as keys, shown in the page's language (marked for the catalog).
VALUE_LABELS = {
    "open": _("Open"), "won": _("Won"), "lost": _("Lost"), "disqualified": _("Disqualified"),
    "call": _("Call"), "email": _("Email"), "meeting": _("Meeting"), "visit": _("Visit"), "note": _("Note"),
    "high": _("High"), "low": _("Low"), "rep": _("Rep"), "team": _("Team"), "channel": _("Channel"),
    "cohort_size": _("Deals created"), "win_rate_of_closed": _("Win rate of closed deals"),
    "median_days_in_stage": _("Median days in stage"), "continuation": _("Went further"),
    "up": _("Up"), "down": _("Down"),
}


def _display(page: Page, row: dict[str, Any], col: Col) -> Any:
    value = row.get(col.key)
    if col.kind == "text":
        english = row.get(f"{col.key}_en")
        if page.locale == "en" and english:
            return english
        if isinstance(value, str) and value in VALUE_LABELS:
            return page.gettext(VALUE_LABELS[value])
    return value


def format_cell(page: Page, col: Col, value: Any) -> str:
    fmt = page.fmt
    if value is None:
        return "–"
    if col.kind == "int":
        return fmt.number(value)
    if col.kind == "num":
        return fmt.number(value, 2)
    if col.kind == "pct":
        return fmt.percent(value)
    if col.kind == "money":
        return fmt.money_short(value)
    if col.kind == "days":
        return fmt.number(value, 1)
    if col.kind == "pvalue":
        return f"{value:.3g}"
    if col.kind == "bool":
        return page.gettext("Yes") if value else page.gettext("No")
    if col.kind == "date":
        return fmt.date(dt.date.fromisoformat(value) if isinstance(value, str) else value)
    return str(value)


def _drill_url(table: Table, row: dict[str, Any]) -> str | None:
    if "deal_id" in row and table.drill is None:
        return f"/deals/{row['deal_id']}"
    if table.drill is None:
        return None
    params = table.drill(row)
    return None if params is None else "/deals?" + urlencode(params)


def table_view(page: Page, spec: ReportSpec, table: Table, state: FilterState, limit: int = ROWS_SHOWN
               ) -> dict[str, Any]:
    shown = table.rows[:limit]
    return {
        "key": table.key,
        "title": page.gettext(table.title),
        "note": page.gettext(table.note) if table.note else None,
        "columns": [{"key": c.key, "label": page.gettext(c.label), "kind": c.kind} for c in table.columns],
        "rows": [{"cells": [format_cell(page, c, _display(page, r, c)) for c in table.columns],
                  "drill": _drill_url(table, r)} for r in shown],
        "total_rows": len(table.rows),
        "csv": f"/reports/{spec.name}/export.csv?{state.query(table=table.key)}",
        "xlsx": f"/reports/{spec.name}/export.xlsx?{state.query(table=table.key)}",
    }


def _chart_number(col: Col, value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return round(number * 100, 2) if col.kind == "pct" else round(number, 2)


def chart_view(page: Page, chart: Chart, tables: dict[str, Table], limit: int = 30) -> dict[str, Any] | None:
    table = tables.get(chart.table)
    if table is None or not table.rows:
        return None
    cols = {c.key: c for c in table.columns}
    x_col = cols.get(chart.x, Col(chart.x, chart.x))
    rows = table.rows[:limit]
    series = []
    for key in chart.series:
        col = cols.get(key, Col(key, key, "num"))
        series.append({"name": page.gettext(col.label), "kind": col.kind,
                       "data": [_chart_number(col, r.get(key)) for r in rows]})
    return {
        "kind": chart.kind,
        "title": page.gettext(chart.title),
        "categories": [str(_display(page, r, x_col) if _display(page, r, x_col) is not None else "–") for r in rows],
        "series": series,
        "percent": all(s["kind"] == "pct" for s in series),
        "drill": [_drill_url(table, r) for r in rows],
        "table": table.key,
    }


def report_view(page: Page, session: Session, spec: ReportSpec, state: FilterState, *, row_limit: int = ROWS_SHOWN,
                only_tables: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Compute the report for the viewer and shape it for a template."""
    assert state.filters is not None and page.user is not None
    started = time.perf_counter()
    result = spec.compute(session, page.user, state.filters)
    tables = spec.tables(result, state.filters)
    by_key = {t.key: t for t in tables}
    charts_by_table: dict[str, list[dict[str, Any]]] = {}
    for chart in spec.charts:
        view = chart_view(page, chart, by_key)
        if view is not None:
            charts_by_table.setdefault(chart.table, []).append(view)
    chosen = [t for t in tables if only_tables is None or t.key in only_tables]
    return {
        "name": spec.name,
        "title": page.gettext(spec.title),
        "summary": page.gettext(spec.summary),
        "period_meaning": page.gettext(spec.period_meaning),
        "sections": [{"table": table_view(page, spec, t, state, row_limit),
                      "charts": charts_by_table.get(t.key, [])} for t in chosen],
        "result": result,
        "elapsed_ms": round((time.perf_counter() - started) * 1000),
    }


def _base_values(page: Page, session: Session, state: FilterState, spec: ReportSpec | None) -> dict[str, Any]:
    assert page.user is not None
    choices = filter_choices(session, page.user)
    filters = state.filters
    return {
        "active_nav": "reports",
        "state": state,
        "raw": state.raw,
        "period_from": filters.date_from.isoformat() if filters else state.raw.get("from", ""),
        "period_to": filters.date_to.isoformat() if filters else state.raw.get("to", ""),
        "choices": choices,
        "pipelines": list(choices.ref.pipelines.values()),
        "channels": [c for c in choices.ref.channels.values() if c.is_active],
        "spec": spec,
        "reports_menu": [(s.name, page.gettext(s.title)) for s in reports.all_reports().values()],
        "intervals": [("week", page.gettext("Week")), ("month", page.gettext("Month")),
                      ("quarter", page.gettext("Quarter"))],
    }


# ---------------------------------------------------------------- routes

@router.get("/reports")
def reports_index(request: Request, page: CurrentPage, session: DbSession) -> Response:
    state = parse_filters(page, request)
    cards = [{"name": s.name, "title": page.gettext(s.title), "summary": page.gettext(s.summary),
              "period": page.gettext(s.period_meaning), "url": f"/reports/{s.name}?{state.query()}"}
             for s in reports.all_reports().values()]
    return render(page, "report/index.html", {**_base_values(page, session, state, None), "cards": cards})


def _spec_or_404(name: str) -> ReportSpec:
    spec = reports.get(name)
    if spec is None:
        raise NotFound(f"no report named {name}")
    return spec


@router.get("/reports/{name}")
def report_page(name: str, request: Request, page: CurrentPage, session: DbSession) -> Response:
    spec = _spec_or_404(name)
    state = parse_filters(page, request)
    values = _base_values(page, session, state, spec)
    values["report"] = report_view(page, session, spec, state) if state.filters else None
    return render(page, "report/report.html", values, status_code=200 if state.filters else 422)


def _export(name: str, request: Request, page: CurrentPage, session: Session, fmt: str) -> Response:
    spec = _spec_or_404(name)
    state = parse_filters(page, request)
    if state.filters is None:
        return Response(state.error or "", status_code=422, media_type="text/plain; charset=utf-8")
    assert page.user is not None
    result = spec.compute(session, page.user, state.filters)
    tables = spec.tables(result, state.filters)
    table = output.find_table(tables, request.query_params.get("table"))
    if table is None:
        keys = ", ".join(t.key for t in tables)
        return Response(page.gettext("table: choose one of %(keys)s", keys=keys), status_code=422,
                        media_type="text/plain; charset=utf-8")
    localized = Table(table.key, table.title, table.columns,
                      [{**r, **{c.key: _display(page, r, c) for c in table.columns if c.kind == "text"}}
                       for r in table.rows])
    filename = f"{spec.name}-{table.key}-{state.filters.date_from}-{state.filters.date_to}.{fmt}"
    translate: Callable[[str], str] = page.gettext
    chunks = (output.table_csv(localized, translate) if fmt == "csv"
              else output.table_xlsx(localized, translate))
    media = export.CSV_MEDIA_TYPE if fmt == "csv" else export.XLSX_MEDIA_TYPE
    return StreamingResponse(chunks, media_type=media,
                             headers={"Content-Disposition": export.content_disposition(filename)})


@router.get("/reports/{name}/export.csv")
def report_export_csv(name: str, request: Request, page: CurrentPage, session: DbSession) -> Response:
    return _export(name, request, page, session, "csv")


@router.get("/reports/{name}/export.xlsx")
def report_export_xlsx(name: str, request: Request, page: CurrentPage, session: DbSession) -> Response:
    return _export(name, request, page, session, "xlsx")


# ---------------------------------------------------------------- dashboard

#: (report, tables shown, rows per table) per audience, in page order. A rep's figures cover
#: the rep's own deals, a manager's the team's, an admin's the company's (auth.policy).
REP_DASHBOARD = (("funnel", ("stages",), 10), ("winrate", ("buckets",), 12), ("cycle", ("distribution",), 10),
                 ("timeinstage", ("overdue",), 10))
TEAM_DASHBOARD = (("funnel", ("stages",), 10), ("channels", ("channels",), 10), ("winloss", ("reasons",), 10),
                  ("bottlenecks", ("significant",), 10), ("winrate", ("reps",), 30))


def dashboard_widgets(page: Page, session: Session, state: FilterState) -> list[dict[str, Any]]:
    assert page.user is not None
    layout = REP_DASHBOARD if page.user.role == Role.rep else TEAM_DASHBOARD
    widgets = []
    for name, tables, rows in layout:
        spec = reports.get(name)
        if spec is None:
            continue
        view = report_view(page, session, spec, state, row_limit=rows, only_tables=tables)
        view["url"] = f"/reports/{name}?{state.query()}"
        widgets.append(view)
    return widgets


@router.get("/dashboard")
def dashboard(request: Request, page: CurrentPage, session: DbSession) -> Response:
    state = parse_filters(page, request)
    values = _base_values(page, session, state, None)
    values["active_nav"] = "dashboard"
    values["widgets"] = dashboard_widgets(page, session, state) if state.filters else []
    return render(page, "report/dashboard.html", values, status_code=200 if state.filters else 422)
