from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ContactFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=120)
    company_id: int | None = None
    title: str | None = Field(default=None, max_length=120)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=254)
    owner_id: int | None = None


class ContactCreate(ContactFields):
    name: str = Field(min_length=1, max_length=120)  # type: ignore[assignment]


class ContactUpdate(ContactFields):
    version: int


class ContactFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner_id: int | None = None
    team_id: int | None = None
    company_id: int | None = None
    q: str | None = Field(default=None, max_length=200)
