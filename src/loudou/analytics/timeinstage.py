"""Time in stage (PRODUCT C2, C7): how long deals stay in each stage, and which open deals
have been in their stage longer than its norm. Defined precisely in docs/analytics.md.

Two populations:

* completed stays that *started* in the period (a stage transition into an open stage whose
  ``at`` falls in the period and whose ``duration_s`` is known, i.e. the deal has left the
  stage since), of the deals the filters and the viewer's access select;
* the open deals now, by current stage: age in the stage (now − ``stage_entered_at``)
  against the stage's norm (``Stage.expected_days``); over the norm is "stale".

The stays' percentiles are at the stay histogram's resolution (:func:`counters.stay_bucket`),
their mean exact: whole months come from ``analytics_stay_started``
(:mod:`loudou.analytics.counters_flow`), partial months from the transitions.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql import visitors

from loudou.analytics import counters
from loudou.analytics.counters_flow import Unindexed, stay_started
from loudou.analytics.filters import ReportFilters, deal_conditions
from loudou.analytics.funnel import _counter_conditions, resolve_pipeline
from loudou.analytics.reports import Chart, Col, ReportSpec, Table, drill_params, register
from loudou.analytics.reports import msg as _
from loudou.analytics.stats import wilson
from loudou.auth import policy
from loudou.auth.models import Role, User
from loudou.db import utcnow
from loudou.deal.models import Deal, DealStatus, StageTransition
from loudou.pipeline import queries as pipeline_queries
from loudou.pipeline.models import Stage

DAY_S = 86_400
#: Rows of the most overdue open deals.
OVERDUE_LIMIT = 50
#: The open-status test as a literal: SQLite uses the partial indexes ``WHERE status =
#: 'open'`` (the board's) only when the query states the very same literal.
IS_OPEN: sa.ColumnElement[bool] = Deal.status == sa.literal_column(f"'{DealStatus.open.value}'")


def days(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / DAY_S, 2)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


@dataclass
class Stays:
    """The completed stays of one stage that started in a period: their number, total
    length in seconds and the histogram of their lengths (``[(hours, count), ...]``
    ascending, each length floored to the stay histogram's resolution:
    :func:`counters.stay_bucket`)."""

    n: int = 0
    seconds: int = 0
    histogram: list[tuple[int, int]] = field(default_factory=list)

    @property
    def mean_days(self) -> float | None:
        return days(self.seconds / self.n) if self.n else None

    def percentile_days(self, q: float) -> float | None:
        """Linear-interpolated percentile of the lengths at the histogram's resolution."""
        return hours_as_days(counters.histogram_percentile(self.histogram, q))


def hours_as_days(hours: float | None) -> float | None:
    return None if hours is None else round(hours / 24, 2)


def _countable(viewer: User, filters: ReportFilters) -> bool:
    """The stay counters carry the pipeline and the team: they answer the whole company's
    and a team's stays, not an owner's, a channel's, a product's or a segment's."""
    return (policy.scope_role(viewer) in (Role.admin, Role.manager) and filters.owner_id is None
            and filters.channel_id is None and filters.product_id is None and filters.industry is None)


def _owner_scoped(viewer: User, filters: ReportFilters) -> bool:
    return policy.scope_role(viewer) == Role.rep or filters.owner_id is not None


def _off_index(conditions: list[sa.ColumnElement[bool]]) -> list[sa.ColumnElement[bool]]:
    """The same conditions with every deals column kept out of index selection, so that a
    join of the period's transitions with their deals is driven by the transitions (a
    team's deals of every year are many more rows than a period's stays)."""
    table = Deal.__table__

    def swap(element: Any, **_kw: Any) -> Any:
        if isinstance(element, sa.Column) and element.table is table:
            return Unindexed(element)
        return None

    return [visitors.replacement_traverse(c, {}, swap) for c in conditions]


def _trivial(conditions: list[sa.ColumnElement[bool]]) -> bool:
    return all(isinstance(c, sa.sql.elements.True_) for c in conditions)


