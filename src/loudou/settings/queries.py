"""Reads of the settings pages that no domain's queries module has: usage counts that
tell an admin what a change will touch, the spend grid, and every API token.

Settings are admin-only pages (``web.pages.AdminPage``) and an admin sees everything
(``auth.policy``), so these counts are not narrowed further."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.auth.models import ApiToken, Role, Team, User
from loudou.channel.models import Channel, ChannelSpend
from loudou.deal.models import Deal, DealStatus
from loudou.pipeline.models import LostReason, Pipeline, Stage


def open_deals_by_stage(session: Session, stage_ids: Sequence[int]) -> dict[int, int]:
    """Open deals per stage, counted on ``ix_deals_stage_status_id`` alone (no table rows)."""
    if not stage_ids:
        return {}
    stmt = (sa.select(Deal.stage_id, sa.func.count())
            .where(Deal.stage_id.in_(list(stage_ids)), Deal.status == DealStatus.open)
            .group_by(Deal.stage_id))
    return {stage_id: int(n) for stage_id, n in session.execute(stmt)}


@dataclass(frozen=True)
class PipelineSummary:
    pipeline: Pipeline
    stages: int
    open_deals: int


def pipeline_summaries(session: Session) -> list[PipelineSummary]:
    pipelines = list(session.scalars(sa.select(Pipeline).order_by(Pipeline.is_default.desc(), Pipeline.id)))
    stages = session.execute(sa.select(Stage.id, Stage.pipeline_id).where(Stage.is_active.is_(True))).all()
    open_by_stage = open_deals_by_stage(session, [s.id for s in stages])
    n_stages: dict[int, int] = {}
    n_open: dict[int, int] = {}
    for stage_id, pipeline_id in stages:
        n_stages[pipeline_id] = n_stages.get(pipeline_id, 0) + 1
        n_open[pipeline_id] = n_open.get(pipeline_id, 0) + open_by_stage.get(stage_id, 0)
    return [PipelineSummary(p, n_stages.get(p.id, 0), n_open.get(p.id, 0)) for p in pipelines]


def retired_stages(session: Session, pipeline_id: int) -> list[Stage]:
    stmt = sa.select(Stage).where(Stage.pipeline_id == pipeline_id, Stage.is_active.is_(False)).order_by(Stage.id)
    return list(session.scalars(stmt))


def all_lost_reasons(session: Session) -> list[LostReason]:
    """Active and retired ones: the settings page brings retired reasons back."""
    return list(session.scalars(sa.select(LostReason).order_by(LostReason.kind, LostReason.id)))


def all_channels(session: Session) -> list[Channel]:
    return list(session.scalars(sa.select(Channel).order_by(Channel.is_active.desc(), Channel.id)))


def spend_grid(session: Session, first_month: dt.date) -> dict[tuple[int, dt.date], tuple[Decimal, str]]:
    """(channel, month) → (amount, currency) from ``first_month`` on."""
    stmt = sa.select(ChannelSpend.channel_id, ChannelSpend.month, ChannelSpend.amount, ChannelSpend.currency).where(
        ChannelSpend.month >= first_month)
    return {(cid, month): (amount, currency) for cid, month, amount, currency in session.execute(stmt)}


def all_users(session: Session) -> list[User]:
    """Active people first, grouped by team (admins without one on top), managers before reps."""
    teams = {team_id: name for team_id, name in session.execute(sa.select(Team.id, Team.name))}
    order = {Role.admin: 0, Role.manager: 1, Role.rep: 2}
    users = list(session.scalars(sa.select(User)))
    return sorted(users, key=lambda u: (not u.is_active, teams.get(u.team_id, "") if u.team_id else "",
                                        order[u.role], u.name, u.id))


@dataclass(frozen=True)
class TeamSummary:
    team: Team
    members: int


def team_summaries(session: Session) -> list[TeamSummary]:
    counts = {team_id: n for team_id, n in session.execute(
        sa.select(User.team_id, sa.func.count()).where(User.is_active.is_(True), User.team_id.is_not(None))
        .group_by(User.team_id))}
    return [TeamSummary(t, int(counts.get(t.id, 0))) for t in session.scalars(sa.select(Team).order_by(Team.name))]


@dataclass(frozen=True)
class TokenRow:
    token: ApiToken
    user_name: str
    user_email: str


def all_tokens(session: Session, user_id: int | None = None) -> list[TokenRow]:
    """Tokens, live ones first, newest first; ``user_id`` narrows to one person's."""
    stmt = (sa.select(ApiToken, User.name, User.email).join(User, User.id == ApiToken.user_id)
            .order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc()))
    if user_id is not None:
        stmt = stmt.where(ApiToken.user_id == user_id)
    return [TokenRow(token, name, email) for token, name, email in session.execute(stmt)]


def active_admins(session: Session) -> list[int]:
    stmt = sa.select(User.id).where(User.role == Role.admin, User.is_active.is_(True))
    return list(session.scalars(stmt))
