"""The deal page ``/deals/{id}`` (PRODUCT A2-A4, D1, D2, E6): header with the stage bar, the
current stage's guidance and playbook, one timeline, quick forms and the funnel actions.

Every form works without JavaScript (POST, then 303 back to the page; errors re-render
the page with 422/409) and HTMX enhances it: a quick form answers with itself, fresh,
plus the timeline swapped out-of-band; an action (move, win, lose, edit …) answers with
the whole ``deal_page`` block, since the stage bar, the facts and every form's version
change with it. Any service error rolls the request's session back before the page is
re-rendered, so nothing half-applied is committed by the request scope.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from loudou.activity import service as activity_service
from loudou.activity.models import ActivityKind, Task
from loudou.activity.schemas import ActivityCreate, TaskCreate, TaskUpdate
from loudou.auth import policy
from loudou.auth.models import User
from loudou.company.models import Company
from loudou.contact.models import Contact
from loudou.db import utcnow
from loudou.deal import detail_queries as dq
from loudou.deal import queries as deal_queries
from loudou.deal import service as deal_service
from loudou.deal.models import Deal
from loudou.deal.schemas import DealClose, DealFields, DealMove, DealReopen, DealUpdate
from loudou.deal.views.detail_present import (
    EDITABLE,
    DealView,
    conflict_rows,
    form_int,
    form_text,
    form_values,
    form_version,
    local_datetime,
    parse_field,
    parse_fields,
    submitted,
    validated,
)
from loudou.errors import Conflict, LoudouError, MissingForStage, NotFound, ValidationFailed
from loudou.pipeline.models import Pipeline, Stage
from loudou.web.deps import DbSession
from loudou.web.pages import CurrentPage
from loudou.web.templating import Page, is_htmx, render

router = APIRouter(include_in_schema=False)

TEMPLATE = "deal/detail.html"
#: Open follow-ups listed on the page; a deal with more points to My day for the rest.
OPEN_TASKS_SHOWN = 20


async def _form(request: Request) -> FormData:
    # Starlette caches the parsed form: the CSRF check in CurrentPage has read it already.
    return await request.form()


Form = Annotated[FormData, Depends(_form)]


def _viewer(page: Page) -> User:
    assert page.user is not None  # CurrentPage signs every visitor in first
    return page.user


def current_deal(deal_id: int, page: CurrentPage, session: DbSession) -> Deal:
    """The deal, if the viewer may see it; otherwise the 404 page (never 403: no leak)."""
    deal = deal_queries.get_visible_deal(session, _viewer(page), deal_id)
    if deal is None:
        raise NotFound(f"deal {deal_id} not found")
    return deal


CurrentDeal = Annotated[Deal, Depends(current_deal)]


# --------------------------------------------------------------------------- context


def _reload(session: Session, deal_id: int) -> Deal:
    """The deal as committed, after a failed write was rolled back."""
    session.rollback()
    deal = session.get(Deal, deal_id)
    if deal is None:
        raise NotFound(f"deal {deal_id} not found")
    return deal


def _context(session: Session, page: Page, deal: Deal, *, before: str | None = None, with_timeline: bool = True,
             **state: Any) -> dict[str, Any]:
    """Everything the page and its partials show; ``state`` carries open forms and errors."""
    viewer = _viewer(page)
    timeline = dq.load_timeline(session, deal.id, before=before) if with_timeline else dq.Timeline([], None)
    transitions = [e.transition for e in timeline.entries if e.transition is not None]
    stage_ids = [t.from_stage_id for t in transitions] + [t.to_stage_id for t in transitions]
    stages = dq.stages_by_id(session, deal.pipeline_id, [deal.stage_id, *stage_ids])
    open_tasks = dq.list_open_tasks(session, deal.id, limit=OPEN_TASKS_SHOWN + 1)
    more_tasks = len(open_tasks) > OPEN_TASKS_SHOWN
    open_tasks = open_tasks[:OPEN_TASKS_SHOWN]
    channels = dq.list_channels(session)
    reasons = dq.list_reasons(session)
    changes = [row for e in timeline.entries for row in e.changes]

    def ids(field: str) -> set[int]:
        found: set[int] = set()
        for row in changes:
            if row.field == field:
                found.update(int(v) for v in (row.before, row.after) if v and v.isdigit())
        return found

    parties = dq.deal_parties(session, viewer, deal)
    companies = dq.visible_names(session, viewer, Company, ids("company_id"))
    contacts = dq.visible_names(session, viewer, Contact, ids("contact_id"))
    if deal.company_id is not None and parties.company_name is not None:
        companies[deal.company_id] = parties.company_name
    if deal.contact_id is not None and parties.contact_name is not None:
        contacts[deal.contact_id] = parties.contact_name
    user_ids = {deal.owner_id, *(e.actor_id for e in timeline.entries), *(t.owner_id for t in open_tasks),
                *ids("owner_id")}
    view = DealView(
        page=page, deal=deal, pipeline=session.get(Pipeline, deal.pipeline_id), stages=stages,
        channels={c.id: c for c in channels}, reasons={r.id: r for r in reasons},
        users=dq.user_names(session, user_ids),
        companies=companies, contacts=contacts, parties=parties,
    )
    values: dict[str, Any] = {
        "deal": deal,
        "v": view,
        "active_nav": "deals",
        "timeline": timeline,
        "before": before,
        "open_tasks": open_tasks,
        "more_tasks": more_tasks,
        "can_change_task": {t.id: policy.can_change(viewer, t) for t in open_tasks},
        "channels": [c for c in channels if c.is_active or c.id == deal.channel_id],
        "lost_reasons": [r for r in reasons if r.kind == "lost" and r.is_active],
        "disqualify_reasons": [r for r in reasons if r.kind == "disqualify" and r.is_active],
        "kinds": list(ActivityKind),
        "errors": {},
        "error_form": None,
        "submitted": {},
        "edit": False,
        "missing": None,
        "conflict": None,
        "notice": None,
        "toast": None,
        "oob": False,
    }
    values.update(state)
    form_vals = form_values(deal)
    edit_vals = {**form_vals, **(values["submitted"] if values["error_form"] in ("edit", "move") else {})}
    values.update(form_vals=form_vals, edit_vals=edit_vals, base_json=json.dumps(form_vals, ensure_ascii=False),
                  choices={"company": [], "contact": [], "owner": []})
    if values["edit"] or values["missing"] or values["conflict"]:
        values["choices"] = _choices(session, viewer, view, edit_vals)
    return values


def _choices(session: Session, viewer: User, view: DealView, vals: dict[str, str]) -> dict[str, Any]:
    """Options of the edit form's pickers: the chosen company and its contacts (search finds
    other companies), and the owners the policy lets the viewer assign."""
    company_id = int(vals["company_id"]) if vals.get("company_id", "").isdigit() else None
    contact_id = int(vals["contact_id"]) if vals.get("contact_id", "").isdigit() else None
    # The deal's own company and contact stay choosable even when the viewer may not open
    # them (saving the form unchanged must not clear them); other choices are visible ones.
    known_companies = view.companies if company_id == view.deal.company_id else {}
    known_contacts = view.contacts if contact_id == view.deal.contact_id else {}
    companies = _named(session, viewer, Company, company_id, known_companies)
    contacts = list(dq.contact_options(session, viewer, company_id, "")) if company_id else []
    if contact_id is not None and all(c[0] != contact_id for c in contacts):
        contacts[:0] = _named(session, viewer, Contact, contact_id, known_contacts)
    owners = [(u.id, u.name) for u in dq.assignable_owners(session, viewer)]
    view.users.update(owners)
    return {"company": companies, "contact": contacts, "owner": owners}


def _named(session: Session, viewer: User, model: type[Company] | type[Contact], ident: int | None,
           known: dict[int, str]) -> list[tuple[int, str]]:
    if ident is None:
        return []
    if ident in known:
        return [(ident, known[ident])]
    return list(dq.visible_names(session, viewer, model, [ident]).items())


def _page(page: Page, values: dict[str, Any], status_code: int = 200) -> Response:
    """The whole page for a browser, the ``deal_page`` block for HTMX."""
    if is_htmx(page.request):
        return render(page, TEMPLATE, values, block="deal_page", status_code=status_code)
    values["toast"] = None
    return render(page, TEMPLATE, values, status_code=status_code)


def _done(page: Page, session: Session, deal: Deal, toast: str) -> Response:
    """After a successful action: the fresh page block for HTMX, a 303 for browsers."""
    if not is_htmx(page.request):
        return RedirectResponse(f"/deals/{deal.id}", status_code=303)
    session.flush()
    return _page(page, _context(session, page, deal, toast=toast))


# --------------------------------------------------------------------------- page and fragments


@router.get("/deals/{deal_id:int}", name="deal_detail")
def deal_page(page: CurrentPage, session: DbSession, deal: CurrentDeal, before: str | None = None,
              edit: bool = False) -> Response:
    return render(page, TEMPLATE, _context(session, page, deal, before=before, edit=edit))


@router.get("/deals/{deal_id:int}/timeline", name="deal_timeline")
def timeline_page(page: CurrentPage, session: DbSession, deal: CurrentDeal, before: str) -> Response:
    """Older timeline entries for the "show older" loader (HTMX); browsers get the page."""
    if not is_htmx(page.request):
        return RedirectResponse(f"/deals/{deal.id}?before={before}#timeline", status_code=303)
    return render(page, "deal/_timeline_entries.html", _context(session, page, deal, before=before))


@router.get("/deals/{deal_id:int}/edit", name="deal_edit_form")
def edit_form(page: CurrentPage, session: DbSession, deal: CurrentDeal) -> Response:
    if not is_htmx(page.request):
        return RedirectResponse(f"/deals/{deal.id}?edit=1#deal-details", status_code=303)
    return render(page, "deal/_details.html", _context(session, page, deal, edit=True, with_timeline=False))


@router.get("/deals/{deal_id:int}/options/company", name="deal_company_options")
def company_choices(page: CurrentPage, session: DbSession, deal: CurrentDeal, company_q: str = "",
                    company_id: str = "") -> Response:
    """The company picker's options for a search (only companies the viewer may see)."""
    viewer = _viewer(page)
    current = int(company_id) if company_id.isdigit() else None
    found = list(dq.company_options(session, viewer, company_q[:100]))
    if current is not None and all(c[0] != current for c in found):
        found[:0] = dq.visible_names(session, viewer, Company, [current]).items()
    return render(page, "deal/_pickers.html", {"deal": deal, "picker": "company", "choices": found,
                                               "selected": current, "errors": {}})


