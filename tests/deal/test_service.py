from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from loudou.audit.models import AuditLog
from loudou.db import Database
from loudou.deal import queries as deal_queries
from loudou.deal import service as deal_service
from loudou.deal.models import Deal, DealStatus, StageTransition, TransitionKind
from loudou.deal.schemas import DealClose, DealCreate, DealFields, DealMove, DealReopen, DealUpdate
from loudou.errors import Conflict, MissingForStage, NotFound, ValidationFailed
from loudou.pipeline import queries as pipeline_queries
from loudou.pipeline import service as pipeline_service
from loudou.pipeline.models import LostReason, Stage
from loudou.pipeline.schemas import PipelineUpdate
from tests.conftest import People, default_pipeline, reload_deal


def stages(db: Database) -> list[Stage]:
    with db.session_scope(write=False) as s:
        return pipeline_queries.list_stages(s, default_pipeline(s).id)


def new_deal(db: Database, who, **fields) -> Deal:  # type: ignore[no-untyped-def]
    with db.session_scope() as s:
        return deal_service.create_deal(s, who, DealCreate(title=fields.pop("title", "Deal"), **fields))


def move(db: Database, who, deal: Deal, stage: Stage, **kw) -> Deal:  # type: ignore[no-untyped-def]
    with db.session_scope() as s:
        return deal_service.move_deal(s, who, deal.id, DealMove(stage_id=stage.id, version=deal.version, **kw))


def reason(db: Database, kind: str = "lost") -> LostReason:
    with db.session_scope(write=False) as s:
        return s.scalars(sa.select(LostReason).where(LostReason.kind == kind)).first()  # type: ignore[return-value]


def history(db: Database, deal_id: int) -> list[StageTransition]:
    with db.session_scope(write=False) as s:
        return deal_queries.list_transitions(s, deal_id)


def relax(db: Database, people: People) -> None:
    with db.session_scope() as s:
        pipeline_service.update_pipeline(s, people.alice, default_pipeline(s).id,
                                         PipelineUpdate(version=1, is_relaxed=True))


class TestDefaultPipeline:
    def test_has_the_five_classic_stages_in_order(self, db: Database) -> None:
        names = [(s.name, s.name_en) for s in stages(db)]
        assert names == [
            ("潜在客户", "Prospect"), ("初步接触", "First contact"), ("需求分析", "Needs analysis"),
            ("方案建议", "Proposal"), ("谈判与签约", "Negotiation & signing"),
        ]
        probs = [s.probability for s in stages(db)]
        assert probs == sorted(probs) and all(s.expected_days > 0 and s.key_points for s in stages(db))

    def test_reference_data_is_idempotent(self, db: Database) -> None:
        with db.session_scope() as s:
            pipeline_service.ensure_reference_data(s)
            assert len(pipeline_queries.list_pipelines(s)) == 1


class TestCreateDeal:
    def test_enters_first_stage_with_a_transition_from_nothing(self, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol, amount=Decimal("1200.50"))
        first = stages(db)[0]
        assert deal.stage_id == first.id and deal.status == DealStatus.open and deal.version == 1
        assert deal.owner_id == people.carol.id and deal.team_id == people.carol.team_id
        (t,) = history(db, deal.id)
        assert (t.kind, t.from_stage_id, t.to_stage_id, t.from_status) == (TransitionKind.create, None, first.id, None)
        assert t.by_id == people.carol.id
        assert reload_deal(db, deal.id).reached_mask == 1 << first.bit

    def test_rep_cannot_assign_to_another_rep(self, db: Database, people: People) -> None:
        with pytest.raises(ValidationFailed) as err:
            new_deal(db, people.carol, owner_id=people.dave.id)
        assert err.value.field == "owner_id"

    def test_manager_assigns_within_team(self, db: Database, people: People) -> None:
        deal = new_deal(db, people.bob, owner_id=people.carol.id)
        assert deal.owner_id == people.carol.id and deal.team_id == people.bob.team_id

    def test_unknown_company_is_named(self, db: Database, people: People) -> None:
        with pytest.raises(ValidationFailed) as err:
            new_deal(db, people.carol, company_id=999)
        assert err.value.field == "company_id"

    def test_create_is_audited(self, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol, title="Audited", amount=Decimal(10))
        with db.session_scope(write=False) as s:
            rows = s.scalars(sa.select(AuditLog).where(AuditLog.entity == "deal", AuditLog.entity_id == deal.id))
            fields = {r.field: r.after for r in rows}
        assert fields["title"] == "Audited"
        assert Decimal(fields["amount"]) == Decimal(10)


