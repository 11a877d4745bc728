"""Keyset pagination and sorting shared by every list endpoint.

A cursor is an opaque, URL-safe token holding the sort value and id of the last row of
the previous page, so page 10,000 costs what page 1 costs (an index range scan), and
rows inserted meanwhile never shift a page.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import InstrumentedAttribute

from loudou.errors import ValidationFailed
from loudou.inputs import InputModel

MAX_LIMIT = 500


class ListQuery(InputModel):
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


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


PAGING_FIELDS = frozenset({"sort", "cursor", "limit"})
Clause = sa.ColumnElement[bool]


@dataclass(frozen=True)
class ListSpec:
    """How one list filters, sorts and pages a model.

    Statements are built once per *shape* (which filters are set, the sort, whether a
    cursor is given, the page size, and a caller key such as the viewer's role) with bind
    parameters for every value, then reused: building a select costs ~75 µs per request,
    executing a cached one costs a fraction of that (PERFORMANCE.md point 6).
    """

    model: Any
    sortable: tuple[str, ...]
    # column -> (from field, to field): whole days, inclusive, in UTC
    date_ranges: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # column -> (min field, max field): inclusive
    value_ranges: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    text_columns: tuple[str, ...] = ()
    # filter field -> clause for its value (the value becomes part of the shape)
    custom: Mapping[str, Callable[[Any], Clause]] = field(default_factory=dict)
    _cache: dict[tuple[Any, ...], sa.Select[Any]] = field(default_factory=dict, compare=False, repr=False)

    def _range_fields(self) -> dict[str, tuple[str, str, bool]]:
        out: dict[str, tuple[str, str, bool]] = {}
        for column, (lo, hi) in self.date_ranges.items():
            out[lo], out[hi] = (column, ">=", True), (column, "<", True)
        for column, (lo, hi) in self.value_ranges.items():
            out[lo], out[hi] = (column, ">=", False), (column, "<=", False)
        return out

    def statement(self, key: Any, base: Callable[[SortSpec], sa.Select[Any]], filters: BaseModel
                  ) -> tuple[sa.Select[Any], dict[str, Any], SortSpec]:
        """The page statement for ``filters`` (built or reused) and its parameters.
        ``key`` names what ``base`` selects and how it is scoped (e.g. the role)."""
        sort = parse_sort(getattr(filters, "sort", None), self.sortable)
        cursor = getattr(filters, "cursor", None)
        limit = check_limit(getattr(filters, "limit", 50))
        set_fields = tuple(sorted(
            name for name, value in filters if value is not None and name not in PAGING_FIELDS
        ))
        custom_values = tuple((f, getattr(filters, f)) for f in set_fields if f in self.custom)
        params: dict[str, Any] = {}
        cursor_state = None
        if cursor:
            value, last_id = decode_cursor(cursor, sort)
            value = _as_column_value(getattr(self.model, sort.column), value)
            cursor_state = "null" if value is None else "value"
            params["_cursor_value"], params["_cursor_id"] = value, last_id
        shape = (key, set_fields, custom_values, sort, cursor_state, limit)
        stmt = self._cache.get(shape)
        if stmt is None:
            stmt = self._build(base(sort), set_fields, sort, cursor_state, limit, filters)
            if len(self._cache) > 2000:  # unbounded shapes would be a memory leak
                self._cache.clear()
            self._cache[shape] = stmt
        params.update(self._params(filters, set_fields))
        return stmt, params, sort

    def _build(self, stmt: sa.Select[Any], set_fields: tuple[str, ...], sort: SortSpec,
               cursor_state: str | None, limit: int, filters: BaseModel) -> sa.Select[Any]:
        ranges = self._range_fields()
        for name in set_fields:
            if name in self.custom:
                stmt = stmt.where(self.custom[name](getattr(filters, name)))
            elif name in ranges:
                column_name, op, _is_date = ranges[name]
                col = getattr(self.model, column_name)
                bind = sa.bindparam(f"f_{name}", type_=col.type)
                stmt = stmt.where({">=": col >= bind, "<": col < bind, "<=": col <= bind}[op])
            elif name == "q":
                if self.text_columns:
                    bind = sa.bindparam("f_q", type_=sa.String)
                    stmt = stmt.where(sa.or_(*(getattr(self.model, c).ilike(bind, escape="\\")
                                               for c in self.text_columns)))
            else:
                col = getattr(self.model, name, None)
                if isinstance(col, InstrumentedAttribute):
                    stmt = stmt.where(col == sa.bindparam(f"f_{name}", type_=col.type))
        return keyset_order(stmt, self.model, sort, cursor_state, limit)

    def _params(self, filters: BaseModel, set_fields: tuple[str, ...]) -> dict[str, Any]:
        ranges = self._range_fields()
        params: dict[str, Any] = {}
        for name in set_fields:
            if name in self.custom:
                continue
            value = getattr(filters, name)
            if name in ranges:
                _column, op, is_date = ranges[name]
                if is_date:
                    value = day_start(value + dt.timedelta(days=1) if op == "<" else value)
            elif name == "q":
                value = f"%{escape_like(value.strip())}%"
            params[f"f_{name}"] = value
        return params


def keyset_order(stmt: sa.Select[Any], model: Any, sort: SortSpec, cursor_state: str | None,
                 limit: int) -> sa.Select[Any]:
    """Order by (sort column, id), start after the cursor (bind parameters _cursor_value
    and _cursor_id), fetch limit + 1 rows: the extra one tells whether a next page exists.

    NULL sort values are ordered as the lowest values; rows with them are reached by
    comparing on id alone once the non-null part is exhausted."""
    col = getattr(model, sort.column)
    pk = model.id
    if cursor_state is not None:
        value = sa.bindparam("_cursor_value", type_=col.type)
        last_id = sa.bindparam("_cursor_id", type_=sa.Integer)
        if sort.column == "id":
            stmt = stmt.where(pk < last_id if sort.descending else pk > last_id)
        elif cursor_state == "null" and sort.descending:
            stmt = stmt.where(col.is_(None), pk < last_id)
        elif cursor_state == "null":
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


def _as_column_value(col: Any, value: Any) -> Any:
    """Cursors made from JSON-shaped rows (rawrows) carry timestamps and dates as ISO text."""
    if not isinstance(value, str):
        return value
    python_type = getattr(col.type, "python_type", None) if not isinstance(col.type, sa.String) else str
    try:
        if python_type is dt.datetime:
            return dt.datetime.fromisoformat(value)
        if python_type is dt.date:
            return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ValidationFailed("invalid cursor value", field="cursor") from exc
    return value


def finish_page(rows: list[Any], sort: SortSpec, limit: int) -> tuple[list[Any], str | None]:
    """Cut the extra row of :func:`keyset_order` and make the cursor of the next page."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor(sort, getattr(last, sort.column), last.id)
