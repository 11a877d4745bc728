"""The pipeline board (PRODUCT A1, A4, D1): one column per open stage, cards that move by
drag and drop or by a keyboard-friendly "move to…" select, and a dialog that asks for
exactly what a stage requires before a deal may enter it.

Every answer works without JavaScript first (plain GET filters, a POST form per card and
a full-page stage form); HTMX requests get fragments: the moved card, out-of-band column
totals and toasts, or the stage dialog (422, retargeted to ``#board-dialog``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import urlencode

import pydantic
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from loudou.auth.models import User
from loudou.db import utcnow
from loudou.deal import board_queries
from loudou.deal import queries as deal_queries
from loudou.deal import service as deal_service
from loudou.deal.board_queries import BoardFilters, BoardSort
from loudou.deal.schemas import DealFields, DealMove
from loudou.errors import Conflict, MissingForStage, NotFound, ValidationFailed
from loudou.pipeline import queries as pipeline_queries
from loudou.pipeline.models import Pipeline, Stage
from loudou.web.deps import DbSession
from loudou.web.i18n import Formatter
from loudou.web.pages import CurrentPage
from loudou.web.templating import Page, is_htmx, render

router = APIRouter(include_in_schema=False)

#: Deal fields a stage may require, in the order the dialog asks for them.
DIALOG_FIELDS = ("title", "amount", "currency", "expected_close_date", "company_id", "contact_id", "channel_id",
                 "owner_id", "description")
ID_FIELDS = frozenset({"company_id", "contact_id", "channel_id", "owner_id"})


@functools.lru_cache(maxsize=32_768)
def _cached_money_short(locale: str, amount: Decimal, currency: str) -> str:
    # Babel's compact currency format costs ~80 µs a call, a third of a board's rendering;
    # the same amounts come back on every render of the board, so remember them.
    return Formatter(locale, None).money_short(amount, currency)


def _money_short(page: Page) -> Callable[[Decimal, str], str]:
    """``fmt.money_short`` for the cards, memoized per locale (time zone plays no part)."""
    return functools.partial(_cached_money_short, page.locale)


def _viewer(page: Page) -> User:
    assert page.user is not None  # CurrentPage signs everyone in
    return page.user


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed(f"{name} must be a whole number", field=name) from None


def parse_filters(params: Mapping[str, str]) -> BoardFilters:
    """Filters from the query string; empty values (a form's "all" choice) mean unset."""
    q = (params.get("q") or "").strip()[:200] or None
    try:
        sort = BoardSort(params.get("sort") or BoardSort.newest.value)
    except ValueError:
        sort = BoardSort.newest  # an unknown order from an old bookmark: the default one
    return BoardFilters(owner_id=_int_param(params, "owner_id"), team_id=_int_param(params, "team_id"),
                        channel_id=_int_param(params, "channel_id"), q=q, sort=sort)


def _qs(filters: BoardFilters, **extra: Any) -> str:
    params = filters.params() | {k: str(v) for k, v in extra.items() if v is not None}
    return ("?" + urlencode(params)) if params else ""


def _stages(session: Session, pipeline: Pipeline) -> list[Stage]:
    return pipeline_queries.list_stages(session, pipeline.id)


def _board_values(session: Session, page: Page, pipeline: Pipeline, filters: BoardFilters) -> dict[str, Any]:
    viewer = _viewer(page)
    now = utcnow()
    stages = _stages(session, pipeline)
    columns = board_queries.load_board(session, viewer, stages, filters, now)
    users = board_queries.list_users(session)
    return {
        "active_nav": "board",
        "pipeline": pipeline,
        "pipelines": pipeline_queries.list_pipelines(session),
        "stages": stages,
        "columns": columns,
        "total_count": sum(c.totals.count for c in columns),
        "total_amount": sum((c.totals.amount for c in columns), Decimal(0)),
        "filters": filters,
        "move_qs": _qs(filters, pipeline_id=pipeline.id),
        "money_short": _money_short(page),
        "users_by_id": {u.id: u for u in users},
        "owner_options": board_queries.owners_in_view(viewer, users),
        "team_options": board_queries.teams_in_view(viewer, board_queries.list_teams(session)),
        "channels": board_queries.list_channels(session),
        "sorts": [(BoardSort.newest.value, page.gettext("Newest in stage")),
                  (BoardSort.oldest.value, page.gettext("Longest in stage"))],
        "now": now,
    }


@router.get("/board", name="board_default", response_class=HTMLResponse)
def board_default(request: Request, page: CurrentPage, session: DbSession) -> Response:
    """The default pipeline's board; the filter form's pipeline choice redirects to the
    canonical, bookmarkable /board/{pipeline_id}?… address."""
    filters = parse_filters(request.query_params)
    chosen = _int_param(request.query_params, "pipeline_id")
    if chosen is not None:
        return RedirectResponse(f"/board/{chosen}{_qs(filters)}", status_code=303)
    pipeline = pipeline_queries.get_default_pipeline(session)
    if pipeline is None:
        raise NotFound("no pipeline yet: an admin creates one in the settings")
    return render(page, "deal/board.html", _board_values(session, page, pipeline, filters))


@router.get("/board/{pipeline_id}", name="board", response_class=HTMLResponse)
def board(request: Request, page: CurrentPage, session: DbSession, pipeline_id: int) -> Response:
    pipeline = pipeline_queries.get_pipeline(session, pipeline_id)
    if pipeline is None:
        raise NotFound(f"pipeline {pipeline_id} not found")
    return render(page, "deal/board.html", _board_values(session, page, pipeline, parse_filters(request.query_params)))


@router.get("/board/{pipeline_id}/column/{stage_id}", name="board_column", response_class=HTMLResponse)
def board_column(request: Request, page: CurrentPage, session: DbSession, pipeline_id: int, stage_id: int,
                 cursor: str) -> Response:
    """The next cards of one column (infinite scroll), appended to the column's list; the
    "load more" sentinel is replaced out of band, or removed after the last page."""
    stage = pipeline_queries.get_stage(session, stage_id)
    pipeline = pipeline_queries.get_pipeline(session, pipeline_id)
    if stage is None or pipeline is None or stage.pipeline_id != pipeline_id or not stage.is_active:
        raise NotFound(f"stage {stage_id} is not a stage of pipeline {pipeline_id}")
    filters = parse_filters(request.query_params)
    now = utcnow()
    cards, next_cursor = board_queries.load_column_page(session, _viewer(page), stage, filters, cursor, now)
    return render(page, "deal/_board_column_page.html", {
        "pipeline": pipeline, "stage": stage, "stages": _stages(session, pipeline), "cards": cards,
        "next_cursor": next_cursor, "filters": filters, "move_qs": _qs(filters, pipeline_id=pipeline.id),
        "users_by_id": {u.id: u for u in board_queries.list_users(session)}, "now": now,
        "money_short": _money_short(page),
    })


# Moving a deal ------------------------------------------------------------------------


class MoveForm(BaseModel):
    """The card's move form and the stage dialog's fields. Blank fields count as not given,
    so the dialog only sets what the user filled in."""

    model_config = ConfigDict(extra="ignore")

    stage_id: int
    version: int
    checklist: list[str] = Field(default_factory=list)
    dialog: str = ""  # set by the stage dialog: its errors re-render the dialog
    title: str = ""
    amount: str = ""
    currency: str = ""
    expected_close_date: str = ""
    company_id: str = ""
    contact_id: str = ""
    channel_id: str = ""
    owner_id: str = ""
    description: str = ""

    def raw(self) -> dict[str, str]:
        return {f: getattr(self, f) for f in DIALOG_FIELDS}


def _field_error(page: Page, name: str) -> str:
    messages = {
        "amount": page.gettext("Enter an amount of 0 or more, like 12000."),
        "expected_close_date": page.gettext("Enter a date."),
        "currency": page.gettext("Enter a 3-letter currency code such as CNY."),
        "title": page.gettext("Enter a title."),
    }
    if name in ID_FIELDS:
        return page.gettext("Choose one from the list.")
    return messages.get(name, page.gettext("Check this value."))


def _deal_fields(page: Page, form: MoveForm) -> tuple[DealFields | None, dict[str, str]]:
    """The fields filled in the dialog, parsed; errors name the field they belong to."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, raw in form.raw().items():
        text = raw.strip()
        if not text:
            continue
        if name in ID_FIELDS:
            if not text.isdigit():
                errors[name] = _field_error(page, name)
                continue
            values[name] = int(text)
        elif name == "amount":
            try:
                values[name] = Decimal(text.replace(",", "").replace("¥", "").replace(" ", ""))
            except InvalidOperation:
                errors[name] = _field_error(page, name)
        else:
            values[name] = raw if name == "description" else text
    try:
        fields = DealFields.model_validate(values) if values else None
    except pydantic.ValidationError as exc:
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "stage_id"
            errors.setdefault(name, _field_error(page, name))
        fields = None
    return fields, errors


@router.post("/board/deals/{deal_id}/move", name="board_move")
def deal_move(request: Request, page: CurrentPage, session: DbSession, deal_id: int,
              form: Annotated[MoveForm, Form()]) -> Response:
    """Move a deal to another open stage of its pipeline (drag and drop, the card's select,
    or the stage dialog). The query string carries the board's filters so the column
    totals sent back match the board the user is looking at."""
    viewer = _viewer(page)
    filters = parse_filters(request.query_params)
    board_id = _int_param(request.query_params, "pipeline_id")  # the board the move was made on
    fields, errors = _deal_fields(page, form)
    try:
        if errors:
            raise ValidationFailed("invalid input", field=next(iter(errors)))
        deal = deal_service.move_deal(session, viewer, deal_id, DealMove(
            stage_id=form.stage_id, version=form.version, fields=fields, checklist=form.checklist), source="web")
    except MissingForStage:
        # The service may have applied the dialog's fields before finding what is still
        # missing: roll them back, nothing is saved unless the whole move succeeds.
        session.rollback()
        return _stage_form(request, page, session, deal_id, form, filters, board_id, errors,
                           from_dialog=bool(form.dialog))
    except ValidationFailed as exc:
        session.rollback()
        if form.dialog:
            field = exc.field if exc.field in (*DIALOG_FIELDS, "checklist") else "stage_id"
            errors.setdefault(field, page.gettext("This deal cannot move to that stage.") if field == "stage_id"
                              else _field_error(page, field))
            return _stage_form(request, page, session, deal_id, form, filters, board_id, errors, from_dialog=True)
        if not is_htmx(request):
            raise
        return _toast_only(page, page.gettext("This deal cannot move to that stage."), 422)
    except Conflict as exc:
        session.rollback()
        if not is_htmx(request):
            raise
        message = (page.gettext("Someone else changed this deal meanwhile; it now shows their version.")
                   if "current_version" in exc.extra else
                   page.gettext("This deal is closed; reopen it before moving it."))
        return _move_result(page, session, deal_id, filters, board_id, message, ok=False, status_code=409)
    except NotFound:
        session.rollback()
        if not is_htmx(request):
            raise
        return _move_result(page, session, deal_id, filters, board_id,
                            page.gettext("This deal no longer exists or is no longer yours to see."),
                            ok=False, status_code=404)
    if not is_htmx(request):
        return RedirectResponse(f"/board/{board_id or deal.pipeline_id}{_qs(filters)}", status_code=303)
    stage = pipeline_queries.get_stage(session, deal.stage_id)
    return _move_result(page, session, deal_id, filters, board_id,
                        page.gettext("Moved to %(stage)s.", stage=page.name_of(stage)), ok=True)


def _toast_only(page: Page, message: str, status_code: int) -> Response:
    return render(page, "deal/_board_toast.html", {"message": message, "ok": False}, status_code=status_code,
                  headers={"HX-Reswap": "none"})


def _move_result(page: Page, session: Session, deal_id: int, filters: BoardFilters, board_id: int | None,
                 message: str, *, ok: bool, status_code: int = 200) -> Response:
    """The card as the server now has it (nothing if it left the board), the board's
    column totals out of band, the dialog closed and a toast."""
    viewer = _viewer(page)
    now = utcnow()
    deal = deal_queries.get_visible_deal(session, viewer, deal_id)
    if board_id is None and deal is not None:
        board_id = deal.pipeline_id
    pipeline = pipeline_queries.get_pipeline(session, board_id) if board_id is not None else None
    stages = _stages(session, pipeline) if pipeline is not None else []
    card = board_queries.load_card(session, viewer, deal_id, stages, now) if deal is not None else None
    if card is not None and card.stage_id not in {s.id for s in stages}:
        card = None  # closed, or on another pipeline's board now
    totals = board_queries.column_totals(session, viewer, stages, filters, now)
    return render(page, "deal/_board_move_result.html", {
        "card": card, "pipeline": pipeline, "stages": stages, "totals_by_stage": totals,
        "total_count": sum(t.count for t in totals.values()),
        "total_amount": sum((t.amount for t in totals.values()), Decimal(0)),
        "filters": filters, "move_qs": _qs(filters, pipeline_id=board_id), "message": message, "ok": ok,
        "now": now, "users_by_id": {u.id: u for u in board_queries.list_users(session)},
        "money_short": _money_short(page),
    }, status_code=status_code)


def _stage_form(request: Request, page: Page, session: Session, deal_id: int, form: MoveForm,
                filters: BoardFilters, board_id: int | None, errors: dict[str, str], *,
                from_dialog: bool) -> Response:
    """Ask for exactly what the target stage still needs: a <dialog> for HTMX (422,
    retargeted to #board-dialog), a full page without JavaScript."""
    viewer = _viewer(page)
    deal = deal_queries.get_visible_deal(session, viewer, deal_id)
    if deal is None:
        raise NotFound(f"deal {deal_id} not found")
    pipeline = pipeline_queries.get_pipeline(session, deal.pipeline_id)
    stage = pipeline_queries.get_stage(session, form.stage_id)
    if pipeline is None or stage is None or stage.pipeline_id != pipeline.id:
        raise ValidationFailed(f"stage {form.stage_id} is not a stage of this deal's pipeline", field="stage_id")
    missing_fields: list[str] = []
    missing_checklist: list[str] = []
    try:
        deal_service.enforce_stage_entry(pipeline, stage, deal)
    except MissingForStage as exc:
        missing_fields, missing_checklist = exc.extra["missing_fields"], exc.extra["missing_checklist"]
    if from_dialog:
        raw = form.raw()
        for name in missing_fields:
            if not raw.get(name, "").strip():
                errors.setdefault(name, page.gettext("Required to enter this stage."))
        if set(missing_checklist) - set(form.checklist):
            errors.setdefault("checklist", page.gettext("Confirm every item to enter this stage."))
    shown = [f for f in DIALOG_FIELDS if f in missing_fields or f in errors]
    values = form.raw() if from_dialog else {}
    selected_company = _as_int(values.get("company_id")) or deal.company_id
    context: dict[str, Any] = {
        "deal": deal, "stage": stage, "pipeline": pipeline, "fields": shown, "checklist_items": missing_checklist,
        "checked": set(form.checklist), "values": values, "errors": errors, "version": form.version,
        "general_error": errors.get("stage_id"), "filters": filters,
        "move_url": f"/board/deals/{deal.id}/move{_qs(filters, pipeline_id=board_id)}", "active_nav": "board",
        "board_id": board_id or pipeline.id,
        "company_name": board_queries.get_company_name(session, viewer, deal.company_id),
    }
    if "company_id" in shown:
        context["company_options"] = board_queries.list_company_options(
            session, viewer, include_id=_as_int(values.get("company_id")))
        context["option_limit"] = board_queries.OPTION_LIMIT
    if "contact_id" in shown:
        context["contacts_at"], context["contacts_other"] = board_queries.list_contact_options(
            session, viewer, selected_company)
        context["contacts_company"] = board_queries.get_company_name(session, viewer, selected_company)
    if "channel_id" in shown:
        context["channels"] = board_queries.list_channels(session)
    if "owner_id" in shown:
        context["owners"] = board_queries.owners_in_view(viewer, board_queries.list_users(session))
    if is_htmx(request):
        return render(page, "deal/_stage_dialog.html", context, status_code=422,
                      headers={"HX-Retarget": "#board-dialog", "HX-Reswap": "innerHTML"})
    return render(page, "deal/board_move.html", context, status_code=422)


def _as_int(value: str | None) -> int | None:
    text = (value or "").strip()
    return int(text) if text.isdigit() else None


# Dialog lookups ---------------------------------------------------------------------


@router.get("/board/options/companies", name="board_company_options", response_class=HTMLResponse)
def company_options(page: CurrentPage, session: DbSession, company_q: str = "", company_id: str = "") -> Response:
    """The dialog's company choices matching what was typed (searching keeps it usable
    with thousands of companies)."""
    options = board_queries.list_company_options(session, _viewer(page), company_q.strip()[:200] or None,
                                                 include_id=_as_int(company_id))
    return render(page, "deal/_board_company_options.html", {
        "company_options": options, "selected": _as_int(company_id), "option_limit": board_queries.OPTION_LIMIT})


@router.get("/board/options/contacts", name="board_contact_options", response_class=HTMLResponse)
def contact_options(page: CurrentPage, session: DbSession, deal_id: int, contact_q: str = "",
                    company_id: str = "") -> Response:
    """Contact choices, the chosen (or the deal's) company's contacts first."""
    viewer = _viewer(page)
    deal = deal_queries.get_visible_deal(session, viewer, deal_id)
    if deal is None:
        raise NotFound(f"deal {deal_id} not found")
    company = _as_int(company_id) or deal.company_id
    at, other = board_queries.list_contact_options(session, viewer, company, contact_q.strip()[:200] or None)
    return render(page, "deal/_board_contact_options.html", {
        "contacts_at": at, "contacts_other": other, "values": {},
        "contacts_company": board_queries.get_company_name(session, viewer, company)})
