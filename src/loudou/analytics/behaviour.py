"""Customer behaviour and winning (PRODUCT C6): how the number and the kinds of
interactions relate to winning, for the deals closed (won or lost) in the period, and how
recently the open deals were last touched. Defined precisely in docs/analytics/behaviour.md.

Three grouped queries: the closed deals by status with their count per intensity band
(conditional counts in one pass over the closed deals' covering index);
their activities by kind and deal status from the monthly ``analytics_closed_activities``
(partial months, and filters it does not carry, join the activities of those deals); and
the open deals' recency bands as conditional sums over ``last_activity_at`` from the open
deals' covering index.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.activity.models import Activity, ActivityKind
from loudou.analytics import counters, counters_value
from loudou.analytics.channels import WIN_RATE_DEFINITION, money, rate_fields
from loudou.analytics.filters import ReportFilters, closed_conditions, deal_conditions
from loudou.analytics.reports import Chart, Col, ReportSpec, Table, drill_params, register
from loudou.analytics.reports import msg as _
from loudou.auth import policy
from loudou.auth.models import User
from loudou.db import utcnow
from loudou.deal.models import Deal, DealStatus
from loudou.web.i18n import translations

#: Interaction intensity bands: (key, lowest count, highest count or None for no limit).
INTENSITY_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("0", 0, 0), ("1-2", 1, 2), ("3-5", 3, 5), ("6-10", 6, 10), ("11-20", 11, 20), ("21+", 21, None))

#: Recency bands of an open deal's last activity: (key, label, age over N days, age up to M days);
#: the age is ``now - last_activity_at`` (an activity dated after now counts as within 7 days).
RECENCY_BANDS: tuple[tuple[str, str, int | None, int | None], ...] = (
    ("never", _("No activity yet"), None, None),
    ("0-7", _("Within 7 days"), None, 7),
    ("8-30", _("8 to 30 days ago"), 7, 30),
    ("31-90", _("31 to 90 days ago"), 30, 90),
    ("90+", _("More than 90 days ago"), 90, None),
)

CLOSED = (DealStatus.won, DealStatus.lost)


def _band(count: int) -> str:
    for key, low, high in INTENSITY_BANDS:
        if count >= low and (high is None or count <= high):
            return key
    return INTENSITY_BANDS[-1][0]


def intensity(session: Session, viewer: User, filters: ReportFilters) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Closed deals per intensity band, and the activity totals of the won and the lost:
    one pass over the closed deals' covering index, counting each band as it goes."""
    deals = counters_value.via(counters_value.CLOSED_INDEX)
    c = deals.c
    bands = []
    for _key, low, high in INTENSITY_BANDS:
        band = c.activity_count >= low if high is None else c.activity_count.between(low, high)
        bands.append(sa.func.count().filter(band))
    stmt = (sa.select(c.status, sa.func.sum(c.activity_count), *bands).select_from(deals.table)
            .where(counters_value.status_in(c.status, *CLOSED),
                   *deals.adapt(closed_conditions(viewer, filters, filters.pipeline_id)))
            .group_by(c.status))
    deals_by_band: dict[str, dict[DealStatus, int]] = defaultdict(lambda: defaultdict(int))
    activity_totals: dict[str, int] = defaultdict(int)
    for status, activities, *per_band in session.execute(stmt):
        activity_totals[DealStatus(status).value] += int(activities or 0)
        for (key, _low, _high), n in zip(INTENSITY_BANDS, per_band, strict=True):
            deals_by_band[key][DealStatus(status)] += int(n or 0)
    closed = sum(sum(by_status.values()) for by_status in deals_by_band.values())
    rows = []
    for key, low, high in INTENSITY_BANDS:
        won, lost = deals_by_band[key][DealStatus.won], deals_by_band[key][DealStatus.lost]
        rows.append({"band": key, "min_activities": low, "max_activities": high, "deals": won + lost, "won": won,
                     "lost": lost, "share": (won + lost) / closed if closed else None,
                     **rate_fields("win_rate", won, won + lost)})
    return rows, activity_totals


