"""Every SELECT of the contact pages, narrowed by auth.policy."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.auth import policy
from loudou.auth.models import User
from loudou.company import queries as company_queries
from loudou.company.models import Company
from loudou.contact.models import Contact
from loudou.contact.schemas import ContactFilters
from loudou.listing import ListSpec, SortSpec, finish_page
from loudou.search import queries as search_queries
from loudou.search.models import SearchKind

# Only indexed sort columns (see company.queries.COMPANY_LIST).
CONTACT_LIST = ListSpec(model=Contact, sortable=("name", "id"))


def get_visible_contact(session: Session, viewer: User, contact_id: int) -> Contact | None:
    contact = session.get(Contact, contact_id)
    return contact if contact is not None and policy.can_see(viewer, contact) else None


def list_contacts(session: Session, viewer: User, filters: ContactFilters, company: str | None = None
                  ) -> tuple[list[Contact], str | None]:
    """One keyset page of the contacts the viewer may see. ``q`` searches the contact's
    terms, ``company`` the terms of its company (both prefix searches over the index)."""
    role = policy.scope_role(viewer)
    if role is None:
        return [], None
    text = search_queries.text_filter(session, SearchKind.contact, filters.q)
    of_company = search_queries.text_filter(session, SearchKind.company, company, name="c", may_probe=False)

    def base(sort: SortSpec) -> sa.Select[Any]:
        stmt = sa.select(Contact).where(company_queries.list_scope(Contact, sort, role))
        if text is not None:
            stmt = stmt.where(text.clause(Contact.id))
        if of_company is not None:
            # Only companies the viewer may see: a name must not find what it cannot open.
            stmt = stmt.where(Contact.company_id.in_(sa.select(Company.id).where(
                of_company.clause(Company.id), policy.scope_clause(Company, role))))
        return stmt

    plain = filters.model_copy(update={"q": None})
    key = ("page", role, text and text.shape, of_company and of_company.shape)
    stmt, params, sort = CONTACT_LIST.statement(key, base, plain)
    params |= policy.scope_params(viewer)
    params |= (text.params() if text else {}) | (of_company.params() if of_company else {})
    rows = list(session.scalars(stmt, params))
    return finish_page(rows, sort, filters.limit)


def find_visible_companies_by_name(session: Session, viewer: User, name: str, limit: int = 3) -> list[Company]:
    """Visible companies called exactly ``name``: how a contact form names its company."""
    stmt = sa.select(Company).where(Company.name == name).order_by(Company.id).limit(limit)
    return list(session.scalars(policy.scope(stmt, viewer, Company)))
