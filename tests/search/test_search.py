"""The global search: terms (pinyin, initials, phone digits, e-mail), the index kept
current by the services, the bulk rebuild, and the policy — on SQLite and PostgreSQL.

World (tests/conftest.py): alice admin; bob manager and carol rep of team East; dave rep
and erin manager of team West. Carol owns 张三 (a contact) and 上海星辰科技有限公司.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from loudou.auth.models import User
from loudou.company import service as company_service
from loudou.company.schemas import CompanyCreate, CompanyUpdate
from loudou.contact import service as contact_service
from loudou.contact.schemas import ContactCreate, ContactUpdate
from loudou.db import Database
from loudou.deal import service as deal_service
from loudou.deal.schemas import DealCreate, DealUpdate
from loudou.search import queries as search_queries
from loudou.search import service as search_service
from loudou.search import terms
from loudou.search.models import SearchKind, SearchTerm
from tests.conftest import People


def as_user(db: Database, who: User, action: Any) -> Any:
    with db.session_scope() as s:
        viewer = s.get(User, who.id)
        assert viewer is not None
        return action(s, viewer)


def found(db: Database, who: User, query: str) -> dict[str, list[str]]:
    """Names (titles) of what ``who`` finds for ``query``, per kind."""
    with db.session_scope(write=False) as s:
        viewer = s.get(User, who.id)
        assert viewer is not None
        r = search_queries.search(s, viewer, query, limit=20)
        return {"deal": [d.title for d in r.deals], "company": [c.name for c in r.companies],
                "contact": [c.name for c in r.contacts]}


def index_rows(db: Database) -> set[tuple[Any, ...]]:
    with db.engine.connect() as conn:
        t = SearchTerm.__table__
        return {tuple(r) for r in conn.execute(sa.select(t.c.kind, t.c.entity_id, t.c.term, t.c.owner_id,
                                                         t.c.team_id))}


def make_contact(db: Database, who: User, **fields: Any) -> int:
    return as_user(db, who, lambda s, v: contact_service.create_contact(s, v, ContactCreate(**fields)).id)


def make_company(db: Database, who: User, **fields: Any) -> int:
    return as_user(db, who, lambda s, v: company_service.create_company(s, v, CompanyCreate(**fields)).id)


class TestTerms:
    def test_a_chinese_name_is_indexed_by_pinyin_and_initials(self) -> None:
        assert {"张三", "zhangsan", "zs"} <= set(terms.contact_terms("张三", None, None))

    def test_pinyin_follows_phrases(self) -> None:
        assert "chongqingchangcheng" in terms.company_terms("重庆长城", None, None, None)

    def test_every_reading_of_a_polyphonic_surname_is_indexed(self) -> None:
        assert {"zengguofan", "zgf", "cengguofan"} <= set(terms.contact_terms("曾国藩", None, None))

    def test_pinyin_matches_pypinyin_on_mixed_text(self) -> None:
        from pypinyin import lazy_pinyin

        text = "云信智能装备 · SaaS 年度订阅"
        assert terms.syllables(text) == [p for p in lazy_pinyin(text) if p.isascii() and p.isalpha()
                                         and p not in text]

    def test_deal_titles_are_found_by_their_words(self) -> None:
        assert terms.deal_terms("云信 · CRM 系统") == ["crm 系统", "云信 · crm 系统", "系统"]

    def test_later_words_and_the_name_without_its_city(self) -> None:
        company = terms.company_terms("上海星辰科技有限公司", "上海", None, None)
        assert {"上海星辰科技有限公司", "星辰科技有限公司", "xingchenkejiyouxiangongsi", "xckjyxgs"} <= set(company)
        assert "smith" in terms.contact_terms("John Smith", None, None)

    def test_phones_are_indexed_by_their_national_number(self) -> None:
        assert terms.phone_terms("+8613812345678") == {"13812345678"}
        assert terms.phone_terms("+16175550123") == {"6175550123"}
        # A Chinese landline also without its area code, as dialled inside the city.
        assert terms.phone_terms("+862162345678") == {"2162345678", "62345678"}
        assert terms.phone_terms("+861062345678") == {"1062345678", "62345678"}
        assert terms.phone_terms("+867555120001") == {"7555120001", "5120001"}

    @pytest.mark.parametrize("typed,prefixes", [
        ("138 1234 5678", ["13812345678"]), ("138-1234-5678", ["13812345678"]), ("(138) 1234", ["1381234"]),
        ("+86 138 1234 5678", ["13812345678"]), ("0086 13812345678", ["13812345678"]),
        ("8613812345678", ["8613812345678", "13812345678"]), ("021-6234 5678", ["2162345678"]),
        ("+1 (617) 555-0123", ["6175550123"]), ("ＺＳ", ["zs"]), ("12", ["12"]),
    ])
    def test_what_the_user_types_becomes_a_prefix(self, typed: str, prefixes: list[str]) -> None:
        assert terms.query_prefixes(typed) == prefixes

    def test_pinyin_with_spaces_or_apostrophes_also_matches_without(self) -> None:
        assert terms.query_prefixes("Zhang San") == ["zhang san", "zhangsan"]
        assert terms.query_prefixes("xi'an") == ["xi'an", "xian"]

    def test_prefix_range(self) -> None:
        assert terms.prefix_range("zs") == ("zs", "zt")
        assert terms.prefix_range("张") == ("张", chr(ord("张") + 1))


class TestFinding:
    @pytest.fixture
    def zhang(self, db: Database, people: People) -> int:
        return make_contact(db, people.carol, name="张三", phone="138 1234 5678", email="Zhang.San@Acme.cn")

    @pytest.mark.parametrize("query", ["zs", "ZS", "zhangsan", "zhang san", "zhangs", "张", "张三"])
    def test_by_name_pinyin_and_initials(self, db: Database, people: People, zhang: int, query: str) -> None:
        assert found(db, people.carol, query)["contact"] == ["张三"]

    @pytest.mark.parametrize("query", ["138 1234 5678", "138-1234-5678", "13812345678", "+86 138 1234 5678",
                                       "8613812345678", "0086 138 1234 5678", "1381234"])
    def test_by_phone_digits_in_any_format(self, db: Database, people: People, zhang: int, query: str) -> None:
        assert found(db, people.carol, query)["contact"] == ["张三"]

    @pytest.mark.parametrize("query", ["zhang.san@acme.cn", "Zhang.San@", "zhang.s"])
    def test_by_email(self, db: Database, people: People, zhang: int, query: str) -> None:
        assert found(db, people.carol, query)["contact"] == ["张三"]

    def test_no_false_friends(self, db: Database, people: People, zhang: int) -> None:
        assert found(db, people.carol, "zx") == {"deal": [], "company": [], "contact": []}
        assert found(db, people.carol, "1391234") == {"deal": [], "company": [], "contact": []}

    def test_companies_by_name_without_city_pinyin_and_landline(self, db: Database, people: People) -> None:
        make_company(db, people.carol, name="上海星辰科技有限公司", city="上海", phone="021 6234 5678")
        for query in ("星辰", "xingchen", "xckj", "shanghaixing", "shxc", "021-6234-5678", "6234 5678",
                      "+86 21 6234 5678", "上海星辰"):
            assert found(db, people.carol, query)["company"] == ["上海星辰科技有限公司"], query

    def test_results_are_grouped_by_kind(self, db: Database, people: People) -> None:
        company = make_company(db, people.carol, name="张江软件")
        make_contact(db, people.carol, name="张伟", company_id=company)
        results = found(db, people.carol, "zhang")
        assert results["company"] == ["张江软件"]
        assert results["contact"] == ["张伟"]


class TestPolicy:
    @pytest.fixture
    def zhang(self, db: Database, people: People) -> int:
        return make_contact(db, people.carol, name="张三", phone="13812345678")

    def test_only_what_the_viewer_may_see(self, db: Database, people: People, zhang: int) -> None:
        assert found(db, people.carol, "zs")["contact"] == ["张三"]
        assert found(db, people.bob, "zs")["contact"] == ["张三"]  # carol's manager
        assert found(db, people.alice, "zs")["contact"] == ["张三"]  # admin
        assert found(db, people.dave, "zs")["contact"] == []  # another team's rep
        assert found(db, people.erin, "13812345678")["contact"] == []  # another team's manager

    def test_a_managers_own_record_outside_the_team(self, db: Database, people: People) -> None:
        make_contact(db, people.erin, name="李四", owner_id=people.erin.id)
        assert found(db, people.erin, "ls")["contact"] == ["李四"]
        assert found(db, people.bob, "ls")["contact"] == []

    def test_a_disabled_user_finds_nothing(self, db: Database, people: People, zhang: int) -> None:
        with db.session_scope() as s:
            user = s.get(User, people.carol.id)
            assert user is not None
            user.is_active = False
        assert found(db, people.carol, "zs")["contact"] == []

    def test_a_stale_index_row_never_shows_a_record(self, db: Database, people: People, zhang: int) -> None:
        """The index narrows, the records' own policy decides: a row pointing at dave is ignored."""
        with db.engine.begin() as conn:
            conn.execute(sa.update(SearchTerm.__table__).values(owner_id=people.dave.id, team_id=None))
        assert found(db, people.dave, "zs")["contact"] == []

    def test_the_index_clause_is_the_policy_on_the_index_columns(self) -> None:
        from loudou.auth import policy
        from loudou.auth.models import Role
        from loudou.contact.models import Contact

        for role in Role:
            clause = search_queries.scope_on_terms(SearchKind.contact, role)
            assert str(clause) == str(policy.scope_clause(Contact, role)).replace("contacts.", "search_terms.")


