"""What the company and contact pages share: filter parsing, people and teams for
labels and choices, phone and website display, and turning service errors into
messages at the named form field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode

import phonenumbers
import sqlalchemy as sa
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from loudou.auth import policy
from loudou.auth.models import Role, Team, User
from loudou.errors import ValidationFailed
from loudou.normalize import normalize_email, normalize_phone
from loudou.pipeline.models import Stage
from loudou.web.templating import Page

M = TypeVar("M", bound=BaseModel)


def viewer_of(page: Page) -> User:
    assert page.user is not None, "CurrentPage always has a user"
    return page.user


def parse_filters(request: Request, model: type[M]) -> M:
    """Query string → ``model``; empty fields of a submitted filter form mean "any"."""
    raw = {k: v for k, v in request.query_params.items() if v.strip() != ""}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from exc


def page_url(path: str, params: Mapping[str, Any], **changes: Any) -> str:
    """``path`` with the current filters plus ``changes`` (None drops a parameter)."""
    merged = {k: v for k, v in {**params, **changes}.items() if v not in (None, "")}
    return path + ("?" + urlencode(merged) if merged else "")


# --------------------------------------------------------------------------- people


def users_by_id(session: Session) -> dict[int, User]:
    """Every user (a few hundred at most): owners' names in lists and choices."""
    return {u.id: u for u in session.scalars(sa.select(User).order_by(User.name, User.id))}


def teams_by_id(session: Session) -> dict[int, Team]:
    return {t.id: t for t in session.scalars(sa.select(Team).order_by(Team.name))}


def stages_by_id(session: Session) -> dict[int, Stage]:
    """Every stage (reference data, a few dozen rows): a deal's stage name."""
    return {s.id: s for s in session.scalars(sa.select(Stage))}


def assignable_owners(viewer: User, users: Mapping[int, User]) -> list[User]:
    """Who the viewer may make owner of a record, as the policy decides it."""
    out = []
    for user in users.values():
        if not user.is_active:
            continue
        try:
            policy.assignable_owner(viewer, user)
        except ValidationFailed:
            continue
        out.append(user)
    return out


def owner_filter_choices(viewer: User, users: Mapping[int, User]) -> list[User]:
    """Owners worth filtering by: none for a rep (they see only their own records), the
    team for a manager, everyone for an admin."""
    if viewer.role == Role.rep:
        return []
    if viewer.role == Role.admin:
        return list(users.values())
    return [u for u in users.values() if u.team_id == viewer.team_id or u.id == viewer.id]


# --------------------------------------------------------------------------- display


def format_phone(e164: str | None, locale: str) -> str:
    """Chinese numbers in the national format for Chinese readers (138 1234 5678,
    027 7356 7171), every other number in the international one."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    style = (phonenumbers.PhoneNumberFormat.NATIONAL if locale == "zh-CN" and number.country_code == 86
             else phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return phonenumbers.format_number(number, style)


_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def website_url(website: str | None) -> str | None:
    """A safe link for a typed website: http(s) as typed, a bare domain as https, and no
    link at all for anything else (javascript:, data: …)."""
    if not website or not website.strip():
        return None
    text = website.strip()
    if _SCHEME.match(text):
        return text if text.lower().startswith(("http://", "https://")) else None
    if " " in text or text.startswith(("/", "\\")):
        return None
    return "https://" + text


def display_helpers(page: Page) -> dict[str, Any]:
    return {"phone": lambda value: format_phone(value, page.locale), "website_url": website_url}


# --------------------------------------------------------------------------- form errors


def blank_to_none(values: Mapping[str, str]) -> dict[str, str | None]:
    return {k: (v.strip() or None) for k, v in values.items()}


def parse_id(value: str | None, field: str) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise ValidationFailed(f"{field}: not a number", field=field) from exc


def field_messages(page: Page) -> dict[str, str]:
    """The message shown at a field the service refused, in the page's language."""
    _ = page.gettext
    return {
        "name": _("Required"),
        "phone": _("Not a phone number. Type it as you would dial it, e.g. 138 1234 5678 or +1 617 555 0123."),
        "email": _("Not a valid e-mail address."),
        "owner_id": _("You may not make this user the owner."),
        "company_id": _("No such company."),
        "website": _("Too long."),
        "version": _("This form is incomplete; reload the page and try again."),
    }


def errors_from_validation(page: Page, exc: ValidationError) -> dict[str, str]:
    """Pydantic's errors → {field: message}, one per field."""
    out: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        field = str(error["loc"][0]) if error["loc"] else "form"
        if field in out:
            continue
        if error["type"] == "string_too_long":
            out[field] = page.gettext("At most %(count)s characters.", count=error.get("ctx", {}).get("max_length"))
        elif error["type"] in ("missing", "string_too_short"):
            out[field] = page.gettext("Required")
        else:
            out[field] = str(error["msg"])
    return out


def comparable(field: str, value: str) -> str:
    """A typed value in the form it is saved in, to tell real differences from formatting."""
    text = value.strip()
    try:
        if field == "phone":
            return normalize_phone(text) or ""
        if field == "email":
            return normalize_email(text) or ""
    except ValidationFailed:
        return text
    return text


def conflict_rows(page: Page, labels: Mapping[str, str], mine: Mapping[str, str], saved: Mapping[str, str],
                  users: Mapping[int, User]) -> list[tuple[str, str, str]]:
    """(label, typed value, saved value) of every field where the user's stale form and
    the saved record differ, values shown as the pages show them."""

    def user_label(value: str) -> str:
        user = users.get(int(value)) if value.isdigit() else None
        return user.name if user else value

    rows = []
    for field, label in labels.items():
        typed, current = (mine.get(field) or "").strip(), saved.get(field) or ""
        if field == "owner_id":
            if typed and typed != current:  # reps have no owner field: nothing typed
                rows.append((label, user_label(typed), user_label(current)))
        elif comparable(field, typed) != current:
            rows.append((label, typed, format_phone(current, page.locale) if field == "phone" else current))
    return rows


def error_from_service(page: Page, exc: ValidationFailed) -> dict[str, str]:
    field = exc.field or "form"
    return {field: field_messages(page).get(field, exc.detail)}
