"""Settings › lost reasons (PRODUCT.md C5, B2) and channels with their monthly spend (C1
CAC, C9). Reasons and channels are never deleted, only retired: closed deals and past
spend keep pointing at them, and the analytics read that history."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.orm import Session

from loudou.channel import service as channel_service
from loudou.channel.schemas import ChannelCreate, ChannelUpdate, SpendSet
from loudou.errors import NotFound
from loudou.pipeline import service as pipeline_service
from loudou.settings import queries as sq
from loudou.settings.forms import (
    Form,
    FormRefused,
    FormState,
    attempt,
    checked,
    join_sentences,
    optional_text,
    redirect,
    show,
    submitted,
    text,
    validated,
    viewer,
)
from loudou.web.deps import DbSession
from loudou.web.pages import AdminPage
from loudou.web.templating import Page

router = APIRouter(include_in_schema=False)

#: Channel kinds offered in the form (others already stored stay selectable).
CHANNEL_KINDS = ("web", "event", "referral", "outbound", "social", "partner", "email", "manual", "import")
SPEND_MONTHS = 12
SPEND_MAX = Decimal("999999999999.99")


def _labels(page: Page) -> dict[str, str]:
    return {"name": page.gettext("Name"), "name_en": page.gettext("English name"), "kind": page.gettext("Kind"),
            "form": page.gettext("Form")}


# --------------------------------------------------------------------------- lost reasons


def _reasons_page(page: Page, session: Session, state: FormState | None = None, status_code: int = 200) -> Response:
    reasons = sq.all_lost_reasons(session)
    return show(page, "settings/lost_reasons.html", {
        "groups": [(kind, [r for r in reasons if r.kind == kind]) for kind in pipeline_service.LOST_REASON_KINDS],
        "state": state or FormState(),
    }, section="lost-reasons", status_code=status_code)


def _reason_messages(page: Page) -> dict[str, str]:
    return {"name": page.gettext("Another reason of this kind already has this name."),
            "name_en": page.gettext("Another reason of this kind already has this name."),
            "conflict": page.gettext("This is the last active reason of its kind: closing a deal needs one. "
                                     "Add another reason first.")}


@router.get("/settings/lost-reasons", name="settings_lost_reasons")
def lost_reasons(page: AdminPage, session: DbSession) -> Response:
    return _reasons_page(page, session)


@router.post("/settings/lost-reasons", name="settings_lost_reason_create")
def create_reason(page: AdminPage, session: DbSession, form: Form) -> Response:
    kind = text(form, "kind")
    if kind not in pipeline_service.LOST_REASON_KINDS:
        raise NotFound(f"unknown reason kind {kind!r}")
    form_id = f"add-{kind}"
    try:
        attempt(session, page, form_id, form, _labels(page), lambda: pipeline_service.create_lost_reason(
            session, viewer(page), name=text(form, "name"), name_en=optional_text(form, "name_en"), kind=kind,
            source="web"), _reason_messages(page))
    except FormRefused as refused:
        return _reasons_page(page, session, refused.state, refused.status_code)
    return redirect(page, f"/settings/lost-reasons?saved=reason#{kind}")


@router.post("/settings/lost-reasons/{reason_id:int}", name="settings_lost_reason_update")
def rename_reason(page: AdminPage, session: DbSession, form: Form, reason_id: int) -> Response:
    form_id = f"reason-{reason_id}"
    try:
        reason = attempt(session, page, form_id, form, _labels(page), lambda: pipeline_service.update_lost_reason(
            session, viewer(page), reason_id, name=text(form, "name"), name_en=optional_text(form, "name_en"),
            source="web"), _reason_messages(page))
    except FormRefused as refused:
        return _reasons_page(page, session, refused.state, refused.status_code)
    return redirect(page, f"/settings/lost-reasons?saved=reason#{reason.kind}")


@router.post("/settings/lost-reasons/{reason_id:int}/active", name="settings_lost_reason_active")
def set_reason_active(page: AdminPage, session: DbSession, form: Form, reason_id: int) -> Response:
    form_id = f"reason-{reason_id}"
    try:
        reason = attempt(session, page, form_id, form, _labels(page), lambda: pipeline_service.update_lost_reason(
            session, viewer(page), reason_id, is_active=checked(form, "active"), source="web"),
            _reason_messages(page))
    except FormRefused as refused:
        return _reasons_page(page, session, refused.state, refused.status_code)
    return redirect(page, f"/settings/lost-reasons?saved=reason#{reason.kind}")


# --------------------------------------------------------------------------- channels and spend


def _months(today: dt.date) -> list[dt.date]:
    """The first days of the last SPEND_MONTHS months, oldest first, this month last."""
    months = [today.replace(day=1)]
    while len(months) < SPEND_MONTHS:
        months.append((months[-1] - dt.timedelta(days=1)).replace(day=1))
    return months[::-1]


def _channels_page(page: Page, session: Session, state: FormState | None = None,
                   status_code: int = 200) -> Response:
    channels = sq.all_channels(session)
    months = _months(page.fmt.today())
    spend = sq.spend_grid(session, months[0])
    totals = {c.id: sum((spend[(c.id, m)][0] for m in months if (c.id, m) in spend), Decimal(0)) for c in channels}
    kinds = list(CHANNEL_KINDS) + sorted({c.kind for c in channels} - set(CHANNEL_KINDS))
    return show(page, "settings/channels.html", {
        "channels": channels, "months": months, "spend": spend, "totals": totals, "kinds": kinds,
        "state": state or FormState(),
    }, section="channels", status_code=status_code)


def _channel_messages(page: Page) -> dict[str, str]:
    return {"name": page.gettext("Another channel already has this name.")}


@router.get("/settings/channels", name="settings_channels")
def channels(page: AdminPage, session: DbSession) -> Response:
    return _channels_page(page, session)


def _channel_values(form: Form) -> dict[str, Any]:
    return {"name": text(form, "name"), "name_en": optional_text(form, "name_en"),
            "kind": text(form, "kind") or "manual"}


@router.post("/settings/channels", name="settings_channel_create")
def create_channel(page: AdminPage, session: DbSession, form: Form) -> Response:
    labels = _labels(page)
    try:
        data = validated(page, "add-channel", ChannelCreate, _channel_values(form), form, labels)
        attempt(session, page, "add-channel", form, labels,
                lambda: channel_service.create_channel(session, viewer(page), data), _channel_messages(page))
    except FormRefused as refused:
        return _channels_page(page, session, refused.state, refused.status_code)
    return redirect(page, "/settings/channels?saved=channel")


@router.post("/settings/channels/{channel_id:int}", name="settings_channel_update")
def update_channel(page: AdminPage, session: DbSession, form: Form, channel_id: int) -> Response:
    labels = _labels(page)
    form_id = f"channel-{channel_id}"
    try:
        data = validated(page, form_id, ChannelUpdate, _channel_values(form), form, labels)
        attempt(session, page, form_id, form, labels,
                lambda: channel_service.update_channel(session, viewer(page), channel_id, data),
                _channel_messages(page))
    except FormRefused as refused:
        return _channels_page(page, session, refused.state, refused.status_code)
    return redirect(page, "/settings/channels?saved=channel")


@router.post("/settings/channels/{channel_id:int}/active", name="settings_channel_active")
def set_channel_active(page: AdminPage, session: DbSession, form: Form, channel_id: int) -> Response:
    """A retired channel is no longer offered for new deals; its deals and spend stay."""
    channel_service.update_channel(session, viewer(page), channel_id,
                                   ChannelUpdate(is_active=checked(form, "active")))
    return redirect(page, "/settings/channels?saved=channel")


def _parse_amount(raw: str) -> Decimal | None:
    """Spend as typed: digits with an optional decimal point; thousands separators and a
    currency sign are forgiven, since people paste from spreadsheets."""
    cleaned = raw.replace(",", "").replace("，", "").replace("¥", "").replace("￥", "").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0 or value > SPEND_MAX or value != value.quantize(Decimal("0.01")):
        return None
    return value.quantize(Decimal("0.01"))


@router.post("/settings/channels/spend", name="settings_channel_spend")
def save_spend(page: AdminPage, session: DbSession, form: Form) -> Response:
    """The whole grid in one post; only changed cells are written (each through
    channel_service.set_spend, audited). Every cell is checked before any is written.
    An emptied cell that held an amount records 0: spend rows are never deleted, CAC
    needs to know a month cost nothing."""
    months = _months(page.fmt.today())
    channels = {c.id: c for c in sq.all_channels(session)}
    stored = sq.spend_grid(session, months[0])
    writes: list[tuple[int, SpendSet]] = []
    errors: dict[str, str] = {}
    for channel_id, channel in channels.items():
        for month in months:
            name = f"spend-{channel_id}-{month:%Y-%m}"
            if name not in form:
                continue
            raw = text(form, name)
            before = stored.get((channel_id, month))
            if not raw and before is None:
                continue
            amount = _parse_amount(raw) if raw else Decimal("0.00")
            if amount is None:
                label = month.strftime("%Y-%m")
                errors[name] = page.gettext("%(channel)s, %(month)s: enter an amount such as 12000 or 12000.50.",
                                            channel=page.name_of(channel), month=label)
                continue
            if before is None or before[0] != amount:
                currency = before[1] if before is not None else "CNY"
                writes.append((channel_id, SpendSet(month=month, amount=amount, currency=currency)))
    if errors:
        state = FormState("spend", submitted(form), errors,
                          page.gettext("Nothing was saved. Please check: %(fields)s",
                                       fields=join_sentences(page, list(errors.values()))))
        return _channels_page(page, session, state, 422)
    for channel_id, data in writes:
        channel_service.set_spend(session, viewer(page), channel_id, data)
    return redirect(page, "/settings/channels?saved=spend#spend")

