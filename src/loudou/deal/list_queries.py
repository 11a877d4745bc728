"""Reads of the deal list page (/deals) and its exports.

The page accepts every filter of the API (``DealFilters``) plus what only the page has:
an expected-close date range, and the saved views "my open deals", "rotting" and
"closing this month". It goes through the same machinery as the API list — a
``listing.ListSpec`` whose statements are built once per shape with bind parameters,
narrowed by ``policy.scope_clause`` — so a rep lists and exports only their deals, a
manager their team's.

Dates typed into the page (created/closed from–to) are whole days in the viewer's time
zone, not UTC days as in the API: a Shanghai user's "created on 1 April" starts at
00:00 Shanghai time.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.orm import Session

from loudou.auth import policy
from loudou.auth.models import Role, Team, User
from loudou.channel.models import Channel
from loudou.company.models import Company
from loudou.contact.models import Contact
from loudou.db import UTCDateTime
from loudou.deal.models import Deal, DealStatus
from loudou.deal.queries import DEAL_LIST
from loudou.deal.schemas import DealFilters
from loudou.errors import ValidationFailed
from loudou.listing import ListSpec, SortSpec, encode_cursor, escape_like, finish_page, parse_sort
from loudou.pipeline.models import LostReason, Pipeline, Stage

DEFAULT_SORT = "-id"
#: Above this many matches the page says "1,000+" instead of counting 1M rows.
COUNT_CAP = 1_000
#: An export holds at most this many rows (the first ones in the list's order).
EXPORT_MAX_ROWS = 100_000
_EXPORT_BATCH = 1_000


class SavedView(enum.StrEnum):
    mine = "mine"  # my open deals
    rotting = "rotting"  # open and in their stage longer than the stage's expected days
    closing = "closing"  # open, expected to close this month (viewer's time zone)


class DealListFilters(DealFilters):
    """What the page's query string may hold: the API's filters and the page's own."""

    close_from: dt.date | None = Field(default=None, description="expected close date from (inclusive)")
    close_to: dt.date | None = Field(default=None, description="expected close date to (inclusive)")
    view: SavedView | None = None
    before: str | None = Field(default=None, max_length=500, description="cursor of the previous page")


class _SpecFilters(DealFilters):
    """What the ListSpec sees once saved views are resolved into plain conditions."""

    close_from: dt.date | None = None
    close_to: dt.date | None = None
    rotting_stages: tuple[int, ...] | None = None


def _rotting_clause(stage_ids: tuple[int, ...]) -> sa.ColumnElement[bool]:
    """Per stage ``stage_entered_at < :rot_<id>`` (now minus the stage's expected days),
    OR-ed. The stage ids are part of the statement's shape; the thresholds are bind
    parameters, so an admin changing expected_days needs no new statement."""
    if not stage_ids:
        return sa.false()
    return sa.or_(*(
        sa.and_(Deal.stage_id == stage_id,
                Deal.stage_entered_at < sa.bindparam(f"rot_{stage_id}", type_=UTCDateTime()))
        for stage_id in stage_ids
    ))


PAGE_LIST = ListSpec(
    model=Deal,
    sortable=DEAL_LIST.sortable,
    date_ranges=DEAL_LIST.date_ranges,
    value_ranges={**DEAL_LIST.value_ranges, "expected_close_date": ("close_from", "close_to")},
    text_columns=DEAL_LIST.text_columns,
    custom={**DEAL_LIST.custom, "rotting_stages": _rotting_clause},
)

_COLUMNS: tuple[Any, ...] = (
            Deal.id, Deal.title, Deal.pipeline_id, Deal.stage_id, Deal.status, Deal.owner_id, Deal.team_id,
            Deal.company_id, Deal.contact_id, Deal.channel_id, Deal.amount, Deal.currency,
            Deal.expected_close_date, Deal.lost_reason_id, Deal.created_at, Deal.updated_at, Deal.closed_at,
            Deal.stage_entered_at, Deal.last_activity_at, Deal.activity_count, Deal.version)


@dataclass(frozen=True)
class Reference:
    """Reference data every user may read (a few hundred rows at most), loaded once per
    request as plain rows — names on a page then cost no query per row, and skipping
    the ORM's identity map makes this 4× cheaper than loading entities."""

    pipelines: dict[int, Any]
    stages: dict[int, Any]
    users: dict[int, Any]
    teams: dict[int, Any]
    channels: dict[int, Any]
    reasons: dict[int, Any]

    def stages_of(self, pipeline_id: int | None = None) -> list[Any]:
        """Active stages in funnel order, of one pipeline or of all."""
        return sorted((s for s in self.stages.values()
                       if s.is_active and (pipeline_id is None or s.pipeline_id == pipeline_id)),
                      key=lambda s: (s.pipeline_id, s.position, s.id))


