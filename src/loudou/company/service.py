from __future__ import annotations

from sqlalchemy.orm import Session

from loudou import records
from loudou.auth.models import User
from loudou.company.models import Company
from loudou.company.schemas import CompanyCreate, CompanyUpdate
from loudou.normalize import clean_party_fields
from loudou.search import service as search_service
from loudou.search.models import SearchKind

AUDITED = ["name", "industry", "city", "website", "phone", "email", "owner_id", "team_id"]


def create_company(session: Session, viewer: User, data: CompanyCreate, *, source: str = "api") -> Company:
    values = clean_party_fields(data.model_dump())
    records.set_owner(session, viewer, values)
    company = records.create_owned(session, viewer, Company(**values), "company", AUDITED, source)
    search_service.index_company(session, company)
    return company


def update_company(session: Session, viewer: User, company_id: int, data: CompanyUpdate, *,
                   source: str = "api") -> Company:
    company = records.load_for_change(session, viewer, Company, company_id, "company")
    values = clean_party_fields(data.model_dump(exclude_unset=True, exclude={"version"}))
    if "owner_id" in values:
        records.set_owner(session, viewer, values)
    if records.update_owned(session, viewer, company, data.version, values, "company", source):
        search_service.index_company(session, company)
    return company


def delete_company(session: Session, viewer: User, company_id: int, version: int) -> None:
    company = records.load_for_change(session, viewer, Company, company_id, "company")
    records.delete_owned(session, viewer, company, version, "company", AUDITED)
    search_service.remove(session, SearchKind.company, company_id)
