"""Win rate, average deal size and pipeline velocity by period, with the trend (PRODUCT C1,
C3). Of the deals closed in the period, bucketed by week, month or quarter of closing, and
compared across reps and teams. Defined in docs/analytics.md.

The closed deals come as cells of ``analytics_outcome_cells`` (whole months; the rest of
the period from the deals, :mod:`counters_outcomes`): counts and amounts per
month, team, owner and status, and the won deals' cycles (records) for exact medians; with
weekly buckets every deal's record (the day it closed) places it in its week. "Open at a
bucket's start" comes from counts as well: open at the period's start (created before it
less closed before it), plus the deals created since, minus the deals closed since.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from loudou.analytics import counters_outcomes as outcomes
from loudou.analytics.cycle import (
    DAY_S,
    NO_NAME,
    check_pipeline,
    closed_range,
    days,
    rate,
    team_names,
    user_names,
)
from loudou.analytics.filters import ReportFilters
from loudou.analytics.reports import Chart, Col, ReportSpec, Table, drill_params, register
from loudou.analytics.reports import msg as _
from loudou.analytics.stats import two_proportion_test
from loudou.auth.models import User
from loudou.deal.models import DealStatus
from loudou.listing import day_start

WIN_RATE_DEFINITION = "won / (won + lost); disqualified deals are left out"
VELOCITY_DEFINITION = ("open deals at the start x win rate x average won amount / median cycle days "
                       "(money per day)")


# --- time buckets (shared with winloss) -------------------------------------------------

def as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


@dataclass(frozen=True)
class Bucket:
    key: str          # 2025-01, 2025-Q1, 2025-W02 (ISO week)
    start: dt.date    # first day of the bucket inside the period
    end: dt.date      # last day of the bucket inside the period (included)
    full: bool        # the whole bucket lies inside the period


def _bucket_of(day: dt.date, interval: str) -> tuple[str, dt.date, dt.date]:
    """The key, first and last day of the calendar bucket holding ``day``."""
    if interval == "week":
        first = day - dt.timedelta(days=day.weekday())
        year, week, _weekday = first.isocalendar()
        return f"{year}-W{week:02d}", first, first + dt.timedelta(days=6)
    if interval == "quarter":
        quarter = (day.month - 1) // 3
        first = dt.date(day.year, quarter * 3 + 1, 1)
        key = f"{day.year}-Q{quarter + 1}"
    else:
        first = day.replace(day=1)
        key = f"{day.year}-{day.month:02d}"
    months = 3 if interval == "quarter" else 1
    month = first.month + months
    following = dt.date(first.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)
    return key, first, following - dt.timedelta(days=1)


def buckets(filters: ReportFilters) -> list[Bucket]:
    """The period cut into calendar weeks (Monday first), months or quarters, clipped to it."""
    out: list[Bucket] = []
    day = filters.date_from
    while day <= filters.date_to:
        key, first, last = _bucket_of(day, filters.interval)
        out.append(Bucket(key, max(first, filters.date_from), min(last, filters.date_to),
                          first >= filters.date_from and last <= filters.date_to))
        day = last + dt.timedelta(days=1)
    return out


def dated(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bucket rows for a table: ``start`` and ``end`` as dates (exports need dates, JSON strings)."""
    return [{**row, "start": as_date(row["start"]), "end": as_date(row["end"])} for row in rows]


def slope(points: Iterable[tuple[float, float]]) -> float | None:
    """Least-squares slope of y on x; None with fewer than two distinct x."""
    pts = list(points)
    if len(pts) < 2:
        return None
    mean_x = sum(x for x, _y in pts) / len(pts)
    mean_y = sum(y for _x, y in pts) / len(pts)
    sxx = sum((x - mean_x) ** 2 for x, _y in pts)
    if sxx == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in pts) / sxx


# --- the report -------------------------------------------------------------------------

