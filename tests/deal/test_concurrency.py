"""20 writers move the same deal from the same version: exactly one wins."""

from __future__ import annotations

import threading

from loudou.db import Database
from loudou.deal import service as deal_service
from loudou.deal.schemas import DealCreate, DealMove
from loudou.errors import Conflict
from tests.conftest import People
from tests.deal.test_service import history, stages

THREADS = 20


def test_concurrent_moves_from_one_version(db: Database, people: People) -> None:
    st = stages(db)
    with db.session_scope() as s:
        deal = deal_service.create_deal(s, people.carol, DealCreate(title="Contested"))
    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        try:
            with db.session_scope() as s:
                deal_service.move_deal(s, people.carol, deal.id, DealMove(stage_id=st[1].id, version=1))
            result = "ok"
        except Conflict:
            result = "conflict"
        except Exception as exc:  # anything else (e.g. "database is locked") fails the test
            result = f"error: {exc!r}"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["conflict"] * (THREADS - 1) + ["ok"], outcomes
    h = history(db, deal.id)
    assert len(h) == 2 and h[-1].to_stage_id == st[1].id
    with db.session_scope(write=False) as s:
        from loudou.deal.models import Deal

        current = s.get(Deal, deal.id)
        assert current is not None and current.version == 2 and current.stage_id == st[1].id
