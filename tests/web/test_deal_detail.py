"""The deal page /deals/{id} through the HTTP interface, on SQLite and PostgreSQL.

Test world (tests/conftest.py):

    alice  admin                  sees everything
    bob    manager, team East     sees East's deals (carol's)
    carol  rep, team East         owns the deals below
    dave   rep, team West         sees none of carol's deals (404, never 403)
    erin   manager, team West

Default pipeline: Prospect → First contact → Needs analysis (needs a contact) →
Proposal (needs amount and company) → Negotiation & signing (needs amount, expected
close and a confirmed checklist item).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from loudou.activity import service as activity_service
from loudou.activity.models import Activity, ActivityKind, Task
from loudou.activity.schemas import ActivityCreate
from loudou.auth.models import User
from loudou.company import service as company_service
from loudou.company.schemas import CompanyCreate
from loudou.contact import service as contact_service
from loudou.contact.schemas import ContactCreate
from loudou.db import Database
from loudou.deal import service as deal_service
from loudou.deal.models import Deal, DealStatus, StageTransition
from loudou.deal.schemas import DealCreate, DealMove, DealUpdate
from loudou.pipeline import queries as pipeline_queries
from loudou.pipeline.models import LostReason, Stage
from tests.conftest import People, default_pipeline, reload_deal
from tests.web.conftest import sign_in_page as as_user
from tests.web.test_auth_pages import csrf_of

HX = {"HX-Request": "true"}


def stages(db: Database) -> list[Stage]:
    with db.session_scope(write=False) as s:
        return pipeline_queries.list_stages(s, default_pipeline(s).id)


def new_deal(db: Database, who: User, **fields: object) -> Deal:
    with db.session_scope() as s:
        return deal_service.create_deal(s, who, DealCreate(title=str(fields.pop("title", "Big order")),
                                                           **fields))  # type: ignore[arg-type]


def reason(db: Database, kind: str) -> LostReason:
    with db.session_scope(write=False) as s:
        found = s.scalars(sa.select(LostReason).where(LostReason.kind == kind).order_by(LostReason.id)).first()
        assert found is not None
        return found


def page_csrf(client: TestClient, deal_id: int) -> str:
    return csrf_of(client.get(f"/deals/{deal_id}").text)


def timeline_keys(html: str) -> list[tuple[int, int, int]]:
    return [tuple(int(p) for p in k.split(".")) for k in re.findall(r'data-key="([0-9.]+)"', html)]  # type: ignore[misc]


def titles(html: str) -> list[str]:
    return [t.strip() for t in re.findall(r'class="tl-title"[^>]*>([^<]*)<', html)]


@pytest.fixture
def customer(db: Database, people: People) -> tuple[int, int]:
    """Carol's company and its contact."""
    with db.session_scope() as s:
        company = company_service.create_company(s, people.carol, CompanyCreate(name="Acme Trading"))
        contact = contact_service.create_contact(s, people.carol, ContactCreate(name="Li Lei", company_id=company.id))
        return company.id, contact.id


