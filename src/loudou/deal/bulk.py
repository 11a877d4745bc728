"""Bulk edits of deals (PRODUCT D2 "bulk edit", B2 "bulk disqualify with a reason").

Rule, the same for every bulk action:
- the request itself is checked first (the owner is assignable by the viewer, the stage
  and the reason exist); a bad request changes nothing;
- then each deal goes through the same service call a single edit uses
  (``deal.service.update_deal`` / ``move_deal`` / ``disqualify_deal``), so the policy,
  the version check, the stage's required fields and the audit trail apply per row;
- each row runs in its own savepoint: a row that fails is rolled back alone and
  reported with why (not found, needs fields, conflict, invalid); the rows that
  succeeded are committed together by the request (one transaction), or not at all if
  that commit fails. Nothing is half-applied silently: the caller shows every row's
  outcome.

A deal the viewer may not see is "not found", exactly like a deal that does not exist
(RELIABILITY.md decision 2), and is never touched.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from loudou.auth import policy
from loudou.auth.models import User
from loudou.deal import queries as deal_queries
from loudou.deal import service as deal_service
from loudou.deal.models import Deal
from loudou.deal.schemas import DealClose, DealMove, DealUpdate
from loudou.errors import Conflict, LoudouError, MissingForStage, NotFound, ValidationFailed
from loudou.pipeline import queries as pipeline_queries

#: One request edits at most this many deals (a page of the list holds up to 500).
MAX_BULK = 500


class BulkAction(enum.StrEnum):
    reassign = "reassign"
    move = "move"
    disqualify = "disqualify"


class Outcome(enum.StrEnum):
    done = "done"
    needs_fields = "needs_fields"  # the target stage requires fields or checklist items
    conflict = "conflict"  # changed by someone else since it was listed, or already closed
    invalid = "invalid"  # e.g. the stage belongs to another pipeline, or it is already there
    not_found = "not_found"  # does not exist, or the viewer may not see it


@dataclass
class RowResult:
    deal_id: int
    outcome: Outcome
    title: str | None = None  # only for deals the viewer may see
    missing_fields: list[str] = field(default_factory=list)
    missing_checklist: list[str] = field(default_factory=list)


@dataclass
class BulkResult:
    action: BulkAction
    rows: list[RowResult]

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.rows if r.outcome == outcome)

    @property
    def problems(self) -> list[RowResult]:
        return [r for r in self.rows if r.outcome != Outcome.done]


Target = tuple[int, int]  # (deal id, the version the viewer read)


def _unique(targets: Sequence[Target]) -> list[Target]:
    if not targets:
        raise ValidationFailed("select at least one deal", field="ids")
    if len(targets) > MAX_BULK:
        raise ValidationFailed(f"at most {MAX_BULK} deals at once", field="ids")
    seen: dict[int, int] = {}
    for deal_id, version in targets:
        seen.setdefault(deal_id, version)
    return list(seen.items())


def _each(session: Session, viewer: User, action: BulkAction, targets: Sequence[Target],
          apply: Callable[[int, int], Deal]) -> BulkResult:
    rows: list[RowResult] = []
    for deal_id, version in _unique(targets):
        try:
            with session.begin_nested():
                deal = apply(deal_id, version)
            rows.append(RowResult(deal_id, Outcome.done, deal.title))
            continue
        except NotFound:
            rows.append(RowResult(deal_id, Outcome.not_found))
            continue
        except MissingForStage as exc:
            result = RowResult(deal_id, Outcome.needs_fields, missing_fields=list(exc.extra["missing_fields"]),
                               missing_checklist=list(exc.extra["missing_checklist"]))
        except Conflict:
            result = RowResult(deal_id, Outcome.conflict)
        except LoudouError:  # ValidationFailed, or PermissionDenied on a visible deal
            result = RowResult(deal_id, Outcome.invalid)
        visible = deal_queries.get_visible_deal(session, viewer, deal_id)
        result.title = visible.title if visible is not None else None
        rows.append(result)
    return BulkResult(action, rows)


def reassign_deals(session: Session, viewer: User, targets: Sequence[Target], owner_id: int, *,
                   source: str = "bulk") -> BulkResult:
    """Give deals to another owner: reps only to themselves, managers within their team."""
    owner = session.get(User, owner_id)
    if owner is None or not owner.is_active:
        raise ValidationFailed(f"owner_id {owner_id} is not an active user", field="owner_id")
    policy.assignable_owner(viewer, owner)
    return _each(session, viewer, BulkAction.reassign, targets, lambda deal_id, version: deal_service.update_deal(
        session, viewer, deal_id, DealUpdate(version=version, owner_id=owner_id), source=source))


def move_deals(session: Session, viewer: User, targets: Sequence[Target], stage_id: int, *,
               source: str = "bulk") -> BulkResult:
    """Move open deals to a stage of their pipeline; each must meet the stage's entry rules."""
    stage = pipeline_queries.get_stage(session, stage_id)
    if stage is None or not stage.is_active:
        raise ValidationFailed(f"stage {stage_id} is not an open stage", field="stage_id")
    return _each(session, viewer, BulkAction.move, targets, lambda deal_id, version: deal_service.move_deal(
        session, viewer, deal_id, DealMove(stage_id=stage_id, version=version), source=source))


def disqualify_deals(session: Session, viewer: User, targets: Sequence[Target], reason_id: int,
                     note: str | None = None, *, source: str = "bulk") -> BulkResult:
    """Take invalid leads out of the active funnel with one reason (B2); history stays."""
    reason = pipeline_queries.get_lost_reason(session, reason_id)
    if reason is None or reason.kind != "disqualify" or not reason.is_active:
        raise ValidationFailed(f"reason {reason_id} is not a disqualify reason", field="reason_id")
    data = {"lost_reason_id": reason_id, "note": note or None}
    return _each(session, viewer, BulkAction.disqualify, targets, lambda deal_id, version: deal_service.disqualify_deal(
        session, viewer, deal_id, DealClose(version=version, **data), source=source))
