"""Every SELECT of the company pages, narrowed by auth.policy; also the deals and
activities shown on a company's or a contact's page (``related_*``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql import visitors

from loudou.activity.models import Activity
from loudou.auth import policy
from loudou.auth.models import Role, User
from loudou.company.models import Company
from loudou.company.schemas import CompanyFilters
from loudou.contact.models import Contact
from loudou.deal.models import Deal, DealStatus
from loudou.listing import ListSpec, SortSpec, finish_page
from loudou.search import queries as search_queries
from loudou.search.models import SearchKind

# Only indexed sort columns: at 1M deals (330k companies) sorting on anything else means
# a full scan per page for an admin. Newest first is id order.
COMPANY_LIST = ListSpec(model=Company, sortable=("name", "id"))


def get_visible_company(session: Session, viewer: User, company_id: int) -> Company | None:
    company = session.get(Company, company_id)
    return company if company is not None and policy.can_see(viewer, company) else None


def list_companies(session: Session, viewer: User, filters: CompanyFilters) -> tuple[list[Company], str | None]:
    """One keyset page of the companies the viewer may see. ``q`` is a prefix search over
    the search index (name, pinyin, initials, phone digits, e-mail), not a substring scan."""
    role = policy.scope_role(viewer)
    if role is None:
        return [], None
    text = search_queries.text_filter(session, SearchKind.company, filters.q)

    def base(sort: SortSpec) -> sa.Select[Any]:
        stmt = sa.select(Company).where(list_scope(Company, sort, role))
        if text is not None:
            stmt = stmt.where(text.clause(Company.id))
        return stmt

    plain = filters.model_copy(update={"q": None})
    stmt, params, sort = COMPANY_LIST.statement(("page", role, text and text.shape), base, plain)
    params |= policy.scope_params(viewer) | (text.params() if text else {})
    rows = list(session.scalars(stmt, params))
    return finish_page(rows, sort, filters.limit)


def scope_off_index(model: Any, role: Role) -> sa.ColumnElement[bool]:
    """The policy's clause for ``model`` with its owner and team columns written as
    ``column + 0``: the same rows, but no longer answerable from the owner or team index.

    SQLite picks those indexes whenever the clause allows, even where another index is
    far better: a rep's activities of one company were read by walking the rep's whole
    history in time order (ix_activities_owner_occurred, 4 s at 1M deals) instead of the
    company's few rows; a manager's list by name sorted the whole team (130k contacts)
    instead of walking the name index to the page's end. PERFORMANCE.md suggests
    INDEXED BY, which SQLAlchemy does not render for SQLite; this is the portable form."""
    table = model.__table__

    def swap(element: Any, **_kw: Any) -> Any:
        if getattr(element, "table", None) is table and element.key in ("owner_id", "team_id"):
            return element + sa.literal_column("0", sa.Integer)
        return None

    clause: sa.ColumnElement[bool] = visitors.replacement_traverse(policy.scope_clause(model, role), {}, swap)
    return clause


def list_scope(model: Any, sort: SortSpec, role: Role) -> sa.ColumnElement[bool]:
    """A manager's list by name walks the name index, skipping other teams' rows, and
    stops at the page's end (a team is a large share of the rows, so the walk is short)."""
    if sort.column == "name" and role == Role.manager:
        return scope_off_index(model, role)
    return policy.scope_clause(model, role)


def open_deal_counts(session: Session, viewer: User, company_ids: Sequence[int]) -> dict[int, int]:
    """Open deals per company, counting only deals the viewer may see."""
    if not company_ids:
        return {}
    stmt = (sa.select(Deal.company_id, sa.func.count())
            .where(Deal.company_id.in_(company_ids), Deal.status == DealStatus.open)
            .group_by(Deal.company_id))
    return {cid: n for cid, n in search_queries.visible_rows(session, viewer, Deal, stmt) if cid is not None}


def company_contacts(session: Session, viewer: User, company_id: int, limit: int = 100) -> list[Contact]:
    stmt = sa.select(Contact).where(Contact.company_id == company_id).order_by(Contact.name, Contact.id).limit(limit)
    return list(session.scalars(policy.scope(stmt, viewer, Contact)))


