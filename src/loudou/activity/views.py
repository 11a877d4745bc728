"""``/my-day``: what a rep should do today (PRODUCT.md B1, B4) — overdue and today's
follow-ups in the viewer's time zone, and the open deals that need a push: no next step,
rotting in their stage, no activity for N days. A manager sees the same for the team, an
admin for everyone; both can narrow it to one team or person.

Tasks are marked done inline: HTMX swaps the row and the two task counters; without
JavaScript the form posts and the page comes back with a 303.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Form
from fastapi.responses import Response
from sqlalchemy.orm import Session

from loudou.activity import my_day_queries as mdq
from loudou.activity import service as activity_service
from loudou.activity.schemas import TaskUpdate
from loudou.auth.models import Role, Team, User
from loudou.db import utcnow
from loudou.deal.models import Deal
from loudou.pipeline.models import Stage
from loudou.web.deps import DbSession
from loudou.web.pages import CurrentPage, hx_redirect
from loudou.web.sessions import safe_next
from loudou.web.templating import Page, is_htmx, render

router = APIRouter(include_in_schema=False)

TEMPLATE = "activity/my_day.html"
TASK_ROW = "activity/_task_row.html"
#: "No activity for N days": the choices offered; 14 days is two weekly rhythms.
IDLE_CHOICES = (7, 14, 30, 60)
DEFAULT_IDLE_DAYS = 14
BUCKETS = ("overdue", "today", "no_next_step", "rotting", "idle")


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    team_id: int | None
    is_active: bool


@dataclass
class Who:
    """Whose work the page shows, and the choices of the filter bar."""

    owners: list[int] | None  # None: everyone the viewer may see (an admin's whole company)
    team_id: int | None
    owner_id: int | None
    teams: list[Team]
    members: list[Person]  # choices of the person filter
    is_team_view: bool  # more than one person's work: show each item's owner
    team_name: str | None = None
    owner_name: str | None = None


def _int_or_none(raw: str) -> int | None:
    raw = raw.strip()
    return int(raw) if raw.isdigit() else None


def _people(session: Session, team_id: int | None = None) -> list[Person]:
    stmt = sa.select(User.id, User.name, User.team_id, User.is_active).order_by(User.name, User.id)
    if team_id is not None:
        stmt = stmt.where(User.team_id == team_id)
    return [Person(*row) for row in session.execute(stmt)]


def _who(session: Session, viewer: User, team_param: str, owner_param: str) -> Who:
    """Rep: themselves. Manager: their team (members past and present, so a departed rep's
    deals still show), or one member. Admin: everyone, one team, or one person. Unknown or
    out-of-reach choices fall back to the default instead of failing: the policy would
    hide their records anyway."""
    owner_id = _int_or_none(owner_param)
    if viewer.role == Role.rep:
        return Who(owners=[viewer.id], team_id=viewer.team_id, owner_id=viewer.id, teams=[], members=[],
                   is_team_view=False)
    if viewer.role == Role.manager:
        team_people = _people(session, viewer.team_id) if viewer.team_id is not None else []
        if all(p.id != viewer.id for p in team_people):
            team_people.append(Person(viewer.id, viewer.name, viewer.team_id, viewer.is_active))
        ids = [p.id for p in team_people]
        members = [p for p in team_people if p.is_active]
        team = session.get(Team, viewer.team_id) if viewer.team_id is not None else None
        team_name = team.name if team is not None else None
        if owner_id is not None and owner_id in ids:
            owner_name = next(p.name for p in team_people if p.id == owner_id)
            return Who(owners=[owner_id], team_id=viewer.team_id, owner_id=owner_id, teams=[], members=members,
                       is_team_view=False, team_name=team_name, owner_name=owner_name)
        return Who(owners=ids, team_id=viewer.team_id, owner_id=None, teams=[], members=members, is_team_view=True,
                   team_name=team_name)
    teams = list(session.scalars(sa.select(Team).order_by(Team.name)))
    team_id = _int_or_none(team_param)
    if team_id not in {t.id for t in teams}:
        team_id = None
    people = _people(session, team_id)
    members = [p for p in people if p.is_active]
    team_name = next((t.name for t in teams if t.id == team_id), None)
    name = next((p.name for p in people if p.id == owner_id), None)
    if owner_id is not None and name is not None:
        return Who(owners=[owner_id], team_id=team_id, owner_id=owner_id, teams=teams, members=members,
                   is_team_view=False, team_name=team_name, owner_name=name)
    if team_id is not None:
        return Who(owners=[p.id for p in people], team_id=team_id, owner_id=None, teams=teams, members=members,
                   is_team_view=True, team_name=team_name)
    return Who(owners=None, team_id=None, owner_id=None, teams=teams, members=members, is_team_view=True)


def _context(session: Session, page: Page, who: Who, idle_days: int, more: str | None) -> dict[str, Any]:
    viewer = page.user
    assert viewer is not None
    day = mdq.load_my_day(session, viewer, who.owners, now=utcnow(), tz=page.fmt.tz, idle_days=idle_days,
                          more=more)
    names = {p.id: p.name for p in _people(session)} if who.is_team_view else {}
    stages = {s.id: s for s in session.scalars(sa.select(Stage))}
    query = {"team": who.team_id if viewer.role == Role.admin else None, "owner": who.owner_id
             if viewer.role != Role.rep else None, "idle": idle_days if idle_days != DEFAULT_IDLE_DAYS else None}
    return {
        "active_nav": "my-day",
        "day": day,
        "who": who,
        "names": names,
        "stages": stages,
        "idle_days": idle_days,
        "idle_choices": IDLE_CHOICES,
        "query": {k: v for k, v in query.items() if v is not None},
        "today": page.fmt.today(),
        "today_start": mdq.local_day_bounds(page.fmt.today(), page.fmt.tz)[0],
        "now": utcnow(),
        "next": page.request.url.path + (f"?{page.request.url.query}" if page.request.url.query else ""),
    }


@router.get("/my-day", name="my_day")
def my_day(page: CurrentPage, session: DbSession, team: str = "", owner: str = "", idle: str = "",
           more: str = "") -> Response:
    assert page.user is not None
    idle_days = _int_or_none(idle)
    if idle_days not in IDLE_CHOICES:
        idle_days = DEFAULT_IDLE_DAYS
    who = _who(session, page.user, team, owner)
    return render(page, TEMPLATE, _context(session, page, who, idle_days, more if more in BUCKETS else None))


@router.post("/my-day/tasks/{task_id:int}/done", name="my_day_task_done")
def mark_task_done(page: CurrentPage, session: DbSession, task_id: int, version: Annotated[int, Form()],
                   done: Annotated[str, Form()] = "1", team: Annotated[str, Form()] = "",
                   owner: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/my-day") -> Response:
    """Done (or undone, ``done=0``) through the task service: the policy, the version read
    and the audit log apply as everywhere else; a stale version answers 409 (a toast). HTMX
    gets the row back plus fresh task counters for the filter the page shows."""
    viewer = page.user
    assert viewer is not None
    is_done = done != "0"
    task = activity_service.update_task(session, viewer, task_id, TaskUpdate(version=version, done=is_done),
                                        source="web")
    back = next if next.startswith("/my-day") else "/my-day"
    if not is_htmx(page.request):
        return hx_redirect(page.request, safe_next(back))
    session.flush()
    who = _who(session, viewer, team, owner)
    now = utcnow()
    overdue, today = mdq.task_counts(session, viewer, who.owners, now=now, tz=page.fmt.tz)
    deal_title = session.scalar(sa.select(Deal.title).where(Deal.id == task.deal_id)) if task.deal_id else None
    row = mdq.TaskRow(id=task.id, title=task.title, due_at=task.due_at or now, priority=task.priority,
                      version=task.version, owner_id=task.owner_id, deal_id=task.deal_id, deal_title=deal_title)
    return render(page, TASK_ROW, {
        "t": row, "is_done": is_done, "who": who, "names": {p.id: p.name for p in _people(session)},
        "today_start": mdq.local_day_bounds(page.fmt.today(), page.fmt.tz)[0], "next": back,
        "counts": {"overdue": overdue, "today": today},
    })
