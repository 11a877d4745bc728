"""Every SELECT over deals and their history, narrowed by auth.policy."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.auth import policy
from loudou.auth.models import User
from loudou.deal.models import Deal, StageTransition
from loudou.deal.schemas import DealFilters
from loudou.listing import apply_filters

SORTABLE = ("id", "created_at", "updated_at", "amount", "expected_close_date", "closed_at", "title",
            "stage_entered_at", "last_activity_at")


def select_visible_deals(viewer: User, filters: DealFilters | None = None) -> sa.Select[Any]:
    stmt = policy.scope(sa.select(Deal), viewer, Deal)
    if filters is None:
        return stmt
    stmt = apply_filters(
        stmt, Deal, filters,
        ranges={"created_at": ("created_from", "created_to"), "closed_at": ("closed_from", "closed_to")},
        text_columns=("title",),
    )
    if filters.amount_min is not None:
        stmt = stmt.where(Deal.amount >= filters.amount_min)
    if filters.amount_max is not None:
        stmt = stmt.where(Deal.amount <= filters.amount_max)
    return stmt


def get_visible_deal(session: Session, viewer: User, deal_id: int) -> Deal | None:
    deal = session.get(Deal, deal_id)
    if deal is None or not policy.can_see(viewer, deal):
        return None
    return deal


def list_transitions(session: Session, deal_id: int) -> list[StageTransition]:
    stmt = sa.select(StageTransition).where(StageTransition.deal_id == deal_id).order_by(StageTransition.id)
    return list(session.scalars(stmt))
