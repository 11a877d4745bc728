"""Form plumbing shared by the settings pages.

Policy (as on the deal page): every form works without JavaScript — a successful POST
answers 303 back to its page with a ``saved`` notice; a refused one re-renders the page
with the form refilled, the offending field marked and named, and a real status code
(422 invalid input, 409 someone else's change or a state that forbids it). The session
is rolled back first, so nothing half-applied is committed by the request scope.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from loudou.auth.models import User
from loudou.errors import Conflict, LoudouError, ValidationFailed
from loudou.web.templating import Page, is_htmx, render

M = TypeVar("M", bound=BaseModel)


async def _form(request: Request) -> FormData:
    # Starlette caches the parsed form: the CSRF check in AdminPage has read it already.
    return await request.form()


Form = Annotated[FormData, Depends(_form)]


@dataclass
class FormState:
    """Which form failed, what was typed, and what is wrong with it (field → message)."""

    form: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    alert: str | None = None

    def value(self, form: str, name: str, default: Any = "") -> Any:
        return self.values.get(name, default) if self.form == form else default

    def error(self, form: str, name: str) -> str | None:
        return self.errors.get(name) if self.form == form else None


class FormRefused(Exception):
    """Raised by a settings handler to re-render its page with the form's errors."""

    def __init__(self, state: FormState, status_code: int) -> None:
        super().__init__(state.alert or "form refused")
        self.state = state
        self.status_code = status_code


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def optional_text(form: FormData, name: str) -> str | None:
    return text(form, name) or None


def checked(form: FormData, name: str) -> bool:
    return text(form, name) in ("1", "on", "true", "yes")


def submitted(form: FormData) -> dict[str, Any]:
    """What the user typed (lists for repeated fields such as checkboxes)."""
    out: dict[str, Any] = {}
    for key in form:
        if key == "csrf_token":
            continue
        values = [v for v in form.getlist(key) if isinstance(v, str)]
        out[key] = values if len(values) > 1 or key.endswith("[]") else (values[0] if values else "")
    return out


def _pydantic_message(page: Page, error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind in ("missing", "string_too_short"):
        return page.gettext("Required.")
    if kind == "string_too_long":
        return page.gettext("At most %(max)s characters.", max=ctx.get("max_length", "?"))
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return page.gettext("Enter a whole number.")
    if kind == "greater_than_equal":
        return page.gettext("Must be at least %(min)s.", min=ctx.get("ge", "?"))
    if kind == "less_than_equal":
        return page.gettext("Must be at most %(max)s.", max=ctx.get("le", "?"))
    if kind.startswith("decimal") and kind != "decimal_max_places":
        return page.gettext("Enter an amount, e.g. 12000 or 12000.50.")
    if kind == "decimal_max_places":
        return page.gettext("At most 2 decimal places.")
    if kind == "value_error" and "email" in str(error.get("msg", "")).lower():
        return page.gettext("Enter a valid e-mail address.")
    if kind == "enum":
        return page.gettext("Choose one of the options.")
    return str(error.get("msg", page.gettext("Invalid value.")))


def validated(page: Page, form_id: str, model: type[M], values: dict[str, Any], form: FormData,
              labels: Mapping[str, str]) -> M:
    """``model`` from the form's values; a Pydantic error becomes a 422 naming each field."""
    try:
        return model.model_validate(values)
    except PydanticValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            loc = err.get("loc") or ("form",)
            errors.setdefault(str(loc[0]), _pydantic_message(page, err))
        raise FormRefused(_state(page, form_id, form, errors, labels), 422) from None


def join_sentences(page: Page, sentences: list[str]) -> str:
    # Each message ends with its own full stop; Chinese runs sentences together.
    return ("" if page.locale == "zh-CN" else " ").join(sentences)


def _state(page: Page, form_id: str, form: FormData, errors: dict[str, str],
           labels: Mapping[str, str]) -> FormState:
    named = join_sentences(page, [page.gettext("%(field)s: %(problem)s", field=labels.get(k, k), problem=v)
                                  for k, v in errors.items()])
    return FormState(form_id, submitted(form), errors, page.gettext("Please check: %(fields)s", fields=named))


def refuse(page: Page, form_id: str, form: FormData, field_name: str, message: str,
           labels: Mapping[str, str], status_code: int = 422) -> FormRefused:
    """A refusal found by the view itself (e.g. a rule checked before calling a service)."""
    return FormRefused(_state(page, form_id, form, {field_name: message}, labels), status_code)


def from_service_error(page: Page, form_id: str, form: FormData, exc: LoudouError,
                       labels: Mapping[str, str], messages: Mapping[str, str] | None = None) -> FormRefused:
    """A service's refusal: ``messages`` translates the known ones by field (the services
    speak English to the API); anything else is shown as the service worded it."""
    if isinstance(exc, Conflict):
        alert = (messages or {}).get("conflict") or page.gettext(
            "Someone else saved a change here while you were editing. Your input is kept below; "
            "check the current values and save again.")
        return FormRefused(FormState(form_id, submitted(form), {}, alert), 409)
    field_name = (exc.field if isinstance(exc, ValidationFailed) else None) or "form"
    message = (messages or {}).get(field_name) or exc.detail
    return refuse(page, form_id, form, field_name, message, labels, exc.status_code)


#: Sections of the settings navigation: (key, path).
SECTIONS = (("pipelines", "/settings/pipelines"), ("lost-reasons", "/settings/lost-reasons"),
            ("channels", "/settings/channels"), ("users", "/settings/users"), ("tokens", "/settings/tokens"))


def saved_notice(page: Page, key: str) -> str | None:
    """The confirmation shown after a POST-redirect-GET (``?saved=<key>``)."""
    notices = {
        "pipeline": page.gettext("Pipeline saved."),
        "stage": page.gettext("Stage saved."),
        "stage-added": page.gettext("Stage added at the end of the pipeline."),
        "stage-retired": page.gettext("Stage retired. Its history stays in every report."),
        "order": page.gettext("Stage order saved."),
        "reason": page.gettext("Lost reasons saved."),
        "channel": page.gettext("Channel saved."),
        "spend": page.gettext("Spend saved."),
        "user": page.gettext("User saved."),
        "team": page.gettext("Team saved."),
        "token-revoked": page.gettext("Token revoked. Requests with it are refused from now on."),
    }
    return notices.get(key)


def show(page: Page, template: str, values: dict[str, Any], *, section: str, status_code: int = 200,
         headers: dict[str, str] | None = None) -> Response:
    """A settings page: the settings navigation, and the notice of the last save."""
    saved = page.request.query_params.get("saved", "")
    return render(page, template, {"active_nav": "settings", "section": section, "sections": SECTIONS,
                                   "notice": saved_notice(page, saved) if status_code < 300 else None, **values},
                  status_code=status_code, headers=headers)


def viewer(page: Page) -> User:
    assert page.user is not None  # AdminPage signs every visitor in first
    return page.user


def redirect(page: Page, url: str) -> Response:
    """After a successful POST: HTMX follows HX-Redirect, a browser a 303."""
    if is_htmx(page.request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def attempt(session: Session, page: Page, form_id: str, form: FormData, labels: Mapping[str, str],
            action: Callable[[], Any], messages: Mapping[str, str] | None = None) -> Any:
    """Run a service call; turn its refusal into a FormRefused after rolling the session back."""
    try:
        return action()
    except LoudouError as exc:
        session.rollback()
        if exc.status_code in (403, 404):
            raise  # not a form problem: the error page says what happened
        raise from_service_error(page, form_id, form, exc, labels, messages) from None
