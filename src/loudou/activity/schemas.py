from __future__ import annotations

import datetime as dt

from pydantic import AwareDatetime, ConfigDict, Field

from loudou.activity.models import ActivityKind
from loudou.inputs import InputModel
from loudou.listing import ListQuery


class ActivityCreate(InputModel):
    model_config = ConfigDict(extra="forbid")

    kind: ActivityKind
    subject: str = Field(default="", max_length=200)
    body: str | None = Field(default=None, max_length=20000)
    deal_id: int | None = None
    company_id: int | None = None
    contact_id: int | None = None
    occurred_at: AwareDatetime | None = None
    duration_min: int | None = Field(default=None, ge=0, le=24 * 60)


class ActivityUpdate(InputModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    kind: ActivityKind | None = None
    subject: str | None = Field(default=None, max_length=200)
    body: str | None = Field(default=None, max_length=20000)
    occurred_at: AwareDatetime | None = None
    duration_min: int | None = Field(default=None, ge=0, le=24 * 60)


class ActivityFilters(ListQuery):
    deal_id: int | None = None
    company_id: int | None = None
    contact_id: int | None = None
    owner_id: int | None = None
    team_id: int | None = None
    kind: ActivityKind | None = None
    occurred_from: dt.date | None = None
    occurred_to: dt.date | None = None


class TaskCreate(InputModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    notes: str | None = Field(default=None, max_length=20000)
    deal_id: int | None = None
    company_id: int | None = None
    contact_id: int | None = None
    owner_id: int | None = None
    due_at: AwareDatetime | None = None
    priority: int = Field(default=2, ge=1, le=3)


class TaskUpdate(InputModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    title: str | None = Field(default=None, min_length=1, max_length=200)
    notes: str | None = Field(default=None, max_length=20000)
    owner_id: int | None = None
    due_at: AwareDatetime | None = None
    priority: int | None = Field(default=None, ge=1, le=3)
    done: bool | None = None


class TaskFilters(ListQuery):
    deal_id: int | None = None
    owner_id: int | None = None
    team_id: int | None = None
    done: bool | None = None
    due_from: dt.date | None = None
    due_to: dt.date | None = None


class ActivityRead(InputModel):
    id: int
    kind: ActivityKind
    subject: str
    body: str | None
    deal_id: int | None
    company_id: int | None
    contact_id: int | None
    owner_id: int | None
    team_id: int | None
    occurred_at: dt.datetime
    duration_min: int | None
    created_at: dt.datetime
    version: int


class TaskRead(InputModel):
    id: int
    title: str
    notes: str | None
    deal_id: int | None
    company_id: int | None
    contact_id: int | None
    owner_id: int | None
    team_id: int | None
    due_at: dt.datetime | None
    done_at: dt.datetime | None
    priority: int
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int
