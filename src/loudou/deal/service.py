"""The funnel rules: how deals are created, edited and moved through stages.

Every change here
- checks the viewer may change the deal (auth.policy) and that the version they read is
  still current (optimistic locking: a stale version is a Conflict, never an overwrite);
- appends a StageTransition for every stage or status change (the history is the source
  of truth for analytics);
- keeps the deal's derived state current in the same transaction (stage_entered_at,
  reached_mask, the previous transition's duration_s), see ``_record_transition``;
- writes one audit_log row per changed field.
Services flush and never commit: the request or the CLI scope commits.

Every stage and status change takes effect now, unless the caller gives an effective time
``at`` (imports of history): the transition, created_at / closed_at / stage_entered_at and
the previous stay's duration then use that time. It must be timezone-aware, not in the
future and not before the deal's last transition (``effective_time``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou import records
from loudou.activity.models import Activity
from loudou.audit import service as audit
from loudou.auth.models import User
from loudou.channel.models import Channel
from loudou.company.models import Company
from loudou.contact.models import Contact
from loudou.db import utcnow
from loudou.deal.models import Deal, DealStatus, StageTransition, TransitionKind
from loudou.deal.schemas import DealClose, DealCreate, DealFields, DealMove, DealReopen, DealUpdate
from loudou.errors import Conflict, MissingForStage, ValidationFailed
from loudou.pipeline import queries as pipeline_queries
from loudou.pipeline.models import Pipeline, Stage
from loudou.pipeline.service import check_version
from loudou.product.models import Product
from loudou.search import service as search_service

#: Called inside the transaction after each transition is written, so other domains
#: (analytics counters) can keep their derived tables current. Signature:
#: hook(session, deal, transition, previous_entered_at).
TransitionHook = Callable[[Session, Deal, StageTransition, "dt.datetime | None"], None]
TRANSITION_HOOKS: list[TransitionHook] = []
#: Called inside the transaction before a deal and its history are deleted.
DELETE_HOOKS: list[Callable[[Session, Deal], None]] = []

#: Changes that alter what the global search holds for a deal (its title and who sees it).
SEARCHED_FIELDS = {"title", "owner_id", "team_id"}

AUDITED_FIELDS = [
    "title", "pipeline_id", "stage_id", "status", "owner_id", "team_id", "company_id", "contact_id",
    "channel_id", "product_id", "amount", "currency", "expected_close_date", "description",
]


def load_deal_for_change(session: Session, viewer: User, deal_id: int) -> Deal:
    return records.load_for_change(session, viewer, Deal, deal_id, "deal")


def _flush(session: Session, deal: Deal) -> None:
    records.flush_or_conflict(session, "deal", deal.id)


def _resolve_refs(session: Session, viewer: User, values: dict[str, Any]) -> None:
    """Referenced rows must exist and be visible to the viewer (no attaching to others' data)."""
    records.check_visible_ref(session, viewer, Company, values.get("company_id"), "company_id")
    records.check_visible_ref(session, viewer, Contact, values.get("contact_id"), "contact_id")
    records.check_visible_ref(session, viewer, Channel, values.get("channel_id"), "channel_id")
    records.check_visible_ref(session, viewer, Product, values.get("product_id"), "product_id")
    if values.get("owner_id") is not None:
        records.set_owner(session, viewer, values)


def effective_time(at: dt.datetime | None, *, not_before: dt.datetime | None = None) -> dt.datetime:
    """When a change takes effect: now, or ``at`` for an import of history.

    Rule: ``at`` is timezone-aware, not in the future, and not before ``not_before`` (the
    deal's last transition), so the history stays in order and every stay has a length."""
    now = utcnow()
    if at is None:
        return now
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValidationFailed("at must be a timezone-aware time", field="at")
    at = at.astimezone(dt.UTC)
    if at > now:
        raise ValidationFailed(f"at {at.isoformat()} is in the future", field="at")
    if not_before is not None and at < not_before:
        raise ValidationFailed(
            f"at {at.isoformat()} is before the deal's last change at {not_before.isoformat()}", field="at")
    return at


def _effective_audit(changes: dict[str, tuple[Any, Any]], at: dt.datetime | None, when: dt.datetime) -> None:
    """A change recorded with an explicit effective time says so in the audit log."""
    if at is not None:
        changes["effective_at"] = (None, when)


def _stage_of(session: Session, pipeline: Pipeline, stage_id: int, field: str = "stage_id") -> Stage:
    stage = pipeline_queries.get_stage(session, stage_id)
    if stage is None or stage.pipeline_id != pipeline.id or not stage.is_active:
        raise ValidationFailed(f"stage {stage_id} is not an open stage of pipeline {pipeline.id}", field=field)
    return stage


# Statements of the stage change built once (building a select costs more than running
# it; a stage change is the most frequent write).
_MOVE_TARGET = (sa.select(Stage, Pipeline).join(Pipeline, Pipeline.id == Stage.pipeline_id)
                .where(Stage.id == sa.bindparam("stage_id")))
_CLOSE_STAY = (sa.update(StageTransition)
               .where(StageTransition.deal_id == sa.bindparam("b_deal"), StageTransition.duration_s.is_(None))
               .values(duration_s=sa.bindparam("b_duration")))


def _move_target(session: Session, deal: Deal, stage_id: int) -> tuple[Pipeline, Stage]:
    """The deal's pipeline and the stage it moves to, read in one statement."""
    row = session.execute(_MOVE_TARGET, {"stage_id": stage_id}).first()
    if row is None or row.Pipeline.id != deal.pipeline_id or not row.Stage.is_active:
        raise ValidationFailed(f"stage {stage_id} is not an open stage of pipeline {deal.pipeline_id}",
                               field="stage_id")
    return row.Pipeline, row.Stage


def enforce_stage_entry(pipeline: Pipeline, stage: Stage, deal: Deal) -> None:
    """Rule: a deal enters a stage only with the stage's required fields set and its
    checklist confirmed, unless the pipeline is relaxed (D1 "flexible adjustment")."""
    if pipeline.is_relaxed:
        return
    missing_fields = [f for f in stage.required_fields if getattr(deal, f, None) in (None, "")]
    done = set((deal.checklist_done or {}).get(str(stage.id), []))
    missing_items = [item for item in stage.checklist if item not in done]
    if missing_fields or missing_items:
        raise MissingForStage(stage.name, missing_fields, missing_items)


def _confirm_checklist(deal: Deal, stage: Stage, items: list[str]) -> None:
    if not items:
        return
    unknown = [i for i in items if i not in stage.checklist]
    if unknown:
        raise ValidationFailed(f"not on the checklist of stage {stage.name}: {unknown}", field="checklist")
    done = dict(deal.checklist_done or {})
    done[str(stage.id)] = sorted(set(done.get(str(stage.id), [])) | set(items))
    deal.checklist_done = done  # reassign so the JSON column is seen as changed


def _record_transition(
    session: Session,
    deal: Deal,
    *,
    kind: TransitionKind,
    to_stage: Stage,
    to_status: DealStatus,
    by: User | None,
    at: dt.datetime,
    from_stage_id: int | None,
    from_status: DealStatus | None,
) -> StageTransition:
    """Append the history row and keep the deal's derived state current."""
    previous_entered_at = deal.stage_entered_at if from_status is not None else None
    if previous_entered_at is not None:
        # The time the deal spent in its previous state, stored once on that row.
        with session.no_autoflush:  # one UPDATE of the deal per change, at the final flush
            session.execute(_CLOSE_STAY, {"b_deal": deal.id,
                                          "b_duration": max(0, int((at - previous_entered_at).total_seconds()))})
    transition = StageTransition(
        deal_id=deal.id, pipeline_id=deal.pipeline_id, kind=kind,
        from_stage_id=from_stage_id, to_stage_id=to_stage.id,
        from_status=from_status, to_status=to_status, at=at, by_id=by.id if by else None,
    )
    session.add(transition)
    if deal.stage_entered_at != at:
        deal.stage_entered_at = at
    if to_status == DealStatus.open and not (deal.reached_mask or 0) & (1 << to_stage.bit):
        deal.reached_mask = (deal.reached_mask or 0) | (1 << to_stage.bit)
    for hook in TRANSITION_HOOKS:
        hook(session, deal, transition, previous_entered_at)
    return transition


def create_deal(session: Session, viewer: User, data: DealCreate, *, source: str = "api",
                at: dt.datetime | None = None) -> Deal:
    now = effective_time(at)
    values = data.model_dump(exclude={"pipeline_id", "stage_id", "checklist"}, exclude_none=True)
    values.setdefault("owner_id", viewer.id)
    _resolve_refs(session, viewer, values)
    pipeline = (
        pipeline_queries.get_pipeline(session, data.pipeline_id)
        if data.pipeline_id is not None
        else pipeline_queries.get_default_pipeline(session)
    )
    if pipeline is None:
        raise ValidationFailed(f"pipeline {data.pipeline_id} does not exist", field="pipeline_id")
    stages = pipeline_queries.list_stages(session, pipeline.id)
    if not stages:
        raise ValidationFailed(f"pipeline {pipeline.id} has no stages", field="pipeline_id")
    stage = _stage_of(session, pipeline, data.stage_id) if data.stage_id is not None else stages[0]
    deal = Deal(
        pipeline_id=pipeline.id, stage_id=stage.id, status=DealStatus.open, created_by_id=viewer.id,
        created_at=now, updated_at=now, stage_entered_at=now, reached_mask=1 << stage.bit, checklist_done={},
        activity_count=0, **values,
    )
    _confirm_checklist(deal, stage, data.checklist)
    enforce_stage_entry(pipeline, stage, deal)
    session.add(deal)
    session.flush()
    _record_transition(session, deal, kind=TransitionKind.create, to_stage=stage, to_status=DealStatus.open,
                       by=viewer, at=now, from_stage_id=None, from_status=None)
    created = audit.snapshot(deal, AUDITED_FIELDS)
    _effective_audit(created, at, now)
    audit.record(session, user_id=viewer.id, entity="deal", entity_id=deal.id, action="create",
                 changes=created, source=source)
    search_service.index_deal(session, deal)
    session.flush()
    return deal


def _apply_fields(session: Session, viewer: User, deal: Deal, fields: DealFields) -> dict[str, tuple[Any, Any]]:
    values = fields.model_dump(exclude_unset=True, exclude={"version"})
    if "title" in values and values["title"] is None:
        raise ValidationFailed("title cannot be empty", field="title")
    if "currency" in values and values["currency"] is None:
        raise ValidationFailed("currency cannot be empty", field="currency")
    _resolve_refs(session, viewer, values)
    if "owner_id" in values and values["owner_id"] is None:
        values["team_id"] = None
    return audit.apply_changes(deal, values)


def update_deal(session: Session, viewer: User, deal_id: int, data: DealUpdate, *, source: str = "api") -> Deal:
    deal = load_deal_for_change(session, viewer, deal_id)
    check_version(deal, data.version, "deal")
    changes = _apply_fields(session, viewer, deal, data)
    if changes:
        deal.updated_at = utcnow()
        audit.record(session, user_id=viewer.id, entity="deal", entity_id=deal.id, action="update",
                     changes=changes, source=source)
        if changes.keys() & SEARCHED_FIELDS:
            search_service.index_deal(session, deal)
        _flush(session, deal)
    return deal


def move_deal(session: Session, viewer: User, deal_id: int, data: DealMove, *, source: str = "api",
              at: dt.datetime | None = None) -> Deal:
    """Rule: an open deal may move to any open stage of its pipeline, forwards, backwards or
    skipping stages; entering the stage enforces its required fields and checklist."""
    deal = load_deal_for_change(session, viewer, deal_id)
    check_version(deal, data.version, "deal")
    if deal.status != DealStatus.open:
        raise Conflict(f"deal {deal.id} is {deal.status.value}; reopen it before moving it")
    now = effective_time(at, not_before=deal.stage_entered_at)
    pipeline, stage = _move_target(session, deal, data.stage_id)
    changes = _apply_fields(session, viewer, deal, data.fields) if data.fields else {}
    if stage.id == deal.stage_id:
        raise ValidationFailed(f"deal {deal.id} is already in stage {stage.name}", field="stage_id")
    _confirm_checklist(deal, stage, data.checklist)
    enforce_stage_entry(pipeline, stage, deal)
    from_stage_id = deal.stage_id
    changes["stage_id"] = (from_stage_id, stage.id)
    _effective_audit(changes, at, now)
    deal.stage_id = stage.id
    deal.updated_at = now
    _record_transition(session, deal, kind=TransitionKind.move, to_stage=stage, to_status=DealStatus.open,
                       by=viewer, at=now, from_stage_id=from_stage_id, from_status=DealStatus.open)
    audit.record(session, user_id=viewer.id, entity="deal", entity_id=deal.id, action="move",
                 changes=changes, source=source)
    _flush(session, deal)
    return deal


def _close(
    session: Session, viewer: User, deal_id: int, data: DealClose, status: DealStatus, kind: TransitionKind,
    source: str, at: dt.datetime | None,
) -> Deal:
    deal = load_deal_for_change(session, viewer, deal_id)
    check_version(deal, data.version, "deal")
    if deal.status != DealStatus.open:
        raise Conflict(f"deal {deal.id} is already {deal.status.value}")
    now = effective_time(at, not_before=deal.stage_entered_at)
    changes: dict[str, tuple[Any, Any]] = {}
    if status in (DealStatus.lost, DealStatus.disqualified):
        reason_kind = "lost" if status == DealStatus.lost else "disqualify"
        reason = None
        if data.lost_reason_id is not None:
            reason = pipeline_queries.get_lost_reason(session, data.lost_reason_id)
            if reason is None or reason.kind != reason_kind:
                raise ValidationFailed(f"lost_reason_id {data.lost_reason_id} is not a {reason_kind} reason",
                                       field="lost_reason_id")
        elif data.reason and data.reason.strip():
            reason = pipeline_queries.find_lost_reason(session, data.reason.strip(), reason_kind)
        else:
            raise ValidationFailed("a reason is required (lost_reason_id or reason)", field="lost_reason_id")
        note = data.note if data.note is not None else (None if reason else data.reason)
        changes |= audit.apply_changes(deal, {"lost_reason_id": reason.id if reason else None, "close_note": note})
    else:
        if data.amount is not None:
            changes |= audit.apply_changes(deal, {"amount": data.amount})
        if data.note is not None:
            changes |= audit.apply_changes(deal, {"close_note": data.note})
    stage = session.get(Stage, deal.stage_id)
    assert stage is not None
    changes["status"] = (deal.status, status)
    _effective_audit(changes, at, now)
    deal.status = status
    deal.closed_at = now
    deal.updated_at = now
    _record_transition(session, deal, kind=kind, to_stage=stage, to_status=status, by=viewer, at=now,
                       from_stage_id=stage.id, from_status=DealStatus.open)
    audit.record(session, user_id=viewer.id, entity="deal", entity_id=deal.id, action=kind.value,
                 changes=changes, source=source)
    _flush(session, deal)
    return deal


def win_deal(session: Session, viewer: User, deal_id: int, data: DealClose, *, source: str = "api",
             at: dt.datetime | None = None) -> Deal:
    return _close(session, viewer, deal_id, data, DealStatus.won, TransitionKind.win, source, at)


def lose_deal(session: Session, viewer: User, deal_id: int, data: DealClose, *, source: str = "api",
              at: dt.datetime | None = None) -> Deal:
    """Rule: a lost deal always carries a reason (PRODUCT.md C5 analyses them)."""
    return _close(session, viewer, deal_id, data, DealStatus.lost, TransitionKind.lose, source, at)


def disqualify_deal(session: Session, viewer: User, deal_id: int, data: DealClose, *,
                    source: str = "api", at: dt.datetime | None = None) -> Deal:
    """Rule: disqualified deals leave the active funnel but stay in history (B2)."""
    return _close(session, viewer, deal_id, data, DealStatus.disqualified, TransitionKind.disqualify, source, at)


def reopen_deal(session: Session, viewer: User, deal_id: int, data: DealReopen, *, source: str = "api",
                at: dt.datetime | None = None) -> Deal:
    """Rule: a closed deal reopens into the stage it closed at, or a chosen open stage."""
    deal = load_deal_for_change(session, viewer, deal_id)
    check_version(deal, data.version, "deal")
    if deal.status == DealStatus.open:
        raise Conflict(f"deal {deal.id} is already open")
    now = effective_time(at, not_before=deal.stage_entered_at)
    pipeline = session.get(Pipeline, deal.pipeline_id)
    assert pipeline is not None
    stage = _stage_of(session, pipeline, data.stage_id if data.stage_id is not None else deal.stage_id)
    from_stage_id, from_status = deal.stage_id, deal.status
    changes = audit.apply_changes(deal, {"status": DealStatus.open, "stage_id": stage.id, "closed_at": None,
                                         "lost_reason_id": None, "close_note": None})
    _effective_audit(changes, at, now)
    deal.updated_at = now
    _record_transition(session, deal, kind=TransitionKind.reopen, to_stage=stage, to_status=DealStatus.open,
                       by=viewer, at=now, from_stage_id=from_stage_id, from_status=from_status)
    audit.record(session, user_id=viewer.id, entity="deal", entity_id=deal.id, action="reopen",
                 changes=changes, source=source)
    _flush(session, deal)
    return deal


def delete_deal(session: Session, viewer: User, deal_id: int, version: int, *, source: str = "api") -> None:
    deal = load_deal_for_change(session, viewer, deal_id)
    check_version(deal, version, "deal")
    audit.record(session, user_id=viewer.id, entity="deal", entity_id=deal.id, action="delete",
                 changes={f: (getattr(deal, f), None) for f in AUDITED_FIELDS if getattr(deal, f) is not None},
                 source=source)
    search_service.remove_deal(session, deal.id)
    for hook in DELETE_HOOKS:
        hook(session, deal)
    session.execute(sa.delete(Activity).where(Activity.deal_id == deal.id))
    session.execute(sa.delete(StageTransition).where(StageTransition.deal_id == deal.id))
    session.delete(deal)
    _flush(session, deal)


def touch_activity(session: Session, deal_id: int, occurred_at: dt.datetime) -> None:
    """Keep last_activity_at and activity_count current when an activity is logged.

    A plain UPDATE, not an ORM change: logging a call must not bump the deal's version
    and make the rep's open edit form stale."""
    session.execute(
        sa.update(Deal)
        .where(Deal.id == deal_id)
        .values(
            activity_count=Deal.activity_count + 1,
            last_activity_at=sa.case(
                (sa.or_(Deal.last_activity_at.is_(None), Deal.last_activity_at < occurred_at), occurred_at),
                else_=Deal.last_activity_at,
            ),
        )
        .execution_options(synchronize_session=False)
    )
