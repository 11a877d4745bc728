"""The segments report's tables (closed deals by product and by company industry, with the
won deals' cycles) stay equal to what the deals give through every kind of change the
services make — a deal closed, reopened, moved to another owner, product or company,
changed in amount, deleted; a company given another industry; UPDATE statements through a
session — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from loudou.activity import service as activity_service
from loudou.activity.models import ActivityKind
from loudou.activity.schemas import ActivityCreate
from loudou.analytics import counters_segments, rebuild
from loudou.company import service as company_service
from loudou.company.models import Company
from loudou.company.schemas import CompanyCreate, CompanyUpdate
from loudou.db import Database, utcnow
from loudou.deal import service as deal_service
from loudou.deal.models import Deal
from loudou.deal.schemas import DealClose, DealCreate, DealMove, DealReopen, DealUpdate
from loudou.pipeline import queries as pipeline_queries
from loudou.product.models import Product
from tests.analytics.history import deal, recorded_statements
from tests.conftest import People, default_pipeline
from tests.deal.test_service import relax

TABLES = ("analytics_segment_products", "analytics_segment_industries")


def assert_tables_match(db: Database) -> None:
    with db.engine.connect() as conn:
        found = counters_segments.check(conn)
    assert set(found) == set(TABLES) and set(found.values()) == {0}, found


def stored(db: Database, table: sa.Table) -> dict[tuple[Any, ...], tuple[int, int, int, list[int]]]:
    """{(segment, status): (n, cents, with amount, sorted cycles)} over every month, owner…"""
    out: dict[tuple[Any, ...], tuple[int, int, int, list[int]]] = {}
    with db.engine.connect() as conn:
        for row in conn.execute(sa.select(table)):
            key = (row[4], row.status)
            n, cents, with_amount, cycles = out.get(key, (0, 0, 0, []))
            out[key] = (n + row.n, cents + row.cents, with_amount + row.with_amount,
                        sorted(cycles + [int(c) for c in counters_segments.decode(row.cycles)]))
    return out



def test_tables_follow_every_change(db: Database, people: People) -> None:
    relax(db, people)  # stage rules are not what this test is about
    start = utcnow() - dt.timedelta(days=70)
    with db.session_scope() as s:
        stages = pipeline_queries.list_stages(s, default_pipeline(s).id)
        router, switch = Product(name="Router"), Product(name="Switch")
        s.add_all([router, switch])
        s.flush()
        p1, p2 = router.id, switch.id
        shop = company_service.create_company(s, people.alice, CompanyCreate(name="Shop", industry="retail",
                                                                              owner_id=people.carol.id))
        bank = company_service.create_company(s, people.alice, CompanyCreate(name="Bank", industry="finance",
                                                                              owner_id=people.dave.id))
        shop_id, bank_id = shop.id, bank.id
        a = deal_service.create_deal(s, people.carol, DealCreate(title="a", amount=Decimal("1000.50"),
                                                                 product_id=p1, company_id=shop_id), at=start)
        b = deal_service.create_deal(s, people.dave, DealCreate(title="b", amount=2000, product_id=p2,
                                                                company_id=bank_id), at=start)
        c = deal_service.create_deal(s, people.carol, DealCreate(title="c"), at=start + dt.timedelta(days=1))
        ids = a.id, b.id, c.id
    assert_tables_match(db)
    assert stored(db, counters_segments.products) == {}

    # Won (with a new amount), lost, disqualified.
    with db.session_scope() as s:
        d = deal(s, ids[0])
        deal_service.move_deal(s, people.carol, d.id, DealMove(stage_id=stages[1].id, version=d.version),
                               at=start + dt.timedelta(days=2))
        deal_service.win_deal(s, people.carol, d.id, DealClose(version=d.version, amount=Decimal(1500)),
                              at=start + dt.timedelta(days=20, seconds=30))
        e = deal(s, ids[1])
        deal_service.lose_deal(s, people.dave, e.id, DealClose(version=e.version, reason="budget"),
                               at=start + dt.timedelta(days=30))
        f = deal(s, ids[2])
        deal_service.disqualify_deal(s, people.carol, f.id, DealClose(version=f.version, reason="spam"),
                                     at=start + dt.timedelta(days=4))
    assert_tables_match(db)
    cycle = 20 * 86_400 + 30
    assert stored(db, counters_segments.products) == {
        (p1, "won"): (1, 150_000, 1, [cycle]), (p2, "lost"): (1, 200_000, 1, []), (0, "disqualified"): (1, 0, 0, [])}
    assert stored(db, counters_segments.industries) == {
        ("retail", "won"): (1, 150_000, 1, [cycle]), ("finance", "lost"): (1, 200_000, 1, []),
        ("", "disqualified"): (1, 0, 0, [])}

    # The won deal moves to another product, company, owner and amount; the lost one's
    # company changes industry, then loses it.
    with db.session_scope() as s:
        d = deal(s, ids[0])
        deal_service.update_deal(s, people.alice, d.id, DealUpdate(
            version=d.version, owner_id=people.dave.id, amount=Decimal("99.99"), product_id=p2, company_id=bank_id))
        bank = s.get(Company, bank_id)
        assert bank is not None
        company_service.update_company(s, people.alice, bank_id, CompanyUpdate(version=bank.version, industry="banks"))
    assert_tables_match(db)
    assert stored(db, counters_segments.industries)[("banks", "won")] == (1, 9_999, 1, [cycle])
    with db.session_scope() as s:
        bank = s.get(Company, bank_id)
        assert bank is not None
        company_service.update_company(s, people.alice, bank_id, CompanyUpdate(version=bank.version, industry=None))
    assert_tables_match(db)
    assert set(stored(db, counters_segments.industries)) == {("", "won"), ("", "lost"), ("", "disqualified")}

    # Activities logged on a closed deal change nothing here; UPDATE statements on deals
    # and on companies through a session move what they touch.
    with db.session_scope() as s:
        activity_service.log_activity(s, people.dave, ActivityCreate(kind=ActivityKind.call, deal_id=ids[1]))
        s.execute(sa.update(Deal).where(Deal.id.in_(ids[1:])).values(amount=Decimal(7), product_id=p1))
        s.execute(sa.update(Company).where(Company.id == bank_id).values(industry="finance"))
        s.execute(sa.update(Deal).where(Deal.id == ids[0]).values(created_at=start - dt.timedelta(days=1)))
    assert_tables_match(db)
    assert stored(db, counters_segments.products)[(p1, "lost")] == (1, 700, 1, [])
    assert stored(db, counters_segments.industries)[("finance", "won")][3] == [cycle + 86_400]

    # Reopened (out of the tables), lost again; an UPDATE by primary keys.
    with db.session_scope() as s:
        e = deal(s, ids[1])
        deal_service.reopen_deal(s, people.dave, e.id, DealReopen(version=e.version, stage_id=stages[3].id),
                                 at=start + dt.timedelta(days=31))
    assert_tables_match(db)
    assert (p1, "lost") not in stored(db, counters_segments.products)
    with db.session_scope() as s:
        e = deal(s, ids[1])
        deal_service.lose_deal(s, people.dave, e.id, DealClose(version=e.version, reason="competitor"),
                               at=start + dt.timedelta(days=40))
        s.execute(sa.update(Deal), [{"id": ids[2], "version": deal(s, ids[2]).version, "product_id": p2}])
    assert_tables_match(db)
    assert stored(db, counters_segments.products)[(p2, "disqualified")] == (1, 700, 1, [])

    # Deleting closed deals takes them out.
    with db.session_scope() as s:
        for deal_id in ids[:2]:
            d = deal(s, deal_id)
            deal_service.delete_deal(s, people.alice, d.id, d.version)
    assert_tables_match(db)
    assert list(stored(db, counters_segments.products)) == [(p2, "disqualified")]


def test_deals_created_closed_and_companies_changed_in_the_same_flush(db: Database, people: People) -> None:
    """Raw rows written through the ORM (as an import does): a deal created won with its
    new company, then the company's industry and the deal's product changed together."""
    stages = None
    with db.session_scope() as s:
        stages = pipeline_queries.list_stages(s, default_pipeline(s).id)
        company = Company(name="New", industry="retail", owner_id=people.carol.id, team_id=people.carol.team_id)
        s.add(company)
        s.flush()
        created = dt.datetime(2025, 3, 1, 8, tzinfo=dt.UTC)
        won = Deal(title="w", pipeline_id=stages[0].pipeline_id, stage_id=stages[0].id, status="won",
                   owner_id=people.carol.id, team_id=people.carol.team_id, company_id=company.id, amount=Decimal(5),
                   created_at=created, updated_at=created, stage_entered_at=created,
                   closed_at=created + dt.timedelta(hours=30), reached_mask=1, checklist_done={}, activity_count=0)
        s.add(won)
        s.flush()
        company.industry = "energy"
        won.product_id = None
        s.flush()
        company_id, deal_id = company.id, won.id
    assert_tables_match(db)
    assert stored(db, counters_segments.industries) == {("energy", "won"): (1, 500, 1, [30 * 3600])}
    with db.session_scope() as s:  # a company left without deals, then deleted: nothing to move
        d = deal(s, deal_id)
        d.company_id = None
        s.flush()
        gone = s.get(Company, company_id)
        assert gone is not None
        s.delete(gone)
    assert_tables_match(db)
    assert stored(db, counters_segments.industries) == {("", "won"): (1, 500, 1, [30 * 3600])}


def test_open_deals_cost_no_statement(db: Database, people: People) -> None:
    """A stage change of an open deal, an activity logged on it and a company's name
    changed read nor write either table."""
    relax(db, people)
    with db.session_scope() as s:
        stages = pipeline_queries.list_stages(s, default_pipeline(s).id)
        company = company_service.create_company(s, people.alice, CompanyCreate(name="Shop", industry="retail",
                                                                                 owner_id=people.carol.id))
        deal_id = deal_service.create_deal(s, people.carol, DealCreate(title="a", amount=10,
                                                                       company_id=company.id)).id
        company_id = company.id
    with recorded_statements(db) as seen, db.session_scope() as s:
        d = deal(s, deal_id)
        deal_service.move_deal(s, people.carol, d.id, DealMove(stage_id=stages[1].id, version=d.version))
        activity_service.log_activity(s, people.carol, ActivityCreate(kind=ActivityKind.call, deal_id=deal_id))
        c = s.get(Company, company_id)
        assert c is not None
        company_service.update_company(s, people.alice, company_id, CompanyUpdate(version=c.version, name="S2"))
    assert seen and not [q for q in seen if "analytics_segment" in q]


def test_rebuild_restores_damaged_tables(db: Database, people: People) -> None:
    with db.session_scope() as s:
        d = deal_service.create_deal(s, people.carol, DealCreate(title="x", amount=10))
        deal_service.win_deal(s, people.carol, d.id, DealClose(version=d.version))
    with db.engine.begin() as conn:
        conn.execute(sa.update(counters_segments.products).values(n=counters_segments.products.c.n + 1))
        conn.execute(sa.update(counters_segments.industries).values(cycles=b""))
    with db.engine.connect() as conn:
        assert counters_segments.check(conn) == {"analytics_segment_products": 1, "analytics_segment_industries": 1}
        assert any(r.mismatches for r in rebuild.verify(conn))
    assert not rebuild.has_mismatches(rebuild.rebuild(db))
    assert_tables_match(db)


def test_cycles_pack_as_int32() -> None:
    values = [0, 1, -5, 2**31 - 1]
    assert counters_segments.decode(np.array(values, dtype=counters_segments.CYCLE).tobytes()).tolist() == values
    assert len(counters_segments.decode(b"")) == 0


@pytest.mark.parametrize("sizes", [(3, 1, 2), (1, 1, 1), (7, 300, 5)])
def test_grouping_equals_a_sort_of_the_rows(sizes: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(sum(sizes))
    columns = [rng.integers(0, size, 1000) * 1_000_003 for size in sizes]
    keys, inverse = counters_segments._group(columns)
    rows = list(zip(*(c.tolist() for c in columns), strict=True))
    distinct = sorted(set(rows))
    assert list(zip(*(k.tolist() for k in keys), strict=True)) == distinct
    assert [distinct[i] for i in inverse.tolist()] == rows
