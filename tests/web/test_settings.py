"""``/settings`` through the HTTP interface, and the lost-reason service, on SQLite and
PostgreSQL.

Test world (tests/conftest.py): alice admin; bob manager and carol rep of team East;
dave rep and erin manager of team West. Default pipeline: Prospect → First contact →
Needs analysis → Proposal → Negotiation & signing.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from loudou.audit.models import AuditLog
from loudou.auth import service as auth_service
from loudou.auth.models import ApiToken, Role, User
from loudou.channel.models import Channel, ChannelSpend
from loudou.db import Database
from loudou.deal import service as deal_service
from loudou.deal.schemas import DealCreate
from loudou.errors import Conflict, PermissionDenied, ValidationFailed
from loudou.pipeline import queries as pipeline_queries
from loudou.pipeline import service as pipeline_service
from loudou.pipeline.models import LostReason, Pipeline, Stage
from tests.conftest import People, default_pipeline
from tests.web.conftest import sign_in_page as sign_in
from tests.web.test_auth_pages import csrf_of, login

HX = {"HX-Request": "true"}


def admin(client: TestClient, people: People) -> str:
    """Sign alice in; return a CSRF token for her forms."""
    sign_in(client, people.alice)
    return csrf_of(client.get("/settings/pipelines").text)


def stages_of(db: Database, pipeline_id: int | None = None) -> list[Stage]:
    with db.session_scope(write=False) as s:
        return pipeline_queries.list_stages(s, pipeline_id or default_pipeline(s).id)


def audits(db: Database, entity: str, entity_id: int) -> list[AuditLog]:
    with db.session_scope(write=False) as s:
        return list(s.scalars(sa.select(AuditLog).where(AuditLog.entity == entity, AuditLog.entity_id == entity_id)))


def stage_form(stage: Stage, csrf: str, **changes: object) -> dict[str, object]:
    form: dict[str, object] = {
        "csrf_token": csrf, "version": str(stage.version), "name": stage.name, "name_en": stage.name_en or "",
        "probability": str(stage.probability), "expected_days": str(stage.expected_days),
        "follow_up_days": str(stage.follow_up_days), "main_task": stage.main_task, "key_points": stage.key_points,
        "playbook": stage.playbook, "checklist": "\n".join(stage.checklist), "required_fields": stage.required_fields,
    }
    form.update(changes)
    return form


# --------------------------------------------------------------------------- access


SETTINGS_PAGES = ["/settings", "/settings/pipelines", "/settings/pipelines/1", "/settings/lost-reasons",
                  "/settings/channels", "/settings/users", "/settings/tokens"]


class TestAdminOnly:
    @pytest.mark.parametrize("who", ["carol", "bob"])
    def test_others_get_the_403_page(self, client: TestClient, people: People, who: str) -> None:
        sign_in(client, getattr(people, who))
        for path in SETTINGS_PAGES:
            r = client.get(path, follow_redirects=False)
            assert r.status_code == 403, path
            assert "Not allowed" in r.text
        csrf = csrf_of(client.get("/my-day").text)
        for path in ["/settings/pipelines", "/settings/users", "/settings/tokens", "/settings/channels/spend"]:
            assert client.post(path, data={"csrf_token": csrf, "name": "x"}).status_code == 403, path

    def test_only_admins_see_the_nav_link(self, client: TestClient, people: People) -> None:
        assert 'href="/settings"' not in sign_in(client, people.carol).get("/my-day").text
        assert 'href="/settings"' in sign_in(client, people.alice).get("/my-day").text

    def test_settings_open_on_pipelines_and_forms_need_csrf(self, client: TestClient, people: People) -> None:
        sign_in(client, people.alice)
        assert client.get("/settings", follow_redirects=False).headers["location"] == "/settings/pipelines"
        assert client.post("/settings/pipelines", data={"name": "No token"}).status_code == 403

    def test_anonymous_visitors_sign_in_first(self, client: TestClient) -> None:
        r = client.get("/settings/users", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/settings/users")


# --------------------------------------------------------------------------- pipelines and stages


class TestPipelines:
    def test_create_with_the_standard_stages(self, client: TestClient, db: Database, people: People) -> None:
        csrf = admin(client, people)
        r = client.post("/settings/pipelines", data={"csrf_token": csrf, "name": "续约漏斗", "name_en": "Renewals",
                                                     "with_default_stages": "1", "is_relaxed": "1"},
                        follow_redirects=False)
        assert r.status_code == 303
        pipeline_id = int(r.headers["location"].split("/")[3].split("?")[0])
        names = [s.name_en for s in stages_of(db, pipeline_id)]
        assert names == ["Prospect", "First contact", "Needs analysis", "Proposal", "Negotiation & signing"]
        with db.session_scope(write=False) as s:
            p = s.get(Pipeline, pipeline_id)
            assert p is not None and p.is_relaxed and not p.is_default
        page = client.get(r.headers["location"]).text
        assert "Pipeline saved." in page and "Renewals" in page
        assert audits(db, "pipeline", pipeline_id)

    def test_validation_names_the_field(self, client: TestClient, people: People) -> None:
        csrf = admin(client, people)
        r = client.post("/settings/pipelines", data={"csrf_token": csrf, "name": "", "name_en": "x" * 130})
        assert r.status_code == 422
        assert "Please check: Name: Required. English name: At most 120 characters." in r.text
        assert 'data-testid="error-name"' in r.text and 'aria-invalid="true"' in r.text

    def test_edit_and_make_default(self, client: TestClient, db: Database, people: People) -> None:
        csrf = admin(client, people)
        with db.session_scope() as s:
            other = pipeline_service.create_pipeline(s, people.alice, pipeline_service.PipelineCreate(name="B"))
            other_id, old_default = other.id, default_pipeline(s).id
        r = client.post(f"/settings/pipelines/{other_id}", data={
            "csrf_token": csrf, "version": "1", "name": "Partner deals", "name_en": "Partners", "is_default": "1"},
            follow_redirects=False)
        assert r.status_code == 303
        with db.session_scope(write=False) as s:
            renamed, previous = s.get(Pipeline, other_id), s.get(Pipeline, old_default)
            assert renamed is not None and previous is not None
            assert (renamed.name, renamed.name_en, renamed.is_default) == ("Partner deals", "Partners", True)
            assert not previous.is_default

    def test_a_stale_pipeline_form_is_refused(self, client: TestClient, db: Database, people: People) -> None:
        csrf = admin(client, people)
        pipeline_id = stages_of(db)[0].pipeline_id
        with db.session_scope() as s:  # another admin saved first
            pipeline_service.update_pipeline(s, people.alice, pipeline_id,
                                             pipeline_service.PipelineUpdate(version=1, name="Theirs"))
        r = client.post(f"/settings/pipelines/{pipeline_id}",
                        data={"csrf_token": csrf, "version": "1", "name": "Mine"})
        assert r.status_code == 409 and "Someone else saved a change" in r.text
        assert 'value="Mine"' in r.text and 'name="version" value="2"' in r.text
        with db.session_scope(write=False) as s:
            p = s.get(Pipeline, pipeline_id)
            assert p is not None and p.name == "Theirs"


class TestStages:
    def test_add_a_stage(self, client: TestClient, db: Database, people: People) -> None:
        csrf = admin(client, people)
        pipeline_id = stages_of(db)[0].pipeline_id
        r = client.post(f"/settings/pipelines/{pipeline_id}/stages", data={
            "csrf_token": csrf, "name": "试用", "name_en": "Trial", "probability": "50", "expected_days": "21",
            "follow_up_days": "2"}, follow_redirects=False)
        assert r.status_code == 303
        added = stages_of(db)[-1]
        assert (added.name, added.name_en, added.probability, added.expected_days, added.follow_up_days) == (
            "试用", "Trial", 50, 21, 2)

    def test_edit_every_field(self, client: TestClient, db: Database, people: People) -> None:
        csrf = admin(client, people)
        stage = stages_of(db)[1]
        r = client.post(f"/settings/pipelines/{stage.pipeline_id}/stages/{stage.id}", data=stage_form(
            stage, csrf, name="首次联系", name_en="First call", probability="25", expected_days="12",
            follow_up_days="4", required_fields=["contact_id", "channel_id"],
            checklist="Need confirmed\n\n  Budget holder named  \n", main_task="Call them",
            key_points="Be clear", playbook="Line one\nLine two"), follow_redirects=False)
        assert r.status_code == 303
        saved = stages_of(db)[1]
        assert (saved.name, saved.name_en, saved.probability, saved.expected_days, saved.follow_up_days) == (
            "首次联系", "First call", 25, 12, 4)
        assert saved.required_fields == ["contact_id", "channel_id"]
        assert saved.checklist == ["Need confirmed", "Budget holder named"]
        assert (saved.main_task, saved.key_points, saved.playbook) == ("Call them", "Be clear", "Line one\nLine two")
        assert {a.field for a in audits(db, "stage", stage.id)} >= {"name", "probability", "checklist"}

    def test_the_form_shows_translated_required_fields(self, client: TestClient, db: Database,
                                                      people: People) -> None:
        admin(client, people)
        stage = stages_of(db)[3]  # Proposal: amount and company required
        html = client.get(f"/settings/pipelines/{stage.pipeline_id}/stages/{stage.id}").text
        assert re.search(r'value="amount" checked data-testid="required-amount"> Amount', html)
        assert re.search(r'value="channel_id" data-testid="required-channel_id"> Channel', html)

    def test_invalid_input_is_named_and_nothing_changes(self, client: TestClient, db: Database,
                                                        people: People) -> None:
        csrf = admin(client, people)
        stage = stages_of(db)[0]
        r = client.post(f"/settings/pipelines/{stage.pipeline_id}/stages/{stage.id}",
                        data=stage_form(stage, csrf, probability="150", expected_days="soon"))
        assert r.status_code == 422
        assert "Win probability: Must be at most 100." in r.text
        assert "Expected days: Enter a whole number." in r.text
        assert 'value="150"' in r.text  # the input is kept
        assert stages_of(db)[0].probability == stage.probability

    def test_a_stale_stage_form_is_refused(self, client: TestClient, db: Database, people: People) -> None:
        csrf = admin(client, people)
        stage = stages_of(db)[0]
        with db.session_scope() as s:
            pipeline_service.update_stage(s, people.alice, stage.id,
                                          pipeline_service.StageUpdate(version=stage.version, probability=11))
        r = client.post(f"/settings/pipelines/{stage.pipeline_id}/stages/{stage.id}",
                        data=stage_form(stage, csrf, probability="33"))
        assert r.status_code == 409
        assert stages_of(db)[0].probability == 11

    def test_reorder_by_drag(self, client: TestClient, db: Database, people: People) -> None:
        csrf = admin(client, people)
        stages = stages_of(db)
        order = [stages[i].id for i in (1, 0, 2, 4, 3)]
        r = client.post(f"/settings/pipelines/{stages[0].pipeline_id}/stages/order",
                        data={"csrf_token": csrf, "stage_id": [str(i) for i in order]}, headers=HX)
        assert r.status_code == 200 and r.text.lstrip().startswith('<section id="stages"')
        assert [s.id for s in stages_of(db)] == order
        assert audits(db, "pipeline", stages[0].pipeline_id)[-1].action == "reorder"

    def test_reorder_with_a_stale_list_shows_the_current_order(self, client: TestClient, db: Database,
                                                               people: People) -> None:
        csrf = admin(client, people)
        stages = stages_of(db)
        r = client.post(f"/settings/pipelines/{stages[0].pipeline_id}/stages/order",
                        data={"csrf_token": csrf, "stage_id": [str(s.id) for s in stages[:4]]}, headers=HX)
        assert r.status_code == 409 and "The stages changed while you were sorting them" in r.text
        assert [s.id for s in stages_of(db)] == [s.id for s in stages]

    def test_reorder_with_buttons(self, client: TestClient, db: Database, people: People) -> None:
        csrf = admin(client, people)
        stages = stages_of(db)
        base = f"/settings/pipelines/{stages[0].pipeline_id}/stages"
        r = client.post(f"{base}/{stages[2].id}/move", data={"csrf_token": csrf, "direction": "up"},
                        follow_redirects=False)
        assert r.status_code == 303
        assert [s.id for s in stages_of(db)] == [stages[i].id for i in (0, 2, 1, 3, 4)]
        client.post(f"{base}/{stages[2].id}/move", data={"csrf_token": csrf, "direction": "down"}, headers=HX)
        assert [s.id for s in stages_of(db)] == [s.id for s in stages]
        client.post(f"{base}/{stages[4].id}/move", data={"csrf_token": csrf, "direction": "down"}, headers=HX)
        assert [s.id for s in stages_of(db)] == [s.id for s in stages]  # the last one stays last

    def test_retire_is_refused_while_open_deals_remain(self, client: TestClient, db: Database,
                                                       people: People) -> None:
        csrf = admin(client, people)
        first = stages_of(db)[0]
        with db.session_scope() as s:
            deal_service.create_deal(s, people.carol, DealCreate(title="Still here"))
        r = client.post(f"/settings/pipelines/{first.pipeline_id}/stages/{first.id}/retire", data={"csrf_token": csrf})
        assert r.status_code == 409
        assert "Prospect still holds 1 open deal. Move it to another stage" in r.text
        assert stages_of(db)[0].id == first.id

    def test_retire_an_empty_stage(self, client: TestClient, db: Database, people: People) -> None:
        csrf = admin(client, people)
        second = stages_of(db)[1]
        r = client.post(f"/settings/pipelines/{second.pipeline_id}/stages/{second.id}/retire",
                        data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303
        assert second.id not in [s.id for s in stages_of(db)]
        page = client.get(r.headers["location"]).text
        assert "Retired stages" in page and "First contact" in page
        assert client.get(f"/settings/pipelines/{second.pipeline_id}/stages/{second.id}").status_code == 404


# --------------------------------------------------------------------------- lost reasons


class TestLostReasonService:
    def test_admin_only(self, db: Database, people: People) -> None:
        with db.session_scope() as s, pytest.raises(PermissionDenied):
            pipeline_service.create_lost_reason(s, people.bob, name="Too slow")

    def test_names_are_unique_per_kind_in_both_languages(self, db: Database, people: People) -> None:
        with db.session_scope() as s:
            with pytest.raises(ValidationFailed) as err:
                pipeline_service.create_lost_reason(s, people.alice, name="太贵", name_en="Price too high")
            assert err.value.field == "name_en"
            # The same words may name a reason of the other kind.
            pipeline_service.create_lost_reason(s, people.alice, name="价格太高", kind="disqualify")

    def test_create_rename_retire_and_restore_are_audited(self, db: Database, people: People) -> None:
        with db.session_scope() as s:
            reason = pipeline_service.create_lost_reason(s, people.alice, name="交期太长", name_en="Lead time")
            pipeline_service.update_lost_reason(s, people.alice, reason.id, name="交付周期长", name_en="")
            pipeline_service.deactivate_lost_reason(s, people.alice, reason.id)
            pipeline_service.update_lost_reason(s, people.alice, reason.id, is_active=True)
            reason_id = reason.id
        actions = [(a.action, a.field) for a in audits(db, "lost_reason", reason_id)]
        assert ("create", "name") in actions and ("update", "name") in actions and ("update", "name_en") in actions
        assert ("deactivate", "is_active") in actions and ("activate", "is_active") in actions
        with db.session_scope(write=False) as s:
            saved = s.get(LostReason, reason_id)
            assert saved is not None and (saved.name, saved.name_en, saved.is_active) == ("交付周期长", None, True)

    def test_the_last_active_reason_of_a_kind_stays(self, db: Database, people: People) -> None:
        with db.session_scope() as s:
            reasons = pipeline_queries.list_lost_reasons(s, "disqualify")
            for r in reasons[1:]:
                pipeline_service.deactivate_lost_reason(s, people.alice, r.id)
            with pytest.raises(Conflict):
                pipeline_service.deactivate_lost_reason(s, people.alice, reasons[0].id)


class TestLostReasonPages:
    def test_add_rename_retire_restore(self, client: TestClient, db: Database, people: People) -> None:
        csrf = admin(client, people)
        r = client.post("/settings/lost-reasons", data={"csrf_token": csrf, "kind": "lost", "name": "交期太长",
                                                        "name_en": "Lead time too long"}, follow_redirects=False)
        assert r.status_code == 303
        with db.session_scope(write=False) as s:
            reason = s.scalars(sa.select(LostReason).where(LostReason.name == "交期太长")).one()
        assert reason.kind == "lost"
        client.post(f"/settings/lost-reasons/{reason.id}", data={"csrf_token": csrf, "name": "交付周期长",
                                                                 "name_en": "Slow delivery"})
        client.post(f"/settings/lost-reasons/{reason.id}/active", data={"csrf_token": csrf, "active": "0"})
        with db.session_scope(write=False) as s:
            saved = s.get(LostReason, reason.id)
            assert saved is not None and (saved.name_en, saved.is_active) == ("Slow delivery", False)
            assert reason.id not in [x.id for x in pipeline_queries.list_lost_reasons(s, "lost")]
        page = client.get("/settings/lost-reasons").text
        assert 'data-testid="reason-restore"' in page
        client.post(f"/settings/lost-reasons/{reason.id}/active", data={"csrf_token": csrf, "active": "1"})
        with db.session_scope(write=False) as s:
            assert reason.id in [x.id for x in pipeline_queries.list_lost_reasons(s, "lost")]

    def test_a_duplicate_name_is_named(self, client: TestClient, people: People) -> None:
        csrf = admin(client, people)
        r = client.post("/settings/lost-reasons", data={"csrf_token": csrf, "kind": "lost", "name": "价格太高"})
        assert r.status_code == 422
        assert "Name: Another reason of this kind already has this name." in r.text


# --------------------------------------------------------------------------- channels and spend


class TestChannels:
    def test_add_rename_deactivate(self, client: TestClient, db: Database, people: People) -> None:
        csrf = admin(client, people)
        r = client.post("/settings/channels", data={"csrf_token": csrf, "name": "抖音", "name_en": "Douyin",
                                                    "kind": "social"}, follow_redirects=False)
        assert r.status_code == 303
        with db.session_scope(write=False) as s:
            channel = s.scalars(sa.select(Channel).where(Channel.name == "抖音")).one()
        client.post(f"/settings/channels/{channel.id}", data={"csrf_token": csrf, "name": "抖音广告",
                                                              "name_en": "Douyin ads", "kind": "web"})
        client.post(f"/settings/channels/{channel.id}/active", data={"csrf_token": csrf, "active": "0"})
        with db.session_scope(write=False) as s:
            saved = s.get(Channel, channel.id)
            assert saved is not None and (saved.name, saved.kind, saved.is_active) == ("抖音广告", "web", False)
        assert client.post("/settings/channels", data={"csrf_token": csrf, "name": "抖音广告"}).status_code == 422

    def test_spend_grid(self, client: TestClient, db: Database, people: People) -> None:
        csrf = admin(client, people)
        html = client.get("/settings/channels").text
        cells = re.findall(r'name="(spend-(\d+)-(\d{4}-\d{2}))"', html)
        assert len({c[2] for c in cells}) == 12
        name, channel_id, month = cells[-1]
        other_name = next(c[0] for c in cells if c[1] != channel_id)
        r = client.post("/settings/channels/spend", data={"csrf_token": csrf, name: "12,000.50", other_name: ""},
                        follow_redirects=False)
        assert r.status_code == 303
        first_day = dt.date.fromisoformat(month + "-01")
        with db.session_scope(write=False) as s:
            rows = s.scalars(sa.select(ChannelSpend)).all()
            assert [(row.channel_id, row.month, row.amount) for row in rows] == [
                (int(channel_id), first_day, Decimal("12000.50"))]
            row_id = rows[0].id
        assert audits(db, "channel_spend", row_id)[0].after == "12000.50"
        # A bad cell: nothing is saved, the cell is named.
        bad = client.post("/settings/channels/spend", data={"csrf_token": csrf, name: "7", other_name: "lots"})
        assert bad.status_code == 422 and "enter an amount" in bad.text and 'value="lots"' in bad.text
        # Emptying a month that had spend records zero.
        client.post("/settings/channels/spend", data={"csrf_token": csrf, name: ""})
        with db.session_scope(write=False) as s:
            assert s.scalars(sa.select(ChannelSpend.amount)).all() == [Decimal("0.00")]


# --------------------------------------------------------------------------- users and teams


class TestUsers:
    def test_invite_shows_the_first_password_once_and_it_signs_in(self, client: TestClient, db: Database,
                                                                  people: People) -> None:
        csrf = admin(client, people)
        east = people.carol.team_id
        r = client.post("/settings/users", data={"csrf_token": csrf, "name": "Frank", "email": "Frank@Example.com",
                                                 "role": "rep", "team_id": str(east)})
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        m = re.search(r'data-testid="one-time-password">([^<]+)</code>', r.text)
        assert m, "the password is shown"
        password = m.group(1)
        assert len(password) >= 16
        assert password not in client.get("/settings/users").text
        with db.session_scope(write=False) as s:
            frank = s.scalars(sa.select(User).where(User.email == "frank@example.com")).one()
            assert (frank.role, frank.team_id) == (Role.rep, east)
            assert password not in frank.password_hash
            logged = s.scalars(sa.select(AuditLog.after).where(AuditLog.entity == "user",
                                                               AuditLog.entity_id == frank.id)).all()
            assert all(password not in (v or "") for v in logged)
        from loudou.app import create_app

        with TestClient(create_app(db)) as fresh:
            assert login(fresh, "frank@example.com", password=password).status_code == 303  # type: ignore[attr-defined]

    def test_invite_validation(self, client: TestClient, people: People) -> None:
        csrf = admin(client, people)
        r = client.post("/settings/users", data={"csrf_token": csrf, "name": "", "email": "not-an-address"})
        assert r.status_code == 422 and "Name: Required." in r.text and "Enter a valid e-mail address." in r.text
        taken = client.post("/settings/users", data={"csrf_token": csrf, "name": "Carol 2",
                                                     "email": "carol@example.com"})
        assert taken.status_code == 422 and "already exists" in taken.text
        assert 'data-testid="one-time-password"' not in taken.text

    def test_change_role_team_and_active(self, client: TestClient, db: Database, people: People) -> None:
        csrf = admin(client, people)
        west = people.dave.team_id
        r = client.post(f"/settings/users/{people.carol.id}", data={
            "csrf_token": csrf, "version": "1", "role": "manager", "team_id": str(west), "is_active": "1"},
            follow_redirects=False)
        assert r.status_code == 303
        with db.session_scope(write=False) as s:
            carol = s.get(User, people.carol.id)
            assert carol is not None and (carol.role, carol.team_id, carol.is_active) == (Role.manager, west, True)
        assert {a.field for a in audits(db, "user", people.carol.id)} >= {"role", "team_id"}
        stale = client.post(f"/settings/users/{people.carol.id}", data={
            "csrf_token": csrf, "version": "1", "role": "rep", "team_id": "", "is_active": "1"})
        assert stale.status_code == 409

    def test_deactivating_a_user_stops_their_token_at_once(self, client: TestClient, db: Database,
                                                           people: People) -> None:
        with db.session_scope() as s:
            carol = s.get(User, people.carol.id)
            assert carol is not None
            token, _row = auth_service.create_token(s, carol, "script")
        bearer = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/v1/deals", headers=bearer).status_code == 200  # now cached
        csrf = admin(client, people)
        client.post(f"/settings/users/{people.carol.id}", data={
            "csrf_token": csrf, "version": "1", "role": "rep", "team_id": str(people.carol.team_id)})
        assert client.get("/api/v1/deals", headers=bearer).status_code == 401

    def test_the_last_admin_stays_an_admin(self, client: TestClient, db: Database, people: People) -> None:
        csrf = admin(client, people)
        r = client.post(f"/settings/users/{people.alice.id}", data={
            "csrf_token": csrf, "version": "1", "role": "manager", "team_id": "", "is_active": "1"})
        assert r.status_code == 409 and "Alice is the last active admin" in r.text
        with db.session_scope(write=False) as s:
            alice = s.get(User, people.alice.id)
            assert alice is not None and alice.role == Role.admin

    def test_teams(self, client: TestClient, db: Database, people: People) -> None:
        csrf = admin(client, people)
        assert client.post("/settings/teams", data={"csrf_token": csrf, "name": "South"},
                           follow_redirects=False).status_code == 303
        assert client.post("/settings/teams", data={"csrf_token": csrf, "name": "East"}).status_code == 422
        east = people.carol.team_id
        client.post(f"/settings/teams/{east}", data={"csrf_token": csrf, "name": "East China"})
        page = client.get("/settings/users").text
        assert "East China" in page and "South" in page


# --------------------------------------------------------------------------- API tokens


class TestTokens:
    def test_create_shows_the_token_once_and_revoke_stops_it(self, client: TestClient, db: Database,
                                                             people: People) -> None:
        csrf = admin(client, people)
        r = client.post("/settings/tokens", data={"csrf_token": csrf, "name": "Website form"})
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        m = re.search(r'data-testid="new-token">([^<]+)</code>', r.text)
        assert m
        token = m.group(1)
        later = client.get("/settings/tokens").text
        assert token not in later and token[:10] in later  # only the prefix stays visible
        bearer = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/v1/deals", headers=bearer).status_code == 200
        with db.session_scope(write=False) as s:
            row = s.scalars(sa.select(ApiToken).where(ApiToken.name == "Website form")).one()
            assert row.user_id == people.alice.id and token not in row.token_hash
        r = client.post(f"/settings/tokens/{row.id}/revoke", data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303
        assert client.get("/api/v1/deals", headers=bearer).status_code == 401
        assert "Revoked" in client.get("/settings/tokens").text

    def test_an_admin_revokes_anyones_token(self, client: TestClient, db: Database, people: People) -> None:
        with db.session_scope() as s:
            dave = s.get(User, people.dave.id)
            assert dave is not None
            token, row = auth_service.create_token(s, dave, "dave's script")
            row_id = row.id
        csrf = admin(client, people)
        page = client.get("/settings/tokens").text
        assert "dave&#39;s script" in page and "dave@example.com" in page
        client.post(f"/settings/tokens/{row_id}/revoke", data={"csrf_token": csrf})
        assert client.get("/api/v1/deals", headers={"Authorization": f"Bearer {token}"}).status_code == 401
