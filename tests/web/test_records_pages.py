"""The company and contact pages and the search page, through HTTP on SQLite and
PostgreSQL: lists (filters, sorting, keyset pages), detail pages, the create and edit
forms (errors at the named field, stale edits), and the policy (invisible → 404).

World (tests/conftest.py): alice admin; bob manager and carol rep of team East; dave rep
and erin manager of team West. Carol owns 上海星辰科技有限公司 with its contact 张三 and a
deal; dave owns West Widgets and its contact John Smith.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from loudou.activity.models import Activity, ActivityKind
from loudou.auth.models import User
from loudou.company import service as company_service
from loudou.company.models import Company
from loudou.company.schemas import CompanyCreate, CompanyUpdate
from loudou.contact import service as contact_service
from loudou.contact.models import Contact
from loudou.contact.schemas import ContactCreate
from loudou.db import Database
from loudou.deal import service as deal_service
from loudou.deal.schemas import DealCreate
from tests.conftest import People
from tests.web.conftest import sign_in_page as sign_in
from tests.web.test_auth_pages import csrf_of


def as_user(db: Database, who: User, action: Any) -> Any:
    with db.session_scope() as s:
        viewer = s.get(User, who.id)
        assert viewer is not None
        return action(s, viewer)


@dataclass
class World:
    xingchen: int
    zhang: int
    deal: int
    widgets: int
    smith: int


@pytest.fixture
def world(db: Database, people: People) -> World:
    xingchen = as_user(db, people.carol, lambda s, v: company_service.create_company(s, v, CompanyCreate(
        name="上海星辰科技有限公司", city="上海", industry="软件", phone="021 6234 5678",
        website="www.xingchen.cn")).id)
    zhang = as_user(db, people.carol, lambda s, v: contact_service.create_contact(s, v, ContactCreate(
        name="张三", company_id=xingchen, phone="138 1234 5678", email="zhang.san@xingchen.cn",
        title="采购经理")).id)
    deal = as_user(db, people.carol, lambda s, v: deal_service.create_deal(s, v, DealCreate(
        title="星辰科技 · CRM 年度订阅", company_id=xingchen, contact_id=zhang, amount="120000")).id)
    with db.session_scope() as s:
        s.add(Activity(kind=ActivityKind.call, subject="Intro call", deal_id=deal, company_id=xingchen,
                       contact_id=zhang, owner_id=people.carol.id, team_id=people.carol.team_id))
    widgets = as_user(db, people.dave, lambda s, v: company_service.create_company(s, v, CompanyCreate(
        name="West Widgets", city="Boston", industry="Manufacturing")).id)
    smith = as_user(db, people.dave, lambda s, v: contact_service.create_contact(s, v, ContactCreate(
        name="John Smith", company_id=widgets, phone="+1 617 555 0123")).id)
    return World(xingchen, zhang, deal, widgets, smith)


def row_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr data-id="(\d+)"', html)]


def link(html: str, testid: str) -> str | None:
    m = re.search(rf'href="([^"]+)"[^>]*data-testid="{testid}"', html)
    return m.group(1).replace("&amp;", "&") if m else None


def form_of(html: str, **values: str) -> dict[str, str]:
    """The inputs of the page's main form, as a browser would send them, plus ``values``."""
    form = html[html.index('<form method="post" action="/c'):]
    form = form[:form.index("</form>")]
    fields = dict(re.findall(r'<input type="(?:hidden|text|tel|email)" name="(\w+)" value="([^"]*)"', form))
    selected = re.search(r'<select name="owner_id".*?<option value="(\d+)" selected', form, re.S)
    if selected:
        fields["owner_id"] = selected.group(1)
    return {k: v.replace("&amp;", "&") for k, v in fields.items()} | values


