"""JSON routes under /api/v1/analytics: the same figures as the CLI and the dashboards."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from loudou.analytics import funnel
from loudou.analytics.filters import ReportFilters
from loudou.web.deps import CurrentUser, DbSession
from loudou.web.jsonio import OrjsonResponse

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])


@router.get("/funnel", name="analytics_funnel")
def funnel_report(session: DbSession, viewer: CurrentUser,
                  filters: Annotated[ReportFilters, Query()]) -> OrjsonResponse:
    """Cohort funnel of the deals created from `from` to `to` (UTC days, inclusive): how many
    ever reached each stage, conversion from the previous stage with a 95% Wilson interval,
    time in stage, and the cohort's won / lost / disqualified / open counts. `strict=true`
    counts a stage as reached only if every earlier stage was reached too."""
    result: dict[str, Any] = funnel.cohort_funnel(session, viewer, filters)
    return OrjsonResponse(result)
