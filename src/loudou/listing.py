"""Keyset pagination and sorting shared by every list endpoint.

A cursor is an opaque, URL-safe token holding the sort value and id of the last row of
the previous page, so page 10,000 costs what page 1 costs (an index range scan), and
rows inserted meanwhile never shift a page.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from loudou.errors import ValidationFailed

MAX_LIMIT = 500


class ListQuery(BaseModel):
    """Paging and sorting parameters every list accepts; domain filters extend it.
    Unknown parameters are refused (422 naming them) rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")

    sort: str | None = Field(default=None, max_length=40, description="column, '-column' for descending")
    cursor: str | None = Field(default=None, max_length=500, description="next_cursor of the previous page")
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)


@dataclass(frozen=True)
class SortSpec:
    column: str
    descending: bool


def parse_sort(sort: str | None, allowed: Sequence[str], default: str = "-id") -> SortSpec:
    """``sort`` is a column name, prefixed by ``-`` for descending; only ``allowed`` ones."""
    raw = (sort or default).strip()
    descending = raw.startswith("-")
    column = raw.lstrip("-+")
    if column not in allowed:
        raise ValidationFailed(f"cannot sort by {column!r}; allowed: {', '.join(allowed)}", field="sort")
    return SortSpec(column, descending)


def _encode_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"t": value.isoformat()}
    if isinstance(value, dt.date):
        return {"d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"n": str(value)}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "t" in value:
            return dt.datetime.fromisoformat(value["t"])
        if "d" in value:
            return dt.date.fromisoformat(value["d"])
        if "n" in value:
            return Decimal(value["n"])
    return value


def encode_cursor(sort: SortSpec, value: Any, row_id: int) -> str:
    payload = orjson.dumps([sort.column, sort.descending, _encode_value(value), row_id])
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(cursor: str, sort: SortSpec) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        column, descending, value, row_id = orjson.loads(raw)
        if column != sort.column or descending != sort.descending or not isinstance(row_id, int):
            raise ValueError("cursor belongs to another sort order")
        return _decode_value(value), row_id
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise ValidationFailed("invalid cursor (it must come from next_cursor of the same query)",
                               field="cursor") from exc


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    return limit


def keyset_order(stmt: sa.Select[Any], model: Any, sort: SortSpec, cursor: str | None,
                 limit: int) -> sa.Select[Any]:
    """Order ``stmt`` by (sort column, id), start after ``cursor``, fetch limit + 1 rows
    (the extra row tells whether there is a next page; see :func:`finish_page`).

    NULL sort values are ordered as the lowest values; rows with them are reached by
    comparing on id alone once the non-null part is exhausted."""
    check_limit(limit)
    col = getattr(model, sort.column)
    pk = model.id
    if cursor:
        value, last_id = decode_cursor(cursor, sort)
        if sort.column == "id":
            stmt = stmt.where(pk < last_id if sort.descending else pk > last_id)
        elif value is None and sort.descending:
            stmt = stmt.where(col.is_(None), pk < last_id)
        elif value is None:
            stmt = stmt.where(sa.or_(sa.and_(col.is_(None), pk > last_id), col.is_not(None)))
        elif sort.descending:
            stmt = stmt.where(sa.or_(col < value, sa.and_(col == value, pk < last_id), col.is_(None)))
        else:
            stmt = stmt.where(sa.or_(col > value, sa.and_(col == value, pk > last_id)))
    if sort.column == "id":
        order = [pk.desc() if sort.descending else pk.asc()]
    elif sort.descending:
        order = [col.desc().nulls_last(), pk.desc()]
    else:
        order = [col.asc().nulls_first(), pk.asc()]
    return stmt.order_by(*order).limit(limit + 1)


def finish_page(rows: list[Any], sort: SortSpec, limit: int) -> tuple[list[Any], str | None]:
    """Cut the extra row of :func:`keyset_order` and make the cursor of the next page.
    Rows may be ORM objects or row mappings."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    if isinstance(last, Mapping):
        return rows, encode_cursor(sort, last[sort.column], last["id"])
    return rows, encode_cursor(sort, getattr(last, sort.column), last.id)


def keyset_page(
    session: Session,
    stmt: sa.Select[Any],
    model: Any,
    sort: SortSpec,
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """One page of ORM objects plus the next cursor."""
    rows = list(session.scalars(keyset_order(stmt, model, sort, cursor, limit)))
    return finish_page(rows, sort, limit)


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def apply_filters(stmt: sa.Select[Any], model: Any, filters: BaseModel, *,
                  ranges: dict[str, tuple[str, str]] | None = None,
                  text_columns: Sequence[str] = ()) -> sa.Select[Any]:
    """Equality filters for every set filter field that is a column of ``model``; date
    ranges ``{column: (from_field, to_field)}`` (inclusive days, UTC); ``q`` as a
    case-insensitive substring over ``text_columns``."""
    ranges = ranges or {}
    range_fields = {f for pair in ranges.values() for f in pair}
    for field, value in filters:
        if value is None or field in range_fields or field in ("sort", "cursor", "limit", "q"):
            continue
        column = getattr(model, field, None)
        if isinstance(column, sa.orm.InstrumentedAttribute):
            stmt = stmt.where(column == value)
    for column_name, (from_field, to_field) in ranges.items():
        column = getattr(model, column_name)
        start, end = getattr(filters, from_field), getattr(filters, to_field)
        if start is not None:
            stmt = stmt.where(column >= day_start(start))
        if end is not None:
            stmt = stmt.where(column < day_start(end + dt.timedelta(days=1)))
    q = getattr(filters, "q", None)
    if q and text_columns:
        pattern = f"%{escape_like(q.strip())}%"
        stmt = stmt.where(sa.or_(*(getattr(model, c).ilike(pattern, escape="\\") for c in text_columns)))
    return stmt
