"""Reads behind the deal page (``/deals/{id}``): its one timeline and the lookups its forms
need. Every function expects a deal the caller has already checked with the policy.

The timeline merges five sources, newest first: stage transitions, activities, task
creations, task completions and field changes from the audit log. Each source is read by
its own keyset query on the deal's index (at most ``limit + 1`` rows), so one page costs a
handful of short range scans whatever the size of the database or of the deal's history:
no UNION over the whole history and no query per entry (names are looked up once per kind
afterwards).

Rule: whoever may see the deal sees its whole timeline, including the activities and
tasks colleagues logged on it (the history belongs to the deal, as in every CRM).
Changing one of those tasks still goes through the policy (``activity.service``).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.activity.models import Activity, Task
from loudou.audit.models import AuditLog
from loudou.auth import policy
from loudou.auth.models import Role, User
from loudou.channel.models import Channel
from loudou.company.models import Company
from loudou.contact.models import Contact
from loudou.deal.models import Deal, StageTransition
from loudou.errors import ValidationFailed
from loudou.pipeline.models import LostReason, Stage

TIMELINE_LIMIT = 100

#: Audit fields the timeline does not show as field changes: stage and status changes are
#: told by the transition rows, the team follows the owner, closed_at follows the status.
HIDDEN_AUDIT_FIELDS = ("stage_id", "status", "closed_at", "team_id", "pipeline_id")
#: Audit actions written together with a transition; their remaining field changes (the
#: final amount of a win, the reason of a loss …) are shown on that transition's entry.
TRANSITION_ACTIONS = ("move", "win", "lose", "disqualify", "reopen")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class EntryKind(enum.StrEnum):
    # The value order is the tie-break when two entries share a timestamp (higher first).
    task_created = "task_created"
    task_done = "task_done"
    activity = "activity"
    changes = "changes"
    transition = "transition"


RANK = {kind: rank for rank, kind in enumerate(EntryKind)}


def _micros(at: dt.datetime) -> int:
    return (at - _EPOCH) // dt.timedelta(microseconds=1)


@dataclass(frozen=True, order=True)
class TimelineKey:
    """Total order of the merged timeline: time, then source, then id (all descending)."""

    at_us: int
    rank: int
    ident: int

    def encode(self) -> str:
        return f"{self.at_us}.{self.rank}.{self.ident}"

    @classmethod
    def decode(cls, text: str) -> TimelineKey:
        try:
            at_us, rank, ident = (int(part) for part in text.split("."))
        except ValueError:
            raise ValidationFailed("not a timeline position", field="before") from None
        if not 0 <= rank < len(RANK):
            raise ValidationFailed("not a timeline position", field="before")
        return cls(at_us, rank, ident)

    @property
    def at(self) -> dt.datetime:
        return _EPOCH + dt.timedelta(microseconds=self.at_us)


@dataclass
class TimelineEntry:
    kind: EntryKind
    key: TimelineKey
    at: dt.datetime
    actor_id: int | None
    transition: StageTransition | None = None
    #: The transition before this one: its duration_s is the time spent in the state
    #: this transition left.
    previous: StageTransition | None = None
    activity: Activity | None = None
    task: Task | None = None
    action: str | None = None
    changes: list[AuditLog] = field(default_factory=list)


@dataclass
class Timeline:
    entries: list[TimelineEntry]
    next_cursor: str | None


def _older_than(at_col: Any, id_col: Any, kind: EntryKind, cursor: TimelineKey | None) -> sa.ColumnElement[bool]:
    """Rows of one source that come after ``cursor`` in the merged order."""
    if cursor is None:
        return sa.true()
    rank, at = RANK[kind], cursor.at
    if rank < cursor.rank:
        return at_col <= at
    if rank > cursor.rank:
        return at_col < at
    return sa.or_(at_col < at, sa.and_(at_col == at, id_col < cursor.ident))


def _entry(kind: EntryKind, at: dt.datetime, ident: int, actor_id: int | None, **kw: Any) -> TimelineEntry:
    return TimelineEntry(kind=kind, key=TimelineKey(_micros(at), RANK[kind], ident), at=at, actor_id=actor_id, **kw)


def _transition_entries(session: Session, deal_id: int, cursor: TimelineKey | None,
                        n: int) -> tuple[list[TimelineEntry], bool]:
    kind = EntryKind.transition
    stmt = (
        sa.select(StageTransition)
        .where(StageTransition.deal_id == deal_id,
               _older_than(StageTransition.at, StageTransition.id, kind, cursor))
        .order_by(StageTransition.at.desc(), StageTransition.id.desc())
        .limit(n + 1)  # one more than the page, as the predecessor of the oldest shown
    )
    rows = list(session.scalars(stmt))
    entries = [
        _entry(kind, t.at, t.id, t.by_id, transition=t, previous=rows[i + 1] if i + 1 < len(rows) else None)
        for i, t in enumerate(rows[:n])
    ]
    return entries, len(rows) > n


def _activity_entries(session: Session, deal_id: int, cursor: TimelineKey | None,
                      n: int) -> tuple[list[TimelineEntry], bool]:
    kind = EntryKind.activity
    stmt = (
        sa.select(Activity)
        .where(Activity.deal_id == deal_id, _older_than(Activity.occurred_at, Activity.id, kind, cursor))
        .order_by(Activity.occurred_at.desc(), Activity.id.desc())
        .limit(n)
    )
    rows = list(session.scalars(stmt))
    return [_entry(kind, a.occurred_at, a.id, a.owner_id, activity=a) for a in rows], len(rows) == n


def _task_entries(session: Session, deal_id: int, cursor: TimelineKey | None, n: int,
                  kind: EntryKind) -> tuple[list[TimelineEntry], bool]:
    at_col = Task.created_at if kind == EntryKind.task_created else Task.done_at
    stmt = (
        sa.select(Task)
        .where(Task.deal_id == deal_id, at_col.is_not(None), _older_than(at_col, Task.id, kind, cursor))
        .order_by(at_col.desc(), Task.id.desc())
        .limit(n)
    )
    rows = list(session.scalars(stmt))
    entries = []
    for t in rows:
        at = t.created_at if kind == EntryKind.task_created else t.done_at
        assert at is not None
        entries.append(_entry(kind, at, t.id, t.owner_id, task=t))
    return entries, len(rows) == n


def _change_entries(session: Session, deal_id: int, cursor: TimelineKey | None,
                    n: int) -> tuple[list[TimelineEntry], bool]:
    """Audit rows grouped into one entry per save (same time, action and user)."""
    kind = EntryKind.changes
    stmt = (
        sa.select(AuditLog)
        .where(AuditLog.entity == "deal", AuditLog.entity_id == deal_id, AuditLog.action != "create",
               AuditLog.field.is_not(None), AuditLog.field.not_in(HIDDEN_AUDIT_FIELDS),
               _older_than(AuditLog.at, AuditLog.id, kind, cursor))
        .order_by(AuditLog.at.desc(), AuditLog.id.desc())
        .limit(n)
    )
    rows = list(session.scalars(stmt))
    groups: list[list[AuditLog]] = []
    for row in rows:
        last = groups[-1][-1] if groups else None
        if last is not None and (last.at, last.action, last.user_id) == (row.at, row.action, row.user_id):
            groups[-1].append(row)
        else:
            groups.append([row])
    truncated = len(rows) == n
    if truncated and len(groups) > 1:
        groups.pop()  # may be cut by the limit; it comes whole with the next page
    entries = []
    for group in groups:
        if group[0].action == "reopen":
            # Reopening clears the close reason and note: the transition says enough.
            group = [r for r in group if r.field not in ("lost_reason_id", "close_note")]
            if not group:
                continue
        # The group's key is its lowest id, so the cursor after it skips the whole group.
        entries.append(_entry(kind, group[0].at, min(r.id for r in group), group[0].user_id,
                              action=group[0].action, changes=sorted(group, key=lambda r: r.id)))
    return entries, truncated


def _attach_changes(entries: list[TimelineEntry]) -> list[TimelineEntry]:
    """Fold each move/win/lose/… audit group into the transition written with it (same
    user, same action, within seconds), so a loss reads as one entry with its reason."""
    transitions = [e for e in entries if e.kind == EntryKind.transition]
    kept = []
    for e in entries:
        if e.kind == EntryKind.changes and e.action in TRANSITION_ACTIONS:
            match = next((t for t in transitions if t.transition is not None
                          and t.transition.kind.value == e.action and t.actor_id == e.actor_id
                          and not t.changes and abs((t.at - e.at).total_seconds()) < 5), None)
            if match is not None:
                match.changes = e.changes
                continue
        kept.append(e)
    return kept


def load_timeline(session: Session, deal_id: int, *, before: str | None = None,
                  limit: int = TIMELINE_LIMIT) -> Timeline:
    """One page of the deal's timeline, newest first, and the cursor of the next page."""
    cursor = TimelineKey.decode(before) if before else None
    sources = [
        _transition_entries(session, deal_id, cursor, limit + 1),
        _change_entries(session, deal_id, cursor, limit + 1),
        _activity_entries(session, deal_id, cursor, limit + 1),
        _task_entries(session, deal_id, cursor, limit + 1, EntryKind.task_done),
        _task_entries(session, deal_id, cursor, limit + 1, EntryKind.task_created),
    ]
    merged = sorted((e for entries, _ in sources for e in entries), key=lambda e: e.key, reverse=True)
    # A source that hit its limit may hold older rows than the ones it returned, so
    # entries older than its oldest returned one are not yet known to be in order.
    floors = [entries[-1].key for entries, truncated in sources if truncated and entries]
    if floors:
        floor = max(floors)
        merged = [e for e in merged if e.key >= floor]
    has_more = bool(floors) or len(merged) > limit
    page = merged[:limit]
    next_cursor = page[-1].key.encode() if has_more and page else None
    return Timeline(entries=_attach_changes(page), next_cursor=next_cursor)


