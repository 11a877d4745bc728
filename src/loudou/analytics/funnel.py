"""Cohort funnel (PRODUCT C2): of the deals created in a period, how many ever reached
each stage, and how many of those went further. Defined precisely in docs/analytics.md.

Read from the derived ``deals.reached_mask`` (kept current by deal.service on every stage
change, rebuilt from the history by ``loudou analytics rebuild``): one grouped scan of the
cohort's deals, no replay of the transition history.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.analytics import counters
from loudou.analytics.filters import ReportFilters, deal_conditions
from loudou.analytics.reports import Chart, Col, ReportSpec, Table, drill_params, register
from loudou.analytics.reports import msg as _
from loudou.analytics.stats import wilson
from loudou.auth import policy
from loudou.auth.models import Role, User
from loudou.deal.models import Deal, DealStatus, StageTransition
from loudou.errors import ValidationFailed
from loudou.pipeline import queries as pipeline_queries
from loudou.pipeline.models import Pipeline, Stage

DAY_S = 86_400


@dataclass(frozen=True)
class CohortGroup:
    mask: int
    status: DealStatus
    count: int
    amount: Decimal


def resolve_pipeline(session: Session, pipeline_id: int | None) -> Pipeline:
    pipeline = (pipeline_queries.get_pipeline(session, pipeline_id) if pipeline_id is not None
                else pipeline_queries.get_default_pipeline(session))
    if pipeline is None:
        raise ValidationFailed(f"pipeline {pipeline_id} does not exist", field="pipeline_id")
    return pipeline


def _raw_groups(session: Session, viewer: User, filters: ReportFilters, pipeline_id: int, start: dt.datetime,
                end: dt.datetime) -> list[tuple[int, str, int, Decimal]]:
    stmt = (
        sa.select(Deal.reached_mask, Deal.status, sa.func.count(), sa.func.coalesce(sa.func.sum(Deal.amount), 0))
        .where(Deal.created_at >= start, Deal.created_at < end, *deal_conditions(viewer, filters, pipeline_id))
        .group_by(Deal.reached_mask, Deal.status)
    )
    return [(int(m), str(DealStatus(s)), int(c), Decimal(str(a))) for m, s, c, a in session.execute(stmt)]


def _counter_conditions(table: sa.Table, viewer: User, filters: ReportFilters, pipeline_id: int,
                        months: tuple[dt.date, dt.date], *, owner_and_channel: bool = True
                        ) -> list[sa.ColumnElement[bool]]:
    c = table.c
    out = [c.pipeline_id == pipeline_id, c.month >= months[0], c.month < months[1],
           policy.owned_condition(viewer, c.team_id, c.owner_id) if owner_and_channel
           else policy.owned_condition(viewer, c.team_id, sa.null())]
    if filters.team_id is not None:
        out.append(c.team_id == filters.team_id)
    if owner_and_channel:
        if filters.owner_id is not None:
            out.append(c.owner_id == filters.owner_id)
        if filters.channel_id is not None:
            out.append(c.channel_id == filters.channel_id)
    return out


def _countable(filters: ReportFilters) -> bool:
    """Filters the counter tables carry (product and company segment are not in them)."""
    return filters.industry is None and filters.product_id is None


def cohort_groups(session: Session, viewer: User, filters: ReportFilters, pipeline_id: int) -> list[CohortGroup]:
    """The cohort's deals by (stages reached, status): whole months from
    ``analytics_cohort_counts``, partial months (and filters no counter carries) from deals."""
    found: dict[tuple[int, str], tuple[int, Decimal]] = defaultdict(lambda: (0, Decimal(0)))
    rows: list[tuple[int, str, int, Decimal]] = []
    if _countable(filters):
        months, edges = counters.split_period(filters.start, filters.end)
        if months is not None:
            t = counters.cohort_counts
            stmt = (sa.select(t.c.reached_mask, t.c.status, sa.func.sum(t.c.n), sa.func.sum(t.c.amount))
                    .where(*_counter_conditions(t, viewer, filters, pipeline_id, months))
                    .group_by(t.c.reached_mask, t.c.status))
            rows += [(int(m), str(s), int(n or 0), Decimal(str(a or 0))) for m, s, n, a in session.execute(stmt)]
        for start, end in edges:
            rows += _raw_groups(session, viewer, filters, pipeline_id, start, end)
    else:
        rows = _raw_groups(session, viewer, filters, pipeline_id, filters.start, filters.end)
    for mask, status, n, amount in rows:
        count, total = found[(mask, status)]
        found[(mask, status)] = (count + n, total + amount)
    return [CohortGroup(mask, DealStatus(status), n, amount) for (mask, status), (n, amount) in found.items() if n]


def _raw_stays(session: Session, viewer: User, filters: ReportFilters, pipeline_id: int, start: dt.datetime,
               end: dt.datetime) -> list[tuple[int, int, int]]:
    hours = counters.stay_bucket_sql(StageTransition.duration_s)
    stmt = (
        sa.select(StageTransition.to_stage_id, hours, sa.func.count())
        .join(Deal, Deal.id == StageTransition.deal_id)
        .where(Deal.created_at >= start, Deal.created_at < end, *deal_conditions(viewer, filters, pipeline_id),
               StageTransition.to_status == DealStatus.open, StageTransition.duration_s.is_not(None))
        .group_by(StageTransition.to_stage_id, hours)
    )
    return [(int(s), int(h), int(n)) for s, h, n in session.execute(stmt)]


def stage_durations(session: Session, viewer: User, filters: ReportFilters, pipeline_id: int
                    ) -> dict[int, list[tuple[int, int]]]:
    """Completed stays per stage of the cohort's deals as a histogram of whole hours:
    ``{stage_id: [(hours, count), ...]}`` ascending. Whole months from
    ``analytics_stay_hours`` (which has no owner or channel: those filters, and a rep's
    own view, read the history)."""
    rows: list[tuple[int, int, int]] = []
    by_owner = viewer.role == Role.rep or (viewer.role == Role.manager and viewer.team_id is None)
    if _countable(filters) and filters.owner_id is None and filters.channel_id is None and not by_owner:
        months, edges = counters.split_period(filters.start, filters.end)
        if months is not None:
            t = counters.stay_hours
            stmt = (sa.select(t.c.stage_id, t.c.hours, sa.func.sum(t.c.n))
                    .where(*_counter_conditions(t, viewer, filters, pipeline_id, months, owner_and_channel=False))
                    .group_by(t.c.stage_id, t.c.hours))
            rows += [(int(s), int(h), int(n or 0)) for s, h, n in session.execute(stmt)]
        for start, end in edges:
            rows += _raw_stays(session, viewer, filters, pipeline_id, start, end)
    else:
        rows = _raw_stays(session, viewer, filters, pipeline_id, filters.start, filters.end)
    merged: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for stage_id, hours, n in rows:
        merged[stage_id][hours] += n
    return {stage_id: sorted((h, n) for h, n in hist.items() if n) for stage_id, hist in merged.items()}


def _hours_as_days(hours: float | None) -> float | None:
    return None if hours is None else round(hours / 24, 2)


def _rate(successes: int, trials: int) -> dict[str, float | None]:
    low, high = wilson(successes, trials)
    return {"rate": successes / trials if trials else None, "ci_low": low, "ci_high": high}


def cohort_funnel(session: Session, viewer: User, filters: ReportFilters) -> dict[str, Any]:
    pipeline = resolve_pipeline(session, filters.pipeline_id)
    stages: list[Stage] = pipeline_queries.list_stages(session, pipeline.id)
    groups = cohort_groups(session, viewer, filters, pipeline.id)
    durations = stage_durations(session, viewer, filters, pipeline.id)
    cohort = sum(g.count for g in groups)
    bits = [1 << s.bit for s in stages]

    def reached(i: int, group: CohortGroup) -> bool:
        if filters.strict:  # every stage up to and including i, in pipeline order
            need = sum(bits[: i + 1])
            return group.mask & need == need
        return bool(group.mask & bits[i])

    def went_further(i: int, group: CohortGroup) -> bool:
        if i + 1 < len(stages):
            if filters.strict:
                return reached(i + 1, group)
            return bool(group.mask & sum(bits[i + 1:]))
        return group.status == DealStatus.won

    rows = []
    previous_reached = cohort
    for i, stage in enumerate(stages):
        at = [g for g in groups if reached(i, g)]
        n = sum(g.count for g in at)
        amount = sum((g.amount for g in at), Decimal(0))
        if i == 0 or filters.strict:
            moved_on = n
        else:
            # Of the deals that reached the previous stage, those that got past it (a skip
            # over this stage counts as getting past the previous one, not as reaching this).
            moved_on = sum(g.count for g in groups if reached(i - 1, g) and went_further(i - 1, g))
        conversion = _rate(moved_on, previous_reached)
        continued = sum(g.count for g in at if went_further(i, g))
        stays = durations.get(stage.id, [])
        stays_n = sum(n for _, n in stays)
        rows.append({
            "stage_id": stage.id,
            "position": stage.position,
            "name": stage.name,
            "name_en": stage.name_en,
            "reached": n,
            "reached_amount": float(amount),
            "conversion_from_previous": conversion["rate"],
            "ci_low": conversion["ci_low"],
            "ci_high": conversion["ci_high"],
            "conversion_from_start": n / cohort if cohort else None,
            "continued": continued,
            "continuation": _rate(continued, n),
            "median_days_in_stage": _hours_as_days(counters.histogram_percentile(stays, 0.5)),
            "p90_days_in_stage": _hours_as_days(counters.histogram_percentile(stays, 0.9)),
            "completed_stays": stays_n,
        })
        previous_reached = n
    by_status: dict[DealStatus, int] = defaultdict(int)
    amount_by_status: dict[DealStatus, Decimal] = defaultdict(Decimal)
    for g in groups:
        by_status[g.status] += g.count
        amount_by_status[g.status] += g.amount
    won = by_status[DealStatus.won]
    return {
        "report": "funnel",
        "period": filters.period(),
        "pipeline_id": pipeline.id,
        "strict": filters.strict,
        "cohort_size": cohort,
        "cohort_amount": float(sum(amount_by_status.values(), Decimal(0))),
        "stages": rows,
        "won": won,
        "lost": by_status[DealStatus.lost],
        "disqualified": by_status[DealStatus.disqualified],
        "open": by_status[DealStatus.open],
        "won_amount": float(amount_by_status[DealStatus.won]),
        "win_rate_of_closed": _rate(won, won + by_status[DealStatus.lost]),
        "win_rate_of_cohort": _rate(won, cohort),
    }


# --- the report as a registry entry (CLI, API, pages) ----------------------------------

def _funnel_tables(result: dict[str, Any], filters: ReportFilters) -> list[Table]:
    base = {"pipeline_id": result["pipeline_id"]}

    def drill(row: dict[str, Any]) -> dict[str, Any]:
        return {**drill_params(filters), **base, "reached_stage_id": row["stage_id"]}

    stage_rows = [
        {**{k: v for k, v in row.items() if k != "continuation"},
         "continuation_rate": row["continuation"]["rate"]}
        for row in result["stages"]
    ]
    outcome_rows = [
        {"status": status, "deals": result[status], "share": result[status] / result["cohort_size"]
         if result["cohort_size"] else None}
        for status in ("won", "lost", "disqualified", "open")
    ]

    def drill_status(row: dict[str, Any]) -> dict[str, Any]:
        return {**drill_params(filters), **base, "status": row["status"]}

    return [
        Table("stages", _("Cohort funnel"), [
            Col("name", _("Stage")), Col("reached", _("Reached"), "int"),
            Col("reached_amount", _("Amount reached"), "money"),
            Col("conversion_from_previous", _("Conversion from previous"), "pct"),
            Col("ci_low", _("95% low"), "pct"), Col("ci_high", _("95% high"), "pct"),
            Col("conversion_from_start", _("Conversion from start"), "pct"),
            Col("continuation_rate", _("Went further"), "pct"),
            Col("median_days_in_stage", _("Median days in stage"), "days"),
            Col("p90_days_in_stage", _("P90 days in stage"), "days"),
        ], stage_rows, drill),
        Table("outcomes", _("Outcome of the cohort"), [
            Col("status", _("Status")), Col("deals", _("Deals"), "int"), Col("share", _("Share"), "pct"),
        ], outcome_rows, drill_status),
    ]


FUNNEL = register(ReportSpec(
    name="funnel",
    title=_("Cohort funnel"),
    summary=_("Of the deals created in the period, how many reached each stage, with conversion "
              "from the previous stage and its 95% interval, and time in stage."),
    compute=cohort_funnel,
    tables=_funnel_tables,
    charts=(Chart("funnel", "stages", "name", ("reached",), _("Deals reaching each stage")),
            Chart("bar", "stages", "name", ("conversion_from_previous",), _("Conversion from previous"))),
    period_meaning=_("Deals created in the period"),
    extra_options=("strict",),
))
