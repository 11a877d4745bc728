"""``/my-day`` through the HTTP interface (and its queries directly for exact day
boundaries), on SQLite and PostgreSQL.

Test world (tests/conftest.py): alice admin; bob manager and carol rep of team East;
dave rep and erin manager of team West. Default pipeline: Prospect (7 expected days) →
First contact (10) → Needs analysis → Proposal → Negotiation & signing.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from loudou.activity import my_day_queries as mdq
from loudou.activity import service as activity_service
from loudou.activity.models import Task
from loudou.activity.schemas import TaskCreate
from loudou.audit.models import AuditLog
from loudou.auth.models import User
from loudou.db import Database, utcnow
from loudou.deal import service as deal_service
from loudou.deal.models import Deal
from loudou.deal.schemas import DealClose, DealCreate
from tests.conftest import People
from tests.web.conftest import sign_in_page as sign_in
from tests.web.test_auth_pages import csrf_of

HX = {"HX-Request": "true"}
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def new_deal(db: Database, who: User, title: str, **fields: Any) -> Deal:
    with db.session_scope() as s:
        return deal_service.create_deal(s, who, DealCreate(title=title, **fields))


def new_task(db: Database, who: User, title: str, due_at: dt.datetime, deal: Deal | None = None) -> Task:
    with db.session_scope() as s:
        return activity_service.create_task(
            s, who, TaskCreate(title=title, due_at=due_at, deal_id=deal.id if deal else None))


def set_deal(db: Database, deal: Deal, **values: Any) -> None:
    """Age a deal by hand: the derived columns a real history would have set."""
    with db.session_scope() as s:
        s.execute(sa.update(Deal).where(Deal.id == deal.id).values(**values))


def set_timezone(db: Database, who: User, tz: str) -> None:
    with db.session_scope() as s:
        s.execute(sa.update(User).where(User.id == who.id).values(timezone=tz))


def local(day: dt.date, hour: int, minute: int, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz).astimezone(dt.UTC)


def section(html: str, name: str) -> str:
    """The HTML of one list of the page (tasks or deals of one kind)."""
    start = html.index(f'data-testid="section-{name}"')
    return html[start: html.index("</section>", start)]


def count(html: str, name: str) -> int:
    m = re.search(rf'<span id="count-{name}" class="md-count-n">([\d,]+)</span>', html)
    assert m, f"no counter {name}"
    return int(m.group(1).replace(",", ""))


class TestDayBoundaries:
    """The buckets are the viewer's local days, computed by the queries from ``now``."""

    @pytest.mark.parametrize("tz_name", ["Asia/Shanghai", "America/Los_Angeles", "Pacific/Auckland"])
    def test_a_task_at_half_past_midnight_local_is_today(self, db: Database, people: People,
                                                         tz_name: str) -> None:
        tz = zoneinfo.ZoneInfo(tz_name)
        now = dt.datetime(2026, 3, 10, 15, 0, tzinfo=tz).astimezone(dt.UTC)
        today = dt.date(2026, 3, 10)
        early = new_task(db, people.carol, "early today", local(today, 0, 30, tz))
        late_yesterday = new_task(db, people.carol, "late yesterday", local(today - dt.timedelta(days=1), 23, 59, tz))
        tomorrow = new_task(db, people.carol, "just after midnight", local(today + dt.timedelta(days=1), 0, 5, tz))
        with db.session_scope(write=False) as s:
            day = mdq.load_my_day(s, people.carol, [people.carol.id], now=now, tz=tz, idle_days=14)
        assert [t.id for t in day.today.rows] == [early.id]
        assert [t.id for t in day.overdue.rows] == [late_yesterday.id]
        assert tomorrow.id not in {t.id for t in day.today.rows + day.overdue.rows}
        assert (day.today.count, day.overdue.count) == (1, 1)

    def test_a_day_with_a_dst_change_is_still_one_local_day(self, db: Database, people: People) -> None:
        tz = zoneinfo.ZoneInfo("America/New_York")  # 2026-03-08 has 23 hours there
        now = dt.datetime(2026, 3, 8, 22, 0, tzinfo=tz).astimezone(dt.UTC)
        last_minute = new_task(db, people.carol, "last minute", local(dt.date(2026, 3, 8), 23, 59, tz))
        with db.session_scope(write=False) as s:
            day = mdq.load_my_day(s, people.carol, [people.carol.id], now=now, tz=tz, idle_days=14)
        assert [t.id for t in day.today.rows] == [last_minute.id]

    def test_done_tasks_and_tasks_of_others_are_left_out(self, db: Database, people: People) -> None:
        now = utcnow()
        done = new_task(db, people.carol, "done", now - dt.timedelta(days=2))
        with db.session_scope() as s:
            activity_service.update_task(s, people.carol, done.id,
                                         activity_service.TaskUpdate(version=done.version, done=True))
        new_task(db, people.dave, "dave's", now - dt.timedelta(days=2))
        with db.session_scope(write=False) as s:
            day = mdq.load_my_day(s, people.carol, [people.carol.id], now=now, tz=SHANGHAI, idle_days=14)
        assert day.overdue.count == 0 and day.today.count == 0


