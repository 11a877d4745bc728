from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from loudou import records
from loudou.auth.models import User
from loudou.company.models import Company
from loudou.contact.models import Contact
from loudou.contact.schemas import ContactCreate, ContactUpdate
from loudou.normalize import clean_party_fields
from loudou.search import service as search_service
from loudou.search.models import SearchKind

AUDITED = ["name", "company_id", "title", "phone", "email", "owner_id", "team_id"]


def _clean(session: Session, viewer: User, values: dict[str, Any]) -> dict[str, Any]:
    clean_party_fields(values)
    records.check_visible_ref(session, viewer, Company, values.get("company_id"), "company_id")
    return values


def create_contact(session: Session, viewer: User, data: ContactCreate, *, source: str = "api") -> Contact:
    values = _clean(session, viewer, data.model_dump())
    records.set_owner(session, viewer, values)
    contact = records.create_owned(session, viewer, Contact(**values), "contact", AUDITED, source)
    search_service.index_contact(session, contact)
    return contact


def update_contact(session: Session, viewer: User, contact_id: int, data: ContactUpdate, *,
                   source: str = "api") -> Contact:
    contact = records.load_for_change(session, viewer, Contact, contact_id, "contact")
    values = _clean(session, viewer, data.model_dump(exclude_unset=True, exclude={"version"}))
    if "owner_id" in values:
        records.set_owner(session, viewer, values)
    if records.update_owned(session, viewer, contact, data.version, values, "contact", source):
        search_service.index_contact(session, contact)
    return contact


def delete_contact(session: Session, viewer: User, contact_id: int, version: int) -> None:
    contact = records.load_for_change(session, viewer, Contact, contact_id, "contact")
    records.delete_owned(session, viewer, contact, version, "contact", AUDITED)
    search_service.remove(session, SearchKind.contact, contact_id)
