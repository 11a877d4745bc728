"""Fixtures: every storage test runs on SQLite and on PostgreSQL.

Each test session (and each xdist worker) gets its own SQLite file and its own fresh
PostgreSQL database, built by running the Alembic migrations; between tests the tables
are emptied. PostgreSQL is the machine's server on 127.0.0.1:5432 (LOUDOU_TEST_PG_URL
overrides it); the suite fails, never skips, when it is not reachable.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou import migrate
from loudou.auth import service as auth_service
from loudou.auth.models import Role, User
from loudou.auth.schemas import UserCreate
from loudou.db import Base, Database, create_db_engine
from loudou.models import Deal
from loudou.pipeline import service as pipeline_service
from loudou.pipeline.models import Pipeline

PG_ADMIN_URL = os.environ.get("LOUDOU_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing() -> Iterator[None]:
    """argon2 costs ~50 ms by design; hash each test password once per session."""
    original = auth_service.hash_password
    cached = functools.lru_cache(maxsize=64)(original)
    auth_service.hash_password = cached  # type: ignore[assignment]
    yield
    auth_service.hash_password = original  # type: ignore[assignment]


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"loudou_test_{_worker()}_{os.getpid()}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:  # pragma: no cover - environment problem, never a skip
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: start it (see DEVELOPERS.md). {exc}")
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "loudou.db"
    return f"sqlite:///{path}"


_migrated: dict[str, Database] = {}


def _database(url: str) -> Database:
    if url not in _migrated:
        db = Database(engine=create_db_engine(url))
        migrate.upgrade(db.engine)
        _migrated[url] = db
    return _migrated[url]


def empty_tables(db: Database) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
        else:
            for t in tables:
                conn.exec_driver_sql(f'DELETE FROM "{t}"')


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    database = _database(url)
    empty_tables(database)
    with database.session_scope() as session:
        pipeline_service.ensure_reference_data(session)
    yield database


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    """A write session committed at the end of the test body (like a request)."""
    with db.session_scope() as s:
        yield s


@dataclass
class People:
    alice: User  # admin
    bob: User  # manager, team East
    carol: User  # rep, team East
    dave: User  # rep, team West
    erin: User  # manager, team West


def make_user(session: Session, email: str, name: str, role: Role, team: str | None) -> User:
    team_id = auth_service.ensure_team(session, team).id if team else None
    return auth_service.create_user(
        session, None, UserCreate(email=email, name=name, role=role, team_id=team_id, password=PASSWORD)
    )


@pytest.fixture
def people(db: Database) -> People:
    with db.session_scope() as s:
        p = People(
            alice=make_user(s, "alice@example.com", "Alice", Role.admin, None),
            bob=make_user(s, "bob@example.com", "Bob", Role.manager, "East"),
            carol=make_user(s, "carol@example.com", "Carol", Role.rep, "East"),
            dave=make_user(s, "dave@example.com", "Dave", Role.rep, "West"),
            erin=make_user(s, "erin@example.com", "Erin", Role.manager, "West"),
        )
    return p


def default_pipeline(session: Session) -> Pipeline:
    p = session.scalars(sa.select(Pipeline).where(Pipeline.is_default.is_(True))).first()
    assert p is not None
    return p


def reload_deal(db: Database, deal_id: int) -> Deal:
    with db.session_scope(write=False) as s:
        deal = s.get(Deal, deal_id)
        assert deal is not None
        return deal
