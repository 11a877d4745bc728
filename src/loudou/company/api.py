from __future__ import annotations

from loudou.company import service as company_service
from loudou.company.models import Company
from loudou.company.schemas import CompanyCreate, CompanyFilters, CompanyRead, CompanyUpdate
from loudou.listing import ListSpec
from loudou.web.crud import owned_router

router = owned_router(
    prefix="/api/v1/companies", entity="company", model=Company, read_schema=CompanyRead,
    filters_schema=CompanyFilters, create_schema=CompanyCreate, update_schema=CompanyUpdate,
    create=company_service.create_company, update=company_service.update_company,
    delete=company_service.delete_company,
    spec=ListSpec(model=Company, sortable=("id", "name", "created_at", "updated_at", "city", "industry"),
                  text_columns=("name", "phone", "email")),
)
