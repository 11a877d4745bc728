"""Contact pages: the list (filters in the query string, sorting, keyset pages), a
contact's page (fields, deals, recent activity), and the create, edit and delete forms
(errors at the named field; a stale edit shows both values)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.orm import Session

from loudou.auth import policy
from loudou.auth.models import Role, User
from loudou.company import queries as company_queries
from loudou.company.models import Company
from loudou.contact import queries as contact_queries
from loudou.contact import service as contact_service
from loudou.contact.models import Contact
from loudou.contact.schemas import ContactCreate, ContactFilters, ContactUpdate
from loudou.errors import Conflict, ValidationFailed
from loudou.search import queries as search_queries
from loudou.search import terms
from loudou.search.models import SearchKind
from loudou.web import party_pages as pp
from loudou.web.deps import DbSession
from loudou.web.pages import CurrentPage, hx_redirect
from loudou.web.templating import Page, is_htmx, render

router = APIRouter(include_in_schema=False)

SORTS = ("-id", "id", "name", "-name")
TEXT_FIELDS = ("name", "title", "phone", "email")
#: "Name (#12)": how a company is named when several visible ones share the name.
_COMPANY_REF = re.compile(r"^(?P<name>.*?)\s*\(#(?P<id>\d+)\)\s*$")
COMPANY_OPTIONS = 10


class ContactPageFilters(ContactFilters):
    company: str | None = Field(default=None, max_length=200, description="company name, pinyin, phone…")


class ContactForm(BaseModel):
    """The form as typed: every field a string, checked by ContactCreate/Update."""

    name: str = ""
    title: str = ""
    company: str = ""
    phone: str = ""
    email: str = ""
    owner_id: str = ""
    version: str = ""


def _labels(page: Page) -> dict[str, str]:
    _ = page.gettext
    return {"name": _("Full name"), "title": _("Job title"), "company": _("Company"), "phone": _("Phone"),
            "email": _("E-mail"), "owner_id": _("Owner")}


def _load(session: Session, viewer: User, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    policy.ensure_visible(viewer, contact, "contact", contact_id)
    assert contact is not None
    return contact


# --------------------------------------------------------------------------- list


@router.get("/contacts", name="contact_list", response_class=HTMLResponse)
def contact_list(request: Request, page: CurrentPage, session: DbSession) -> Response:
    viewer = pp.viewer_of(page)
    filters = pp.parse_filters(request, ContactPageFilters)
    rows, next_cursor = contact_queries.list_contacts(
        session, viewer, ContactFilters(**filters.model_dump(exclude={"company"})), filters.company)
    users = pp.users_by_id(session)
    params = {k: v for k, v in request.query_params.items() if k != "cursor" and v}
    company_filter = (company_queries.get_visible_company(session, viewer, filters.company_id)
                      if filters.company_id else None)
    values = {
        "active_nav": "contacts",
        "filters": filters,
        "sorts": SORTS,
        "rows": rows,
        "has_filters": any(k in params for k in ("q", "company", "company_id", "owner_id", "team_id")),
        "company_filter": company_filter,
        "without_company_url": pp.page_url("/contacts", params, company_id=None),
        "next_url": pp.page_url("/contacts", params, cursor=next_cursor) if next_cursor else None,
        "first_url": pp.page_url("/contacts", params) if filters.cursor else None,
        "users": users,
        "owner_choices": pp.owner_filter_choices(viewer, users),
        "teams": pp.teams_by_id(session) if viewer.role == Role.admin else {},
        "company_names": search_queries.visible_company_names(
            session, viewer, {c.company_id for c in rows if c.company_id is not None}),
        **pp.display_helpers(page),
    }
    return render(page, "contact/list.html", values, block="results" if is_htmx(request) else None)


@router.get("/contacts/company-options", name="contact_company_options", response_class=HTMLResponse)
def company_options(page: CurrentPage, session: DbSession, company: str = "") -> Response:
    """Suggestions for the company field of the contact form (a <datalist>): the visible
    companies whose name, pinyin, phone or e-mail starts with what was typed."""
    viewer = pp.viewer_of(page)
    prefixes = terms.query_prefixes(company)
    ids = search_queries.match_ids(session, viewer, SearchKind.company, prefixes, COMPANY_OPTIONS) if prefixes else []
    names = search_queries.visible_company_names(session, viewer, set(ids))
    ordered = [(i, names[i]) for i in ids if i in names]
    repeated = {n for n in names.values() if list(names.values()).count(n) > 1}
    options = [f"{name} (#{cid})" if name in repeated else name for cid, name in ordered]
    return render(page, "contact/_company_options.html", {"options": options})


# --------------------------------------------------------------------------- forms


def _company_label(session: Session, viewer: User, company_id: int | None) -> str:
    """How the form shows a contact's company: its name, with its id when the name is not
    unique among the viewer's companies, or only the id when the viewer may not see it."""
    if company_id is None:
        return ""
    company = company_queries.get_visible_company(session, viewer, company_id)
    if company is None:
        return f"(#{company_id})"
    same = contact_queries.find_visible_companies_by_name(session, viewer, company.name, limit=2)
    return company.name if len(same) < 2 else f"{company.name} (#{company.id})"


