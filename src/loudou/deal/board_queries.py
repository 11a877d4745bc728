"""Reads of the pipeline board (PRODUCT A4): per-stage totals, the first cards of every
column, one more page of a column, and the lookups of the stage-entry dialog.

The board costs a fixed number of queries whatever the number of deals:
1. one statement for every column's count, amount sum and rotting count;
2. one UNION ALL of a LIMITed keyset query per column for the cards shown;
3. the shown cards' companies and 4. their next open tasks, each in bulk by id.
Owner names come from the users list the page loads anyway for its owner filter.

Cards are ordered newest in stage first (``stage_entered_at`` descending, then id), so a
deal just moved is at the top of its new column after a reload; ``sort=oldest`` puts the
longest-waiting (most rotting) deals first instead. Both orders are keyset-paginated on
(stage_entered_at, id).

At 1M deals (~90k open) the board needs two partial indexes on open deals, which every
statement here can use because it states ``status = 'open'`` as a literal (``IS_OPEN``):
(stage_id, status, stage_entered_at, amount, owner_id, team_id, channel_id, title) for
admins and managers, and (owner_id, status, stage_id, stage_entered_at, amount, title) for
reps. Both cover the totals (index-only scans) and give the cards in order.

Every statement is narrowed by ``auth.policy.scope``: deals, companies and tasks alike.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVarTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.activity.models import Task
from loudou.auth import policy
from loudou.auth.models import Team, User
from loudou.channel.models import Channel
from loudou.company.models import Company
from loudou.contact.models import Contact
from loudou.db import UTCDateTime
from loudou.deal.models import Deal, DealStatus
from loudou.errors import ValidationFailed
from loudou.listing import SortSpec, decode_cursor, encode_cursor, escape_like
from loudou.pipeline.models import Stage

#: Cards rendered per column, on the board and per "load more" page.
PAGE_SIZE = 30
#: Options offered at once in the dialog's company and contact selects (searchable).
OPTION_LIMIT = 100


class BoardSort(enum.StrEnum):
    newest = "newest"  # newest in stage first
    oldest = "oldest"  # longest in stage (most rotting) first


@dataclass(frozen=True)
class BoardFilters:
    """The board's query-string filters; they narrow within what the policy lets one see."""

    owner_id: int | None = None
    team_id: int | None = None
    channel_id: int | None = None
    q: str | None = None
    sort: BoardSort = BoardSort.newest

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        out: list[sa.ColumnElement[bool]] = []
        if self.owner_id is not None:
            out.append(Deal.owner_id == self.owner_id)
        if self.team_id is not None:
            out.append(Deal.team_id == self.team_id)
        if self.channel_id is not None:
            out.append(Deal.channel_id == self.channel_id)
        if self.q:
            out.append(Deal.title.ilike(f"%{escape_like(self.q)}%", escape="\\"))
        return out

    def params(self) -> dict[str, str]:
        """The set filters as query-string values (for links that keep the filters)."""
        values: dict[str, Any] = {"owner_id": self.owner_id, "team_id": self.team_id,
                                  "channel_id": self.channel_id, "q": self.q}
        out = {k: str(v) for k, v in values.items() if v not in (None, "")}
        if self.sort != BoardSort.newest:
            out["sort"] = self.sort.value
        return out

    @property
    def is_set(self) -> bool:
        return any(v is not None and v != "" for v in (self.owner_id, self.team_id, self.channel_id, self.q))


@dataclass
class NextTask:
    title: str
    due_at: dt.datetime | None


@dataclass
class Card:
    id: int
    title: str
    stage_id: int
    owner_id: int | None
    company_id: int | None
    amount: Decimal | None
    currency: str
    stage_entered_at: dt.datetime
    version: int
    days_in_stage: int = 0
    is_rotting: bool = False
    company_name: str | None = None
    next_task: NextTask | None = None


@dataclass
class ColumnTotals:
    count: int = 0
    amount: Decimal = Decimal(0)
    rotting: int = 0


@dataclass
class Column:
    stage: Stage
    totals: ColumnTotals
    cards: list[Card] = field(default_factory=list)
    next_cursor: str | None = None


_Ts = TypeVarTuple("_Ts")


