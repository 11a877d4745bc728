"""Channel effectiveness (PRODUCT C1, C9): per channel, the deals created in the period
(leads), what became of them, the revenue won, and what the channel cost: spend, CAC,
ROI and cost per lead. Defined precisely in docs/analytics/channels.md.

The cohort's leads and won revenue by channel and status come from the monthly
``analytics_channel_counts`` (partial months from the deals' cohort index); customers won
and the cycles of the won leads from ``analytics_won_leads``, one row per won deal with its
cycle in microseconds (partial months from the won deals' index), so the medians stay
exact; spend from the month rows of ``channel_spend``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
from collections import defaultdict
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.analytics import counters, counters_value
from loudou.analytics.filters import ReportFilters, deal_conditions
from loudou.analytics.reports import Chart, Col, ReportSpec, Table, drill_params, register
from loudou.analytics.reports import msg as _
from loudou.analytics.stats import percentile, wilson
from loudou.auth import policy
from loudou.auth.models import Role, User
from loudou.channel.models import Channel, ChannelSpend
from loudou.company.models import Company
from loudou.deal.models import Deal, DealStatus
from loudou.pipeline.models import Pipeline

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


def _countable(filters: ReportFilters) -> bool:
    """Filters the channel counts carry (product and company segment are not in them)."""
    return filters.product_id is None and filters.industry is None


def _counter_conditions(viewer: User, filters: ReportFilters, months: tuple[dt.date, dt.date]
                        ) -> list[sa.ColumnElement[bool]]:
    c = counters_value.channel_counts.c
    out = [c.month >= months[0], c.month < months[1], policy.owned_condition(viewer, c.team_id, c.owner_id)]
    for name in ("pipeline_id", "team_id", "owner_id", "channel_id"):
        value = getattr(filters, name)
        if value is not None:
            out.append(c[name] == value)
    return out


def _raw_counts(session: Session, viewer: User, filters: ReportFilters, start: dt.datetime, end: dt.datetime
                ) -> list[tuple[int | None, DealStatus, int, Decimal]]:
    """Deals created in [start, end) by channel and status, with their amount: from the
    cohort index (a range per pipeline) when it covers the filters."""
    conditions = [Deal.created_at >= start, Deal.created_at < end, *deal_conditions(viewer, filters,
                                                                                   filters.pipeline_id)]
    if _countable(filters):
        if filters.pipeline_id is None:  # every deal has a pipeline: a range per pipeline of the index
            conditions.append(Deal.pipeline_id.in_(sa.select(Pipeline.id)))
        deals = counters_value.via("ix_deals_cohort")
        c = deals.c
        stmt = (sa.select(c.channel_id, c.status, sa.func.count(), sa.func.coalesce(sa.func.sum(c.amount), 0))
                .select_from(deals.table).where(*deals.adapt(conditions)).group_by(c.channel_id, c.status))
    else:
        stmt = (sa.select(Deal.channel_id, Deal.status, sa.func.count(),
                          sa.func.coalesce(sa.func.sum(Deal.amount), 0))
                .where(*conditions).group_by(Deal.channel_id, Deal.status))
    return [(channel_id, DealStatus(status), int(n), Decimal(str(amount or 0)))
            for channel_id, status, n, amount in session.execute(stmt)]


def status_counts(session: Session, viewer: User, filters: ReportFilters
                  ) -> tuple[dict[int | None, dict[DealStatus, int]], dict[int | None, Decimal]]:
    """The cohort's leads per channel and status, and the won leads' amount per channel:
    whole months from ``analytics_channel_counts``, partial months (and filters the counts
    do not carry) from the deals."""
    rows: list[tuple[int | None, DealStatus, int, Decimal]] = []
    if _countable(filters):
        months, edges = counters.split_period(filters.start, filters.end)
        if months is not None:
            t = counters_value.channel_counts
            stmt = (sa.select(t.c.channel_id, t.c.status, sa.func.sum(t.c.n), sa.func.sum(t.c.amount_cents))
                    .where(*_counter_conditions(viewer, filters, months)).group_by(t.c.channel_id, t.c.status))
            rows += [(int(channel_id) or None, DealStatus(status), int(n or 0), Decimal(int(amount or 0)) / 100)
                     for channel_id, status, n, amount in session.execute(stmt)]
        for start, end in edges:
            rows += _raw_counts(session, viewer, filters, start, end)
    else:
        rows = _raw_counts(session, viewer, filters, filters.start, filters.end)
    totals: dict[tuple[int | None, DealStatus], tuple[int, Decimal]] = {}
    for channel_id, status, n, amount in rows:
        count, total = totals.get((channel_id, status), (0, Decimal(0)))
        totals[(channel_id, status)] = (count + n, total + amount)
    counts: dict[int | None, dict[DealStatus, int]] = defaultdict(dict)
    revenue: dict[int | None, Decimal] = defaultdict(Decimal)
    for (channel_id, status), (n, amount) in totals.items():
        if n:
            counts[channel_id][status] = n
            if status == DealStatus.won:
                revenue[channel_id] = amount
    return counts, revenue


Leads = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]


def _raw_won(session: Session, viewer: User, filters: ReportFilters, start: dt.datetime, end: dt.datetime
             ) -> Leads:
    """(channel, company, cycle in seconds or NaN) of the won deals created in [start, end):
    an index-only read of ``ix_deals_value_won``; 0 stands for no channel, no company."""
    deals = counters_value.via(counters_value.WON_INDEX)
    c = deals.c
    conditions = [counters_value.status_in(c.status, DealStatus.won), c.created_at >= start, c.created_at < end,
                  *deals.adapt(deal_conditions(viewer, filters, filters.pipeline_id))]
    stmt = (sa.select(sa.func.coalesce(c.channel_id, 0), sa.func.coalesce(c.company_id, 0),
                      counters_value.as_text_on_sqlite(session, c.created_at),
                      counters_value.as_text_on_sqlite(session, c.closed_at))
            .select_from(deals.table).where(*conditions))
    rows = counters_value.fetch_raw(session, stmt)
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    channel_ids, company_ids, created, closed = zip(*rows, strict=True)
    return (np.array(channel_ids, dtype=np.int64), np.array(company_ids, dtype=np.int64),
            counters_value.elapsed_seconds_each(created, closed))


def _counted_won(session: Session, viewer: User, filters: ReportFilters, months: tuple[dt.date, dt.date]) -> Leads:
    """The same for whole months, from ``analytics_won_leads`` (integers only)."""
    t = counters_value.won_leads
    conditions = [t.c.month >= months[0], t.c.month < months[1],
                  policy.owned_condition(viewer, t.c.team_id, t.c.owner_id)]
    for name in ("pipeline_id", "team_id", "owner_id", "channel_id", "product_id"):
        value = getattr(filters, name)
        if value is not None:
            conditions.append(t.c[name] == value)
    if filters.industry is not None:
        conditions.append(t.c.company_id.in_(sa.select(Company.id).where(Company.industry == filters.industry)))
    stmt = sa.select(t.c.channel_id, t.c.company_id, sa.func.coalesce(t.c.cycle_us, -1),
                     sa.case((t.c.cycle_us.is_(None), 0), else_=1)).where(*conditions)
    rows = counters_value.fetch_raw(session, stmt)
    values = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=4 * len(rows)).reshape(-1, 4)
    seconds = np.where(values[:, 3] > 0, values[:, 2] / 10**6, np.nan)  # microseconds / 10**6: total_seconds()
    return values[:, 0], values[:, 1], seconds


def won_leads(session: Session, viewer: User, filters: ReportFilters
              ) -> tuple[dict[int | None, int], tuple[int, int], dict[int | None, list[float]]]:
    """Customers won per channel and overall (distinct companies, and won leads without a
    company) and the won leads' cycles in seconds per channel: whole months from
    ``analytics_won_leads``, partial months from the won deals' index."""
    months, edges = counters.split_period(filters.start, filters.end)
    parts = [_counted_won(session, viewer, filters, months)] if months is not None else []
    parts += [_raw_won(session, viewer, filters, start, end) for start, end in edges]
    if not parts or not sum(len(p[0]) for p in parts):
        return {}, (0, 0), {}
    channel = np.concatenate([p[0] for p in parts])  # 0: no channel
    company = np.concatenate([p[1] for p in parts])  # 0: no company
    seconds = np.concatenate([p[2] for p in parts])
    # Distinct (channel, company) pairs: each is one customer of that channel.
    width = int(company.max()) + 1
    pairs = np.unique(channel[company > 0] * width + company[company > 0])
    distinct = dict(zip(*np.unique(pairs // width, return_counts=True), strict=True))
    loose = dict(zip(*np.unique(channel[company == 0], return_counts=True), strict=True))
    has_cycle = ~np.isnan(seconds)
    customers: dict[int | None, int] = {}
    cycles: dict[int | None, list[float]] = {}
    for value in np.unique(channel).tolist():
        key = None if value == 0 else int(value)
        customers[key] = int(distinct.get(value, 0)) + int(loose.get(value, 0))
        cycles[key] = seconds[(channel == value) & has_cycle].tolist()
    return customers, (len(np.unique(company[company > 0])), int(np.count_nonzero(company == 0))), cycles


def channel_report(session: Session, viewer: User, filters: ReportFilters) -> dict[str, Any]:
    counts, revenue = status_counts(session, viewer, filters)
    customers, total_customers, cycles = won_leads(session, viewer, filters)

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