class TestRepPage:
    def test_tasks_follow_the_users_time_zone(self, client: TestClient, db: Database, people: People) -> None:
        set_timezone(db, people.carol, "Asia/Shanghai")
        today = dt.datetime.now(SHANGHAI).date()
        deal = new_deal(db, people.carol, "Acme rollout")
        new_task(db, people.carol, "Call at half past midnight", local(today, 0, 30, SHANGHAI), deal)
        new_task(db, people.carol, "Send quote yesterday", local(today - dt.timedelta(days=1), 23, 50, SHANGHAI), deal)
        new_task(db, people.carol, "Tomorrow's demo", local(today + dt.timedelta(days=1), 0, 10, SHANGHAI), deal)
        html = sign_in(client, people.carol).get("/my-day").text
        assert "Call at half past midnight" in section(html, "today")
        assert "Send quote yesterday" in section(html, "overdue")
        assert "Tomorrow's demo" not in html
        assert (count(html, "overdue"), count(html, "today")) == (1, 1)
        assert f'href="/deals/{deal.id}"' in section(html, "today")
        assert "1 day late" in section(html, "overdue")

    def test_deal_buckets(self, client: TestClient, db: Database, people: People) -> None:
        now = utcnow()
        planned = new_deal(db, people.carol, "Planned deal")
        new_task(db, people.carol, "Next step", now + dt.timedelta(days=2), planned)
        new_deal(db, people.carol, "Unplanned deal", amount=50000)
        stuck = new_deal(db, people.carol, "Stuck deal")
        set_deal(db, stuck, stage_entered_at=now - dt.timedelta(days=30))  # Prospect expects 7 days
        fresh_in_stage = new_deal(db, people.carol, "Fresh deal")
        set_deal(db, fresh_in_stage, stage_entered_at=now - dt.timedelta(days=3))
        quiet = new_deal(db, people.carol, "Quiet deal")
        set_deal(db, quiet, created_at=now - dt.timedelta(days=40), last_activity_at=now - dt.timedelta(days=20))
        never_worked = new_deal(db, people.carol, "Never worked deal")
        set_deal(db, never_worked, created_at=now - dt.timedelta(days=16), last_activity_at=None)
        won = new_deal(db, people.carol, "Won deal")
        set_deal(db, won, stage_entered_at=now - dt.timedelta(days=90), created_at=now - dt.timedelta(days=90))
        with db.session_scope() as s:
            deal_service.win_deal(s, people.carol, won.id, DealClose(version=won.version))
        new_deal(db, people.dave, "Dave's deal")

        html = sign_in(client, people.carol).get("/my-day").text
        no_next, rotting, idle = section(html, "no_next_step"), section(html, "rotting"), section(html, "idle")
        assert "Unplanned deal" in no_next and "Planned deal" not in no_next
        assert no_next.index("Unplanned deal") < no_next.index("Stuck deal")  # biggest amount first
        assert "Stuck deal" in rotting and "Fresh deal" not in rotting
        assert "30 days in stage" in rotting
        assert "Quiet deal" in idle and "Never worked deal" in idle and "Planned deal" not in idle
        assert "Won deal" not in html and "Dave&#39;s deal" not in html and "Dave's deal" not in html
        assert count(html, "no_next_step") == 5  # every open deal of carol's but the planned one
        assert (count(html, "rotting"), count(html, "idle")) == (1, 2)

        wider = client.get("/my-day", params={"idle": "30"}).text
        assert "Quiet deal" not in section(wider, "idle") and "Never worked deal" not in section(wider, "idle")
        assert "No activity in 30 days" in wider

    def test_a_rep_cannot_look_at_someone_else(self, client: TestClient, db: Database, people: People) -> None:
        new_task(db, people.dave, "Dave's secret task", utcnow() - dt.timedelta(hours=30))
        html = sign_in(client, people.carol).get("/my-day", params={"owner": people.dave.id}).text
        assert "secret task" not in html
        assert 'data-testid="filter-owner"' not in html

    def test_empty_states_say_what_to_do(self, client: TestClient, people: People) -> None:
        html = sign_in(client, people.carol).get("/my-day").text
        assert "Nothing overdue." in section(html, "overdue")
        assert "Nothing due today." in section(html, "today")
        assert "New leads start on the board" in section(html, "rotting")
        assert 'href="/board"' in section(html, "no_next_step")

    def test_show_more_raises_one_lists_limit(self, client: TestClient, db: Database, people: People) -> None:
        for i in range(mdq.DEAL_LIMIT + 2):
            new_deal(db, people.carol, f"Deal {i:02d}")
        html = sign_in(client, people.carol).get("/my-day").text
        assert section(html, "no_next_step").count('data-testid="my-day-deal"') == mdq.DEAL_LIMIT
        assert 'data-testid="more-no_next_step"' in html
        more = client.get("/my-day", params={"more": "no_next_step"}).text
        assert section(more, "no_next_step").count('data-testid="my-day-deal"') == mdq.DEAL_LIMIT + 2