class TestCompanyList:
    def test_a_rep_sees_their_companies_only(self, client: TestClient, people: People, world: World) -> None:
        sign_in(client, people.carol)
        r = client.get("/companies")
        assert r.status_code == 200 and row_ids(r.text) == [world.xingchen]
        assert "上海星辰科技有限公司" in r.text and "021 6234 5678" not in r.text  # en: +86 21 6234 5678
        assert "+86 21 6234 5678" in r.text
        assert 'name="owner_id"' not in r.text  # nothing to filter for a rep

    def test_an_admin_filters_by_owner_team_industry_city_and_text(self, client: TestClient, people: People,
                                                                  world: World) -> None:
        sign_in(client, people.alice)
        assert sorted(row_ids(client.get("/companies").text)) == sorted([world.xingchen, world.widgets])
        assert row_ids(client.get("/companies", params={"owner_id": people.dave.id}).text) == [world.widgets]
        assert row_ids(client.get("/companies", params={"team_id": people.carol.team_id}).text) == [world.xingchen]
        assert row_ids(client.get("/companies", params={"industry": "Manufacturing"}).text) == [world.widgets]
        assert row_ids(client.get("/companies", params={"city": "上海"}).text) == [world.xingchen]
        for q in ("xingchen", "XC", "星辰", "021 6234", "west"):
            assert row_ids(client.get("/companies", params={"q": q}).text) != [], q
        assert row_ids(client.get("/companies", params={"q": "xingchen"}).text) == [world.xingchen]
        empty = client.get("/companies", params={"q": "nothing-like-this"})
        assert 'data-testid="empty"' in empty.text

    def test_empty_filter_fields_mean_any(self, client: TestClient, people: People, world: World) -> None:
        sign_in(client, people.alice)
        r = client.get("/companies", params={"q": "", "owner_id": "", "industry": "", "sort": "name"})
        assert r.status_code == 200 and len(row_ids(r.text)) == 2

    def test_sorting_and_keyset_pages(self, client: TestClient, db: Database, people: People) -> None:
        names = ["Delta", "alpha", "Charlie", "bravo", "Echo"]
        for name in names:
            as_user(db, people.carol, lambda s, v, n=name: company_service.create_company(s, v, CompanyCreate(name=n)))
        sign_in(client, people.carol)
        seen: list[int] = []
        url: str | None = "/companies?sort=name&limit=2"
        while url:
            r = client.get(url)
            seen += row_ids(r.text)
            url = link(r.text, "next-page")
            if url:
                assert link(client.get(url).text, "first-page") == "/companies?sort=name&limit=2"
        with db.session_scope(write=False) as s:
            expected = [c.id for c in s.scalars(sa.select(Company).order_by(Company.name, Company.id))]
        assert seen == expected and len(seen) == 5
        newest = row_ids(client.get("/companies").text)
        assert newest == sorted(newest, reverse=True)

    def test_an_unknown_sort_is_refused(self, client: TestClient, people: People) -> None:
        sign_in(client, people.carol)
        assert client.get("/companies", params={"sort": "password_hash"}).status_code == 422

    def test_htmx_gets_only_the_results(self, client: TestClient, people: People, world: World) -> None:
        sign_in(client, people.carol)
        r = client.get("/companies", params={"q": "xc"}, headers={"HX-Request": "true"})
        assert r.text.lstrip().startswith('<div id="results">') and "<html" not in r.text
        assert row_ids(r.text) == [world.xingchen]

    def test_phones_become_cards_on_small_screens(self, client: TestClient, people: People, world: World) -> None:
        sign_in(client, people.carol)
        r = client.get("/companies")
        assert 'class="table cards grid-cards"' in r.text and 'data-label="City"' in r.text


class TestContactList:
    def test_filters_by_company_text_and_company_id(self, client: TestClient, people: People, world: World) -> None:
        sign_in(client, people.alice)
        assert sorted(row_ids(client.get("/contacts").text)) == sorted([world.zhang, world.smith])
        assert row_ids(client.get("/contacts", params={"company": "xingchen"}).text) == [world.zhang]
        assert row_ids(client.get("/contacts", params={"company": "West"}).text) == [world.smith]
        r = client.get("/contacts", params={"company_id": world.widgets})
        assert row_ids(r.text) == [world.smith] and 'data-testid="company-chip"' in r.text
        assert row_ids(client.get("/contacts", params={"q": "zs"}).text) == [world.zhang]
        assert row_ids(client.get("/contacts", params={"q": "617 555"}).text) == [world.smith]

    def test_a_company_the_viewer_may_not_see_is_not_named(self, client: TestClient, db: Database,
                                                         people: People, world: World) -> None:
        """Carol's contact at dave's company: she sees her contact, not his company's name."""
        with db.engine.begin() as conn:
            conn.execute(sa.update(Contact).where(Contact.id == world.zhang).values(company_id=world.widgets))
        sign_in(client, people.carol)
        r = client.get("/contacts")
        assert row_ids(r.text) == [world.zhang] and "West Widgets" not in r.text
        assert "West Widgets" not in client.get(f"/contacts/{world.zhang}").text


