from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import ConfigDict, Field, field_validator

from loudou.deal.models import DealStatus
from loudou.inputs import InputModel
from loudou.listing import ListQuery

Money = Decimal


class DealFields(InputModel):
    """Fields a user may set on a deal (create, update, or alongside a stage move)."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    owner_id: int | None = None
    company_id: int | None = None
    contact_id: int | None = None
    channel_id: int | None = None
    product_id: int | None = None
    amount: Money | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    expected_close_date: dt.date | None = None
    description: str | None = None

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        if value is not None and not value.isalpha():
            raise ValueError("currency must be a 3-letter ISO code such as CNY")
        return value.upper() if value else value


class DealCreate(DealFields):
    title: str = Field(min_length=1, max_length=200)
    pipeline_id: int | None = None
    stage_id: int | None = None
    checklist: list[str] = Field(default_factory=list)


class DealUpdate(DealFields):
    version: int


class DealMove(InputModel):
    model_config = ConfigDict(extra="forbid")

    stage_id: int
    version: int
    fields: DealFields | None = None
    checklist: list[str] = Field(default_factory=list)


class DealClose(InputModel):
    """Win, lose or disqualify. Lose and disqualify need a reason (id or its name)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    version: int
    lost_reason_id: int | None = Field(default=None, alias="reason_id")
    reason: str | None = Field(default=None, max_length=500)
    note: str | None = Field(default=None, max_length=5000)
    amount: Money | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)


class DealReopen(InputModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    stage_id: int | None = None


class DealFilters(ListQuery):
    pipeline_id: int | None = None
    stage_id: int | None = None
    status: DealStatus | None = None
    owner_id: int | None = None
    team_id: int | None = None
    channel_id: int | None = None
    company_id: int | None = None
    contact_id: int | None = None
    product_id: int | None = None
    lost_reason_id: int | None = None
    reached_stage_id: int | None = None
    industry: str | None = Field(default=None, max_length=80)
    created_from: dt.date | None = None
    created_to: dt.date | None = None
    closed_from: dt.date | None = None
    closed_to: dt.date | None = None
    amount_min: Money | None = None
    amount_max: Money | None = None
    q: str | None = Field(default=None, max_length=200)


class DealRead(InputModel):
    id: int
    title: str
    pipeline_id: int
    stage_id: int
    status: DealStatus
    owner_id: int | None
    team_id: int | None
    company_id: int | None
    contact_id: int | None
    channel_id: int | None
    product_id: int | None
    amount: float | None
    currency: str
    expected_close_date: dt.date | None
    lost_reason_id: int | None
    close_note: str | None
    description: str | None
    checklist_done: dict[str, list[str]]
    created_at: dt.datetime
    updated_at: dt.datetime
    closed_at: dt.datetime | None
    stage_entered_at: dt.datetime
    last_activity_at: dt.datetime | None
    activity_count: int
    version: int


DEAL_FIELDS = tuple(DealRead.model_fields)


class TransitionRead(InputModel):
    id: int
    deal_id: int
    pipeline_id: int
    kind: str
    from_stage_id: int | None
    to_stage_id: int
    from_status: DealStatus | None
    to_status: DealStatus
    at: dt.datetime
    by_id: int | None
    duration_s: int | None


TRANSITION_FIELDS = tuple(TransitionRead.model_fields)