class TestRender:
    def test_shows_header_stage_bar_guidance_and_timeline(self, client: TestClient, db: Database, people: People,
                                                          customer: tuple[int, int]) -> None:
        company_id, contact_id = customer
        deal = new_deal(db, people.carol, title="Fleet renewal", amount=Decimal("120000"), company_id=company_id,
                        contact_id=contact_id)
        r = as_user(client, people.carol).get(f"/deals/{deal.id}")
        assert r.status_code == 200
        html = r.text
        assert "Fleet renewal" in html
        assert f'href="/companies/{company_id}"' in html and "Acme Trading" in html
        assert f'href="/contacts/{contact_id}"' in html and "Li Lei" in html
        for stage in stages(db):
            assert stage.name_en is not None and stage.name_en.replace("&", "&amp;") in html
        current = re.search(r'<li class="step step-current[^"]*"\s*aria-current="step"[^>]*>\s*<span[^>]*>1</span>\s*'
                            r'<span class="step-name">([^<]+)<', html)
        assert current and current.group(1) == "Prospect"
        assert "CN¥120,000" in html and "10%" in html  # amount and the stage's default probability
        assert "Identify the customer profile and source" in html  # main task, English half
        assert "Confirm industry, size and buying chain" in html  # the playbook (E6)
        assert 'data-testid="deal-status">Open<' in html
        assert titles(html) == ["Created in Prospect"]

    def test_chinese_page_shows_chinese_names(self, client: TestClient, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol)
        as_user(client, people.carol)
        html = client.get(f"/deals/{deal.id}", headers={"Accept-Language": "zh-CN"}).text
        assert "潜在客户" in html and "识别客户画像与来源" in html and "动态" in html

    def test_rotting_deal_is_marked(self, client: TestClient, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol)
        with db.session_scope() as s:
            s.execute(sa.update(Deal).where(Deal.id == deal.id)
                      .values(stage_entered_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=30)))
        html = as_user(client, people.carol).get(f"/deals/{deal.id}").text
        assert 'data-testid="deal-rotting"' in html

    def test_user_text_is_escaped(self, client: TestClient, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol, title='<script>alert("t")</script>')
        with db.session_scope() as s:
            activity_service.log_activity(s, people.carol, ActivityCreate(
                kind=ActivityKind.note, subject="<img src=x onerror=alert(1)>", deal_id=deal.id))
        html = as_user(client, people.carol).get(f"/deals/{deal.id}").text
        assert "<script>alert" not in html and "&lt;script&gt;" in html
        assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


class TestTimeline:
    def test_newest_first_with_stage_change_activity_and_field_change(self, client: TestClient, db: Database,
                                                                        people: People) -> None:
        deal = new_deal(db, people.carol, amount=Decimal("1000"))
        first, second = stages(db)[:2]
        with db.session_scope() as s:
            activity_service.log_activity(s, people.carol, ActivityCreate(
                kind=ActivityKind.call, subject="Intro call", body="Wants a demo", deal_id=deal.id))
        with db.session_scope() as s:
            moved = deal_service.move_deal(s, people.carol, deal.id, DealMove(stage_id=second.id, version=deal.version))
        with db.session_scope() as s:
            deal_service.update_deal(s, people.carol, deal.id, DealUpdate(version=moved.version,
                                                                           amount=Decimal("2500")))
        html = as_user(client, people.carol).get(f"/deals/{deal.id}").text
        assert titles(html) == ["1 field changed", "Moved from Prospect to First contact", "Intro call",
                                "Created in Prospect"]
        keys = timeline_keys(html)
        assert keys == sorted(keys, reverse=True)
        assert "Carol" in html and "Wants a demo" in html
        assert re.search(r"Amount:</span>\s*<span class=\"old\">CN¥1,000</span> → <span class=\"new\">CN¥2,500", html)
        assert "in Prospect" in html  # time spent in the previous stage
        assert first.name_en == "Prospect"

    def test_skips_reopenings_and_losses_are_visible(self, client: TestClient, db: Database, people: People,
                                                      customer: tuple[int, int]) -> None:
        company_id, contact_id = customer
        deal = new_deal(db, people.carol, amount=Decimal("5000"), company_id=company_id, contact_id=contact_id)
        proposal = stages(db)[3]
        lost = reason(db, "lost")
        with db.session_scope() as s:
            d = deal_service.move_deal(s, people.carol, deal.id, DealMove(stage_id=proposal.id, version=deal.version))
            version = d.version
        as_user(client, people.carol)
        token = page_csrf(client, deal.id)
        client.post(f"/deals/{deal.id}/lose", data={"csrf_token": token, "version": version,
                                                    "lost_reason_id": lost.id, "note": "Budget moved to 2027"})
        deal_now = reload_deal(db, deal.id)
        client.post(f"/deals/{deal.id}/reopen", data={"csrf_token": token, "version": deal_now.version})
        html = client.get(f"/deals/{deal.id}").text
        assert titles(html)[:3] == ["Reopened (was Lost) into Proposal", "Lost at Proposal",
                                    "Moved from Prospect to Proposal"]
        assert "Skipped: First contact, Needs analysis" in html
        assert "Price too high" in html and "Budget moved to 2027" in html  # the loss carries its reason

    def test_long_history_is_paged_with_show_older(self, client: TestClient, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol)
        start = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
        with db.session_scope() as s:
            for i in range(130):
                activity_service.log_activity(s, people.carol, ActivityCreate(
                    kind=ActivityKind.email, subject=f"Mail {i}", deal_id=deal.id,
                    occurred_at=start + dt.timedelta(hours=i)))
        html = as_user(client, people.carol).get(f"/deals/{deal.id}").text
        keys = timeline_keys(html)
        assert len(keys) == 100 and titles(html)[:2] == ["Created in Prospect", "Mail 129"]
        cursor = re.search(r'hx-get="/deals/\d+/timeline\?before=([0-9.]+)"', html)
        assert cursor
        more = client.get(f"/deals/{deal.id}/timeline", params={"before": cursor.group(1)}, headers=HX)
        assert more.status_code == 200 and "<html" not in more.text
        older = timeline_keys(more.text)
        assert len(older) == 31 and "show older" not in more.text.lower()
        assert not set(keys) & set(older) and max(older) < min(keys)
        assert titles(more.text)[0] == "Mail 30" and titles(more.text)[-1] == "Mail 0"

    def test_bad_cursor_is_a_clear_error(self, client: TestClient, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol)
        r = as_user(client, people.carol).get(f"/deals/{deal.id}/timeline", params={"before": "x"}, headers=HX)
        assert r.status_code == 422


