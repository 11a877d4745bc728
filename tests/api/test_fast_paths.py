"""The hot read paths (database-rendered JSON on SQLite, untyped rows elsewhere) answer
exactly what the ORM path would."""

from __future__ import annotations

import orjson

from loudou.db import Database
from loudou.deal.models import Deal
from loudou.deal.schemas import DEAL_FIELDS
from loudou.web.jsonio import OrjsonResponse, row_dict
from tests.api.conftest import Clients
from tests.api.test_deals import create, stages


def orm_json(db: Database, deal_id: int) -> dict[str, object]:
    with db.session_scope(write=False) as s:
        deal = s.get(Deal, deal_id)
        body = OrjsonResponse(row_dict(deal, DEAL_FIELDS)).body
    return orjson.loads(body)  # type: ignore[no-any-return]


def test_get_and_list_equal_the_orm_serialisation(api: Clients, db: Database) -> None:
    company = api.carol.post("/api/v1/companies", json={"name": "星辰"}).json()
    st = stages(api.carol)
    deal = create(api.carol, title='Quote "x" \\ 张三', amount=1234.56, company_id=company["id"],
                  expected_close_date="2027-03-31", description="line1\nline2")
    moved = api.carol.post(f"/api/v1/deals/{deal['id']}/move", json={
        "stage_id": st[4]["id"], "version": 1, "checklist": st[4]["checklist"],
    }).json()
    won = api.carol.post(f"/api/v1/deals/{deal['id']}/win", json={"version": moved["version"]}).json()
    plain = create(api.carol, title="plain")
    for d in (won, plain):
        expected = orm_json(db, d["id"])
        assert api.carol.get(f"/api/v1/deals/{d['id']}").json() == expected
        listed = api.carol.get("/api/v1/deals", params={"limit": 500}).json()["items"]
        assert next(x for x in listed if x["id"] == d["id"]) == expected
    assert expected["checklist_done"] == {} and won["checklist_done"] == {str(st[4]["id"]): st[4]["checklist"]}


def test_cursor_from_a_timestamp_sort_walks_every_row(api: Clients) -> None:
    ids = [create(api.carol, title=f"d{i}")["id"] for i in range(7)]
    seen, cursor = [], None
    while True:
        params = {"limit": 3, "sort": "created_at"} | ({"cursor": cursor} if cursor else {})
        body = api.carol.get("/api/v1/deals", params=params).json()
        seen += [d["id"] for d in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == ids


def test_date_filters_and_a_date_sort_page_through_prepared_statements(api: Clients) -> None:
    """Filter values go through the column types' bind processing (a date becomes the
    stored timestamp text on SQLite) and a cursor from a date sort continues the walk."""
    closes = ["2027-01-05", None, "2027-01-03", "2027-01-04", None, "2027-01-03"]
    made = [create(api.carol, title=f"c{i}", expected_close_date=day) for i, day in enumerate(closes)]
    today = made[0]["created_at"][:10]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, "sort": "-expected_close_date", "created_from": today, "created_to": today}
        body = api.carol.get("/api/v1/deals", params=params | ({"cursor": cursor} if cursor else {})).json()
        seen += [d["id"] for d in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    # Descending by date, ties by id descending, deals without a date last.
    dated = sorted((d for d in made if d["expected_close_date"]), key=lambda d: (d["expected_close_date"], d["id"]),
                   reverse=True)
    undated = sorted((d for d in made if not d["expected_close_date"]), key=lambda d: d["id"], reverse=True)
    assert seen == [d["id"] for d in dated + undated]
    tomorrow_only = api.carol.get("/api/v1/deals", params={"created_from": "2999-01-01"}).json()
    assert tomorrow_only["items"] == []
