"""Channel effectiveness (PRODUCT C1, C9): per channel, the deals created in the period
(leads), what became of them, the revenue won, and what the channel cost: spend, CAC,
ROI and cost per lead. Defined precisely in docs/analytics/channels.md.

One grouped scan of the cohort (by channel and status), one of its won deals' companies,
the won deals' cycle times for the medians, and the month rows of ``channel_spend``.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.analytics.filters import ReportFilters, cohort_conditions
from loudou.analytics.reports import Chart, Col, ReportSpec, Table, drill_params, register
from loudou.analytics.reports import msg as _
from loudou.analytics.stats import percentile, wilson
from loudou.auth import policy
from loudou.auth.models import Role, User
from loudou.channel.models import Channel, ChannelSpend
from loudou.deal.models import Deal, DealStatus

DAY_S = 86_400
WIN_RATE_DEFINITION = "won / (won + lost)"
CONVERSION_DEFINITION = "won / leads"
#: The row of the deals without a channel (names as a channel's: Chinese, English).
NO_CHANNEL = ("无渠道", "No channel")


def rate_fields(prefix: str, successes: int, trials: int) -> dict[str, float | None]:
    """``{prefix}``, ``{prefix}_ci_low``, ``{prefix}_ci_high``: a proportion and its 95% Wilson interval."""
    low, high = wilson(successes, trials)
    return {prefix: successes / trials if trials else None, f"{prefix}_ci_low": low, f"{prefix}_ci_high": high}


def money(value: Decimal | float | int | None) -> float:
    return round(float(value or 0), 2)


def spend_visible(viewer: User) -> bool:
    """Spend is company-level data: admins and managers (of a team) see it, reps do not."""
    return policy.scope_role(viewer) in (Role.admin, Role.manager)


def prorated_spend(session: Session, filters: ReportFilters) -> dict[int, Decimal]:
    """Spend per channel over the period: each month's spend times the share of that
    month's days that fall inside the period. Channels without a spend row are absent."""
    first_month = filters.date_from.replace(day=1)
    stmt = sa.select(ChannelSpend.channel_id, ChannelSpend.month, ChannelSpend.amount).where(
        ChannelSpend.month >= first_month, ChannelSpend.month <= filters.date_to)
    if filters.channel_id is not None:
        stmt = stmt.where(ChannelSpend.channel_id == filters.channel_id)
    out: dict[int, Decimal] = defaultdict(Decimal)
    for channel_id, month, amount in session.execute(stmt):
        month_start = month.replace(day=1)
        month_days = calendar.monthrange(month_start.year, month_start.month)[1]
        month_end = month_start + dt.timedelta(days=month_days - 1)
        inside = (min(month_end, filters.date_to) - max(month_start, filters.date_from)).days + 1
        if inside > 0:
            out[int(channel_id)] += Decimal(str(amount or 0)) * inside / month_days
    return out


def _median_days(seconds: list[float]) -> float | None:
    value = percentile(sorted(seconds), 0.5)
    return None if value is None else round(value / DAY_S, 2)


def _row(channel_id: int | None, name: str, name_en: str | None, counts: dict[DealStatus, int],
         won_revenue: Decimal, customers: int, cycles: list[float], spend: Decimal | None,
         show_spend: bool) -> dict[str, Any]:
    leads = sum(counts.values())
    won, lost = counts.get(DealStatus.won, 0), counts.get(DealStatus.lost, 0)
    revenue = money(won_revenue)
    spent = money(spend) if show_spend and spend is not None else None
    return {
        "channel_id": channel_id, "name": name, "name_en": name_en,
        "leads": leads, "won": won, "lost": lost,
        "disqualified": counts.get(DealStatus.disqualified, 0), "open": counts.get(DealStatus.open, 0),
        **rate_fields("conversion", won, leads),
        "closed": won + lost,
        **rate_fields("win_rate", won, won + lost),
        "median_cycle_days": _median_days(cycles), "won_cycles": len(cycles),
        "won_revenue": revenue, "customers_won": customers,
        "spend": spent,
        "cac": round(spent / customers, 2) if spent is not None and customers else None,
        "roi": round((revenue - spent) / spent, 4) if spent else None,
        "cost_per_lead": round(spent / leads, 2) if spent is not None and leads else None,
    }


