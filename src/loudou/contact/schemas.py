from __future__ import annotations

import datetime as dt

from pydantic import ConfigDict, Field

from loudou.inputs import InputModel
from loudou.listing import ListQuery


class ContactFields(InputModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=120)
    company_id: int | None = None
    title: str | None = Field(default=None, max_length=120)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=254)
    owner_id: int | None = None


class ContactCreate(ContactFields):
    name: str = Field(min_length=1, max_length=120)


class ContactUpdate(ContactFields):
    version: int


class ContactFilters(ListQuery):
    owner_id: int | None = None
    team_id: int | None = None
    company_id: int | None = None
    q: str | None = Field(default=None, max_length=200)


class ContactRead(InputModel):
    id: int
    name: str
    company_id: int | None
    title: str | None
    phone: str | None
    email: str | None
    owner_id: int | None
    team_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int
