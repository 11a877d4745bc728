"""The access matrix: role × ownership × action, through the API, on both databases."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api, Clients
from tests.api.test_deals import create, stages

# owner persona -> {viewer persona: may see (and change) it}
# carol: rep East, dave: rep West, bob: manager East, erin: manager West, alice: admin
VISIBILITY = {
    "carol": {"carol": True, "dave": False, "bob": True, "erin": False, "alice": True},
    "dave": {"carol": False, "dave": True, "bob": False, "erin": True, "alice": True},
}

ACTIONS = ["get", "patch", "move", "win", "lose", "disqualify", "delete", "transitions", "activity"]


def act(api: Api, action: str, deal: dict[str, Any], ctx: dict[str, Any]) -> int:
    url = f"/api/v1/deals/{deal['id']}"
    v = deal["version"]
    if action == "get":
        return api.get(url).status_code
    if action == "transitions":
        return api.get(f"{url}/transitions").status_code
    if action == "patch":
        return api.patch(url, json={"version": v, "title": "changed"}).status_code
    if action == "move":
        return api.post(f"{url}/move", json={"version": v, "stage_id": ctx["stage2"]}).status_code
    if action == "win":
        return api.post(f"{url}/win", json={"version": v}).status_code
    if action == "lose":
        return api.post(f"{url}/lose", json={"version": v, "reason": "Price too high"}).status_code
    if action == "disqualify":
        return api.post(f"{url}/disqualify", json={"version": v, "reason": "Duplicate lead"}).status_code
    if action == "delete":
        return api.delete(url, params={"version": v}).status_code
    if action == "activity":
        return api.post("/api/v1/activities", json={"kind": "call", "deal_id": deal["id"]}).status_code
    raise AssertionError(action)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("owner", ["carol", "dave"])
@pytest.mark.parametrize("viewer", ["carol", "dave", "bob", "erin", "alice"])
def test_access_matrix(api: Clients, owner: str, viewer: str, action: str) -> None:
    owner_api: Api = getattr(api, owner)
    viewer_api: Api = getattr(api, viewer)
    deal = create(owner_api, title=f"{owner}'s deal")
    ctx = {"stage2": stages(owner_api)[1]["id"]}
    status = act(viewer_api, action, deal, ctx)
    allowed = VISIBILITY[owner][viewer]
    if allowed:
        assert status in (200, 201, 204), (viewer, action, status)
    else:
        # Activity on an invisible deal is refused as a bad reference; everything else is 404.
        expected = 422 if action == "activity" else 404
        assert status == expected, (viewer, action, status)
        after = owner_api.get(f"/api/v1/deals/{deal['id']}").json()
        assert after["version"] == deal["version"] and after["title"] == deal["title"]


def test_lists_only_show_visible_deals(api: Clients) -> None:
    mine = create(api.carol)
    theirs = create(api.dave)

    def ids(a: Api) -> set[int]:
        return {d["id"] for d in a.get("/api/v1/deals", params={"limit": 500}).json()["items"]}

    assert ids(api.carol) == {mine["id"]}
    assert ids(api.dave) == {theirs["id"]}
    assert ids(api.bob) == {mine["id"]} and ids(api.erin) == {theirs["id"]}
    assert ids(api.alice) == {mine["id"], theirs["id"]}
    # Filtering by the other team's owner reveals nothing either.
    assert api.carol.get("/api/v1/deals", params={"owner_id": theirs["owner_id"]}).json()["items"] == []


def test_reference_data_is_admin_only_to_change(api: Clients) -> None:
    stage = stages(api.carol)[0]
    for who, expected in (("carol", 403), ("bob", 403), ("alice", 200)):
        r = getattr(api, who).patch(f"/api/v1/stages/{stage['id']}",
                                    json={"version": stage["version"], "probability": 15})
        assert r.status_code == expected, (who, r.text)
    assert api.carol.post("/api/v1/users", json={"email": "x@example.com", "name": "X",
                                                 "password": "longenough"}).status_code == 403
    assert api.carol.post("/api/v1/channels", json={"name": "New"}).status_code == 403


def test_rep_cannot_escalate_own_role(api: Clients) -> None:
    me = api.carol.get("/api/v1/users/me").json()
    r = api.carol.patch(f"/api/v1/users/{me['id']}", json={"version": me["version"], "role": "admin"})
    assert r.status_code == 403
    assert api.carol.get("/api/v1/users/me").json()["role"] == "rep"


def test_disabled_user_token_stops_working(api: Clients) -> None:
    me = api.carol.get("/api/v1/users/me").json()
    r = api.alice.patch(f"/api/v1/users/{me['id']}", json={"version": me["version"], "is_active": False})
    assert r.status_code == 200
    assert api.carol.get("/api/v1/deals").status_code == 401


def test_the_last_active_admin_cannot_be_demoted(api: Clients) -> None:
    me = api.alice.get("/api/v1/users/me").json()
    r = api.alice.patch(f"/api/v1/users/{me['id']}", json={"version": me["version"], "role": "rep"})
    assert r.status_code == 409 and "last active admin" in r.json()["detail"]