def channel_report(session: Session, viewer: User, filters: ReportFilters) -> dict[str, Any]:
    cohort = cohort_conditions(viewer, filters, filters.pipeline_id)
    counts: dict[int | None, dict[DealStatus, int]] = defaultdict(dict)
    revenue: dict[int | None, Decimal] = defaultdict(Decimal)
    stmt = (sa.select(Deal.channel_id, Deal.status, sa.func.count(), sa.func.coalesce(sa.func.sum(Deal.amount), 0))
            .where(*cohort).group_by(Deal.channel_id, Deal.status))
    for channel_id, status, n, amount in session.execute(stmt):
        counts[channel_id][DealStatus(status)] = int(n)
        if DealStatus(status) == DealStatus.won:
            revenue[channel_id] = Decimal(str(amount or 0))

    # Customers won: distinct companies with a won deal, plus one per won deal without a company.
    won = [*cohort, Deal.status == DealStatus.won]
    no_company = sa.func.sum(sa.case((Deal.company_id.is_(None), 1), else_=0))
    customers: dict[int | None, int] = {
        channel_id: int(distinct or 0) + int(loose or 0)
        for channel_id, distinct, loose in session.execute(
            sa.select(Deal.channel_id, sa.func.count(sa.distinct(Deal.company_id)), no_company)
            .where(*won).group_by(Deal.channel_id))
    }
    total_customers = session.execute(
        sa.select(sa.func.count(sa.distinct(Deal.company_id)), no_company).where(*won)).one()

    cycles: dict[int | None, list[float]] = defaultdict(list)
    for channel_id, created_at, closed_at in session.execute(
            sa.select(Deal.channel_id, Deal.created_at, Deal.closed_at).where(*won, Deal.closed_at.is_not(None))):
        if closed_at is not None:
            cycles[channel_id].append((closed_at - created_at).total_seconds())

    show_spend = spend_visible(viewer)
    spend = prorated_spend(session, filters) if show_spend else {}
    names = {c.id: (c.name, c.name_en) for c in session.scalars(sa.select(Channel))}
    listed = [c for c in names if c in counts or c in spend]
    rows = [_row(c, names[c][0], names[c][1], counts.get(c, {}), revenue.get(c, Decimal(0)), customers.get(c, 0),
                 cycles.get(c, []), spend.get(c), show_spend) for c in listed]
    rows.sort(key=lambda r: (r["roi"] is None, -(r["roi"] or 0), -r["won_revenue"], -r["leads"], r["name"]))
    if None in counts:
        rows.append(_row(None, NO_CHANNEL[0], NO_CHANNEL[1], counts[None], revenue.get(None, Decimal(0)),
                         customers.get(None, 0), cycles.get(None, []), None, show_spend))

    all_counts: dict[DealStatus, int] = defaultdict(int)
    for by_status in counts.values():
        for status, n in by_status.items():
            all_counts[status] += n
    total_spend = sum((spend[c] for c in listed if c in spend), Decimal(0)) if spend else None
    total = _row(None, "", None, all_counts, sum(revenue.values(), Decimal(0)),
                 int(total_customers[0] or 0) + int(total_customers[1] or 0),
                 [s for values in cycles.values() for s in values], total_spend, show_spend)
    del total["channel_id"], total["name"], total["name_en"]
    return {
        "report": "channels",
        "period": filters.period(),
        "win_rate_definition": WIN_RATE_DEFINITION,
        "conversion_definition": CONVERSION_DEFINITION,
        "spend_visible": show_spend,
        "channels": rows,
        "total": total,
    }


# --- the report as a registry entry (CLI, API, pages) ----------------------------------

COLUMNS = [
    Col("leads", _("Leads"), "int"), Col("won", _("Won"), "int"), Col("lost", _("Lost"), "int"),
    Col("conversion", _("Conversion (won ÷ leads)"), "pct"),
    Col("conversion_ci_low", _("95% low"), "pct"), Col("conversion_ci_high", _("95% high"), "pct"),
    Col("win_rate", _("Win rate (won ÷ closed)"), "pct"),
    Col("win_rate_ci_low", _("95% low"), "pct"), Col("win_rate_ci_high", _("95% high"), "pct"),
    Col("median_cycle_days", _("Median cycle of won deals"), "days"),
    Col("won_revenue", _("Won revenue"), "money"), Col("customers_won", _("Customers won"), "int"),
    Col("spend", _("Spend"), "money"), Col("cac", _("Customer acquisition cost"), "money"),
    Col("roi", _("ROI"), "pct"), Col("cost_per_lead", _("Cost per lead"), "money"),
]


def _tables(result: dict[str, Any], filters: ReportFilters) -> list[Table]:
    def drill(row: dict[str, Any]) -> dict[str, Any] | None:
        if row.get("channel_id") is None:  # the deal list has no "without channel" filter
            return None
        return drill_params(filters, channel_id=row["channel_id"])

    note = None if result["spend_visible"] else _("Spend, CAC, ROI and cost per lead are shown to managers and "
                                                   "admins only.")
    return [
        Table("channels", _("Channels by ROI"), [Col("name", _("Channel")), *COLUMNS], result["channels"], drill,
              note),
        Table("total", _("All channels"), COLUMNS, [result["total"]], lambda _row: drill_params(filters), note),
    ]


CHANNELS = register(ReportSpec(
    name="channels",
    title=_("Channel effectiveness"),
    summary=_("Per channel, the deals created in the period: conversion to won, win rate, sales cycle, "
              "won revenue, spend, customer acquisition cost and ROI."),
    compute=channel_report,
    tables=_tables,
    charts=(Chart("hbar", "channels", "name", ("roi",), _("ROI by channel")),
            Chart("bar", "channels", "name", ("leads", "won"), _("Leads and won deals by channel"))),
    period_meaning=_("Deals created in the period; spend of the period's days"),
))
