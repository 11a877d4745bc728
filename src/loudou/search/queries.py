"""Every SELECT of the search: prefix ranges over ``search_terms``, narrowed by the policy,
then the matching records, narrowed by the policy again.

The policy (``auth.policy``) states its rule over a record's ``owner_id`` and ``team_id``.
The index rows carry copies of both, so the rule's own clause, rewritten onto the index
columns, narrows a search inside the index: a rep's search reads only their rows of the
owner index instead of probing every match. Loading the records applies the rule to
the records themselves, so a stale index row can never show a record to the wrong user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVarTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql import visitors
from sqlalchemy.sql.util import find_tables

from loudou.auth import policy
from loudou.auth.models import Role, User
from loudou.company.models import Company
from loudou.contact.models import Contact
from loudou.deal.models import Deal
from loudou.search import terms
from loudou.search.models import SearchKind, SearchTerm

_TERMS: sa.Table = SearchTerm.__table__  # type: ignore[assignment]
Ts = TypeVarTuple("Ts")
MODELS: dict[SearchKind, Any] = {SearchKind.deal: Deal, SearchKind.company: Company, SearchKind.contact: Contact}
#: Index rows read per wanted record: one record can match a prefix through two terms
#: (its pinyin and its e-mail both start with "zhang").
OVERFETCH = 2


def scope_on_terms(kind: SearchKind, role: Role) -> sa.ColumnElement[bool]:
    """The policy's clause for ``kind``, rewritten from the record's owner/team columns
    to the index's copies of them."""
    model = MODELS[kind]
    record_table = model.__table__

    def swap(element: Any, **_kw: Any) -> Any:
        if getattr(element, "table", None) is record_table and element.key in ("owner_id", "team_id"):
            return _TERMS.c[element.key]
        return None

    clause = visitors.replacement_traverse(policy.scope_clause(model, role), {}, swap)
    if any(t is not _TERMS for t in find_tables(clause)):
        # A rule over other columns cannot be evaluated in the index: refuse rather than
        # join or, worse, silently widen the search.
        raise RuntimeError(f"the policy for {kind} uses columns the search index does not copy")
    return clause


_MATCH_CACHE: dict[tuple[SearchKind, Role, int], sa.Select[Any]] = {}


def _match_statement(kind: SearchKind, role: Role, limit: int) -> sa.Select[Any]:
    """Built once per kind, role and page size; values are bind parameters."""
    key = (kind, role, limit)
    stmt = _MATCH_CACHE.get(key)
    if stmt is None:
        t = _TERMS
        stmt = (
            sa.select(t.c.entity_id)
            .where(t.c.kind == kind.value, t.c.term >= sa.bindparam("lo"), t.c.term < sa.bindparam("hi"),
                   scope_on_terms(kind, role))
            .order_by(t.c.term)
            .limit(limit)
        )
        _MATCH_CACHE[key] = stmt
    return stmt


def match_ids(session: Session, viewer: User, kind: SearchKind, prefixes: Sequence[str], limit: int) -> list[int]:
    """Ids of up to ``limit`` visible records of ``kind`` with a term starting with one of
    ``prefixes``, best first: the first prefix's matches, shortest (exact) terms first."""
    role = policy.scope_role(viewer)
    if role is None:
        return []
    stmt = _match_statement(kind, role, limit * OVERFETCH)
    found: dict[int, None] = {}
    for prefix in prefixes:
        bounds = terms.prefix_range(prefix)
        if bounds is None:
            continue
        params = {"lo": bounds[0], "hi": bounds[1], **policy.scope_params(viewer)}
        for entity_id in session.scalars(stmt, params):
            found.setdefault(entity_id, None)
            if len(found) >= limit:
                return list(found)
    return list(found)


#: Matching index rows from which a list's text filter checks each listed record against
#: the index (EXISTS, stops at the page's end) instead of collecting every match first (IN,
#: which for "zh" means half a million ids at 1M deals).
BROAD_MATCHES = 2000


