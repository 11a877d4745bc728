from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api, Clients

DEAL_KEYS = {"id", "title", "pipeline_id", "stage_id", "status", "owner_id", "team_id", "company_id", "contact_id",
             "channel_id", "amount", "currency", "expected_close_date", "created_at", "closed_at", "version"}


def stages(api: Api) -> list[dict[str, Any]]:
    pipelines = api.get("/api/v1/pipelines").json()
    default = next(p for p in pipelines if p["is_default"])
    return default["stages"]


def create(api: Api, **body: Any) -> dict[str, Any]:
    r = api.post("/api/v1/deals", json={"title": "Deal", **body})
    assert r.status_code == 201, r.text
    return r.json()


class TestAuth:
    def test_no_token_is_401(self, api: Clients) -> None:
        r = api.anon.get("/api/v1/deals")
        assert r.status_code == 401 and r.json()["error"] == "NotAuthenticated"

    def test_bad_token_is_401(self, api: Clients) -> None:
        r = api.anon.get("/api/v1/deals", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401

    def test_openapi_and_docs_are_served(self, api: Clients) -> None:
        spec = api.anon.get("/openapi.json").json()
        assert "/api/v1/deals/{deal_id}/move" in spec["paths"]
        assert api.anon.get("/docs").status_code == 200


class TestDealCrud:
    def test_create_returns_the_documented_shape(self, api: Clients) -> None:
        deal = create(api.carol, amount=1200.5, expected_close_date="2027-02-01")
        assert deal.keys() >= DEAL_KEYS
        assert deal["status"] == "open" and deal["version"] == 1 and deal["amount"] == 1200.5
        assert deal["stage_id"] == stages(api.carol)[0]["id"]

    def test_get_patch_and_stale_patch(self, api: Clients) -> None:
        deal = create(api.carol)
        url = f"/api/v1/deals/{deal['id']}"
        assert api.carol.get(url).json()["title"] == "Deal"
        r = api.carol.patch(url, json={"version": 1, "title": "Renamed"})
        assert r.status_code == 200 and r.json()["version"] == 2
        stale = api.carol.patch(url, json={"version": 1, "title": "Lost update"})
        assert stale.status_code == 409 and stale.json()["current_version"] == 2
        assert api.carol.get(url).json()["title"] == "Renamed"

    def test_validation_errors_name_the_field(self, api: Clients) -> None:
        r = api.carol.post("/api/v1/deals", json={"title": "x", "amount": -5})
        assert r.status_code == 422 and r.json()["field"] == "amount"
        r = api.carol.post("/api/v1/deals", json={"amount": 5})
        assert r.status_code == 422 and r.json()["field"] == "title"
        r = api.carol.post("/api/v1/deals", json={"title": "x", "company_id": 424242})
        assert r.status_code == 422 and r.json()["field"] == "company_id"

    def test_unknown_id_is_404(self, api: Clients) -> None:
        assert api.carol.get("/api/v1/deals/999999").status_code == 404

    def test_delete_needs_current_version(self, api: Clients) -> None:
        deal = create(api.carol)
        assert api.carol.delete(f"/api/v1/deals/{deal['id']}", params={"version": 7}).status_code == 409
        assert api.carol.delete(f"/api/v1/deals/{deal['id']}", params={"version": 1}).status_code == 204
        assert api.carol.get(f"/api/v1/deals/{deal['id']}").status_code == 404


class TestDealActions:
    def test_move_win_reopen_and_history(self, api: Clients) -> None:
        st = stages(api.carol)
        deal = create(api.carol)
        url = f"/api/v1/deals/{deal['id']}"
        moved = api.carol.post(f"{url}/move", json={"stage_id": st[1]["id"], "version": 1}).json()
        assert moved["stage_id"] == st[1]["id"] and moved["version"] == 2
        won = api.carol.post(f"{url}/win", json={"version": 2}).json()
        assert won["status"] == "won" and won["closed_at"]
        reopened = api.carol.post(f"{url}/reopen", json={"version": won["version"]}).json()
        assert reopened["status"] == "open" and reopened["closed_at"] is None
        history = api.carol.get(f"{url}/transitions").json()
        assert [h["kind"] for h in history] == ["create", "move", "win", "reopen"]
        assert history[1]["from_stage_id"] == st[0]["id"] and history[1]["to_stage_id"] == st[1]["id"]

    def test_move_with_stale_version_is_409(self, api: Clients) -> None:
        st = stages(api.carol)
        deal = create(api.carol)
        url = f"/api/v1/deals/{deal['id']}/move"
        assert api.carol.post(url, json={"stage_id": st[1]["id"], "version": 1}).status_code == 200
        assert api.carol.post(url, json={"stage_id": st[0]["id"], "version": 1}).status_code == 409

    def test_move_missing_required_field_is_422_naming_it(self, api: Clients) -> None:
        st = stages(api.carol)
        deal = create(api.carol)
        r = api.carol.post(f"/api/v1/deals/{deal['id']}/move", json={"stage_id": st[3]["id"], "version": 1})
        body = r.json()
        assert r.status_code == 422 and set(body["missing_fields"]) == {"amount", "company_id"}

    def test_lose_needs_reason(self, api: Clients) -> None:
        deal = create(api.carol)
        url = f"/api/v1/deals/{deal['id']}/lose"
        r = api.carol.post(url, json={"version": 1})
        assert r.status_code == 422 and r.json()["field"] == "lost_reason_id"
        reasons = api.carol.get("/api/v1/lost-reasons", params={"kind": "lost"}).json()
        r = api.carol.post(url, json={"version": 1, "lost_reason_id": reasons[0]["id"]})
        assert r.status_code == 200 and r.json()["status"] == "lost"

    def test_disqualify_with_reason_name(self, api: Clients) -> None:
        deal = create(api.carol)
        r = api.carol.post(f"/api/v1/deals/{deal['id']}/disqualify", json={"version": 1, "reason": "Duplicate lead"})
        assert r.status_code == 200 and r.json()["status"] == "disqualified" and r.json()["lost_reason_id"]


class TestDealList:
    @pytest.fixture
    def many(self, api: Clients) -> list[dict[str, Any]]:
        return [create(api.carol, title=f"Deal {i:02d}", amount=i * 100) for i in range(12)]

    def test_keyset_pages_cover_every_row_once(self, api: Clients, many: list[dict[str, Any]]) -> None:
        seen: list[int] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 5, "sort": "-amount"}
            if cursor:
                params["cursor"] = cursor
            body = api.carol.get("/api/v1/deals", params=params).json()
            seen += [d["id"] for d in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == [d["id"] for d in sorted(many, key=lambda d: -d["amount"])]

    def test_filters(self, api: Clients, many: list[dict[str, Any]]) -> None:
        body = api.carol.get("/api/v1/deals", params={"amount_min": 300, "amount_max": 500}).json()
        assert sorted(d["amount"] for d in body["items"]) == [300, 400, 500]
        body = api.carol.get("/api/v1/deals", params={"q": "Deal 1"}).json()
        assert {d["title"] for d in body["items"]} == {"Deal 10", "Deal 11"}
        assert api.carol.get("/api/v1/deals", params={"status": "won"}).json()["items"] == []

    def test_bad_sort_and_cursor_and_unknown_param_are_422(self, api: Clients) -> None:
        for params, field in [({"sort": "password_hash"}, "sort"), ({"cursor": "garbage"}, "cursor"),
                              ({"limit": 0}, "limit"), ({"nonsense": 1}, "nonsense")]:
            r = api.carol.get("/api/v1/deals", params=params)
            assert r.status_code == 422 and r.json()["field"] == field, (params, r.text)


def test_nul_characters_are_refused_with_the_field_named(api: Clients) -> None:
    r = api.carol.post("/api/v1/deals", json={"title": "bad\x00title"})
    assert r.status_code == 422 and r.json()["field"] == "title"