class TestQuickForms:
    def test_logging_a_call_updates_the_timeline_in_place(self, client: TestClient, db: Database,
                                                            people: People) -> None:
        deal = new_deal(db, people.carol)
        as_user(client, people.carol)
        r = client.post(f"/deals/{deal.id}/activities", headers=HX, data={
            "csrf_token": page_csrf(client, deal.id), "kind": "call", "subject": "Called the buyer",
            "body": "Budget approved", "occurred_at": ""})
        assert r.status_code == 200
        assert 'id="log-form"' in r.text and 'id="timeline" class="panel timeline"' in r.text
        assert 'hx-swap-oob="true"' in r.text and titles(r.text)[0] == "Called the buyer"
        after = reload_deal(db, deal.id)
        assert after.activity_count == 1 and after.last_activity_at is not None
        assert after.version == deal.version  # logging does not make open edit forms stale
        with db.session_scope(write=False) as s:
            activity = s.scalars(sa.select(Activity).where(Activity.deal_id == deal.id)).one()
            assert (activity.kind, activity.owner_id, activity.body) == (ActivityKind.call, people.carol.id,
                                                                         "Budget approved")

    def test_empty_activity_is_refused_naming_the_field(self, client: TestClient, db: Database,
                                                         people: People) -> None:
        deal = new_deal(db, people.carol)
        as_user(client, people.carol)
        r = client.post(f"/deals/{deal.id}/activities", headers=HX, data={
            "csrf_token": page_csrf(client, deal.id), "kind": "call", "subject": " ", "body": ""})
        assert r.status_code == 422 and 'data-field="subject"' in r.text
        assert reload_deal(db, deal.id).activity_count == 0

    def test_activity_time_is_read_in_the_users_zone(self, client: TestClient, db: Database,
                                                      people: People) -> None:
        deal = new_deal(db, people.carol)
        as_user(client, people.carol)
        client.post(f"/deals/{deal.id}/activities", data={
            "csrf_token": page_csrf(client, deal.id), "kind": "meeting", "subject": "Site visit",
            "occurred_at": "2026-01-05T09:30"}, follow_redirects=False)
        with db.session_scope(write=False) as s:
            activity = s.scalars(sa.select(Activity).where(Activity.deal_id == deal.id)).one()
        assert activity.occurred_at == dt.datetime(2026, 1, 5, 1, 30, tzinfo=dt.UTC)  # Asia/Shanghai is UTC+8

    def test_follow_up_task_is_created_and_marked_done(self, client: TestClient, db: Database,
                                                        people: People) -> None:
        deal = new_deal(db, people.carol)
        as_user(client, people.carol)
        r = client.post(f"/deals/{deal.id}/tasks", headers=HX, data={
            "csrf_token": page_csrf(client, deal.id), "title": "Send the quote", "due_date": "2026-12-01",
            "due_time": "09:30"})
        assert r.status_code == 200 and 'id="deal-tasks"' in r.text and "Send the quote" in r.text
        assert titles(r.text)[0] == "Send the quote"  # the timeline, out-of-band
        with db.session_scope(write=False) as s:
            task = s.scalars(sa.select(Task).where(Task.deal_id == deal.id)).one()
        assert task.due_at == dt.datetime(2026, 12, 1, 1, 30, tzinfo=dt.UTC)
        assert task.owner_id == people.carol.id and task.done_at is None
        r = client.post(f"/deals/{deal.id}/tasks/{task.id}/done", headers=HX,
                        data={"csrf_token": page_csrf(client, deal.id), "version": task.version})
        assert r.status_code == 200 and "No open follow-ups." in r.text
        with db.session_scope(write=False) as s:
            done = s.get(Task, task.id)
            assert done is not None and done.done_at is not None
        assert 'data-kind="task_done"' in client.get(f"/deals/{deal.id}").text

    def test_task_without_time_is_due_at_the_end_of_the_local_day(self, client: TestClient, db: Database,
                                                                  people: People) -> None:
        deal = new_deal(db, people.carol)
        as_user(client, people.carol)
        client.post(f"/deals/{deal.id}/tasks", data={"csrf_token": page_csrf(client, deal.id),
                                                     "title": "Call back", "due_date": "2026-03-02"})
        with db.session_scope(write=False) as s:
            task = s.scalars(sa.select(Task).where(Task.deal_id == deal.id)).one()
        assert task.due_at == dt.datetime(2026, 3, 2, 15, 59, tzinfo=dt.UTC)

    def test_task_of_another_deal_cannot_be_marked_here(self, client: TestClient, db: Database,
                                                        people: People) -> None:
        mine, other = new_deal(db, people.carol), new_deal(db, people.carol)
        as_user(client, people.carol)
        client.post(f"/deals/{other.id}/tasks", data={"csrf_token": page_csrf(client, other.id), "title": "X"})
        with db.session_scope(write=False) as s:
            task = s.scalars(sa.select(Task).where(Task.deal_id == other.id)).one()
        r = client.post(f"/deals/{mine.id}/tasks/{task.id}/done",
                        data={"csrf_token": page_csrf(client, mine.id), "version": task.version})
        assert r.status_code == 404


