"""Settings and My day in a real browser (Chromium through Playwright) against a live demo
server: the stage order changed with the buttons and by dragging, and a follow-up due
today ticked off on /my-day. Tests that change shared demo data put it back."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from loudou.activity import service as activity_service
from loudou.activity.models import Task
from loudou.activity.schemas import TaskCreate
from loudou.auth.models import User
from loudou.db import Database
from loudou.deal.models import Deal, DealStatus
from tests.web.conftest import LiveServer, SignIn


def as_int(value: object) -> int:
    assert isinstance(value, int), value
    return value


def default_pipeline_id(live_server: LiveServer) -> int:
    return as_int(live_server.sql("SELECT id FROM pipelines WHERE is_default = 1")[0][0])


def stage_order(live_server: LiveServer, pipeline_id: int) -> list[int]:
    rows = live_server.sql("SELECT id FROM stages WHERE pipeline_id = ? AND is_active = 1 ORDER BY position, id",
                           (pipeline_id,))
    return [as_int(r[0]) for r in rows]


@pytest.fixture
def live_db(live_server: LiveServer) -> Iterator[Database]:
    """The live server's database, for setting up and putting back through the services."""
    db = Database(f"sqlite:///{live_server.db_path}")
    yield db
    db.engine.dispose()


@pytest.fixture
def original_order(live_server: LiveServer, live_db: Database) -> Iterator[list[int]]:
    """The default pipeline's stage order, restored after the test (other browser tests read it)."""
    pipeline_id = default_pipeline_id(live_server)
    order = stage_order(live_server, pipeline_id)
    yield order
    from loudou.pipeline import service as pipeline_service

    with live_db.session_scope() as s:
        admin = s.scalars(sa.select(User).where(User.email == live_server.logins["admin"])).one()
        pipeline_service.reorder_stages(s, admin, pipeline_id, order)


def rows(page: Any) -> list[int]:
    return [int(x) for x in page.locator("[data-testid=stage-row]").evaluate_all(
        "rows => rows.map(r => r.dataset.stageId)")]


def test_admin_moves_a_stage_down_with_the_button_and_the_order_persists(
        sign_in: SignIn, live_server: LiveServer, original_order: list[int]) -> None:
    pipeline_id = default_pipeline_id(live_server)
    page: Any = sign_in("admin", locale="en")
    page.goto(f"{live_server.url}/settings/pipelines/{pipeline_id}")
    assert rows(page) == original_order
    first = page.locator(f"[data-stage-id='{original_order[0]}'] [data-testid=stage-down]")
    with page.expect_response(lambda r: "/move" in r.url) as answer:
        first.click()
    assert answer.value.status == 200
    expected = [original_order[1], original_order[0], *original_order[2:]]
    page.wait_for_function(
        "ids => [...document.querySelectorAll('[data-testid=stage-row]')].map(r => +r.dataset.stageId).join() "
        "=== ids.join()", arg=expected)
    assert stage_order(live_server, pipeline_id) == expected
    page.reload()
    assert rows(page) == expected
    # The keyboard reaches the button too: focus it and press Enter.
    page.locator(f"[data-stage-id='{original_order[0]}'] [data-testid=stage-up]").focus()
    with page.expect_response(lambda r: "/move" in r.url):
        page.keyboard.press("Enter")
    page.wait_for_function(
        "ids => [...document.querySelectorAll('[data-testid=stage-row]')].map(r => +r.dataset.stageId).join() "
        "=== ids.join()", arg=original_order)
    assert stage_order(live_server, pipeline_id) == original_order


def test_admin_drags_a_stage_and_the_order_persists(sign_in: SignIn, live_server: LiveServer,
                                                    original_order: list[int]) -> None:
    pipeline_id = default_pipeline_id(live_server)
    page: Any = sign_in("admin", locale="zh-CN")
    page.goto(f"{live_server.url}/settings/pipelines/{pipeline_id}")
    handle = page.locator(f"[data-stage-id='{original_order[0]}'] .drag")
    target = page.locator(f"[data-stage-id='{original_order[2]}']")
    box, goal = handle.bounding_box(), target.bounding_box()
    with page.expect_response(lambda r: r.url.endswith("/stages/order")) as answer:
        # A real pointer drag: SortableJS (forceFallback) follows mouse moves.
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2 + 8, steps=4)
        page.mouse.move(goal["x"] + 10, goal["y"] + goal["height"] * 0.8, steps=20)
        page.mouse.up()
    assert answer.value.status == 200
    saved = stage_order(live_server, pipeline_id)
    assert saved != original_order and sorted(saved) == sorted(original_order)
    assert saved.index(original_order[0]) > saved.index(original_order[1])
    page.reload()
    assert rows(page) == saved


@pytest.fixture
def task_due_today(live_server: LiveServer, live_db: Database) -> Iterator[tuple[int, str]]:
    """A follow-up on one of the rep's open deals, due at noon today in the rep's time zone."""
    title = "Browser test: call back at noon"
    with live_db.session_scope() as s:
        rep = s.scalars(sa.select(User).where(User.email == live_server.logins["rep"])).one()
        deal_id = s.scalar(sa.select(Deal.id).where(Deal.owner_id == rep.id, Deal.status == DealStatus.open)
                           .order_by(Deal.id).limit(1))
        tz = zoneinfo.ZoneInfo(rep.timezone or "Asia/Shanghai")
        noon = dt.datetime.combine(dt.datetime.now(tz).date(), dt.time(12), tzinfo=tz)
        task = activity_service.create_task(s, rep, TaskCreate(title=title, deal_id=deal_id, due_at=noon))
        task_id = task.id
    yield task_id, title
    with live_db.session_scope() as s:
        s.execute(sa.delete(Task).where(Task.id == task_id))


def test_a_rep_sees_a_task_due_today_and_ticks_it_off(sign_in: SignIn, live_server: LiveServer,
                                                      task_due_today: tuple[int, str]) -> None:
    task_id, title = task_due_today
    page: Any = sign_in("rep", locale="zh-CN", viewport=(390, 844))
    page.goto(f"{live_server.url}/my-day")
    row = page.locator(f"[data-testid=section-today] #task-{task_id}")
    assert title in row.inner_text()
    assert "12:00" in row.inner_text()
    before = int(page.locator("#count-today").inner_text().replace(",", ""))
    with page.expect_response(lambda r: f"/my-day/tasks/{task_id}/done" in r.url) as answer:
        row.locator("[data-testid=task-done]").click()
    assert answer.value.status == 200
    page.locator(f"#task-{task_id}.is-done").wait_for()
    assert int(page.locator("#count-today").inner_text().replace(",", "")) == before - 1
    assert live_server.sql("SELECT done_at IS NOT NULL FROM tasks WHERE id = ?", (task_id,))[0][0] == 1
