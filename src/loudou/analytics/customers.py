"""Customer value and tiers (PRODUCT C1, C4): per company with deals the viewer may see,
its won revenue to the end of the period, purchase frequency, a projected two-year value,
its engagement (activities of the last 90 days) and open pipeline; A/B/C tiers by value
and high/low engagement, with each tier's revenue and win rate in the period. Defined
precisely in docs/analytics/customers.md.

Index-only queries over the deals the viewer may see (the covering indexes of
:mod:`loudou.analytics.counters_value`, never the deal rows): the number of companies; the
companies with an activity in the last 90 days, from the deals' ``last_activity_at`` (only
deals last touched after the period end are looked up on the activity index); each deal
won before the end; each open deal; the company of each deal lost in the period. When the
median activity count is 0 (more than half of the companies have none), a company is
highly engaged exactly when it has any activity and the counts are read for the listed
companies only; otherwise for every deal touched since the window opened. Only the
companies with a win are ranked (the others have no projected value, so they share one
tier); everything is summed in arrays indexed by company id, with the same floating-point
operations in the same order as one company at a time. Names are read for the listed
companies only.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.activity.models import Activity
from loudou.analytics import counters_value
from loudou.analytics.channels import WIN_RATE_DEFINITION, money, rate_fields
from loudou.analytics.filters import ReportFilters, deal_conditions
from loudou.analytics.reports import Chart, Col, ReportSpec, Table, drill_params, register
from loudou.analytics.reports import msg as _
from loudou.auth import policy
from loudou.auth.models import Role, User
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
_US = dt.timedelta(microseconds=1)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


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


@dataclass
class Winners:
    """The companies with a win to the period end, in rank order (projected value
    descending, then company id), one array element each."""

    ids: IntArray
    won_cents: IntArray
    won_deals: IntArray
    won_in_period: IntArray
    tenure_days: FloatArray
    frequency: FloatArray
    average_won: FloatArray
    projected: FloatArray
    tier: npt.NDArray[np.str_]
    first_win: IntArray             # microseconds since 1970 (UTC)
    last_win: IntArray


@dataclass
class Companies:
    """The report's companies: those with a win as :class:`Winners`; every company's open
    pipeline, losses in the period and recent activities in arrays indexed by company id."""

    count: int                      # companies with a visible deal created before the end
    winners: Winners
    open_cents: IntArray
    open_deals: IntArray
    lost: IntArray
    activities: IntArray            # complete when ``counted``, else for the listed companies only
    counted: bool
    winner: BoolArray
    high: BoolArray                 # highly engaged
    median: float | None            # of activities_90d over every company
    zero_tier: str                  # the tier of the companies without projected value


def _cents_to_decimal(cents: int) -> Decimal:
    return Decimal(int(cents)) / 100


def _visible(viewer: User, filters: ReportFilters) -> list[sa.ColumnElement[bool]]:
    return [*deal_conditions(viewer, filters, filters.pipeline_id), Deal.company_id.is_not(None),
            Deal.created_at < filters.end]


def _by_company(viewer: User, filters: ReportFilters) -> counters_value.Via:
    """The deals by company: within one team when the view is narrowed to a team (a
    manager's, or the team filter), else all of them."""
    one_team = filters.team_id is not None or (policy.scope_role(viewer) == Role.manager and
                                               viewer.team_id is not None)
    return counters_value.via(counters_value.TEAM_COMPANY_INDEX if one_team else counters_value.COMPANY_INDEX)


def _member_count(session: Session, viewer: User, filters: ReportFilters) -> int:
    """The companies with a visible deal created before the end: one pass over the deals
    by company (a team's only, for a team's view)."""
    deals = _by_company(viewer, filters)
    ids = (sa.select(deals.c.company_id).select_from(deals.table).where(*deals.adapt(_visible(viewer, filters)))
           .group_by(deals.c.company_id).subquery())
    return int(session.execute(sa.select(sa.func.count()).select_from(ids)).scalar_one())


def _first_member_ids(session: Session, viewer: User, filters: ReportFilters, limit: int) -> list[int]:
    deals = _by_company(viewer, filters)
    return [int(cid) for cid in session.execute(
        sa.select(deals.c.company_id).select_from(deals.table).where(*deals.adapt(_visible(viewer, filters)))
        .group_by(deals.c.company_id).order_by(deals.c.company_id).limit(limit)).scalars()]


def _window(filters: ReportFilters) -> tuple[dt.datetime, dt.datetime]:
    """The engagement window: the 90 days before the period end."""
    return filters.end - dt.timedelta(days=ENGAGEMENT_DAYS), filters.end


def _touched(viewer: User, filters: ReportFilters, since: dt.datetime, until: dt.datetime | None = None
             ) -> sa.Subquery:
    """The visible deals last touched from ``since`` (to ``until``): id, company, in deal
    order, so that consecutive lookups on the activity index share its pages."""
    deals = counters_value.via(counters_value.TOUCHED_INDEX)
    c = deals.c
    conditions = [c.last_activity_at >= since, *deals.adapt(_visible(viewer, filters))]
    if until is not None:
        conditions.append(c.last_activity_at < until)
    return sa.select(c.id, c.company_id).select_from(deals.table).where(*conditions).order_by(c.id).subquery()


def _active_rows(session: Session, viewer: User, filters: ReportFilters) -> list[Any]:
    """(company,) per deal with an activity in the window. No activity of a deal is later
    than its ``last_activity_at``, which is its latest activity's time: a deal last touched
    inside the window has one, one last touched before has none, and only the deals last
    touched after the end are looked up."""
    since, end = _window(filters)
    deals = counters_value.via(counters_value.TOUCHED_INDEX)
    c = deals.c
    inside = (sa.select(c.company_id).select_from(deals.table)
              .where(c.last_activity_at >= since, c.last_activity_at < end, *deals.adapt(_visible(viewer, filters))))
    after = _touched(viewer, filters, end)
    in_window = sa.exists().where(Activity.deal_id == after.c.id, Activity.occurred_at >= since,
                                  Activity.occurred_at < end)
    return counters_value.fetch_raw(session, sa.union_all(inside, sa.select(after.c.company_id).where(in_window)))


def _won_rows(session: Session, viewer: User, filters: ReportFilters) -> list[Any]:
    """(company, amount in cents, closing time) of each deal won before the end
    (``ix_deals_value_closed``)."""
    deals = counters_value.via(counters_value.CLOSED_INDEX)
    c = deals.c
    stmt = (sa.select(c.company_id, sa.func.coalesce(counters_value.cents(c.amount), 0),
                      counters_value.as_text_on_sqlite(session, c.closed_at))
            .select_from(deals.table)
            .where(counters_value.status_in(c.status, DealStatus.won), c.closed_at < filters.end,
                   *deals.adapt(_visible(viewer, filters))))
    return counters_value.fetch_raw(session, stmt)


def _open_rows(session: Session, viewer: User, filters: ReportFilters) -> list[Any]:
    """(company, amount in cents) of each open deal (``ix_deals_value_open``)."""
    deals = counters_value.via(counters_value.OPEN_INDEX)
    c = deals.c
    stmt = (sa.select(c.company_id, sa.func.coalesce(counters_value.cents(c.amount), 0)).select_from(deals.table)
            .where(counters_value.status_in(c.status, DealStatus.open), *deals.adapt(_visible(viewer, filters))))
    return counters_value.fetch_raw(session, stmt)


def _lost_companies(session: Session, viewer: User, filters: ReportFilters) -> list[Any]:
    """(company,) of each deal lost in the period (``ix_deals_value_closed``)."""
    deals = counters_value.via(counters_value.CLOSED_INDEX)
    c = deals.c
    stmt = (sa.select(c.company_id).select_from(deals.table)
            .where(counters_value.status_in(c.status, DealStatus.lost), c.closed_at >= filters.start,
                   c.closed_at < filters.end, *deals.adapt(_visible(viewer, filters))))
    return counters_value.fetch_raw(session, stmt)


def _activity_rows(session: Session, viewer: User, filters: ReportFilters, companies: list[int] | None = None
                   ) -> list[Any]:
    """(company, activities in the window) per deal: of every deal touched since the window
    opened, or of every visible deal of ``companies`` (a few)."""
    since, end = _window(filters)
    if companies is None:
        deals = _touched(viewer, filters, since)
    else:
        via = _by_company(viewer, filters)
        deals = (sa.select(via.c.id, via.c.company_id).select_from(via.table)
                 .where(via.c.company_id.in_(companies), *via.adapt(_visible(viewer, filters)))
                 .order_by(via.c.id).subquery())
    in_window = (sa.select(sa.func.count()).select_from(Activity)
                 .where(Activity.deal_id == deals.c.id, Activity.occurred_at >= since, Activity.occurred_at < end)
                 .scalar_subquery())
    return counters_value.fetch_raw(session, sa.select(deals.c.company_id, in_window))


def _column(rows: list[Any], i: int) -> IntArray:
    return np.fromiter((int(row[i]) for row in rows), dtype=np.int64, count=len(rows))


def _ints(rows: list[Any], width: int) -> IntArray:
    """Rows of ``width`` integers as a 2-D array (one pass in C)."""
    flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=len(rows) * width)
    return flat.reshape(len(rows), width)


