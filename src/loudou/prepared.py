"""Statements compiled once and run on the driver's cursor: the hot read paths.

SQLAlchemy spends ~0.2 ms per execution of even a cached select (cache key, parameter
construction, result set-up, execution events): as much as SQLite needs to read a page of
50 deals. A :class:`Prepared` keeps the SQL text, the order of its parameters and the
types' bind processors, so an execution is one driver call with values converted exactly
as SQLAlchemy would convert them (a datetime filter becomes SQLite's timestamp text, an
enum its value). Results come back as the driver's plain tuples: callers select untyped
columns or JSON text (``loudou.rawrows``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler

#: Compiled statements kept per (dialect, statement); callers build a bounded set of
#: statements (one per query shape), this bound only guards against a leak.
MAX_PREPARED = 4000


class Prepared:
    """One select compiled for one dialect."""

    def __init__(self, stmt: sa.ClauseElement, dialect: sa.Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler), "only SQL statements are prepared"
        self.compiled: SQLCompiler = compiled
        self.sql = str(compiled)
        self.order: tuple[str, ...] | None = tuple(compiled.positiontup) if compiled.positiontup else None
        # What SQLAlchemy applies to each bound value before handing it to the driver.
        self.processors: Mapping[str, Any] = dict(compiled._bind_processors)

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        """The driver's parameters: positional for SQLite, named for psycopg."""
        bound = dict(self.compiled.construct_params(dict(values), _check=False))
        for name, process in self.processors.items():
            if name in bound and bound[name] is not None:
                bound[name] = process(bound[name])
        return [bound[name] for name in self.order] if self.order is not None else bound

    def fetchall(self, dbapi_conn: Any, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        cur = dbapi_conn.cursor()
        try:
            cur.execute(self.sql, self.parameters(values))
            return list(cur.fetchall())
        finally:
            cur.close()

    def fetchone(self, dbapi_conn: Any, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        cur = dbapi_conn.cursor()
        try:
            cur.execute(self.sql, self.parameters(values))
            row = cur.fetchone()
            return None if row is None else tuple(row)
        finally:
            cur.close()


_prepared: dict[tuple[str, int], tuple[sa.ClauseElement, Prepared]] = {}
_lock = threading.Lock()


def prepare(stmt: sa.ClauseElement, dialect: sa.Dialect) -> Prepared:
    """The compiled form of ``stmt`` (a statement object built once and reused) for
    ``dialect``; compiled on first use."""
    key = (dialect.name, id(stmt))
    hit = _prepared.get(key)
    if hit is not None and hit[0] is stmt:
        return hit[1]
    prepared = Prepared(stmt, dialect)
    with _lock:
        if len(_prepared) >= MAX_PREPARED:
            _prepared.clear()
        # The statement is kept with its compiled form: its id cannot be reused meanwhile.
        _prepared[key] = (stmt, prepared)
    return prepared
