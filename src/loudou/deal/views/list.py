"""The deal list (/deals): filters in the query string, saved views, keyset pages,
bulk edits, CSV/XLSX export; and the new-deal form (/deals/new).

This router is registered before the deal page's (/deals/{id}), so /deals/new,
/deals/bulk and /deals/export.* are never read as deal ids.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError

from loudou.auth.models import Role
from loudou.db import utcnow
from loudou.deal import bulk as deal_bulk
from loudou.deal import list_queries as lq
from loudou.deal.models import DealStatus
from loudou.deal.views.new import router as new_deal_router
from loudou.errors import ValidationFailed
from loudou.transfer import export
from loudou.web.deps import DbSession, get_db
from loudou.web.pages import CurrentPage
from loudou.web.templating import Page, is_htmx, render

router = APIRouter(include_in_schema=False)
router.include_router(new_deal_router)

TEMPLATE = "deal/list.html"
RESULTS_BLOCK = "results"
PAGE_ONLY = ("cursor", "before")


# ---------------------------------------------------------------- query string

def clean_params(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The filters a user set: empty form fields mean "any" and are dropped, so the
    plain GET form and hand-written bookmarks give the same URLs."""
    return {key: value.strip() for key, value in items if value.strip()}


def parse_filters(raw: Mapping[str, str]) -> lq.DealListFilters:
    try:
        return lq.DealListFilters.model_validate(dict(raw))
    except ValidationError as exc:
        errors = [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from exc


def url_with(raw: Mapping[str, str], path: str = "/deals", **changes: str | None) -> str:
    """``path`` with the current filters, minus the page position, plus ``changes``
    (None removes a parameter). Changing a filter or the sort starts at page one."""
    params = {k: v for k, v in raw.items() if k not in PAGE_ONLY}
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return path + ("?" + urlencode(params) if params else "")


# ---------------------------------------------------------------- view models

@dataclass(frozen=True)
class Header:
    label: str
    cls: str = ""
    url: str | None = None
    arrow: str = ""
    aria_sort: str | None = None


def _column_defs(_: Callable[[str], str]) -> tuple[tuple[str, str, str | None, bool, bool], ...]:
    """(label, css class, sort column, first click sorts descending, shown value inverted).
    "In stage" shows the age, so its ascending order is stage_entered_at descending."""
    return (
        (_("Title"), "col-title", "title", False, False),
        (_("Company"), "col-company", None, False, False),
        (_("Stage"), "col-stage", None, False, False),
        (_("Status"), "col-status", None, False, False),
        (_("Owner"), "col-owner", None, False, False),
        (_("Amount"), "col-amount num", "amount", True, False),
        (_("Expected close"), "col-date", "expected_close_date", False, False),
        (_("In stage"), "col-age num", "stage_entered_at", False, True),
        (_("Last activity"), "col-date col-activity", "last_activity_at", True, False),
        (_("Created"), "col-date col-created", "created_at", True, False),
    )


def _headers(page: Page, raw: Mapping[str, str], sort: Any) -> list[Header]:
    out = []
    for label, cls, column, first_desc, inverted in _column_defs(page.gettext):
        if column is None:
            out.append(Header(label, cls))
            continue
        active = sort.column == column
        descending = (not sort.descending) if active else first_desc
        url = url_with(raw, sort=("-" if descending else "") + column)
        shown_desc = sort.descending != inverted
        out.append(Header(label, cls, url, ("▼" if shown_desc else "▲") if active else "",
                          ("descending" if shown_desc else "ascending") if active else None))
    return out


@dataclass(frozen=True)
class RowView:
    id: int
    version: int
    title: str
    company_id: int | None
    company: str | None
    stage: str
    status: str
    owner: str | None
    amount: Decimal | None
    currency: str
    expected_close: dt.date | None
    age_days: int | None  # whole days in the current stage, open deals only
    rotting: bool
    expected_days: int | None
    last_activity: dt.datetime | None
    created_at: dt.datetime


def _rows(page: Page, rows: list[Any], ref: lq.Reference, companies: dict[int, str], now: dt.datetime
          ) -> list[RowView]:
    out = []
    for r in rows:
        stage = ref.stages.get(r.stage_id)
        owner = ref.users.get(r.owner_id) if r.owner_id is not None else None
        is_open = r.status == DealStatus.open
        in_stage = now - r.stage_entered_at
        expected_days = stage.expected_days if stage is not None else None
        out.append(RowView(
            id=r.id, version=r.version, title=r.title, company_id=r.company_id,
            company=companies.get(r.company_id) if r.company_id is not None else None,
            stage=page.name_of(stage), status=r.status.value, owner=owner.name if owner else None,
            amount=r.amount, currency=r.currency, expected_close=r.expected_close_date,
            age_days=max(0, in_stage.days) if is_open else None,
            # The same rule as the "rotting" view: entered before now - expected days.
            rotting=is_open and expected_days is not None and in_stage > dt.timedelta(days=expected_days),
            expected_days=expected_days, last_activity=r.last_activity_at, created_at=r.created_at,
        ))
    return out


def status_labels(page: Page) -> dict[str, str]:
    return {"open": page.gettext("Open"), "won": page.gettext("Won"), "lost": page.gettext("Lost"),
            "disqualified": page.gettext("Disqualified")}


def field_label(page: Page, name: str) -> str:
    """A deal field as forms name it (stages list required fields by column name)."""
    _ = page.gettext
    labels = {
        "title": _("Title"), "amount": _("Amount"), "currency": _("Currency"),
        "expected_close_date": _("Expected close"), "company_id": _("Company"), "contact_id": _("Contact"),
        "channel_id": _("Channel"), "owner_id": _("Owner"), "description": _("Description"),
        "stage_id": _("Stage"), "pipeline_id": _("Pipeline"),
    }
    return labels.get(name, name)


@dataclass(frozen=True)
class BulkView:
    """What the page says after a bulk action."""

    error: str | None = None
    summary: str | None = None
    details: str | None = None
    ok: bool = True
    problems: tuple[tuple[int, str | None, str], ...] = ()  # (deal id, title if visible, why)


def _bulk_view(page: Page, result: deal_bulk.BulkResult) -> BulkView:
    total, done = len(result.rows), result.count(deal_bulk.Outcome.done)
    if result.action == deal_bulk.BulkAction.reassign:
        summary = page.gettext("Reassigned %(done)s of %(total)s deals.", done=done, total=total)
    elif result.action == deal_bulk.BulkAction.move:
        summary = page.gettext("Moved %(done)s of %(total)s deals.", done=done, total=total)
    else:
        summary = page.gettext("Disqualified %(done)s of %(total)s deals.", done=done, total=total)
    outcome = deal_bulk.Outcome
    counts = [
        (outcome.needs_fields, page.gettext("%(n)s need fields", n=result.count(outcome.needs_fields))),
        (outcome.conflict, page.gettext("%(n)s conflicts", n=result.count(outcome.conflict))),
        (outcome.invalid, page.gettext("%(n)s not possible", n=result.count(outcome.invalid))),
        (outcome.not_found, page.gettext("%(n)s not found", n=result.count(outcome.not_found))),
    ]
    problems = []
    for row in result.problems:
        if row.outcome == deal_bulk.Outcome.needs_fields:
            missing = [field_label(page, f) for f in row.missing_fields] + row.missing_checklist
            why = page.gettext("Needs %(fields)s to enter this stage", fields=", ".join(missing))
        elif row.outcome == deal_bulk.Outcome.conflict:
            why = page.gettext("Changed by someone else, or already closed: reload and try again")
        elif row.outcome == deal_bulk.Outcome.invalid:
            why = page.gettext("Not possible for this deal (another pipeline, or already there)")
        else:
            why = page.gettext("Not found")
        problems.append((row.deal_id, row.title, why))
    return BulkView(summary=summary,
                    details=" · ".join(text for kind, text in counts if result.count(kind)) or None,
                    ok=done == total, problems=tuple(problems))


# ---------------------------------------------------------------- the page

def _list_values(page: Page, session: DbSession, raw: dict[str, str], *, bulk: BulkView | None = None
                 ) -> dict[str, Any]:
    assert page.user is not None
    viewer = page.user
    filters = parse_filters(raw)
    ref = lq.load_reference(session)
    now = utcnow()
    result = lq.fetch_page(session, viewer, filters, ref, tz=page.fmt.tz, now=now)
    companies = lq.company_names(session, (r.company_id for r in result.rows))
    rows = _rows(page, result.rows, ref, companies, now)
    set_filters = {k for k in raw if k not in (*PAGE_ONLY, "sort", "limit")}
    if result.total_capped:
        count_text = page.gettext("%(count)s+ deals", count=page.fmt.number(result.total))
    else:
        n = result.total or 0
        count_text = page.ngettext("%(count)s deal", "%(count)s deals", n, count=page.fmt.number(n))
    views = [
        ("", page.gettext("All deals")),
        (lq.SavedView.mine.value, page.gettext("My open deals")),
        (lq.SavedView.rotting.value, page.gettext("Rotting")),
        (lq.SavedView.closing.value, page.gettext("Closing this month")),
    ]
    current_view = filters.view.value if filters.view else ""
    return {
        "active_nav": "deals",
        "raw": raw,
        "filters": filters,
        "effective_status": "open" if filters.view else (filters.status.value if filters.status else ""),
        "has_filters": bool(set_filters),
        "more_filters_open": bool(set_filters & {"pipeline_id", "team_id", "channel_id", "company_id",
                                                 "created_from", "created_to", "closed_from", "closed_to",
                                                 "close_from", "close_to", "amount_min", "amount_max"}),
        "quick_views": [{"key": key or "all", "label": label,
                         "url": "/deals" + (f"?view={key}" if key else ""),
                         "active": key == current_view and (key != "" or not set_filters)}
                        for key, label in views],
        "rows": rows,
        "headers": _headers(page, raw, result.sort),
        "sort_value": "" if raw.get("sort", lq.DEFAULT_SORT) == lq.DEFAULT_SORT else raw["sort"],
        "next_url": url_with(raw, cursor=result.next_cursor) if result.next_cursor else None,
        "prev_url": url_with(raw, before=result.prev_cursor) if result.prev_cursor else None,
        "first_url": url_with(raw) if (filters.cursor or filters.before) else None,
        "count_text": count_text,
        "count_capped": result.total_capped,
        "export_csv": url_with(raw, "/deals/export.csv"),
        "export_xlsx": url_with(raw, "/deals/export.xlsx"),
        "export_max": page.fmt.number(lq.EXPORT_MAX_ROWS),
        "back": urlencode(raw),
        "ref": ref,
        "pipelines": list(ref.pipelines.values()),
        "stages": ref.stages_of(),
        "channels": [c for c in ref.channels.values() if c.is_active],
        "teams": sorted(ref.teams.values(), key=lambda t: t.name) if viewer.role == Role.admin else [],
        "owners": lq.filterable_owners(viewer, ref) if viewer.role != Role.rep else [],
        "assignable": lq.assignable_owners(viewer, ref) if viewer.role != Role.rep else [],
        "reasons": [r for r in ref.reasons.values() if r.kind == "disqualify" and r.is_active],
        "company_name": lq.visible_company_name(session, viewer, filters.company_id),
        "contact_name": (lq.contact_name(session, viewer, filters.contact_id)
                         if filters.contact_id is not None else None),
        "without_contact_url": url_with(raw, contact_id=None),
        "drill_notes": _drill_notes(page, session, raw, filters, ref),
        "statuses": status_labels(page),
        "sort_options": _sort_options(page),
        "bulk": bulk,
    }


def _drill_notes(page: Page, session: DbSession, raw: dict[str, str], filters: lq.DealListFilters,
                 ref: lq.Reference) -> list[dict[str, str]]:
    """Filters a report's drill-down sets that the filter bar has no control for: each is
    named, kept as a hidden field when other filters change, and can be removed."""
    from loudou.product.models import Product

    notes = []
    if filters.reached_stage_id is not None:
        stage = ref.stages.get(filters.reached_stage_id)
        notes.append(("reached_stage_id", page.gettext("Reached stage: %(name)s",
                                                        name=page.name_of(stage) or f"#{filters.reached_stage_id}")))
    if filters.lost_reason_id is not None:
        reason = ref.reasons.get(filters.lost_reason_id)
        notes.append(("lost_reason_id", page.gettext("Reason: %(name)s",
                                                      name=page.name_of(reason) or f"#{filters.lost_reason_id}")))
    if filters.product_id is not None:
        product = session.get(Product, filters.product_id)
        notes.append(("product_id", page.gettext("Product: %(name)s",
                                                  name=product.name if product else f"#{filters.product_id}")))
    if filters.industry is not None:
        notes.append(("industry", page.gettext("Segment: %(name)s", name=filters.industry)))
    return [{"field": field, "value": raw.get(field, ""), "label": label,
             "remove": url_with(raw, "/deals", **{field: None})} for field, label in notes]


def _sort_options(page: Page) -> list[tuple[str, str]]:
    """The sort choices as a select, for phones (no column headers there) and keyboards."""
    return [
        ("", page.gettext("Newest first")),  # the default (-id): left out of URLs
        ("-created_at", page.gettext("Created, newest first")),
        ("created_at", page.gettext("Created, oldest first")),
        ("-amount", page.gettext("Amount, largest first")),
        ("amount", page.gettext("Amount, smallest first")),
        ("expected_close_date", page.gettext("Expected close, soonest first")),
        ("stage_entered_at", page.gettext("Longest in stage first")),
        ("-last_activity_at", page.gettext("Last activity, most recent first")),
        ("last_activity_at", page.gettext("Last activity, oldest first")),
        ("title", page.gettext("Title, A to Z")),
    ]


def _wants_results_block(request: Request) -> bool:
    return is_htmx(request) and request.headers.get("hx-target") == "deal-results"


@router.get("/deals", name="deal_list_page")
def deal_list(request: Request, page: CurrentPage, session: DbSession) -> Response:
    """Deals the viewer may see. Every filter, the sort and the page position live in
    the query string, so any view can be bookmarked or shared."""
    raw = clean_params(request.query_params.multi_items())
    values = _list_values(page, session, raw)
    return render(page, TEMPLATE, values, block=RESULTS_BLOCK if _wants_results_block(request) else None)


def _targets(ids: list[str]) -> list[deal_bulk.Target]:
    """Row checkboxes carry "id:version": the version listed, so a deal changed since
    then is reported as a conflict instead of being overwritten."""
    out = []
    for value in ids:
        deal_id, _, version = value.partition(":")
        if not (deal_id.isdigit() and version.isdigit()):
            raise ValidationFailed(f"invalid deal reference {value!r}", field="ids")
        out.append((int(deal_id), int(version)))
    return out


def _optional_int(value: str, field: str) -> int:
    if not value.strip().isdigit():
        raise ValidationFailed(f"{field} is required", field=field)
    return int(value)


@router.post("/deals/bulk", name="deal_bulk")
def bulk_action(
    request: Request,
    page: CurrentPage,
    session: DbSession,
    action: Annotated[str, Form()] = "",
    ids: Annotated[list[str] | None, Form()] = None,
    owner_id: Annotated[str, Form()] = "",
    stage_id: Annotated[str, Form()] = "",
    reason_id: Annotated[str, Form()] = "",
    note: Annotated[str, Form(max_length=5000)] = "",
    back: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Reassign, move or disqualify the selected deals; see deal.bulk for the rule. The
    answer is the list again (same filters and page) with every row's outcome."""
    assert page.user is not None
    viewer = page.user
    status = 200
    view: BulkView
    try:
        targets = _targets(ids or [])
        if action == deal_bulk.BulkAction.reassign:
            result = deal_bulk.reassign_deals(session, viewer, targets, _optional_int(owner_id, "owner_id"))
        elif action == deal_bulk.BulkAction.move:
            result = deal_bulk.move_deals(session, viewer, targets, _optional_int(stage_id, "stage_id"))
        elif action == deal_bulk.BulkAction.disqualify:
            result = deal_bulk.disqualify_deals(session, viewer, targets, _optional_int(reason_id, "reason_id"),
                                                note.strip() or None)
        else:
            raise ValidationFailed("unknown bulk action", field="action")
        view = _bulk_view(page, result)
    except ValidationFailed as exc:
        status = 422
        view = BulkView(error=_bulk_error(page, exc), ok=False)
    raw = clean_params(parse_qsl(back, keep_blank_values=False))
    values = _list_values(page, session, raw, bulk=view)
    block = RESULTS_BLOCK if is_htmx(request) else None
    return render(page, TEMPLATE, values, block=block, status_code=status)


def _bulk_error(page: Page, exc: ValidationFailed) -> str:
    messages = {
        "ids": page.gettext("Select at least one deal (at most 500)."),
        "owner_id": page.gettext("Choose an owner you may assign deals to."),
        "stage_id": page.gettext("Choose a stage to move the deals to."),
        "reason_id": page.gettext("Choose a reason to disqualify the deals."),
    }
    return messages.get(exc.field or "", page.gettext("Choose what to do with the selected deals."))


# ---------------------------------------------------------------- export

def _export_columns(page: Page) -> list[export.Column]:
    k = export.ColumnKind
    return [
        export.Column("ID", k.integer, 9),
        export.Column(page.gettext("Title"), width=36),
        export.Column(page.gettext("Company"), width=28),
        export.Column(page.gettext("Pipeline")),
        export.Column(page.gettext("Stage")),
        export.Column(page.gettext("Status"), width=12),
        export.Column(page.gettext("Owner"), width=14),
        export.Column(page.gettext("Team"), width=14),
        export.Column(page.gettext("Channel"), width=16),
        export.Column(page.gettext("Amount"), k.number),
        export.Column(page.gettext("Currency"), width=9),
        export.Column(page.gettext("Expected close"), k.date),
        export.Column(page.gettext("Created"), k.datetime),
        export.Column(page.gettext("Entered stage"), k.datetime),
        export.Column(page.gettext("Closed"), k.datetime),
        export.Column(page.gettext("Last activity"), k.datetime),
        export.Column(page.gettext("Activities"), k.integer),
        export.Column(page.gettext("Reason")),
    ]


def _export(request: Request, page: CurrentPage, session: DbSession, fmt: str) -> Response:
    """The current filter's deals, in the list's order, at most EXPORT_MAX_ROWS: through
    the same scoped statement as the page, so a rep exports only their own deals."""
    assert page.user is not None
    viewer = page.user
    filters = parse_filters(clean_params(request.query_params.multi_items()))
    ref = lq.load_reference(session)
    plan = lq.plan_export(session, viewer, filters, ref, tz=page.fmt.tz, now=utcnow())
    statuses = status_labels(page)
    db = get_db(request)

    def rows() -> Iterator[list[Any]]:
        if plan is None:
            return
        # The request's session is closed before a streamed body is sent: the export
        # reads on its own connection, in one transaction (one consistent snapshot).
        with db.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                for r, companies in lq.iter_export(conn, plan):
                    owner = ref.users.get(r.owner_id) if r.owner_id is not None else None
                    team = ref.teams.get(r.team_id) if r.team_id is not None else None
                    channel = ref.channels.get(r.channel_id) if r.channel_id is not None else None
                    reason = ref.reasons.get(r.lost_reason_id) if r.lost_reason_id is not None else None
                    yield [r.id, r.title, companies.get(r.company_id) if r.company_id else None,
                           page.name_of(ref.pipelines.get(r.pipeline_id)), page.name_of(ref.stages.get(r.stage_id)),
                           statuses[r.status.value], owner.name if owner else None, team.name if team else None,
                           page.name_of(channel) or None, r.amount, r.currency, r.expected_close_date,
                           r.created_at, r.stage_entered_at, r.closed_at, r.last_activity_at, r.activity_count,
                           page.name_of(reason) or None]

    truncated = plan is not None and plan.truncated
    stem = page.gettext("deals") + "-" + page.fmt.today().strftime("%Y%m%d")
    if truncated:
        stem += f"-first-{lq.EXPORT_MAX_ROWS}"
    columns = _export_columns(page)
    headers = {"Cache-Control": "no-store"}
    if truncated:
        headers["X-Export-Truncated"] = str(lq.EXPORT_MAX_ROWS)
    if fmt == "csv":
        chunks = export.csv_chunks(columns, rows(), tz=page.fmt.tz)
        media = export.CSV_MEDIA_TYPE
    else:
        notes = [page.gettext("Only the first %(count)s deals are exported; narrow the filters to get the rest.",
                              count=page.fmt.number(lq.EXPORT_MAX_ROWS))] if truncated else []
        notes.append(page.gettext("Times are in the time zone %(zone)s.", zone=str(page.fmt.tz)))
        chunks = export.xlsx_chunks(columns, rows(), sheet_title=page.gettext("Deals"), tz=page.fmt.tz,
                                    notes=notes)
        media = export.XLSX_MEDIA_TYPE
    headers["Content-Disposition"] = export.content_disposition(f"{stem}.{fmt}")
    return StreamingResponse(chunks, media_type=media, headers=headers)


@router.get("/deals/export.csv", name="deal_export_csv")
def export_csv(request: Request, page: CurrentPage, session: DbSession) -> Response:
    return _export(request, page, session, "csv")


@router.get("/deals/export.xlsx", name="deal_export_xlsx")
def export_xlsx(request: Request, page: CurrentPage, session: DbSession) -> Response:
    return _export(request, page, session, "xlsx")

