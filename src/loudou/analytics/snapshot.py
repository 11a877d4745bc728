"""Snapshot funnel (PRODUCT C2): the open deals in each stage now, by count and amount,
and the amount weighted by the stage's win probability. The period does not narrow it
(it is "now"); the other filters and the access policy do."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.analytics import counters_value
from loudou.analytics.filters import ReportFilters, deal_conditions
from loudou.analytics.funnel import resolve_pipeline
from loudou.analytics.reports import Chart, Col, ReportSpec, Table, drill_params, register
from loudou.analytics.reports import msg as _
from loudou.auth.models import User
from loudou.db import utcnow
from loudou.deal.models import DealStatus
from loudou.pipeline import queries as pipeline_queries

BOARD_INDEX = "ix_deals_open_board"

DAY_S = 86_400


def snapshot_funnel(session: Session, viewer: User, filters: ReportFilters, now: dt.datetime | None = None
                    ) -> dict[str, Any]:
    pipeline = resolve_pipeline(session, filters.pipeline_id)
    stages = pipeline_queries.list_stages(session, pipeline.id)
    now = now or utcnow()
    # The board's partial index of open deals (stage, status, entered, amount, owner, team,
    # channel) answers on its own; it is named because with sampled statistics SQLite
    # preferred an index that does not cover the query (10x slower at 1M deals). The stages
    # imply the pipeline, and the status is written into the SQL so the partial index applies.
    board = counters_value.via(BOARD_INDEX)
    stmt = (
        sa.select(board.c.stage_id, sa.func.count(), sa.func.coalesce(sa.func.sum(board.c.amount), 0),
                  sa.func.min(board.c.stage_entered_at))
        .where(board.c.stage_id.in_([stage.id for stage in stages]),
               counters_value.status_in(board.c.status, DealStatus.open),
               *board.adapt(deal_conditions(viewer, filters, None)))
        .group_by(board.c.stage_id)
    )
    found = {int(stage_id): (int(n), float(amount or 0), oldest)
             for stage_id, n, amount, oldest in session.execute(stmt)}
    rows: list[dict[str, Any]] = []
    for stage in stages:
        n, amount, oldest = found.get(stage.id, (0, 0.0, None))
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=dt.UTC)
        rows.append({
            "stage_id": stage.id, "position": stage.position, "name": stage.name, "name_en": stage.name_en,
            "open": n, "amount": round(amount, 2), "probability": stage.probability / 100,
            "weighted_amount": round(amount * stage.probability / 100, 2),
            "oldest_days": round((now - oldest).total_seconds() / DAY_S, 1) if oldest else None,
        })
    return {
        "report": "snapshot",
        "as_of": now.isoformat(),
        "pipeline_id": pipeline.id,
        "stages": rows,
        "open": sum(r["open"] for r in rows),
        "amount": round(sum(r["amount"] for r in rows), 2),
        "weighted_amount": round(sum(r["weighted_amount"] for r in rows), 2),
    }


def _tables(result: dict[str, Any], filters: ReportFilters) -> list[Table]:
    def drill(row: dict[str, Any]) -> dict[str, Any]:
        return drill_params(filters, cohort=False, pipeline_id=result["pipeline_id"], stage_id=row["stage_id"],
                            status="open")

    return [Table("stages", _("Open deals by stage now"), [
        Col("name", _("Stage")), Col("open", _("Open deals"), "int"), Col("amount", _("Amount"), "money"),
        Col("probability", _("Win probability"), "pct"), Col("weighted_amount", _("Weighted amount"), "money"),
        Col("oldest_days", _("Oldest (days in stage)"), "days"),
    ], result["stages"], drill)]


SNAPSHOT = register(ReportSpec(
    name="snapshot",
    title=_("Pipeline snapshot"),
    summary=_("Open deals in each stage now, by count and amount, and the amount weighted by "
              "each stage's win probability."),
    compute=snapshot_funnel,
    tables=_tables,
    charts=(Chart("funnel", "stages", "name", ("open",), _("Open deals by stage now")),
            Chart("bar", "stages", "name", ("amount", "weighted_amount"), _("Amount and weighted amount"))),
    period_meaning=_("Open deals now; the period is not used"),
))