@router.get("/deals/{deal_id:int}/options/contact", name="deal_contact_options")
def contact_choices(page: CurrentPage, session: DbSession, deal: CurrentDeal, company_id: str = "",
                    contact_id: str = "") -> Response:
    """The contacts of the chosen company (after the company picker changed)."""
    viewer = _viewer(page)
    company = int(company_id) if company_id.isdigit() else None
    current = int(contact_id) if contact_id.isdigit() else None
    found = list(dq.contact_options(session, viewer, company, ""))
    if current is not None and all(c[0] != current for c in found):
        found[:0] = dq.visible_names(session, viewer, Contact, [current]).items()
    return render(page, "deal/_pickers.html", {"deal": deal, "picker": "contact", "choices": found,
                                               "selected": current, "errors": {}})


# --------------------------------------------------------------------------- quick forms


def _quick_result(page: Page, session: Session, deal: Deal, template: str, **state: Any) -> Response:
    """A quick form's answer: itself, fresh, plus the timeline (and the facts) out-of-band."""
    if not is_htmx(page.request):
        return RedirectResponse(f"/deals/{deal.id}#timeline", status_code=303)
    session.flush()
    session.refresh(deal)  # activity_count/last_activity_at were bumped by a plain UPDATE
    return render(page, template, _context(session, page, deal, oob=True, **state))