def load_reference(session: Session) -> Reference:
    def by_id(*columns: Any) -> dict[int, Any]:
        return {row.id: row for row in session.execute(sa.select(*columns).order_by(columns[0]))}

    return Reference(
        pipelines=by_id(Pipeline.id, Pipeline.name, Pipeline.name_en),
        stages=by_id(Stage.id, Stage.pipeline_id, Stage.position, Stage.name, Stage.name_en, Stage.expected_days,
                     Stage.is_active),
        users=by_id(User.id, User.name, User.role, User.team_id, User.is_active),
        teams=by_id(Team.id, Team.name),
        channels=by_id(Channel.id, Channel.name, Channel.name_en, Channel.is_active),
        reasons=by_id(LostReason.id, LostReason.name, LostReason.name_en, LostReason.kind, LostReason.is_active),
    )


def company_names(session: Session | sa.Connection, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = session.execute(sa.select(Company.id, Company.name).where(Company.id.in_(wanted)))
    return {row.id: row.name for row in rows}


def contact_name(session: Session, viewer: User, contact_id: int) -> str | None:
    contact = session.get(Contact, contact_id)
    return contact.name if contact is not None and policy.can_see(viewer, contact) else None


def visible_companies(session: Session, viewer: User, prefix: str, limit: int = 20) -> list[tuple[int, str]]:
    """Companies the viewer may see whose name starts with ``prefix`` (index range on
    name; recent ones when empty), for the company pickers."""
    stmt = policy.scope(sa.select(Company), viewer, Company).with_only_columns(Company.id, Company.name)
    prefix = prefix.strip()
    if prefix:
        stmt = stmt.where(Company.name.like(escape_like(prefix) + "%", escape="\\")).order_by(Company.name)
    else:
        stmt = stmt.order_by(Company.id.desc())
    return [(row.id, row.name) for row in session.execute(stmt.limit(limit))]


def visible_company_name(session: Session, viewer: User, company_id: int | None) -> str | None:
    if company_id is None:
        return None
    company = session.get(Company, company_id)
    return company.name if company is not None and policy.can_see(viewer, company) else None


def month_bounds(today: dt.date) -> tuple[dt.date, dt.date]:
    return today.replace(day=1), today.replace(day=calendar.monthrange(today.year, today.month)[1])


def _local_day_start(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(dt.UTC)


@dataclass(frozen=True)
class Resolved:
    """Saved view and page-only fields turned into what the ListSpec runs."""

    spec_filters: _SpecFilters
    params: dict[str, Any]  # bind parameters beyond the ListSpec's own


def resolve(filters: DealListFilters, viewer: User, ref: Reference, *, tz: dt.tzinfo,
            now: dt.datetime) -> Resolved:
    values = filters.model_dump(exclude={"view", "before"})
    params: dict[str, Any] = {}
    if filters.view is not None:
        values["status"] = DealStatus.open
    if filters.view == SavedView.mine:
        values["owner_id"] = viewer.id
    elif filters.view == SavedView.closing:
        values["close_from"], values["close_to"] = month_bounds(now.astimezone(tz).date())
    elif filters.view == SavedView.rotting:
        stages = ref.stages_of(filters.pipeline_id)
        values["rotting_stages"] = tuple(s.id for s in stages)
        params.update({f"rot_{s.id}": now - dt.timedelta(days=s.expected_days) for s in stages})
    return Resolved(_SpecFilters(**values), params)


def _sort_text(sort: SortSpec) -> str:
    return ("-" if sort.descending else "") + sort.column


def _base(role: Any) -> Any:
    def base(sort: SortSpec) -> sa.Select[Any]:
        return sa.select(*_COLUMNS).where(policy.scope_clause(Deal, role))
    return base


def _statement(viewer: User, resolved: Resolved, filters: _SpecFilters, tz: dt.tzinfo
               ) -> tuple[sa.Select[Any], dict[str, Any], SortSpec]:
    role = policy.scope_role(viewer)
    stmt, params, sort = PAGE_LIST.statement(("page", role), _base(role), filters)
    # The ListSpec binds from/to dates as UTC midnights (the API's rule); the page means
    # the viewer's own days, so those parameters are replaced with local midnights.
    for lo, hi in PAGE_LIST.date_ranges.values():
        if getattr(filters, lo) is not None:
            params[f"f_{lo}"] = _local_day_start(getattr(filters, lo), tz)
        if getattr(filters, hi) is not None:
            params[f"f_{hi}"] = _local_day_start(getattr(filters, hi) + dt.timedelta(days=1), tz)
    return stmt, params | resolved.params | policy.scope_params(viewer), sort


@dataclass
class DealPage:
    rows: list[Any]
    sort: SortSpec
    next_cursor: str | None
    prev_cursor: str | None  # a "before" cursor for the previous page
    total: int | None  # matches, exact up to COUNT_CAP
    total_capped: bool  # more than COUNT_CAP match


def fetch_page(session: Session, viewer: User, filters: DealListFilters, ref: Reference, *, tz: dt.tzinfo,
               now: dt.datetime) -> DealPage:
    """One keyset page of visible deals, both neighbours' cursors and a capped count.

    The previous page is the same query in the opposite order, started after the first
    row of this page and read backwards: keyset_order puts NULLs first ascending and
    last descending, so the reversed order is the exact mirror."""
    sort = parse_sort(filters.sort, PAGE_LIST.sortable, DEFAULT_SORT)
    if policy.scope_role(viewer) is None:
        return DealPage([], sort, None, None, 0, False)
    resolved = resolve(filters, viewer, ref, tz=tz, now=now)
    base_filters = resolved.spec_filters.model_copy(update={"sort": _sort_text(sort)})
    reverse = SortSpec(sort.column, not sort.descending)
    limit = filters.limit
    if filters.before:
        stmt, params, _ = _statement(viewer, resolved, base_filters.model_copy(
            update={"sort": _sort_text(reverse), "cursor": filters.before}), tz)
        rows = list(session.execute(stmt, params).all())
        more_before = len(rows) > limit
        rows = rows[:limit][::-1]
        prev_cursor = encode_cursor(reverse, getattr(rows[0], sort.column), rows[0].id) if more_before else None
        next_cursor = encode_cursor(sort, getattr(rows[-1], sort.column), rows[-1].id) if rows else None
    else:
        stmt, params, _ = _statement(viewer, resolved, base_filters, tz)
        rows, next_cursor = finish_page(list(session.execute(stmt, params).all()), sort, limit)
        prev_cursor = (encode_cursor(reverse, getattr(rows[0], sort.column), rows[0].id)
                       if filters.cursor and rows else None)
    is_first = not filters.cursor and not filters.before
    if is_first and next_cursor is None:
        total, capped = len(rows), False
    else:
        total, capped = _capped_count(session, viewer, resolved, base_filters, tz)
    return DealPage(rows, sort, next_cursor, prev_cursor, total, capped)


def _unordered(stmt: sa.Select[Any]) -> sa.Select[Any]:
    return stmt.with_only_columns(Deal.id).order_by(None)


def _capped_count(session: Session, viewer: User, resolved: Resolved, filters: _SpecFilters,
                  tz: dt.tzinfo) -> tuple[int, bool]:
    """Count matches up to COUNT_CAP + 1: an exact "1,234", or "10,000+" without
    counting a million rows."""
    stmt, params, _ = _statement(viewer, resolved, filters.model_copy(update={"cursor": None}), tz)
    inner = _unordered(stmt).limit(COUNT_CAP + 1).subquery()
    n = int(session.execute(sa.select(sa.func.count()).select_from(inner), params).scalar_one())
    return min(n, COUNT_CAP), n > COUNT_CAP


@dataclass(frozen=True)
class ExportPlan:
    stmt: sa.Select[Any]
    params: dict[str, Any]
    truncated: bool  # more than EXPORT_MAX_ROWS match; the file holds the first ones


def plan_export(session: Session, viewer: User, filters: DealListFilters, ref: Reference, *, tz: dt.tzinfo,
                now: dt.datetime) -> ExportPlan | None:
    """The statement of an export: the list's own (same scope, filters and order), with
    the page size raised to the export cap. None when the viewer sees nothing."""
    if policy.scope_role(viewer) is None:
        return None
    sort = parse_sort(filters.sort, PAGE_LIST.sortable, DEFAULT_SORT)
    resolved = resolve(filters, viewer, ref, tz=tz, now=now)
    spec_filters = resolved.spec_filters.model_copy(update={"sort": _sort_text(sort), "cursor": None})
    stmt, params, _ = _statement(viewer, resolved, spec_filters, tz)
    # Whether the cap cuts anything, asked without ORDER BY: a scan that stops at the
    # cap, instead of sorting every match twice.
    probe = _unordered(stmt).limit(1).offset(EXPORT_MAX_ROWS)
    truncated = session.execute(probe, params).first() is not None
    return ExportPlan(stmt.limit(EXPORT_MAX_ROWS), params, truncated)


def iter_export(conn: sa.Connection, plan: ExportPlan) -> Iterator[tuple[Any, dict[int, str]]]:
    """Rows of the export with the company names of their batch (one query per batch)."""
    result = conn.execution_options(stream_results=True, yield_per=_EXPORT_BATCH).execute(plan.stmt, plan.params)
    for batch in result.partitions():
        names = company_names(conn, (row.company_id for row in batch))
        for row in batch:
            yield row, names


def assignable_owners(viewer: User, ref: Reference) -> list[Any]:
    """Who the viewer may make owner (policy.assignable_owner), active users only."""
    out = []
    for user in ref.users.values():
        if not user.is_active:
            continue
        try:
            policy.assignable_owner(viewer, user)
        except ValidationFailed:
            continue
        out.append(user)
    return sorted(out, key=lambda u: (u.id != viewer.id, u.name))


def filterable_owners(viewer: User, ref: Reference) -> Sequence[Any]:
    """Owners worth offering in the owner filter: whose deals the viewer can see."""
    if viewer.role == Role.admin:
        return sorted(ref.users.values(), key=lambda u: u.name)
    if viewer.role == Role.manager and viewer.team_id is not None:
        return sorted((u for u in ref.users.values() if u.team_id == viewer.team_id or u.id == viewer.id),
                      key=lambda u: u.name)
    return [viewer]
