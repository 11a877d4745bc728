"""Win/loss analysis (PRODUCT C5, C6): the deals lost in a period by lost reason, by the
stage they were lost at, by reason and channel, by reason and rep and over time, and the
won deals of the period set against the lost ones (activity, cycle, amount). Defined in
docs/analytics.md.

The lost deals by reason, channel and rep and by stage come from
``analytics_outcome_reasons`` / ``analytics_outcome_stages``, the won and lost deals from
``analytics_outcome_cells`` with one record per deal (activities, cycle) for exact
medians — whole months from these tables, the rest of the period from the deals
(:mod:`loudou.analytics.counters_outcomes`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.analytics import counters_outcomes as outcomes
from loudou.analytics.cycle import (
    NO_NAME,
    channel_names,
    check_pipeline,
    closed_range,
    days,
    rate,
    user_names,
)
from loudou.analytics.filters import ReportFilters
from loudou.analytics.reports import Chart, Col, ReportSpec, Table, drill_params, register
from loudou.analytics.reports import msg as _
from loudou.analytics.winrate import WIN_RATE_DEFINITION, bucket_parts, buckets, dated
from loudou.auth.models import User
from loudou.deal.models import DealStatus
from loudou.pipeline.models import LostReason, Pipeline, Stage


def _reason_names(session: Session, ids: set[int | None]) -> dict[int, tuple[str, str | None]]:
    wanted = sorted(i for i in ids if i is not None)
    if not wanted:
        return {}
    stmt = sa.select(LostReason.id, LostReason.name, LostReason.name_en).where(LostReason.id.in_(wanted))
    return {int(i): (n, e) for i, n, e in session.execute(stmt)}


def _stages(session: Session, ids: set[int]) -> dict[int, Any]:
    if not ids:
        return {}
    stmt = (sa.select(Stage.id, Stage.name, Stage.name_en, Stage.position, Stage.pipeline_id,
                      Pipeline.name.label("pipeline"))
            .join(Pipeline, Pipeline.id == Stage.pipeline_id).where(Stage.id.in_(sorted(ids))))
    return {int(row.id): row for row in session.execute(stmt)}


def _share_row(n: int, of: int) -> dict[str, Any]:
    share = rate(n, of)
    return {"share": share["rate"], "ci_low": share["ci_low"], "ci_high": share["ci_high"]}


def _sum(groups: list[outcomes.LostGroup], key: Callable[[outcomes.LostGroup], Any]
         ) -> list[tuple[Any, int, Decimal]]:
    """(key, lost, amount) summed over the groups by ``key``."""
    sums: dict[Any, list[int]] = {}
    for g in groups:
        slot = sums.setdefault(key(g), [0, 0])
        slot[0] += g.n
        slot[1] += g.cents
    return [(k, n, Decimal(cents) / 100) for k, (n, cents) in sums.items()]


def win_loss(session: Session, viewer: User, filters: ReportFilters) -> dict[str, Any]:
    check_pipeline(session, filters)
    won_status, lost_status = DealStatus.won.value, DealStatus.lost.value
    # The lost deals by (reason, channel, rep) and by stage, and the won and lost deals as
    # cells with their records (activities, cycle): whole months from the counters.
    reason_groups, stage_groups = outcomes.lost_groups(session, viewer, filters)
    cells = outcomes.closed_records(session, viewer, filters, (won_status, lost_status))
    by_reason_rows = _sum(reason_groups, lambda g: g.key)
    by_stage_rows = _sum(stage_groups, lambda g: g.key)
    by_channel_rows = [(*k, n, a) for k, n, a in _sum(reason_groups, lambda g: (g.channel_id, g.key))]
    by_rep_rows = [(*k, n, a) for k, n, a in _sum(reason_groups, lambda g: (g.owner_id, g.key))]

    lost = sum(int(r[-2]) for r in by_reason_rows)
    lost_amount = sum((r[-1] for r in by_reason_rows), Decimal(0))
    reasons = _reason_names(session, {r[0] for r in by_reason_rows})

    def reason_fields(reason_id: int | None) -> dict[str, Any]:
        name, name_en = reasons.get(reason_id, (NO_NAME, None)) if reason_id is not None else (NO_NAME, None)
        return {"lost_reason_id": reason_id, "reason": name, "reason_en": name_en}

    by_reason = sorted(
        ({**reason_fields(reason_id), "lost": int(n), "lost_amount": float(amount), **_share_row(int(n), lost)}
         for reason_id, n, amount in by_reason_rows),
        key=lambda r: (-r["lost"], r["lost_reason_id"] is None, str(r["reason"])))

    stages = _stages(session, {int(r[0]) for r in by_stage_rows})
    by_stage = []
    for stage_id, n, amount in by_stage_rows:
        stage = stages[int(stage_id)]
        by_stage.append({"stage_id": stage.id, "name": stage.name, "name_en": stage.name_en,
                         "position": stage.position, "pipeline_id": stage.pipeline_id, "pipeline": stage.pipeline,
                         "lost": int(n), "lost_amount": float(amount), **_share_row(int(n), lost)})
    by_stage.sort(key=lambda r: (r["pipeline_id"], r["position"]))

    channel_total: dict[int | None, int] = defaultdict(int)
    for channel_id, _reason, n, _amount in by_channel_rows:
        channel_total[channel_id] += int(n)
    channels = channel_names(session, channel_total)
    reason_channel = sorted(
        ({"channel_id": channel_id,
          "channel": channels.get(channel_id, (NO_NAME, None))[0] if channel_id is not None else NO_NAME,
          "channel_en": channels.get(channel_id, (NO_NAME, None))[1] if channel_id is not None else None,
          **reason_fields(reason_id), "lost": int(n), "lost_amount": float(amount),
          **_share_row(int(n), channel_total[channel_id])}
         for channel_id, reason_id, n, amount in by_channel_rows),
        key=lambda r: (-channel_total[r["channel_id"]], str(r["channel"]), -r["lost"], str(r["reason"])))

    rep_total: dict[int | None, int] = defaultdict(int)
    for owner_id, _reason, n, _amount in by_rep_rows:
        rep_total[owner_id] += int(n)
    reps = user_names(session, rep_total)
    reason_rep = sorted(
        ({"owner_id": owner_id, "rep": reps.get(owner_id, NO_NAME) if owner_id is not None else NO_NAME,
          **reason_fields(reason_id), "lost": int(n), "lost_amount": float(amount),
          **_share_row(int(n), rep_total[owner_id])}
         for owner_id, reason_id, n, amount in by_rep_rows),
        key=lambda r: (-rep_total[r["owner_id"]], str(r["rep"]), -r["lost"], str(r["reason"])))

    bucket_list = buckets(filters)
    lost_in = [0] * len(bucket_list)
    cents_in = [0] * len(bucket_list)
    for i, part in bucket_parts([c for c in cells if c.status == lost_status], filters):
        lost_in[i] += part.n
        cents_in[i] += part.cents
    over_time = [{"bucket": b.key, "start": b.start.isoformat(), "end": b.end.isoformat(), "full": b.full,
                  "lost": n, "lost_amount": float(Decimal(cents) / 100)}
                 for b, n, cents in zip(bucket_list, lost_in, cents_in, strict=True)]

    return {
        "report": "winloss",
        "period": filters.period(),
        "pipeline_id": filters.pipeline_id,
        "interval": filters.interval,
        "lost": lost,
        "lost_amount": float(lost_amount),
        "by_reason": by_reason,
        "by_stage": by_stage,
        "reason_by_channel": reason_channel,
        "reason_by_rep": reason_rep,
        "over_time": over_time,
        "won_vs_lost": _won_vs_lost(cells),
        "win_rate_definition": WIN_RATE_DEFINITION,
    }


def _won_vs_lost(cells: list[outcomes.Cell]) -> list[dict[str, Any]]:
    """Won and lost deals closed in the period side by side."""
    all_closed = sum(c.n for c in cells)
    rows = []
    for status in (DealStatus.won, DealStatus.lost):
        mine = [c for c in cells if c.status == status.value]
        n = sum(c.n for c in mine)
        amount = Decimal(sum(c.cents for c in mine)) / 100
        with_amount = sum(c.with_amount for c in mine)
        activities = sum(c.activities for c in mine)
        records = outcomes.join_records([c.records for c in mine if c.records is not None])
        rows.append({
            "status": status.value, "deals": n, **_share_row(n, all_closed),
            "avg_activities": round(activities / n, 2) if n else None,
            "median_activities": outcomes.percentile(records["activities"], 0.5),
            "median_cycle_days": days(outcomes.percentile(records["cycle"], 0.5)),
            "amount": float(amount),
            "avg_amount": round(float(amount / with_amount), 2) if with_amount else None,
        })
    return rows


# --- the report as a registry entry (CLI, API, pages) ----------------------------------

def _share_columns(label: str) -> list[Col]:
    return [Col("share", label, "pct"), Col("ci_low", _("95% low"), "pct"), Col("ci_high", _("95% high"), "pct")]


def _tables(result: dict[str, Any], filters: ReportFilters) -> list[Table]:
    period = closed_range(filters)

    def lost_drill(*keys: str) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
        def drill(row: dict[str, Any]) -> dict[str, Any] | None:
            if any(row[k] is None for k in keys):  # the deal list cannot ask for "no reason / channel / owner"
                return None
            return drill_params(filters, cohort=False, status=DealStatus.lost.value, **period,
                                **{k: row[k] for k in keys})
        return drill

    def bucket_drill(row: dict[str, Any]) -> dict[str, Any]:
        return drill_params(filters, cohort=False, status=DealStatus.lost.value, closed_from=str(row["start"]),
                            closed_to=str(row["end"]))

    def status_drill(row: dict[str, Any]) -> dict[str, Any]:
        return drill_params(filters, cohort=False, status=row["status"], **period)

    counts = [Col("lost", _("Lost deals"), "int"), Col("lost_amount", _("Lost amount"), "money")]
    return [
        Table("reasons", _("Lost deals by reason"), [Col("reason", _("Lost reason")), *counts,
                                                     *_share_columns(_("Share of lost deals"))],
              result["by_reason"], lost_drill("lost_reason_id")),
        Table("stages", _("Lost deals by stage lost at"), [Col("name", _("Stage")), Col("pipeline", _("Pipeline")),
                                                            *counts, *_share_columns(_("Share of lost deals"))],
              result["by_stage"], lost_drill("stage_id")),
        Table("reason_channel", _("Lost reasons by channel"), [
            Col("channel", _("Channel")), Col("reason", _("Lost reason")), *counts,
            *_share_columns(_("Share of the channel's lost deals")),
        ], result["reason_by_channel"], lost_drill("channel_id", "lost_reason_id")),
        Table("reason_rep", _("Lost reasons by rep"), [
            Col("rep", _("Rep")), Col("reason", _("Lost reason")), *counts,
            *_share_columns(_("Share of the rep's lost deals")),
        ], result["reason_by_rep"], lost_drill("owner_id", "lost_reason_id")),
        Table("over_time", _("Lost deals by period"), [
            Col("bucket", _("Period")), Col("start", _("From"), "date"), Col("end", _("To"), "date"), *counts,
        ], dated(result["over_time"]), bucket_drill),
        Table("won_vs_lost", _("Won and lost deals compared"), [
            Col("status", _("Status")), Col("deals", _("Deals"), "int"),
            *_share_columns(_("Share of won and lost")),
            Col("avg_activities", _("Average activities"), "num"),
            Col("median_activities", _("Median activities"), "num"),
            Col("median_cycle_days", _("Median cycle (days)"), "days"),
            Col("avg_amount", _("Average amount"), "money"),
        ], result["won_vs_lost"], status_drill),
    ]


WINLOSS = register(ReportSpec(
    name="winloss",
    title=_("Win/loss analysis"),
    summary=_("The deals lost in the period by lost reason, by the stage they were lost at, by channel "
              "and rep and over time, and the won and lost deals compared by activity, cycle and amount."),
    compute=win_loss,
    tables=_tables,
    charts=(Chart("hbar", "reasons", "reason", ("lost",), _("Lost deals by reason")),
            Chart("bar", "stages", "name", ("lost",), _("Lost deals by stage lost at")),
            Chart("bar", "over_time", "bucket", ("lost",), _("Lost deals by period")),
            Chart("bar", "won_vs_lost", "status", ("avg_activities", "median_activities"),
                  _("Activities per deal, won and lost"))),
    period_meaning=_("Deals closed in the period"),
))