def _raw_kind_counts(session: Session, viewer: User, filters: ReportFilters, start: dt.datetime, end: dt.datetime
                     ) -> list[tuple[str, DealStatus, int]]:
    stmt = (sa.select(Activity.kind, Deal.status, sa.func.count())
            .select_from(Activity).join(Deal, Deal.id == Activity.deal_id)
            .where(Deal.closed_at >= start, Deal.closed_at < end,
                   *deal_conditions(viewer, filters, filters.pipeline_id), Deal.status.in_(CLOSED))
            .group_by(Activity.kind, Deal.status))
    return [(ActivityKind(kind).value, DealStatus(status), int(n)) for kind, status, n in session.execute(stmt)]


def kind_counts(session: Session, viewer: User, filters: ReportFilters) -> dict[tuple[str, DealStatus], int]:
    """Activities on the deals won and lost in the period, by kind and deal status: whole
    months from ``analytics_closed_activities``, partial months (and filters it does not
    carry) from the activities."""
    rows: list[tuple[str, DealStatus, int]] = []
    if filters.product_id is None and filters.industry is None:
        months, edges = counters.split_period(filters.start, filters.end)
        if months is not None:
            t = counters_value.closed_activities
            conditions = [t.c.month >= months[0], t.c.month < months[1],
                          policy.owned_condition(viewer, t.c.team_id, t.c.owner_id)]
            for name in ("pipeline_id", "team_id", "owner_id", "channel_id"):
                value = getattr(filters, name)
                if value is not None:
                    conditions.append(t.c[name] == value)
            stmt = (sa.select(t.c.kind, t.c.status, sa.func.sum(t.c.n)).where(*conditions)
                    .group_by(t.c.kind, t.c.status))
            rows += [(str(kind), DealStatus(status), int(n or 0)) for kind, status, n in session.execute(stmt)]
        for start, end in edges:
            rows += _raw_kind_counts(session, viewer, filters, start, end)
    else:
        rows = _raw_kind_counts(session, viewer, filters, filters.start, filters.end)
    counts: dict[tuple[str, DealStatus], int] = defaultdict(int)
    for kind, status, n in rows:
        counts[(kind, status)] += n
    return counts


def kinds(session: Session, viewer: User, filters: ReportFilters, won: int, lost: int) -> list[dict[str, Any]]:
    """Average activities of each kind per won deal and per lost deal."""
    counts = kind_counts(session, viewer, filters)
    rows = []
    for kind in ActivityKind:
        on_won, on_lost = counts.get((kind.value, DealStatus.won), 0), counts.get((kind.value, DealStatus.lost), 0)
        per_won = on_won / won if won else None
        per_lost = on_lost / lost if lost else None
        rows.append({"kind": kind.value, "activities_won": on_won, "activities_lost": on_lost,
                     "avg_per_won": None if per_won is None else round(per_won, 4),
                     "avg_per_lost": None if per_lost is None else round(per_lost, 4),
                     "won_to_lost_ratio": round(per_won / per_lost, 4) if per_won is not None and per_lost else None})
    return rows


def recency(session: Session, viewer: User, filters: ReportFilters, now: dt.datetime) -> list[dict[str, Any]]:
    """Open deals (now) by the age of their last activity, counts and amounts."""
    deals = counters_value.via(counters_value.OPEN_INDEX)
    last, amount = deals.c.last_activity_at, deals.c.amount
    conditions: list[sa.ColumnElement[bool]] = []
    for key, _label, over, up_to in RECENCY_BANDS:
        if key == "never":
            conditions.append(last.is_(None))
            continue
        parts: list[sa.ColumnElement[bool]] = [last.is_not(None)]
        if over is not None:
            parts.append(last < now - dt.timedelta(days=over))
        if up_to is not None:
            parts.append(last >= now - dt.timedelta(days=up_to))
        conditions.append(sa.and_(*parts))
    columns: list[sa.ColumnElement[Any]] = []
    for condition in conditions:
        columns.append(sa.func.count().filter(condition))
        columns.append(sa.func.coalesce(sa.func.sum(sa.func.coalesce(amount, 0)).filter(condition), 0))
    stmt = sa.select(*columns).select_from(deals.table).where(
        counters_value.status_in(deals.c.status, DealStatus.open),
        *deals.adapt(deal_conditions(viewer, filters, filters.pipeline_id)))
    values = list(session.execute(stmt).one())
    total = sum(int(values[2 * i]) for i in range(len(RECENCY_BANDS)))
    chinese = translations("zh-CN").gettext
    rows = []
    for i, (key, label, over, up_to) in enumerate(RECENCY_BANDS):
        n = int(values[2 * i])
        # Named in both languages like a stage or a channel (``label``, ``label_en``).
        rows.append({"band": key, "label": chinese(label), "label_en": label, "age_over_days": over,
                     "age_up_to_days": up_to, "deals": n,
                     "amount": money(Decimal(str(values[2 * i + 1]))), "share": n / total if total else None})
    return rows