def _quick_error(page: Page, session: Session, deal_id: int, template: str, exc: LoudouError,
                 form_name: str, form: FormData) -> Response:
    deal = _reload(session, deal_id)
    field = getattr(exc, "field", None) or "form"
    state: dict[str, Any] = {"errors": {field: exc}, "error_form": form_name, "submitted": submitted(form)}
    if not is_htmx(page.request):
        return render(page, TEMPLATE, _context(session, page, deal, **state), status_code=exc.status_code)
    return render(page, template, _context(session, page, deal, **state), status_code=exc.status_code)


@router.post("/deals/{deal_id:int}/activities", name="deal_log_activity")
def log_activity(page: CurrentPage, session: DbSession, deal: CurrentDeal, form: Form) -> Response:
    """Log a call, e-mail, meeting, visit or note; it lands at its time in the timeline."""
    try:
        kind = form_text(form, "kind")
        if kind not in ActivityKind.__members__:
            raise ValidationFailed("choose what happened", field="kind")
        subject, body = form_text(form, "subject"), str(form.get("body") or "").strip()
        if not subject and not body:
            raise ValidationFailed("write a subject or a note", field="subject")
        occurred = local_datetime(page, *form_text(form, "occurred_at").partition("T")[::2], "occurred_at",
                                   dt.time(0, 0))
        if occurred is not None and occurred > utcnow() + dt.timedelta(minutes=5):
            # Activities record what happened; what is planned is a task.
            raise ValidationFailed("an activity cannot be in the future", field="occurred_at")
        data = validated(ActivityCreate, {"kind": kind, "subject": subject, "body": body or None,
                                           "deal_id": deal.id, "occurred_at": occurred})
        activity_service.log_activity(session, _viewer(page), data, source="web")
    except LoudouError as exc:
        return _quick_error(page, session, deal.id, "deal/_log_result.html", exc, "log", form)
    return _quick_result(page, session, deal, "deal/_log_result.html", last_kind=kind,
                         toast=page.gettext("Logged."))


