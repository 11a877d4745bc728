from __future__ import annotations

from sqlalchemy.orm import Session

from loudou import records
from loudou.auth.models import User
from loudou.company.models import Company
from loudou.company.schemas import CompanyCreate, CompanyUpdate
from loudou.normalize import clean_party_fields

AUDITED = ["name", "industry", "city", "website", "phone", "email", "owner_id", "team_id"]


def create_company(session: Session, viewer: User, data: CompanyCreate, *, source: str = "api") -> Company:
    values = clean_party_fields(data.model_dump())
    records.set_owner(session, viewer, values)
    return records.create_owned(session, viewer, Company(**values), "company", AUDITED, source)


def update_company(session: Session, viewer: User, company_id: int, data: CompanyUpdate, *,
                   source: str = "api") -> Company:
    company = records.load_for_change(session, viewer, Company, company_id, "company")
    values = clean_party_fields(data.model_dump(exclude_unset=True, exclude={"version"}))
    if "owner_id" in values:
        records.set_owner(session, viewer, values)
    records.update_owned(session, viewer, company, data.version, values, "company", source)
    return company


def delete_company(session: Session, viewer: User, company_id: int, version: int) -> None:
    company = records.load_for_change(session, viewer, Company, company_id, "company")
    records.delete_owned(session, viewer, company, version, "company", AUDITED)