def _median(activities: IntArray, count: int) -> float | None:
    """stats.percentile(sorted(activities_90d of every company), 0.5), from the count of
    companies per value (those not in ``activities`` have none)."""
    if count == 0:
        return None
    positive = activities[activities > 0]
    values, counts = np.unique(positive, return_counts=True)
    histogram = Counter({int(v): int(n) for v, n in zip(values, counts, strict=True)})
    if count > len(positive):
        histogram[0] += count - len(positive)
    pos = (count - 1) * 0.5
    lo = int(pos)

    def value_at(rank: int) -> float:
        seen = 0
        for value in sorted(histogram):
            seen += histogram[value]
            if rank < seen:
                return float(value)
        return float(max(histogram))

    low, high = value_at(lo), value_at(min(lo + 1, count - 1))
    return low + (high - low) * (pos - lo)


def _tiers(share_above: FloatArray) -> npt.NDArray[np.str_]:
    return np.where(share_above < TIER_A_SHARE, "A", np.where(share_above < TIER_B_SHARE, "B", "C"))


def _winners(rows: list[Any], filters: ReportFilters) -> tuple[Winners, str]:
    """The companies with a win, valued and ranked, and the tier of the companies without
    projected value. Per company exactly as ``float`` arithmetic one at a time: tenure =
    (end − first win) in seconds ÷ 86,400, frequency = wins ÷ (max(tenure, 90) ÷ 365),
    average = revenue ÷ wins, projected = revenue + average × frequency × 2."""
    company, cents = _column(rows, 0), _column(rows, 1)
    closed = _epoch_microseconds([row[2] for row in rows])
    by_company = np.argsort(company, kind="stable")
    company, cents, closed = company[by_company], cents[by_company], closed[by_company]
    ids, starts = np.unique(company, return_index=True)
    won_cents = np.add.reduceat(cents, starts) if len(ids) else cents
    won_deals = np.diff(np.append(starts, len(company))).astype(np.int64)
    first_win = np.minimum.reduceat(closed, starts) if len(ids) else closed
    last_win = np.maximum.reduceat(closed, starts) if len(ids) else closed
    in_period = (closed >= _epoch_microseconds([filters.start])[0]).astype(np.int64)
    won_in_period = np.add.reduceat(in_period, starts) if len(ids) else in_period
    tenure_us = _epoch_microseconds([filters.end])[0] - first_win
    tenure_days = tenure_us / 10**6 / DAY_S  # timedelta.total_seconds() is microseconds / 10**6
    frequency = won_deals / (np.maximum(tenure_days, TENURE_FLOOR_DAYS) / YEAR_DAYS)
    revenue = won_cents / 100  # float(Decimal(cents) / 100): both correctly rounded
    average_won = revenue / won_deals
    projected = revenue + average_won * frequency * PROJECTION_YEARS
    order = np.lexsort((ids, -projected))
    projected = projected[order]
    total = sum(projected.tolist())  # the same additions as summing company by company
    running = np.cumsum(projected)  # sequential, like `above += projected` one at a time
    above = np.concatenate(([0.0], running[:-1]))
    share = above / total if total > 0 else np.ones(len(projected))
    positive = int(np.count_nonzero(projected > 0))
    zero_above = float(running[positive - 1]) if positive else 0.0
    zero_tier = str(_tiers(np.array([zero_above / total if total > 0 else 1.0]))[0])
    winners = Winners(ids[order], won_cents[order], won_deals[order], won_in_period[order], tenure_days[order],
                      frequency[order], average_won[order], projected, _tiers(share), first_win[order],
                      last_win[order])
    return winners, zero_tier


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _epoch_microseconds(times: list[Any]) -> IntArray:
    """Whole microseconds since 1970 (UTC) of each time, exact; SQLite's stored UTC text
    (read with ``as_text_on_sqlite``) is parsed by numpy."""
    if times and isinstance(times[0], str):
        try:
            return np.array(times, dtype="datetime64[us]").astype(np.int64)
        except ValueError:  # not the stored format: one at a time below
            pass
    parse = counters_value.parse_stored_time
    return np.fromiter(((parse(t) - _EPOCH) // _US for t in times), dtype=np.int64,  # type: ignore[operator]
                       count=len(times))


def _from_epoch(microseconds: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=int(microseconds))


def company_values(session: Session, viewer: User, filters: ReportFilters) -> Companies:
    """Every company with a visible deal created before the period end, with its tier and
    engagement. When more than half of them have no activity in the 90 days, the median is
    0 and a company is highly engaged exactly when it has any: the counts are then read for
    the listed companies only (:func:`top_companies`)."""
    count = _member_count(session, viewer, filters)
    active_ids = _ints(_active_rows(session, viewer, filters), 1)[:, 0]
    won = _won_rows(session, viewer, filters)
    opens = _ints(_open_rows(session, viewer, filters), 2)
    lost_ids = _ints(_lost_companies(session, viewer, filters), 1)[:, 0]
    winners, zero_tier = _winners(won, filters)
    size = 1 + max([0, *(int(a.max()) for a in (active_ids, winners.ids, opens[:, 0], lost_ids) if len(a))])
    active = np.zeros(size, dtype=np.bool_)
    active[active_ids] = True
    median_rank = min((count - 1) // 2 + 1, count - 1)  # the higher of the ranks the median reads
    # Both ranks hold companies without activity: the median is 0, no count is needed.
    counted = not (count and median_rank < count - int(np.count_nonzero(active)))
    touched = _ints([row for row in _activity_rows(session, viewer, filters) if row[1]] if counted else [], 2)
    open_cents = np.bincount(opens[:, 0], weights=opens[:, 1], minlength=size).astype(np.int64)
    open_deals = np.bincount(opens[:, 0], minlength=size).astype(np.int64)
    lost = np.bincount(lost_ids, minlength=size).astype(np.int64)
    winner = np.zeros(size, dtype=np.bool_)
    winner[winners.ids] = True
    activities = np.bincount(touched[:, 0], weights=touched[:, 1], minlength=size).astype(np.int64)
    if counted:
        median = _median(activities, count)
        high = (activities > 0) & (activities >= median) if median is not None else np.zeros(size, dtype=np.bool_)
    else:
        median = 0.0
        high = active
    return Companies(count, winners, open_cents, open_deals, lost, activities, counted, winner, high,
                     median, zero_tier)


def _group_row(found: Companies, members: BoolArray, others: int, others_high: int, others_open_cents: int,
               others_lost: int, total_revenue: Decimal, total_projected: float) -> dict[str, Any]:
    """A tier's or segment's sums: the companies with a win where ``members`` (rank order)
    and ``others`` companies without one (no revenue, projected value or win)."""
    w = found.winners
    ids = w.ids[members]
    revenue = _cents_to_decimal(int(w.won_cents[members].sum()))
    projected: float = sum(w.projected[members].tolist())  # company by company, in rank order
    if others and not len(ids):
        projected += 0.0  # their projected values, 0.0 each
    won = int(w.won_in_period[members].sum())
    lost = int(found.lost[ids].sum()) + others_lost
    open_amount = _cents_to_decimal(int(found.open_cents[ids].sum()) + others_open_cents)
    return {
        "companies": len(ids) + others,
        "won_revenue": money(revenue),
        "revenue_share": float(revenue / total_revenue) if total_revenue else None,
        "projected_value": round(projected, 2),
        "projected_share": projected / total_projected if total_projected else None,
        "open_amount": money(open_amount),
        "high_engagement": int(np.count_nonzero(found.high[ids])) + others_high,
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


def company_value(found: Companies, company_id: int) -> CompanyValue:
    """One company's values (a listed one)."""
    def at(values: npt.NDArray[Any]) -> Any:
        return values[company_id] if company_id < len(values) else 0

    open_amount, open_deals = _cents_to_decimal(at(found.open_cents)), int(at(found.open_deals))
    lost, activities = int(at(found.lost)), int(at(found.activities))
    engagement = "high" if at(found.high) else "low"
    if not at(found.winner):
        return CompanyValue(company_id, Decimal(0), 0, None, None, open_amount, open_deals, 0, lost, activities,
                            tier=found.zero_tier, engagement=engagement)
    w = found.winners
    i = int(np.flatnonzero(w.ids == company_id)[0])
    return CompanyValue(company_id, _cents_to_decimal(w.won_cents[i]), int(w.won_deals[i]),
                        _from_epoch(w.first_win[i]), _from_epoch(w.last_win[i]), open_amount, open_deals,
                        int(w.won_in_period[i]), lost, activities, tenure_days=float(w.tenure_days[i]),
                        frequency=float(w.frequency[i]), average_won=float(w.average_won[i]),
                        projected=float(w.projected[i]), tier=str(w.tier[i]), engagement=engagement)


def top_companies(session: Session, viewer: User, filters: ReportFilters, found: Companies, limit: int
                  ) -> list[CompanyValue]:
    """The first ``limit`` companies by projected value, then company id."""
    w = found.winners
    listed = [int(cid) for cid in w.ids[w.projected > 0][:limit]]
    if len(listed) < limit:
        ranked = set(w.ids[w.projected != 0].tolist())
        for cid in _first_member_ids(session, viewer, filters, limit - len(listed) + len(ranked)):
            # projected 0 (with or without a win), by company id
            if len(listed) == limit:
                break
            if cid not in ranked:
                listed.append(cid)
        listed += [int(cid) for cid in w.ids[w.projected < 0][:limit - len(listed)]]
    if not found.counted and listed:
        touched = [row for row in _activity_rows(session, viewer, filters, listed) if row[1]]
        np.add.at(found.activities, _column(touched, 0), _column(touched, 1))  # active: within the arrays
    return [company_value(found, cid) for cid in listed]


def customer_report(session: Session, viewer: User, filters: ReportFilters) -> dict[str, Any]:
    found = company_values(session, viewer, filters)
    w = found.winners
    total_revenue = _cents_to_decimal(int(w.won_cents.sum()))
    total_projected: float = sum(w.projected.tolist())
    others = found.count - len(w.ids)
    if others and not len(w.ids):
        total_projected += 0.0
    # The companies without a win, split by engagement: counts, open pipeline and losses.
    high_others = found.high & ~found.winner
    counts = {"high": int(np.count_nonzero(high_others))}
    counts["low"] = others - counts["high"]
    open_cents = {"high": int(found.open_cents[high_others].sum())}
    open_cents["low"] = int(found.open_cents[~found.winner].sum()) - open_cents["high"]
    lost = {"high": int(found.lost[high_others].sum())}
    lost["low"] = int(found.lost[~found.winner].sum()) - lost["high"]

    def others_in(tier: str, engagement: str | None) -> tuple[int, int, int, int]:
        """(companies, highly engaged, open cents, losses) of those without a win in a group."""
        if tier != found.zero_tier:
            return 0, 0, 0, 0
        if engagement is None:
            return others, counts["high"], open_cents["high"] + open_cents["low"], lost["high"] + lost["low"]
        return (counts[engagement], counts["high"] if engagement == "high" else 0, open_cents[engagement],
                lost[engagement])

    high_winners = found.high[w.ids]
    tiers = [{"tier": t, **_group_row(found, w.tier == t, *others_in(t, None), total_revenue, total_projected)}
             for t in TIERS]
    segments = [{"segment": f"{t}-{e}", "tier": t, "engagement": e,
                 **_group_row(found, (w.tier == t) & (high_winners if e == "high" else ~high_winners),
                              *others_in(t, e), total_revenue, total_projected)}
                for t in TIERS for e in ENGAGEMENTS]
    top = top_companies(session, viewer, filters, found, TOP_LIMIT) if found.count else []
    details = {row.id: (row.name, row.industry) for row in session.execute(
        sa.select(Company.id, Company.name, Company.industry).where(Company.id.in_([c.company_id for c in top])))
    } if top else {}
    return {
        "report": "customers",
        "period": filters.period(),
        "as_of": filters.end.isoformat(),
        "win_rate_definition": WIN_RATE_DEFINITION,
        "company_count": found.count,
        "listed": len(top),
        "limit": TOP_LIMIT,
        "won_revenue": money(total_revenue),
        "projected_value": round(total_projected, 2),
        "median_activities_90d": found.median,
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
