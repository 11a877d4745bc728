"""Fast JSON responses: plain dicts through orjson (the pydantic response model is kept
for the OpenAPI document only; see PERFORMANCE.md point 6)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import orjson
from fastapi.responses import Response


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


class OrjsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_default)


def _utc(value: Any) -> Any:
    # Freshly written rows still hold the caller's offset; answers are always in UTC.
    if isinstance(value, dt.datetime) and value.utcoffset():
        return value.astimezone(dt.UTC)
    return value


def row_dict(obj: Any, fields: Sequence[str]) -> dict[str, Any]:
    return {f: _utc(getattr(obj, f)) for f in fields}


def page(items: Iterable[Any], fields: Sequence[str], next_cursor: str | None) -> OrjsonResponse:
    return OrjsonResponse({"items": [row_dict(o, fields) for o in items], "next_cursor": next_cursor})


def one(obj: Any, fields: Sequence[str], status_code: int = 200) -> OrjsonResponse:
    return OrjsonResponse(row_dict(obj, fields), status_code=status_code)


def many(items: Iterable[Any], fields: Sequence[str]) -> OrjsonResponse:
    return OrjsonResponse([row_dict(o, fields) for o in items])
