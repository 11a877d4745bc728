"""Company pages: the list (filters in the query string, sorting, keyset pages), a
company's page (fields, deals, contacts, recent activity), and the create, edit and
delete forms (errors at the named field; a stale edit shows both values)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from loudou.auth import policy
from loudou.auth.models import Role, User
from loudou.company import queries as company_queries
from loudou.company import service as company_service
from loudou.company.models import Company
from loudou.company.schemas import CompanyCreate, CompanyFilters, CompanyUpdate
from loudou.errors import Conflict, ValidationFailed
from loudou.web import party_pages as pp
from loudou.web.deps import DbSession
from loudou.web.pages import CurrentPage, hx_redirect
from loudou.web.templating import Page, is_htmx, render

router = APIRouter(include_in_schema=False)

SORTS = ("-id", "id", "name", "-name")


class CompanyForm(BaseModel):
    """The form as typed: every field a string, checked by CompanyCreate/Update."""

    name: str = ""
    industry: str = ""
    city: str = ""
    website: str = ""
    phone: str = ""
    email: str = ""
    owner_id: str = ""
    version: str = ""


TEXT_FIELDS = ("name", "industry", "city", "website", "phone", "email")


def _labels(page: Page) -> dict[str, str]:
    _ = page.gettext
    return {"name": _("Name"), "industry": _("Industry"), "city": _("City"), "website": _("Website"),
            "phone": _("Phone"), "email": _("E-mail"), "owner_id": _("Owner")}


def _load(session: Session, viewer: User, company_id: int) -> Company:
    company = session.get(Company, company_id)
    policy.ensure_visible(viewer, company, "company", company_id)
    assert company is not None
    return company


# --------------------------------------------------------------------------- list


@router.get("/companies", name="company_list", response_class=HTMLResponse)
def company_list(request: Request, page: CurrentPage, session: DbSession) -> Response:
    viewer = pp.viewer_of(page)
    filters = pp.parse_filters(request, CompanyFilters)
    rows, next_cursor = company_queries.list_companies(session, viewer, filters)
    users = pp.users_by_id(session)
    params = {k: v for k, v in request.query_params.items() if k != "cursor" and v}
    values = {
        "active_nav": "companies",
        "filters": filters,
        "sorts": SORTS,
        "rows": rows,
        "has_filters": any(k in params for k in ("q", "industry", "city", "owner_id", "team_id")),
        "next_url": pp.page_url("/companies", params, cursor=next_cursor) if next_cursor else None,
        "first_url": pp.page_url("/companies", params) if filters.cursor else None,
        "users": users,
        "owner_choices": pp.owner_filter_choices(viewer, users),
        "teams": pp.teams_by_id(session) if viewer.role == Role.admin else {},
        "industries": company_queries.distinct_values(session, viewer, "industry"),
        "cities": company_queries.distinct_values(session, viewer, "city"),
        "open_counts": company_queries.open_deal_counts(session, viewer, [c.id for c in rows]),
        **pp.display_helpers(page),
    }
    return render(page, "company/list.html", values, block="results" if is_htmx(request) else None)


# --------------------------------------------------------------------------- forms


def _form_values(page: Page, company: Company | None) -> dict[str, str]:
    if company is None:
        return {f: "" for f in TEXT_FIELDS} | {"owner_id": str(pp.viewer_of(page).id)}
    return ({f: getattr(company, f) or "" for f in TEXT_FIELDS}
            | {"phone": pp.format_phone(company.phone, page.locale), "owner_id": str(company.owner_id or "")})


def _render_form(page: Page, session: Session, company: Company | None, values: dict[str, str], *,
                 errors: dict[str, str] | None = None, conflict: list[tuple[str, str, str]] | None = None,
                 notice: str | None = None, version: int | None = None, status_code: int = 200) -> Response:
    viewer = pp.viewer_of(page)
    users = pp.users_by_id(session)
    return render(page, "company/form.html", {
        "active_nav": "companies",
        "company": company,
        "values": values,
        "errors": errors or {},
        "conflict": conflict,
        "notice": notice,
        "version": version if version is not None else (company.version if company else None),
        "owners": pp.assignable_owners(viewer, users) if viewer.role != Role.rep else [],
        "industries": company_queries.distinct_values(session, viewer, "industry"),
        "cities": company_queries.distinct_values(session, viewer, "city"),
    }, status_code=status_code)


def _fields(form: CompanyForm, viewer: User, current: Company | None) -> dict[str, Any]:
    """The form's fields for the service; a rep has no owner field, and an unchanged
    owner is left out so a record whose owner left can still be edited."""
    values: dict[str, Any] = pp.blank_to_none({f: getattr(form, f) for f in TEXT_FIELDS})
    if viewer.role != Role.rep:
        owner_id = pp.parse_id(form.owner_id, "owner_id")
        if owner_id is not None and (current is None or owner_id != current.owner_id):
            values["owner_id"] = owner_id
    return values


@router.get("/companies/new", name="company_new", response_class=HTMLResponse)
def company_new(page: CurrentPage, session: DbSession) -> Response:
    return _render_form(page, session, None, _form_values(page, None))


@router.post("/companies/new", name="company_create")
def company_create(request: Request, page: CurrentPage, session: DbSession,
                   form: Annotated[CompanyForm, Form()]) -> Response:
    viewer = pp.viewer_of(page)
    try:
        data = CompanyCreate(**_fields(form, viewer, None))
        company = company_service.create_company(session, viewer, data, source="web")
    except ValidationError as exc:
        errors = pp.errors_from_validation(page, exc)
    except ValidationFailed as exc:
        errors = pp.error_from_service(page, exc)
    else:
        return hx_redirect(request, f"/companies/{company.id}")
    session.rollback()
    return _render_form(page, session, None, form.model_dump(exclude={"version"}), errors=errors, status_code=422)


@router.get("/companies/{company_id}/edit", name="company_edit", response_class=HTMLResponse)
def company_edit(company_id: int, page: CurrentPage, session: DbSession) -> Response:
    viewer = pp.viewer_of(page)
    company = _load(session, viewer, company_id)
    policy.ensure_can_change(viewer, company, "company", company_id)
    return _render_form(page, session, company, _form_values(page, company))


def _conflict_rows(page: Page, session: Session, form: CompanyForm, company: Company) -> list[tuple[str, str, str]]:
    saved = {f: getattr(company, f) or "" for f in TEXT_FIELDS} | {"owner_id": str(company.owner_id or "")}
    return pp.conflict_rows(page, _labels(page), form.model_dump(), saved, pp.users_by_id(session))


@router.post("/companies/{company_id}/edit", name="company_update")
def company_update(request: Request, company_id: int, page: CurrentPage, session: DbSession,
                   form: Annotated[CompanyForm, Form()]) -> Response:
    viewer = pp.viewer_of(page)
    company = _load(session, viewer, company_id)
    try:
        version = pp.parse_id(form.version, "version")
        if version is None:
            raise ValidationFailed("version is missing; reload the form", field="version")
        data = CompanyUpdate(version=version, **_fields(form, viewer, company))
        company_service.update_company(session, viewer, company_id, data, source="web")
    except Conflict:
        session.rollback()
        company = _load(session, viewer, company_id)
        return _render_form(page, session, company, form.model_dump(exclude={"version"}),
                            conflict=_conflict_rows(page, session, form, company), status_code=409)
    except ValidationError as exc:
        errors = pp.errors_from_validation(page, exc)
    except ValidationFailed as exc:
        errors = pp.error_from_service(page, exc)
    else:
        return hx_redirect(request, f"/companies/{company_id}")
    session.rollback()
    company = _load(session, viewer, company_id)
    return _render_form(page, session, company, form.model_dump(exclude={"version"}), errors=errors,
                        version=int(form.version) if form.version.isdigit() else None,
                        status_code=422)


@router.post("/companies/{company_id}/delete", name="company_delete")
def company_delete(request: Request, company_id: int, page: CurrentPage, session: DbSession,
                   version: Annotated[str, Form()] = "") -> Response:
    viewer = pp.viewer_of(page)
    try:
        company_service.delete_company(session, viewer, company_id, int(version) if version.isdigit() else -1)
    except Conflict as exc:
        session.rollback()
        company = _load(session, viewer, company_id)
        notice = (page.gettext("Someone else changed this company; review it before deleting.")
                  if "current_version" in exc.extra else
                  page.gettext("This company still has contacts, deals or activities; it cannot be deleted."))
        return _render_form(page, session, company, _form_values(page, company), notice=notice, status_code=409)
    return hx_redirect(request, "/companies")


# --------------------------------------------------------------------------- detail


@router.get("/companies/{company_id}", name="company_detail", response_class=HTMLResponse)
def company_detail(company_id: int, page: CurrentPage, session: DbSession) -> Response:
    viewer = pp.viewer_of(page)
    company = _load(session, viewer, company_id)
    activities = company_queries.related_activities(session, viewer, "company_id", company.id)
    return render(page, "company/detail.html", {
        "active_nav": "companies",
        "company": company,
        "deals": company_queries.related_deals(session, viewer, "company_id", company.id),
        "totals": company_queries.related_deal_totals(session, viewer, "company_id", company.id),
        "contacts": company_queries.company_contacts(session, viewer, company.id),
        "activities": activities,
        "deal_titles": company_queries.deal_titles(session, viewer, {a.deal_id for a in activities if a.deal_id}),
        "stages": pp.stages_by_id(session),
        "users": pp.users_by_id(session),
        "teams": pp.teams_by_id(session),
        "can_change": policy.can_change(viewer, company),
        **pp.display_helpers(page),
    })