class TestDetail:
    def test_company_page(self, client: TestClient, people: People, world: World) -> None:
        sign_in(client, people.carol)
        r = client.get(f"/companies/{world.xingchen}")
        assert r.status_code == 200
        assert f'href="/deals/{world.deal}"' in r.text and "badge-open" in r.text
        assert "CN¥120,000" in r.text
        assert f'href="/contacts/{world.zhang}"' in r.text and "Intro call" in r.text
        assert 'href="https://www.xingchen.cn"' in r.text

    def test_contact_page(self, client: TestClient, people: People, world: World) -> None:
        sign_in(client, people.carol)
        r = client.get(f"/contacts/{world.zhang}")
        assert r.status_code == 200 and "张三" in r.text and "+86 138 1234 5678" in r.text
        assert f'href="/companies/{world.xingchen}"' in r.text and f'href="/deals/{world.deal}"' in r.text

    def test_chinese_page_in_chinese(self, client: TestClient, people: People, world: World) -> None:
        sign_in(client, people.carol)
        r = client.get(f"/contacts/{world.zhang}", headers={"Accept-Language": "zh-CN"})
        assert "最近活动" in r.text and "138 1234 5678" in r.text and "¥120,000" in r.text

    def test_a_javascript_website_is_not_a_link(self, client: TestClient, db: Database, people: People,
                                                world: World) -> None:
        with db.engine.begin() as conn:
            conn.execute(sa.update(Company).where(Company.id == world.xingchen).values(website="javascript:alert(1)"))
        sign_in(client, people.carol)
        assert 'href="javascript:' not in client.get(f"/companies/{world.xingchen}").text

    @pytest.mark.parametrize("path", ["/companies/{c}", "/companies/{c}/edit", "/contacts/{p}", "/contacts/{p}/edit"])
    def test_what_the_viewer_may_not_see_is_not_found(self, client: TestClient, people: People, world: World,
                                                      path: str) -> None:
        sign_in(client, people.dave)
        assert client.get(path.format(c=world.xingchen, p=world.zhang)).status_code == 404
        assert client.get(path.format(c=999_999, p=999_999)).status_code == 404

    def test_posting_to_an_invisible_record_is_not_found(self, client: TestClient, db: Database, people: People,
                                                         world: World) -> None:
        sign_in(client, people.dave)
        token = csrf_of(client.get("/companies/new").text)
        r = client.post(f"/companies/{world.xingchen}/edit", data={"csrf_token": token, "name": "Mine", "version": "1"})
        assert r.status_code == 404
        r = client.post(f"/contacts/{world.zhang}/delete", data={"csrf_token": token, "version": "1"})
        assert r.status_code == 404
        with db.session_scope(write=False) as s:
            assert s.get(Company, world.xingchen).name == "上海星辰科技有限公司"  # type: ignore[union-attr]
            assert s.get(Contact, world.zhang) is not None

    def test_a_manager_sees_the_teams_records(self, client: TestClient, people: People, world: World) -> None:
        sign_in(client, people.bob)
        assert client.get(f"/companies/{world.xingchen}").status_code == 200
        assert client.get(f"/companies/{world.widgets}").status_code == 404


