"""The effective time ``at`` of the deal services (imports of history): every change lands at
that time, the derived state stays exact, and ``at`` is refused when naive, in the future
or before the deal's last transition."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from loudou.analytics import rebuild
from loudou.audit.models import AuditLog
from loudou.db import Database, utcnow
from loudou.deal import queries as deal_queries
from loudou.deal import service as deal_service
from loudou.deal.models import DealStatus, TransitionKind
from loudou.deal.schemas import DealClose, DealCreate, DealMove, DealReopen
from loudou.errors import ValidationFailed
from loudou.pipeline import queries as pipeline_queries
from loudou.pipeline import service as pipeline_service
from loudou.pipeline.schemas import PipelineUpdate
from tests.conftest import People, default_pipeline, reload_deal

T0 = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)


def at(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


def relax(db: Database, people: People) -> list[int]:
    with db.session_scope() as s:
        pipeline = default_pipeline(s)
        pipeline_service.update_pipeline(s, people.alice, pipeline.id, PipelineUpdate(version=1, is_relaxed=True))
        return [st.id for st in pipeline_queries.list_stages(s, pipeline.id)]


def test_a_history_written_at_its_own_times(db: Database, people: People) -> None:
    stages = relax(db, people)
    with db.session_scope() as s:
        d = deal_service.create_deal(s, people.carol, DealCreate(title="old", amount=Decimal(900)), at=at(0))
        d = deal_service.move_deal(s, people.carol, d.id, DealMove(stage_id=stages[2], version=d.version),
                                   at=at(2))  # skips stage 1
        d = deal_service.lose_deal(s, people.carol, d.id, DealClose(version=d.version, reason="Went silent"),
                                   at=at(5))
        d = deal_service.reopen_deal(s, people.carol, d.id, DealReopen(version=d.version), at=at(6.5))
        d = deal_service.move_deal(s, people.carol, d.id, DealMove(stage_id=stages[3], version=d.version),
                                   at=at(6.5))  # same instant as the reopening: allowed
        d = deal_service.win_deal(s, people.carol, d.id, DealClose(version=d.version, amount=Decimal(1000)),
                                  at=at(10))
        deal_id = d.id
    deal = reload_deal(db, deal_id)
    assert (deal.created_at, deal.closed_at, deal.stage_entered_at, deal.updated_at) == (at(0), at(10), at(10), at(10))
    assert deal.status == DealStatus.won and deal.stage_id == stages[3]
    assert deal.reached_mask == 0b1101  # stages 0, 2 and 3; never 1
    with db.session_scope(write=False) as s:
        history = deal_queries.list_transitions(s, deal_id)
        backdated = s.scalar(sa.select(sa.func.count()).select_from(AuditLog).where(
            AuditLog.entity == "deal", AuditLog.entity_id == deal_id, AuditLog.field == "effective_at"))
    assert [(t.kind, t.at) for t in history] == [
        (TransitionKind.create, at(0)), (TransitionKind.move, at(2)), (TransitionKind.lose, at(5)),
        (TransitionKind.reopen, at(6.5)), (TransitionKind.move, at(6.5)), (TransitionKind.win, at(10))]
    assert [t.duration_s for t in history] == [2 * 86400, 3 * 86400, int(1.5 * 86400), 0, int(3.5 * 86400), None]
    assert backdated == 6  # each backdated change says so in the audit log
    with db.engine.connect() as conn:
        assert not rebuild.has_mismatches(rebuild.verify(conn))


def test_disqualify_at_a_time_and_other_time_zones(db: Database, people: People) -> None:
    shanghai = dt.timezone(dt.timedelta(hours=8))
    with db.session_scope() as s:
        d = deal_service.create_deal(s, people.dave, DealCreate(title="lead"),
                                     at=dt.datetime(2024, 5, 1, 8, 0, tzinfo=shanghai))
        d = deal_service.disqualify_deal(s, people.dave, d.id, DealClose(version=d.version, reason="Spam"),
                                         at=dt.datetime(2024, 5, 2, 0, 0, tzinfo=dt.UTC))
        deal_id = d.id
    deal = reload_deal(db, deal_id)
    assert deal.created_at == dt.datetime(2024, 5, 1, 0, 0, tzinfo=dt.UTC)
    assert deal.closed_at == dt.datetime(2024, 5, 2, 0, 0, tzinfo=dt.UTC) and deal.status == DealStatus.disqualified
    with db.engine.connect() as conn:
        assert not rebuild.has_mismatches(rebuild.verify(conn))


def test_without_at_the_change_happens_now(db: Database, people: People) -> None:
    before = utcnow()
    with db.session_scope() as s:
        d = deal_service.create_deal(s, people.carol, DealCreate(title="now"))
        deal_id = d.id
    deal = reload_deal(db, deal_id)
    assert before <= deal.created_at <= utcnow() and deal.stage_entered_at == deal.created_at
    with db.session_scope(write=False) as s:
        assert not s.scalar(sa.select(sa.func.count()).select_from(AuditLog).where(
            AuditLog.entity_id == deal_id, AuditLog.field == "effective_at"))


@pytest.mark.parametrize("bad,words", [
    (dt.datetime(2024, 3, 1, 9, 0), "timezone-aware"),
    (utcnow() + dt.timedelta(hours=1), "in the future"),
])
def test_create_refuses_a_naive_or_future_time(db: Database, people: People, bad: dt.datetime, words: str) -> None:
    with db.session_scope() as s, pytest.raises(ValidationFailed) as err:
        deal_service.create_deal(s, people.carol, DealCreate(title="x"), at=bad)
    assert err.value.field == "at" and words in err.value.detail


def test_changes_refuse_a_time_before_the_last_transition(db: Database, people: People) -> None:
    stages = relax(db, people)
    with db.session_scope() as s:
        d = deal_service.create_deal(s, people.carol, DealCreate(title="x"), at=at(3))
        deal_id, version = d.id, d.version
    calls = [
        lambda s: deal_service.move_deal(s, people.carol, deal_id, DealMove(stage_id=stages[1], version=version),
                                         at=at(2)),
        lambda s: deal_service.win_deal(s, people.carol, deal_id, DealClose(version=version), at=at(2)),
        lambda s: deal_service.lose_deal(s, people.carol, deal_id, DealClose(version=version, reason="x"),
                                         at=at(2)),
        lambda s: deal_service.disqualify_deal(s, people.carol, deal_id, DealClose(version=version, reason="x"),
                                               at=at(2)),
        lambda s: deal_service.move_deal(s, people.carol, deal_id, DealMove(stage_id=stages[1], version=version),
                                         at=utcnow() + dt.timedelta(minutes=5)),
        lambda s: deal_service.win_deal(s, people.carol, deal_id, DealClose(version=version),
                                        at=dt.datetime(2024, 3, 9)),
    ]
    for call in calls:
        with db.session_scope() as s, pytest.raises(ValidationFailed) as err:
            call(s)
        assert err.value.field == "at"
    with db.session_scope() as s:
        d = deal_service.lose_deal(s, people.carol, deal_id, DealClose(version=version, reason="x"), at=at(4))
        version = d.version
    with db.session_scope() as s, pytest.raises(ValidationFailed) as err:
        deal_service.reopen_deal(s, people.carol, deal_id, DealReopen(version=version), at=at(3.5))
    assert err.value.field == "at" and "before the deal's last change" in err.value.detail
    deal = reload_deal(db, deal_id)
    assert deal.status == DealStatus.lost and deal.closed_at == at(4) and deal.version == version