def _scope(stmt: sa.Select[*_Ts], viewer: User, model: Any) -> sa.Select[*_Ts]:
    """``policy.scope`` for selects of several columns: its type variable is bound to
    ``Select[Any]``, which mypy reads as a one-column select."""
    scoped: sa.Select[*_Ts] = policy.scope(stmt, viewer, model)  # type: ignore[type-var]
    return scoped


def _sort_spec(sort: BoardSort) -> SortSpec:
    return SortSpec("stage_entered_at", sort == BoardSort.newest)


def rotting_cutoff(stage: Stage, now: dt.datetime) -> dt.datetime:
    """Rule (PRODUCT A2): a deal rots once it has spent more than the stage's expected
    days in it."""
    return now - dt.timedelta(days=stage.expected_days)


#: The status test written as a literal, not a bound parameter: SQLite (and PostgreSQL's
#: generic plans) use a partial index ``WHERE status = 'open'`` only when the query states
#: the very same literal.
IS_OPEN: sa.ColumnElement[bool] = Deal.status == sa.literal_column(f"'{DealStatus.open.value}'")


def _open_deals(viewer: User, filters: BoardFilters, *columns: Any) -> sa.Select[Any]:
    stmt = sa.select(*columns).where(IS_OPEN, *filters.clauses())
    return _scope(stmt, viewer, Deal)


def column_totals(session: Session, viewer: User, stages: Sequence[Stage], filters: BoardFilters,
                  now: dt.datetime) -> dict[int, ColumnTotals]:
    """Count, amount sum and rotting count of the visible open deals per stage, in one
    statement: a UNION ALL of one aggregate per stage. Each arm is a single index range
    scan compared with its own stage's rotting cutoff, which costs half of a GROUP BY that
    looks the cutoff up per row (measured at 1M deals). Amounts in other currencies are
    summed as they are: the board shows the team's currency."""
    if not stages:
        return {}
    arms = [
        _open_deals(viewer, filters, sa.literal(s.id).label("stage_id"), sa.func.count().label("n"),
                    sa.func.sum(Deal.amount).label("amount"),
                    sa.func.count(sa.case((Deal.stage_entered_at < sa.literal(rotting_cutoff(s, now), UTCDateTime()),
                                           1))).label("rotting"))
        .where(Deal.stage_id == s.id)
        for s in stages
    ]
    stmt = arms[0] if len(arms) == 1 else sa.union_all(*arms)
    totals = {s.id: ColumnTotals() for s in stages}
    for stage_id, count, amount, rotten in session.execute(stmt):
        totals[stage_id] = ColumnTotals(int(count), Decimal(amount or 0), int(rotten or 0))
    return totals


_CARD_COLUMNS = (Deal.id, Deal.title, Deal.stage_id, Deal.owner_id, Deal.company_id, Deal.amount, Deal.currency,
                 Deal.stage_entered_at, Deal.version)


def _column_select(viewer: User, stage_id: int, filters: BoardFilters, cursor: str | None,
                   limit: int) -> sa.Select[Any]:
    spec = _sort_spec(filters.sort)
    stmt = _open_deals(viewer, filters, *_CARD_COLUMNS).where(Deal.stage_id == stage_id)
    if cursor:
        entered, last_id = decode_cursor(cursor, spec)
        if not isinstance(entered, dt.datetime):
            raise ValidationFailed("invalid cursor", field="cursor")
        bound = sa.literal(entered, UTCDateTime())
        # The first term bounds the index range scan; the second breaks ties on id.
        if spec.descending:
            stmt = stmt.where(Deal.stage_entered_at <= bound,
                              sa.or_(Deal.stage_entered_at < bound, Deal.id < last_id))
        else:
            stmt = stmt.where(Deal.stage_entered_at >= bound,
                              sa.or_(Deal.stage_entered_at > bound, Deal.id > last_id))
    if spec.descending:
        stmt = stmt.order_by(Deal.stage_entered_at.desc(), Deal.id.desc())
    else:
        stmt = stmt.order_by(Deal.stage_entered_at, Deal.id)
    return stmt.limit(limit + 1)


