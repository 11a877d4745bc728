"""Bulk loading of the generated demo data: raw DBAPI inserts, never the ORM.

Values are written exactly as SQLAlchemy writes them, so ORM reads and SQL comparisons
see no difference: on SQLite datetimes as ``YYYY-MM-DD HH:MM:SS.ffffff`` naive UTC
(``UTCDateTime`` strips the zone there), dates as ``YYYY-MM-DD``, enums as their values,
JSON as ``json.dumps`` text, money as REAL; on PostgreSQL timestamps carry ``+00``.

SQLite: one transaction on the raw ``sqlite3`` connection with foreign key checks off,
``synchronous=OFF`` and, when no other connection has the file open, an in-memory
rollback journal instead of the WAL (the load would otherwise be written twice); rows go
in with multi-row ``INSERT … VALUES`` statements through ``executemany``. The secondary
indexes of the big tables are dropped and rebuilt after the load (a sorted bulk build is
far cheaper than maintaining them row by row). Their definitions come from the database
catalog, so whatever the migrations created is rebuilt exactly as it was.

The global search index (``search_terms``) is part of the load: its rows are computed
from the generator's own columns (company name, city, phone, e-mail; contact name, phone,
e-mail; deal title; owners and teams) by ``loudou.search.bulk``, the code
``search_service.rebuild_index`` runs over the written records, so they are the rows a
rebuild would write, without reading ten million records back. Terms already indexed for
the ids the demo takes are stale (records deleted behind the services' back) and go.

Big SQLite loads (``PARALLEL_MIN_DEALS``) use the machine's second core: a worker process
regenerates the same plan (generation is deterministic) and writes into side files next
to the database, one per table, each with its indexes (``SIDE_TABLES``: a share of the
activities, the search index, stage transitions, companies, contacts), while this process
writes the deals, the other activities and the small tables and builds their indexes.
Each side file is copied in as soon as it is complete, between two index builds, with
``INSERT INTO t SELECT * FROM side.t``, which SQLite executes as a raw transfer of records
and index entries (the "xfer optimisation": identical schemas and indexes, foreign keys
off): no decoding, sorting or checking, but still an append per entry (about 0.6 µs,
against 1 to 3 µs per entry to build an index). The split keeps both processes busy
until the end at 1M deals: the search index (computing terms, then its two indexes, the
costliest per entry) is most of the worker's part, the indexes of the deals and of the
activities most of this process's, and ``WORKER_ACTIVITY_SHARE`` evens them out.

PostgreSQL: ``COPY … FROM STDIN`` per table and for the search index, then the id
sequences are moved past the ids written. Both end with ``ANALYZE``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import sqlite3
import threading
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from loudou.db import Database
from loudou.demo.generator import NO_TIME, TABLE_ORDER, US, Column, DemoPlan, Kind, Reference, TableData
from loudou.search import bulk
from loudou.search.models import SearchKind

IntArray = npt.NDArray[np.int64]

CHUNK_ROWS = 50_000
#: Rows per INSERT statement on SQLite (fewer statement executions, same binding work),
#: within SQLite's limit of 32,766 parameters per statement.
ROWS_PER_STATEMENT = 256
MAX_PARAMETERS = 32_766
#: SQLite loads of at least this many deals are shared with a worker process.
PARALLEL_MIN_DEALS = 100_000
#: Tables whose secondary indexes are dropped during a load and rebuilt after it.
REINDEXED_TABLES = ("companies", "contacts", "deals", "stage_transitions", "activities", "tasks", "search_terms")
#: What the worker process writes in a parallel load, in this order: its share of the
#: activities first (this process needs them before it builds the activities' indexes),
#: then the search index (its longest piece of work), the stage transitions, and the
#: companies and contacts (built for the search index already), which are the quickest to
#: copy: whatever the worker finishes last is copied while nothing else runs.
SIDE_TABLES = ("activities", "search_terms", "stage_transitions", "companies", "contacts")
WORKER_TABLES = SIDE_TABLES[1:]
#: Share of the activity blocks the worker writes: what balances the two processes (the
#: last blocks, so that the copied rows append to this process's). At 1M deals, 2 of 16.
WORKER_ACTIVITY_SHARE = 0.125
#: Tables written with explicit ids (their PostgreSQL sequences must be moved on).
EXPLICIT_ID_TABLES = ("teams", "users", "products", "companies", "contacts", "deals", "activities")
#: Reference data kept by ``reset`` (with the migration version); every other table is emptied.
KEPT_TABLES = {"pipelines", "stages", "lost_reasons", "channels", "alembic_version"}
#: The generated tables the search index is computed from.
SEARCH_SOURCES = {SearchKind.company: "companies", SearchKind.contact: "contacts", SearchKind.deal: "deals"}


class Progress(Protocol):
    def start(self, key: str, description: str, total: int) -> None: ...

    def advance(self, key: str, n: int) -> None: ...


class NoProgress:
    def start(self, key: str, description: str, total: int) -> None:
        return None

    def advance(self, key: str, n: int) -> None:
        return None


# --------------------------------------------------------------------------- value encoding

_DIGITS3: npt.NDArray[np.uint32] | None = None
_CLOCK: npt.NDArray[np.uint32] | None = None


def _lookup_tables() -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    """Code points of "000".."999" and of "HH:MM:SS." for every second of a day."""
    global _DIGITS3, _CLOCK
    if _DIGITS3 is None or _CLOCK is None:
        n = np.arange(1000)
        _DIGITS3 = (48 + np.stack([n // 100, n // 10 % 10, n % 10], axis=1)).astype(np.uint32)
        s = np.arange(86_400)
        d2 = _DIGITS3[:, 1:]
        colon = np.full((86_400, 1), ord(":"), dtype=np.uint32)
        dot = np.full((86_400, 1), ord("."), dtype=np.uint32)
        _CLOCK = np.concatenate([d2[s // 3600], colon, d2[s // 60 % 60], colon, d2[s % 60], dot], axis=1)
    return _DIGITS3, _CLOCK


def _day_strings(first_day: int, last_day: int) -> npt.NDArray[np.uint32]:
    days = np.arange(first_day, last_day + 1, dtype=np.int64).astype("datetime64[D]")
    text = np.datetime_as_string(days, unit="D").astype("U10")
    return np.ascontiguousarray(text).view(np.uint32).reshape(-1, 10)


def format_times(us: IntArray, suffix: str = "") -> list[str | None]:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` (+ ``suffix``) for µs since the epoch; NO_TIME is None.

    Assembled from lookup tables of code points (the dates of the range, the clock of a
    day, three digits) and turned into str objects by one ``tolist``: several times
    faster than ``datetime_as_string`` or formatting each value in Python."""
    n = len(us)
    if n == 0:
        return []
    null = us == NO_TIME
    has_null = bool(null.any())
    v = np.where(null, 0, us) if has_null else us
    digits3, clock = _lookup_tables()
    day, rem = np.divmod(v, 86_400 * US)
    sec, micro = np.divmod(rem, US)
    d0 = int(day.min())
    width = 26 + len(suffix)
    out = np.empty((n, width), dtype=np.uint32)
    out[:, :10] = _day_strings(d0, int(day.max()))[day - d0]
    out[:, 10] = ord(" ")
    out[:, 11:20] = clock[sec]
    out[:, 20:23] = digits3[micro // 1000]
    out[:, 23:26] = digits3[micro % 1000]
    for i, ch in enumerate(suffix):
        out[:, 26 + i] = ord(ch)
    values: list[str | None] = out.view(f"U{width}").ravel().tolist()
    if has_null:
        for i in np.flatnonzero(null).tolist():
            values[i] = None
    return values


def format_dates(days: IntArray) -> list[str | None]:
    if len(days) == 0:
        return []
    null = days < 0
    v = np.where(null, 0, days) if null.any() else days
    d0 = int(v.min())
    table = _day_strings(d0, int(v.max()))
    values: list[str | None] = np.ascontiguousarray(table[v - d0]).view("U10").ravel().tolist()
    for i in np.flatnonzero(null).tolist():
        values[i] = None
    return values


def _with_nulls(x: IntArray, values: np.ndarray) -> list[Any]:
    null = x < 0
    if not null.any():
        return values.tolist()
    o = values.astype(object)
    o[null] = None
    return o.tolist()


def column_values(c: Column, a: int, b: int, dialect: str) -> list[Any]:
    """Python values of rows [a, b) of a bound column, as the DBAPI driver takes them."""
    if c.kind is Kind.INT:
        return c.data[a:b].tolist()
    if c.kind is Kind.INT_NULL:
        x = c.data[a:b]
        return _with_nulls(x, x)
    if c.kind is Kind.CODE:
        assert c.pool is not None
        pool = np.empty(len(c.pool) + 1, dtype=object)
        pool[:-1] = c.pool  # the trailing None is what a negative code picks
        return pool[c.data[a:b]].tolist()
    if c.kind is Kind.TIME:
        return format_times(c.data[a:b], "+00" if dialect == "postgresql" else "")
    if c.kind is Kind.DATE:
        return format_dates(c.data[a:b])
    if c.kind is Kind.MONEY:
        x = c.data[a:b]
        if dialect == "sqlite":
            # SQLAlchemy binds Numeric as float on SQLite (NUMERIC affinity keeps it so).
            return _with_nulls(x, x / 100)
        text = np.array([f"{v // 100}.{v % 100:02d}" for v in x.tolist()], dtype=object)
        return _with_nulls(x, text)
    if c.kind is Kind.TEXT:
        return list(c.data[a:b])
    if c.kind is Kind.CONST:
        return [c.value] * (b - a)
    raise ValueError(f"column {c.name}: {c.kind} values are not bound")


def _sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(int(value))
    return "'" + str(value).replace("'", "''") + "'"


@dataclass
class SqliteInsert:
    """Multi-row INSERT for one table: constants inline, repeated columns bound once."""

    table: str
    bound: list[str]  # names of the columns sent, in parameter order
    single: str  # one row per statement
    multi: str  # ``per_statement`` rows per statement
    per_statement: int

    @classmethod
    def of(cls, table: TableData) -> SqliteInsert:
        bound = [c for c in table.columns if c.kind not in (Kind.CONST, Kind.SAME)]
        number = {c.name: i for i, c in enumerate(bound)}

        def row(offset: int) -> str:
            exprs = []
            for c in table.columns:
                source = c.same_as if c.kind is Kind.SAME and c.same_as else c.name
                exprs.append(_sql_literal(c.value) if c.kind is Kind.CONST else f"?{offset + number[source] + 1}")
            return "(" + ", ".join(exprs) + ")"

        head = f"INSERT INTO {table.name} ({', '.join(c.name for c in table.columns)}) VALUES "
        per = max(1, min(ROWS_PER_STATEMENT, MAX_PARAMETERS // max(1, len(bound))))
        multi = head + ", ".join(row(k * len(bound)) for k in range(per))
        return cls(table.name, [c.name for c in bound], head + row(0), multi, per)

    def run(self, con: Any, part: TableData, a: int, b: int) -> None:
        width = len(self.bound)
        cols = [column_values(part.column(name), a, b, "sqlite") for name in self.bound]
        n = b - a
        full = n - n % self.per_statement
        if full:
            # One flat parameter list, sliced per statement: no tuple per row.
            flat: list[Any] = [None] * (full * width)
            for j, col in enumerate(cols):
                flat[j::width] = col[:full]
            step = self.per_statement * width
            con.executemany(self.multi, [flat[i:i + step] for i in range(0, len(flat), step)])
        if full < n:
            con.executemany(self.single, list(zip(*[col[full:] for col in cols], strict=True)))


def _chunks(n: int, size: int = CHUNK_ROWS) -> Iterator[tuple[int, int]]:
    for a in range(0, n, size):
        yield a, min(n, a + size)


def insert_parts(con: Any, parts: Iterable[TableData], progress: Progress, key: str) -> None:
    plan: SqliteInsert | None = None
    for part in parts:
        if plan is None:
            plan = SqliteInsert.of(part)
        for a, b in _chunks(part.n_rows):
            plan.run(con, part, a, b)
            progress.advance(key, b - a)


def search_total(plan: DemoPlan) -> int:
    """Records the search index is computed from (the unit of the "search" progress bar)."""
    return sum(plan.n_rows(t) for t in SEARCH_SOURCES.values())


def stale_search_terms(plan: DemoPlan) -> list[tuple[str, int]]:
    """(kind, first id) of the ids the demo takes: whatever the index holds for them is
    stale (the records were deleted without their terms), and would clash with the
    demo's terms."""
    return [(kind.value, plan.ref.first_id(table)) for kind, table in SEARCH_SOURCES.items()]


def search_parts(plan: DemoPlan, progress: Progress, keep: dict[str, TableData] | None = None
                 ) -> Iterator[bulk.TermRows]:
    """The rows of ``search_terms`` for the plan's companies, contacts and deals, in primary
    key order, a chunk of records at a time: what ``search_service.rebuild_index`` computes
    from the written records (the same ``search.bulk`` code), computed from the generator's
    columns instead of reading two million records back once they are written.

    The source tables are built here (ints and strings: the same values for both
    dialects); ``keep`` receives those the worker writes, which it then need not build
    twice."""
    for kind in bulk.KINDS:
        name = SEARCH_SOURCES[kind]
        table = next(plan.table_parts(name))
        if keep is not None and name in WORKER_TABLES:
            keep[name] = table
        n = table.n_rows
        words = bulk.term_lists(kind, [column_values(table.column(c), 0, n, "sqlite") for c in bulk.TEXT_COLUMNS[kind]],
                                advance=lambda k: progress.advance("search", k))
        ids, owners, teams = (column_values(table.column(c), 0, n, "sqlite") for c in ("id", "owner_id", "team_id"))
        for a, b in _chunks(n):
            yield bulk.TermRows.of(kind, ids[a:b], owners[a:b], teams[a:b], words[a:b])


# --------------------------------------------------------------------------- database checks


def count_deals(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM deals")).scalar_one())


def existing(db: Database, table: str, column: str, values: list[str]) -> list[str]:
    """Which of ``values`` are already in ``table.column`` (unique names that would clash)."""
    with db.engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT {column} FROM {table} WHERE {column} IN :v")
                            .bindparams(sa.bindparam("v", expanding=True)), {"v": values})
        return sorted(r[0] for r in rows)


def next_ids(db: Database) -> dict[str, int]:
    """First free id of each table written with explicit ids."""
    with db.engine.connect() as conn:
        return {t: int(conn.execute(sa.text(f"SELECT coalesce(max(id), 0) + 1 FROM {t}")).scalar_one())
                for t in EXPLICIT_ID_TABLES}


def business_tables() -> list[str]:
    """Every table but the reference data, children first (the order to empty them in)."""
    from loudou.models import Base

    return [t.name for t in reversed(Base.metadata.sorted_tables) if t.name not in KEPT_TABLES]


def reset(db: Database) -> None:
    """Empty the business tables: users, teams, customers, deals, history, audit log …"""
    tables = business_tables()
    if db.dialect == "postgresql":
        with db.engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY")
        return
    db.engine.dispose()
    raw = db.engine.raw_connection()
    con: Any = raw.driver_connection
    try:
        # Without foreign key checks a bare DELETE takes SQLite's truncate fast path.
        con.execute("PRAGMA foreign_keys=OFF")
        con.execute("BEGIN IMMEDIATE")
        try:
            for t in tables:
                con.execute(f'DELETE FROM "{t}"')
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.execute("PRAGMA foreign_keys=ON")
        raw.close()
        db.engine.dispose()


# --------------------------------------------------------------------------- loading


def write(db: Database, plan: DemoPlan, progress: Progress | None = None, *, parallel: bool | None = None) -> None:
    """Insert every table of ``plan`` and its search index rows in one transaction, rebuild
    indexes, ANALYZE.

    ``parallel`` None decides by size: big SQLite loads share the work with a worker."""
    progress = progress or NoProgress()
    for t in TABLE_ORDER:
        progress.start(t, f"writing {t}", plan.n_rows(t))
    progress.start("search", "indexing names for search", search_total(plan))
    if db.dialect == "postgresql":
        _write_postgresql(db, plan, progress)
        return
    if db.dialect != "sqlite":
        raise ValueError(f"loudou demo writes SQLite and PostgreSQL databases, not {db.dialect}")
    path = db.engine.url.database
    file_backed = bool(path) and path != ":memory:" and not str(path).startswith("file:")
    if parallel is None:
        # A second process needs a second core, and a daemonic process may not start one.
        parallel = (file_backed and plan.n >= PARALLEL_MIN_DEALS and (os.cpu_count() or 1) >= 2
                    and not multiprocessing.current_process().daemon)
    if parallel and not file_backed:
        raise ValueError("a parallel load needs a file-backed SQLite database")
    _write_sqlite(db, plan, progress, Path(str(path)) if parallel else None)


def _index_sql(con: Any, tables: Iterable[str], schema: str = "main") -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for t in tables:
        rows = con.execute(f"SELECT name, sql FROM {schema}.sqlite_master WHERE type = 'index' "
                           "AND sql IS NOT NULL AND tbl_name = ? ORDER BY name", (t,)).fetchall()
        out[t] = [(r[0], r[1]) for r in rows]
    return out


def _table_sql(con: Any, table: str) -> str:
    row = con.execute("SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    return str(row[0])


def _tune(con: Any, cache_kib: int) -> None:
    con.execute("PRAGMA foreign_keys=OFF")  # the generator keeps every reference consistent
    con.execute("PRAGMA synchronous=OFF")
    # The index builds' sort runs go to temporary files (temp_store=FILE): the in-memory
    # store keeps them in small chunks and makes the builds ~30% slower.
    con.execute("PRAGMA temp_store=FILE")
    con.execute(f"PRAGMA cache_size=-{cache_kib}")


def _write_sqlite(db: Database, plan: DemoPlan, progress: Progress, parallel_path: Path | None) -> None:
    # Other pooled connections would keep the file open (and the journal mode fixed).
    db.engine.dispose()
    raw = db.engine.raw_connection()
    con: Any = raw.driver_connection
    worker: _Worker | None = None
    sides: list[Path] = []
    journal = "wal"
    try:
        _tune(con, 1 << 20)
        # A rollback journal in memory instead of the WAL: the load is written once, not
        # into the WAL and then again into the database. Refused (stays "wal") while
        # another connection has the file open, which is merely slower.
        journal = con.execute("PRAGMA journal_mode=MEMORY").fetchone()[0]
        tables = [t for t in TABLE_ORDER if plan.n_rows(t)]
        if parallel_path is not None:
            # Named after this process: two loads started on one file must not share them.
            sides = [parallel_path.with_name(f"{parallel_path.name}.demo-{os.getpid()}-{t}") for t in SIDE_TABLES]
            worker = _Worker.start(con, plan, sides, progress)
            for t, side in zip(SIDE_TABLES, sides, strict=True):
                con.execute(f"ATTACH DATABASE ? AS demo_{t}", (str(side),))
        mine = [t for t in tables if worker is None or t not in WORKER_TABLES]
        if worker is None:
            mine.append("search_terms")
        rebuilt = [t for t in mine if t in REINDEXED_TABLES]
        # Deferred: BEGIN IMMEDIATE would also lock the attached side files the worker is
        # writing. The first statement writes, which takes the write lock on main alone.
        con.execute("BEGIN")
        try:
            indexes = _index_sql(con, rebuilt)
            progress.start("indexes", "rebuilding indexes", sum(len(v) for v in indexes.values()))
            if worker is not None:
                progress.start("copy", "copying the worker's tables", len(SIDE_TABLES))
            for pairs in indexes.values():
                for name, _sql in pairs:
                    con.execute(f'DROP INDEX "{name}"')
            # Before the worker's rows are copied in: an empty index takes the transfer.
            con.executemany("DELETE FROM search_terms WHERE kind = ? AND entity_id >= ?", stale_search_terms(plan))
            for t in mine:
                if t == "search_terms":
                    for rows in search_parts(plan, progress):
                        bulk.insert_sqlite(con, rows)
                    continue
                blocks = range(worker.first_worker_block) if worker and t == "activities" else None
                insert_parts(con, plan.table_parts(t, blocks), progress, t)
            con.execute("PRAGMA cache_size=-65536")  # small sorter runs build indexes faster
            # The activities' indexes last: they need the worker's share of the rows, which
            # leaves it time to write them.
            for t in sorted(rebuilt, key=lambda name: name == "activities"):
                if worker is not None and t == "activities":
                    worker.copy(con, "activities", wait=True)
                for _name, sql in indexes[t]:
                    if worker is not None:
                        # Whatever the worker has finished is copied between two builds,
                        # while it goes on with the rest; once it is done, the builds
                        # sort on the core it leaves free.
                        worker.copy_ready(con)
                        if worker.done:
                            con.execute("PRAGMA threads=2")
                    con.execute(sql)
                    progress.advance("indexes", 1)
            if worker is not None:
                for t in SIDE_TABLES:
                    worker.copy(con, t, wait=True)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        progress.start("analyze", "analyzing", 1)
        # Sampled statistics: exact ones would read every index of ten million rows.
        con.execute("PRAGMA analysis_limit=1000")
        con.execute("ANALYZE")
        progress.advance("analyze", 1)
    finally:
        if worker is not None:
            worker.stop()
        if sides:
            for t in SIDE_TABLES:
                with contextlib.suppress(sqlite3.OperationalError):  # not attached: failed before
                    con.execute(f"DETACH DATABASE demo_{t}")
            for side in sides:
                for suffix in ("", "-journal"):
                    Path(str(side) + suffix).unlink(missing_ok=True)
        if journal == "memory":
            con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA threads=0")
        con.execute("PRAGMA foreign_keys=ON")
        raw.close()
        db.engine.dispose()


# --------------------------------------------------------------------------- the worker process


@dataclass
class _WorkerSpec:
    n: int
    seed: int
    locale: str
    ref: Reference
    now: Any
    password_hash: str
    sides: list[str]
    table_sql: dict[str, str]
    index_sql: dict[str, list[tuple[str, str]]]
    first_block: int
    activity_block: int


class _Worker:
    """The second process of a parallel load, and a thread taking in its reports.

    The thread keeps the progress bars moving while this process is busy inside SQLite
    (the GIL is released there), and tells which side files are complete; ``copy`` brings
    them into the database."""

    def __init__(self, process: multiprocessing.process.BaseProcess, messages: Any, first_block: int,
                 progress: Progress) -> None:
        self.process = process
        self.messages = messages
        self.first_worker_block = first_block
        self.progress = progress
        self.ready: set[str] = set()
        self.copied: set[str] = set()
        self.done = False
        self.error: str | None = None
        self.changed = threading.Condition()
        self.stopping = False
        self.pump = threading.Thread(target=self._pump, name="loudou-demo-progress", daemon=True)
        self.pump.start()

    @classmethod
    def start(cls, con: Any, plan: DemoPlan, sides: list[Path], progress: Progress) -> _Worker:
        for side in sides:
            for suffix in ("", "-journal"):
                Path(str(side) + suffix).unlink(missing_ok=True)
        spec = _WorkerSpec(
            n=plan.n, seed=plan.seed, locale=plan.locale, ref=plan.ref, now=plan.now_dt,
            password_hash=plan.password_hash, sides=[str(s) for s in sides],
            table_sql={t: _table_sql(con, t) for t in SIDE_TABLES},
            index_sql=_index_sql(con, WORKER_TABLES),
            # The worker draws the last activity blocks (same rows either way).
            first_block=plan.n_blocks - round(plan.n_blocks * WORKER_ACTIVITY_SHARE),
            activity_block=plan.activity_block,
        )
        # The side files exist with their tables before ATTACH, so this connection sees them.
        for side, t in zip(sides, SIDE_TABLES, strict=True):
            side_con = sqlite3.connect(side)
            side_con.execute(spec.table_sql[t])
            side_con.commit()
            side_con.close()
        ctx = multiprocessing.get_context("spawn")
        messages = ctx.Queue()
        process = ctx.Process(target=_worker_main, args=(spec, messages), name="loudou-demo-writer", daemon=True)
        process.start()
        return cls(process, messages, spec.first_block, progress)

    def _pump(self) -> None:
        while not self.stopping:
            try:
                what, table, n = self.messages.get(timeout=0.2 if self.process.is_alive() else 1.0)
            except queue.Empty:
                if self.process.is_alive():
                    continue
                # Exited, and nothing more came through the queue: it never said "done".
                with self.changed:
                    if not self.done and self.error is None:
                        self.error = f"the demo worker process died (exit code {self.process.exitcode})"
                    self.changed.notify_all()
                return
            if what == "progress":
                self.progress.advance(table, n)
                continue
            with self.changed:
                if what == "ready":
                    self.ready.add(table)
                elif what == "done":
                    self.done = True
                elif what == "error":
                    self.error = f"the demo worker process failed:\n{table}"
                self.changed.notify_all()
            if what in ("done", "error"):
                return

    def wait_for(self, table: str) -> None:
        with self.changed:
            while table not in self.ready:
                if self.error is not None:
                    raise RuntimeError(self.error)
                self.changed.wait(timeout=1.0)

    def copy(self, con: Any, table: str, *, wait: bool) -> bool:
        """Copy side file ``table`` into the database (once), if it is complete or after
        waiting for it; returns whether it is copied. ``INSERT INTO t SELECT * FROM side.t``
        is SQLite's transfer optimisation: records and index entries are appended as they
        are, in order, without being decoded, re-sorted or checked, which needs identical
        schemas and indexes, no foreign key checks and (for a table without an integer
        primary key, like ``search_terms``) an empty destination; otherwise SQLite falls
        back to inserting row by row, slower but the same rows."""
        if table in self.copied:
            return True
        if wait:
            self.wait_for(table)
        elif table not in self.ready:
            return False
        con.execute(f"INSERT INTO main.{table} SELECT * FROM demo_{table}.{table}")
        self.copied.add(table)
        self.progress.advance("copy", 1)
        return True

    def copy_ready(self, con: Any) -> None:
        for table in SIDE_TABLES:
            self.copy(con, table, wait=False)

    def stop(self) -> None:
        self.stopping = True
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=10)
        self.pump.join(timeout=5)
        self.messages.close()


def _worker_main(spec: _WorkerSpec, messages: Any) -> None:
    try:
        plan = DemoPlan(spec.n, spec.seed, spec.locale, spec.ref, now=spec.now, password_hash=spec.password_hash,
                        activity_block=spec.activity_block)

        class Forward:
            def start(self, key: str, description: str, total: int) -> None:
                return None

            def advance(self, key: str, n: int) -> None:
                messages.put(("progress", key, n))

        forward = Forward()
        built: dict[str, TableData] = {}  # tables the search index was computed from
        for side, t in zip(spec.sides, SIDE_TABLES, strict=True):
            con = sqlite3.connect(side, isolation_level=None)
            # A scratch file: no journal, no syncing.
            con.execute("PRAGMA journal_mode=OFF")
            _tune(con, 1 << 20)
            con.execute("BEGIN")
            if t == "search_terms":
                for rows in search_parts(plan, forward, built):
                    bulk.insert_sqlite(con, rows)
            else:
                blocks = range(spec.first_block, plan.n_blocks) if t == "activities" else None
                parts = [built.pop(t)] if t in built else plan.table_parts(t, blocks)
                insert_parts(con, parts, forward, t)
            con.execute("PRAGMA cache_size=-65536")  # small sorter runs build indexes faster
            for _name, sql in spec.index_sql.get(t, []):
                con.execute(sql)
            con.execute("COMMIT")
            con.close()
            messages.put(("ready", t, 0))
        messages.put(("done", "", 0))
    except BaseException:
        messages.put(("error", traceback.format_exc(), 0))
        raise


# --------------------------------------------------------------------------- PostgreSQL


def _write_postgresql(db: Database, plan: DemoPlan, progress: Progress) -> None:
    raw = db.engine.raw_connection()
    con: Any = raw.driver_connection
    tables = [t for t in TABLE_ORDER if plan.n_rows(t)]
    rebuilt = [t for t in (*tables, "search_terms") if t in REINDEXED_TABLES]
    try:
        with con.cursor() as cur:
            # Foreign key checks fire a trigger per row and reference; the generator keeps
            # every reference consistent. Only a superuser may switch them off: others load
            # with the checks, more slowly.
            cur.execute("SAVEPOINT demo_replica")
            try:
                cur.execute("SET LOCAL session_replication_role = replica")
                cur.execute("RELEASE SAVEPOINT demo_replica")
            except Exception:
                cur.execute("ROLLBACK TO SAVEPOINT demo_replica")
            # Plain indexes only: those behind primary keys and unique constraints stay.
            cur.execute(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
                "AND i.tablename = ANY(%s) AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname) ORDER BY i.tablename, i.indexname",
                (rebuilt,),
            )
            indexes = [(r[0], r[1]) for r in cur.fetchall()]
            progress.start("indexes", "rebuilding indexes", len(indexes))
            for name, _sql in indexes:
                cur.execute(f'DROP INDEX "{name}"')
            for t in tables:
                _copy_parts(cur, plan.table_parts(t), progress, t)
            cur.executemany("DELETE FROM search_terms WHERE kind = %s AND entity_id >= %s", stale_search_terms(plan))
            for rows in search_parts(plan, progress):
                bulk.copy_postgresql(cur, rows)
            for _name, sql in indexes:
                cur.execute(sql)
                progress.advance("indexes", 1)
            for t in EXPLICIT_ID_TABLES:
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), coalesce(max(id), 1), "
                            f"max(id) IS NOT NULL) FROM {t}")
        con.commit()
        progress.start("analyze", "analyzing", 1)
        with con.cursor() as cur:
            cur.execute("ANALYZE " + ", ".join((*tables, "search_terms")))
        con.commit()
        progress.advance("analyze", 1)
    except BaseException:
        con.rollback()
        raise
    finally:
        raw.close()


def _copy_parts(cur: Any, parts: Iterable[TableData], progress: Progress, key: str) -> None:
    for part in parts:
        # COPY sends every column: constants and repeated columns are sent as values.
        cols = []
        for c in part.columns:
            src = part.column(c.same_as) if c.kind is Kind.SAME and c.same_as else c
            cols.append(src)
        names = ", ".join(c.name for c in part.columns)
        with cur.copy(f"COPY {part.name} ({names}) FROM STDIN") as copy:
            for a, b in _chunks(part.n_rows):
                values = [column_values(c, a, b, "postgresql") for c in cols]
                for row in zip(*values, strict=True):
                    copy.write_row(row)
                progress.advance(key, b - a)

