from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.pipeline.models import LostReason, Pipeline, Stage


def get_pipeline(session: Session, pipeline_id: int) -> Pipeline | None:
    return session.get(Pipeline, pipeline_id)


def get_default_pipeline(session: Session) -> Pipeline | None:
    stmt = sa.select(Pipeline).order_by(Pipeline.is_default.desc(), Pipeline.id).limit(1)
    return session.scalars(stmt).first()


def list_pipelines(session: Session) -> list[Pipeline]:
    return list(session.scalars(sa.select(Pipeline).order_by(Pipeline.id)))


def list_stages(session: Session, pipeline_id: int, *, include_inactive: bool = False) -> list[Stage]:
    stmt = sa.select(Stage).where(Stage.pipeline_id == pipeline_id)
    if not include_inactive:
        stmt = stmt.where(Stage.is_active.is_(True))
    return list(session.scalars(stmt.order_by(Stage.position, Stage.id)))


def get_stage(session: Session, stage_id: int) -> Stage | None:
    return session.get(Stage, stage_id)


def get_lost_reason(session: Session, reason_id: int) -> LostReason | None:
    return session.get(LostReason, reason_id)


def find_lost_reason(session: Session, text: str, kind: str) -> LostReason | None:
    stmt = sa.select(LostReason).where(
        LostReason.kind == kind, sa.or_(LostReason.name == text, LostReason.name_en == text)
    )
    return session.scalars(stmt.limit(1)).first()


def list_lost_reasons(session: Session, kind: str | None = None) -> list[LostReason]:
    stmt = sa.select(LostReason).where(LostReason.is_active.is_(True))
    if kind:
        stmt = stmt.where(LostReason.kind == kind)
    return list(session.scalars(stmt.order_by(LostReason.id)))
