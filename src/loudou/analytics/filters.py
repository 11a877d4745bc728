"""The filters every report takes: a period and the pipeline, team, owner and channel."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from pydantic import ConfigDict, Field, model_validator

from loudou.auth import policy
from loudou.auth.models import User
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
    strict: bool = False

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

    def period(self) -> dict[str, Any]:
        return {"from": self.date_from.isoformat(), "to": self.date_to.isoformat(), "timezone": "UTC"}


def cohort_conditions(viewer: User, filters: ReportFilters, pipeline_id: int) -> list[sa.ColumnElement[bool]]:
    """Deals created in the period, narrowed by the filters and by what the viewer may see."""
    conditions: list[sa.ColumnElement[bool]] = [
        Deal.pipeline_id == pipeline_id,
        Deal.created_at >= filters.start,
        Deal.created_at < filters.end,
    ]
    for field, column in (("team_id", Deal.team_id), ("owner_id", Deal.owner_id), ("channel_id", Deal.channel_id)):
        value = getattr(filters, field)
        if value is not None:
            conditions.append(column == value)
    conditions.append(policy.condition(viewer, Deal))
    return conditions
