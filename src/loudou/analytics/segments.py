"""Segments (PRODUCT C3, C4): how the deals closed in a period went, split by rep, team,
region, product, company segment (industry) and channel. Defined in docs/analytics/segments.md.

For each group: the closed deals (won, lost, disqualified), the win rate won ÷ (won + lost)
with its 95% Wilson interval, the won revenue, the average won size and the sales cycle of
the won deals (created → closed, median and mean days). Counts and sums are grouped in SQL,
one statement per dimension; the cycle needs each won deal's two timestamps, fetched once
for the period and grouped in Python for every dimension.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.analytics.filters import ReportFilters, closed_conditions
from loudou.analytics.funnel import resolve_pipeline
from loudou.analytics.reports import Chart, Col, ReportSpec, Table, drill_params, register
from loudou.analytics.reports import msg as _
from loudou.analytics.stats import percentile, wilson
from loudou.auth.models import Team, User
from loudou.channel.models import Channel
from loudou.company.models import Company
from loudou.deal.models import Deal, DealStatus
from loudou.product.models import Product

DAY_S = 86_400
WIN_RATE_DEFINITION = "won / (won + lost)"
CLOSED = (DealStatus.won, DealStatus.lost, DealStatus.disqualified)


@dataclass(frozen=True)
class Dimension:
    key: str            # result key suffix and table key
    id_field: str       # what the group id is (a deal-list parameter where one exists)
    column: Any         # the SQL expression grouped by
    joins: tuple[str, ...]  # outer joins it needs: "team", "company"


DIMENSIONS = (
    Dimension("rep", "owner_id", Deal.owner_id, ()),
    Dimension("team", "team_id", Deal.team_id, ()),
    Dimension("region", "region", Team.region, ("team",)),
    Dimension("product", "product_id", Deal.product_id, ()),
    Dimension("segment", "industry", Company.industry, ("company",)),
    Dimension("channel", "channel_id", Deal.channel_id, ()),
)

#: Dimensions whose group id is a deal-list filter (region has none: it spans teams).
DRILLABLE = {"rep", "team", "product", "segment", "channel"}


def _is(status: DealStatus) -> sa.ColumnElement[bool]:
    return Deal.status == status


def _count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _measures() -> list[sa.ColumnElement[Any]]:
    won = _is(DealStatus.won)
    return [
        _count_if(won),
        _count_if(_is(DealStatus.lost)),
        _count_if(_is(DealStatus.disqualified)),
        sa.func.coalesce(sa.func.sum(sa.case((won, Deal.amount), else_=None)), 0),
        _count_if(sa.and_(won, Deal.amount.is_not(None))),
    ]


def _from_deals(stmt: sa.Select[Any], joins: Iterable[str]) -> sa.Select[Any]:
    stmt = stmt.select_from(Deal)
    for join in joins:
        if join == "team":
            stmt = stmt.outerjoin(Team, Team.id == Deal.team_id)
        elif join == "company":
            stmt = stmt.outerjoin(Company, Company.id == Deal.company_id)
    return stmt


@dataclass
class Counts:
    won: int = 0
    lost: int = 0
    disqualified: int = 0
    won_amount: Decimal = Decimal(0)
    won_with_amount: int = 0


def _counts(row: Iterable[Any]) -> Counts:
    won, lost, disqualified, amount, with_amount = row
    return Counts(int(won or 0), int(lost or 0), int(disqualified or 0), Decimal(str(amount or 0)),
                  int(with_amount or 0))


def _cycle_days(created: dt.datetime, closed: dt.datetime) -> float:
    return (closed - created).total_seconds() / DAY_S


def _row(group_id: Any, name: str | None, counts: Counts, cycles: list[float]) -> dict[str, Any]:
    decided = counts.won + counts.lost
    low, high = wilson(counts.won, decided)
    cycles = sorted(cycles)
    won_amount = round(float(counts.won_amount), 2)
    return {
        "id": group_id,
        "name": name,
        "closed": counts.won + counts.lost + counts.disqualified,
        "won": counts.won,
        "lost": counts.lost,
        "disqualified": counts.disqualified,
        "win_rate": counts.won / decided if decided else None,
        "ci_low": low,
        "ci_high": high,
        "won_amount": won_amount,
        "avg_won_amount": round(float(counts.won_amount) / counts.won_with_amount, 2)
        if counts.won_with_amount else None,
        "median_cycle_days": percentile(cycles, 0.5),
        "mean_cycle_days": sum(cycles) / len(cycles) if cycles else None,
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


def _sort_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (-row["won_amount"], -row["closed"], row["name"] is None, str(row["name"] or ""), str(row["id"]))


def segments_report(session: Session, viewer: User, filters: ReportFilters) -> dict[str, Any]:
    if filters.pipeline_id is not None:  # every pipeline unless one is chosen; a chosen one must exist
        resolve_pipeline(session, filters.pipeline_id)
    # Every deal with a closed_at is closed; naming the statuses lets (status, closed_at) serve the range.
    conditions = [*closed_conditions(viewer, filters, filters.pipeline_id), Deal.status.in_(CLOSED)]

    # The won deals' cycles, once, with every dimension's group id.
    keys = [d.column for d in DIMENSIONS]
    won_stmt = _from_deals(sa.select(*keys, Deal.created_at, Deal.closed_at), ("team", "company")).where(
        *conditions, _is(DealStatus.won))
    cycles: dict[str, dict[Any, list[float]]] = {d.key: defaultdict(list) for d in DIMENSIONS}
    all_cycles: list[float] = []
    for won in session.execute(won_stmt):
        days = _cycle_days(won[-2], won[-1])
        all_cycles.append(days)
        for d, group_id in zip(DIMENSIONS, won[:-2], strict=True):
            cycles[d.key][group_id].append(days)

    totals_row = session.execute(sa.select(*_measures()).where(*conditions)).one()
    result: dict[str, Any] = {
        "report": "segments",
        "period": filters.period(),
        "pipeline_id": filters.pipeline_id,
        "win_rate_definition": WIN_RATE_DEFINITION,
        "totals": _row(None, None, _counts(totals_row), all_cycles),
    }
    for d in DIMENSIONS:
        stmt = _from_deals(sa.select(d.column, *_measures()), d.joins).where(*conditions).group_by(d.column)
        grouped = {group_id: _counts(rest) for group_id, *rest in session.execute(stmt)}
        names = _names(session, d.key, list(grouped))
        rows: list[dict[str, Any]] = []
        for group_id, counts in grouped.items():
            label = names.get(group_id, {"name": None})
            row = _row(group_id, label["name"], counts, cycles[d.key].get(group_id, []))
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