def _card(row: Any) -> Card:
    return Card(id=row.id, title=row.title, stage_id=row.stage_id, owner_id=row.owner_id,
                company_id=row.company_id, amount=row.amount, currency=row.currency,
                stage_entered_at=row.stage_entered_at, version=row.version)


def _page(rows: list[Card], filters: BoardFilters, limit: int) -> tuple[list[Card], str | None]:
    page = rows[:limit]
    if len(rows) <= limit or not page:
        return page, None
    last = page[-1]
    return page, encode_cursor(_sort_spec(filters.sort), last.stage_entered_at, last.id)


def _complete(session: Session, viewer: User, cards: list[Card], stages: Iterable[Stage],
              now: dt.datetime) -> None:
    """Age, rotting flag, company name and next open task of every card, in two queries."""
    by_stage = {s.id: s for s in stages}
    for card in cards:
        card.days_in_stage = max(0, (now - card.stage_entered_at).days)
        stage = by_stage.get(card.stage_id)
        card.is_rotting = stage is not None and card.stage_entered_at < rotting_cutoff(stage, now)
    company_ids = {c.company_id for c in cards if c.company_id is not None}
    if company_ids:
        stmt = _scope(sa.select(Company.id, Company.name).where(Company.id.in_(company_ids)), viewer, Company)
        names: dict[int, str] = {i: n for i, n in session.execute(stmt)}
        for card in cards:
            card.company_name = names.get(card.company_id) if card.company_id is not None else None
    if cards:
        # Earliest due first; undated tasks after dated ones. The first row per deal wins.
        tasks = _scope(
            sa.select(Task.deal_id, Task.title, Task.due_at)
            .where(Task.deal_id.in_([c.id for c in cards]), Task.done_at.is_(None))
            .order_by(Task.deal_id, Task.due_at.is_(None), Task.due_at, Task.id),
            viewer, Task)
        nexts: dict[int, NextTask] = {}
        for deal_id, title, due_at in session.execute(tasks):
            if deal_id is not None:  # the IN clause already excludes NULL; this tells mypy
                nexts.setdefault(deal_id, NextTask(title, due_at))
        for card in cards:
            card.next_task = nexts.get(card.id)


def load_board(session: Session, viewer: User, stages: Sequence[Stage], filters: BoardFilters,
               now: dt.datetime, limit: int = PAGE_SIZE) -> list[Column]:
    """Every open stage's column with its totals and first ``limit`` cards."""
    totals = column_totals(session, viewer, stages, filters, now)
    columns = [Column(stage=s, totals=totals[s.id]) for s in stages]
    wanted = [c for c in columns if c.totals.count]
    if not wanted:
        return columns
    arms = [_column_select(viewer, c.stage.id, filters, None, limit).subquery().select() for c in wanted]
    stmt = arms[0] if len(arms) == 1 else sa.union_all(*arms)
    rows: dict[int, list[Card]] = {c.stage.id: [] for c in wanted}
    for row in session.execute(stmt):
        rows[row.stage_id].append(_card(row))
    spec = _sort_spec(filters.sort)
    for column in wanted:
        # UNION ALL keeps no order across arms: restore the column's order in Python.
        ordered = sorted(rows[column.stage.id], key=lambda c: (c.stage_entered_at, c.id), reverse=spec.descending)
        column.cards, column.next_cursor = _page(ordered, filters, limit)
    _complete(session, viewer, [card for c in wanted for card in c.cards], stages, now)
    return columns


def load_column_page(session: Session, viewer: User, stage: Stage, filters: BoardFilters, cursor: str,
                     now: dt.datetime, limit: int = PAGE_SIZE) -> tuple[list[Card], str | None]:
    """The next page of one column after ``cursor`` (keyset: page 100 costs what page 1 costs)."""
    rows = [_card(r) for r in session.execute(_column_select(viewer, stage.id, filters, cursor, limit))]
    cards, next_cursor = _page(rows, filters, limit)
    _complete(session, viewer, cards, [stage], now)
    return cards, next_cursor


def load_card(session: Session, viewer: User, deal_id: int, stages: Iterable[Stage], now: dt.datetime) -> Card | None:
    """One visible open deal as a card (after a move, or to refresh a stale one)."""
    stmt = _scope(sa.select(*_CARD_COLUMNS).where(Deal.id == deal_id, IS_OPEN),
                        viewer, Deal)
    row = session.execute(stmt).first()
    if row is None:
        return None
    card = _card(row)
    _complete(session, viewer, [card], stages, now)
    return card


