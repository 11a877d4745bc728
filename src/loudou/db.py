"""Engine, session and column types shared by every domain.

SQLite gets WAL, foreign keys and a busy timeout on every connection; write sessions
open with ``BEGIN IMMEDIATE`` so concurrent writers queue on the lock instead of failing
halfway with "database is locked". Read sessions use a deferred ``BEGIN``.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from loudou.config import get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on SQLite and PostgreSQL alike; naive input is refused."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[dt.datetime]:
        return dt.datetime

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store aware UTC datetimes")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _install_sqlite_hooks(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the driver so "begin" below decides.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        # WAL makes NORMAL durable against application crashes, and much faster.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode is None:
            # Single-statement reads: each SELECT is its own implicit transaction.
            return
        conn.exec_driver_sql(f"BEGIN {mode}")


def create_db_engine(url: str | None = None, **kwargs: Any) -> Engine:
    settings = get_settings()
    url = url or settings.database_url
    if is_sqlite(url):
        engine = sa.create_engine(
            url,
            echo=settings.sql_echo,
            connect_args={"check_same_thread": False, "timeout": settings.sqlite_busy_timeout_ms / 1000},
            pool_size=8,
            max_overflow=24,
            **kwargs,
        )
        _install_sqlite_hooks(engine, settings.sqlite_busy_timeout_ms)
    else:
        engine = sa.create_engine(
            url, echo=settings.sql_echo, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs
        )
    return engine


class Database:
    """One engine plus the two session factories: reads (deferred) and writes (immediate)."""

    def __init__(self, url: str | None = None, engine: Engine | None = None) -> None:
        self.engine = engine or create_db_engine(url)
        self.url = str(self.engine.url)
        write_bind = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self.read_session = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.write_session = sessionmaker(bind=write_bind, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session_scope(self, *, write: bool = True) -> Iterator[Session]:
        """Commit on success, roll back on any error: the CLI's unit of work."""
        factory = self.write_session if write else self.read_session
        session = factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def read_connection(self) -> Iterator[sa.Connection]:
        """A connection for hot single-statement reads: no explicit transaction (SQLite)
        or autocommit (PostgreSQL), saving the BEGIN/ROLLBACK round trips."""
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.execution_options(sqlite_begin=None)
            else:
                conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    @contextmanager
    def raw_read(self) -> Iterator[Any]:
        """The driver's connection from the pool, for prebuilt point reads (see
        deal.queries.fetch_visible_deal); returned to the pool, rolled back, on exit."""
        conn = self.engine.raw_connection()
        try:
            yield conn.driver_connection
        finally:
            conn.close()

    def dispose(self) -> None:
        self.engine.dispose()


_default: Database | None = None
_lock = threading.Lock()


def get_database() -> Database:
    global _default
    with _lock:
        if _default is None:
            _default = Database()
        return _default


def set_database(db: Database | None) -> None:
    global _default
    with _lock:
        _default = db