@dataclass
class Tally:
    """Closed deals of one bucket, rep or team."""

    won: int = 0
    lost: int = 0
    disqualified: int = 0
    won_cents: int = 0
    won_with_amount: int = 0
    cycle_parts: list[np.ndarray] = field(default_factory=list)  # won deals' records
    _cycles: np.ndarray | None = None

    def add(self, cell: outcomes.Cell) -> None:
        if cell.status == DealStatus.won:
            self.won += cell.n
            self.won_cents += cell.cents
            self.won_with_amount += cell.with_amount
        elif cell.status == DealStatus.lost:
            self.lost += cell.n
        elif cell.status == DealStatus.disqualified:
            self.disqualified += cell.n

    @property
    def won_amount(self) -> Decimal:
        return Decimal(self.won_cents) / 100

    @property
    def cycles(self) -> np.ndarray:
        """The won deals' cycles."""
        if self._cycles is None:
            self._cycles = outcomes.join_records(self.cycle_parts)["cycle"]
        return self._cycles

    def average_won(self) -> float | None:
        return float(self.won_amount / self.won_with_amount) if self.won_with_amount else None

    def median_cycle_s(self) -> float | None:
        return outcomes.percentile(self.cycles, 0.5)

    def figures(self) -> dict[str, Any]:
        win = rate(self.won, self.won + self.lost)
        average = self.average_won()
        return {
            "won": self.won, "lost": self.lost, "disqualified": self.disqualified,
            "closed": self.won + self.lost + self.disqualified,
            "win_rate": win["rate"], "ci_low": win["ci_low"], "ci_high": win["ci_high"],
            "won_amount": float(self.won_amount),
            "avg_won_amount": round(average, 2) if average is not None else None,
            "median_cycle_days": days(self.median_cycle_s()),
        }

    def velocity(self, open_at_start: int) -> float | None:
        """open × win rate × average won amount ÷ median cycle days (money per day)."""
        closed = self.won + self.lost
        average, median = self.average_won(), self.median_cycle_s()
        if not closed or average is None or not median:
            return None
        return round(open_at_start * (self.won / closed) * average / (median / DAY_S), 2)


def bucket_parts(cells: list[outcomes.Cell], filters: ReportFilters) -> list[tuple[int, outcomes.Cell]]:
    """The cells' deals by bucket (index into :func:`buckets`): whole cells when the buckets
    are months or quarters; by status and the day each deal closed (the records) when they
    are weeks."""
    bucket_list = buckets(filters)
    starts = np.array([b.start.toordinal() for b in bucket_list], dtype=np.int64)
    if filters.interval != "week":
        at = np.searchsorted(starts, [max(c.month, filters.date_from).toordinal() for c in cells], side="right") - 1
        return [(int(i), c) for i, c in zip(at, cells, strict=True)]
    out = []
    for status in sorted({c.status for c in cells}):
        mine = [c for c in cells if c.status == status and c.records is not None and len(c.records)]
        if not mine:
            continue
        records = outcomes.join_records([c.records for c in mine])  # type: ignore[misc]
        month_days = np.repeat(np.array([c.month.toordinal() - 1 for c in mine], dtype=np.int64),
                               [len(c.records) for c in mine])  # type: ignore[arg-type]
        at = np.searchsorted(starts, month_days + records["day"], side="right") - 1
        order = np.argsort(at, kind="stable")
        at, records = at[order], records[order]
        bounds = np.flatnonzero(np.diff(at)) + 1
        for part_at, part in zip(np.split(at, bounds), np.split(records, bounds), strict=True):
            n, cents, with_amount, activities = outcomes.summary(part)
            out.append((int(part_at[0]), outcomes.Cell(dt.date.min, None, None, None, status, n, cents, with_amount,
                                                       activities, part)))
    return out