@router.post("/deals/{deal_id:int}/tasks", name="deal_add_task")
def add_task(page: CurrentPage, session: DbSession, deal: CurrentDeal, form: Form) -> Response:
    """A follow-up task; the due date and time are the viewer's local ones, stored in UTC.
    Without a time the task is due by the end of that day (23:59 local)."""
    try:
        due = local_datetime(page, form_text(form, "due_date"), form_text(form, "due_time"), "due_date",
                              dt.time(23, 59))
        data = validated(TaskCreate, {"title": form_text(form, "title"), "deal_id": deal.id, "due_at": due})
        activity_service.create_task(session, _viewer(page), data, source="web")
    except LoudouError as exc:
        return _quick_error(page, session, deal.id, "deal/_tasks_result.html", exc, "task", form)
    return _quick_result(page, session, deal, "deal/_tasks_result.html", task_added=True,
                         toast=page.gettext("Task added."))


@router.post("/deals/{deal_id:int}/tasks/{task_id:int}/done", name="deal_task_done")
def task_done(page: CurrentPage, session: DbSession, deal: CurrentDeal, task_id: int, form: Form) -> Response:
    task: Task | None = dq.get_deal_task(session, deal.id, task_id)
    if task is None:
        raise NotFound(f"task {task_id} not found")
    try:
        activity_service.update_task(session, _viewer(page), task.id,
                                     TaskUpdate(version=form_version(form), done=True), source="web")
    except LoudouError as exc:
        return _quick_error(page, session, deal.id, "deal/_tasks_result.html", exc, "task_done", form)
    return _quick_result(page, session, deal, "deal/_tasks_result.html", toast=page.gettext("Task done."))


