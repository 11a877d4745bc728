"""Sales cycle (PRODUCT C1, C3): how long the deals won in a period took, from creation to
the win, overall and by channel, team, owner and deal size. Defined in docs/analytics.md.

The won deals come as cells of ``analytics_outcome_cells`` (whole months; the rest of the
period from the deals, :func:`counters_outcomes.closed_records`) with one record per deal:
its cycle and amount. The percentiles are exact, from the records. The cycle is computed
by the database in whole seconds (``julianday`` on SQLite, ``extract(epoch)`` on
PostgreSQL), so both give the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.analytics import counters_outcomes as outcomes
from loudou.analytics.filters import ReportFilters
from loudou.analytics.funnel import resolve_pipeline
from loudou.analytics.reports import Chart, Col, ReportSpec, Table, drill_params, register
from loudou.analytics.reports import msg as _
from loudou.analytics.stats import wilson
from loudou.auth.models import Team, User
from loudou.channel.models import Channel
from loudou.deal.models import DealStatus

DAY_S = 86_400
#: Name shown for the deals without a channel, team or owner.
NO_NAME = "—"

#: Cycle bins: upper bound in days (inclusive; None = no bound) and label.
CYCLE_BINS: tuple[tuple[int | None, str], ...] = (
    (7, "0–7"), (14, "8–14"), (30, "15–30"), (60, "31–60"), (90, "61–90"), (180, "91–180"), (None, "181+"),
)
#: Deal-size bands: lower bound (inclusive), upper bound (exclusive), label.
SIZE_BANDS: tuple[tuple[int | None, int | None, str], ...] = (
    (None, 10_000, "< 10k"), (10_000, 50_000, "10k–50k"), (50_000, 200_000, "50k–200k"), (200_000, None, "≥ 200k"),
)
NO_AMOUNT_BAND = -1


# --- helpers shared by the outcome reports (cycle, winrate, winloss) --------------------

def days(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / DAY_S, 2)


def rate(successes: int, trials: int) -> dict[str, float | None]:
    """A proportion with its 95% Wilson interval (all None without trials)."""
    low, high = wilson(successes, trials)
    return {"rate": successes / trials if trials else None, "ci_low": low, "ci_high": high}


def check_pipeline(session: Session, filters: ReportFilters) -> None:
    """Every pipeline when none is chosen; a chosen one must exist."""
    if filters.pipeline_id is not None:
        resolve_pipeline(session, filters.pipeline_id)


def channel_names(session: Session, ids: Iterable[int | None]) -> dict[int, tuple[str, str | None]]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    stmt = sa.select(Channel.id, Channel.name, Channel.name_en).where(Channel.id.in_(wanted))
    return {int(i): (n, e) for i, n, e in session.execute(stmt)}


def team_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    return {int(i): n for i, n in session.execute(sa.select(Team.id, Team.name).where(Team.id.in_(wanted)))}


def user_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    return {int(i): n for i, n in session.execute(sa.select(User.id, User.name).where(User.id.in_(wanted)))}


def closed_range(filters: ReportFilters) -> dict[str, str]:
    return {"closed_from": filters.date_from.isoformat(), "closed_to": filters.date_to.isoformat()}


# --- the report -------------------------------------------------------------------------

@dataclass
class _Group:
    won: int = 0
    amount: Decimal = Decimal(0)
    seconds: int = 0


def _figures(group: _Group, values: np.ndarray) -> dict[str, Any]:
    return {
        "won": group.won,
        "won_amount": float(group.amount),
        "mean_days": days(group.seconds / group.won) if group.won else None,
        "median_days": days(outcomes.percentile(values, 0.5)),
        "p90_days": days(outcomes.percentile(values, 0.9)),
    }


def _by_won(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (-r["won"], r["name"] is None or r["name"] == NO_NAME, str(r["name"])))


def band_of(cents: np.ndarray) -> np.ndarray:
    """Index of the deal-size band in :data:`SIZE_BANDS` of amounts in cents (-1 without one)."""
    out = np.full(len(cents), NO_AMOUNT_BAND, dtype=np.int64)
    has_amount = cents != outcomes.NO_CENTS
    for index in reversed(range(len(SIZE_BANDS))):
        high = SIZE_BANDS[index][1]
        out[has_amount & (cents < high * 100 if high is not None else True)] = index
    return out


def _groups(keys: np.ndarray, records: np.ndarray) -> dict[int, tuple[_Group, np.ndarray]]:
    """Per key: the group's figures and its cycles."""
    order = np.argsort(keys, kind="stable")
    keys, records = keys[order], records[order]
    out = {}
    bounds = np.flatnonzero(np.diff(keys)) + 1
    for part_keys, part in zip(np.split(keys, bounds), np.split(records, bounds), strict=True):
        if not len(part):
            continue
        has_amount = part["cents"] != outcomes.NO_CENTS
        group = _Group(len(part), Decimal(int(part["cents"][has_amount].sum())) / 100,
                       int(part["cycle"].astype(np.int64).sum()))
        out[int(part_keys[0])] = (group, part["cycle"].astype(np.int64))
    return out


