"""Period over period (PRODUCT D4): stage continuation and time in stage in the period
against the period of the same length just before it, with the significant changes called
out. Defined precisely in docs/analytics.md.

* continuation(k) per period: of the period's cohort (deals created in it) that reached
  stage k, the share that went further (as in the cohort funnel); compared with the pooled
  two-proportion z-test;
* time in stage per period: the completed stays that started in it (as in the time in stage
  report, at the stay histogram's resolution); the periods compared with the Mann–Whitney U
  test computed from the two histograms;
* the win rate of the deals closed in each period, won ÷ (won + lost), and the cohort size.

Whole months come from the counter tables (cohort counts, stays by start month, closed
deals), partial months from the raw rows.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.analytics import counters
from loudou.analytics.counters_flow import closed_counts
from loudou.analytics.filters import ReportFilters, deal_conditions
from loudou.analytics.funnel import CohortGroup, _countable, _counter_conditions, cohort_groups, resolve_pipeline
from loudou.analytics.reports import Chart, Col, ReportSpec, Table, drill_params, register
from loudou.analytics.reports import msg as _
from loudou.analytics.stats import RankTest, poisson_count_test, two_proportion_test, wilson
from loudou.analytics.timeinstage import Stays, completed_stays
from loudou.auth.models import User
from loudou.deal.models import Deal, DealStatus
from loudou.pipeline import queries as pipeline_queries

ALPHA = 0.05
RATE_DEFINITION = ("continuation(k) = of the period's cohort (deals created in it) that reached stage k, the "
                   "share that reached a later stage or, from the last stage, won")
WIN_RATE_DEFINITION = "won / (won + lost) of the deals closed in the period; disqualified deals are left out"


def _continuation(groups: list[CohortGroup], bits: list[int]) -> list[tuple[int, int]]:
    """(reached, continued) per stage index, any order."""
    out = []
    for k, bit in enumerate(bits):
        later = sum(bits[k + 1:])
        last = k + 1 == len(bits)
        at = [g for g in groups if g.mask & bit]
        went = [g for g in at if (g.status == DealStatus.won if last else g.mask & later)]
        out.append((sum(g.count for g in at), sum(g.count for g in went)))
    return out


def _raw_closed(session: Session, viewer: User, filters: ReportFilters, pipeline_id: int, start: dt.datetime,
                end: dt.datetime) -> list[tuple[str, int]]:
    stmt = (
        sa.select(Deal.status, sa.func.count())
        .where(Deal.closed_at >= start, Deal.closed_at < end, Deal.status.in_([DealStatus.won, DealStatus.lost]),
               *deal_conditions(viewer, filters, pipeline_id))
        .group_by(Deal.status)
    )
    return [(str(DealStatus(status)), int(n)) for status, n in session.execute(stmt)]


def _closed(session: Session, viewer: User, filters: ReportFilters, pipeline_id: int) -> tuple[int, int]:
    """(won, lost) among the deals closed in the period: whole months from
    ``analytics_closed_counts``, partial months (and filters no counter carries) from deals."""
    rows: list[tuple[str, int]] = []
    if _countable(filters):
        months, edges = counters.split_period(filters.start, filters.end)
        if months is not None:
            c = closed_counts.c
            rows += [(str(status), int(n or 0)) for status, n in session.execute(
                sa.select(c.status, sa.func.sum(c.n))
                .where(*_counter_conditions(closed_counts, viewer, filters, pipeline_id, months),
                       c.status.in_([DealStatus.won.value, DealStatus.lost.value]))
                .group_by(c.status))]
        for start, end in edges:
            rows += _raw_closed(session, viewer, filters, pipeline_id, start, end)
    else:
        rows = _raw_closed(session, viewer, filters, pipeline_id, filters.start, filters.end)
    found = {DealStatus.won.value: 0, DealStatus.lost.value: 0}
    for status, n in rows:
        found[status] += n
    return found[DealStatus.won.value], found[DealStatus.lost.value]


def rank_test(x: list[tuple[int, int]], y: list[tuple[int, int]]) -> RankTest | None:
    """:func:`stats.mann_whitney_u` of the values two histograms stand for (``(value,
    count)`` pairs): the same U, tie-corrected variance, continuity correction and p-value,
    from the counts alone. Every value of a histogram bucket is one tie group."""
    n1, n2 = sum(c for _v, c in x), sum(c for _v, c in y)
    if n1 == 0 or n2 == 0:
        return None
    pooled: dict[int, list[int]] = {}
    for index, hist in enumerate((x, y)):
        for value, count in hist:
            pooled.setdefault(value, [0, 0])[index] += count
    below, rank_sum, ties = 0, 0.0, 0
    for value in sorted(pooled):
        in_x, in_y = pooled[value]
        group = in_x + in_y
        rank_sum += in_x * (below + (group + 1) / 2.0)  # the group's ranks averaged; ranks start at 1
        ties += group ** 3 - group
        below += group
    u = rank_sum - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    mean = n1 * n2 / 2.0
    variance = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:
        return RankTest(u, n1, n2, 0.0, 1.0)
    distance = max(abs(u - mean) - 0.5, 0.0)
    z = math.copysign(distance / math.sqrt(variance), u - mean) if distance else 0.0
    return RankTest(u, n1, n2, z, min(1.0, math.erfc(abs(z) / math.sqrt(2))))


def _rate(successes: int, trials: int) -> dict[str, Any]:
    low, high = wilson(successes, trials)
    return {"rate": successes / trials if trials else None, "ci_low": low, "ci_high": high}


def period_change(session: Session, viewer: User, filters: ReportFilters) -> dict[str, Any]:
    pipeline = resolve_pipeline(session, filters.pipeline_id)
    stages = pipeline_queries.list_stages(session, pipeline.id)
    bits = [1 << s.bit for s in stages]
    before_filters = filters.previous()
    groups_now = cohort_groups(session, viewer, filters, pipeline.id)
    groups_before = cohort_groups(session, viewer, before_filters, pipeline.id)
    cont_now, cont_before = _continuation(groups_now, bits), _continuation(groups_before, bits)
    stage_ids = [s.id for s in stages]
    stays_now = completed_stays(session, viewer, filters, pipeline.id, stage_ids)
    stays_before = completed_stays(session, viewer, before_filters, pipeline.id, stage_ids)
    called_out: list[dict[str, Any]] = []

    def call_out(stage: Any, metric: str, before: float | None, after: float | None, p_value: float | None) -> None:
        if p_value is None or p_value >= ALPHA or before is None or after is None:
            return
        called_out.append({
            "stage_id": stage.id if stage else None, "stage": stage.name if stage else None,
            "stage_en": stage.name_en if stage else None, "metric": metric, "before": before, "after": after,
            "change": after - before, "direction": "up" if after > before else "down", "p_value": p_value,
        })

    continuation_rows = []
    time_rows = []
    for k, stage in enumerate(stages):
        (n_now, s_now), (n_before, s_before) = cont_now[k], cont_before[k]
        now_rate, before_rate = _rate(s_now, n_now), _rate(s_before, n_before)
        test = two_proportion_test(s_now, n_now, s_before, n_before)
        base = {"stage_id": stage.id, "position": stage.position, "name": stage.name, "name_en": stage.name_en}
        continuation_rows.append({
            **base,
            "reached_before": n_before, "continued_before": s_before, "rate_before": before_rate["rate"],
            "ci_low_before": before_rate["ci_low"], "ci_high_before": before_rate["ci_high"],
            "reached_now": n_now, "continued_now": s_now, "rate_now": now_rate["rate"],
            "ci_low_now": now_rate["ci_low"], "ci_high_now": now_rate["ci_high"],
            "difference": test.difference if test else None,
            "z": test.z if test else None, "p_value": test.p_value if test else None,
            "significant": bool(test and test.p_value < ALPHA),
        })
        call_out(stage, "continuation", before_rate["rate"], now_rate["rate"], test.p_value if test else None)
        x, y = stays_now.get(stage.id, Stays()), stays_before.get(stage.id, Stays())
        median_now, median_before = x.percentile_days(0.5), y.percentile_days(0.5)
        rank = rank_test(x.histogram, y.histogram)
        time_rows.append({
            **base,
            "stays_before": y.n, "median_days_before": median_before,
            "stays_now": x.n, "median_days_now": median_now,
            "difference_days": round(median_now - median_before, 2)
            if median_now is not None and median_before is not None else None,
            "u": rank.u if rank else None, "z": rank.z if rank else None,
            "p_value": rank.p_value if rank else None, "significant": bool(rank and rank.p_value < ALPHA),
        })
        call_out(stage, "median_days_in_stage", median_before, median_now, rank.p_value if rank else None)
    won_now, lost_now = _closed(session, viewer, filters, pipeline.id)
    won_before, lost_before = _closed(session, viewer, before_filters, pipeline.id)
    win_test = two_proportion_test(won_now, won_now + lost_now, won_before, won_before + lost_before)
    win_now, win_before = _rate(won_now, won_now + lost_now), _rate(won_before, won_before + lost_before)
    call_out(None, "win_rate_of_closed", win_before["rate"], win_now["rate"], win_test.p_value if win_test else None)
    size_now, size_before = sum(g.count for g in groups_now), sum(g.count for g in groups_before)
    size_test = poisson_count_test(size_now, size_before)
    call_out(None, "cohort_size", size_before, size_now, size_test.p_value if size_test else None)
    called_out.sort(key=lambda c: (c["p_value"], c["stage_id"] or 0, c["metric"]))
    return {
        "report": "change",
        "period": filters.period(),
        "previous_period": before_filters.period(),
        "pipeline_id": pipeline.id,
        "alpha": ALPHA,
        "rate_definition": RATE_DEFINITION,
        "win_rate_definition": WIN_RATE_DEFINITION,
        "continuation": continuation_rows,
        "time_in_stage": time_rows,
        "win_rate_of_closed": {
            "before": {"won": won_before, "lost": lost_before, **win_before},
            "now": {"won": won_now, "lost": lost_now, **win_now},
            "difference": win_test.difference if win_test else None,
            "z": win_test.z if win_test else None, "p_value": win_test.p_value if win_test else None,
            "significant": bool(win_test and win_test.p_value < ALPHA),
        },
        "cohort_size": {
            "before": size_before, "now": size_now, "difference": size_now - size_before,
            "relative_change": (size_now - size_before) / size_before if size_before else None,
            "z": size_test.z if size_test else None, "p_value": size_test.p_value if size_test else None,
            "significant": bool(size_test and size_test.p_value < ALPHA),
        },
        "called_out": called_out,
    }


# --- the report as a registry entry (CLI, API, pages) ----------------------------------

def _tables(result: dict[str, Any], filters: ReportFilters) -> list[Table]:
    def drill(row: dict[str, Any]) -> dict[str, Any]:
        return drill_params(filters, pipeline_id=result["pipeline_id"], reached_stage_id=row["stage_id"])

    win, size = result["win_rate_of_closed"], result["cohort_size"]
    overall = [
        {"metric": "win_rate_of_closed", "before": win["before"]["rate"], "now": win["now"]["rate"],
         "difference": win["difference"], "p_value": win["p_value"], "significant": win["significant"]},
        {"metric": "cohort_size", "before": size["before"], "now": size["now"], "difference": size["difference"],
         "p_value": size["p_value"], "significant": size["significant"]},
    ]
    return [
        Table("called_out", _("Significant changes"), [
            Col("stage", _("Stage")), Col("metric", _("Metric")), Col("before", _("Previous period"), "num"),
            Col("after", _("This period"), "num"), Col("change", _("Change"), "num"),
            Col("p_value", _("p-value"), "pvalue"),
        ], result["called_out"], None),
        Table("continuation", _("Continuation by stage, period over period"), [
            Col("name", _("Stage")), Col("reached_before", _("Reached (previous)"), "int"),
            Col("rate_before", _("Went further (previous)"), "pct"), Col("reached_now", _("Reached (this)"), "int"),
            Col("rate_now", _("Went further (this)"), "pct"), Col("ci_low_now", _("95% low"), "pct"),
            Col("ci_high_now", _("95% high"), "pct"), Col("difference", _("Change"), "pct"),
            Col("p_value", _("p-value"), "pvalue"), Col("significant", _("Significant"), "bool"),
        ], result["continuation"], drill),
        Table("time_in_stage", _("Median days in stage, period over period"), [
            Col("name", _("Stage")), Col("stays_before", _("Stays (previous)"), "int"),
            Col("median_days_before", _("Median days (previous)"), "days"),
            Col("stays_now", _("Stays (this)"), "int"), Col("median_days_now", _("Median days (this)"), "days"),
            Col("difference_days", _("Change in days"), "days"), Col("p_value", _("p-value"), "pvalue"),
            Col("significant", _("Significant"), "bool"),
        ], result["time_in_stage"], None, note=_("Completed stays that started in each period; Mann–Whitney U test.")),
        Table("overall", _("Win rate of closed deals and cohort size"), [
            Col("metric", _("Metric")), Col("before", _("Previous period"), "num"),
            Col("now", _("This period"), "num"), Col("difference", _("Change"), "num"),
            Col("p_value", _("p-value"), "pvalue"), Col("significant", _("Significant"), "bool"),
        ], overall, None),
    ]


CHANGE = register(ReportSpec(
    name="change",
    title=_("Period over period"),
    summary=_("Stage continuation, time in stage, win rate of closed deals and cohort size in the period "
              "against the period of the same length before it, with the significant changes called out."),
    compute=period_change,
    tables=_tables,
    charts=(Chart("bar", "continuation", "name", ("rate_before", "rate_now"),
                  _("Went further: previous period and this period")),
            Chart("bar", "time_in_stage", "name", ("median_days_before", "median_days_now"),
                  _("Median days in stage: previous period and this period"))),
    period_meaning=_("Deals created (continuation) or stays started (time) in the period and in the one before"),
))
