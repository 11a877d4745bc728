"""Segments (PRODUCT C3, C4): how the deals closed in a period went, split by rep, team,
region, product, company segment (industry) and channel. Defined in docs/analytics/segments.md.

For each group: the closed deals (won, lost, disqualified), the win rate won ÷ (won + lost)
with its 95% Wilson interval, the won revenue, the average won size and the sales cycle of
the won deals (created → closed, median and mean days).

Nothing here reads the deals one by one for a period of whole months. The figures by rep,
team, region and channel come from the outcome reports' cells (closed deals by month,
team, owner, channel and status, with each won deal's cycle and amount:
:func:`counters_outcomes.closed_records` and :func:`counters_outcomes.closed_sums`); those
by product and by company segment from :mod:`loudou.analytics.counters_segments`. Both
answer the partial months of a period, and the filters they do not carry, from the deals.
Grouping the deals instead costs one pass over the period's closed deals per dimension
(540k of them for a year of the whole company at 1M deals), each looking its company or
team up: 7–11 s through a covering index, three times that when SQLite's planner prefers
the narrower (status, closed_at) index and reads every deal's row.

Amounts are summed as whole cents and cycles counted in whole seconds (as the database
computes them, like the sales-cycle report), so the tables and the deals give the same
figures to the last digit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.analytics import counters_outcomes as outcomes
from loudou.analytics import counters_segments
from loudou.analytics.filters import ReportFilters
from loudou.analytics.funnel import resolve_pipeline
from loudou.analytics.reports import Chart, Col, ReportSpec, Table, drill_params, register
from loudou.analytics.reports import msg as _
from loudou.analytics.stats import wilson
from loudou.auth.models import Team, User
from loudou.channel.models import Channel
from loudou.deal.models import DealStatus
from loudou.product.models import Product

DAY_S = 86_400
WIN_RATE_DEFINITION = "won / (won + lost)"
WON, LOST, DISQUALIFIED = DealStatus.won.value, DealStatus.lost.value, DealStatus.disqualified.value


@dataclass(frozen=True)
class Dimension:
    key: str            # result key suffix and table key
    id_field: str       # what the group id is (a deal-list parameter where one exists)


DIMENSIONS = (
    Dimension("rep", "owner_id"),
    Dimension("team", "team_id"),
    Dimension("region", "region"),
    Dimension("product", "product_id"),
    Dimension("segment", "industry"),
    Dimension("channel", "channel_id"),
)

#: Dimensions whose group id is a deal-list filter (region has none: it spans teams).
DRILLABLE = {"rep", "team", "product", "segment", "channel"}
#: The tables of counters_segments behind the product and company-segment dimensions.
SEGMENT_TABLES = {"product": counters_segments.PRODUCTS, "segment": counters_segments.INDUSTRIES}


@dataclass
class Group:
    """Closed deals of one group: counts by status, the won deals' amount in cents and how
    many of them have an amount, and their cycles in seconds (arrays, joined at the end)."""

    won: int = 0
    lost: int = 0
    disqualified: int = 0
    won_cents: int = 0
    won_with_amount: int = 0
    cycles: list[np.ndarray] = field(default_factory=list)

    def add(self, status: str, n: int, cents: int, with_amount: int, cycles: np.ndarray | None) -> None:
        if status == WON:
            self.won += n
            self.won_cents += cents
            self.won_with_amount += with_amount
            if cycles is not None and len(cycles):
                self.cycles.append(cycles)
        elif status == LOST:
            self.lost += n
        elif status == DISQUALIFIED:
            self.disqualified += n


def _row(group_id: Any, name: str | None, group: Group) -> dict[str, Any]:
    decided = group.won + group.lost
    low, high = wilson(group.won, decided)
    cycles = np.concatenate(group.cycles).astype(np.int64) if group.cycles else np.empty(0, dtype=np.int64)
    median = outcomes.percentile(cycles, 0.5)
    return {
        "id": group_id,
        "name": name,
        "closed": group.won + group.lost + group.disqualified,
        "won": group.won,
        "lost": group.lost,
        "disqualified": group.disqualified,
        "win_rate": group.won / decided if decided else None,
        "ci_low": low,
        "ci_high": high,
        "won_amount": round(group.won_cents / 100, 2),
        "avg_won_amount": round(group.won_cents / 100 / group.won_with_amount, 2)
        if group.won_with_amount else None,
        "median_cycle_days": median / DAY_S if median is not None else None,
        "mean_cycle_days": int(cycles.sum()) / len(cycles) / DAY_S if len(cycles) else None,
        "cycles": len(cycles),
    }


def _names(session: Session, dimension: str, ids: list[Any]) -> dict[Any, dict[str, Any]]:
    """Display names of the groups: users, teams, products, channels (zh and en)."""
    wanted = [i for i in ids if i is not None]
    if dimension in ("region", "segment"):
        return {i: {"name": i} for i in wanted}
    if not wanted:
        return {}
    if dimension == "channel":
        return {cid: {"name": name, "name_en": name_en} for cid, name, name_en in session.execute(
            sa.select(Channel.id, Channel.name, Channel.name_en).where(Channel.id.in_(wanted)))}
    model: Any = {"rep": User, "team": Team, "product": Product}[dimension]
    return {gid: {"name": name} for gid, name in session.execute(
        sa.select(model.id, model.name).where(model.id.in_(wanted)))}


def _regions(session: Session, team_ids: Iterable[int | None]) -> dict[int, str | None]:
    """The teams' regions as they are now (a team without one: None)."""
    wanted = sorted({t for t in team_ids if t is not None})
    if not wanted:
        return {}
    return {int(t): r for t, r in session.execute(sa.select(Team.id, Team.region).where(Team.id.in_(wanted)))}


