"""The deal list page (/deals), its bulk actions and exports, and /deals/new, through
HTTP on SQLite and PostgreSQL.

World (tests/conftest.py): alice admin; bob manager and carol rep of team East; dave rep
and erin manager of team West. Every test draws its own deals below.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from loudou.auth.models import User
from loudou.company import service as company_service
from loudou.company.schemas import CompanyCreate
from loudou.db import Database
from loudou.deal import list_queries
from loudou.deal import service as deal_service
from loudou.deal.models import Deal, DealStatus, StageTransition
from loudou.deal.schemas import DealClose, DealCreate, DealMove, DealUpdate
from loudou.pipeline.models import LostReason, Stage
from tests.conftest import People, default_pipeline, reload_deal
from tests.web.conftest import sign_in_page as sign_in
from tests.web.test_auth_pages import csrf_of


def make_deal(db: Database, owner: User, title: str, **fields: Any) -> int:
    """A deal created by its owner, as through the API."""
    with db.session_scope() as s:
        viewer = s.get(User, owner.id)
        assert viewer is not None
        return deal_service.create_deal(s, viewer, DealCreate(title=title, **fields)).id


def set_columns(db: Database, deal_id: int, **values: Any) -> None:
    """Backdate derived columns (created_at, stage_entered_at …) without a new version."""
    with db.engine.begin() as conn:
        conn.execute(sa.update(Deal).where(Deal.id == deal_id).values(**values))


def stages(db: Database) -> list[Stage]:
    with db.session_scope(write=False) as s:
        pipeline = default_pipeline(s)
        return list(s.scalars(sa.select(Stage).where(Stage.pipeline_id == pipeline.id).order_by(Stage.position)))


def listed(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr data-deal-id="(\d+)"', html)]


def listed_titles(html: str) -> list[str]:
    return re.findall(r'<td class="col-title"><a href="/deals/\d+">([^<]*)</a>', html)


def link(html: str, testid: str) -> str | None:
    m = re.search(rf'href="([^"]+)"[^>]*data-testid="{testid}"', html)
    return m.group(1).replace("&amp;", "&") if m else None


def version_of(db: Database, deal_id: int) -> int:
    return reload_deal(db, deal_id).version


def bulk(client: TestClient, data: dict[str, Any], back: str = "") -> Any:
    token = csrf_of(client.get("/deals").text)
    return client.post("/deals/bulk", data={"csrf_token": token, "back": back, **data})


def ref(db: Database, *deal_ids: int) -> list[str]:
    return [f"{i}:{version_of(db, i)}" for i in deal_ids]


@pytest.fixture
def world(db: Database, people: People) -> dict[str, int]:
    return {
        "carol_a": make_deal(db, people.carol, "Carol A", amount=Decimal("1000")),
        "carol_b": make_deal(db, people.carol, "Carol B", amount=Decimal("5000")),
        "bob_a": make_deal(db, people.bob, "Bob A", amount=Decimal("3000")),
        "dave_a": make_deal(db, people.dave, "Dave A", amount=Decimal("2000")),
    }


class TestVisibility:
    def test_a_rep_sees_only_their_own_deals(self, client: TestClient, people: People, world: dict[str, int]) -> None:
        sign_in(client, people.carol)
        r = client.get("/deals")
        assert r.status_code == 200
        assert set(listed(r.text)) == {world["carol_a"], world["carol_b"]}

    def test_a_manager_sees_the_team(self, client: TestClient, people: People, world: dict[str, int]) -> None:
        sign_in(client, people.bob)
        assert set(listed(client.get("/deals").text)) == {world["carol_a"], world["carol_b"], world["bob_a"]}

    def test_an_admin_sees_everything(self, client: TestClient, people: People, world: dict[str, int]) -> None:
        sign_in(client, people.alice)
        assert set(listed(client.get("/deals").text)) == set(world.values())

    def test_filtering_by_another_teams_owner_shows_nothing(
            self, client: TestClient, people: People, world: dict[str, int]) -> None:
        sign_in(client, people.bob)
        r = client.get(f"/deals?owner_id={people.dave.id}")
        assert listed(r.text) == [] and "Dave A" not in r.text and 'data-testid="empty-state"' in r.text


class TestFilters:
    def test_amount_range(self, client: TestClient, people: People, world: dict[str, int]) -> None:
        sign_in(client, people.alice)
        r = client.get("/deals?amount_min=2000&amount_max=3000")
        assert set(listed(r.text)) == {world["bob_a"], world["dave_a"]}

    def test_empty_fields_mean_any(self, client: TestClient, people: People, world: dict[str, int]) -> None:
        sign_in(client, people.alice)
        r = client.get("/deals?status=&stage_id=&q=&amount_min=")
        assert r.status_code == 200 and len(listed(r.text)) == 4

    def test_status_stage_owner_team_text(self, client: TestClient, db: Database, people: People,
                                          world: dict[str, int]) -> None:
        second = stages(db)[1]
        with db.session_scope() as s:
            carol = s.get(User, people.carol.id)
            assert carol is not None
            deal_service.win_deal(s, carol, world["carol_b"], DealClose(version=1))
        with db.session_scope() as s:
            bob = s.get(User, people.bob.id)
            assert bob is not None
            deal_service.move_deal(s, bob, world["bob_a"], DealMove(stage_id=second.id, version=1))
        sign_in(client, people.alice)
        assert listed(client.get("/deals?status=won").text) == [world["carol_b"]]
        assert listed(client.get(f"/deals?stage_id={second.id}").text) == [world["bob_a"]]
        assert set(listed(client.get(f"/deals?owner_id={people.carol.id}").text)) == {world["carol_a"],
                                                                                     world["carol_b"]}
        west = reload_deal(db, world["dave_a"]).team_id
        assert listed(client.get(f"/deals?team_id={west}").text) == [world["dave_a"]]
        assert listed(client.get("/deals?q=dave").text) == [world["dave_a"]]
        assert listed(client.get("/deals?q=%25").text) == []  # LIKE wildcards are literal

    def test_company_and_channel(self, client: TestClient, db: Database, people: People) -> None:
        with db.session_scope() as s:
            carol = s.get(User, people.carol.id)
            assert carol is not None
            company = company_service.create_company(s, carol, CompanyCreate(name="Acme 科技"))
            channel_id = s.scalar(sa.text("SELECT min(id) FROM channels"))
            in_company = deal_service.create_deal(s, carol, DealCreate(title="With company", company_id=company.id)).id
            in_channel = deal_service.create_deal(s, carol, DealCreate(title="With channel", channel_id=channel_id)).id
        sign_in(client, people.carol)
        r = client.get(f"/deals?company_id={company.id}")
        assert listed(r.text) == [in_company] and "Acme 科技" in r.text
        assert listed(client.get(f"/deals?channel_id={channel_id}").text) == [in_channel]
        assert listed(client.get(f"/deals?pipeline_id={reload_deal(db, in_company).pipeline_id}").text)

    def test_dates_are_whole_days_in_the_viewers_time_zone(
            self, client: TestClient, db: Database, people: People) -> None:
        deal_id = make_deal(db, people.carol, "Boundary")
        # 2026-03-31 17:30 UTC is already 1 April in Shanghai (the default zone).
        set_columns(db, deal_id, created_at=dt.datetime(2026, 3, 31, 17, 30, tzinfo=dt.UTC))
        sign_in(client, people.carol)
        assert listed(client.get("/deals?created_from=2026-04-01&created_to=2026-04-01").text) == [deal_id]
        assert listed(client.get("/deals?created_to=2026-03-31").text) == []

    def test_closed_and_expected_close_ranges(self, client: TestClient, db: Database, people: People) -> None:
        closed = make_deal(db, people.carol, "Closed", expected_close_date=dt.date(2026, 6, 15))
        other = make_deal(db, people.carol, "Other", expected_close_date=dt.date(2026, 7, 1))
        set_columns(db, closed, status=DealStatus.won, closed_at=dt.datetime(2026, 5, 10, 4, tzinfo=dt.UTC))
        sign_in(client, people.carol)
        assert listed(client.get("/deals?closed_from=2026-05-10&closed_to=2026-05-10").text) == [closed]
        assert listed(client.get("/deals?closed_from=2026-05-11").text) == []
        assert listed(client.get("/deals?close_from=2026-06-01&close_to=2026-06-30").text) == [closed]
        assert listed(client.get("/deals?close_from=2026-07-01").text) == [other]

    @pytest.mark.parametrize("query", ["amount_min=lots", "sort=password", "sort=-owner_id; drop table deals",
                                       "status=sleeping", "bogus=1", "cursor=not-a-cursor"])
    def test_bad_parameters_answer_422(self, client: TestClient, people: People, query: str) -> None:
        sign_in(client, people.carol)
        r = client.get(f"/deals?{query}")
        assert r.status_code == 422 and "sqlalchemy" not in r.text.lower()


class TestSortAndPages:
    def test_sort_by_amount_both_ways(self, client: TestClient, people: People, world: dict[str, int]) -> None:
        sign_in(client, people.alice)
        assert listed_titles(client.get("/deals?sort=amount").text) == ["Carol A", "Dave A", "Bob A", "Carol B"]
        assert listed_titles(client.get("/deals?sort=-amount").text) == ["Carol B", "Bob A", "Dave A", "Carol A"]

    def test_headers_toggle_the_sort(self, client: TestClient, people: People, world: dict[str, int]) -> None:
        sign_in(client, people.alice)
        html = client.get("/deals?sort=-amount&status=open").text
        assert 'href="/deals?sort=amount&amp;status=open"' in html  # the same filters, the other way round
        assert 'aria-sort="descending"' in html

    @pytest.mark.parametrize("sort", ["-id", "amount", "-amount", "title", "expected_close_date",
                                      "-last_activity_at", "stage_entered_at", "-created_at"])
    def test_pages_walk_every_row_once_and_back(self, client: TestClient, db: Database, people: People,
                                                sort: str) -> None:
        ids = []
        for i in range(11):
            # Ties and NULLs on purpose: keyset pages must break them by id.
            ids.append(make_deal(db, people.carol, f"Deal {i % 4}", amount=Decimal(i % 3) if i % 5 else None,
                                 expected_close_date=dt.date(2026, 1, 1 + i % 2) if i % 3 else None))
        sign_in(client, people.carol)
        url: str | None = f"/deals?sort={sort}&limit=3"
        pages = []
        while url:
            r = client.get(url)
            assert r.status_code == 200
            pages.append(listed(r.text))
            url = link(r.text, "next-page")
        seen = [i for page in pages for i in page]
        assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
        assert len(pages) == 4
        # Back from the last page with "previous" gives the same pages in reverse.
        url = link(client.get(f"/deals?sort={sort}&limit=3&cursor=" + _cursor_of_page(client, sort, 3)).text,
                   "prev-page")
        back = []
        while url:
            r = client.get(url)
            back.append(listed(r.text))
            url = link(r.text, "prev-page")
        assert back == pages[:3][::-1]

    def test_the_count_is_capped(self, client: TestClient, people: People, world: dict[str, int],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
        sign_in(client, people.alice)
        assert "4 deals" in client.get("/deals").text
        assert "1 deal<" in client.get("/deals?q=Dave").text
        monkeypatch.setattr(list_queries, "COUNT_CAP", 2)
        assert "2+ deals" in client.get("/deals?limit=1").text

    def test_htmx_gets_only_the_results(self, client: TestClient, people: People, world: dict[str, int]) -> None:
        sign_in(client, people.carol)
        r = client.get("/deals?sort=title", headers={"HX-Request": "true", "HX-Target": "deal-results"})
        assert r.status_code == 200 and r.text.lstrip().startswith('<div id="deal-results"')
        assert "<html" not in r.text and listed_titles(r.text) == ["Carol A", "Carol B"]


def _cursor_of_page(client: TestClient, sort: str, page_number: int) -> str:
    """The cursor that opens page ``page_number`` (1-based) of /deals?sort=…&limit=3."""
    url = f"/deals?sort={sort}&limit=3"
    for _ in range(page_number):
        url = link(client.get(url).text, "next-page") or ""
    m = re.search(r"cursor=([^&]+)", url)
    assert m
    return m.group(1)


class TestSavedViews:
    def test_my_open_deals(self, client: TestClient, db: Database, people: People, world: dict[str, int]) -> None:
        set_columns(db, world["carol_a"], status=DealStatus.lost)
        sign_in(client, people.bob)
        assert listed(client.get("/deals?view=mine").text) == [world["bob_a"]]

    def test_rotting_uses_each_stages_expected_days(self, client: TestClient, db: Database, people: People) -> None:
        first, second = stages(db)[:2]
        assert (first.expected_days, second.expected_days) == (7, 10)
        now = dt.datetime.now(dt.UTC)
        fresh = make_deal(db, people.carol, "Fresh")
        stale = make_deal(db, people.carol, "Stale")
        eight_in_second = make_deal(db, people.carol, "Eight days in the second stage")
        closed = make_deal(db, people.carol, "Closed long ago")
        set_columns(db, fresh, stage_entered_at=now - dt.timedelta(days=6))
        set_columns(db, stale, stage_entered_at=now - dt.timedelta(days=8))
        set_columns(db, eight_in_second, stage_id=second.id, stage_entered_at=now - dt.timedelta(days=8))
        set_columns(db, closed, status=DealStatus.lost, stage_entered_at=now - dt.timedelta(days=90))
        sign_in(client, people.carol)
        r = client.get("/deals?view=rotting")
        assert listed(r.text) == [stale]
        assert 'class="badge badge-rotting"' in r.text
        assert client.get("/deals").text.count('class="badge badge-rotting"') == 1

    def test_closing_this_month_in_the_viewers_zone(self, client: TestClient, db: Database, people: People) -> None:
        today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
        this_month = make_deal(db, people.carol, "This month", expected_close_date=today)
        next_month = make_deal(db, people.carol, "Next month",
                               expected_close_date=list_queries.month_bounds(today)[1] + dt.timedelta(days=1))
        sign_in(client, people.carol)
        r = client.get("/deals?view=closing")
        assert listed(r.text) == [this_month] and next_month not in listed(r.text)
        assert 'data-testid="view-closing"' in r.text and 'aria-current="page"' in r.text


class TestBulkReassign:
    def test_a_manager_reassigns_within_the_team(self, client: TestClient, db: Database, people: People,
                                                 world: dict[str, int]) -> None:
        sign_in(client, people.bob)
        r = bulk(client, {"action": "reassign", "owner_id": people.bob.id,
                          "ids": ref(db, world["carol_a"], world["carol_b"])})
        assert r.status_code == 200 and "Reassigned 2 of 2 deals." in r.text
        assert {reload_deal(db, world["carol_a"]).owner_id, reload_deal(db, world["carol_b"]).owner_id} == {
            people.bob.id}

    def test_a_manager_may_not_give_deals_to_another_team(self, client: TestClient, db: Database, people: People,
                                                          world: dict[str, int]) -> None:
        sign_in(client, people.bob)
        r = bulk(client, {"action": "reassign", "owner_id": people.dave.id, "ids": ref(db, world["carol_a"])})
        assert r.status_code == 422 and "Choose an owner you may assign deals to." in r.text
        assert reload_deal(db, world["carol_a"]).owner_id == people.carol.id

    def test_a_rep_may_not_assign_to_others(self, client: TestClient, db: Database, people: People,
                                            world: dict[str, int]) -> None:
        sign_in(client, people.carol)
        r = bulk(client, {"action": "reassign", "owner_id": people.bob.id, "ids": ref(db, world["carol_a"])})
        assert r.status_code == 422
        assert reload_deal(db, world["carol_a"]).owner_id == people.carol.id

    def test_another_teams_deals_are_not_found_and_untouched(self, client: TestClient, db: Database,
                                                             people: People, world: dict[str, int]) -> None:
        sign_in(client, people.bob)
        before = reload_deal(db, world["dave_a"])
        r = bulk(client, {"action": "reassign", "owner_id": people.bob.id,
                          "ids": [*ref(db, world["carol_a"], world["dave_a"]), "999999:1"]})
        assert r.status_code == 200 and "Reassigned 1 of 3 deals." in r.text and "2 not found" in r.text
        assert "Dave A" not in r.text  # not even its title leaks
        after = reload_deal(db, world["dave_a"])
        assert (after.owner_id, after.version) == (before.owner_id, before.version)


class TestBulkMove:
    def test_per_row_outcomes(self, client: TestClient, db: Database, people: People,
                              world: dict[str, int]) -> None:
        proposal = stages(db)[3]  # requires amount and company_id (the default funnel)
        second = stages(db)[1]
        with db.session_scope() as s:
            bob = s.get(User, people.bob.id)
            assert bob is not None
            company = company_service.create_company(s, bob, CompanyCreate(name="Ready Co"))
            ready_id = deal_service.create_deal(
                s, bob, DealCreate(title="Ready", amount=Decimal(9), company_id=company.id)).id
        no_company = world["carol_a"]
        stale = world["carol_b"]
        stale_ref = f"{stale}:{version_of(db, stale)}"
        set_columns(db, world["bob_a"], status=DealStatus.won)
        with db.session_scope() as s:  # someone edits carol_b after the list was shown
            carol = s.get(User, people.carol.id)
            assert carol is not None
            deal_service.update_deal(s, carol, stale, DealUpdate(version=1, title="Edited"))
        sign_in(client, people.bob)
        r = bulk(client, {"action": "move", "stage_id": proposal.id,
                          "ids": [f"{ready_id}:1", f"{no_company}:1", stale_ref, f"{world['bob_a']}:1",
                                  f"{world['dave_a']}:1"]})
        assert r.status_code == 200, r.text
        assert "Moved 1 of 5 deals." in r.text
        assert "1 need fields" in r.text and "2 conflicts" in r.text and "1 not found" in r.text
        assert "Needs Company to enter this stage" in r.text
        assert reload_deal(db, ready_id).stage_id == proposal.id
        assert reload_deal(db, no_company).stage_id == stages(db)[0].id
        assert reload_deal(db, stale).title == "Edited"
        with db.session_scope(write=False) as s:
            moves = s.scalars(sa.select(StageTransition).where(StageTransition.kind == "move")).all()
        assert [(t.deal_id, t.to_stage_id) for t in moves] == [(ready_id, proposal.id)]
        # moving into a stage it is already in is reported, not an error page
        r = bulk(client, {"action": "move", "stage_id": proposal.id, "ids": [f"{ready_id}:2"]})
        assert "1 not possible" in r.text
        r = bulk(client, {"action": "move", "stage_id": second.id, "ids": [f"{ready_id}:2"]})
        assert "Moved 1 of 1 deals." in r.text

    def test_without_a_stage_nothing_moves(self, client: TestClient, db: Database, people: People,
                                           world: dict[str, int]) -> None:
        sign_in(client, people.carol)
        r = bulk(client, {"action": "move", "stage_id": "", "ids": ref(db, world["carol_a"])})
        assert r.status_code == 422 and "Choose a stage to move the deals to." in r.text
        r = bulk(client, {"action": "move", "stage_id": stages(db)[1].id})
        assert r.status_code == 422 and "Select at least one deal" in r.text

    def test_htmx_answers_with_the_results_block(self, client: TestClient, db: Database, people: People,
                                                 world: dict[str, int]) -> None:
        sign_in(client, people.carol)
        token = csrf_of(client.get("/deals").text)
        r = client.post("/deals/bulk", data={"action": "move", "stage_id": stages(db)[1].id,
                                             "ids": ref(db, world["carol_a"]), "back": "sort=title"},
                        headers={"HX-Request": "true", "X-CSRF-Token": token})
        assert r.status_code == 200 and r.text.lstrip().startswith('<div id="deal-results"')
        assert 'data-testid="bulk-result"' in r.text and listed_titles(r.text) == ["Carol A", "Carol B"]


class TestBulkDisqualify:
    def test_needs_a_reason_then_closes_with_it(self, client: TestClient, db: Database, people: People,
                                                world: dict[str, int]) -> None:
        sign_in(client, people.carol)
        r = bulk(client, {"action": "disqualify", "ids": ref(db, world["carol_a"])})
        assert r.status_code == 422 and reload_deal(db, world["carol_a"]).status == DealStatus.open
        with db.session_scope(write=False) as s:
            reason = s.scalars(sa.select(LostReason).where(LostReason.kind == "disqualify")).first()
            lost_reason = s.scalars(sa.select(LostReason).where(LostReason.kind == "lost")).first()
            assert reason is not None and lost_reason is not None
            reason_id, lost_reason_id = reason.id, lost_reason.id
        r = bulk(client, {"action": "disqualify", "reason_id": lost_reason_id, "ids": ref(db, world["carol_a"])})
        assert r.status_code == 422  # a "lost" reason is not a disqualify reason
        r = bulk(client, {"action": "disqualify", "reason_id": reason_id, "note": "spam",
                          "ids": ref(db, world["carol_a"], world["carol_b"])})
        assert r.status_code == 200 and "Disqualified 2 of 2 deals." in r.text
        deal = reload_deal(db, world["carol_a"])
        assert (deal.status, deal.lost_reason_id, deal.close_note) == (DealStatus.disqualified, reason_id, "spam")

    def test_bulk_needs_the_csrf_token(self, client: TestClient, db: Database, people: People,
                                       world: dict[str, int]) -> None:
        sign_in(client, people.carol)
        with db.session_scope(write=False) as s:
            reason_id = s.scalar(sa.select(sa.func.min(LostReason.id)).where(LostReason.kind == "disqualify"))
        data = {"action": "disqualify", "reason_id": reason_id, "ids": ref(db, world["carol_a"])}
        assert client.post("/deals/bulk", data=data).status_code == 403
        assert client.post("/deals/bulk", data={**data, "csrf_token": "forged"}).status_code == 403
        assert reload_deal(db, world["carol_a"]).status == DealStatus.open


class TestExport:
    # NUL cannot be stored in PostgreSQL text; the exporter's own tests cover it.
    NASTY = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\tTab", "\rCR"]

    @pytest.fixture
    def nasty(self, db: Database, people: People) -> list[int]:
        return [make_deal(db, people.carol, title, amount=Decimal("1200.50")) for title in self.NASTY]

    def test_csv_is_excel_ready_scoped_and_neutralised(self, client: TestClient, people: People,
                                                       world: dict[str, int], nasty: list[int]) -> None:
        sign_in(client, people.carol)
        r = client.get("/deals/export.csv?sort=id")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert r.headers["content-disposition"].startswith('attachment; filename="deals-')
        assert r.content.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        header, body = rows[0], rows[1:]
        assert header[:3] == ["ID", "Title", "Company"] and "Amount" in header
        ids = {int(row[0]) for row in body}
        assert ids == {world["carol_a"], world["carol_b"], *nasty}  # nobody else's deals
        titles = {int(row[0]): row[1] for row in body}
        for deal_id, raw in zip(nasty, self.NASTY, strict=True):
            assert titles[deal_id].startswith("'"), titles[deal_id]
            assert titles[deal_id] == "'" + raw
        amount = header.index("Amount")
        assert {row[amount] for row in body if int(row[0]) in nasty} == {"1200.50"}

    def test_xlsx_types_text_and_numbers(self, client: TestClient, people: People, nasty: list[int]) -> None:
        sign_in(client, people.carol)
        r = client.get("/deals/export.xlsx")
        assert r.status_code == 200 and r.headers["content-disposition"].endswith(".xlsx")
        sheet = load_workbook(io.BytesIO(r.content)).worksheets[0]
        header = [c.value for c in sheet[1]]
        amount, title = header.index("Amount"), header.index("Title")
        for row in sheet.iter_rows(min_row=2):
            assert row[title].data_type == "s" and str(row[title].value).startswith("'")
            assert row[amount].data_type == "n" and row[amount].value == 1200.5
            assert row[0].data_type == "n"
            assert row[header.index("Created")].is_date

    def test_export_follows_the_filters_and_the_language(self, client: TestClient, db: Database,
                                                         people: People, world: dict[str, int]) -> None:
        sign_in(client, people.bob)
        r = client.get("/deals/export.csv?amount_min=2500&sort=-amount", headers={"Accept-Language": "zh-CN"})
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        assert rows[0][:3] == ["ID", "标题", "公司"]
        assert [int(row[0]) for row in rows[1:]] == [world["carol_b"], world["bob_a"]]
        assert "%E5%95%86%E6%9C%BA" in r.headers["content-disposition"]  # 商机-….csv

    def test_export_is_capped(self, client: TestClient, people: People, world: dict[str, int],
                              monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(list_queries, "EXPORT_MAX_ROWS", 3)
        sign_in(client, people.alice)
        r = client.get("/deals/export.xlsx?sort=amount")
        assert r.headers["x-export-truncated"] == "3" and "first-3" in r.headers["content-disposition"]
        book = load_workbook(io.BytesIO(r.content))
        assert book.worksheets[0].max_row == 4 and len(book.worksheets) == 2


class TestNewDeal:
    def test_form_then_create_lands_on_the_deal(self, client: TestClient, db: Database, people: People) -> None:
        sign_in(client, people.carol)
        form = client.get("/deals/new")
        assert form.status_code == 200 and 'name="title"' in form.text
        r = client.post("/deals/new", data={"csrf_token": csrf_of(form.text), "title": "Acme 200 seats",
                                            "amount": "125,000", "currency": "cny",
                                            "expected_close_date": "2026-12-31"}, follow_redirects=False)
        assert r.status_code == 303
        deal_id = int(r.headers["location"].rsplit("/", 1)[1])
        deal = reload_deal(db, deal_id)
        assert (deal.title, deal.amount, deal.currency, deal.owner_id) == (
            "Acme 200 seats", Decimal("125000"), "CNY", people.carol.id)

    def test_errors_name_the_field_and_keep_the_input(self, client: TestClient, db: Database,
                                                      people: People) -> None:
        sign_in(client, people.carol)
        token = csrf_of(client.get("/deals/new").text)
        r = client.post("/deals/new", data={"csrf_token": token, "title": "", "amount": "abc"})
        assert r.status_code == 422
        assert 'data-testid="error-title"' in r.text and 'data-testid="error-amount"' in r.text
        assert 'value="abc"' in r.text
        r = client.post("/deals/new", data={"csrf_token": token, "title": "Not mine", "owner_id": people.bob.id})
        assert r.status_code == 422 and 'data-testid="error-owner_id"' in r.text
        proposal = stages(db)[3]
        r = client.post("/deals/new", data={"csrf_token": token, "title": "Straight to proposal",
                                            "stage_id": proposal.id})
        assert r.status_code == 422 and 'data-testid="error-amount"' in r.text
        assert 'data-testid="error-company_id"' in r.text
        with db.session_scope(write=False) as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(Deal)) == 0

    def test_htmx_gets_hx_redirect_or_the_form_block(self, client: TestClient, people: People) -> None:
        sign_in(client, people.bob)
        token = csrf_of(client.get("/deals/new").text)
        headers = {"HX-Request": "true", "X-CSRF-Token": token}
        r = client.post("/deals/new", data={"title": ""}, headers=headers)
        assert r.status_code == 422 and r.text.lstrip().startswith("<form")
        r = client.post("/deals/new", data={"title": "For Carol", "owner_id": people.carol.id}, headers=headers)
        assert r.status_code == 204 and re.fullmatch(r"/deals/\d+", r.headers["hx-redirect"])

    def test_creating_needs_the_csrf_token(self, client: TestClient, db: Database, people: People) -> None:
        sign_in(client, people.carol)
        assert client.post("/deals/new", data={"title": "x"}).status_code == 403
        with db.session_scope(write=False) as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(Deal)) == 0

    def test_company_picker_lists_only_visible_companies(self, client: TestClient, db: Database,
                                                         people: People) -> None:
        with db.session_scope() as s:
            for who, name in ((people.carol, "Acme East"), (people.dave, "Acme West")):
                user = s.get(User, who.id)
                assert user is not None
                company_service.create_company(s, user, CompanyCreate(name=name))
        sign_in(client, people.carol)
        r = client.get("/deals/company-options?cq=Acme")
        assert "Acme East" in r.text and "Acme West" not in r.text


def test_empty_states_say_what_to_do(client: TestClient, people: People) -> None:
    sign_in(client, people.carol)
    r = client.get("/deals")
    assert "No deals yet" in r.text and 'href="/deals/new"' in r.text
    r = client.get("/deals?q=nothing")
    assert "No deals match these filters" in r.text and "Clear filters" in r.text


def test_chinese_page(client: TestClient, people: People, world: dict[str, int]) -> None:
    sign_in(client, people.carol)
    r = client.get("/deals", headers={"Accept-Language": "zh-CN"})
    assert "我的进行中商机" in r.text and "2 个商机" in r.text and "¥5,000" in r.text