def _raw_histograms(session: Session, viewer: User, filters: ReportFilters, stage_ids: list[int],
                    start: dt.datetime, end: dt.datetime) -> list[tuple[int, int, int, int]]:
    """(stage, hours, stays, seconds) of the completed stays that started in [start, end),
    of the deals ``deal_conditions`` selects (filters and access policy; the stages name
    the pipeline), grouped in the database. A rep's (or one owner's) stays are read through
    their deals' transitions, everyone else's through the index of stays by start time; with
    no condition on the deals there is no join at all."""
    t = StageTransition
    by_deal = _owner_scoped(viewer, filters)
    at: Any = Unindexed(t.at) if by_deal else t.at
    hours = counters.stay_bucket_sql(t.duration_s)
    stmt = (sa.select(t.to_stage_id, hours, sa.func.count(), sa.func.sum(t.duration_s)).select_from(t)
            .where(at >= start, at < end, Unindexed(t.to_stage_id).in_(stage_ids), t.to_status == DealStatus.open,
                   t.duration_s.is_not(None))
            .group_by(t.to_stage_id, hours))
    conditions = deal_conditions(viewer, filters, None)
    if not _trivial(conditions):
        stmt = stmt.join(Deal, Deal.id == t.deal_id).where(*(conditions if by_deal else _off_index(conditions)))
    return [(int(s), int(h), int(n), int(secs or 0)) for s, h, n, secs in session.execute(stmt)]


def completed_stays(session: Session, viewer: User, filters: ReportFilters, pipeline_id: int, stage_ids: list[int]
                    ) -> dict[int, Stays]:
    """The completed stays that started in the period, per stage id (stages without any
    are left out). The company's and a team's whole months come from
    ``analytics_stay_started``; partial months, and the views the counters do not carry (an
    owner, a channel, a product, a segment), from the transitions."""
    rows: list[tuple[int, int, int, int]] = []
    if _countable(viewer, filters):
        months, edges = counters.split_period(filters.start, filters.end)
        if months is not None:
            c = stay_started.c
            rows += [(int(s), int(h), int(n or 0), int(secs or 0)) for s, h, n, secs in session.execute(
                sa.select(c.stage_id, c.hours, sa.func.sum(c.n), sa.func.sum(c.seconds))
                .where(*_counter_conditions(stay_started, viewer, filters, pipeline_id, months,
                                            owner_and_channel=False), c.stage_id.in_(stage_ids))
                .group_by(c.stage_id, c.hours))]
        for start, end in edges:
            rows += _raw_histograms(session, viewer, filters, stage_ids, start, end)
    else:
        rows = _raw_histograms(session, viewer, filters, stage_ids, filters.start, filters.end)
    merged: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    seconds: dict[int, int] = defaultdict(int)
    for stage_id, hours, n, secs in rows:
        merged[stage_id][hours] += n
        seconds[stage_id] += secs
    out = {}
    for stage_id, hist in merged.items():
        histogram = sorted((h, n) for h, n in hist.items() if n)
        if histogram:
            out[stage_id] = Stays(sum(n for _h, n in histogram), seconds[stage_id], histogram)
    return out


def _cutoff(stage: Stage, now: dt.datetime) -> dt.datetime:
    """Open deals that entered ``stage`` before this moment are over its norm."""
    return now - dt.timedelta(days=stage.expected_days)