# --------------------------------------------------------------------------- related records

#: Whose deals and activities a page lists: a company's or a contact's.
Ref = Literal["company_id", "contact_id"]


def related_deals(session: Session, viewer: User, ref: Ref, record_id: int, limit: int = 50) -> list[Deal]:
    """Deals of a company or contact the viewer may see: open ones first, newest first."""
    role = policy.scope_role(viewer)
    if role is None:
        return []
    stmt = (sa.select(Deal).where(getattr(Deal, ref) == record_id, scope_off_index(Deal, role))
            .order_by(sa.case((Deal.status == DealStatus.open, 0), else_=1), Deal.created_at.desc(), Deal.id.desc())
            .limit(limit))
    return list(session.scalars(stmt, policy.scope_params(viewer)))


@dataclass(frozen=True)
class DealTotals:
    status: DealStatus
    currency: str
    count: int
    amount: Decimal | None


def related_deal_totals(session: Session, viewer: User, ref: Ref, record_id: int) -> list[DealTotals]:
    """Count and amount of the visible deals per status and currency."""
    role = policy.scope_role(viewer)
    if role is None:
        return []
    stmt = (sa.select(Deal.status, Deal.currency, sa.func.count(), sa.func.sum(Deal.amount))
            .where(getattr(Deal, ref) == record_id, scope_off_index(Deal, role))
            .group_by(Deal.status, Deal.currency))
    return [DealTotals(status, currency, count, None if amount is None else Decimal(str(amount)))
            for status, currency, count, amount in session.execute(stmt, policy.scope_params(viewer))]


def related_activities(session: Session, viewer: User, ref: Ref, record_id: int, limit: int = 15) -> list[Activity]:
    """The latest activities of a company or contact the viewer may see (read through the
    record's own index: see :func:`scope_off_index`)."""
    role = policy.scope_role(viewer)
    if role is None:
        return []
    stmt = (sa.select(Activity).where(getattr(Activity, ref) == record_id, scope_off_index(Activity, role))
            .order_by(Activity.occurred_at.desc(), Activity.id.desc()).limit(limit))
    return list(session.scalars(stmt, policy.scope_params(viewer)))


def deal_titles(session: Session, viewer: User, deal_ids: set[int]) -> dict[int, str]:
    """Titles of the visible deals among ``deal_ids`` (an activity's deal, for its link)."""
    if not deal_ids:
        return {}
    stmt = sa.select(Deal.id, Deal.title).where(Deal.id.in_(sorted(deal_ids)))
    return {i: t for i, t in search_queries.visible_rows(session, viewer, Deal, stmt)}


# --------------------------------------------------------------------------- filter choices

#: Seconds a list of industries or cities is reused: it changes rarely, and reading the
#: distinct values costs a scan of the viewer's companies (~50 ms for an admin at 1M deals).
CHOICES_TTL_S = 300.0
_choices: dict[tuple[str, Role, int, int], tuple[float, list[str]]] = {}


def distinct_values(session: Session, viewer: User, column: str, limit: int = 200) -> list[str]:
    """The most common values of ``column`` (industry, city) among the viewer's companies,
    for the filter's suggestions; cached per scope for :data:`CHOICES_TTL_S`."""
    role = policy.scope_role(viewer)
    if role is None:
        return []
    params = policy.scope_params(viewer)
    # Everyone but an admin has their own scope (a manager's also holds their own records).
    key = (column, role, 0 if role == Role.admin else params["viewer_id"],
           params["viewer_team_id"] if role == Role.manager else 0)
    hit = _choices.get(key)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    col = getattr(Company, column)
    stmt = policy.scope(sa.select(col).where(col.is_not(None), col != "").group_by(col)
                        .order_by(sa.func.count().desc(), col).limit(limit), viewer, Company)
    values = [v for (v,) in session.execute(stmt)]
    if len(_choices) > 1000:
        _choices.clear()
    _choices[key] = (now + CHOICES_TTL_S, values)
    return values
