"""Companies, contacts, activities, tasks, pipelines, users, teams and channels via the API."""

from __future__ import annotations

from tests.api.conftest import Clients
from tests.api.test_deals import create, stages


class TestCompaniesAndContacts:
    def test_phone_is_normalised_and_email_validated(self, api: Clients) -> None:
        r = api.carol.post("/api/v1/companies", json={"name": "星辰科技", "phone": "138 1234 5678"})
        assert r.status_code == 201 and r.json()["phone"] == "+8613812345678"
        r = api.carol.post("/api/v1/contacts", json={"name": "张三", "email": "not-an-email"})
        assert r.status_code == 422 and r.json()["field"] == "email"
        r = api.carol.post("/api/v1/contacts", json={"name": "张三", "phone": "12"})
        assert r.status_code == 422 and r.json()["field"] == "phone"

    def test_contact_cannot_attach_to_invisible_company(self, api: Clients) -> None:
        theirs = api.dave.post("/api/v1/companies", json={"name": "West Co"}).json()
        r = api.carol.post("/api/v1/contacts", json={"name": "Li", "company_id": theirs["id"]})
        assert r.status_code == 422 and r.json()["field"] == "company_id"

    def test_crud_with_versions_and_search(self, api: Clients) -> None:
        c = api.carol.post("/api/v1/companies", json={"name": "Acme", "city": "上海"}).json()
        url = f"/api/v1/companies/{c['id']}"
        assert api.carol.patch(url, json={"version": 1, "city": "北京"}).json()["city"] == "北京"
        assert api.carol.patch(url, json={"version": 1, "city": "广州"}).status_code == 409
        assert [x["id"] for x in api.carol.get("/api/v1/companies", params={"q": "acm"}).json()["items"]] == [c["id"]]
        assert api.dave.get(url).status_code == 404
        assert api.carol.delete(url, params={"version": 2}).status_code == 204

    def test_company_with_deals_cannot_be_deleted(self, api: Clients) -> None:
        c = api.carol.post("/api/v1/companies", json={"name": "Busy"}).json()
        create(api.carol, company_id=c["id"])
        assert api.carol.delete(f"/api/v1/companies/{c['id']}", params={"version": 1}).status_code == 409


class TestActivitiesAndTasks:
    def test_logging_an_activity_updates_the_deal_without_bumping_version(self, api: Clients) -> None:
        deal = create(api.carol)
        r = api.carol.post("/api/v1/activities", json={"kind": "call", "subject": "intro", "deal_id": deal["id"]})
        assert r.status_code == 201
        after = api.carol.get(f"/api/v1/deals/{deal['id']}").json()
        assert after["activity_count"] == 1 and after["last_activity_at"] and after["version"] == 1
        items = api.carol.get("/api/v1/activities", params={"deal_id": deal["id"]}).json()["items"]
        assert [a["subject"] for a in items] == ["intro"]

    def test_activity_needs_a_link_and_a_known_kind(self, api: Clients) -> None:
        r = api.carol.post("/api/v1/activities", json={"kind": "call"})
        assert r.status_code == 422 and r.json()["field"] == "deal_id"
        r = api.carol.post("/api/v1/activities", json={"kind": "telepathy", "deal_id": 1})
        assert r.status_code == 422 and r.json()["field"] == "kind"

    def test_task_done_filter(self, api: Clients) -> None:
        deal = create(api.carol)
        t = api.carol.post("/api/v1/tasks", json={"title": "Call back", "deal_id": deal["id"],
                                                  "due_at": "2027-01-01T09:00:00+08:00"}).json()
        assert t["due_at"].startswith("2027-01-01T01:00:00")
        assert len(api.carol.get("/api/v1/tasks", params={"done": "false"}).json()["items"]) == 1
        api.carol.patch(f"/api/v1/tasks/{t['id']}", json={"version": 1, "done": True})
        assert api.carol.get("/api/v1/tasks", params={"done": "false"}).json()["items"] == []
        assert len(api.carol.get("/api/v1/tasks", params={"done": "true"}).json()["items"]) == 1

    def test_naive_due_time_is_refused(self, api: Clients) -> None:
        r = api.carol.post("/api/v1/tasks", json={"title": "x", "due_at": "2027-01-01T09:00:00"})
        assert r.status_code == 422 and r.json()["field"] == "due_at"


class TestPipelinesAndReferenceData:
    def test_admin_builds_a_pipeline_and_reorders_stages(self, api: Clients) -> None:
        r = api.alice.post("/api/v1/pipelines", json={"name": "续约", "name_en": "Renewals", "stages": [
            {"name": "A"}, {"name": "B", "required_fields": ["amount"]}]})
        assert r.status_code == 201, r.text
        p = r.json()
        ids = [s["id"] for s in p["stages"]]
        r = api.alice.post(f"/api/v1/pipelines/{p['id']}/stages", json={"name": "C", "position": 0})
        assert r.status_code == 201
        order = [s["name"] for s in api.alice.get(f"/api/v1/pipelines/{p['id']}/stages").json()]
        assert order == ["C", "A", "B"]
        new_order = [*ids, r.json()["id"]]
        api.alice.post(f"/api/v1/pipelines/{p['id']}/stages/reorder", json={"stage_ids": new_order})
        assert [s["name"] for s in api.alice.get(f"/api/v1/pipelines/{p['id']}/stages").json()] == ["A", "B", "C"]

    def test_unknown_required_field_is_named(self, api: Clients) -> None:
        r = api.alice.post("/api/v1/pipelines", json={"name": "X", "stages": [
            {"name": "A", "required_fields": ["shoe_size"]}]})
        assert r.status_code == 422 and "required_fields" in r.json()["field"]

    def test_stage_with_open_deals_cannot_be_retired(self, api: Clients) -> None:
        create(api.carol)
        first = stages(api.carol)[0]
        assert api.alice.delete(f"/api/v1/stages/{first['id']}").status_code == 409

    def test_users_teams_channels(self, api: Clients) -> None:
        users = api.carol.get("/api/v1/users").json()
        assert {u["email"] for u in users} >= {"alice@example.com", "carol@example.com"}
        assert all("password_hash" not in u for u in users)
        team = api.alice.post("/api/v1/teams", json={"name": "North"}).json()
        r = api.alice.post("/api/v1/users", json={"email": "Neo@Example.com", "name": "Neo", "role": "rep",
                                                  "team_id": team["id"], "password": "longenough"})
        assert r.status_code == 201 and r.json()["email"] == "neo@example.com"
        dup = api.alice.post("/api/v1/users", json={"email": "neo@example.com", "name": "N", "password": "longenough"})
        assert dup.status_code == 422 and dup.json()["field"] == "email"
        ch = api.carol.get("/api/v1/channels").json()
        assert len(ch) == 8
        r = api.alice.put(f"/api/v1/channels/{ch[0]['id']}/spend", json={"month": "2026-03-15", "amount": 5000})
        assert r.status_code == 200 and r.json()["month"] == "2026-03-01"
        r = api.alice.put(f"/api/v1/channels/{ch[0]['id']}/spend", json={"month": "2026-03-01", "amount": 6000})
        spend = api.alice.get(f"/api/v1/channels/{ch[0]['id']}/spend").json()
        assert [(s["month"], s["amount"]) for s in spend] == [("2026-03-01", 6000)]