# Filter selects ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    """A user as the board shows them: plain values, not ORM objects (a team of 500 users
    loads in a fraction of the time)."""

    id: int
    name: str
    team_id: int | None
    is_active: bool


def list_users(session: Session) -> list[Person]:
    """Every user, for owner names and the owner filter (users are readable by all)."""
    stmt = sa.select(User.id, User.name, User.team_id, User.is_active).order_by(User.name, User.id)
    return [Person(*row) for row in session.execute(stmt)]


def list_teams(session: Session) -> list[Team]:
    return list(session.scalars(sa.select(Team).order_by(Team.name, Team.id)))


def list_channels(session: Session) -> list[Channel]:
    return list(session.scalars(sa.select(Channel).where(Channel.is_active.is_(True)).order_by(Channel.id)))


def owners_in_view(viewer: User, users: Iterable[Person]) -> list[Person]:
    """Active users whose deals the policy lets ``viewer`` see: the owner filter's choices
    (asked of the policy with a deal they would own, so the rule stays in one place)."""
    probe = Deal()  # one transient probe, re-pointed per user: constructing one costs ~40 µs
    out = []
    for user in users:
        probe.owner_id, probe.team_id = user.id, user.team_id
        if user.is_active and policy.can_see(viewer, probe):
            out.append(user)
    return out


def teams_in_view(viewer: User, teams: Iterable[Team]) -> list[Team]:
    """Teams whose deals ``viewer`` may see as a whole: the team filter's choices."""
    probe = Deal(owner_id=None)
    out = []
    for team in teams:
        probe.team_id = team.id
        if policy.can_see(viewer, probe):
            out.append(team)
    return out


# Stage-entry dialog lookups ---------------------------------------------------------


def list_company_options(session: Session, viewer: User, q: str | None = None, *,
                         include_id: int | None = None, limit: int = OPTION_LIMIT) -> list[tuple[int, str]]:
    """Visible companies by name (optionally matching ``q``); ``include_id`` is kept
    first so a chosen value survives a search."""
    stmt = sa.select(Company.id, Company.name)
    if q:
        stmt = stmt.where(Company.name.ilike(f"%{escape_like(q)}%", escape="\\"))
    stmt = _scope(stmt.order_by(Company.name, Company.id).limit(limit), viewer, Company)
    options = [(i, n) for i, n in session.execute(stmt)]
    if include_id is not None and all(i != include_id for i, _ in options):
        chosen = _scope(sa.select(Company.id, Company.name).where(Company.id == include_id), viewer, Company)
        options = [(i, n) for i, n in session.execute(chosen)] + options
    return options


@dataclass
class ContactOption:
    id: int
    name: str
    title: str | None
    company_id: int | None


def list_contact_options(session: Session, viewer: User, company_id: int | None, q: str | None = None, *,
                         limit: int = OPTION_LIMIT) -> tuple[list[ContactOption], list[ContactOption]]:
    """Visible contacts: those of ``company_id`` first, then the others (both by name)."""

    def fetch(where: sa.ColumnElement[bool] | None) -> list[ContactOption]:
        stmt = sa.select(Contact.id, Contact.name, Contact.title, Contact.company_id)
        if where is not None:
            stmt = stmt.where(where)
        if q:
            stmt = stmt.where(Contact.name.ilike(f"%{escape_like(q)}%", escape="\\"))
        stmt = _scope(stmt.order_by(Contact.name, Contact.id).limit(limit), viewer, Contact)
        return [ContactOption(*row) for row in session.execute(stmt)]

    if company_id is None:
        return [], fetch(None)
    at_company = fetch(Contact.company_id == company_id)
    others = fetch(sa.or_(Contact.company_id.is_(None), Contact.company_id != company_id))
    return at_company, others


def get_company_name(session: Session, viewer: User, company_id: int | None) -> str | None:
    if company_id is None:
        return None
    stmt = _scope(sa.select(Company.name).where(Company.id == company_id), viewer, Company)
    name: str | None = session.scalars(stmt).first()
    return name