# --------------------------------------------------------------------------- lookups


def user_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    """Names of users (reference data: readable by everyone)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {ident: name for ident, name in session.execute(sa.select(User.id, User.name).where(User.id.in_(wanted)))}


def visible_names(session: Session, viewer: User, model: type[Company] | type[Contact],
                  ids: Iterable[int | None]) -> dict[int, str]:
    """Names of the companies or contacts among ``ids`` the viewer may see; the others stay
    anonymous (an old value in the history must not leak another team's customer)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    stmt = policy.scope(sa.select(model).where(model.id.in_(wanted)), viewer, model)
    return {ident: name for ident, name in session.execute(stmt.with_only_columns(model.id, model.name))}


@dataclass
class Parties:
    """The deal's own company and contact: names, and whether the viewer may open them."""

    company_name: str | None = None
    contact_name: str | None = None
    company_visible: bool = False
    contact_visible: bool = False


def deal_parties(session: Session, viewer: User, deal: Deal) -> Parties:
    """They are part of the deal, so whoever sees the deal sees their names, even when the
    company or contact record belongs to someone else (its own page then answers 404, so
    the deal page shows the name without a link)."""
    parties = Parties()
    company = session.get(Company, deal.company_id) if deal.company_id is not None else None
    contact = session.get(Contact, deal.contact_id) if deal.contact_id is not None else None
    if company is not None:
        parties.company_name, parties.company_visible = company.name, policy.can_see(viewer, company)
    if contact is not None:
        parties.contact_name, parties.contact_visible = contact.name, policy.can_see(viewer, contact)
    return parties


def stages_by_id(session: Session, pipeline_id: int, extra_ids: Iterable[int | None] = ()) -> dict[int, Stage]:
    """Every stage of the pipeline, inactive ones too (history may name them), plus any
    other stage the history refers to."""
    stages = {s.id: s for s in session.scalars(sa.select(Stage).where(Stage.pipeline_id == pipeline_id))}
    missing = {i for i in extra_ids if i is not None and i not in stages}
    if missing:
        stages.update({s.id: s for s in session.scalars(sa.select(Stage).where(Stage.id.in_(missing)))})
    return stages


def list_open_tasks(session: Session, deal_id: int, limit: int = 21) -> list[Task]:
    """The deal's open tasks, soonest due first (the page shows 20 and says if there are more)."""
    stmt = (
        sa.select(Task)
        .where(Task.deal_id == deal_id, Task.done_at.is_(None))
        .order_by(Task.due_at.is_(None), Task.due_at, Task.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def get_deal_task(session: Session, deal_id: int, task_id: int) -> Task | None:
    task = session.get(Task, task_id)
    return task if task is not None and task.deal_id == deal_id else None


def list_reasons(session: Session) -> list[LostReason]:
    """Every lost and disqualify reason, retired ones too: the history may name them."""
    return list(session.scalars(sa.select(LostReason).order_by(LostReason.id)))


def list_channels(session: Session) -> list[Channel]:
    return list(session.scalars(sa.select(Channel).order_by(Channel.id)))


def assignable_owners(session: Session, viewer: User) -> list[User]:
    """Active users the viewer may make owner of a record (the policy decides each one)."""
    stmt = sa.select(User).where(User.is_active.is_(True))
    if viewer.role == Role.rep:
        stmt = stmt.where(User.id == viewer.id)
    elif viewer.role == Role.manager:
        stmt = stmt.where(sa.or_(User.id == viewer.id,
                                 User.team_id == viewer.team_id if viewer.team_id is not None else sa.false()))
    allowed = []
    for user in session.scalars(stmt.order_by(User.name, User.id)):
        try:
            policy.assignable_owner(viewer, user)
        except ValidationFailed:
            continue
        allowed.append(user)
    return allowed


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def company_options(session: Session, viewer: User, q: str, limit: int = 20) -> list[tuple[int, str]]:
    """Companies the viewer may see whose name contains ``q`` (for the deal's company picker)."""
    stmt = policy.scope(sa.select(Company), viewer, Company)
    if q.strip():
        stmt = stmt.where(Company.name.ilike(_like(q.strip()), escape="\\"))
    stmt = stmt.order_by(Company.name, Company.id).limit(limit)
    return [(ident, name) for ident, name in session.execute(stmt.with_only_columns(Company.id, Company.name))]


def contact_options(session: Session, viewer: User, company_id: int | None, q: str,
                    limit: int = 30) -> list[tuple[int, str]]:
    """Contacts the viewer may see, of the given company if one is chosen."""
    stmt = policy.scope(sa.select(Contact), viewer, Contact)
    if company_id is not None:
        stmt = stmt.where(Contact.company_id == company_id)
    if q.strip():
        stmt = stmt.where(Contact.name.ilike(_like(q.strip()), escape="\\"))
    stmt = stmt.order_by(Contact.name, Contact.id).limit(limit)
    return [(ident, name) for ident, name in session.execute(stmt.with_only_columns(Contact.id, Contact.name))]