class TestTeamViews:
    def test_a_manager_sees_the_team_with_owners(self, client: TestClient, db: Database, people: People) -> None:
        yesterday = utcnow() - dt.timedelta(days=2)
        new_task(db, people.carol, "Carol's follow-up", yesterday)
        new_task(db, people.bob, "Bob's own follow-up", yesterday)
        new_task(db, people.dave, "Dave's follow-up", yesterday)
        new_deal(db, people.carol, "Carol's deal")
        html = sign_in(client, people.bob).get("/my-day").text
        overdue = section(html, "overdue")
        assert "Carol&#39;s follow-up" in overdue and "Bob&#39;s own follow-up" in overdue
        assert "Dave&#39;s follow-up" not in html
        assert '<span class="md-owner">Carol</span>' in overdue
        assert "Carol&#39;s deal" in section(html, "no_next_step")
        assert "Team: East" in html

        only_carol = client.get("/my-day", params={"owner": people.carol.id}).text
        assert "Carol&#39;s follow-up" in only_carol and "Bob&#39;s own follow-up" not in only_carol
        outside = client.get("/my-day", params={"owner": people.dave.id}).text  # not in bob's team
        assert "Dave&#39;s follow-up" not in outside and "Carol&#39;s follow-up" in outside

    def test_an_admin_sees_everyone_and_filters_by_team(self, client: TestClient, db: Database,
                                                        people: People) -> None:
        yesterday = utcnow() - dt.timedelta(days=2)
        new_task(db, people.carol, "East task", yesterday)
        new_task(db, people.dave, "West task", yesterday)
        html = sign_in(client, people.alice).get("/my-day").text
        assert "East task" in html and "West task" in html
        assert 'data-testid="filter-team"' in html
        east = people.carol.team_id
        html = client.get("/my-day", params={"team": east}).text
        assert "East task" in html and "West task" not in html
        html = client.get("/my-day", params={"team": east, "owner": people.dave.id}).text  # dave is West
        assert "East task" in html and "West task" not in html