# --------------------------------------------------------------------------- actions


def _action_error(page: Page, session: Session, deal_id: int, exc: LoudouError, form_name: str,
                  form: FormData, **state: Any) -> Response:
    """Re-render the page with the failed form open and its error, nothing committed."""
    deal = _reload(session, deal_id)
    if isinstance(exc, Conflict):
        notice = page.gettext("Someone else changed this deal meanwhile. The page now shows its "
                              "current state: check it and try again.")
        return _page(page, _context(session, page, deal, notice=notice), status_code=409)
    field = exc.field if isinstance(exc, ValidationFailed) and exc.field else "form"
    values: dict[str, Any] = {"errors": {field: exc}, "error_form": form_name, "submitted": submitted(form),
                              **state}
    return _page(page, _context(session, page, deal, **values), status_code=exc.status_code)


def _missing_state(stage: Stage | None, exc: MissingForStage | None) -> dict[str, Any]:
    if stage is None or exc is None:
        return {}
    return {"missing": {"stage": stage, "fields": exc.extra.get("missing_fields", []),
                        "checklist": exc.extra.get("missing_checklist", [])}}


def _still_missing(session: Session, deal: Deal, stage_id: int | None) -> dict[str, Any]:
    """What entering the stage still needs, checked by the service's own rule."""
    stage = session.get(Stage, stage_id) if stage_id is not None else None
    pipeline = session.get(Pipeline, deal.pipeline_id)
    if stage is None or pipeline is None or stage.pipeline_id != deal.pipeline_id:
        return {}
    try:
        deal_service.enforce_stage_entry(pipeline, stage, deal)
    except MissingForStage as exc:
        return _missing_state(stage, exc)
    return {}


@router.post("/deals/{deal_id:int}/move", name="deal_move_page")
def move(page: CurrentPage, session: DbSession, deal: CurrentDeal, form: Form) -> Response:
    """Move to another stage. When the stage needs fields or checklist items the deal lacks,
    the answer is a form asking for exactly those; submitting it moves with them."""
    stage_id: int | None = None
    try:
        stage_id = form_int(form, "stage_id", required=True)
        names = [f for f in EDITABLE if f in form]
        values = {k: v for k, v in parse_fields(form, names).items() if v is not None}
        fields = validated(DealFields, values) if values else None
        checklist = [str(item) for item in form.getlist("checklist")]
        data = validated(DealMove, {"stage_id": stage_id, "version": form_version(form),
                                     "fields": fields.model_dump(exclude_unset=True) if fields else None,
                                     "checklist": checklist})
        deal_service.move_deal(session, _viewer(page), deal.id, data, source="web")
    except MissingForStage as exc:
        target = session.get(Stage, stage_id) if stage_id is not None else None
        deal = _reload(session, deal.id)
        state = _missing_state(target, exc)
        return _page(page, _context(session, page, deal, error_form="move", submitted=submitted(form), **state),
                     status_code=422)
    except LoudouError as exc:
        if "missing_form" in form and not isinstance(exc, Conflict):
            reloaded = _reload(session, deal.id)
            return _action_error(page, session, deal.id, exc, "move", form,
                                 **_still_missing(session, reloaded, stage_id))
        return _action_error(page, session, deal.id, exc, "move", form)
    return _done(page, session, deal, page.gettext("Moved."))


@router.post("/deals/{deal_id:int}/win", name="deal_win_page")
def win(page: CurrentPage, session: DbSession, deal: CurrentDeal, form: Form) -> Response:
    """Close as won, optionally with the final amount."""
    try:
        amount = parse_field("amount", form_text(form, "amount"))
        data = validated(DealClose, {"version": form_version(form), "amount": amount,
                                      "note": form_text(form, "note") or None})
        deal_service.win_deal(session, _viewer(page), deal.id, data, source="web")
    except LoudouError as exc:
        return _action_error(page, session, deal.id, exc, "win", form)
    return _done(page, session, deal, page.gettext("Marked as won."))


