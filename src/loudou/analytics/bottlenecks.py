"""Bottleneck stages (PRODUCT C2, D4): for each rep, team and channel, the stage whose
continuation rate is furthest below the norm, with the size of the gap and whether it is
significant. Defined precisely in docs/analytics.md.

The cohort (deals created in the period) counted per owner, team and channel — whole months
from ``analytics_cohort_counts``, partial months from the deals; everything else is
arithmetic on those counts:

* continuation(k) of a set of deals = of those that reached stage k, the share that reached
  a later stage or, from the last stage, won (as the cohort funnel's "went further");
* the norm of a rep is the rep's team without the rep; of a team, every visible deal outside
  the team; of a channel, every visible deal outside the channel;
* gap = rate − norm rate, tested with the pooled two-proportion z-test.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.analytics import counters
from loudou.analytics.filters import ReportFilters, deal_conditions
from loudou.analytics.funnel import _countable, _counter_conditions, resolve_pipeline
from loudou.analytics.reports import Chart, Col, ReportSpec, Table, drill_params, register
from loudou.analytics.reports import msg as _
from loudou.analytics.stats import two_proportion_test, wilson
from loudou.auth.models import Team, User
from loudou.channel.models import Channel
from loudou.deal.models import Deal, DealStatus
from loudou.pipeline import queries as pipeline_queries

#: A (group, stage) cell is eligible as a bottleneck when the group has this many deals reaching the stage.
MIN_REACHED = 20
ALPHA = 0.05
KINDS = ("rep", "team", "channel")
#: The fields of a group's bottleneck cell repeated on the group's row.
CELL_FIELDS = ("stage_id", "position", "stage", "stage_en", "reached", "continued", "rate", "ci_low", "ci_high",
               "norm_reached", "norm_continued", "norm_rate", "gap", "z", "p_value")
RATE_DEFINITION = ("continuation(k) = of the cohort's deals that reached stage k, the share that reached a "
                   "later stage or, from the last stage, won")


@dataclass
class Counts:
    """Per stage index: deals that reached it and deals that went further; and cohort size."""

    reached: list[int]
    continued: list[int]
    deals: int = 0

    @classmethod
    def empty(cls, n: int) -> Counts:
        return cls([0] * n, [0] * n)

    def add(self, other: Counts, sign: int = 1) -> None:
        for k in range(len(self.reached)):
            self.reached[k] += sign * other.reached[k]
            self.continued[k] += sign * other.continued[k]
        self.deals += sign * other.deals

    def minus(self, other: Counts) -> Counts:
        out = Counts(list(self.reached), list(self.continued), self.deals)
        out.add(other, -1)
        return out


@dataclass
class Tally:
    total: Counts
    by: dict[str, dict[int, Counts]] = field(default_factory=dict)
    pair: dict[tuple[int, int], Counts] = field(default_factory=dict)  # (owner, team) -> counts


GroupRow = tuple[int | None, int | None, int | None, Counts]  # owner, team, channel, their counts


def _group_columns(mask: Any, status: Any, n: Any, bits: list[int]) -> list[Any]:
    """Sums of ``n`` per stage: deals that reached it, deals that went further, and all."""
    reached = [mask.op("&")(bit) != 0 for bit in bits]
    went = [sa.and_(reached[k], mask.op("&")(sum(bits[k + 1:])) != 0) for k in range(len(bits) - 1)]
    went.append(sa.and_(reached[-1], status == DealStatus.won.value))
    return [sa.func.sum(sa.case((condition, n), else_=0)) for condition in (*reached, *went)] + [sa.func.sum(n)]


def _counts(values: Any, stages: int) -> Counts:
    numbers = [int(v or 0) for v in values]
    return Counts(numbers[:stages], numbers[stages:2 * stages], numbers[2 * stages])


def _raw_groups(session: Session, viewer: User, filters: ReportFilters, pipeline_id: int, bits: list[int],
                start: dt.datetime, end: dt.datetime) -> list[GroupRow]:
    stmt = (
        sa.select(Deal.owner_id, Deal.team_id, Deal.channel_id,
                  *_group_columns(Deal.reached_mask, Deal.status, sa.literal(1), bits))
        .where(Deal.created_at >= start, Deal.created_at < end, *deal_conditions(viewer, filters, pipeline_id))
        .group_by(Deal.owner_id, Deal.team_id, Deal.channel_id)
    )
    return [(row[0], row[1], row[2], _counts(row[3:], len(bits))) for row in session.execute(stmt)]


def group_counts(session: Session, viewer: User, filters: ReportFilters, pipeline_id: int, bits: list[int]
                 ) -> list[GroupRow]:
    """The cohort's counts per (owner, team, channel): whole months from
    ``analytics_cohort_counts`` (which stores a missing owner, team or channel as 0),
    partial months (and filters no counter carries) from the deals."""
    if not _countable(filters):
        return _raw_groups(session, viewer, filters, pipeline_id, bits, filters.start, filters.end)
    rows: list[GroupRow] = []
    months, edges = counters.split_period(filters.start, filters.end)
    if months is not None:
        t = counters.cohort_counts
        stmt = (sa.select(t.c.owner_id, t.c.team_id, t.c.channel_id,
                          *_group_columns(t.c.reached_mask, t.c.status, t.c.n, bits))
                .where(*_counter_conditions(t, viewer, filters, pipeline_id, months))
                .group_by(t.c.owner_id, t.c.team_id, t.c.channel_id))
        rows += [(row[0] or None, row[1] or None, row[2] or None, _counts(row[3:], len(bits)))
                 for row in session.execute(stmt)]
    for start, end in edges:
        rows += _raw_groups(session, viewer, filters, pipeline_id, bits, start, end)
    return rows


def _tally(session: Session, viewer: User, filters: ReportFilters, pipeline_id: int, bits: list[int]) -> Tally:
    n = len(bits)
    tally = Tally(Counts.empty(n), {kind: {} for kind in KINDS})
    for owner_id, team_id, channel_id, row in group_counts(session, viewer, filters, pipeline_id, bits):
        if not row.deals:
            continue
        tally.total.add(row)
        for kind, key in (("rep", owner_id), ("team", team_id), ("channel", channel_id)):
            if key is not None:
                tally.by[kind].setdefault(int(key), Counts.empty(n)).add(row)
        if owner_id is not None and team_id is not None:
            tally.pair.setdefault((int(owner_id), int(team_id)), Counts.empty(n)).add(row)
    return tally


def _names(session: Session, tally: Tally) -> dict[str, dict[int, tuple[str, str | None, int | None]]]:
    """(name, English name, team id) of every rep, team and channel in the cohort."""
    out: dict[str, dict[int, tuple[str, str | None, int | None]]] = {kind: {} for kind in KINDS}
    if tally.by["rep"]:
        stmt = sa.select(User.id, User.name, User.team_id).where(User.id.in_(list(tally.by["rep"])))
        out["rep"] = {int(i): (name, None, team_id) for i, name, team_id in session.execute(stmt)}
    if tally.by["team"]:
        stmt_t = sa.select(Team.id, Team.name).where(Team.id.in_(list(tally.by["team"])))
        out["team"] = {int(i): (name, None, None) for i, name in session.execute(stmt_t)}
    if tally.by["channel"]:
        stmt_c = sa.select(Channel.id, Channel.name, Channel.name_en).where(Channel.id.in_(list(tally.by["channel"])))
        out["channel"] = {int(i): (name, name_en, None) for i, name, name_en in session.execute(stmt_c)}
    return out


def _norm(tally: Tally, kind: str, key: int, team_of_rep: int | None) -> tuple[Counts, str]:
    own = tally.by[kind][key]
    if kind == "rep":
        if team_of_rep is None:
            return tally.total.minus(own), "all_other_deals"
        team = tally.by["team"].get(team_of_rep, Counts.empty(len(own.reached)))
        in_team = tally.pair.get((key, team_of_rep), Counts.empty(len(own.reached)))
        return team.minus(in_team), "team_without_rep"
    return tally.total.minus(own), "all_other_deals"


def bottlenecks(session: Session, viewer: User, filters: ReportFilters) -> dict[str, Any]:
    pipeline = resolve_pipeline(session, filters.pipeline_id)
    stages = pipeline_queries.list_stages(session, pipeline.id)
    bits = [1 << s.bit for s in stages]
    tally = _tally(session, viewer, filters, pipeline.id, bits)
    names = _names(session, tally)
    cells: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    for kind in KINDS:
        for key in sorted(tally.by[kind]):
            name, name_en, team_of_rep = names[kind].get(key, (str(key), None, None))
            own = tally.by[kind][key]
            norm, norm_kind = _norm(tally, kind, key, team_of_rep)
            group_cells = []
            for k, stage in enumerate(stages):
                n, s = own.reached[k], own.continued[k]
                nn, ns = norm.reached[k], norm.continued[k]
                test = two_proportion_test(s, n, ns, nn)
                low, high = wilson(s, n)
                rate = s / n if n else None
                norm_rate = ns / nn if nn else None
                cell: dict[str, Any] = {
                    "kind": kind, "group_id": key, "group": name, "group_en": name_en, "norm": norm_kind,
                    "stage_id": stage.id, "position": stage.position, "stage": stage.name, "stage_en": stage.name_en,
                    "reached": n, "continued": s, "rate": rate, "ci_low": low, "ci_high": high,
                    "norm_reached": nn, "norm_continued": ns, "norm_rate": norm_rate,
                    "gap": rate - norm_rate if rate is not None and norm_rate is not None else None,
                    "z": test.z if test else None, "p_value": test.p_value if test else None,
                    "significant": bool(test and test.p_value < ALPHA),
                    "eligible": n >= MIN_REACHED and test is not None,
                }
                group_cells.append(cell)
            cells.extend(group_cells)
            below = [c for c in group_cells if c["eligible"] and c["gap"] is not None and c["gap"] < 0]
            worst = min(below, key=lambda c: (c["gap"], c["position"])) if below else None
            groups.append({
                "kind": kind, "group_id": key, "group": name, "group_en": name_en, "norm": norm_kind,
                "deals": own.deals,
                **{k: worst[k] if worst else None for k in CELL_FIELDS},
                "significant": bool(worst and worst["significant"]),
            })
    significant = sorted((c for c in cells if c["eligible"] and c["significant"] and c["gap"] < 0),
                         key=lambda c: (c["z"], c["kind"], c["group_id"], c["position"]))
    return {
        "report": "bottlenecks",
        "period": filters.period(),
        "pipeline_id": pipeline.id,
        "cohort_size": tally.total.deals,
        "rate_definition": RATE_DEFINITION,
        "min_reached": MIN_REACHED,
        "alpha": ALPHA,
        "stages": [{"stage_id": s.id, "position": s.position, "name": s.name, "name_en": s.name_en,
                    "reached": tally.total.reached[k], "continued": tally.total.continued[k],
                    "rate": tally.total.continued[k] / tally.total.reached[k] if tally.total.reached[k] else None}
                   for k, s in enumerate(stages)],
        "groups": groups,
        "cells": cells,
        "significant": significant,
    }


# --- the report as a registry entry (CLI, API, pages) ----------------------------------

_GROUP_PARAM = {"rep": "owner_id", "team": "team_id", "channel": "channel_id"}


def _tables(result: dict[str, Any], filters: ReportFilters) -> list[Table]:
    def drill(row: dict[str, Any]) -> dict[str, Any]:
        params = drill_params(filters, pipeline_id=result["pipeline_id"], reached_stage_id=row["stage_id"])
        params[_GROUP_PARAM[row["kind"]]] = row["group_id"]
        return params

    columns = [
        Col("kind", _("Group")), Col("group", _("Name")), Col("stage", _("Stage")),
        Col("reached", _("Reached"), "int"), Col("rate", _("Went further"), "pct"),
        Col("norm_reached", _("Norm: reached"), "int"), Col("norm_rate", _("Norm rate"), "pct"),
        Col("gap", _("Gap"), "pct"), Col("z", _("z"), "num"), Col("p_value", _("p-value"), "pvalue"),
        Col("significant", _("Significant"), "bool"),
    ]
    return [
        Table("groups", _("Bottleneck stage per rep, team and channel"),
              [*columns[:2], Col("deals", _("Deals"), "int"), *columns[2:]], result["groups"], drill,
              note=_("The stage furthest below the norm among those at least 20 of the group's deals reached.")),
        Table("significant", _("Significantly below the norm"), columns, result["significant"], drill),
    ]


BOTTLENECKS = register(ReportSpec(
    name="bottlenecks",
    title=_("Bottlenecks"),
    summary=_("For each rep, team and channel, the stage whose continuation rate is furthest below the "
              "norm (the rest of the team, or every other team or channel), with the gap and a significance test."),
    compute=bottlenecks,
    tables=_tables,
    charts=(Chart("hbar", "groups", "group", ("gap",), _("Gap to the norm at the bottleneck stage")),),
    period_meaning=_("Deals created in the period"),
))
