"""Every SELECT over deals and their history, narrowed by auth.policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.auth import policy
from loudou.auth.models import Role, User
from loudou.company.models import Company
from loudou.db import Database, UTCDateTime
from loudou.deal.models import Deal, StageTransition
from loudou.deal.schemas import DEAL_FIELDS, DealFilters
from loudou.listing import ListSpec, SortSpec, encode_cursor
from loudou.pipeline.models import Stage
from loudou.prepared import prepare
from loudou.rawrows import RowShaper, fragments, sqlite_json_object, sqlite_timestamp, untyped

SORTABLE = ("id", "created_at", "updated_at", "amount", "expected_close_date", "closed_at", "title",
            "stage_entered_at", "last_activity_at")


def _reached_stage(stage_id: int) -> sa.ColumnElement[bool]:
    """Deals that ever reached the stage (its bit in the derived ``reached_mask``)."""
    bit = sa.select(Stage.bit).where(Stage.id == stage_id).scalar_subquery()
    return Deal.reached_mask.op("&")(sa.literal(1, sa.BigInteger).op("<<")(bit)) != 0


def _industry(industry: str) -> sa.ColumnElement[bool]:
    """Deals of companies in the segment (the company's industry)."""
    return Deal.company_id.in_(sa.select(Company.id).where(Company.industry == industry))


DEAL_LIST = ListSpec(
    model=Deal,
    sortable=SORTABLE,
    date_ranges={"created_at": ("created_from", "created_to"), "closed_at": ("closed_from", "closed_to")},
    value_ranges={"amount": ("amount_min", "amount_max")},
    text_columns=("title",),
    custom={"reached_stage_id": _reached_stage, "industry": _industry},
)


def select_visible_deals(viewer: User) -> sa.Select[Any]:
    return policy.scope(sa.select(Deal), viewer, Deal)


def get_visible_deal(session: Session, viewer: User, deal_id: int) -> Deal | None:
    deal = session.get(Deal, deal_id)
    if deal is None or not policy.can_see(viewer, deal):
        return None
    return deal


def list_transitions(session: Session, deal_id: int) -> list[StageTransition]:
    stmt = sa.select(StageTransition).where(StageTransition.deal_id == deal_id).order_by(StageTransition.id)
    return list(session.scalars(stmt))


# Hot paths (GET one deal, a page of deals): statements built once per role, executed
# without a transaction; on SQLite the database renders each row as JSON (json_object),
# elsewhere untyped rows are shaped for orjson. PERFORMANCE.md point 6: ~75 µs per select
# built, ~1 ms per 50 ORM objects; typed result processing costs ~40 µs per row.
_DEAL_COLUMNS: tuple[sa.Column[Any], ...] = tuple(Deal.__table__.c[f] for f in DEAL_FIELDS)  # type: ignore[misc]
_SQLITE_JSON = sqlite_json_object(_DEAL_COLUMNS).label("j")
_RAW_COLUMNS = untyped(_DEAL_COLUMNS)
_SHAPERS: dict[str, RowShaper] = {}


def _by_id(role: Role, columns: Sequence[Any]) -> sa.Select[Any]:
    return sa.select(*columns).where(Deal.id == sa.bindparam("deal_id"), policy.scope_clause(Deal, role))


_BY_ID_JSON = {role: _by_id(role, [_SQLITE_JSON]) for role in Role}
_BY_ID_RAW = {role: _by_id(role, _RAW_COLUMNS) for role in Role}


def _shaper(dialect: str) -> RowShaper:
    if dialect not in _SHAPERS:
        _SHAPERS[dialect] = RowShaper(_DEAL_COLUMNS, dialect)
    return _SHAPERS[dialect]


def fetch_visible_deal(db: Database, viewer: User, deal_id: int) -> Any | None:
    """The deal as a JSON-ready value (dict or orjson.Fragment), or None if not visible."""
    role = policy.scope_role(viewer)
    if role is None:
        return None
    stmt = (_BY_ID_JSON if db.dialect == "sqlite" else _BY_ID_RAW)[role]
    with db.raw_read() as dbapi_conn:
        row = prepare(stmt, db.engine.dialect).fetchone(
            dbapi_conn, {"deal_id": deal_id, **policy.scope_params(viewer)})
    if row is None:
        return None
    if db.dialect == "sqlite":
        return orjson.Fragment(row[0])
    return _shaper(db.dialect).one(row)


def _cursor_value(sort: SortSpec, raw: Any, sqlite: bool) -> Any:
    """The sort value of a raw row as the cursor carries it: SQLite's timestamp text as
    ISO 8601 with its UTC offset (what the typed path gives)."""
    if sqlite and isinstance(Deal.__table__.c[sort.column].type, UTCDateTime):
        return sqlite_timestamp(raw)
    return raw


def fetch_deal_page(conn: sa.Connection, viewer: User, filters: DealFilters) -> tuple[list[Any], str | None]:
    """One keyset page of visible deals as JSON-ready values, plus the next cursor."""
    role = policy.scope_role(viewer)
    if role is None:
        return [], None
    sqlite = conn.dialect.name == "sqlite"

    def base(sort: SortSpec) -> sa.Select[Any]:
        columns: list[Any] = [_SQLITE_JSON] if sqlite else list(_RAW_COLUMNS)
        sort_col = Deal.__table__.c[sort.column]
        return sa.select(*columns, Deal.id.label("_id"), sort_col.label("_sort")).where(
            policy.scope_clause(Deal, role))

    stmt, params, sort = DEAL_LIST.statement(("json" if sqlite else "raw", role), base, filters)
    rows = prepare(stmt, conn.dialect).fetchall(conn.connection.driver_connection,
                                                params | policy.scope_params(viewer))
    page, has_more = rows[: filters.limit], len(rows) > filters.limit
    # The last two columns are the id and the sort value (see base()).
    cursor = encode_cursor(sort, _cursor_value(sort, page[-1][-1], sqlite), page[-1][-2]) if has_more else None
    if sqlite:
        return fragments(page), cursor
    return _shaper(conn.dialect.name).many(r[: len(_RAW_COLUMNS)] for r in page), cursor