class TestCreate:
    def test_create_normalises_the_phone(self, client: TestClient, db: Database, people: People) -> None:
        sign_in(client, people.carol)
        page = client.get("/companies/new")
        r = client.post("/companies/new", data=form_of(page.text, name=" 云海物流 ", phone="021-6234 5678",
                                                       email="Info@YunHai.cn"), follow_redirects=False)
        assert r.status_code == 303
        company_id = int(r.headers["location"].rsplit("/", 1)[1])
        with db.session_scope(write=False) as s:
            c = s.get(Company, company_id)
            assert c is not None and (c.name, c.phone, c.email, c.owner_id) == (
                "云海物流", "+862162345678", "info@yunhai.cn", people.carol.id)

    @pytest.mark.parametrize("field,value", [("phone", "12"), ("email", "not-an-email"), ("name", "  "),
                                             ("name", "x" * 201)])
    def test_a_bad_field_is_named(self, client: TestClient, db: Database, people: People, field: str,
                                  value: str) -> None:
        sign_in(client, people.carol)
        page = client.get("/companies/new")
        data = form_of(page.text, name="云海物流", city="上海") | {field: value}
        r = client.post("/companies/new", data=data)
        assert r.status_code == 422
        assert f'data-testid="error-{field}"' in r.text
        assert re.findall(r'data-testid="error-(\w+)"', r.text) == [field]
        assert 'value="上海"' in r.text  # what was typed stays
        with db.session_scope(write=False) as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(Company)) == 0

    def test_a_rep_may_not_give_a_record_away(self, client: TestClient, people: People) -> None:
        sign_in(client, people.bob)
        page = client.get("/companies/new")
        r = client.post("/companies/new", data=form_of(page.text, name="Far away", owner_id=str(people.dave.id)))
        assert r.status_code == 422 and 'data-testid="error-owner_id"' in r.text

    def test_contact_with_an_unknown_or_invisible_company(self, client: TestClient, people: People,
                                                         world: World) -> None:
        sign_in(client, people.carol)
        page = client.get("/contacts/new")
        for company in ("No Such Co", "West Widgets", f"West Widgets (#{world.widgets})"):
            r = client.post("/contacts/new", data=form_of(page.text, name="李四", company=company))
            assert r.status_code == 422 and 'data-testid="error-company"' in r.text, company

    def test_contact_names_its_company(self, client: TestClient, db: Database, people: People, world: World) -> None:
        sign_in(client, people.carol)
        page = client.get(f"/contacts/new?company_id={world.xingchen}")
        assert 'value="上海星辰科技有限公司"' in page.text
        r = client.post("/contacts/new", data=form_of(page.text, name="李四", phone="139 0000 1111"),
                        follow_redirects=False)
        assert r.status_code == 303
        with db.session_scope(write=False) as s:
            li = s.scalars(sa.select(Contact).where(Contact.name == "李四")).one()
            assert (li.company_id, li.phone) == (world.xingchen, "+8613900001111")

    def test_company_suggestions_for_the_contact_form(self, client: TestClient, people: People,
                                                      world: World) -> None:
        sign_in(client, people.carol)
        form = client.get("/contacts/new").text
        assert 'hx-get="/contacts/company-options"' in form and 'list="company-options"' in form
        r = client.get("/contacts/company-options", params={"company": "xingc"})
        assert '<option value="上海星辰科技有限公司">' in r.text
        assert "West" not in client.get("/contacts/company-options", params={"company": "west"}).text

    def test_forms_need_their_csrf_token(self, client: TestClient, db: Database, people: People) -> None:
        sign_in(client, people.carol)
        assert client.post("/companies/new", data={"name": "Forged"}).status_code == 403
        with db.session_scope(write=False) as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(Company)) == 0


