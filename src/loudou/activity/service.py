"""Activities (calls, e-mails, meetings, visits, notes) and follow-up tasks."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from loudou import records
from loudou.activity.models import Activity, Task
from loudou.activity.schemas import ActivityCreate, ActivityUpdate, TaskCreate, TaskUpdate
from loudou.auth.models import User
from loudou.company.models import Company
from loudou.contact.models import Contact
from loudou.db import utcnow
from loudou.deal import service as deal_service
from loudou.deal.models import Deal
from loudou.errors import ValidationFailed

ACTIVITY_AUDITED = ["kind", "subject", "deal_id", "company_id", "contact_id", "occurred_at", "owner_id"]
TASK_AUDITED = ["title", "deal_id", "owner_id", "due_at", "done_at", "priority"]


def _check_links(session: Session, viewer: User, values: dict[str, Any]) -> None:
    """Linked records must be ones the viewer may see; a deal link fills company/contact."""
    records.check_visible_ref(session, viewer, Deal, values.get("deal_id"), "deal_id")
    records.check_visible_ref(session, viewer, Company, values.get("company_id"), "company_id")
    records.check_visible_ref(session, viewer, Contact, values.get("contact_id"), "contact_id")
    if values.get("deal_id") is not None:
        deal = session.get(Deal, values["deal_id"])
        assert deal is not None
        if values.get("company_id") is None:
            values["company_id"] = deal.company_id
        if values.get("contact_id") is None:
            values["contact_id"] = deal.contact_id


def log_activity(session: Session, viewer: User, data: ActivityCreate, *, source: str = "api") -> Activity:
    values = data.model_dump()
    if not any(values.get(k) for k in ("deal_id", "company_id", "contact_id")):
        raise ValidationFailed("an activity belongs to a deal, a company or a contact", field="deal_id")
    _check_links(session, viewer, values)
    values["occurred_at"] = values["occurred_at"] or utcnow()
    values["owner_id"] = viewer.id
    values["team_id"] = viewer.team_id
    activity = records.create_owned(session, viewer, Activity(**values), "activity", ACTIVITY_AUDITED, source)
    if activity.deal_id is not None:
        deal_service.touch_activity(session, activity.deal_id, activity.occurred_at)
    return activity


def update_activity(session: Session, viewer: User, activity_id: int, data: ActivityUpdate, *,
                    source: str = "api") -> Activity:
    activity = records.load_for_change(session, viewer, Activity, activity_id, "activity")
    values = data.model_dump(exclude_unset=True, exclude={"version"})
    if "kind" in values and values["kind"] is None:
        raise ValidationFailed("kind cannot be empty", field="kind")
    if "occurred_at" in values and values["occurred_at"] is None:
        raise ValidationFailed("occurred_at cannot be empty", field="occurred_at")
    records.update_owned(session, viewer, activity, data.version, values, "activity", source)
    return activity


def delete_activity(session: Session, viewer: User, activity_id: int, version: int) -> None:
    activity = records.load_for_change(session, viewer, Activity, activity_id, "activity")
    records.delete_owned(session, viewer, activity, version, "activity", ACTIVITY_AUDITED)


def create_task(session: Session, viewer: User, data: TaskCreate, *, source: str = "api") -> Task:
    values = data.model_dump()
    _check_links(session, viewer, values)
    records.set_owner(session, viewer, values)
    return records.create_owned(session, viewer, Task(**values), "task", TASK_AUDITED, source)


def update_task(session: Session, viewer: User, task_id: int, data: TaskUpdate, *, source: str = "api") -> Task:
    task = records.load_for_change(session, viewer, Task, task_id, "task")
    values = data.model_dump(exclude_unset=True, exclude={"version", "done"})
    if "title" in values and values["title"] is None:
        raise ValidationFailed("title cannot be empty", field="title")
    if "owner_id" in values:
        records.set_owner(session, viewer, values)
    if data.done is not None:
        values["done_at"] = (task.done_at or utcnow()) if data.done else None
    records.update_owned(session, viewer, task, data.version, values, "task", source)
    return task


def delete_task(session: Session, viewer: User, task_id: int, version: int) -> None:
    task = records.load_for_change(session, viewer, Task, task_id, "task")
    records.delete_owned(session, viewer, task, version, "task", TASK_AUDITED)
