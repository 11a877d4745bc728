"""``loudou demo`` without the command line: check, generate, write (used by cli and bench)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from loudou.auth.passwords import hash_password
from loudou.channel.models import Channel
from loudou.db import Database
from loudou.demo import writer
from loudou.demo.generator import DEMO_PASSWORD, ChannelRef, DemoPlan, ReasonRef, Reference, StageRef
from loudou.pipeline import queries as pipeline_queries


class DemoRefused(Exception):
    """The database is not in a state the demo may be written into."""


def load_reference(db: Database) -> Reference:
    with db.session_scope(write=False) as s:
        pipeline = pipeline_queries.get_default_pipeline(s)
        if pipeline is None:
            raise DemoRefused("no pipeline: run `loudou migrate` first")
        stages = pipeline_queries.list_stages(s, pipeline.id)
        channels = list(s.scalars(sa.select(Channel).where(Channel.is_active.is_(True)).order_by(Channel.id)))
        reasons = pipeline_queries.list_lost_reasons(s)
        ref = Reference(
            pipeline_id=pipeline.id,
            stages=tuple(StageRef(st.id, i, st.bit, st.name, st.name_en, tuple(st.required_fields or ()),
                                  tuple(st.checklist or ())) for i, st in enumerate(stages)),
            channels=tuple(ChannelRef(c.id, c.name, c.name_en) for c in channels),
            reasons=tuple(ReasonRef(r.id, r.name, r.name_en, r.kind) for r in reasons),
        )
    ref.first_ids.update(writer.next_ids(db))
    return ref


def run(
    db: Database,
    deals: int,
    seed: int,
    locale: str,
    *,
    now: dt.datetime | None = None,
    reset: bool = False,
    progress: writer.Progress | None = None,
    password_hash: str | None = None,
    parallel: bool | None = None,
) -> DemoPlan:
    """Fill ``db`` (already migrated) with the demo company and return what was written.

    Refuses a database that holds deals (or demo users and teams) unless ``reset``, which
    empties every business table first."""
    if deals < 1:
        raise DemoRefused("--deals must be at least 1")
    if locale not in ("zh", "en"):
        raise DemoRefused("--locale must be zh or en")
    if reset:
        writer.reset(db)
    else:
        existing = writer.count_deals(db)
        if existing:
            raise DemoRefused(f"the database already holds {existing} deals; "
                              "use --reset to replace everything with the demo data")
    ref = load_reference(db)
    # argon2 costs ~50 ms by design: one hash, shared by every demo user.
    hashed = password_hash if password_hash is not None else hash_password(DEMO_PASSWORD)
    if progress is not None:
        progress.start("generate", "generating the company", 1)
    plan = DemoPlan(deals, seed, locale, ref, now=now, password_hash=hashed)
    if progress is not None:
        progress.advance("generate", 1)
    if not reset:
        clash = (writer.existing(db, "users", "email", plan.user_emails)
                 + writer.existing(db, "teams", "name", list(plan.team_names))
                 + writer.existing(db, "products", "name", list(plan.product_names)))
        if clash:
            raise DemoRefused(f"the database already has {', '.join(clash)}; use --reset")
    # The demo bypasses the services: the writer also writes the global search index, the
    # rows ``search_service.rebuild_index`` would compute, from the generator's columns.
    writer.write(db, plan, progress, parallel=parallel)
    # The bulk writer tunes its SQLite connections (journal, locking); start afresh.
    db.engine.dispose()
    # The analytics derived tables too are bypassed: computed from the plan's arrays.
    _write_counters(db, plan, progress)
    return plan


def _write_counters(db: Database, plan: DemoPlan, progress: writer.Progress | None) -> None:
    from loudou.demo.counters import write_counters

    with db.engine.begin() as conn:
        write_counters(conn, plan, progress)
