"""Migrations build the schema the models describe, and downgrade cleanly."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from loudou import migrate
from loudou.db import Base, Database, create_db_engine


def _fresh(db: Database) -> sa.Engine:
    """An empty database of the same kind as ``db``: a new SQLite file or PG schema."""
    if db.dialect == "sqlite":
        path = db.engine.url.database + ".fresh.db"  # type: ignore[operator]
        import os

        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        return create_db_engine(f"sqlite:///{path}")
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS fresh CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA fresh")
    return create_db_engine(db.url, connect_args={"options": "-csearch_path=fresh"})


def test_upgrade_from_empty_matches_models(db: Database) -> None:
    engine = _fresh(db)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert migrate.current_revision(engine) is not None
    engine.dispose()


def test_downgrade_then_upgrade_round_trip(db: Database) -> None:
    engine = _fresh(db)
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    tables = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    assert tables == set()
    migrate.upgrade(engine)
    assert set(sa.inspect(engine).get_table_names()) >= set(Base.metadata.tables)
    engine.dispose()