class TestMoveDeal:
    def test_move_forward_skip_and_back_are_recorded(self, db: Database, people: People) -> None:
        st = stages(db)
        relax(db, people)
        deal = new_deal(db, people.carol)
        deal = move(db, people.carol, deal, st[1])
        deal = move(db, people.carol, deal, st[3])
        deal = move(db, people.carol, deal, st[0])
        h = history(db, deal.id)
        assert [(t.from_stage_id, t.to_stage_id) for t in h] == [
            (None, st[0].id), (st[0].id, st[1].id), (st[1].id, st[3].id), (st[3].id, st[0].id)]
        assert all(t.duration_s is not None for t in h[:-1]) and h[-1].duration_s is None
        assert deal.version == 4

    def test_skip_sets_only_reached_stages_in_mask(self, db: Database, people: People) -> None:
        st = stages(db)
        relax(db, people)
        deal = new_deal(db, people.carol)
        deal = move(db, people.carol, deal, st[3])
        assert reload_deal(db, deal.id).reached_mask == (1 << st[0].bit) | (1 << st[3].bit)

    def test_required_fields_are_enforced_and_named(self, db: Database, people: People) -> None:
        st = stages(db)
        deal = new_deal(db, people.carol)
        with pytest.raises(MissingForStage) as err:
            move(db, people.carol, deal, st[2])
        assert err.value.extra["missing_fields"] == ["contact_id"]
        assert "contact_id" in err.value.detail

    def test_required_fields_can_be_given_with_the_move(self, db: Database, people: People) -> None:
        st = stages(db)
        deal = new_deal(db, people.carol)
        moved = move(db, people.carol, deal, st[4],
                     fields=DealFields(amount=Decimal(100), expected_close_date="2027-01-31"),  # type: ignore[arg-type]
                     checklist=list(st[4].checklist))
        assert moved.stage_id == st[4].id and moved.amount == Decimal(100)

    def test_checklist_is_enforced(self, db: Database, people: People) -> None:
        st = stages(db)
        deal = new_deal(db, people.carol, amount=Decimal(1), expected_close_date="2027-01-01")  # type: ignore[arg-type]
        with pytest.raises(MissingForStage) as err:
            move(db, people.carol, deal, st[4])
        assert err.value.extra["missing_checklist"] == st[4].checklist

    def test_relaxed_pipeline_skips_enforcement(self, db: Database, people: People) -> None:
        st = stages(db)
        relax(db, people)
        deal = new_deal(db, people.carol)
        assert move(db, people.carol, deal, st[4]).stage_id == st[4].id

    def test_stale_version_is_a_conflict_and_changes_nothing(self, db: Database, people: People) -> None:
        st = stages(db)
        deal = new_deal(db, people.carol)
        move(db, people.carol, deal, st[1])
        with pytest.raises(Conflict) as err:
            move(db, people.carol, deal, st[0])  # still carries version 1
        assert err.value.extra["current_version"] == 2
        assert len(history(db, deal.id)) == 2

    def test_stage_of_another_pipeline_is_refused(self, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol)
        with pytest.raises(ValidationFailed) as err, db.session_scope() as s:
            deal_service.move_deal(s, people.carol, deal.id, DealMove(stage_id=9999, version=1))
        assert err.value.field == "stage_id"

    def test_other_teams_deal_does_not_exist_for_a_rep(self, db: Database, people: People) -> None:
        deal = new_deal(db, people.dave)
        with pytest.raises(NotFound):
            move(db, people.carol, deal, stages(db)[1])


