"""How the deal page shows things (names in the viewer's language, the stage bar, the
timeline's sentences and field values) and how it reads its forms."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from starlette.datastructures import FormData

from loudou.audit.models import AuditLog
from loudou.channel.models import Channel
from loudou.db import utcnow
from loudou.deal.detail_queries import Parties
from loudou.deal.models import Deal, DealStatus, StageTransition, TransitionKind
from loudou.errors import Conflict, ValidationFailed
from loudou.pipeline.models import LostReason, Pipeline, Stage
from loudou.web.templating import Page

#: The deal fields the edit form (and the "missing for this stage" form) can set, in
#: the order they are shown.
EDITABLE = ("title", "amount", "currency", "expected_close_date", "company_id", "contact_id", "channel_id",
            "owner_id", "description")
REF_FIELDS = ("company_id", "contact_id", "channel_id", "owner_id", "lost_reason_id")
#: Suggested in the currency field; any three-letter ISO code is accepted.
CURRENCIES = ("CNY", "USD", "EUR", "HKD", "JPY", "GBP", "SGD")

_CJK = re.compile(r"[\u3400-\u9fff]")


def parse_field(name: str, raw: str) -> Any:
    """A deal field from its form text; an empty text is "no value" (clears the field)."""
    if name == "description":
        text = raw.replace("\r\n", "\n").strip()
        return text or None
    raw = raw.strip()
    if not raw:
        return None
    if name in REF_FIELDS:
        if not raw.isdigit():
            raise ValidationFailed(f"{name} must be an id", field=name)
        return int(raw)
    if name == "amount":
        # People type thousands separators (also the full-width comma of Chinese input).
        text = raw.replace(",", "").replace("，", "").replace(" ", "")
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ValidationFailed("amount must be a number", field=name) from None
        if not value.is_finite() or value < 0:
            raise ValidationFailed("amount must be a number of 0 or more", field=name)
        return value
    if name == "expected_close_date":
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            raise ValidationFailed("not a date", field=name) from None
    if name == "currency":
        return raw.upper()
    return raw


def form_values(deal: Deal) -> dict[str, str]:
    """The deal's fields as the edit form shows them (and sends them back)."""
    out: dict[str, str] = {}
    for name in EDITABLE:
        value = getattr(deal, name)
        if value is None:
            out[name] = ""
        elif isinstance(value, Decimal):
            out[name] = format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")
        elif isinstance(value, dt.date):
            out[name] = value.isoformat()
        else:
            out[name] = str(value)
    return out


def validated(model: type[BaseModel], values: dict[str, Any]) -> Any:
    """Pydantic errors become ValidationFailed naming the first bad field, like the API."""
    try:
        return model.model_validate(values)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or None
        raise ValidationFailed(first.get("msg", "invalid value"), field=field) from None


def form_int(form: FormData, name: str, *, required: bool = False) -> int | None:
    raw = str(form.get(name) or "").strip()
    if not raw:
        if required:
            raise ValidationFailed(f"{name} is required", field=name)
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed(f"{name} must be a number", field=name) from None


def form_version(form: FormData) -> int:
    version = form_int(form, "version", required=True)
    assert version is not None
    return version


def form_text(form: FormData, name: str) -> str:
    return str(form.get(name) or "").strip()


def submitted(form: FormData) -> dict[str, str]:
    """What the user typed, to refill a form that failed validation."""
    return {k: str(v) for k, v in form.items() if k not in ("csrf_token", "version") and isinstance(v, str)}


def local_datetime(page: Page, date_text: str, time_text: str, field: str,
                    default_time: dt.time) -> dt.datetime | None:
    """A date and time typed in the viewer's time zone, as aware UTC (stored as such).
    A wall time skipped by a DST change resolves to the offset before the change
    (zoneinfo's fold=0), which is a real instant, so no input is refused for it."""
    if not date_text:
        return None
    try:
        day = dt.date.fromisoformat(date_text)
        clock = dt.time.fromisoformat(time_text) if time_text else default_time
    except ValueError:
        raise ValidationFailed(f"{field} is not a valid date or time", field=field) from None
    return dt.datetime.combine(day, clock, tzinfo=page.fmt.tz).astimezone(dt.UTC)


def parse_fields(form: FormData, names: list[str]) -> dict[str, Any]:
    return {name: parse_field(name, form_text(form, name) if name != "description"
                              else str(form.get(name) or "")) for name in names}


