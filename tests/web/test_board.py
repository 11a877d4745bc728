"""The pipeline board /board through the HTTP interface, on SQLite and PostgreSQL.

Test world (tests/conftest.py): alice admin; bob manager and carol rep of team East;
dave rep and erin manager of team West. Default pipeline: Prospect → First contact →
Needs analysis (needs a contact) → Proposal (needs amount and company) → Negotiation &
signing (needs amount, expected close date and one checklist item).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from loudou.activity import service as activity_service
from loudou.activity.schemas import TaskCreate
from loudou.auth.models import User
from loudou.channel.models import Channel
from loudou.company import service as company_service
from loudou.company.schemas import CompanyCreate
from loudou.contact import service as contact_service
from loudou.contact.schemas import ContactCreate
from loudou.db import Database
from loudou.deal import service as deal_service
from loudou.deal.models import Deal
from loudou.deal.schemas import DealCreate, DealMove
from loudou.pipeline import queries as pipeline_queries
from loudou.pipeline.models import Stage
from tests.conftest import People, default_pipeline, reload_deal
from tests.web.conftest import sign_in_page as sign_in

HX = {"HX-Request": "true"}


def stages(db: Database) -> list[Stage]:
    with db.session_scope(write=False) as s:
        return pipeline_queries.list_stages(s, default_pipeline(s).id)


def new_deal(db: Database, who: User, title: str, **fields: Any) -> Deal:
    with db.session_scope() as s:
        return deal_service.create_deal(s, who, DealCreate(title=title, **fields))


def new_company(db: Database, who: User, name: str) -> int:
    with db.session_scope() as s:
        return company_service.create_company(s, who, CompanyCreate(name=name)).id


def new_contact(db: Database, who: User, name: str, company_id: int | None = None) -> int:
    with db.session_scope() as s:
        return contact_service.create_contact(s, who, ContactCreate(name=name, company_id=company_id)).id


def csrf(client: TestClient) -> dict[str, str]:
    page = client.get("/board")
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert m
    return {**HX, "X-CSRF-Token": m.group(1)}


def card_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'id="deal-card-(\d+)"', html)]


def column_stats(html: str, stage_id: int) -> tuple[str, str]:
    block = re.search(rf'id="col-stats-{stage_id}".*?</div>', html, re.S)
    assert block, f"no totals for stage {stage_id}"
    count = re.search(r'data-testid="col-count"[^>]*>([^<]*)<', block.group(0))
    amount = re.search(r'data-testid="col-sum"[^>]*>([^<]*)<', block.group(0))
    assert count and amount
    return count.group(1), amount.group(1)


def column_html(html: str, stage_id: int) -> str:
    m = re.search(rf'<div class="col-cards" id="col-cards-{stage_id}".*?(?=<div class="col-empty")', html, re.S)
    assert m
    return m.group(0)


def move(client: TestClient, deal: Deal | int, stage: Stage, version: int = 1, headers: dict[str, str] | None = None,
         query: str = "", **form: Any) -> Any:
    """POST the board's move form (as HTMX with the CSRF header unless ``headers`` says otherwise)."""
    deal_id = deal if isinstance(deal, int) else deal.id
    return client.post(f"/board/deals/{deal_id}/move{query}", data={"stage_id": stage.id, "version": version, **form},
                       headers=headers if headers is not None else csrf(client), follow_redirects=False)