def behaviour_report(session: Session, viewer: User, filters: ReportFilters, now: dt.datetime | None = None
                     ) -> dict[str, Any]:
    now = now or utcnow()
    bands, activity_totals = intensity(session, viewer, filters)
    won = sum(r["won"] for r in bands)
    lost = sum(r["lost"] for r in bands)
    open_rows = recency(session, viewer, filters, now)
    return {
        "report": "behaviour",
        "period": filters.period(),
        "as_of": now.isoformat(),
        "win_rate_definition": WIN_RATE_DEFINITION,
        "closed": won + lost,
        "won": won,
        "lost": lost,
        **rate_fields("win_rate", won, won + lost),
        "avg_activities_won": round(activity_totals["won"] / won, 4) if won else None,
        "avg_activities_lost": round(activity_totals["lost"] / lost, 4) if lost else None,
        "intensity": bands,
        "kinds": kinds(session, viewer, filters, won, lost),
        "recency": open_rows,
        "open_deals": sum(r["deals"] for r in open_rows),
        "open_amount": round(sum(r["amount"] for r in open_rows), 2),
    }


# --- the report as a registry entry (CLI, API, pages) ----------------------------------

def _tables(result: dict[str, Any], filters: ReportFilters) -> list[Table]:
    def drill_open(_row: dict[str, Any]) -> dict[str, Any]:
        return drill_params(filters, cohort=False, status="open")

    return [
        Table("intensity", _("Win rate by number of activities"), [
            Col("band", _("Activities on the deal")), Col("deals", _("Closed deals"), "int"),
            Col("share", _("Share"), "pct"), Col("won", _("Won"), "int"), Col("lost", _("Lost"), "int"),
            Col("win_rate", _("Win rate (won ÷ closed)"), "pct"),
            Col("win_rate_ci_low", _("95% low"), "pct"), Col("win_rate_ci_high", _("95% high"), "pct"),
        ], result["intensity"]),
        Table("kinds", _("Activities per won and per lost deal, by kind"), [
            Col("kind", _("Activity kind")), Col("activities_won", _("Activities on won deals"), "int"),
            Col("activities_lost", _("Activities on lost deals"), "int"),
            Col("avg_per_won", _("Average per won deal"), "num"),
            Col("avg_per_lost", _("Average per lost deal"), "num"),
            Col("won_to_lost_ratio", _("Won ÷ lost"), "num"),
        ], result["kinds"]),
        Table("recency", _("Open deals by last activity"), [
            Col("label", _("Last activity")), Col("deals", _("Open deals"), "int"),
            Col("share", _("Share"), "pct"), Col("amount", _("Amount"), "money"),
        ], result["recency"], drill_open),
    ]


BEHAVIOUR = register(ReportSpec(
    name="behaviour",
    title=_("Customer behaviour and winning"),
    summary=_("Win rate of the deals closed in the period by their number of activities, activities "
              "of each kind per won and per lost deal, and open deals by how recently they were last touched."),
    compute=behaviour_report,
    tables=_tables,
    charts=(Chart("bar", "intensity", "band", ("win_rate",), _("Win rate by number of activities")),
            Chart("bar", "kinds", "kind", ("avg_per_won", "avg_per_lost"),
                  _("Average activities per won and per lost deal"))),
    period_meaning=_("Deals won or lost in the period; open deals now"),
))
