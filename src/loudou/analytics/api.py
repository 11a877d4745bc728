"""JSON routes under /api/v1/analytics: the same figures as the CLI and the dashboards."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from loudou.analytics import funnel, reports
from loudou.analytics.filters import ReportFilters
from loudou.errors import NotFound
from loudou.web.deps import CurrentUser, DbSession
from loudou.web.jsonio import OrjsonResponse

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])


@router.get("", name="analytics_reports")
def list_reports(viewer: CurrentUser) -> OrjsonResponse:
    """Every report: its name (the path below /api/v1/analytics/), title and what the period means."""
    return OrjsonResponse({"reports": [
        {"name": spec.name, "title": spec.title, "summary": spec.summary, "period": spec.period_meaning,
         "path": f"/api/v1/analytics/{spec.name}"}
        for spec in reports.all_reports().values()
    ]})


@router.get("/funnel", name="analytics_funnel")
def funnel_report(session: DbSession, viewer: CurrentUser,
                  filters: Annotated[ReportFilters, Query()]) -> OrjsonResponse:
    """Cohort funnel of the deals created from `from` to `to` (UTC days, inclusive): how many
    ever reached each stage, conversion from the previous stage with a 95% Wilson interval,
    time in stage, and the cohort's won / lost / disqualified / open counts. `strict=true`
    counts a stage as reached only if every earlier stage was reached too."""
    result: dict[str, Any] = funnel.cohort_funnel(session, viewer, filters)
    return OrjsonResponse(result)


@router.get("/{name}", name="analytics_report")
def report(name: str, session: DbSession, viewer: CurrentUser,
           filters: Annotated[ReportFilters, Query()]) -> OrjsonResponse:
    """Any report of `GET /api/v1/analytics` by name, with the same filters: `from`, `to`
    (UTC days, inclusive), `pipeline_id`, `team_id`, `owner_id`, `channel_id`, `product_id`,
    `industry` (company segment), `interval` (week, month, quarter). Figures cover only what
    the caller may see."""
    spec = reports.get(name)
    if spec is None:
        raise NotFound(f"no report named {name}")
    return OrjsonResponse(spec.compute(session, viewer, filters))