def win_rate(session: Session, viewer: User, filters: ReportFilters) -> dict[str, Any]:
    check_pipeline(session, filters)
    won = DealStatus.won.value
    if filters.interval == "week":
        # Every closed deal's record: the day it closed places it in its week.
        counted = outcomes.closed_records(session, viewer, filters, outcomes.CLOSED)
        with_cycles = [c for c in counted if c.status == won]
    else:
        # The won deals' cells with their records (the cycles, for the medians); the lost and
        # disqualified ones counted by month, team and owner.
        with_cycles = outcomes.closed_records(session, viewer, filters, (won,))
        counted = with_cycles + outcomes.closed_sums(session, viewer, filters, (DealStatus.lost.value,
                                                                                DealStatus.disqualified.value),
                                                     ("month", "team_id", "owner_id"))
    bucket_list = buckets(filters)
    created_in = outcomes.created_counts(session, viewer, filters, [
        (day_start(b.start), day_start(b.end + dt.timedelta(days=1))) for b in bucket_list])
    open_at_start = outcomes.open_at_start(session, viewer, filters)

    tallies = [Tally() for _b in bucket_list]
    total = Tally()
    closed_in = [0] * len(bucket_list)
    reps: dict[int | None, Tally] = defaultdict(Tally)
    teams: dict[int | None, Tally] = defaultdict(Tally)
    for cell in counted:
        for tally in (total, reps[cell.owner_id], teams[cell.team_id]):
            tally.add(cell)
    for i, part in bucket_parts(counted, filters):
        tallies[i].add(part)
        closed_in[i] += part.n
    for cell in with_cycles:
        for tally in (total, reps[cell.owner_id], teams[cell.team_id]):
            tally.cycle_parts.append(cell.records)  # type: ignore[arg-type]
    for i, part in bucket_parts(with_cycles, filters):
        tallies[i].cycle_parts.append(part.records)  # type: ignore[arg-type]

    bucket_rows = []
    open_now = open_at_start
    for bucket, tally, created, closed in zip(bucket_list, tallies, created_in, closed_in, strict=True):
        bucket_rows.append({"bucket": bucket.key, "start": bucket.start.isoformat(), "end": bucket.end.isoformat(),
                            "full": bucket.full, **tally.figures(), "open_at_start": open_now,
                            "velocity": tally.velocity(open_now)})
        open_now += created - closed

    names = user_names(session, reps)
    rep_rows = sorted(
        ({"owner_id": key, "name": names.get(key, NO_NAME) if key is not None else NO_NAME, **t.figures()}
         for key, t in reps.items()),
        key=lambda r: (-r["won"], -r["closed"], r["name"]))
    team_label = team_names(session, teams)
    team_rows = sorted(
        ({"team_id": key, "name": team_label.get(key, NO_NAME) if key is not None else NO_NAME, **t.figures()}
         for key, t in teams.items()),
        key=lambda r: (-r["won"], -r["closed"], r["name"]))

    return {
        "report": "winrate",
        "period": filters.period(),
        "pipeline_id": filters.pipeline_id,
        "interval": filters.interval,
        "win_rate_definition": WIN_RATE_DEFINITION,
        "velocity_definition": VELOCITY_DEFINITION,
        "totals": {**total.figures(), "open_at_start": open_at_start, "velocity": total.velocity(open_at_start)},
        "buckets": bucket_rows,
        "trend": _trend(bucket_rows),
        "by_rep": rep_rows,
        "by_team": team_rows,
    }


def _trend(rows: list[dict[str, Any]]) -> dict[str, Any]:
    points = [(float(i), r["win_rate"]) for i, r in enumerate(rows) if r["win_rate"] is not None]
    full = [r for r in rows if r["full"]]
    out: dict[str, Any] = {
        "last_bucket": None, "previous_bucket": None, "win_rate_last": None, "win_rate_previous": None,
        "win_rate_change": None, "p_value": None, "won_change": None, "won_amount_change": None,
        "won_amount_change_pct": None, "avg_won_amount_change": None,
        "win_rate_slope": slope(points), "slope_buckets": len(points),
    }
    if len(full) < 2:
        return out
    last, previous = full[-1], full[-2]
    out.update({"last_bucket": last["bucket"], "previous_bucket": previous["bucket"],
                "win_rate_last": last["win_rate"], "win_rate_previous": previous["win_rate"],
                "won_change": last["won"] - previous["won"],
                "won_amount_change": round(last["won_amount"] - previous["won_amount"], 2)})
    if previous["won_amount"]:
        out["won_amount_change_pct"] = (last["won_amount"] - previous["won_amount"]) / previous["won_amount"]
    if last["avg_won_amount"] is not None and previous["avg_won_amount"] is not None:
        out["avg_won_amount_change"] = round(last["avg_won_amount"] - previous["avg_won_amount"], 2)
    if last["win_rate"] is not None and previous["win_rate"] is not None:
        out["win_rate_change"] = last["win_rate"] - previous["win_rate"]
        test = two_proportion_test(last["won"], last["won"] + last["lost"],
                                   previous["won"], previous["won"] + previous["lost"])
        out["p_value"] = test.p_value if test is not None else None
    return out