def _close_with_reason(page: Page, session: Session, deal: Deal, form: FormData, form_name: str) -> Response:
    """Lose or disqualify: the service requires a reason of the right kind (C5, B2)."""
    try:
        data = validated(DealClose, {"version": form_version(form), "reason_id": form_int(form, "lost_reason_id"),
                                      "note": form_text(form, "note") or None})
        if form_name == "lose":
            deal_service.lose_deal(session, _viewer(page), deal.id, data, source="web")
        else:
            deal_service.disqualify_deal(session, _viewer(page), deal.id, data, source="web")
    except LoudouError as exc:
        return _action_error(page, session, deal.id, exc, form_name, form)
    return _done(page, session, deal, page.gettext("Marked as lost.") if form_name == "lose"
                 else page.gettext("Disqualified."))


@router.post("/deals/{deal_id:int}/lose", name="deal_lose_page")
def lose(page: CurrentPage, session: DbSession, deal: CurrentDeal, form: Form) -> Response:
    return _close_with_reason(page, session, deal, form, "lose")


@router.post("/deals/{deal_id:int}/disqualify", name="deal_disqualify_page")
def disqualify(page: CurrentPage, session: DbSession, deal: CurrentDeal, form: Form) -> Response:
    return _close_with_reason(page, session, deal, form, "disqualify")


@router.post("/deals/{deal_id:int}/reopen", name="deal_reopen_page")
def reopen(page: CurrentPage, session: DbSession, deal: CurrentDeal, form: Form) -> Response:
    """Reopen a closed deal into the stage it closed at, or a chosen one."""
    try:
        data = validated(DealReopen, {"version": form_version(form), "stage_id": form_int(form, "stage_id")})
        deal_service.reopen_deal(session, _viewer(page), deal.id, data, source="web")
    except LoudouError as exc:
        return _action_error(page, session, deal.id, exc, "reopen", form)
    return _done(page, session, deal, page.gettext("Reopened."))


# --------------------------------------------------------------------------- edit with optimistic locking


@router.post("/deals/{deal_id:int}/edit", name="deal_edit")
def edit(page: CurrentPage, session: DbSession, deal: CurrentDeal, form: Form) -> Response:
    """Save the deal's fields with the version the form was read at. A stale version shows
    both values per differing field and lets the user re-apply theirs."""
    names = [f for f in EDITABLE if f in form]
    mine = {name: str(form.get(name) or "") for name in names}
    try:
        parsed = parse_fields(form, names)
        changes = {k: v for k, v in parsed.items() if v != getattr(deal, k)}
        data = validated(DealUpdate, {"version": form_version(form), **changes})
        deal_service.update_deal(session, _viewer(page), deal.id, data, source="web")
    except Conflict:
        deal = _reload(session, deal.id)
        try:
            base = {str(k): str(v) for k, v in json.loads(str(form.get("base") or "{}")).items()}
        except (ValueError, AttributeError):
            base = {}
        values = _context(session, page, deal, edit=True)
        view: DealView = values["v"]
        mine_ids = {n: int(mine[n]) for n in ("company_id", "contact_id", "owner_id") if mine.get(n, "").isdigit()}
        viewer = _viewer(page)
        view.companies.update(dq.visible_names(session, viewer, Company, [mine_ids.get("company_id")]))
        view.contacts.update(dq.visible_names(session, viewer, Contact, [mine_ids.get("contact_id")]))
        view.users.update(dq.user_names(session, [mine_ids.get("owner_id")]))
        values["conflict"] = conflict_rows(view, names, mine, base, form_values(deal))
        return _page(page, values, status_code=409)
    except LoudouError as exc:
        return _action_error(page, session, deal.id, exc, "edit", form, edit=True)
    return _done(page, session, deal, page.gettext("Saved."))