def _resolve_company(session: Session, viewer: User, text: str, current: int | None) -> int | None:
    """The company a typed name (or "Name (#12)") refers to, among the visible ones; the
    contact's current company stays even when the viewer may not see it."""
    text = text.strip()
    if not text:
        return None
    ref = _COMPANY_REF.match(text)
    if ref:
        company_id = int(ref.group("id"))
        if company_id == current or company_queries.get_visible_company(session, viewer, company_id):
            return company_id
        raise ValidationFailed(f"company #{company_id} does not exist", field="company")
    found = contact_queries.find_visible_companies_by_name(session, viewer, text, limit=2)
    if not found:
        raise ValidationFailed(f"no company is called {text!r}", field="company")
    if len(found) > 1:
        raise ValidationFailed(f"several companies are called {text!r}", field="company", ambiguous=True)
    return found[0].id


def _form_values(page: Page, session: Session, contact: Contact | None, company_id: int | None = None
                 ) -> dict[str, str]:
    viewer = pp.viewer_of(page)
    if contact is None:
        return {f: "" for f in TEXT_FIELDS} | {"owner_id": str(viewer.id),
                                               "company": _company_label(session, viewer, company_id)}
    return ({f: getattr(contact, f) or "" for f in TEXT_FIELDS}
            | {"phone": pp.format_phone(contact.phone, page.locale), "owner_id": str(contact.owner_id or ""),
               "company": _company_label(session, viewer, contact.company_id)})


def _render_form(page: Page, session: Session, contact: Contact | None, values: dict[str, str], *,
                 errors: dict[str, str] | None = None, conflict: list[tuple[str, str, str]] | None = None,
                 notice: str | None = None, version: int | None = None, status_code: int = 200) -> Response:
    viewer = pp.viewer_of(page)
    users = pp.users_by_id(session)
    return render(page, "contact/form.html", {
        "active_nav": "contacts",
        "contact": contact,
        "values": values,
        "errors": errors or {},
        "conflict": conflict,
        "notice": notice,
        "version": version if version is not None else (contact.version if contact else None),
        "owners": pp.assignable_owners(viewer, users) if viewer.role != Role.rep else [],
    }, status_code=status_code)


def _fields(session: Session, form: ContactForm, viewer: User, current: Contact | None) -> dict[str, Any]:
    """The form's fields for the service. A rep has no owner field; an unchanged owner or
    company is left out, so a contact whose owner left or whose company the viewer may not
    see can still be edited."""
    values: dict[str, Any] = pp.blank_to_none({f: getattr(form, f) for f in TEXT_FIELDS})
    company_id = _resolve_company(session, viewer, form.company, current.company_id if current else None)
    if current is None or company_id != current.company_id:
        values["company_id"] = company_id
    if viewer.role != Role.rep:
        owner_id = pp.parse_id(form.owner_id, "owner_id")
        if owner_id is not None and (current is None or owner_id != current.owner_id):
            values["owner_id"] = owner_id
    return values


def _service_error(page: Page, exc: ValidationFailed) -> dict[str, str]:
    if exc.field == "company":
        message = (page.gettext("Several companies have this name: pick one from the suggestions.")
                   if exc.extra.get("ambiguous") else
                   page.gettext("None of your companies has this name. Create the company first."))
        return {"company": message}
    if exc.field == "company_id":
        return {"company": page.gettext("None of your companies has this name. Create the company first.")}
    return pp.error_from_service(page, exc)


@router.get("/contacts/new", name="contact_new", response_class=HTMLResponse)
def contact_new(page: CurrentPage, session: DbSession, company_id: int | None = None) -> Response:
    return _render_form(page, session, None, _form_values(page, session, None, company_id))