def _sort_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (-row["won_amount"], -row["closed"], row["name"] is None, str(row["name"] or ""), str(row["id"]))


def _grouped(session: Session, viewer: User, filters: ReportFilters) -> tuple[Group, dict[str, dict[Any, Group]]]:
    """All the closed deals of the period, and per dimension per group id."""
    groups: dict[str, dict[Any, Group]] = {d.key: defaultdict(Group) for d in DIMENSIONS}
    totals = Group()
    by = ("team_id", "owner_id", "channel_id")
    cells = [*outcomes.closed_records(session, viewer, filters, (WON,)),
             *outcomes.closed_sums(session, viewer, filters, (LOST, DISQUALIFIED), by)]
    regions = _regions(session, (c.team_id for c in cells))
    for cell in cells:
        cycles = cell.records["cycle"] if cell.records is not None else None
        figures = (cell.status, cell.n, cell.cents, cell.with_amount, cycles)
        totals.add(*figures)
        groups["rep"][cell.owner_id].add(*figures)
        groups["team"][cell.team_id].add(*figures)
        groups["region"][regions.get(cell.team_id) if cell.team_id is not None else None].add(*figures)
        groups["channel"][cell.channel_id].add(*figures)
    for key, segment in SEGMENT_TABLES.items():
        for piece in counters_segments.closed_groups(session, viewer, filters, segment):
            groups[key][piece.group_id].add(piece.status, piece.n, piece.cents, piece.with_amount, piece.cycles)
    return totals, groups


def segments_report(session: Session, viewer: User, filters: ReportFilters) -> dict[str, Any]:
    if filters.pipeline_id is not None:  # every pipeline unless one is chosen; a chosen one must exist
        resolve_pipeline(session, filters.pipeline_id)
    totals, groups = _grouped(session, viewer, filters)
    result: dict[str, Any] = {
        "report": "segments",
        "period": filters.period(),
        "pipeline_id": filters.pipeline_id,
        "win_rate_definition": WIN_RATE_DEFINITION,
        "totals": _row(None, None, totals),
    }
    for d in DIMENSIONS:
        grouped = {gid: g for gid, g in groups[d.key].items() if g.won or g.lost or g.disqualified}
        names = _names(session, d.key, list(grouped))
        rows: list[dict[str, Any]] = []
        for group_id, group in grouped.items():
            label = names.get(group_id, {"name": None})
            row = _row(group_id, label["name"], group)
            if d.key == "channel":
                row["name_en"] = label.get("name_en")
            rows.append({"id_field": d.id_field, **row})
        rows.sort(key=_sort_key)
        result["by_" + d.key] = rows
    return result


# --- the report as a registry entry (CLI, API, pages) ----------------------------------

_TITLES = {
    "rep": (_("By rep"), _("Rep")),
    "team": (_("By team"), _("Team")),
    "region": (_("By region"), _("Region")),
    "product": (_("By product"), _("Product")),
    "segment": (_("By company segment"), _("Company segment")),
    "channel": (_("By channel"), _("Channel")),
}


def _columns(first: Col, extra: list[Col]) -> list[Col]:
    return [
        first, *extra,
        Col("closed", _("Closed deals"), "int"), Col("won", _("Won"), "int"), Col("lost", _("Lost"), "int"),
        Col("disqualified", _("Disqualified"), "int"), Col("win_rate", _("Win rate"), "pct"),
        Col("ci_low", _("Win rate 95% low"), "pct"), Col("ci_high", _("Win rate 95% high"), "pct"),
        Col("won_amount", _("Won revenue"), "money"), Col("avg_won_amount", _("Average won size"), "money"),
        Col("median_cycle_days", _("Median cycle (days)"), "days"),
        Col("mean_cycle_days", _("Mean cycle (days)"), "days"),
    ]


def _tables(result: dict[str, Any], filters: ReportFilters) -> list[Table]:
    closed = {"closed_from": filters.date_from.isoformat(), "closed_to": filters.date_to.isoformat(),
              "pipeline_id": result.get("pipeline_id")}

    def drill_for(key: str) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
        def drill(row: dict[str, Any]) -> dict[str, Any] | None:
            if key == "overall":
                return drill_params(filters, cohort=False, **closed)
            if key not in DRILLABLE or row.get("id") is None:
                return None
            return drill_params(filters, cohort=False, **closed, **{row["id_field"]: row["id"]})
        return drill

    def shown(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**row, "name": row["name"] if row["name"] is not None else "—"} for row in rows]

    tables = [Table("overall", _("All deals closed in the period"),
                    _columns(Col("definition", _("Win rate definition")), []),
                    [{**result["totals"], "definition": result["win_rate_definition"]}], drill_for("overall"))]
    for key, (title, label) in _TITLES.items():
        extra = [Col("name_en", _("Name (English)"))] if key == "channel" else []
        tables.append(Table(key, title, _columns(Col("name", label), extra), shown(result["by_" + key]),
                            drill_for(key)))
    return tables


SEGMENTS = register(ReportSpec(
    name="segments",
    title=_("Closed deals by segment"),
    summary=_("Deals closed in the period by rep, team, region, product, company segment and channel: "
              "win rate won ÷ (won + lost) with its 95% interval, won revenue, average won size "
              "and sales cycle."),
    compute=segments_report,
    tables=_tables,
    charts=(Chart("hbar", "rep", "name", ("win_rate",), _("Win rate by rep")),
            Chart("bar", "product", "name", ("won_amount",), _("Won revenue by product"))),
    period_meaning=_("Deals closed in the period"),
))
