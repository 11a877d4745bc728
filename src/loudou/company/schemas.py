from __future__ import annotations

import datetime as dt

from pydantic import ConfigDict, Field

from loudou.inputs import InputModel
from loudou.listing import ListQuery


class CompanyFields(InputModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    industry: str | None = Field(default=None, max_length=80)
    city: str | None = Field(default=None, max_length=80)
    website: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=254)
    owner_id: int | None = None


class CompanyCreate(CompanyFields):
    name: str = Field(min_length=1, max_length=200)


class CompanyUpdate(CompanyFields):
    version: int


class CompanyFilters(ListQuery):
    owner_id: int | None = None
    team_id: int | None = None
    industry: str | None = None
    city: str | None = None
    q: str | None = Field(default=None, max_length=200)


class CompanyRead(InputModel):
    id: int
    name: str
    industry: str | None
    city: str | None
    website: str | None
    phone: str | None
    email: str | None
    owner_id: int | None
    team_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int