def sales_cycle(session: Session, viewer: User, filters: ReportFilters) -> dict[str, Any]:
    check_pipeline(session, filters)
    cells = outcomes.closed_records(session, viewer, filters, (DealStatus.won.value,))
    parts = [c.records for c in cells if c.records is not None and len(c.records)]
    records = outcomes.join_records(parts)
    sizes = [len(p) for p in parts]

    def per_deal(attr: str) -> np.ndarray:  # a cell's key on each of its deals (0: none)
        return np.repeat(np.array([getattr(c, attr) or 0 for c in cells if c.records is not None
                                   and len(c.records)], dtype=np.int64), sizes)

    groups = {"channel": _groups(per_deal("channel_id"), records), "team": _groups(per_deal("team_id"), records),
              "owner": _groups(per_deal("owner_id"), records), "band": _groups(band_of(records["cents"]), records)}
    everything = np.sort(records["cycle"].astype(np.int64))
    has_amount = records["cents"] != outcomes.NO_CENTS
    total = _Group(len(records), Decimal(int(records["cents"][has_amount].sum())) / 100, int(everything.sum()))

    distribution: list[dict[str, Any]] = []
    below = 0
    for upper, label in CYCLE_BINS:
        upto = int(np.searchsorted(everything, upper * DAY_S, side="right")) if upper is not None else len(everything)
        n = upto - below
        share = rate(n, len(everything))
        distribution.append({"bin": label, "from_days": (distribution[-1]["to_days"] if distribution else 0),
                             "to_days": upper, "deals": n, "share": share["rate"],
                             "ci_low": share["ci_low"], "ci_high": share["ci_high"]})
        below = upto

    def ident(key: int) -> int | None:
        return key or None

    channels = channel_names(session, map(ident, groups["channel"]))
    teams = team_names(session, map(ident, groups["team"]))
    owners = user_names(session, map(ident, groups["owner"]))
    by_channel = _by_won([
        {"channel_id": ident(key), "name": channels.get(key, (NO_NAME, None))[0] if key else NO_NAME,
         "name_en": channels.get(key, (NO_NAME, None))[1] if key else None, **_figures(g, values)}
        for key, (g, values) in groups["channel"].items()])
    by_team = _by_won([
        {"team_id": ident(key), "name": teams.get(key, NO_NAME) if key else NO_NAME, **_figures(g, values)}
        for key, (g, values) in groups["team"].items()])
    by_owner = _by_won([
        {"owner_id": ident(key), "name": owners.get(key, NO_NAME) if key else NO_NAME, **_figures(g, values)}
        for key, (g, values) in groups["owner"].items()])
    empty = (_Group(), np.empty(0, dtype=np.int64))
    by_size = []
    for index, (low, high, label) in enumerate(SIZE_BANDS):
        by_size.append({"band": label, "amount_min": low, "amount_below": high,
                        **_figures(*groups["band"].get(index, empty))})
    if NO_AMOUNT_BAND in groups["band"]:
        by_size.append({"band": NO_NAME, "amount_min": None, "amount_below": None,
                        **_figures(*groups["band"][NO_AMOUNT_BAND])})

    return {
        "report": "cycle",
        "period": filters.period(),
        "pipeline_id": filters.pipeline_id,
        "definition": "cycle = closed_at - created_at, in days, of the deals won in the period",
        **_figures(total, everything),
        "min_days": days(int(everything[0])) if len(everything) else None,
        "max_days": days(int(everything[-1])) if len(everything) else None,
        "distribution": distribution,
        "by_channel": by_channel,
        "by_team": by_team,
        "by_owner": by_owner,
        "by_size": by_size,
    }