def _open_by_stage(session: Session, conditions: list[sa.ColumnElement[bool]], stages: list[Stage],
                   now: dt.datetime, filters: ReportFilters) -> dict[int, tuple[int, int, int]]:
    """(open deals, stale deals, entered in the period) per stage id, one grouped query.

    An open deal's stay in its current stage is its only unfinished one (the stay of its last
    transition, ``duration_s`` NULL), so the unfinished stays that started in the period are
    the open deals whose ``stage_entered_at`` is in it."""
    if not stages:
        return {}
    stale = sa.or_(*(sa.and_(Deal.stage_id == s.id, Deal.stage_entered_at < _cutoff(s, now)) for s in stages))
    entered = sa.and_(Deal.stage_entered_at >= filters.start, Deal.stage_entered_at < filters.end)
    stmt = (
        sa.select(Deal.stage_id, sa.func.count(), sa.func.coalesce(sa.func.sum(sa.case((stale, 1), else_=0)), 0),
                  sa.func.coalesce(sa.func.sum(sa.case((entered, 1), else_=0)), 0))
        .where(*conditions, Deal.stage_id.in_([s.id for s in stages]))
        .group_by(Deal.stage_id)
    )
    return {int(stage_id): (int(n), int(k), int(e)) for stage_id, n, k, e in session.execute(stmt)}


