"""Pipelines and their stages: ordered, each with its rules (PRODUCT.md A1, A2, D1)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.audit import service as audit
from loudou.auth import policy
from loudou.auth.models import User
from loudou.channel.models import Channel
from loudou.deal.models import Deal, DealStatus
from loudou.errors import Conflict, NotFound, ValidationFailed
from loudou.pipeline import defaults
from loudou.pipeline import queries as pipeline_queries
from loudou.pipeline.models import LostReason, Pipeline, Stage
from loudou.pipeline.schemas import PipelineCreate, PipelineUpdate, StageCreate, StageUpdate

#: Deal.reached_mask is a signed 64-bit integer; bit 63 stays unused.
MAX_STAGES = 63


def check_version(obj: Any, version: int, what: str) -> None:
    if obj.version != version:
        raise Conflict(
            f"{what} {obj.id} was changed by someone else (you read version {version}, "
            f"it is now {obj.version}); reload and try again",
            current_version=obj.version,
        )


def create_pipeline(session: Session, viewer: User | None, data: PipelineCreate) -> Pipeline:
    if viewer is not None:
        policy.ensure_admin(viewer)
    if data.is_default:
        session.execute(sa.update(Pipeline).values(is_default=False))
    pipeline = Pipeline(name=data.name, name_en=data.name_en, is_relaxed=data.is_relaxed,
                        is_default=data.is_default)
    session.add(pipeline)
    session.flush()
    for i, stage in enumerate(data.stages):
        _insert_stage(session, pipeline, stage, position=i, bit=i)
    audit.record(session, user_id=viewer.id if viewer else None, entity="pipeline", entity_id=pipeline.id,
                 action="create", changes=audit.snapshot(pipeline, ["name", "name_en", "is_relaxed"]))
    session.flush()
    return pipeline


def _insert_stage(session: Session, pipeline: Pipeline, data: StageCreate, *, position: int, bit: int) -> Stage:
    stage = Stage(
        pipeline_id=pipeline.id, position=position, bit=bit,
        **data.model_dump(exclude={"position"}),
    )
    session.add(stage)
    return stage


def update_pipeline(session: Session, viewer: User, pipeline_id: int, data: PipelineUpdate) -> Pipeline:
    policy.ensure_admin(viewer)
    pipeline = pipeline_queries.get_pipeline(session, pipeline_id)
    if pipeline is None:
        raise NotFound(f"pipeline {pipeline_id} not found")
    check_version(pipeline, data.version, "pipeline")
    values = data.model_dump(exclude_unset=True, exclude={"version"})
    if values.get("is_default"):
        session.execute(sa.update(Pipeline).where(Pipeline.id != pipeline.id).values(is_default=False))
    changes = audit.apply_changes(pipeline, values)
    audit.record(session, user_id=viewer.id, entity="pipeline", entity_id=pipeline.id, action="update",
                 changes=changes)
    session.flush()
    return pipeline


def add_stage(session: Session, viewer: User, pipeline_id: int, data: StageCreate) -> Stage:
    policy.ensure_admin(viewer)
    pipeline = pipeline_queries.get_pipeline(session, pipeline_id)
    if pipeline is None:
        raise NotFound(f"pipeline {pipeline_id} not found")
    stages = pipeline_queries.list_stages(session, pipeline_id, include_inactive=True)
    used_bits = {s.bit for s in stages}
    free = [b for b in range(MAX_STAGES) if b not in used_bits]
    if not free:
        raise ValidationFailed(f"a pipeline holds at most {MAX_STAGES} stages", field="stages")
    active = [s for s in stages if s.is_active]
    position = len(active) if data.position is None else min(data.position, len(active))
    for s in active:
        if s.position >= position:
            s.position += 1
    stage = _insert_stage(session, pipeline, data, position=position, bit=free[0])
    session.flush()
    audit.record(session, user_id=viewer.id, entity="stage", entity_id=stage.id, action="create",
                 changes=audit.snapshot(stage, ["name", "name_en", "position", "probability"]))
    return stage


def update_stage(session: Session, viewer: User, stage_id: int, data: StageUpdate) -> Stage:
    policy.ensure_admin(viewer)
    stage = pipeline_queries.get_stage(session, stage_id)
    if stage is None:
        raise NotFound(f"stage {stage_id} not found")
    check_version(stage, data.version, "stage")
    values = data.model_dump(exclude_unset=True, exclude={"version", "position"})
    changes = audit.apply_changes(stage, values)
    if data.position is not None and data.position != stage.position:
        order = [s for s in pipeline_queries.list_stages(session, stage.pipeline_id) if s.id != stage.id]
        order.insert(min(data.position, len(order)), stage)
        changes["position"] = (stage.position, data.position)
        _renumber(order)
    audit.record(session, user_id=viewer.id, entity="stage", entity_id=stage.id, action="update",
                 changes=changes)
    session.flush()
    return stage


def reorder_stages(session: Session, viewer: User, pipeline_id: int, stage_ids: list[int]) -> list[Stage]:
    policy.ensure_admin(viewer)
    stages = pipeline_queries.list_stages(session, pipeline_id)
    by_id = {s.id: s for s in stages}
    if sorted(stage_ids) != sorted(by_id):
        raise ValidationFailed("stage_ids must list every active stage of the pipeline once", field="stage_ids")
    ordered = [by_id[i] for i in stage_ids]
    _renumber(ordered)
    audit.record(session, user_id=viewer.id, entity="pipeline", entity_id=pipeline_id, action="reorder",
                 changes={"stage_order": ([s.id for s in stages], stage_ids)})
    session.flush()
    return ordered


def _renumber(stages: list[Stage]) -> None:
    for i, s in enumerate(stages):
        if s.position != i:
            s.position = i


def deactivate_stage(session: Session, viewer: User, stage_id: int) -> None:
    """A stage with open deals cannot go: move them first (the history keeps the stage)."""
    policy.ensure_admin(viewer)
    stage = pipeline_queries.get_stage(session, stage_id)
    if stage is None or not stage.is_active:
        raise NotFound(f"stage {stage_id} not found")
    open_deals = session.scalar(
        sa.select(sa.func.count()).select_from(Deal)
        .where(Deal.stage_id == stage_id, Deal.status == DealStatus.open)
    )
    if open_deals:
        raise Conflict(f"stage {stage.name} still holds {open_deals} open deal(s); move them first")
    stage.is_active = False
    _renumber(pipeline_queries.list_stages(session, stage.pipeline_id))
    audit.record(session, user_id=viewer.id, entity="stage", entity_id=stage.id, action="deactivate")
    session.flush()


def ensure_reference_data(session: Session) -> Pipeline:
    """Create the default pipeline, lost reasons and channels once (idempotent)."""
    pipeline = pipeline_queries.get_default_pipeline(session)
    if pipeline is None:
        pipeline = create_pipeline(
            session, None,
            PipelineCreate(**defaults.DEFAULT_PIPELINE, is_default=True,
                           stages=[StageCreate(**s) for s in defaults.DEFAULT_STAGES]),
        )
    if session.scalar(sa.select(sa.func.count()).select_from(LostReason)) == 0:
        session.add_all(LostReason(name=n, name_en=e, kind=k) for n, e, k in defaults.LOST_REASONS)
    if session.scalar(sa.select(sa.func.count()).select_from(Channel)) == 0:
        session.add_all(Channel(name=n, name_en=e, kind=k) for n, e, k in defaults.CHANNELS)
    session.flush()
    return pipeline


# --------------------------------------------------------------------------- lost reasons

#: "lost" reasons close a deal as lost; "disqualify" reasons take an invalid lead out of the funnel.
LOST_REASON_KINDS = ("lost", "disqualify")
_REASON_NAME_MAX = 120


def _reason_names(name: str, name_en: str | None) -> tuple[str, str | None]:
    name, english = name.strip(), (name_en or "").strip() or None
    if not name:
        raise ValidationFailed("a reason needs a name", field="name")
    if len(name) > _REASON_NAME_MAX:
        raise ValidationFailed(f"name is longer than {_REASON_NAME_MAX} characters", field="name")
    if english is not None and len(english) > _REASON_NAME_MAX:
        raise ValidationFailed(f"name_en is longer than {_REASON_NAME_MAX} characters", field="name_en")
    return name, english


def _unique_reason(session: Session, kind: str, name: str, name_en: str | None, exclude_id: int | None) -> None:
    """Rule: within a kind, no name (Chinese or English) is used twice, retired reasons included.
    Closing a deal may name its reason in either language (deal.service, the API's
    ``reason``), so an ambiguous name would pick one reason at random."""
    names = [n for n in (name, name_en) if n]
    stmt = sa.select(LostReason).where(
        LostReason.kind == kind, sa.or_(LostReason.name.in_(names), LostReason.name_en.in_(names)))
    for other in session.scalars(stmt):
        if other.id != exclude_id:
            field = "name" if name in (other.name, other.name_en) else "name_en"
            raise ValidationFailed(f"a {kind} reason named {other.name} already exists", field=field)


def create_lost_reason(session: Session, viewer: User, *, name: str, name_en: str | None = None,
                       kind: str = "lost", source: str = "api") -> LostReason:
    policy.ensure_admin(viewer)
    if kind not in LOST_REASON_KINDS:
        raise ValidationFailed(f"kind must be one of {list(LOST_REASON_KINDS)}", field="kind")
    name, name_en = _reason_names(name, name_en)
    _unique_reason(session, kind, name, name_en, None)
    reason = LostReason(name=name, name_en=name_en, kind=kind, is_active=True)
    session.add(reason)
    session.flush()
    audit.record(session, user_id=viewer.id, entity="lost_reason", entity_id=reason.id, action="create",
                 changes=audit.snapshot(reason, ["name", "name_en", "kind"]), source=source)
    return reason


def _active_reasons_of(session: Session, kind: str) -> int:
    stmt = sa.select(sa.func.count()).select_from(LostReason).where(
        LostReason.kind == kind, LostReason.is_active.is_(True))
    return int(session.scalar(stmt) or 0)


def update_lost_reason(session: Session, viewer: User, reason_id: int, *, name: str | None = None,
                       name_en: str | None = None, is_active: bool | None = None,
                       source: str = "api") -> LostReason:
    """Rename (``name`` given: both names are set, an empty ``name_en`` clears it) and/or
    retire or bring back a reason. Deals closed with it keep it: analytics need the history."""
    policy.ensure_admin(viewer)
    reason = pipeline_queries.get_lost_reason(session, reason_id)
    if reason is None:
        raise NotFound(f"lost reason {reason_id} not found")
    values: dict[str, Any] = {}
    if name is not None:
        values["name"], values["name_en"] = _reason_names(name, name_en)
        _unique_reason(session, reason.kind, values["name"], values["name_en"], reason.id)
    if is_active is not None:
        # Closing a deal as lost/disqualified needs a reason of that kind: keep one on offer.
        if not is_active and reason.is_active and _active_reasons_of(session, reason.kind) <= 1:
            raise Conflict(f"{reason.name} is the last active {reason.kind} reason; add another one first")
        values["is_active"] = is_active
    changes = audit.apply_changes(reason, values)
    if changes:
        action = "update" if "is_active" not in changes else ("activate" if is_active else "deactivate")
        audit.record(session, user_id=viewer.id, entity="lost_reason", entity_id=reason.id, action=action,
                     changes=changes, source=source)
        session.flush()
    return reason


def deactivate_lost_reason(session: Session, viewer: User, reason_id: int, *, source: str = "api") -> LostReason:
    """Retire a reason: no longer offered when closing deals, kept on the deals that carry it."""
    return update_lost_reason(session, viewer, reason_id, is_active=False, source=source)