@router.post("/contacts/new", name="contact_create")
def contact_create(request: Request, page: CurrentPage, session: DbSession,
                   form: Annotated[ContactForm, Form()]) -> Response:
    viewer = pp.viewer_of(page)
    try:
        data = ContactCreate(**_fields(session, form, viewer, None))
        contact = contact_service.create_contact(session, viewer, data, source="web")
    except ValidationError as exc:
        errors = pp.errors_from_validation(page, exc)
    except ValidationFailed as exc:
        errors = _service_error(page, exc)
    else:
        return hx_redirect(request, f"/contacts/{contact.id}")
    session.rollback()
    return _render_form(page, session, None, form.model_dump(exclude={"version"}), errors=errors, status_code=422)


@router.get("/contacts/{contact_id}/edit", name="contact_edit", response_class=HTMLResponse)
def contact_edit(contact_id: int, page: CurrentPage, session: DbSession) -> Response:
    viewer = pp.viewer_of(page)
    contact = _load(session, viewer, contact_id)
    policy.ensure_can_change(viewer, contact, "contact", contact_id)
    return _render_form(page, session, contact, _form_values(page, session, contact))


def _conflict_rows(page: Page, session: Session, form: ContactForm, contact: Contact) -> list[tuple[str, str, str]]:
    saved = ({f: getattr(contact, f) or "" for f in TEXT_FIELDS}
             | {"company": _company_label(session, pp.viewer_of(page), contact.company_id),
                "owner_id": str(contact.owner_id or "")})
    return pp.conflict_rows(page, _labels(page), form.model_dump(), saved, pp.users_by_id(session))


@router.post("/contacts/{contact_id}/edit", name="contact_update")
def contact_update(request: Request, contact_id: int, page: CurrentPage, session: DbSession,
                   form: Annotated[ContactForm, Form()]) -> Response:
    viewer = pp.viewer_of(page)
    contact = _load(session, viewer, contact_id)
    try:
        version = pp.parse_id(form.version, "version")
        if version is None:
            raise ValidationFailed("version is missing; reload the form", field="version")
        data = ContactUpdate(version=version, **_fields(session, form, viewer, contact))
        contact_service.update_contact(session, viewer, contact_id, data, source="web")
    except Conflict:
        session.rollback()
        contact = _load(session, viewer, contact_id)
        return _render_form(page, session, contact, form.model_dump(exclude={"version"}),
                            conflict=_conflict_rows(page, session, form, contact), status_code=409)
    except ValidationError as exc:
        errors = pp.errors_from_validation(page, exc)
    except ValidationFailed as exc:
        errors = _service_error(page, exc)
    else:
        return hx_redirect(request, f"/contacts/{contact_id}")
    session.rollback()
    contact = _load(session, viewer, contact_id)
    return _render_form(page, session, contact, form.model_dump(exclude={"version"}), errors=errors,
                        version=int(form.version) if form.version.isdigit() else None, status_code=422)


@router.post("/contacts/{contact_id}/delete", name="contact_delete")
def contact_delete(request: Request, contact_id: int, page: CurrentPage, session: DbSession,
                   version: Annotated[str, Form()] = "") -> Response:
    viewer = pp.viewer_of(page)
    try:
        contact_service.delete_contact(session, viewer, contact_id, int(version) if version.isdigit() else -1)
    except Conflict as exc:
        session.rollback()
        contact = _load(session, viewer, contact_id)
        notice = (page.gettext("Someone else changed this contact; review it before deleting.")
                  if "current_version" in exc.extra else
                  page.gettext("This contact still has deals or activities; it cannot be deleted."))
        return _render_form(page, session, contact, _form_values(page, session, contact), notice=notice,
                            status_code=409)
    return hx_redirect(request, "/contacts")


# --------------------------------------------------------------------------- detail


@router.get("/contacts/{contact_id}", name="contact_detail", response_class=HTMLResponse)
def contact_detail(contact_id: int, page: CurrentPage, session: DbSession) -> Response:
    viewer = pp.viewer_of(page)
    contact = _load(session, viewer, contact_id)
    activities = company_queries.related_activities(session, viewer, "contact_id", contact.id)
    company: Company | None = (company_queries.get_visible_company(session, viewer, contact.company_id)
                               if contact.company_id else None)
    return render(page, "contact/detail.html", {
        "active_nav": "contacts",
        "contact": contact,
        "company": company,
        "deals": company_queries.related_deals(session, viewer, "contact_id", contact.id),
        "totals": company_queries.related_deal_totals(session, viewer, "contact_id", contact.id),
        "activities": activities,
        "deal_titles": company_queries.deal_titles(session, viewer, {a.deal_id for a in activities if a.deal_id}),
        "stages": pp.stages_by_id(session),
        "users": pp.users_by_id(session),
        "teams": pp.teams_by_id(session),
        "can_change": policy.can_change(viewer, contact),
        **pp.display_helpers(page),
    })