class TestIndexMaintenance:
    def test_update_replaces_the_terms(self, db: Database, people: People) -> None:
        cid = make_contact(db, people.carol, name="张三")
        as_user(db, people.carol, lambda s, v: contact_service.update_contact(
            s, v, cid, ContactUpdate(version=1, name="王五", phone="139 0000 1111")))
        assert found(db, people.carol, "zs")["contact"] == []
        assert found(db, people.carol, "ww")["contact"] == ["王五"]
        assert found(db, people.carol, "139 0000")["contact"] == ["王五"]

    def test_a_new_owner_takes_the_record_into_their_search(self, db: Database, people: People) -> None:
        cid = make_company(db, people.carol, name="星辰科技")
        as_user(db, people.alice, lambda s, v: company_service.update_company(
            s, v, cid, CompanyUpdate(version=1, owner_id=people.dave.id)))
        assert found(db, people.dave, "xckj")["company"] == ["星辰科技"]
        assert found(db, people.carol, "xckj")["company"] == []
        assert found(db, people.erin, "xckj")["company"] == ["星辰科技"]  # now in team West

    def test_delete_removes_the_terms(self, db: Database, people: People) -> None:
        cid = make_contact(db, people.carol, name="张三")
        company = make_company(db, people.carol, name="星辰科技")
        as_user(db, people.carol, lambda s, v: contact_service.delete_contact(s, v, cid, 1))
        as_user(db, people.carol, lambda s, v: company_service.delete_company(s, v, company, 1))
        assert index_rows(db) == set()

    def test_deal_titles_are_indexed_by_the_deal_service(self, db: Database, people: People) -> None:
        deal_id = as_user(db, people.carol, lambda s, v: deal_service.create_deal(
            s, v, DealCreate(title="星辰科技 · CRM 年度订阅")).id)
        assert found(db, people.carol, "星辰")["deal"] == ["星辰科技 · CRM 年度订阅"]
        assert found(db, people.carol, "crm")["deal"] == ["星辰科技 · CRM 年度订阅"]
        as_user(db, people.carol, lambda s, v: deal_service.update_deal(
            s, v, deal_id, DealUpdate(version=1, title="云海物流 · 续约")))
        assert found(db, people.carol, "星辰")["deal"] == []
        assert found(db, people.carol, "云海")["deal"] == ["云海物流 · 续约"]
        as_user(db, people.carol, lambda s, v: deal_service.delete_deal(s, v, deal_id, 2))
        assert found(db, people.carol, "云海")["deal"] == []

    def test_rebuild_equals_what_the_services_maintained(self, db: Database, people: People) -> None:
        company = make_company(db, people.carol, name="上海星辰科技有限公司", city="上海", phone="021 6234 5678",
                               email="info@xingchen.cn")
        make_contact(db, people.carol, name="单雄信", company_id=company, phone="13812345678")
        make_contact(db, people.dave, name="John Smith", email="john@example.com", phone="+1 617 555 0123")
        other = make_company(db, people.erin, name="Acme Software Ltd", owner_id=people.erin.id)
        as_user(db, people.erin, lambda s, v: company_service.update_company(
            s, v, other, CompanyUpdate(version=1, name="Acme Robotics Ltd", owner_id=people.dave.id)))
        incremental = index_rows(db)
        assert len(incremental) > 20
        written = search_service.rebuild_index(db)
        assert written == len(incremental)
        assert index_rows(db) == incremental
        assert found(db, people.dave, "acme robotics")["company"] == ["Acme Robotics Ltd"]

    def test_rebuild_indexes_deal_titles(self, db: Database, people: People) -> None:
        as_user(db, people.carol, lambda s, v: deal_service.create_deal(s, v, DealCreate(title="重庆长城 · 续约")))
        with db.engine.begin() as conn:
            conn.execute(sa.delete(SearchTerm.__table__))
        search_service.rebuild_index(db)
        assert found(db, people.carol, "重庆")["deal"] == ["重庆长城 · 续约"]
        assert found(db, people.carol, "续约")["deal"] == ["重庆长城 · 续约"]
        assert found(db, people.dave, "重庆")["deal"] == []

    def test_rebuild_on_an_empty_database(self, db: Database, people: People) -> None:
        assert search_service.rebuild_index(db) == 0
        assert found(db, people.alice, "a") == {"deal": [], "company": [], "contact": []}

    def test_the_term_column_sorts_by_code_point(self, db: Database, people: People) -> None:
        """Prefix ranges need code point order; PostgreSQL's default collation is not."""
        make_contact(db, people.carol, name="ab", email="a-b@example.com")
        make_contact(db, people.carol, name="a b", email="ab@example.com")
        assert sorted(found(db, people.carol, "ab")["contact"]) == ["a b", "ab"]
        assert found(db, people.carol, "a-")["contact"] == ["ab"]