class TestCloseAndReopen:
    def test_win_records_status_and_close_time(self, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol)
        with db.session_scope() as s:
            won = deal_service.win_deal(s, people.carol, deal.id, DealClose(version=1, amount=Decimal(9)))
        assert won.status == DealStatus.won and won.closed_at is not None and won.amount == Decimal(9)
        assert history(db, deal.id)[-1].to_status == DealStatus.won

    def test_lose_requires_a_reason(self, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol)
        with pytest.raises(ValidationFailed) as err, db.session_scope() as s:
            deal_service.lose_deal(s, people.carol, deal.id, DealClose(version=1))
        assert err.value.field == "lost_reason_id"

    def test_lose_with_reason_by_id_or_name(self, db: Database, people: People) -> None:
        r = reason(db)
        a, b = new_deal(db, people.carol), new_deal(db, people.carol)
        with db.session_scope() as s:
            lost_a = deal_service.lose_deal(s, people.carol, a.id, DealClose(version=1, lost_reason_id=r.id))
            lost_b = deal_service.lose_deal(s, people.carol, b.id, DealClose(version=1, reason=r.name_en))
        assert lost_a.lost_reason_id == r.id == lost_b.lost_reason_id

    def test_disqualify_needs_a_disqualify_reason(self, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol)
        with pytest.raises(ValidationFailed), db.session_scope() as s:
            deal_service.disqualify_deal(s, people.carol, deal.id, DealClose(version=1, lost_reason_id=reason(db).id))
        with db.session_scope() as s:
            d = deal_service.disqualify_deal(
                s, people.carol, deal.id, DealClose(version=1, lost_reason_id=reason(db, "disqualify").id))
        assert d.status == DealStatus.disqualified

    def test_closed_deal_cannot_move_until_reopened(self, db: Database, people: People) -> None:
        st = stages(db)
        deal = new_deal(db, people.carol)
        with db.session_scope() as s:
            deal = deal_service.win_deal(s, people.carol, deal.id, DealClose(version=1))
        with pytest.raises(Conflict):
            move(db, people.carol, deal, st[1])
        with db.session_scope() as s:
            deal = deal_service.reopen_deal(s, people.carol, deal.id, DealReopen(version=deal.version))
        assert deal.status == DealStatus.open and deal.closed_at is None and deal.stage_id == st[0].id
        kinds = [t.kind for t in history(db, deal.id)]
        assert kinds == [TransitionKind.create, TransitionKind.win, TransitionKind.reopen]
        with pytest.raises(Conflict), db.session_scope() as s:
            deal_service.win_deal(s, people.carol, deal.id, DealClose(version=1))


class TestUpdateDeal:
    def test_update_audits_each_field(self, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol, title="Old")
        with db.session_scope() as s:
            deal_service.update_deal(s, people.carol, deal.id, DealUpdate(version=1, title="New",
                                                                          amount=Decimal(7)))
        with db.session_scope(write=False) as s:
            rows = list(s.scalars(sa.select(AuditLog).where(AuditLog.entity_id == deal.id,
                                                            AuditLog.action == "update")))
        assert {(r.field, r.before, r.after) for r in rows} >= {("title", "Old", "New")}
        assert reload_deal(db, deal.id).version == 2

    def test_title_cannot_be_cleared(self, db: Database, people: People) -> None:
        deal = new_deal(db, people.carol)
        with pytest.raises(ValidationFailed) as err, db.session_scope() as s:
            deal_service.update_deal(s, people.carol, deal.id, DealUpdate(version=1, title=None))
        assert err.value.field == "title"