class TestBoardPage:
    def test_sign_in_is_required(self, client: TestClient) -> None:
        r = client.get("/board", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/board")

    def test_one_column_per_open_stage_in_order(self, client: TestClient, db: Database, people: People) -> None:
        html = sign_in(client, people.carol).get("/board").text
        names = re.findall(r'<h2 class="col-title"[^>]*>([^<]+)</h2>', html)
        assert names == ["Prospect", "First contact", "Needs analysis", "Proposal", "Negotiation &amp; signing"]

    def test_each_viewer_sees_only_the_deals_the_policy_allows(self, client: TestClient, db: Database,
                                                               people: People) -> None:
        carols = new_deal(db, people.carol, "Carol's deal")
        bobs = new_deal(db, people.bob, "Bob's deal")
        daves = new_deal(db, people.dave, "Dave's deal")
        expected = {people.carol: {carols.id}, people.bob: {carols.id, bobs.id}, people.dave: {daves.id},
                    people.erin: {daves.id}, people.alice: {carols.id, bobs.id, daves.id}}
        for who, visible in expected.items():
            client.cookies.clear()
            html = sign_in(client, who).get("/board").text
            assert set(card_ids(html)) == visible, who.name

    def test_counts_and_sums_per_column(self, client: TestClient, db: Database, people: People) -> None:
        first, second = stages(db)[:2]
        new_deal(db, people.carol, "A", amount=Decimal("12000"))
        new_deal(db, people.carol, "B", amount=Decimal("3500.50"))
        new_deal(db, people.carol, "C")  # no amount: counted, adds nothing
        moved = new_deal(db, people.carol, "D", amount=Decimal("40000"))
        with db.session_scope() as s:
            deal_service.move_deal(s, people.carol, moved.id, DealMove(stage_id=second.id, version=1))
        new_deal(db, people.dave, "Not Carol's", amount=Decimal("99999"))
        html = sign_in(client, people.carol).get("/board").text
        assert column_stats(html, first.id) == ("3", "CN¥15.5K")
        assert column_stats(html, second.id) == ("1", "CN¥40K")
        assert column_stats(html, stages(db)[2].id) == ("0", "CN¥0")
        assert "4 open deals" in html

    def test_a_card_shows_company_amount_owner_age_and_the_next_open_task(self, client: TestClient, db: Database,
                                                                          people: People) -> None:
        company = new_company(db, people.carol, "Acme Ltd")
        deal = new_deal(db, people.carol, "Big order", amount=Decimal("125000"), company_id=company)
        now = dt.datetime.now(dt.UTC)
        with db.session_scope() as s:
            for title, due in (("Later call", now + dt.timedelta(days=9)), ("Send quote", now + dt.timedelta(days=2)),
                               ("Undated", None)):
                activity_service.create_task(s, people.carol, TaskCreate(title=title, deal_id=deal.id, due_at=due))
            s.execute(sa.update(Deal).where(Deal.id == deal.id).values(stage_entered_at=now - dt.timedelta(days=3)))
        html = sign_in(client, people.carol).get("/board").text
        card = re.search(r'<article class="card".*?</article>', html, re.S)
        assert card
        text = card.group(0)
        for expected in ("Big order", "Acme Ltd", "CN¥125K", "Carol", "3 d", "Send quote"):
            assert expected in text, expected
        assert "Later call" not in text and "badge-rotting" not in text

    def test_a_deal_longer_in_its_stage_than_expected_is_marked_rotting(self, client: TestClient, db: Database,
                                                                         people: People) -> None:
        first = stages(db)[0]
        old = new_deal(db, people.carol, "Old lead")
        new_deal(db, people.carol, "Fresh lead")
        with db.session_scope() as s:
            s.execute(sa.update(Deal).where(Deal.id == old.id).values(
                stage_entered_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=first.expected_days + 2)))
        html = sign_in(client, people.carol).get("/board").text
        rotting = re.search(rf'id="deal-card-{old.id}"[^>]*>.*?</article>', html, re.S)
        assert rotting and "is-rotting" in html and "badge-rotting" in rotting.group(0)
        assert f"{first.expected_days + 2} d" in rotting.group(0)
        assert "1 rotting" in html

    def test_the_newest_in_stage_come_first_or_the_longest_waiting(self, client: TestClient, db: Database,
                                                                    people: People) -> None:
        deals = [new_deal(db, people.carol, f"Deal {i}") for i in range(3)]
        now = dt.datetime.now(dt.UTC)
        with db.session_scope() as s:
            for age, deal in zip((5, 1, 3), deals, strict=True):
                entered = now - dt.timedelta(days=age)
                s.execute(sa.update(Deal).where(Deal.id == deal.id).values(stage_entered_at=entered))
        sign_in(client, people.carol)
        assert card_ids(client.get("/board").text) == [deals[1].id, deals[2].id, deals[0].id]
        assert card_ids(client.get("/board?sort=oldest").text) == [deals[0].id, deals[2].id, deals[1].id]

    def test_empty_columns_say_what_to_do(self, client: TestClient, db: Database, people: People) -> None:
        html = sign_in(client, people.carol).get("/board").text
        assert html.count("No deals in this stage.") == 5
        assert 'href="/deals/new?pipeline_id=' in html

    def test_pipeline_choice_redirects_to_the_bookmarkable_address(self, client: TestClient, db: Database,
                                                                   people: People) -> None:
        with db.session_scope(write=False) as s:
            pipeline_id = default_pipeline(s).id
        sign_in(client, people.carol)
        r = client.get(f"/board?pipeline_id={pipeline_id}&owner_id=&q=acme", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/board/{pipeline_id}?q=acme"
        assert client.get(f"/board/{pipeline_id}").status_code == 200
        assert client.get("/board/999999").status_code == 404


class TestFilters:
    def test_owner_team_channel_and_title_filters(self, client: TestClient, db: Database, people: People) -> None:
        with db.session_scope(write=False) as s:
            channel = s.scalars(sa.select(Channel).order_by(Channel.id)).first()
            assert channel is not None
            channel_id = channel.id
        carols = new_deal(db, people.carol, "Acme renewal", channel_id=channel_id)
        bobs = new_deal(db, people.bob, "Globex pilot")
        daves = new_deal(db, people.dave, "Initech rollout")
        sign_in(client, people.alice)
        assert set(card_ids(client.get(f"/board?owner_id={people.bob.id}").text)) == {bobs.id}
        assert set(card_ids(client.get(f"/board?team_id={people.dave.team_id}").text)) == {daves.id}
        assert set(card_ids(client.get(f"/board?channel_id={channel_id}").text)) == {carols.id}
        assert set(card_ids(client.get("/board?q=acme").text)) == {carols.id}
        assert set(card_ids(client.get("/board?q=%25").text)) == set()  # LIKE wildcards are literal
        filtered = client.get(f"/board?owner_id={people.bob.id}").text
        assert column_stats(filtered, stages(db)[0].id)[0] == "1"
        assert "No deals here match the filters." in filtered

    def test_filter_choices_are_the_people_and_teams_in_view(self, client: TestClient, db: Database,
                                                             people: People) -> None:
        html = sign_in(client, people.bob).get("/board").text
        owners = re.search(r'data-testid="filter-owner">(.*?)</select>', html, re.S)
        assert owners and "Carol" in owners.group(1) and "Bob" in owners.group(1)
        assert "Dave" not in owners.group(1) and "Alice" not in owners.group(1)
        assert 'data-testid="filter-team"' not in html  # a manager sees one team
        client.cookies.clear()
        html = sign_in(client, people.carol).get("/board").text
        assert 'data-testid="filter-owner"' not in html  # a rep sees only their own
        assert 'data-testid="filter-channel"' in html

    def test_a_filter_cannot_widen_the_view(self, client: TestClient, db: Database, people: People) -> None:
        new_deal(db, people.dave, "West deal")
        html = sign_in(client, people.carol).get(f"/board?owner_id={people.dave.id}").text
        assert card_ids(html) == []

    def test_bad_filter_values_are_refused(self, client: TestClient, db: Database, people: People) -> None:
        assert sign_in(client, people.carol).get("/board?owner_id=abc").status_code == 422


class TestColumnPages:
    def test_a_column_shows_30_cards_then_loads_the_rest_by_cursor(self, client: TestClient, db: Database,
                                                                    people: People) -> None:
        first = stages(db)[0]
        ids = [new_deal(db, people.carol, f"Lead {i:02d}").id for i in range(34)]
        html = sign_in(client, people.carol).get("/board").text
        shown = card_ids(html)
        assert len(shown) == 30 and shown == sorted(ids, reverse=True)[:30]  # same moment: newest id first
        more = re.search(r'id="col-more-\d+"\s+hx-get="([^"]+)"', html)
        assert more and 'hx-trigger="intersect once"' in html
        page = client.get(more.group(1).replace("&amp;", "&"))
        assert page.status_code == 200
        rest = card_ids(page.text)
        assert rest == sorted(ids, reverse=True)[30:]
        assert f'id="col-more-{first.id}" hx-swap-oob="true"' in page.text and "hx-get" not in page.text

    def test_pages_keep_the_filters(self, client: TestClient, db: Database, people: People) -> None:
        for i in range(32):
            new_deal(db, people.carol, f"{'Acme' if i % 2 else 'Other'} {i}")
        html = sign_in(client, people.carol).get("/board?q=Other").text
        assert len(card_ids(html)) == 16 and 'id="col-more-' in html and "hx-get=\"/board/" not in html

    def test_a_forged_cursor_is_refused(self, client: TestClient, db: Database, people: People) -> None:
        with db.session_scope(write=False) as s:
            pipeline_id = default_pipeline(s).id
        stage = stages(db)[0]
        r = sign_in(client, people.carol).get(f"/board/{pipeline_id}/column/{stage.id}?cursor=bogus")
        assert r.status_code == 422


class TestMove:
    def test_moving_updates_the_deal_the_card_and_both_columns(self, client: TestClient, db: Database,
                                                               people: People) -> None:
        first, second = stages(db)[:2]
        deal = new_deal(db, people.carol, "Mover", amount=Decimal("20000"))
        new_deal(db, people.carol, "Stayer", amount=Decimal("5000"))
        r = move(sign_in(client, people.carol), deal, second)
        assert r.status_code == 200
        assert f'id="deal-card-{deal.id}"' in r.text and f'data-stage-id="{second.id}"' in r.text
        assert 'data-version="2"' in r.text and 'name="version" value="2"' in r.text
        assert column_stats(r.text, first.id) == ("1", "CN¥5,000")
        assert column_stats(r.text, second.id) == ("1", "CN¥20K")
        assert 'hx-swap-oob="true"' in r.text and "Moved to First contact." in r.text
        stored = reload_deal(db, deal.id)
        assert stored.stage_id == second.id and stored.version == 2

    def test_totals_after_a_move_follow_the_boards_filters(self, client: TestClient, db: Database,
                                                           people: People) -> None:
        second = stages(db)[1]
        deal = new_deal(db, people.carol, "Acme", amount=Decimal("1000"))
        new_deal(db, people.carol, "Other", amount=Decimal("7000"))
        with db.session_scope(write=False) as s:
            pipeline_id = default_pipeline(s).id
        r = move(sign_in(client, people.carol), deal, second, query=f"?q=acme&pipeline_id={pipeline_id}")
        assert column_stats(r.text, stages(db)[0].id) == ("0", "CN¥0")
        assert f'action="/board/deals/{deal.id}/move?q=acme&amp;pipeline_id={pipeline_id}"' in r.text

    def test_a_missing_required_field_answers_the_dialog_naming_it(self, client: TestClient, db: Database,
                                                                    people: People) -> None:
        proposal = stages(db)[3]
        deal = new_deal(db, people.carol, "Bare lead")
        r = move(sign_in(client, people.carol), deal, proposal)
        assert r.status_code == 422
        assert r.headers["hx-retarget"] == "#board-dialog" and r.headers["hx-reswap"] == "innerHTML"
        assert "<dialog" in r.text and "Move to Proposal" in r.text
        assert 'name="amount"' in r.text and 'type="number"' in r.text and 'name="company_id"' in r.text
        assert 'name="contact_id"' not in r.text and 'name="expected_close_date"' not in r.text
        assert 'name="dialog" value="1"' in r.text
        assert reload_deal(db, deal.id).stage_id == stages(db)[0].id

    def test_completing_the_dialog_moves_the_deal_with_its_fields(self, client: TestClient, db: Database,
                                                                  people: People) -> None:
        proposal = stages(db)[3]
        company = new_company(db, people.carol, "Acme Ltd")
        deal = new_deal(db, people.carol, "Bare lead")
        sign_in(client, people.carol)
        dialog = move(client, deal, proposal)
        assert f'<option value="{company}">Acme Ltd</option>' in dialog.text
        r = move(client, deal, proposal, dialog="1", amount="88,000", company_id=str(company), contact_id="")
        assert r.status_code == 200 and f'data-stage-id="{proposal.id}"' in r.text
        assert '<div id="board-dialog" hx-swap-oob="innerHTML"></div>' in r.text
        stored = reload_deal(db, deal.id)
        assert (stored.stage_id, stored.amount, stored.company_id) == (proposal.id, Decimal("88000"), company)

    def test_a_half_filled_dialog_saves_nothing_and_names_what_is_left(self, client: TestClient, db: Database,
                                                                        people: People) -> None:
        proposal = stages(db)[3]
        deal = new_deal(db, people.carol, "Bare lead")
        r = move(sign_in(client, people.carol), deal, proposal, dialog="1", amount="5000", company_id="")
        assert r.status_code == 422 and "<dialog" in r.text
        company_field = re.search(r'data-field="company_id".*?</div>\s*</div>', r.text, re.S)
        assert company_field and "Required to enter this stage." in company_field.group(0)
        assert 'value="5000"' in r.text  # what was typed is kept
        stored = reload_deal(db, deal.id)
        assert stored.amount is None and stored.version == 1  # rolled back with the refused move

    @pytest.mark.parametrize("field,value", [("amount", "abc"), ("amount", "-5"), ("company_id", "x")])
    def test_invalid_dialog_input_is_named(self, client: TestClient, db: Database, people: People, field: str,
                                           value: str) -> None:
        proposal = stages(db)[3]
        deal = new_deal(db, people.carol, "Bare lead")
        form: dict[str, Any] = {"amount": "1000", "company_id": "", field: value}
        r = move(sign_in(client, people.carol), deal, proposal, dialog="1", **form)
        assert r.status_code == 422
        block = re.search(rf'data-field="{field}".*?</div>\s*</div>', r.text, re.S)
        assert block and 'data-testid="field-error"' in block.group(0) and 'aria-invalid="true"' in block.group(0)

    def test_a_company_the_viewer_cannot_see_is_refused_in_the_dialog(self, client: TestClient, db: Database,
                                                                       people: People) -> None:
        proposal = stages(db)[3]
        west = new_company(db, people.dave, "West Corp")
        deal = new_deal(db, people.carol, "Bare lead")
        r = move(sign_in(client, people.carol), deal, proposal, dialog="1", amount="10", company_id=str(west))
        assert r.status_code == 422 and "West Corp" not in r.text
        assert "Choose one from the list." in r.text
        assert reload_deal(db, deal.id).company_id is None

    def test_contacts_of_the_deals_company_come_first(self, client: TestClient, db: Database, people: People) -> None:
        needs = stages(db)[2]
        acme = new_company(db, people.carol, "Acme Ltd")
        new_contact(db, people.carol, "Aaron Elsewhere")
        zed = new_contact(db, people.carol, "Zed at Acme", acme)
        deal = new_deal(db, people.carol, "Lead", company_id=acme)
        r = move(sign_in(client, people.carol), deal, needs)
        assert r.status_code == 422 and 'name="contact_id"' in r.text
        assert r.text.index("Zed at Acme") < r.text.index("Aaron Elsewhere")
        assert 'label="At Acme Ltd"' in r.text
        done = move(client, deal, needs, dialog="1", contact_id=str(zed))
        assert done.status_code == 200 and reload_deal(db, deal.id).contact_id == zed

    def test_the_dialogs_pickers_search_visible_records_only(self, client: TestClient, db: Database,
                                                             people: People) -> None:
        acme = new_company(db, people.carol, "Acme Ltd")
        new_company(db, people.carol, "Globex")
        new_company(db, people.dave, "Acme West")  # another team's: never offered
        new_contact(db, people.carol, "Zed at Acme", acme)
        deal = new_deal(db, people.carol, "Lead")
        daves = new_deal(db, people.dave, "West lead")
        sign_in(client, people.carol)
        companies = client.get("/board/options/companies?company_q=acm").text
        assert "Acme Ltd" in companies and "Globex" not in companies and "Acme West" not in companies
        contacts = client.get(f"/board/options/contacts?deal_id={deal.id}&company_id={acme}").text
        assert 'label="At Acme Ltd"' in contacts and "Zed at Acme" in contacts
        assert client.get(f"/board/options/contacts?deal_id={daves.id}").status_code == 404

    def test_the_checklist_is_asked_for_and_confirmed(self, client: TestClient, db: Database, people: People) -> None:
        negotiation = stages(db)[4]
        item = negotiation.checklist[0]
        deal = new_deal(db, people.carol, "Late stage", amount=Decimal("1000"))
        sign_in(client, people.carol)
        r = move(client, deal, negotiation)
        assert r.status_code == 422 and 'type="checkbox" name="checklist"' in r.text
        assert 'type="date"' in r.text and 'name="amount"' not in r.text
        r = move(client, deal, negotiation, dialog="1", expected_close_date="2030-01-31")
        assert r.status_code == 422 and "Confirm every item to enter this stage." in r.text
        r = move(client, deal, negotiation, dialog="1", expected_close_date="2030-01-31", checklist=[item])
        assert r.status_code == 200
        stored = reload_deal(db, deal.id)
        assert stored.stage_id == negotiation.id and stored.expected_close_date == dt.date(2030, 1, 31)

    def test_a_stale_version_says_someone_else_changed_it_and_refreshes_the_card(
            self, client: TestClient, db: Database, people: People) -> None:
        second, third = stages(db)[1:3]
        deal = new_deal(db, people.carol, "Contested")
        with db.session_scope() as s:  # bob moves it first
            deal_service.move_deal(s, people.bob, deal.id, DealMove(stage_id=second.id, version=1))
        r = move(sign_in(client, people.carol), deal, third, version=1)
        assert r.status_code == 409
        assert "Someone else changed this deal meanwhile" in r.text and "toast-error" in r.text
        assert f'id="deal-card-{deal.id}"' in r.text and f'data-stage-id="{second.id}"' in r.text
        assert 'data-version="2"' in r.text
        assert column_stats(r.text, second.id)[0] == "1"
        assert reload_deal(db, deal.id).stage_id == second.id

    def test_another_teams_deal_is_not_found(self, client: TestClient, db: Database, people: People) -> None:
        daves = new_deal(db, people.dave, "West deal")
        new_deal(db, people.carol, "East deal")
        with db.session_scope(write=False) as s:
            pipeline_id = default_pipeline(s).id
        r = move(sign_in(client, people.carol), daves, stages(db)[1], query=f"?pipeline_id={pipeline_id}")
        assert r.status_code == 404 and "West deal" not in r.text
        assert f'id="deal-card-{daves.id}"' not in r.text
        assert column_stats(r.text, stages(db)[0].id)[0] == "1"  # the board's own totals, untouched
        assert reload_deal(db, daves.id).version == 1

    def test_the_csrf_token_is_required(self, client: TestClient, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol, "Guarded")
        sign_in(client, people.carol)
        assert move(client, deal, stages(db)[1], headers=HX).status_code == 403
        assert move(client, deal, stages(db)[1], headers={**HX, "X-CSRF-Token": "forged"}).status_code == 403
        assert reload_deal(db, deal.id).version == 1

    def test_without_javascript_a_move_redirects_back_to_the_board(self, client: TestClient, db: Database,
                                                                   people: People) -> None:
        deal = new_deal(db, people.carol, "Plain form")
        sign_in(client, people.carol)
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/board").text)
        assert token
        r = move(client, deal, stages(db)[1], headers={}, query="?q=plain", csrf_token=token.group(1))
        assert r.status_code == 303 and r.headers["location"].endswith("?q=plain")
        r = move(client, deal, stages(db)[3], version=2, headers={}, csrf_token=token.group(1))
        assert r.status_code == 422 and "<!doctype html>" in r.text and 'name="amount"' in r.text

    def test_moving_into_its_own_stage_is_refused_with_a_toast(self, client: TestClient, db: Database,
                                                               people: People) -> None:
        deal = new_deal(db, people.carol, "Stay")
        r = move(sign_in(client, people.carol), deal, stages(db)[0])
        assert r.status_code == 422 and r.headers["hx-reswap"] == "none"
        assert "This deal cannot move to that stage." in r.text


class TestLanguages:
    def test_the_board_in_chinese(self, client: TestClient, db: Database, people: People) -> None:
        new_deal(db, people.carol, "线索", amount=Decimal("125000"))
        sign_in(client, people.carol)
        html = client.get("/board", headers={"Accept-Language": "zh-CN"}).text
        for text in ("潜在客户", "¥12.5万", "1 个进行中商机", "移至…", "此阶段暂无商机。"):
            assert text in html, text
