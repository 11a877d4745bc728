"""Customer value and tiers (PRODUCT C1, C4): per company with deals the viewer may see,
its won revenue to the end of the period, purchase frequency, a projected two-year value,
its engagement (activities of the last 90 days) and open pipeline; A/B/C tiers by value
and high/low engagement, with each tier's revenue and win rate in the period. Defined
precisely in docs/analytics/customers.md.

Two grouped scans, both grouped by ``company_id`` in SQL: the deals (one row of sums per
company) and the activities of the last 90 days joined to those deals. Tiers need the
ranking of every company, so the per-company sums are ranked in Python (one row per
company, never per deal); names are read for the listed top companies only.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.activity.models import Activity
from loudou.analytics.channels import WIN_RATE_DEFINITION, money, rate_fields
from loudou.analytics.filters import ReportFilters, deal_conditions
from loudou.analytics.reports import Chart, Col, ReportSpec, Table, drill_params, register
from loudou.analytics.reports import msg as _
from loudou.analytics.stats import percentile
from loudou.auth.models import User
from loudou.company.models import Company
from loudou.deal.models import Deal, DealStatus

DAY_S = 86_400
YEAR_DAYS = 365
TENURE_FLOOR_DAYS = 90
PROJECTION_YEARS = 2
ENGAGEMENT_DAYS = 90
TOP_LIMIT = 200
#: Tier by the cumulative share of projected value of the companies ranked above.
TIER_A_SHARE = 0.5
TIER_B_SHARE = 0.8
TIERS = ("A", "B", "C")
ENGAGEMENTS = ("high", "low")


@dataclass
class CompanyValue:
    company_id: int
    won_revenue: Decimal
    won_deals: int
    first_win: dt.datetime | None
    last_win: dt.datetime | None
    open_amount: Decimal
    open_deals: int
    won_in_period: int
    lost_in_period: int
    activities: int = 0
    tenure_days: float | None = None
    frequency: float | None = None
    average_won: float | None = None
    projected: float = 0.0
    tier: str = "C"
    engagement: str = "low"


def _aware(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _amount_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, sa.func.coalesce(Deal.amount, 0)), else_=0)), 0)


def company_values(session: Session, viewer: User, filters: ReportFilters) -> list[CompanyValue]:
    """One row per company with a visible deal created before the period end."""
    start, end = filters.start, filters.end
    visible = [*deal_conditions(viewer, filters, filters.pipeline_id), Deal.company_id.is_not(None),
               Deal.created_at < end]
    won_to_date = sa.and_(Deal.status == DealStatus.won, Deal.closed_at < end)
    in_period = sa.and_(Deal.closed_at >= start, Deal.closed_at < end)
    stmt = (
        sa.select(Deal.company_id, _amount_if(won_to_date), _count_if(won_to_date),
                  sa.func.min(sa.case((won_to_date, Deal.closed_at))),
                  sa.func.max(sa.case((won_to_date, Deal.closed_at))),
                  _amount_if(Deal.status == DealStatus.open), _count_if(Deal.status == DealStatus.open),
                  _count_if(sa.and_(Deal.status == DealStatus.won, in_period)),
                  _count_if(sa.and_(Deal.status == DealStatus.lost, in_period)))
        .where(*visible).group_by(Deal.company_id)
    )
    companies = {
        int(cid): CompanyValue(int(cid), Decimal(str(won)), int(n_won), _aware(first), _aware(last),
                               Decimal(str(open_amount)), int(n_open), int(won_p), int(lost_p))
        for cid, won, n_won, first, last, open_amount, n_open, won_p, lost_p in session.execute(stmt)
    }
    activities = (
        sa.select(Deal.company_id, sa.func.count())
        .select_from(Activity).join(Deal, Deal.id == Activity.deal_id)
        .where(*visible, Activity.occurred_at >= end - dt.timedelta(days=ENGAGEMENT_DAYS), Activity.occurred_at < end)
        .group_by(Deal.company_id)
    )
    for cid, n in session.execute(activities):
        if cid is not None and cid in companies:
            companies[cid].activities = int(n)
    return list(companies.values())


def value_and_tiers(companies: list[CompanyValue], end: dt.datetime) -> float | None:
    """Fills tenure, frequency, projected value, tier and engagement; returns the median
    activity count the engagement is split at."""
    for c in companies:
        if c.won_deals and c.first_win is not None:
            c.tenure_days = (end - c.first_win).total_seconds() / DAY_S
            c.frequency = c.won_deals / (max(c.tenure_days, TENURE_FLOOR_DAYS) / YEAR_DAYS)
            c.average_won = float(c.won_revenue) / c.won_deals
            c.projected = float(c.won_revenue) + c.average_won * c.frequency * PROJECTION_YEARS
    companies.sort(key=lambda c: (-c.projected, c.company_id))
    total = sum(c.projected for c in companies)
    above = 0.0
    for c in companies:
        share_above = above / total if total > 0 else 1.0
        c.tier = "A" if share_above < TIER_A_SHARE else "B" if share_above < TIER_B_SHARE else "C"
        above += c.projected
    median = percentile(sorted(float(c.activities) for c in companies), 0.5)
    for c in companies:
        c.engagement = "high" if median is not None and c.activities > 0 and c.activities >= median else "low"
    return median


def _group_row(members: list[CompanyValue], total_revenue: Decimal, total_projected: float) -> dict[str, Any]:
    revenue = sum((c.won_revenue for c in members), Decimal(0))
    projected = sum(c.projected for c in members)
    won = sum(c.won_in_period for c in members)
    lost = sum(c.lost_in_period for c in members)
    return {
        "companies": len(members),
        "won_revenue": money(revenue),
        "revenue_share": float(revenue / total_revenue) if total_revenue else None,
        "projected_value": round(projected, 2),
        "projected_share": projected / total_projected if total_projected else None,
        "open_amount": money(sum((c.open_amount for c in members), Decimal(0))),
        "high_engagement": sum(1 for c in members if c.engagement == "high"),
        "won_in_period": won, "lost_in_period": lost, "closed_in_period": won + lost,
        **rate_fields("win_rate", won, won + lost),
    }


def _company_row(c: CompanyValue, name: str | None, industry: str | None) -> dict[str, Any]:
    return {
        "company_id": c.company_id, "name": name, "industry": industry, "tier": c.tier,
        "engagement": c.engagement,
        "won_revenue": money(c.won_revenue), "won_deals": c.won_deals,
        "first_win": c.first_win.date().isoformat() if c.first_win else None,
        "last_win": c.last_win.date().isoformat() if c.last_win else None,
        "tenure_days": None if c.tenure_days is None else round(c.tenure_days, 2),
        "frequency_per_year": None if c.frequency is None else round(c.frequency, 4),
        "average_won_amount": None if c.average_won is None else round(c.average_won, 2),
        "projected_value": round(c.projected, 2),
        "activities_90d": c.activities,
        "open_amount": money(c.open_amount), "open_deals": c.open_deals,
        "won_in_period": c.won_in_period, "lost_in_period": c.lost_in_period,
    }


def customer_report(session: Session, viewer: User, filters: ReportFilters) -> dict[str, Any]:
    companies = company_values(session, viewer, filters)
    median = value_and_tiers(companies, filters.end)
    total_revenue = sum((c.won_revenue for c in companies), Decimal(0))
    total_projected = sum(c.projected for c in companies)
    by_tier: dict[str, list[CompanyValue]] = defaultdict(list)
    by_segment: dict[tuple[str, str], list[CompanyValue]] = defaultdict(list)
    for c in companies:
        by_tier[c.tier].append(c)
        by_segment[(c.tier, c.engagement)].append(c)
    tiers = [{"tier": t, **_group_row(by_tier[t], total_revenue, total_projected)} for t in TIERS]
    segments = [{"segment": f"{t}-{e}", "tier": t, "engagement": e,
                 **_group_row(by_segment[(t, e)], total_revenue, total_projected)}
                for t in TIERS for e in ENGAGEMENTS]
    top = companies[:TOP_LIMIT]
    details = {row.id: (row.name, row.industry) for row in session.execute(
        sa.select(Company.id, Company.name, Company.industry).where(Company.id.in_([c.company_id for c in top])))
    } if top else {}
    return {
        "report": "customers",
        "period": filters.period(),
        "as_of": filters.end.isoformat(),
        "win_rate_definition": WIN_RATE_DEFINITION,
        "company_count": len(companies),
        "listed": len(top),
        "limit": TOP_LIMIT,
        "won_revenue": money(total_revenue),
        "projected_value": round(total_projected, 2),
        "median_activities_90d": median,
        "tiers": tiers,
        "segments": segments,
        "companies": [_company_row(c, *details.get(c.company_id, (None, None))) for c in top],
    }


# --- the report as a registry entry (CLI, API, pages) ----------------------------------

GROUP_COLUMNS = [
    Col("companies", _("Companies"), "int"), Col("won_revenue", _("Won revenue to date"), "money"),
    Col("revenue_share", _("Share of won revenue"), "pct"),
    Col("projected_value", _("Projected value"), "money"), Col("projected_share", _("Share of projected value"), "pct"),
    Col("open_amount", _("Open pipeline"), "money"), Col("high_engagement", _("Highly engaged companies"), "int"),
    Col("won_in_period", _("Won in period"), "int"), Col("lost_in_period", _("Lost in period"), "int"),
    Col("win_rate", _("Win rate (won ÷ closed)"), "pct"),
    Col("win_rate_ci_low", _("95% low"), "pct"), Col("win_rate_ci_high", _("95% high"), "pct"),
]


def _tables(result: dict[str, Any], filters: ReportFilters) -> list[Table]:
    def drill(row: dict[str, Any]) -> dict[str, Any]:
        return drill_params(filters, cohort=False, company_id=row["company_id"])

    note = _("Only the top 200 companies by projected value are listed; the tiers count every company.")
    return [
        Table("tiers", _("Value tiers"), [Col("tier", _("Tier")), *GROUP_COLUMNS], result["tiers"]),
        Table("segments", _("Segments by value and engagement"),
              [Col("tier", _("Tier")), Col("engagement", _("Engagement")), *GROUP_COLUMNS], result["segments"]),
        Table("companies", _("Companies by projected value"), [
            Col("name", _("Company")), Col("industry", _("Industry")), Col("tier", _("Tier")),
            Col("engagement", _("Engagement")), Col("won_revenue", _("Won revenue to date"), "money"),
            Col("won_deals", _("Won deals"), "int"), Col("first_win", _("First win"), "date"),
            Col("last_win", _("Last win"), "date"), Col("tenure_days", _("Tenure (days)"), "days"),
            Col("frequency_per_year", _("Wins per year"), "num"),
            Col("average_won_amount", _("Average won amount"), "money"),
            Col("projected_value", _("Projected value"), "money"),
            Col("activities_90d", _("Activities, last 90 days"), "int"),
            Col("open_amount", _("Open pipeline"), "money"), Col("open_deals", _("Open deals"), "int"),
        ], result["companies"], drill, note),
    ]


CUSTOMERS = register(ReportSpec(
    name="customers",
    title=_("Customer value and tiers"),
    summary=_("Per company: won revenue to the end of the period, purchase frequency, projected value, "
              "engagement and open pipeline; A/B/C tiers with their revenue and win rate."),
    compute=customer_report,
    tables=_tables,
    charts=(Chart("bar", "tiers", "tier", ("won_revenue",), _("Won revenue by tier")),
            Chart("bar", "tiers", "tier", ("win_rate",), _("Win rate by tier"))),
    period_meaning=_("Value up to the end of the period; deals closed in the period"),
))
