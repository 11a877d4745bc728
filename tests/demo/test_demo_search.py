"""The demo loader writes the global search index itself, from the generator's columns:
row for row what ``search_service.rebuild_index`` computes from the written records, on
SQLite (one process, and two with the worker's side file copied in) and on PostgreSQL,
next to the terms the services already keep for records entered by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from loudou import migrate
from loudou.auth.models import Role, User
from loudou.db import Database, create_db_engine
from loudou.demo import service, writer
from loudou.demo.generator import DemoPlan
from loudou.pipeline import service as pipeline_service
from loudou.search import service as search_service
from tests import conftest
from tests.demo.test_generator import HASH, NOW
from tests.search.test_search import found, make_company, make_contact

INDEXES = {"ix_search_terms_kind_term", "ix_search_terms_owner_kind_term"}


def index_rows(db: Database) -> list[tuple[Any, ...]]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(
            "SELECT kind, entity_id, term, owner_id, team_id FROM search_terms ORDER BY kind, entity_id, term")]


def index_names(db: Database) -> set[str]:
    return {str(i["name"]) for i in sa.inspect(db.engine).get_indexes("search_terms")}


def assert_equals_a_rebuild(db: Database) -> list[tuple[Any, ...]]:
    written = index_rows(db)
    kinds = {row[0] for row in written}
    assert kinds == {"company", "contact", "deal"}
    assert index_names(db) >= INDEXES
    assert search_service.rebuild_index(db) == len(written)
    assert index_rows(db) == written
    return written


def by_hand(db: Database, carol: User, dave: User) -> None:
    """Records entered through the services before the demo: their terms are already there;
    and stale terms of records deleted behind the services' back, under ids the demo
    takes next (a rebuild drops them)."""
    company = make_company(db, carol, name="上海星辰科技有限公司", city="上海", phone="021 6234 5678")
    make_contact(db, carol, name="张三", company_id=company, phone="13812345678")
    make_contact(db, dave, name="单雄信", phone="+1 617 555 0123", email="xx@example.com")
    with db.engine.begin() as conn:
        for kind, table in (("company", "companies"), ("deal", "deals")):
            next_id = conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").scalar_one()
            conn.exec_driver_sql("INSERT INTO search_terms (kind, entity_id, term, owner_id, team_id) "
                                 f"VALUES ('{kind}', {next_id}, 'stale', NULL, NULL)")


@pytest.mark.parametrize("locale", ["zh", "en"])
def test_the_demo_writes_what_a_rebuild_computes(db: Database, people: conftest.People, locale: str) -> None:
    by_hand(db, people.carol, people.dave)
    plan = service.run(db, 400, 7, locale, now=NOW, password_hash=HASH)
    rows = assert_equals_a_rebuild(db)
    assert sum(1 for r in rows if r[0] == "deal") >= plan.n
    # The hand-made records are still found, and the demo's too.
    assert found(db, people.carol, "xingchen")["company"] == ["上海星辰科技有限公司"]
    with db.engine.connect() as conn:
        name = conn.exec_driver_sql("SELECT name FROM companies ORDER BY id DESC LIMIT 1").scalar_one()
    assert name in found(db, people.alice, name)["company"]


@pytest.mark.parametrize("records", [False, True], ids=["empty", "with-records"])
def test_serial_and_parallel_sqlite_loads_write_the_rebuilt_index(tmp_path: Path, records: bool) -> None:
    """The worker's side file is copied in with the transfer optimisation into an empty
    index, and row by row into one that already has terms: both give the rebuild's rows."""
    written = []
    for parallel in (False, True):
        path = tmp_path / f"p{int(parallel)}.db"
        database = Database(engine=create_db_engine(f"sqlite:///{path}"))
        migrate.upgrade(database.engine)
        with database.session_scope() as s:
            pipeline_service.ensure_reference_data(s)
        if records:
            with database.session_scope() as s:
                carol = conftest.make_user(s, "carol@example.com", "Carol", Role.rep, "East")
                dave = conftest.make_user(s, "dave@example.com", "Dave", Role.rep, "West")
            by_hand(database, carol, dave)
        # Eight activity blocks of 128 deals, shared between the two processes.
        plan = DemoPlan(1_000, 3, "zh", service.load_reference(database), now=NOW, password_hash=HASH,
                        activity_block=128)
        writer.write(database, plan, parallel=parallel)
        with database.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").all() == [("ok",)]
        written.append(assert_equals_a_rebuild(database))
        database.dispose()
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(path.name + ".demo")) == []
    assert written[0] == written[1]