class TestActions:
    def test_lose_requires_a_reason(self, client: TestClient, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol)
        as_user(client, people.carol)
        r = client.post(f"/deals/{deal.id}/lose", headers=HX, data={
            "csrf_token": page_csrf(client, deal.id), "version": deal.version, "lost_reason_id": "", "note": "meh"})
        assert r.status_code == 422
        assert 'data-field="lost_reason_id"' in r.text and "Reason: Choose a reason." in r.text
        assert re.search(r'<details class="act act-lose" open>', r.text)  # the form stays open
        assert reload_deal(db, deal.id).status == DealStatus.open

        lost = reason(db, "lost")
        r = client.post(f"/deals/{deal.id}/lose", data={
            "csrf_token": page_csrf(client, deal.id), "version": deal.version, "lost_reason_id": lost.id,
            "note": "Chose the incumbent"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/deals/{deal.id}"
        after = reload_deal(db, deal.id)
        assert (after.status, after.lost_reason_id, after.close_note) == (DealStatus.lost, lost.id,
                                                                          "Chose the incumbent")
        html = client.get(f"/deals/{deal.id}").text
        assert 'data-testid="deal-status">Lost<' in html and 'data-testid="reopen-form"' in html

    def test_win_with_a_final_amount(self, client: TestClient, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol, amount=Decimal("1000"))
        as_user(client, people.carol)
        r = client.post(f"/deals/{deal.id}/win", headers=HX, data={
            "csrf_token": page_csrf(client, deal.id), "version": deal.version, "amount": "1,250.50"})
        assert r.status_code == 200 and "<html" not in r.text  # the page block, swapped in place
        assert 'data-testid="deal-status">Won<' in r.text and "Marked as won." in r.text
        after = reload_deal(db, deal.id)
        assert after.status == DealStatus.won and after.amount == Decimal("1250.50")

    def test_disqualify_needs_a_disqualify_reason(self, client: TestClient, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol)
        as_user(client, people.carol)
        r = client.post(f"/deals/{deal.id}/disqualify", data={
            "csrf_token": page_csrf(client, deal.id), "version": deal.version,
            "lost_reason_id": reason(db, "lost").id})
        assert r.status_code == 422 and 'data-field="lost_reason_id"' in r.text
        dq_reason = reason(db, "disqualify")
        r = client.post(f"/deals/{deal.id}/disqualify", data={
            "csrf_token": page_csrf(client, deal.id), "version": deal.version, "lost_reason_id": dq_reason.id},
            follow_redirects=False)
        assert r.status_code == 303
        after = reload_deal(db, deal.id)
        assert (after.status, after.lost_reason_id) == (DealStatus.disqualified, dq_reason.id)

    def test_reopen_into_a_chosen_stage(self, client: TestClient, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol)
        as_user(client, people.carol)
        client.post(f"/deals/{deal.id}/win", data={"csrf_token": page_csrf(client, deal.id),
                                                   "version": deal.version})
        won = reload_deal(db, deal.id)
        second = stages(db)[1]
        r = client.post(f"/deals/{deal.id}/reopen", headers=HX, data={
            "csrf_token": page_csrf(client, deal.id), "version": won.version, "stage_id": second.id})
        assert r.status_code == 200
        after = reload_deal(db, deal.id)
        assert (after.status, after.stage_id, after.closed_at) == (DealStatus.open, second.id, None)

    def test_move_with_stale_version_shows_the_current_state(self, client: TestClient, db: Database,
                                                              people: People) -> None:
        deal = new_deal(db, people.carol)
        as_user(client, people.carol)
        token = page_csrf(client, deal.id)
        with db.session_scope() as s:
            deal_service.update_deal(s, people.bob, deal.id, DealUpdate(version=deal.version, title="Renamed"))
        r = client.post(f"/deals/{deal.id}/move", headers=HX, data={
            "csrf_token": token, "version": deal.version, "stage_id": stages(db)[1].id})
        assert r.status_code == 409 and 'data-testid="deal-notice"' in r.text and "Renamed" in r.text
        assert reload_deal(db, deal.id).stage_id == stages(db)[0].id

    def test_move_asks_for_exactly_the_missing_fields(self, client: TestClient, db: Database, people: People,
                                                      customer: tuple[int, int]) -> None:
        company_id, _contact_id = customer
        deal = new_deal(db, people.carol)
        proposal = stages(db)[3]  # needs amount and company
        as_user(client, people.carol)
        r = client.post(f"/deals/{deal.id}/move", headers=HX, data={
            "csrf_token": page_csrf(client, deal.id), "version": deal.version, "stage_id": proposal.id})
        assert r.status_code == 422 and 'data-testid="missing-form"' in r.text
        form = re.search(r'<form class="form missing-form".*?</form>', r.text, re.S)
        assert form
        asked = set(re.findall(r'name="(amount|company_id|contact_id|expected_close_date|title)"', form.group(0)))
        assert asked == {"amount", "company_id"}
        assert reload_deal(db, deal.id).stage_id == stages(db)[0].id

        r = client.post(f"/deals/{deal.id}/move", headers=HX, data={
            "csrf_token": page_csrf(client, deal.id), "version": deal.version, "stage_id": proposal.id,
            "missing_form": "1", "amount": "80000", "company_id": company_id})
        assert r.status_code == 200
        after = reload_deal(db, deal.id)
        assert (after.stage_id, after.amount, after.company_id) == (proposal.id, Decimal("80000"), company_id)
        assert titles(r.text)[0] == "Moved from Prospect to Proposal"

    def test_a_refused_move_changes_nothing(self, client: TestClient, db: Database, people: People) -> None:
        """The fields sent along are applied before the checklist is checked: the page must
        roll them back, not let the request commit them."""
        deal = new_deal(db, people.carol)
        last = stages(db)[4]  # needs amount, expected close and a checklist item
        as_user(client, people.carol)
        r = client.post(f"/deals/{deal.id}/move", data={
            "csrf_token": page_csrf(client, deal.id), "version": deal.version, "stage_id": last.id,
            "missing_form": "1", "amount": "5000", "expected_close_date": "2026-12-31"})
        assert r.status_code == 422 and 'name="checklist"' in r.text
        after = reload_deal(db, deal.id)
        assert (after.amount, after.expected_close_date, after.version) == (None, None, deal.version)

    def test_missing_checklist_can_be_confirmed_in_the_same_step(self, client: TestClient, db: Database,
                                                                 people: People) -> None:
        deal = new_deal(db, people.carol, amount=Decimal("10"), expected_close_date=dt.date(2026, 12, 31))
        last = stages(db)[4]
        as_user(client, people.carol)
        r = client.post(f"/deals/{deal.id}/move", follow_redirects=False, data={
            "csrf_token": page_csrf(client, deal.id), "version": deal.version, "stage_id": last.id,
            "missing_form": "1", "checklist": last.checklist})
        assert r.status_code == 303
        html = client.get(f"/deals/{deal.id}").text
        assert 'class="done"><span class="tick" aria-hidden="true">✓</span> Decision maker accepted' in html


class TestEdit:
    def test_saves_changed_fields(self, client: TestClient, db: Database, people: People,
                                  customer: tuple[int, int]) -> None:
        company_id, contact_id = customer
        deal = new_deal(db, people.carol)
        as_user(client, people.carol)
        form = client.get(f"/deals/{deal.id}/edit", headers=HX)
        assert form.status_code == 200 and 'data-testid="edit-form"' in form.text
        assert 'name="owner_id"' not in form.text  # a rep may only own their deals: no choice to offer
        r = client.post(f"/deals/{deal.id}/edit", follow_redirects=False, data={
            "csrf_token": csrf_of(form.text), "version": deal.version, "title": "Big order, phase 2",
            "amount": "99000", "currency": "cny", "expected_close_date": "2026-09-30", "company_id": company_id,
            "contact_id": contact_id, "channel_id": "", "description": "Two sites\r\nthen rollout"})
        assert r.status_code == 303
        after = reload_deal(db, deal.id)
        assert (after.title, after.amount, after.currency, after.company_id, after.description) == (
            "Big order, phase 2", Decimal("99000"), "CNY", company_id, "Two sites\nthen rollout")

    def test_invalid_amount_is_named(self, client: TestClient, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol)
        as_user(client, people.carol)
        r = client.post(f"/deals/{deal.id}/edit", headers=HX, data={
            "csrf_token": page_csrf(client, deal.id), "version": deal.version, "title": "Big order",
            "amount": "lots"})
        assert r.status_code == 422 and 'data-field="amount"' in r.text and 'value="lots"' in r.text

    def test_stale_version_shows_both_values_and_reapplies(self, client: TestClient, db: Database,
                                                           people: People) -> None:
        deal = new_deal(db, people.carol, amount=Decimal("100"))
        as_user(client, people.carol)
        form = client.get(f"/deals/{deal.id}/edit", headers=HX).text
        base = re.search(r'name="base" value="([^"]*)"', form)
        assert base
        with db.session_scope() as s:  # bob saves first
            deal_service.update_deal(s, people.bob, deal.id, DealUpdate(version=deal.version, amount=Decimal("200"),
                                                                         title="Bob's title"))
        r = client.post(f"/deals/{deal.id}/edit", headers=HX, data={
            "csrf_token": csrf_of(form), "version": deal.version, "base": base.group(1).replace("&#34;", '"'),
            "title": "Big order", "amount": "150", "currency": "CNY"})
        assert r.status_code == 409 and 'data-testid="conflict"' in r.text
        rows = dict(re.findall(r'<tr data-field="(\w+)">(.*?)</tr>', r.text, re.S))
        assert set(rows) == {"amount", "title"}
        assert "CN¥150" in rows["amount"] and "CN¥200" in rows["amount"]
        # carol changed the amount (hers is preselected); she did not touch the title (bob's is)
        assert re.search(r'value="150" checked', rows["amount"])
        assert re.search(r'value="Bob&#39;s title" checked', rows["title"])
        assert reload_deal(db, deal.id).amount == Decimal("200")

        current = reload_deal(db, deal.id)
        r = client.post(f"/deals/{deal.id}/edit", follow_redirects=False, data={
            "csrf_token": csrf_of(r.text), "version": current.version, "amount": "150", "title": "Bob's title"})
        assert r.status_code == 303
        after = reload_deal(db, deal.id)
        assert (after.amount, after.title) == (Decimal("150"), "Bob's title")

    def test_manager_may_hand_the_deal_to_a_team_member(self, client: TestClient, db: Database,
                                                         people: People) -> None:
        deal = new_deal(db, people.carol)
        as_user(client, people.bob)
        form = client.get(f"/deals/{deal.id}/edit", headers=HX).text
        owners = set(re.findall(r'<option value="(\d+)"', form.split('name="owner_id"')[1].split("</select>")[0]))
        assert owners == {str(people.bob.id), str(people.carol.id)}
        r = client.post(f"/deals/{deal.id}/edit", follow_redirects=False, data={
            "csrf_token": csrf_of(form), "version": deal.version, "owner_id": people.bob.id})
        assert r.status_code == 303 and reload_deal(db, deal.id).owner_id == people.bob.id

    def test_company_search_only_offers_visible_companies(self, client: TestClient, db: Database, people: People,
                                                          customer: tuple[int, int]) -> None:
        with db.session_scope() as s:
            company_service.create_company(s, people.dave, CompanyCreate(name="Acme West"))
        deal = new_deal(db, people.carol)
        as_user(client, people.carol)
        r = client.get(f"/deals/{deal.id}/options/company", params={"company_q": "acme"}, headers=HX)
        assert r.status_code == 200 and "Acme Trading" in r.text and "Acme West" not in r.text
        contacts = client.get(f"/deals/{deal.id}/options/contact", params={"company_id": customer[0]}, headers=HX)
        assert "Li Lei" in contacts.text


class TestAccess:
    def test_other_teams_deal_is_not_found(self, client: TestClient, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol)
        as_user(client, people.dave)
        r = client.get(f"/deals/{deal.id}")
        assert r.status_code == 404 and "Big order" not in r.text and "Not found" in r.text
        token = csrf_of(client.get("/login", follow_redirects=True).text)
        for action, data in [("activities", {"kind": "call", "subject": "x"}), ("lose", {"version": 1}),
                             ("edit", {"version": 1, "title": "mine"}), ("tasks", {"title": "x"})]:
            r = client.post(f"/deals/{deal.id}/{action}", data={"csrf_token": token, **data})
            assert r.status_code == 404, action
        after = reload_deal(db, deal.id)
        assert (after.title, after.status, after.activity_count) == ("Big order", DealStatus.open, 0)
        assert client.get(f"/deals/{deal.id}/timeline", params={"before": "1.1.1"}, headers=HX).status_code == 404

    def test_nonexistent_deal_is_not_found(self, client: TestClient, people: People) -> None:
        as_user(client, people.alice)
        assert client.get("/deals/999999").status_code == 404

    def test_manager_sees_a_team_members_deal(self, client: TestClient, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol)
        assert as_user(client, people.bob).get(f"/deals/{deal.id}").status_code == 200

    def test_every_post_needs_the_csrf_token(self, client: TestClient, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol)
        as_user(client, people.carol)
        for action, data in [("activities", {"kind": "call", "subject": "x"}), ("tasks", {"title": "x"}),
                             ("lose", {"version": deal.version, "lost_reason_id": reason(db, "lost").id}),
                             ("win", {"version": deal.version}), ("edit", {"version": deal.version, "title": "Y"}),
                             ("move", {"version": deal.version, "stage_id": stages(db)[1].id})]:
            r = client.post(f"/deals/{deal.id}/{action}", data={"csrf_token": "forged", **data})
            assert r.status_code == 403, action
        after = reload_deal(db, deal.id)
        assert (after.status, after.title, after.activity_count, after.version) == (
            DealStatus.open, "Big order", 0, deal.version)
        with db.session_scope(write=False) as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(Task)) == 0
            assert s.scalar(sa.select(sa.func.count()).select_from(StageTransition)
                            .where(StageTransition.deal_id == deal.id)) == 1

    def test_every_form_carries_the_csrf_token(self, client: TestClient, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol)
        html = as_user(client, people.carol).get(f"/deals/{deal.id}?edit=1").text
        forms = re.findall(r'<form[^>]*method="post".*?</form>', html, re.S)
        assert len(forms) >= 8
        assert all('name="csrf_token"' in f for f in forms)

    def test_anonymous_visit_goes_to_sign_in(self, client: TestClient, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol)
        r = client.get(f"/deals/{deal.id}", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/deals/")
