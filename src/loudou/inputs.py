"""The base of every input schema: rules that hold for all user input."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, field_validator


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class InputModel(BaseModel):
    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL cannot store NUL in text; refuse it up front with the field named
        # instead of failing in the database (and SQLite and PostgreSQL stay alike).
        if _has_nul(value):
            raise ValueError("must not contain NUL characters")
        return value