class TestMarkDone:
    def _task_form(self, client: TestClient, task: Task) -> dict[str, str]:
        html = client.get("/my-day").text
        return {"csrf_token": csrf_of(html), "version": str(task.version), "next": "/my-day"}

    def test_htmx_ticks_a_task_off_and_refreshes_the_counters(self, client: TestClient, db: Database,
                                                             people: People) -> None:
        task = new_task(db, people.carol, "Ship it", utcnow() - dt.timedelta(days=3))
        sign_in(client, people.carol)
        form = self._task_form(client, task)
        r = client.post(f"/my-day/tasks/{task.id}/done", data=form, headers=HX)
        assert r.status_code == 200
        assert 'data-testid="task-undo"' in r.text and "is-done" in r.text
        assert '<span id="count-overdue" class="md-count-n" hx-swap-oob="true">0</span>' in r.text
        with db.session_scope(write=False) as s:
            saved = s.get(Task, task.id)
            assert saved is not None and saved.done_at is not None
            audited = s.scalars(sa.select(AuditLog.field).where(AuditLog.entity == "task",
                                                                AuditLog.entity_id == task.id,
                                                                AuditLog.action == "update")).all()
            assert "done_at" in audited
            version = saved.version
        undo = client.post(f"/my-day/tasks/{task.id}/done", data={**form, "version": str(version), "done": "0"},
                           headers=HX)
        assert undo.status_code == 200 and 'data-testid="task-done"' in undo.text
        assert '<span id="count-overdue" class="md-count-n" hx-swap-oob="true">1</span>' in undo.text

    def test_without_javascript_the_page_comes_back(self, client: TestClient, db: Database,
                                                    people: People) -> None:
        task = new_task(db, people.carol, "Ship it", utcnow())
        sign_in(client, people.carol)
        form = {**self._task_form(client, task), "next": "/my-day?idle=30"}
        r = client.post(f"/my-day/tasks/{task.id}/done", data=form, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/my-day?idle=30"
        evil = client.post(f"/my-day/tasks/{task.id}/done", data={**form, "done": "0", "version": "2",
                                                                 "next": "https://evil.example/"},
                           follow_redirects=False)
        assert evil.headers["location"] == "/my-day"

    def test_a_stale_version_is_a_conflict(self, client: TestClient, db: Database, people: People) -> None:
        task = new_task(db, people.carol, "Ship it", utcnow())
        sign_in(client, people.carol)
        form = self._task_form(client, task)
        with db.session_scope() as s:  # someone else edits the task meanwhile
            activity_service.update_task(s, people.carol, task.id,
                                         activity_service.TaskUpdate(version=task.version, title="Renamed"))
        r = client.post(f"/my-day/tasks/{task.id}/done", data=form, headers=HX)
        assert r.status_code == 409 and "toast" in r.text
        with db.session_scope(write=False) as s:
            saved = s.get(Task, task.id)
            assert saved is not None and saved.done_at is None

    def test_a_task_out_of_reach_is_not_found(self, client: TestClient, db: Database, people: People) -> None:
        task = new_task(db, people.dave, "Dave's", utcnow())
        sign_in(client, people.carol)
        form = self._task_form(client, task)
        assert client.post(f"/my-day/tasks/{task.id}/done", data=form, headers=HX).status_code == 404

    def test_a_manager_ticks_off_a_team_members_task(self, client: TestClient, db: Database,
                                                     people: People) -> None:
        task = new_task(db, people.carol, "Carol's", utcnow() - dt.timedelta(days=2))
        sign_in(client, people.bob)
        r = client.post(f"/my-day/tasks/{task.id}/done", data=self._task_form(client, task), headers=HX)
        assert r.status_code == 200 and '<span class="md-owner">Carol</span>' in r.text

    def test_the_form_needs_its_csrf_token(self, client: TestClient, db: Database, people: People) -> None:
        task = new_task(db, people.carol, "Ship it", utcnow())
        sign_in(client, people.carol)
        r = client.post(f"/my-day/tasks/{task.id}/done", data={"version": str(task.version)})
        assert r.status_code == 403