class TestEdit:
    def test_edit_saves_and_keeps_an_unchanged_owner(self, client: TestClient, db: Database, people: People,
                                                     world: World) -> None:
        sign_in(client, people.bob)
        page = client.get(f"/companies/{world.xingchen}/edit")
        r = client.post(f"/companies/{world.xingchen}/edit", data=form_of(page.text, city="北京"),
                        follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/companies/{world.xingchen}"
        with db.session_scope(write=False) as s:
            c = s.get(Company, world.xingchen)
            assert c is not None and (c.city, c.owner_id, c.version) == ("北京", people.carol.id, 2)

    def test_a_stale_edit_shows_both_values(self, client: TestClient, db: Database, people: People,
                                            world: World) -> None:
        sign_in(client, people.carol)
        page = client.get(f"/companies/{world.xingchen}/edit")
        as_user(db, people.bob, lambda s, v: company_service.update_company(
            s, v, world.xingchen, CompanyUpdate(version=1, city="杭州")))
        r = client.post(f"/companies/{world.xingchen}/edit", data=form_of(page.text, city="北京"))
        assert r.status_code == 409 and 'data-testid="conflict"' in r.text
        start = r.text.index('data-testid="conflict"')
        conflict = r.text[start:r.text.index("</table>", start)]  # the list of differences alone
        assert re.search(r'<td class="mine">北京</td><td class="theirs">杭州</td>', conflict)
        assert "021" not in conflict  # the phone did not change: only real differences are listed
        with db.session_scope(write=False) as s:
            assert s.get(Company, world.xingchen).city == "杭州"  # type: ignore[union-attr]
        # The form now carries the current version: saving again keeps the user's value.
        r = client.post(f"/companies/{world.xingchen}/edit", data=form_of(r.text), follow_redirects=False)
        assert r.status_code == 303
        with db.session_scope(write=False) as s:
            assert s.get(Company, world.xingchen).city == "北京"  # type: ignore[union-attr]

    def test_a_stale_contact_edit(self, client: TestClient, db: Database, people: People, world: World) -> None:
        sign_in(client, people.carol)
        page = client.get(f"/contacts/{world.zhang}/edit")
        assert 'value="上海星辰科技有限公司"' in page.text
        with db.session_scope() as s:
            viewer = s.get(User, people.carol.id)
            assert viewer is not None
            from loudou.contact.schemas import ContactUpdate

            contact_service.update_contact(s, viewer, world.zhang, ContactUpdate(version=1, phone="13900001111"))
        r = client.post(f"/contacts/{world.zhang}/edit", data=form_of(page.text, title="总经理"))
        assert r.status_code == 409
        assert "总经理" in r.text and "139 0000 1111" in r.text

    def test_an_edit_error_keeps_the_version_read(self, client: TestClient, people: People, world: World) -> None:
        sign_in(client, people.carol)
        page = client.get(f"/contacts/{world.zhang}/edit")
        r = client.post(f"/contacts/{world.zhang}/edit", data=form_of(page.text, email="nope"))
        assert r.status_code == 422 and 'data-testid="error-email"' in r.text
        assert form_of(r.text)["version"] == "1"

    def test_delete(self, client: TestClient, db: Database, people: People, world: World) -> None:
        sign_in(client, people.carol)
        page = client.get(f"/companies/{world.xingchen}/edit")
        r = client.post(f"/companies/{world.xingchen}/delete", data={"csrf_token": csrf_of(page.text), "version": "1"})
        assert r.status_code == 409 and 'data-testid="notice"' in r.text  # it still has a contact and a deal
        lone = as_user(db, people.carol,
                       lambda s, v: company_service.create_company(s, v, CompanyCreate(name="Lone")).id)
        r = client.post(f"/companies/{lone}/delete", data={"csrf_token": csrf_of(page.text), "version": "1"},
                        follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/companies"
        with db.session_scope(write=False) as s:
            assert s.get(Company, lone) is None


class TestSearchPage:
    def test_results_grouped_by_kind(self, client: TestClient, people: People, world: World) -> None:
        sign_in(client, people.carol)
        r = client.get("/search", params={"q": "zs"})
        assert r.status_code == 200
        contacts = r.text[r.text.index('data-testid="group-contacts"'):r.text.index('data-testid="group-companies"')]
        assert f'href="/contacts/{world.zhang}">张三</a>' in contacts
        r = client.get("/search", params={"q": "xingchen"})
        assert f'href="/companies/{world.xingchen}"' in r.text

    def test_only_what_the_viewer_may_see(self, client: TestClient, people: People, world: World) -> None:
        sign_in(client, people.dave)
        r = client.get("/search", params={"q": "138 1234 5678"})
        assert "张三" not in r.text and 'data-testid="no-results"' in r.text
        assert "John Smith" in client.get("/search", params={"q": "+1 617 555"}).text

    def test_suggestions_while_typing(self, client: TestClient, people: People, world: World) -> None:
        sign_in(client, people.carol)
        r = client.get("/search/suggest", params={"q": "zhang"}, headers={"HX-Request": "true"})
        assert r.status_code == 200 and "<html" not in r.text and f'href="/contacts/{world.zhang}"' in r.text
        assert client.get("/search/suggest", params={"q": " "}).text.strip() == ""

    def test_an_empty_query_explains_the_search(self, client: TestClient, people: People) -> None:
        sign_in(client, people.carol)
        r = client.get("/search")
        assert r.status_code == 200 and "zhangsan or zs" in r.text

    def test_the_query_is_escaped(self, client: TestClient, people: People) -> None:
        sign_in(client, people.carol)
        r = client.get("/search", params={"q": "<script>alert(1)</script>"})
        assert "<script>alert(1)</script>" not in r.text and "&lt;script&gt;" in r.text
