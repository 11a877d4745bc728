from __future__ import annotations

from pydantic import ConfigDict, EmailStr, Field

from loudou.auth.models import Role
from loudou.inputs import InputModel


class UserCreate(InputModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    name: str = Field(min_length=1, max_length=120)
    role: Role = Role.rep
    team_id: int | None = None
    password: str = Field(min_length=8, max_length=200)
    locale: str | None = Field(default=None, pattern=r"^(zh-CN|en)$")
    timezone: str | None = Field(default=None, max_length=64)


class UserUpdate(InputModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    name: str | None = Field(default=None, min_length=1, max_length=120)
    role: Role | None = None
    team_id: int | None = None
    is_active: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=200)
    locale: str | None = Field(default=None, pattern=r"^(zh-CN|en)$")
    timezone: str | None = Field(default=None, max_length=64)


class TeamCreate(InputModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)


class TeamUpdate(TeamCreate):
    pass


class UserRead(InputModel):
    id: int
    email: str
    name: str
    role: Role
    team_id: int | None
    is_active: bool
    locale: str | None
    timezone: str | None
    version: int


class TeamRead(InputModel):
    id: int
    name: str