@dataclass(frozen=True)
class TextFilter:
    """A list's text filter over the search index: the prefixes' bounds and the plan."""

    kind: SearchKind
    bounds: tuple[tuple[str, str], ...]
    broad: bool
    name: str = "q"

    @property
    def shape(self) -> tuple[int, bool]:
        return len(self.bounds), self.broad

    def clause(self, id_column: Any) -> sa.ColumnElement[bool]:
        """``id_column`` has a term in range; bounds are bind parameters (see params)."""
        t = _TERMS
        ranges = sa.or_(*(sa.and_(t.c.term >= sa.bindparam(f"{self.name}_lo{i}"),
                                  t.c.term < sa.bindparam(f"{self.name}_hi{i}"))
                          for i in range(len(self.bounds))))
        if self.broad:
            return sa.exists().where(t.c.kind == self.kind.value, t.c.entity_id == id_column, ranges)
        return id_column.in_(sa.select(t.c.entity_id).where(t.c.kind == self.kind.value, ranges))

    def params(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for i, (lo, hi) in enumerate(self.bounds):
            out[f"{self.name}_lo{i}"], out[f"{self.name}_hi{i}"] = lo, hi
        return out


def text_filter(session: Session, kind: SearchKind, query: str | None, name: str = "q", *,
                may_probe: bool = True) -> TextFilter | None:
    """The filter for what was typed in a list's search box, or None if nothing was.
    ``may_probe=False`` keeps the IN plan (for a filter nested in another subquery, where
    a per-row probe would run over the whole inner table)."""
    bounds = tuple(b for b in (terms.prefix_range(p) for p in terms.query_prefixes(query)) if b is not None)
    if not bounds:
        return None
    if not may_probe:
        return TextFilter(kind, bounds, False, name)
    t = _TERMS
    matches = (sa.select(t.c.entity_id)
               .where(t.c.kind == kind.value, sa.or_(*(sa.and_(t.c.term >= lo, t.c.term < hi) for lo, hi in bounds)))
               .limit(BROAD_MATCHES).subquery())
    counted = session.scalar(sa.select(sa.func.count()).select_from(matches)) or 0
    return TextFilter(kind, bounds, counted >= BROAD_MATCHES, name)


# --------------------------------------------------------------------------- results


@dataclass
class SearchResults:
    query: str
    deals: list[Any] = field(default_factory=list)
    companies: list[Any] = field(default_factory=list)
    contacts: list[Any] = field(default_factory=list)
    #: Names of the visible companies the deals and contacts belong to.
    company_names: dict[int, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.deals) + len(self.companies) + len(self.contacts)


def visible_rows(session: Session, viewer: User, model: Any, stmt: sa.Select[*Ts]
                 ) -> list[sa.Row[*Ts]]:
    """Rows of a column SELECT over ``model``, narrowed by the policy's clause."""
    role = policy.scope_role(viewer)
    if role is None:
        return []
    narrowed = stmt.where(policy.scope_clause(model, role))
    return list(session.execute(narrowed, policy.scope_params(viewer)).all())


def _in_order(rows: Sequence[Any], ids: Sequence[int]) -> list[Any]:
    by_id = {r.id: r for r in rows}
    return [by_id[i] for i in ids if i in by_id]


def visible_company_names(session: Session, viewer: User, ids: set[int]) -> dict[int, str]:
    """Names of the companies in ``ids`` the viewer may see (a contact's company can have
    another owner: its name is shown only to those who may open it)."""
    if not ids:
        return {}
    stmt = sa.select(Company.id, Company.name).where(Company.id.in_(sorted(ids)))
    return {r.id: r.name for r in visible_rows(session, viewer, Company, stmt)}


def search(session: Session, viewer: User, query: str, limit: int) -> SearchResults:
    """Up to ``limit`` visible deals, companies and contacts matching ``query``."""
    results = SearchResults(query=query)
    prefixes = terms.query_prefixes(query)
    if not prefixes:
        return results
    deal_ids = match_ids(session, viewer, SearchKind.deal, prefixes, limit)
    company_ids = match_ids(session, viewer, SearchKind.company, prefixes, limit)
    contact_ids = match_ids(session, viewer, SearchKind.contact, prefixes, limit)
    if deal_ids:
        deals = sa.select(Deal.id, Deal.title, Deal.status, Deal.amount, Deal.currency, Deal.stage_id,
                          Deal.company_id).where(Deal.id.in_(deal_ids))
        results.deals = _in_order(visible_rows(session, viewer, Deal, deals), deal_ids)
    if company_ids:
        companies = sa.select(Company.id, Company.name, Company.city, Company.industry, Company.phone,
                              Company.email).where(Company.id.in_(company_ids))
        results.companies = _in_order(visible_rows(session, viewer, Company, companies), company_ids)
    if contact_ids:
        contacts = sa.select(Contact.id, Contact.name, Contact.title, Contact.phone, Contact.email,
                             Contact.company_id).where(Contact.id.in_(contact_ids))
        results.contacts = _in_order(visible_rows(session, viewer, Contact, contacts), contact_ids)
    results.company_names = visible_company_names(
        session, viewer, {r.company_id for r in [*results.deals, *results.contacts] if r.company_id is not None})
    return results