@dataclass
class Step:
    stage: Stage
    state: str  # "current", "reached" (the deal has been in it) or "future"


@dataclass
class DealView:
    """Lookups and wording for one rendering of the deal page."""

    page: Page
    deal: Deal
    pipeline: Pipeline | None
    stages: dict[int, Stage]
    channels: dict[int, Channel]
    reasons: dict[int, LostReason]
    users: dict[int, str]
    companies: dict[int, str]
    contacts: dict[int, str]
    parties: Parties

    # ----------------------------------------------------------------- names

    def text(self, value: str | None) -> str:
        """Reference texts are often written "中文 / English" (the default funnel is): show
        the half in the page's language. Other texts are shown as written."""
        if not value:
            return ""
        parts = value.split(" / ")
        if len(parts) == 2 and _CJK.search(parts[0]) and not _CJK.search(parts[1]):
            return parts[0].strip() if self.page.locale == "zh-CN" else parts[1].strip()
        return value

    def stage_name(self, stage_id: int | None) -> str:
        stage = self.stages.get(stage_id) if stage_id is not None else None
        return self.page.name_of(stage) if stage else "–"

    def user_name(self, user_id: int | None) -> str:
        if user_id is None:
            return self.page.gettext("Nobody")
        return self.users.get(user_id, f"#{user_id}")

    def company_name(self, company_id: int | None) -> str:
        return self._hidden_or(self.companies, company_id)

    def contact_name(self, contact_id: int | None) -> str:
        return self._hidden_or(self.contacts, contact_id)

    def _hidden_or(self, names: dict[int, str], ident: int | None) -> str:
        if ident is None:
            return "–"
        return names.get(ident) or self.page.gettext("(not visible to you)")

    def channel_name(self, channel_id: int | None) -> str:
        return self.page.name_of(self.channels.get(channel_id)) if channel_id is not None else "–"

    def reason_name(self, reason_id: int | None) -> str:
        return self.page.name_of(self.reasons.get(reason_id)) if reason_id is not None else "–"

    def status_label(self, status: DealStatus | str | None) -> str:
        _ = self.page.gettext
        labels = {"open": _("Open"), "won": _("Won"), "lost": _("Lost"), "disqualified": _("Disqualified")}
        key = status.value if isinstance(status, DealStatus) else (status or "")
        return labels.get(key, key)

    def kind_label(self, kind: Any) -> str:
        _ = self.page.gettext
        labels = {"call": _("Call"), "email": _("Email"), "meeting": _("Meeting"), "visit": _("Visit"),
                  "note": _("Note")}
        key = getattr(kind, "value", kind)
        return labels.get(key, str(key))

    def field_label(self, name: str) -> str:
        _ = self.page.gettext
        labels = {
            "title": _("Title"), "amount": _("Amount"), "currency": _("Currency"),
            "expected_close_date": _("Expected close"), "company_id": _("Company"), "contact_id": _("Contact"),
            "channel_id": _("Channel"), "owner_id": _("Owner"), "description": _("Description"),
            "lost_reason_id": _("Reason"), "close_note": _("Note"), "stage_id": _("Stage"),
            "checklist": _("Checklist"), "kind": _("Type"), "subject": _("Subject"), "body": _("Details"),
            "occurred_at": _("When"), "due_date": _("Due"), "due_time": _("Due"), "version": _("Version"),
        }
        return labels.get(name, name)

    def error_text(self, field: str, exc: Exception) -> str:
        """A translated message for a field error; the service's English detail is the
        fallback for rules this page does not know."""
        _ = self.page.gettext
        if isinstance(exc, Conflict):
            return _("Someone else changed this meanwhile. Reload the page and try again.")
        detail = str(getattr(exc, "detail", exc))
        messages = {
            "lost_reason_id": _("Choose a reason."),
            "title": _("A title is required."),
            "amount": _("Enter an amount of 0 or more, such as 12000 or 12000.50."),
            "currency": _("Use a three-letter currency code such as CNY."),
            "expected_close_date": _("Enter a valid date."),
            "company_id": _("This company is not available."),
            "contact_id": _("This contact is not available."),
            "channel_id": _("This channel is not available."),
            "owner_id": _("You may not assign the deal to this user."),
            "stage_id": _("Choose another stage."),
            "checklist": _("This item is not on the stage's checklist."),
            "kind": _("Choose what happened."),
            "subject": _("Write a subject or a note."),
            "body": _("The note is too long."),
            "occurred_at": _("Enter a time that is not in the future."),
            "due_date": _("Enter a valid due date and time."),
        }
        if field == "subject" and "200" in detail:
            return _("The subject is too long (200 characters at most).")
        if field == "title" and "200" in detail:
            return _("The title is too long (200 characters at most).")
        return messages.get(field, detail)

    @property
    def currencies(self) -> tuple[str, ...]:
        return CURRENCIES

    # ----------------------------------------------------------------- stage bar and facts

    @cached_property
    def stage(self) -> Stage | None:
        return self.stages.get(self.deal.stage_id)

    @cached_property
    def open_stages(self) -> list[Stage]:
        """The pipeline's active stages in order (plus the deal's own, if it was retired)."""
        shown = [s for s in self.stages.values()
                 if s.pipeline_id == self.deal.pipeline_id and (s.is_active or s.id == self.deal.stage_id)]
        return sorted(shown, key=lambda s: (s.position, s.id))

    def reached(self, stage: Stage) -> bool:
        return bool((self.deal.reached_mask or 0) & (1 << stage.bit))

    @cached_property
    def steps(self) -> list[Step]:
        out = []
        for s in self.open_stages:
            state = "current" if s.id == self.deal.stage_id else "reached" if self.reached(s) else "future"
            out.append(Step(s, state))
        return out

    @cached_property
    def move_targets(self) -> list[Stage]:
        return [s for s in self.open_stages if s.id != self.deal.stage_id and s.is_active]

    @cached_property
    def days_in_stage(self) -> float:
        end = self.deal.closed_at if self.deal.status != DealStatus.open and self.deal.closed_at else utcnow()
        return max(0.0, (end - self.deal.stage_entered_at).total_seconds() / 86400)

    @cached_property
    def cycle_days(self) -> float:
        """Creation to close (or to now while open): the deal's sales cycle."""
        end = self.deal.closed_at or utcnow()
        return max(0.0, (end - self.deal.created_at).total_seconds() / 86400)

    @cached_property
    def rotting(self) -> bool:
        """Open and longer in its stage than the stage expects (A2)."""
        return (self.deal.status == DealStatus.open and self.stage is not None
                and self.days_in_stage > self.stage.expected_days)

    @cached_property
    def checklist_done(self) -> set[str]:
        return set((self.deal.checklist_done or {}).get(str(self.deal.stage_id), []))

    @cached_property
    def next_stage(self) -> Stage | None:
        later = [s for s in self.open_stages if self.stage and s.position > self.stage.position and s.is_active]
        return later[0] if later else None

    def needs(self, stage: Stage) -> list[str]:
        """What entering ``stage`` asks for that the deal does not have yet (D1)."""
        if self.pipeline is not None and self.pipeline.is_relaxed:
            return []
        done = set((self.deal.checklist_done or {}).get(str(stage.id), []))
        fields = [self.field_label(f) for f in stage.required_fields if getattr(self.deal, f, None) in (None, "")]
        return fields + [self.text(item) for item in stage.checklist if item not in done]

    # ----------------------------------------------------------------- times

    def when(self, value: dt.datetime | None) -> str:
        pattern = "yyyy-MM-dd HH:mm" if self.page.locale == "zh-CN" else "MMM d, yyyy, HH:mm"
        return self.page.fmt.datetime(value, pattern)

    def span(self, seconds: float | None) -> str:
        _ = self.page.gettext
        if seconds is None:
            return "–"
        if seconds < 3600:
            return _("%(n)s min", n=max(1, round(seconds / 60)))
        if seconds < 48 * 3600:
            return _("%(n)s h", n=self.page.fmt.number(seconds / 3600, 0 if seconds >= 36000 else 1))
        return _("%(n)s days", n=self.page.fmt.days(seconds / 86400))

    def due_class(self, due: dt.datetime | None) -> str:
        if due is None:
            return ""
        local_due = self.page.fmt.local(due).date()
        today = self.page.fmt.today()
        return "overdue" if due < utcnow() else "today" if local_due == today else ""

    def default_due(self) -> str:
        """Follow-ups default to the stage's rhythm (A2): due that many days from today."""
        days = self.stage.follow_up_days if self.stage else 3
        return (self.page.fmt.today() + dt.timedelta(days=days)).isoformat()

    # ----------------------------------------------------------------- timeline wording

    def transition_title(self, t: StageTransition) -> str:
        _ = self.page.gettext
        to = self.stage_name(t.to_stage_id)
        if t.kind == TransitionKind.create:
            return _("Created in %(stage)s", stage=to)
        if t.kind == TransitionKind.move:
            old = self.stage_name(t.from_stage_id)
            if self._position(t.to_stage_id) < self._position(t.from_stage_id):
                return _("Moved back from %(old)s to %(new)s", old=old, new=to)
            return _("Moved from %(old)s to %(new)s", old=old, new=to)
        if t.kind == TransitionKind.win:
            return _("Won at %(stage)s", stage=to)
        if t.kind == TransitionKind.lose:
            return _("Lost at %(stage)s", stage=to)
        if t.kind == TransitionKind.disqualify:
            return _("Disqualified at %(stage)s", stage=to)
        return _("Reopened (was %(status)s) into %(stage)s", status=self.status_label(t.from_status), stage=to)

    def _position(self, stage_id: int | None) -> int:
        stage = self.stages.get(stage_id) if stage_id is not None else None
        return stage.position if stage else -1

    def skipped(self, t: StageTransition) -> list[str]:
        """Stages jumped over by a forward move (A3: skips are allowed and visible)."""
        if t.kind != TransitionKind.move:
            return []
        low, high = self._position(t.from_stage_id), self._position(t.to_stage_id)
        return [self.page.name_of(s) for s in self.open_stages if low < s.position < high]

    def time_before(self, t: StageTransition, previous: StageTransition | None) -> str:
        """How long the deal was in the state this transition left."""
        if previous is None or previous.duration_s is None or t.kind == TransitionKind.create:
            return ""
        _ = self.page.gettext
        span = self.span(previous.duration_s)
        if t.kind == TransitionKind.reopen:
            return _("after %(span)s closed", span=span)
        return _("after %(span)s in %(stage)s", span=span, stage=self.stage_name(previous.to_stage_id))

    def change(self, row: AuditLog) -> tuple[str, str, str]:
        """(field, before, after) of one audit row, in words."""
        name = row.field or ""
        return (self.field_label(name), self._audit_value(name, row.before),
                self._audit_value(name, row.after))

    def _audit_value(self, name: str, text: str | None) -> str:
        if text is None or text == "":
            return "–"
        try:
            if name == "amount":
                return self.page.fmt.money(Decimal(text), self.deal.currency)
            if name == "expected_close_date":
                return self.page.fmt.date(dt.date.fromisoformat(text[:10]))
            if name in REF_FIELDS:
                return self.show_value(name, int(text))
        except (InvalidOperation, ValueError):
            return text
        if name in ("description", "close_note") and len(text) > 160:
            return text[:160] + "…"
        return text

    def show_value(self, name: str, value: Any) -> str:
        """A parsed field value in words (conflict view, history)."""
        if value is None or value == "":
            return "–"
        if name == "owner_id":
            return self.user_name(value)
        if name == "company_id":
            return self.company_name(value)
        if name == "contact_id":
            return self.contact_name(value)
        if name == "channel_id":
            return self.channel_name(value)
        if name == "lost_reason_id":
            return self.reason_name(value)
        if name == "amount" and isinstance(value, Decimal):
            return self.page.fmt.money(value, self.deal.currency)
        if name == "expected_close_date" and isinstance(value, dt.date):
            return self.page.fmt.date(value)
        return str(value)


def conflict_rows(view: DealView, names: list[str], mine: dict[str, str], base: dict[str, str],
                  theirs: dict[str, str]) -> dict[str, Any]:
    """Both values of every field where the submitted form and the saved deal differ.
    The default choice keeps a colleague's change to a field the user did not touch and
    the user's own change otherwise; the user decides each one (RELIABILITY decision 4)."""
    rows = []
    for name in names:
        try:
            mine_value = parse_field(name, mine.get(name, ""))
        except ValidationFailed:
            mine_value = mine.get(name, "")
        theirs_value = parse_field(name, theirs.get(name, ""))
        if mine_value == theirs_value:
            continue
        untouched = name in base and same_value(name, mine.get(name, ""), base[name])
        rows.append({"field": name, "label": view.field_label(name),
                     "mine": view.show_value(name, mine_value), "theirs": view.show_value(name, theirs_value),
                     "mine_raw": mine.get(name, ""), "theirs_raw": theirs.get(name, ""),
                     "pick": "theirs" if untouched else "mine"})
    return {"rows": rows}


def same_value(name: str, a: str, b: str) -> bool:
    try:
        return bool(parse_field(name, a) == parse_field(name, b))
    except ValidationFailed:
        return a == b