# --- the report as a registry entry (CLI, API, pages) ----------------------------------

def _figure_columns() -> list[Col]:
    return [
        Col("won", _("Won"), "int"), Col("lost", _("Lost"), "int"), Col("disqualified", _("Disqualified"), "int"),
        Col("win_rate", _("Win rate"), "pct"), Col("ci_low", _("95% low"), "pct"),
        Col("ci_high", _("95% high"), "pct"), Col("won_amount", _("Won amount"), "money"),
        Col("avg_won_amount", _("Average won deal"), "money"),
        Col("median_cycle_days", _("Median cycle (days)"), "days"),
    ]


def _tables(result: dict[str, Any], filters: ReportFilters) -> list[Table]:
    period = closed_range(filters)

    def bucket_drill(row: dict[str, Any]) -> dict[str, Any]:
        return drill_params(filters, cohort=False, closed_from=str(row["start"]), closed_to=str(row["end"]))

    def group_drill(key: str) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
        def drill(row: dict[str, Any]) -> dict[str, Any] | None:
            if row[key] is None:
                return None
            return drill_params(filters, cohort=False, **period, **{key: row[key]})
        return drill

    velocity_cols = [Col("open_at_start", _("Open at start"), "int"),
                     Col("velocity", _("Pipeline velocity (per day)"), "money")]
    trend = result["trend"]
    return [
        Table("buckets", _("Win rate by period"), [
            Col("bucket", _("Period")), Col("start", _("From"), "date"), Col("end", _("To"), "date"),
            *_figure_columns(), *velocity_cols,
        ], dated(result["buckets"]), bucket_drill),
        Table("totals", _("Whole period"), [*_figure_columns(), *velocity_cols], [result["totals"]],
              lambda _row: drill_params(filters, cohort=False, **period)),
        Table("trend", _("Trend"), [
            Col("last_bucket", _("Last full period")), Col("previous_bucket", _("Previous period")),
            Col("win_rate_last", _("Win rate, last"), "pct"),
            Col("win_rate_previous", _("Win rate, previous"), "pct"),
            Col("win_rate_change", _("Change in win rate"), "pct"), Col("p_value", _("p-value"), "pvalue"),
            Col("won_amount_change", _("Change in won amount"), "money"),
            Col("won_amount_change_pct", _("Change in won amount (%)"), "pct"),
            Col("win_rate_slope", _("Win-rate slope per period"), "pct"),
        ], [trend], note=_("Compares the last two periods that lie wholly inside the chosen dates; "
                           "the slope is the least-squares fit of the win rate over all periods.")),
        Table("reps", _("Win rate by rep"), [Col("name", _("Rep")), *_figure_columns()], result["by_rep"],
              group_drill("owner_id")),
        Table("teams", _("Win rate by team"), [Col("name", _("Team")), *_figure_columns()], result["by_team"],
              group_drill("team_id")),
    ]


WINRATE = register(ReportSpec(
    name="winrate",
    title=_("Win rate and velocity"),
    summary=_("Of the deals closed in the period, by week, month or quarter: win rate with its 95% "
              "interval, average won deal, won amount, median cycle and pipeline velocity, the trend, "
              "and the same for each rep and team."),
    compute=win_rate,
    tables=_tables,
    charts=(Chart("line", "buckets", "bucket", ("win_rate",), _("Win rate by period")),
            Chart("bar", "buckets", "bucket", ("won_amount",), _("Won amount by period")),
            Chart("hbar", "reps", "name", ("win_rate",), _("Win rate by rep"))),
    period_meaning=_("Deals closed in the period"),
))