# --- the report as a registry entry (CLI, API, pages) ----------------------------------

def _figure_columns() -> list[Col]:
    return [Col("won", _("Won deals"), "int"), Col("won_amount", _("Won amount"), "money"),
            Col("median_days", _("Median cycle (days)"), "days"), Col("p90_days", _("P90 cycle (days)"), "days"),
            Col("mean_days", _("Mean cycle (days)"), "days")]


def _won_drill(filters: ReportFilters, **extra: Any) -> dict[str, Any]:
    return drill_params(filters, cohort=False, status=DealStatus.won.value, **closed_range(filters), **extra)


def _group_drill(filters: ReportFilters, key: str) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    def drill(row: dict[str, Any]) -> dict[str, Any] | None:
        if row[key] is None:  # the deal list cannot ask for "no channel / team / owner"
            return None
        return _won_drill(filters, **{key: row[key]})
    return drill


def _size_drill(filters: ReportFilters) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    def drill(row: dict[str, Any]) -> dict[str, Any] | None:
        if row["amount_min"] is None and row["amount_below"] is None:
            return None  # deals without an amount
        below = row["amount_below"]
        # The deal list's amount_max is inclusive; amounts have two decimals.
        return _won_drill(filters, amount_min=row["amount_min"],
                          amount_max=f"{Decimal(below) - Decimal('0.01')}" if below is not None else None)
    return drill


def _tables(result: dict[str, Any], filters: ReportFilters) -> list[Table]:
    overall = [{k: result[k] for k in ("won", "won_amount", "median_days", "p90_days", "mean_days",
                                       "min_days", "max_days")}]
    return [
        Table("overall", _("Sales cycle of the won deals"), [
            *_figure_columns(), Col("min_days", _("Shortest (days)"), "days"),
            Col("max_days", _("Longest (days)"), "days"),
        ], overall, lambda _row: _won_drill(filters)),
        Table("distribution", _("Won deals by cycle length"), [
            Col("bin", _("Cycle (days)")), Col("deals", _("Won deals"), "int"), Col("share", _("Share"), "pct"),
            Col("ci_low", _("95% low"), "pct"), Col("ci_high", _("95% high"), "pct"),
        ], result["distribution"]),
        Table("channels", _("Sales cycle by channel"), [Col("name", _("Channel")), *_figure_columns()],
              result["by_channel"], _group_drill(filters, "channel_id")),
        Table("teams", _("Sales cycle by team"), [Col("name", _("Team")), *_figure_columns()],
              result["by_team"], _group_drill(filters, "team_id")),
        Table("owners", _("Sales cycle by rep"), [Col("name", _("Rep")), *_figure_columns()],
              result["by_owner"], _group_drill(filters, "owner_id")),
        Table("sizes", _("Sales cycle by deal size"), [Col("band", _("Deal size")), *_figure_columns()],
              result["by_size"], _size_drill(filters)),
    ]


CYCLE = register(ReportSpec(
    name="cycle",
    title=_("Sales cycle"),
    summary=_("How long the deals won in the period took from creation to the win: median, P90 and "
              "mean days, the distribution, and the same by channel, team, rep and deal size."),
    compute=sales_cycle,
    tables=_tables,
    charts=(Chart("histogram", "distribution", "bin", ("deals",), _("Won deals by cycle length")),
            Chart("hbar", "channels", "name", ("median_days",), _("Median cycle by channel")),
            Chart("bar", "sizes", "band", ("median_days", "p90_days"), _("Cycle by deal size"))),
    period_meaning=_("Deals won in the period"),
))
