"""Helpers of the outcome-report tests (cycle, winrate, winloss): reference ids, loading
hand-built histories, and the API and CLI surfaces on the test database."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from loudou.activity.models import Activity, ActivityKind
from loudou.analytics import rebuild
from loudou.app import create_app
from loudou.auth import service as auth_service
from loudou.channel.models import Channel
from loudou.cli import app
from loudou.db import Database, set_database
from loudou.deal.models import Deal
from loudou.pipeline import queries as pipeline_queries
from loudou.pipeline.models import LostReason
from loudou.web.deps import token_cache
from tests.analytics.history import History, day, write
from tests.api.conftest import Api
from tests.conftest import People, default_pipeline


def channel_id(db: Database, name_en: str) -> int:
    with db.session_scope(write=False) as s:
        found = s.scalar(sa.select(Channel.id).where(Channel.name_en == name_en))
    assert found is not None
    return int(found)


def reason_id(db: Database, name_en: str) -> int:
    with db.session_scope(write=False) as s:
        found = s.scalar(sa.select(LostReason.id).where(LostReason.name_en == name_en))
    assert found is not None
    return int(found)


def load(db: Database, people: People, histories: Sequence[tuple[str, History] | tuple[str, History, dict[str, Any]]]
         ) -> list[int]:
    """Write the histories (owner, history[, extra Deal fields]) and derive the rest; the deal ids.
    The extra field ``activities`` (n) logs n calls on the deal, a day after its creation."""
    ids = []
    with db.session_scope() as s:
        stages = pipeline_queries.list_stages(s, default_pipeline(s).id)
        for owner_name, history, *extra in histories:
            owner = getattr(people, owner_name)
            deal: Deal = write(s, owner, stages, history)
            fields = dict(extra[0]) if extra else {}
            for _n in range(fields.pop("activities", 0)):
                s.add(Activity(kind=ActivityKind.call, subject="call", deal_id=deal.id, owner_id=owner.id,
                               team_id=owner.team_id, occurred_at=day(history.created + 1)))
            for name, value in fields.items():
                setattr(deal, name, value)
            ids.append(deal.id)
        s.flush()
    assert not rebuild.has_mismatches(rebuild.rebuild(db))
    return ids


@contextmanager
def api_as(db: Database, people: People, *names: str) -> Iterator[dict[str, Api]]:
    """API clients acting as the named people (bearer tokens)."""
    token_cache.clear()
    with TestClient(create_app(db)) as client:
        with db.session_scope() as s:
            tokens = {n: auth_service.create_token(s, getattr(people, n))[0] for n in names}
        yield {n: Api(client, t) for n, t in tokens.items()}


def cli_json(db: Database, *args: str) -> dict[str, Any]:
    """``loudou report … --format json`` against the test database."""
    set_database(db)
    try:
        result = CliRunner().invoke(app, ["report", *args, "--format", "json"])
    finally:
        set_database(None)
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.output)
    return out


def cli_text(db: Database, *args: str) -> str:
    set_database(db)
    try:
        result = CliRunner().invoke(app, ["report", *args])
    finally:
        set_database(None)
    assert result.exit_code == 0, result.output
    return result.output