def _median_entered(session: Session, conditions: list[sa.ColumnElement[bool]], stage_id: int, n: int
                    ) -> dt.datetime | None:
    """Median of ``stage_entered_at`` of the stage's open deals (linear interpolation between
    the two middle values), read with ORDER BY … LIMIT 2 OFFSET instead of every row. Equal
    times give the same value in any order, so the order needs no tie-break and is the
    board's partial index's own (no sort)."""
    if n <= 0:
        return None
    stmt = (
        sa.select(Deal.stage_entered_at).where(*conditions, Deal.stage_id == stage_id)
        .order_by(Deal.stage_entered_at).offset((n - 1) // 2).limit(2)
    )
    values = [_aware(v) for v in session.scalars(stmt)]
    if not values:
        return None
    if n % 2 == 1 or len(values) == 1:
        return values[0]
    return values[0] + (values[1] - values[0]) / 2


def _overdue(session: Session, conditions: list[sa.ColumnElement[bool]], stages: list[Stage], now: dt.datetime
             ) -> list[dict[str, Any]]:
    """The open deals furthest over their stage's norm (one indexed query per stage)."""
    found: list[dict[str, Any]] = []
    for stage in stages:
        stmt = (
            sa.select(Deal.id, Deal.title, Deal.stage_entered_at, Deal.amount, Deal.owner_id, User.name)
            .outerjoin(User, User.id == Deal.owner_id)
            .where(*conditions, Deal.stage_id == stage.id, Deal.stage_entered_at < _cutoff(stage, now))
            .order_by(Deal.stage_entered_at, Deal.id).limit(OVERDUE_LIMIT)
        )
        for deal_id, title, entered, amount, owner_id, owner_name in session.execute(stmt):
            in_stage = (now - _aware(entered)).total_seconds()
            found.append({
                "deal_id": int(deal_id), "title": title, "stage_id": stage.id, "stage": stage.name,
                "stage_en": stage.name_en, "owner_id": owner_id, "owner": owner_name,
                "days_in_stage": days(in_stage), "norm_days": stage.expected_days,
                "overdue_days": days(in_stage - stage.expected_days * DAY_S),
                "amount": float(amount) if amount is not None else None,
            })
    found.sort(key=lambda r: (-(r["overdue_days"] or 0.0), r["deal_id"]))
    return found[:OVERDUE_LIMIT]


def time_in_stage(session: Session, viewer: User, filters: ReportFilters, now: dt.datetime | None = None
                  ) -> dict[str, Any]:
    pipeline = resolve_pipeline(session, filters.pipeline_id)
    stages = pipeline_queries.list_stages(session, pipeline.id)
    now = now or utcnow()
    stage_ids = [s.id for s in stages]
    stays = completed_stays(session, viewer, filters, pipeline.id, stage_ids)
    # The stages name the pipeline (a deal's stage is always one of its pipeline's), and
    # the literal open test lets the open deals be read from the board's partial index.
    open_conditions = [IS_OPEN, *deal_conditions(viewer, filters, None)]
    counts = _open_by_stage(session, open_conditions, stages, now, filters)
    stay_rows = []
    for stage in stages:
        found = stays.get(stage.id, Stays())
        stay_rows.append({
            "stage_id": stage.id, "position": stage.position, "name": stage.name, "name_en": stage.name_en,
            "stays": found.n,
            "median_days": found.percentile_days(0.5),
            "p90_days": found.percentile_days(0.9),
            "mean_days": found.mean_days,
            "unfinished": counts.get(stage.id, (0, 0, 0))[2],
            "norm_days": stage.expected_days,
        })
    open_rows = []
    for stage in stages:
        n, stale, _entered = counts.get(stage.id, (0, 0, 0))
        median_entered = _median_entered(session, open_conditions, stage.id, n)
        low, high = wilson(stale, n)
        open_rows.append({
            "stage_id": stage.id, "position": stage.position, "name": stage.name, "name_en": stage.name_en,
            "open": n,
            "median_days_in_stage": days((now - median_entered).total_seconds()) if median_entered else None,
            "norm_days": stage.expected_days,
            "stale": stale,
            "stale_share": stale / n if n else None, "ci_low": low, "ci_high": high,
        })
    return {
        "report": "timeinstage",
        "period": filters.period(),
        "as_of": now.isoformat(),
        "pipeline_id": pipeline.id,
        "stays": stay_rows,
        "stays_total": sum(r["stays"] for r in stay_rows),
        "open": open_rows,
        "open_total": sum(r["open"] for r in open_rows),
        "stale_total": sum(r["stale"] for r in open_rows),
        "overdue": _overdue(session, open_conditions, stages, now),
    }


# --- the report as a registry entry (CLI, API, pages) ----------------------------------

def _tables(result: dict[str, Any], filters: ReportFilters) -> list[Table]:
    def drill(row: dict[str, Any]) -> dict[str, Any]:
        return drill_params(filters, cohort=False, pipeline_id=result["pipeline_id"], stage_id=row["stage_id"],
                            status="open")

    return [
        Table("stays", _("Completed stays by stage"), [
            Col("name", _("Stage")), Col("stays", _("Completed stays"), "int"),
            Col("median_days", _("Median days"), "days"), Col("p90_days", _("P90 days"), "days"),
            Col("mean_days", _("Mean days"), "days"), Col("norm_days", _("Norm (days)"), "int"),
            Col("unfinished", _("Still in stage"), "int"),
        ], result["stays"], drill,
            note=_("Stays that started in the period and have ended; a row opens the stage's open deals.")),
        Table("open", _("Open deals: days in current stage"), [
            Col("name", _("Stage")), Col("open", _("Open deals"), "int"),
            Col("median_days_in_stage", _("Median days in stage"), "days"),
            Col("norm_days", _("Norm (days)"), "int"), Col("stale", _("Over the norm"), "int"),
            Col("stale_share", _("Share over the norm"), "pct"),
            Col("ci_low", _("95% low"), "pct"), Col("ci_high", _("95% high"), "pct"),
        ], result["open"], drill),
        Table("overdue", _("Most overdue open deals"), [
            Col("deal_id", _("Deal"), "int"), Col("title", _("Title")), Col("stage", _("Stage")),
            Col("owner", _("Owner")), Col("days_in_stage", _("Days in stage"), "days"),
            Col("norm_days", _("Norm (days)"), "int"), Col("overdue_days", _("Days over the norm"), "days"),
            Col("amount", _("Amount"), "money"),
        ], result["overdue"], None),
    ]


TIME_IN_STAGE = register(ReportSpec(
    name="timeinstage",
    title=_("Time in stage"),
    summary=_("How long deals stay in each stage (median, P90 and mean of the stays that started in "
              "the period), and the open deals that have been in their stage longer than its norm."),
    compute=time_in_stage,
    tables=_tables,
    charts=(Chart("bar", "stays", "name", ("median_days", "p90_days"), _("Median and P90 days in stage")),
            Chart("bar", "open", "name", ("stale",), _("Open deals over the norm"))),
    period_meaning=_("Stays that started in the period; open deals now"),
))
