"""``loudou demo``: the generated company is internally consistent, deterministic and
its true parameters can be recovered; the command line fills a database and prints logins.

The consistency checks are SQL over the whole database (both dialects), the way an
analytics query or a migration would see the data."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import math
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import phonenumbers
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect
from typer.testing import CliRunner

from loudou import migrate
from loudou.auth.models import User
from loudou.config import get_settings
from loudou.db import Database, create_db_engine, set_database
from loudou.deal import service as deal_service
from loudou.deal.models import Deal, DealStatus, StageTransition
from loudou.deal.schemas import DealCreate, DealMove
from loudou.demo import generator, service, writer
from loudou.demo.generator import NO_TIME, US, DemoPlan, Reference
from loudou.pipeline import service as pipeline_service
from loudou.pipeline.models import Stage
from tests import conftest

NOW = dt.datetime(2026, 1, 15, 9, 0, tzinfo=dt.UTC)
HASH = "$argon2id$v=19$m=65536,t=3,p=4$demo$demo"  # the real hash is slow and salted
N = 900


def fill(db: Database, deals: int = N, seed: int = 5, locale: str = "zh", **kw: Any) -> DemoPlan:
    return service.run(db, deals, seed, locale, now=NOW, password_hash=HASH, **kw)


def rows(db: Database, sql: str, **params: Any) -> list[Any]:
    with db.engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params))


def scalar(db: Database, sql: str, **params: Any) -> Any:
    with db.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def last_transition(alias: str = "d") -> str:
    return f"(SELECT max(t.id) FROM stage_transitions t WHERE t.deal_id = {alias}.id)"


def first_transition(alias: str = "d") -> str:
    return f"(SELECT min(t.id) FROM stage_transitions t WHERE t.deal_id = {alias}.id)"


@pytest.fixture(scope="class", params=["sqlite", "postgresql"])
def filled(request: pytest.FixtureRequest) -> Iterator[tuple[Database, DemoPlan]]:
    """One demo company per dialect, shared by the read-only checks of a class."""
    database = conftest._database(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))
    conftest.empty_tables(database)
    with database.session_scope() as s:
        pipeline_service.ensure_reference_data(s)
    yield database, fill(database)
    conftest.empty_tables(database)


class TestConsistency:
    """Read-only checks of one generated company."""

    def test_counts_people_and_reference(self, filled: tuple[Database, DemoPlan]) -> None:
        db, plan = filled
        assert scalar(db, "SELECT count(*) FROM deals") == N
        roles = dict(rows(db, "SELECT role, count(*) FROM users GROUP BY role"))
        assert roles == {"admin": 1, "manager": 4, "rep": 20}
        assert scalar(db, "SELECT count(*) FROM teams") == 4
        # One manager per team, five reps per team, the admin in none.
        per_team = rows(db, "SELECT t.id, sum(CASE WHEN u.role = 'manager' THEN 1 ELSE 0 END), "
                            "sum(CASE WHEN u.role = 'rep' THEN 1 ELSE 0 END) FROM teams t "
                            "JOIN users u ON u.team_id = t.id GROUP BY t.id")
        assert [(m, r) for _t, m, r in per_team] == [(1, 5)] * 4
        assert scalar(db, "SELECT team_id FROM users WHERE role = 'admin'") is None
        # Every channel has spend for every month of the window (25 calendar months).
        spend = rows(db, "SELECT channel_id, count(*), min(month), max(month) FROM channel_spend GROUP BY channel_id")
        assert len(spend) == 8 == scalar(db, "SELECT count(*) FROM channels")
        months = {r[1] for r in spend}
        assert months == {25}
        assert scalar(db, "SELECT count(*) FROM channel_spend WHERE amount <= 0") == 0
        counts = plan.truth()["counts"]
        for table, key in (("deals", "deals"), ("activities", "activities"), ("companies", "companies"),
                           ("contacts", "contacts"), ("tasks", "tasks"), ("stage_transitions", "transitions"),
                           ("users", "users"), ("teams", "teams"), ("channel_spend", "channel_spend")):
            assert scalar(db, f"SELECT count(*) FROM {table}") == counts[key], table
        # About ten activities and three transitions per deal.
        assert 8 < counts["activities"] / N < 12
        assert 2.5 < counts["transitions"] / N < 4

    def test_current_state_is_the_last_transition(self, filled: tuple[Database, DemoPlan]) -> None:
        db, _plan = filled
        bad = scalar(db, f"""SELECT count(*) FROM deals d JOIN stage_transitions t ON t.id = {last_transition()}
                             WHERE t.to_stage_id <> d.stage_id OR t.to_status <> d.status
                             OR t.at <> d.stage_entered_at OR d.updated_at <> t.at""")
        assert bad == 0
        assert scalar(db, "SELECT count(*) FROM deals d WHERE NOT EXISTS "
                          "(SELECT 1 FROM stage_transitions t WHERE t.deal_id = d.id)") == 0

    def test_creation_is_the_first_transition(self, filled: tuple[Database, DemoPlan]) -> None:
        db, _plan = filled
        bad = scalar(db, f"""SELECT count(*) FROM deals d JOIN stage_transitions t ON t.id = {first_transition()}
                             WHERE t.kind <> 'create' OR t.from_stage_id IS NOT NULL OR t.from_status IS NOT NULL
                             OR t.at <> d.created_at OR t.to_status <> 'open'""")
        assert bad == 0
        assert scalar(db, "SELECT count(*) FROM stage_transitions WHERE kind = 'create'") == N
        first_stage = scalar(db, "SELECT id FROM stages WHERE pipeline_id = "
                                 "(SELECT min(id) FROM pipelines) ORDER BY position LIMIT 1")
        assert scalar(db, "SELECT count(*) FROM stage_transitions WHERE kind = 'create' "
                          "AND to_stage_id <> :s", s=first_stage) == 0

    def test_closed_at_iff_closed_and_equal_to_the_closing_transition(
        self, filled: tuple[Database, DemoPlan]
    ) -> None:
        db, _plan = filled
        assert scalar(db, "SELECT count(*) FROM deals WHERE (status = 'open') = (closed_at IS NOT NULL)") == 0
        bad = scalar(db, f"""SELECT count(*) FROM deals d JOIN stage_transitions t ON t.id = {last_transition()}
                             WHERE d.status <> 'open' AND (d.closed_at <> t.at
                             OR t.kind NOT IN ('win', 'lose', 'disqualify'))""")
        assert bad == 0
        by_status = dict(rows(db, "SELECT status, count(*) FROM deals GROUP BY status"))
        assert set(by_status) == {"open", "won", "lost", "disqualified"}

    def test_history_is_chronological_with_durations(self, filled: tuple[Database, DemoPlan]) -> None:
        db, plan = filled
        history: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        stmt = sa.select(StageTransition.deal_id, StageTransition.at, StageTransition.duration_s,
                         StageTransition.kind, StageTransition.from_status, StageTransition.to_status,
                         StageTransition.from_stage_id, StageTransition.to_stage_id, StageTransition.by_id,
                         ).order_by(StageTransition.deal_id, StageTransition.id)
        with db.session_scope(write=False) as s:
            owners = dict(s.execute(sa.select(Deal.id, Deal.owner_id)).all())
            for r in s.execute(stmt):
                history[r.deal_id].append(tuple(r))
        assert len(history) == N
        reopened = 0
        for deal_id, steps in history.items():
            for (_d, at, duration, *_rest), (_d2, nxt, *_rest2) in itertools.pairwise(steps):
                assert nxt > at, deal_id
                # What deal.service stores: whole seconds, truncated.
                assert duration == int((nxt - at).total_seconds()), deal_id
            assert steps[-1][2] is None
            for prev, (_d, _at, _dur, kind, frm, _to, from_stage, _to_stage, by) in itertools.pairwise(steps):
                assert frm == prev[5] and from_stage == prev[7], deal_id  # each starts where the last ended
                assert by == owners[deal_id]
                reopened += kind == "reopen"
        assert reopened == plan.truth()["counts"]["reopened"] > 0

    def test_reached_mask_is_recomputed_from_the_history(self, filled: tuple[Database, DemoPlan]) -> None:
        db, _plan = filled
        bad = scalar(db, """SELECT count(*) FROM deals d LEFT JOIN (
                                SELECT deal_id, sum(b) AS mask FROM (
                                    SELECT DISTINCT t.deal_id, (1 << s.bit) AS b FROM stage_transitions t
                                    JOIN stages s ON s.id = t.to_stage_id WHERE t.to_status = 'open') x
                                GROUP BY deal_id) m ON m.deal_id = d.id
                            WHERE coalesce(m.mask, 0) <> d.reached_mask""")
        assert bad == 0
        # Some deals skipped a stage: a later bit set without the one before it.
        skipped = scalar(db, "SELECT count(*) FROM deals WHERE (reached_mask & 4) <> 0 AND (reached_mask & 2) = 0")
        assert skipped > 0

    def test_activity_summary_and_bounds(self, filled: tuple[Database, DemoPlan]) -> None:
        db, _plan = filled
        bad = scalar(db, """SELECT count(*) FROM deals d LEFT JOIN (
                                SELECT deal_id, count(*) AS n, max(occurred_at) AS last FROM activities
                                GROUP BY deal_id) a ON a.deal_id = d.id
                            WHERE coalesce(a.n, 0) <> d.activity_count
                               OR (a.last IS NULL) <> (d.last_activity_at IS NULL) OR a.last <> d.last_activity_at""")
        assert bad == 0
        assert scalar(db, "SELECT count(*) FROM activities a JOIN deals d ON d.id = a.deal_id "
                          "WHERE a.occurred_at < d.created_at OR a.occurred_at > coalesce(d.closed_at, :now) "
                          "OR a.created_at <> a.occurred_at OR a.owner_id <> d.owner_id OR a.team_id <> d.team_id "
                          "OR coalesce(a.company_id, -1) <> coalesce(d.company_id, -1)",
                      now=NOW) == 0
        kinds = dict(rows(db, "SELECT kind, count(*) FROM activities GROUP BY kind"))
        assert set(kinds) == {"call", "email", "meeting", "visit", "note"}
        # Won deals were worked harder than lost ones.
        per_status = dict(rows(db, "SELECT status, avg(activity_count) FROM deals GROUP BY status"))
        assert float(per_status["won"]) > 1.5 * float(per_status["lost"])
        assert scalar(db, "SELECT count(*) FROM activities WHERE kind IN ('email', 'note') "
                          "AND duration_min IS NOT NULL") == 0

    def test_owners_teams_and_customers_agree(self, filled: tuple[Database, DemoPlan]) -> None:
        db, _plan = filled
        assert scalar(db, "SELECT count(*) FROM deals d JOIN users u ON u.id = d.owner_id "
                          "WHERE u.role <> 'rep' OR d.team_id <> u.team_id OR d.created_by_id <> d.owner_id") == 0
        assert scalar(db, "SELECT count(*) FROM deals d JOIN contacts c ON c.id = d.contact_id "
                          "WHERE d.company_id IS NULL OR c.company_id <> d.company_id") == 0
        for table in ("companies", "contacts", "tasks"):
            assert scalar(db, f"SELECT count(*) FROM {table} x JOIN users u ON u.id = x.owner_id "
                              "WHERE x.team_id <> u.team_id") == 0, table
        # Companies and contacts exist before the deals about them.
        assert scalar(db, "SELECT count(*) FROM deals d JOIN companies c ON c.id = d.company_id "
                          "WHERE c.created_at > d.created_at") == 0
        assert scalar(db, "SELECT count(*) FROM deals d JOIN contacts c ON c.id = d.contact_id "
                          "WHERE c.created_at > d.created_at") == 0

    def test_required_fields_and_checklists_of_entered_stages(self, filled: tuple[Database, DemoPlan]) -> None:
        db, _plan = filled
        with db.session_scope(write=False) as s:
            stages = list(s.scalars(sa.select(Stage).order_by(Stage.position)))
            deals = list(s.scalars(sa.select(Deal)))
        required = {f for st in stages for f in st.required_fields}
        assert required == {"contact_id", "amount", "company_id", "expected_close_date"}
        checked = 0
        for st in stages:
            entered = [d for d in deals if d.reached_mask & (1 << st.bit)]
            for f in st.required_fields:
                assert all(getattr(d, f) is not None for d in entered), (st.name_en, f)
            if st.checklist:
                for d in entered:
                    assert set(st.checklist) <= set(d.checklist_done.get(str(st.id), []))
                    checked += 1
        assert checked > 0
        # Deals that never got that far still lack some of those fields sometimes.
        assert any(d.amount is None for d in deals) and any(d.contact_id is None for d in deals)
        amounts = [d.amount for d in deals if d.amount is not None]
        assert all(isinstance(a, Decimal) and a > 0 and a == a.quantize(Decimal("0.01")) for a in amounts)
        median = sorted(amounts)[len(amounts) // 2]
        assert Decimal(30_000) < median < Decimal(80_000)

    def test_lost_reasons_match_the_outcome(self, filled: tuple[Database, DemoPlan]) -> None:
        db, _plan = filled
        assert scalar(db, "SELECT count(*) FROM deals d LEFT JOIN lost_reasons r ON r.id = d.lost_reason_id "
                          "WHERE (d.status = 'lost' AND (r.kind IS NULL OR r.kind <> 'lost')) "
                          "OR (d.status = 'disqualified' AND (r.kind IS NULL OR r.kind <> 'disqualify')) "
                          "OR (d.status IN ('open', 'won') AND d.lost_reason_id IS NOT NULL)") == 0

    def test_open_deals_of_every_age_and_tasks(self, filled: tuple[Database, DemoPlan]) -> None:
        db, _plan = filled
        created = [r[0] for r in rows(db, "SELECT created_at FROM deals WHERE status = 'open' ORDER BY created_at")]
        created = [c if isinstance(c, dt.datetime) else dt.datetime.fromisoformat(c) for c in created]
        ages = [(NOW.replace(tzinfo=None) - c.replace(tzinfo=None)).days for c in created]
        assert min(ages) < 14 and max(ages) > 365
        # Some open deals have gone quiet (no activity in the last 30 days).
        assert scalar(db, "SELECT count(*) FROM deals WHERE status = 'open' AND last_activity_at < :t",
                      t=NOW - dt.timedelta(days=30)) > 0
        tasks = rows(db, "SELECT t.due_at, t.done_at, d.status FROM tasks t JOIN deals d ON d.id = t.deal_id")
        assert tasks and all(status == "open" for _due, _done, status in tasks)
        due = [d if isinstance(d, dt.datetime) else dt.datetime.fromisoformat(d) for d, _x, _y in tasks]
        naive_now = NOW.replace(tzinfo=None)
        assert any(d.replace(tzinfo=None) < naive_now for d in due)
        assert any(d.replace(tzinfo=None) > naive_now + dt.timedelta(days=1) for d in due)

    def test_people_have_realistic_names_phones_and_emails(self, filled: tuple[Database, DemoPlan]) -> None:
        db, _plan = filled
        users = rows(db, "SELECT name, email FROM users ORDER BY id")
        assert users[0][1] == "admin@loudou.demo"
        assert all(u[1].endswith("@loudou.demo") and u[1].isascii() for u in users)
        assert len({u[1] for u in users}) == 25
        assert all(2 <= len(u[0]) <= 4 and not u[0].isascii() for u in users)  # 王伟, 欧阳明华
        phones = [r[0] for r in rows(db, "SELECT phone FROM contacts WHERE phone IS NOT NULL")]
        assert phones and all(p.startswith("+861") and len(p) == 14 for p in phones)
        assert all(phonenumbers.is_valid_number(phonenumbers.parse(p)) for p in phones[:300])
        landlines = [r[0] for r in rows(db, "SELECT phone FROM companies WHERE phone IS NOT NULL")]
        assert all(phonenumbers.is_valid_number(phonenumbers.parse(p)) for p in landlines[:300])
        names = [r[0] for r in rows(db, "SELECT name FROM companies")]
        assert all(n.endswith("公司") for n in names)
        assert len(set(names)) == len(names)
        emails = [r[0] for r in rows(db, "SELECT email FROM contacts WHERE email IS NOT NULL")]
        assert all(e.isascii() and e.count("@") == 1 and "." in e.split("@")[1] for e in emails)



def test_the_app_can_work_on_the_demo_data(db: Database) -> None:
    fill(db, 200)
    with db.session_scope() as s:
        deal = s.scalars(sa.select(Deal).where(Deal.status == DealStatus.open).order_by(Deal.id)).first()
        assert deal is not None
        owner = s.get(User, deal.owner_id)
        assert owner is not None
        stages = list(s.scalars(sa.select(Stage).order_by(Stage.position)))
        target = next(st for st in stages if st.id != deal.stage_id and not st.required_fields)
        moved = deal_service.move_deal(s, owner, deal.id, DealMove(stage_id=target.id, version=deal.version))
        assert moved.stage_id == target.id
        new_id = moved.id
        # New rows get fresh ids after the bulk load (PostgreSQL sequences were moved on).
        created = deal_service.create_deal(s, owner, DealCreate(title="New after the demo"))
        assert created.id == 201
    with db.session_scope(write=False) as s:
        last = s.scalars(sa.select(StageTransition).where(StageTransition.deal_id == new_id)
                         .order_by(StageTransition.id.desc())).first()
        assert last is not None and last.to_stage_id == target.id
        previous = s.scalars(sa.select(StageTransition).where(StageTransition.deal_id == new_id)
                             .order_by(StageTransition.id.desc()).offset(1)).first()
        assert previous is not None and previous.duration_s is not None


def table_hashes(db: Database) -> dict[str, str]:
    out = {}
    for table, order in (("deals", "id"), ("stage_transitions", "deal_id, at"), ("activities", "id"),
                         ("companies", "id"), ("contacts", "id"), ("tasks", "deal_id, due_at"),
                         ("channel_spend", "channel_id, month"), ("users", "id"),
                         ("search_terms", "kind, entity_id, term")):
        cols = "*" if table not in ("stage_transitions", "tasks", "channel_spend") else {
            "stage_transitions": "deal_id, kind, from_stage_id, to_stage_id, from_status, to_status, at, by_id, "
                                 "duration_s",
            "tasks": "title, deal_id, due_at, done_at, priority, created_at",
            "channel_spend": "channel_id, month, amount",
        }[table]
        data = rows(db, f"SELECT {cols} FROM {table} ORDER BY {order}")
        out[table] = hashlib.sha256(repr([tuple(r) for r in data]).encode()).hexdigest()
    return out


def test_same_seed_same_rows_other_seed_other_rows(db: Database) -> None:
    fill(db, 300, seed=11)
    first = table_hashes(db)
    fill(db, 300, seed=11, reset=True)
    assert table_hashes(db) == first
    fill(db, 300, seed=12, reset=True)
    other = table_hashes(db)
    assert all(other[t] != first[t] for t in ("deals", "activities", "stage_transitions", "companies"))


def test_refuses_a_database_with_deals_unless_reset(db: Database) -> None:
    fill(db, 200)
    with pytest.raises(service.DemoRefused, match="already holds 200 deals"):
        fill(db, 200)
    fill(db, 250, reset=True)
    assert scalar(db, "SELECT count(*) FROM deals") == 250
    assert scalar(db, "SELECT count(*) FROM users") == 25
    # Reference data survives a reset.
    assert scalar(db, "SELECT count(*) FROM stages") == 5
    assert scalar(db, "SELECT count(*) FROM lost_reasons") == 10


def test_english_locale(db: Database) -> None:
    fill(db, 300, locale="en")
    names = [r[0] for r in rows(db, "SELECT name FROM users")]
    assert all(n.isascii() and " " in n for n in names)
    phones = [r[0] for r in rows(db, "SELECT phone FROM contacts WHERE phone IS NOT NULL")]
    assert all(p.startswith("+1") and phonenumbers.is_valid_number(phonenumbers.parse(p)) for p in phones[:200])
    assert {r[0] for r in rows(db, "SELECT DISTINCT currency FROM deals")} == {"USD"}
    assert all(n.isascii() for (n,) in rows(db, "SELECT name FROM companies"))


def test_serial_and_parallel_sqlite_loads_write_the_same_rows(tmp_path: Path) -> None:
    """The two-process load (the one big loads use) writes exactly what one process does."""
    hashes = []
    for parallel in (False, True):
        path = tmp_path / f"p{int(parallel)}.db"
        database = Database(engine=create_db_engine(f"sqlite:///{path}"))
        migrate.upgrade(database.engine)
        with database.session_scope() as s:
            pipeline_service.ensure_reference_data(s)
        # Eight activity blocks of 128 deals, shared between the two processes.
        plan = DemoPlan(1_000, 3, "zh", service.load_reference(database), now=NOW, password_hash=HASH,
                        activity_block=128)
        writer.write(database, plan, parallel=parallel)
        hashes.append(table_hashes(database))
        assert rows(database, "PRAGMA integrity_check") == [("ok",)]
        assert rows(database, "PRAGMA foreign_key_check") == []
        assert scalar(database, "PRAGMA journal_mode") == "wal"
        database.dispose()
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(path.name + ".demo")) == []
    assert hashes[0] == hashes[1]


# --------------------------------------------------------------------------- the truth


def reference() -> Reference:
    from loudou.pipeline import defaults

    stages = tuple(generator.StageRef(i + 1, i, i, s["name"], s["name_en"], tuple(s["required_fields"]),
                                      tuple(s["checklist"])) for i, s in enumerate(defaults.DEFAULT_STAGES))
    channels = tuple(generator.ChannelRef(i + 1, n, e) for i, (n, e, _k) in enumerate(defaults.CHANNELS))
    reasons = tuple(generator.ReasonRef(i + 1, n, e, k) for i, (n, e, k) in enumerate(defaults.LOST_REASONS))
    return Reference(1, stages, channels, reasons)


def wilson(successes: int, trials: int, z: float) -> tuple[float, float]:
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return centre - half, centre + half


def test_cohort_funnel_recovers_the_true_continuation_rates() -> None:
    """The documented recipe (reached_mask bits of decided cohorts) gives back the truth."""
    plan = DemoPlan(150_000, 9, "zh", reference(), now=NOW)
    truth = plan.truth()
    old = plan.created <= plan.now - truth["decided_after_days"] * 86_400 * US
    bits = [1 << s["bit"] for s in truth["stages"]]
    z = 3.9  # 99.99 %: 40 channel × stage comparisons plus 100 rep × stage ones
    checked = 0
    groups = [(np.array(plan.deal_channel) == i, c["continuation"]) for i, c in enumerate(truth["channels"])]
    groups += [(np.array(plan.deal_rep) == i, r["continuation"]) for i, r in enumerate(truth["reps"])]
    groups.append((np.ones(plan.n, dtype=bool), truth["overall_continuation"]))
    for member, expected in groups:
        mask = plan.mask[old & member]
        status = plan.status[old & member]
        for k, bit in enumerate(bits):
            reached = (mask & bit) != 0
            if k + 1 < len(bits):
                further = reached & ((mask & sum(bits[k + 1:])) != 0)
            else:
                further = reached & (status == generator.S_WON)
            n, s = int(reached.sum()), int(further.sum())
            if n < 30:
                continue
            low, high = wilson(s, n, z)
            assert low <= expected[k] <= high, (k, s, n, expected[k])
            checked += 1
    assert checked > 100
    # The weak pairs really are bottlenecks: their rep continues far less at that stage.
    for pair in truth["weak_pairs"]:
        rep = next(r for r in truth["reps"] if r["email"] == pair["rep_email"])
        k = pair["stage_position"]
        others = [r["continuation"][k] for r in truth["reps"] if r["email"] != pair["rep_email"]]
        assert rep["continuation"][k] < 0.75 * float(np.median(others))


def test_time_in_stage_follows_the_documented_lognormal() -> None:
    plan = DemoPlan(60_000, 4, "zh", reference(), now=NOW)
    truth = plan.truth()
    table = plan.stage_transitions()
    duration = table.column("duration_s").data
    to_stage = table.column("to_stage_id").data
    open_stay = table.column("to_status").data == generator.S_OPEN
    deal = plan.tr["deal"]
    old = plan.created[deal] <= plan.now - truth["decided_after_days"] * 86_400 * US
    for stage in truth["time_in_stage"]:
        stays = duration[(to_stage == truth["stages"][stage["position"]]["stage_id"]) & open_stay
                         & (duration >= 0) & old]
        logs = np.log(stays)
        assert abs(np.median(logs) - stage["mu"]) < 0.05, stage
        # p90 sits below the cap, so the clipping does not move it.
        assert abs(np.quantile(logs, 0.9) - (stage["mu"] + 1.2816 * stage["sigma"])) < 0.08, stage
        assert stays.max() <= stage["max_days"] * 86_400


def test_truth_file_shape(db: Database) -> None:
    plan = fill(db, 300)
    truth = json.loads(json.dumps(plan.truth()))
    assert {"version", "seed", "deals", "locale", "now", "window_days", "decided_after_days", "skip_probability",
            "reopen_probability", "stages", "exit_mix", "time_in_stage", "reopen_gap", "channels", "reps", "rates",
            "weak_pairs", "overall_continuation", "counts"} <= set(truth)
    assert truth["seed"] == 5 and truth["deals"] == 300 and len(truth["stages"]) == 5
    assert len(truth["channels"]) == 8 and len(truth["reps"]) == 20 and len(truth["weak_pairs"]) == 4
    emails = {r[0] for r in rows(db, "SELECT email FROM users WHERE role = 'rep'")}
    assert {r["email"] for r in truth["reps"]} == emails
    assert set(truth["rates"]) == emails
    assert all(len(v) == 5 and all(0 < x < 1 for x in v) for per in truth["rates"].values() for v in per.values())
    assert all({"rep_email", "stage_position", "stage_id", "multiplier"} <= set(p) for p in truth["weak_pairs"])
    assert all(t["distribution"] == "lognormal" and t["sigma"] > 0 for t in truth["time_in_stage"])
    assert truth["counts"]["deals"] == 300 and truth["counts"]["users"] == 25


def test_times_are_written_in_sqlalchemys_sqlite_format() -> None:
    bind = sa.DateTime().dialect_impl(sqlite_dialect.dialect()).bind_processor(sqlite_dialect.dialect())
    assert bind is not None
    values = [dt.datetime(2024, 2, 29, 23, 59, 59, 999_999), dt.datetime(2025, 1, 1),
              dt.datetime(1999, 12, 31, 0, 0, 1, 5)]
    us = np.array([generator.to_us(v.replace(tzinfo=dt.UTC)) for v in values] + [NO_TIME], dtype=np.int64)
    assert writer.format_times(us) == [bind(v) for v in values] + [None]
    assert writer.format_times(us[:1], "+00") == ["2024-02-29 23:59:59.999999+00"]


# --------------------------------------------------------------------------- the command


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "demo.db"
    monkeypatch.setenv("LOUDOU_DATABASE_URL", f"sqlite:///{path}")
    get_settings.cache_clear()
    set_database(None)
    yield path
    set_database(None)
    get_settings.cache_clear()


def test_cli_fills_the_database_and_prints_the_logins(cli_db: Path, tmp_path: Path) -> None:
    from loudou.cli import app

    runner = CliRunner()
    truth = tmp_path / "truth.json"
    result = runner.invoke(app, ["demo", "--deals", "400", "--seed", "3", "--truth", str(truth)])
    assert result.exit_code == 0, result.output
    assert "admin@loudou.demo" in result.output and "loudou-demo" in result.output
    assert "manager" in result.output and "rep" in result.output
    assert json.loads(truth.read_text(encoding="utf-8"))["counts"]["deals"] == 400
    database = Database(engine=create_db_engine(f"sqlite:///{cli_db}"))
    assert scalar(database, "SELECT count(*) FROM deals") == 400
    # The demo password logs in (one real argon2 hash shared by every demo user).
    from loudou.auth import service as auth_service

    with database.session_scope() as s:
        assert auth_service.authenticate(s, "admin@loudou.demo", "loudou-demo") is not None
    database.dispose()

    result = runner.invoke(app, ["demo", "--deals", "400"])
    assert result.exit_code == 2
    assert "already holds 400 deals" in result.output
    result = runner.invoke(app, ["demo", "--deals", "400", "--if-empty"])
    assert result.exit_code == 0 and "no demo data written" in result.output
    assert "admin@loudou.demo" in result.output and "loudou-demo" in result.output
    result = runner.invoke(app, ["demo", "--deals", "150", "--reset", "--locale", "en"])
    assert result.exit_code == 0, result.output
    database = Database(engine=create_db_engine(f"sqlite:///{cli_db}"))
    assert scalar(database, "SELECT count(*) FROM deals") == 150
    database.dispose()
