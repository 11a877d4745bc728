"""Every SELECT over deals and their history, narrowed by auth.policy."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.auth import policy
from loudou.auth.models import User
from loudou.deal.models import Deal, StageTransition
from loudou.deal.schemas import DealFilters

SORTABLE = ("id", "created_at", "updated_at", "amount", "expected_close_date", "closed_at", "title",
            "stage_entered_at", "last_activity_at")


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def select_visible_deals(viewer: User, filters: DealFilters | None = None) -> sa.Select[Any]:
    stmt = policy.scope(sa.select(Deal), viewer, Deal)
    if filters is None:
        return stmt
    f = filters
    for field in ("pipeline_id", "stage_id", "status", "owner_id", "team_id", "channel_id", "company_id",
                  "contact_id"):
        value = getattr(f, field)
        if value is not None:
            stmt = stmt.where(getattr(Deal, field) == value)
    if f.created_from:
        stmt = stmt.where(Deal.created_at >= _day_start(f.created_from))
    if f.created_to:
        stmt = stmt.where(Deal.created_at < _day_start(f.created_to + dt.timedelta(days=1)))
    if f.closed_from:
        stmt = stmt.where(Deal.closed_at >= _day_start(f.closed_from))
    if f.closed_to:
        stmt = stmt.where(Deal.closed_at < _day_start(f.closed_to + dt.timedelta(days=1)))
    if f.amount_min is not None:
        stmt = stmt.where(Deal.amount >= f.amount_min)
    if f.amount_max is not None:
        stmt = stmt.where(Deal.amount <= f.amount_max)
    if f.q:
        stmt = stmt.where(Deal.title.ilike(f"%{_escape_like(f.q)}%", escape="\\"))
    return stmt


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def get_visible_deal(session: Session, viewer: User, deal_id: int) -> Deal | None:
    deal = session.get(Deal, deal_id)
    if deal is None or not policy.can_see(viewer, deal):
        return None
    return deal


def list_transitions(session: Session, deal_id: int) -> list[StageTransition]:
    stmt = sa.select(StageTransition).where(StageTransition.deal_id == deal_id).order_by(StageTransition.id)
    return list(session.scalars(stmt))
