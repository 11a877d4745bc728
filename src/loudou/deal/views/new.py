"""The new-deal form (/deals/new) and the company picker both deal forms use.

Quick add (PRODUCT D2): a title is all it takes; the deal enters the chosen stage (the
default pipeline's first by default) through ``deal_service.create_deal``, so the
stage's required fields and checklist apply. Validation errors re-render the form with
status 422 and the offending field named; success redirects to the deal's page.
Included by ``deal.views.list`` so it is registered before /deals/{id}.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from loudou.auth.models import Role
from loudou.deal import list_queries as lq
from loudou.deal import service as deal_service
from loudou.deal.schemas import DealCreate
from loudou.errors import MissingForStage, ValidationFailed
from loudou.pipeline import queries as pipeline_queries
from loudou.web.deps import DbSession
from loudou.web.pages import CurrentPage, hx_redirect
from loudou.web.templating import Page, render

router = APIRouter(include_in_schema=False)

TEMPLATE = "deal/new.html"
FORM_FIELDS = ("title", "stage_id", "company_id", "owner_id", "amount", "currency", "expected_close_date",
               "channel_id", "description")

def _error_text(_: Callable[[str], str], error_type: str) -> str:
    """Pydantic's error types as the form says them (its own messages are English only)."""
    return {
        "missing": _("Required"), "string_too_short": _("Required"), "string_too_long": _("Too long"),
        "decimal_parsing": _("Enter a number"), "decimal_type": _("Enter a number"),
        "decimal_max_digits": _("Too large"), "decimal_whole_digits": _("Too large"),
        "decimal_max_places": _("At most 2 decimal places"), "greater_than_equal": _("Must be 0 or more"),
        "int_parsing": _("Invalid choice"), "date_parsing": _("Enter a date"),
        "date_from_datetime_parsing": _("Enter a date"),
    }.get(error_type, _("Invalid value"))


def _service_error_text(_: Callable[[str], str], field: str) -> str:
    """What a service's ValidationFailed on ``field`` means to the person filling the form."""
    return {
        "owner_id": _("You may not assign deals to this user"),
        "company_id": _("Choose a company you can see"),
        "contact_id": _("Choose a contact you can see"),
        "channel_id": _("Choose a channel"),
        "stage_id": _("Choose an open stage"),
        "currency": _("A 3-letter code such as CNY"),
    }.get(field, _("Invalid value"))


def _form_values(page: Page, session: DbSession, values: dict[str, str], errors: dict[str, str],
                 checklist: list[str] | None = None, checked: list[str] | None = None) -> dict[str, Any]:
    assert page.user is not None
    viewer = page.user
    ref = lq.load_reference(session)
    company_id = values.get("company_id", "")
    company_name = lq.visible_company_name(session, viewer, int(company_id)) if company_id.isdigit() else None
    return {
        "active_nav": "deals",
        "values": values,
        "errors": errors,
        "stages": ref.stages_of(),
        "pipelines": ref.pipelines,
        "channels": [c for c in ref.channels.values() if c.is_active],
        "owners": lq.assignable_owners(viewer, ref) if viewer.role != Role.rep else [],
        "company_name": company_name,
        "checklist": checklist or [],
        "checked": checked or [],
    }


def _default_stage(session: DbSession) -> str:
    pipeline = pipeline_queries.get_default_pipeline(session)
    stages = pipeline_queries.list_stages(session, pipeline.id) if pipeline else []
    return str(stages[0].id) if stages else ""


@router.get("/deals/new", name="deal_new")
def new_deal(request: Request, page: CurrentPage, session: DbSession) -> Response:
    """The form, optionally prefilled (?company_id=, ?stage_id= from other pages)."""
    assert page.user is not None
    prefill = {k: v for k, v in request.query_params.items() if k in FORM_FIELDS and v.strip()}
    values = {"currency": "CNY", "stage_id": _default_stage(session), "owner_id": str(page.user.id), **prefill}
    return render(page, TEMPLATE, _form_values(page, session, values, {}))


@router.post("/deals/new", name="deal_new_submit")
def create_deal(
    request: Request,
    page: CurrentPage,
    session: DbSession,
    title: Annotated[str, Form(max_length=1000)] = "",
    stage_id: Annotated[str, Form()] = "",
    company_id: Annotated[str, Form()] = "",
    owner_id: Annotated[str, Form()] = "",
    amount: Annotated[str, Form()] = "",
    currency: Annotated[str, Form()] = "",
    expected_close_date: Annotated[str, Form()] = "",
    channel_id: Annotated[str, Form()] = "",
    description: Annotated[str, Form(max_length=20000)] = "",
    checklist: Annotated[list[str] | None, Form()] = None,
) -> Response:
    assert page.user is not None
    viewer = page.user
    values = {"title": title, "stage_id": stage_id, "company_id": company_id, "owner_id": owner_id,
              "amount": amount, "currency": currency, "expected_close_date": expected_close_date,
              "channel_id": channel_id, "description": description}
    data: dict[str, Any] = {k: v.strip() for k, v in values.items() if v.strip()}
    if "title" not in data:
        data["title"] = ""  # so the missing title is reported like any other field error
    if "amount" in data:
        data["amount"] = data["amount"].replace(",", "")  # "125,000" as people type it
    if data.get("stage_id", "").isdigit():
        stage = pipeline_queries.get_stage(session, int(data["stage_id"]))
        if stage is not None:
            data["pipeline_id"] = stage.pipeline_id
    data["checklist"] = checklist or []
    errors: dict[str, str] = {}
    needed_checklist: list[str] = []
    try:
        deal = deal_service.create_deal(session, viewer, DealCreate.model_validate(data), source="web")
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            name = str(error["loc"][0]) if error["loc"] else "title"
            errors.setdefault(name, _error_text(page.gettext, error["type"]))
    except MissingForStage as exc:
        for name in exc.extra["missing_fields"]:
            errors[name] = page.gettext("Required to enter this stage")
        if exc.extra["missing_checklist"]:
            needed_checklist = list(exc.extra["missing_checklist"])
            errors["checklist"] = page.gettext("Confirm these to enter this stage")
    except ValidationFailed as exc:
        name = exc.field or "title"
        if name == "pipeline_id":
            name = "stage_id"
        errors[name] = _service_error_text(page.gettext, name)
    else:
        return hx_redirect(request, f"/deals/{deal.id}")
    session.rollback()  # nothing of a refused form is kept
    context = _form_values(page, session, values, errors, needed_checklist, checklist)
    return render(page, TEMPLATE, context, status_code=422, block="form" if request.headers.get("hx-request") else None)


@router.get("/deals/company-options", name="deal_company_options")
def company_options(page: CurrentPage, session: DbSession, cq: str = "", company_id: str = "",
                    blank: str = "any") -> Response:
    """<option>s of the companies the viewer may see whose name starts with ``cq``: the
    company pickers swap them into their select as the user types."""
    assert page.user is not None
    viewer = page.user
    companies = lq.visible_companies(session, viewer, cq[:100])
    selected = int(company_id) if company_id.isdigit() else None
    if selected is not None and all(cid != selected for cid, _ in companies):
        name = lq.visible_company_name(session, viewer, selected)
        if name is not None:
            companies.insert(0, (selected, name))
    return render(page, "deal/_company_options.html",
                  {"companies": companies, "selected": selected, "blank": blank})
