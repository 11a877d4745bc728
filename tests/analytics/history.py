"""Hand-built deal histories with known answers: write raw deals and transitions with
explicit times, then derive the rest with analytics.rebuild (as for an import)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.auth.models import User
from loudou.db import Database
from loudou.deal.models import Deal, DealStatus, StageTransition, TransitionKind
from loudou.pipeline.models import Stage

BASE = dt.datetime(2025, 1, 1, 9, 0, tzinfo=dt.UTC)


def day(n: float) -> dt.datetime:
    return BASE + dt.timedelta(days=n)


@dataclass
class Step:
    """Enter stage ``stage`` (index into the pipeline) or close/reopen on day ``at``."""

    at: float
    stage: int | None = None
    status: DealStatus = DealStatus.open


@dataclass
class History:
    created: float
    steps: list[Step] = field(default_factory=list)
    amount: Decimal = Decimal(1000)
    channel_id: int | None = None


def write(session: Session, owner: User, stages: list[Stage], history: History) -> Deal:
    first = stages[0]
    deal = Deal(title="h", pipeline_id=first.pipeline_id, stage_id=first.id, status=DealStatus.open,
                owner_id=owner.id, team_id=owner.team_id, amount=history.amount, currency="CNY",
                channel_id=history.channel_id, created_at=day(history.created), updated_at=day(history.created),
                stage_entered_at=day(history.created), reached_mask=0, checklist_done={}, activity_count=0)
    session.add(deal)
    session.flush()
    session.add(StageTransition(deal_id=deal.id, pipeline_id=deal.pipeline_id, kind=TransitionKind.create,
                                from_stage_id=None, to_stage_id=first.id, from_status=None,
                                to_status=DealStatus.open, at=day(history.created), by_id=owner.id))
    stage, status = first, DealStatus.open
    for step in history.steps:
        target = stages[step.stage] if step.stage is not None else stage
        kind = (TransitionKind.move if step.status == DealStatus.open and status == DealStatus.open
                else TransitionKind.reopen if step.status == DealStatus.open
                else {DealStatus.won: TransitionKind.win, DealStatus.lost: TransitionKind.lose,
                      DealStatus.disqualified: TransitionKind.disqualify}[step.status])
        session.add(StageTransition(deal_id=deal.id, pipeline_id=deal.pipeline_id, kind=kind,
                                    from_stage_id=stage.id, to_stage_id=target.id, from_status=status,
                                    to_status=step.status, at=day(step.at), by_id=owner.id))
        stage, status = target, step.status
    deal.stage_id, deal.status = stage.id, status
    deal.closed_at = day(history.steps[-1].at) if status != DealStatus.open and history.steps else None
    session.flush()
    return deal


def deal(session: Session, deal_id: int) -> Deal:
    """A deal that must exist (tests re-read deals between transactions)."""
    found = session.get(Deal, deal_id)
    assert found is not None
    return found


@contextmanager
def recorded_statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements SQLAlchemy sends while the block runs (statements run on the
    driver's cursor directly, such as the counter upserts, are not among them)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
