"""The filters every report takes: a period and the pipeline, team, owner, channel,
product and company segment (the company's industry), plus the trend interval."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import ConfigDict, Field, model_validator

from loudou.auth import policy
from loudou.auth.models import User
from loudou.company.models import Company
from loudou.deal.models import Deal
from loudou.inputs import InputModel
from loudou.listing import day_start


class ReportFilters(InputModel):
    """Periods are whole days in UTC, both ends included (``from`` … ``to``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    date_from: dt.date = Field(alias="from")
    date_to: dt.date = Field(alias="to")
    pipeline_id: int | None = None
    team_id: int | None = None
    owner_id: int | None = None
    channel_id: int | None = None
    product_id: int | None = None
    industry: str | None = Field(default=None, max_length=80)
    strict: bool = False
    interval: Literal["week", "month", "quarter"] = "month"

    @model_validator(mode="after")
    def _ordered(self) -> ReportFilters:
        if self.date_to < self.date_from:
            raise ValueError("'to' must not be before 'from'")
        return self

    @property
    def start(self) -> dt.datetime:
        return day_start(self.date_from)

    @property
    def end(self) -> dt.datetime:
        return day_start(self.date_to + dt.timedelta(days=1))

    @property
    def days(self) -> int:
        return (self.date_to - self.date_from).days + 1

    def period(self) -> dict[str, Any]:
        return {"from": self.date_from.isoformat(), "to": self.date_to.isoformat(), "timezone": "UTC"}

    def previous(self) -> ReportFilters:
        """The period of the same length just before this one, same filters."""
        length = dt.timedelta(days=self.days)
        return self.model_copy(update={"date_from": self.date_from - length, "date_to": self.date_from
                                       - dt.timedelta(days=1)})


def deal_conditions(viewer: User, filters: ReportFilters, pipeline_id: int | None) -> list[sa.ColumnElement[bool]]:
    """The filters other than the period, and what the viewer may see (auth.policy)."""
    conditions: list[sa.ColumnElement[bool]] = []
    if pipeline_id is not None:
        conditions.append(Deal.pipeline_id == pipeline_id)
    for name, column in (("team_id", Deal.team_id), ("owner_id", Deal.owner_id),
                         ("channel_id", Deal.channel_id), ("product_id", Deal.product_id)):
        value = getattr(filters, name)
        if value is not None:
            conditions.append(column == value)
    if filters.industry is not None:
        conditions.append(Deal.company_id.in_(sa.select(Company.id).where(Company.industry == filters.industry)))
    conditions.append(policy.condition(viewer, Deal))
    return conditions


def cohort_conditions(viewer: User, filters: ReportFilters, pipeline_id: int | None) -> list[sa.ColumnElement[bool]]:
    """Deals created in the period, narrowed by the filters and by what the viewer may see."""
    return [Deal.created_at >= filters.start, Deal.created_at < filters.end,
            *deal_conditions(viewer, filters, pipeline_id)]


def closed_conditions(viewer: User, filters: ReportFilters, pipeline_id: int | None) -> list[sa.ColumnElement[bool]]:
    """Deals closed (won, lost or disqualified) in the period, narrowed likewise."""
    return [Deal.closed_at >= filters.start, Deal.closed_at < filters.end,
            *deal_conditions(viewer, filters, pipeline_id)]
