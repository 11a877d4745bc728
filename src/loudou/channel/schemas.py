from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import ConfigDict, Field, field_validator

from loudou.inputs import InputModel


class ChannelCreate(InputModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    name_en: str | None = Field(default=None, max_length=80)
    kind: str = Field(default="manual", max_length=20)
    is_active: bool = True


class ChannelUpdate(InputModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=80)
    name_en: str | None = Field(default=None, max_length=80)
    kind: str | None = Field(default=None, max_length=20)
    is_active: bool | None = None


class SpendSet(InputModel):
    """Spend of one month; ``month`` may be any day of it and is stored as its first day."""

    model_config = ConfigDict(extra="forbid")

    month: dt.date
    amount: Decimal = Field(ge=0, max_digits=14, decimal_places=2)
    currency: str = Field(default="CNY", min_length=3, max_length=3)

    @field_validator("month")
    @classmethod
    def _first_day(cls, value: dt.date) -> dt.date:
        return value.replace(day=1)


class ChannelRead(InputModel):
    id: int
    name: str
    name_en: str | None
    kind: str
    is_active: bool


class SpendRead(InputModel):
    id: int
    channel_id: int
    month: dt.date
    amount: float
    currency: str
