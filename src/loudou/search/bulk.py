"""Search index rows for many records at once: what ``search.service.rebuild_index`` and
the demo loader write, from the same code.

A record's terms are ``terms.company_terms``, ``terms.contact_terms`` or
``terms.deal_terms`` of its columns (``TEXT_COLUMNS``), exactly as the services index one
record; only the order of the calls and what is remembered between them differ, because
at a million deals computing terms is most of a bulk rebuild:

* deal titles repeat (every deal of a customer about the same product has the same
  title), so each distinct title is computed once (``memo``): 13 s instead of 23 s for
  the demo's 1M deals (463k titles);
* contacts are computed in name order, so namesakes (王伟, 张敏 …) follow each other and
  hit the name cache of ``terms.name_terms`` instead of being evicted between them:
  17.5 s instead of 23 s for its 549k contacts;
* company names are all different: nothing to share beyond the caches of ``terms``
  (30 s for 343k companies: pinyin segmentation of every name).

Rows come out in primary key order (kind, entity id, term: each record's terms are
sorted), which makes the inserts appends to the WITHOUT ROWID table on SQLite. They are
kept as columns (``TermRows``), which the SQLite insert interleaves into one flat
parameter list with slice assignments, and PostgreSQL gets with COPY.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any

from loudou.search import terms
from loudou.search.models import SearchKind

#: The columns each kind's terms are computed from, in the order its terms function takes them.
TEXT_COLUMNS: dict[SearchKind, tuple[str, ...]] = {
    SearchKind.company: ("name", "city", "phone", "email"),
    SearchKind.contact: ("name", "phone", "email"),
    SearchKind.deal: ("title",),
}
#: The kinds in primary key order (their values sort company < contact < deal).
KINDS = tuple(sorted(SearchKind, key=lambda k: k.value))
#: Rows per INSERT statement on SQLite (each binds four values), as in the demo loader.
ROWS_PER_STATEMENT = 256
COLUMNS = ("kind", "entity_id", "term", "owner_id", "team_id")


def term_lists(kind: SearchKind, columns: Sequence[Sequence[Any]], *, memo: dict[Any, list[str]] | None = None,
               advance: Callable[[int], None] | None = None) -> list[list[str]]:
    """The sorted terms of each record, given the record's ``TEXT_COLUMNS[kind]`` as
    columns (one sequence per column, one value per record).

    ``memo`` (deals) keeps the terms of each title seen, across calls (records with the
    same title share one list: not to be modified); ``advance`` is called with a number of
    records every few thousand, for progress reports."""
    n = len(columns[0])
    step = 20_000
    if kind is SearchKind.deal:
        titles = columns[0]
        seen: dict[Any, list[str]] = {} if memo is None else memo
        out: list[list[str]] = []
        for a in range(0, n, step):
            for title in titles[a:a + step]:
                words = seen.get(title)
                if words is None:
                    words = seen[title] = terms.deal_terms(title)
                out.append(words)
            if advance is not None:
                advance(min(n, a + step) - a)
        return out
    if kind is SearchKind.contact:
        names, phones, emails = columns
        # Name order: the repeats of a name are computed one after the other.
        order = sorted(range(n), key=lambda i: names[i] or "")
        result: list[list[str]] = [[] for _ in range(n)]
        for a in range(0, n, step):
            for i in order[a:a + step]:
                result[i] = terms.contact_terms(names[i], phones[i], emails[i])
            if advance is not None:
                advance(min(n, a + step) - a)
        return result
    names, cities, phones, emails = columns
    out = []
    for a in range(0, n, step):
        b = min(n, a + step)
        out.extend(map(terms.company_terms, names[a:b], cities[a:b], phones[a:b], emails[a:b]))
        if advance is not None:
            advance(b - a)
    return out


@dataclass
class TermRows:
    """Rows of ``search_terms`` of one kind, as columns, in primary key order."""

    kind: SearchKind
    entity_ids: list[Any]
    terms: list[str]
    owner_ids: list[Any]
    team_ids: list[Any]

    @classmethod
    def of(cls, kind: SearchKind, ids: Sequence[Any], owner_ids: Sequence[Any], team_ids: Sequence[Any],
           words: Sequence[list[str]]) -> TermRows:
        """The rows of records (in id order) whose sorted terms are ``words``."""
        counts = list(map(len, words))
        return cls(kind, _repeat(ids, counts), list(chain.from_iterable(words)), _repeat(owner_ids, counts),
                   _repeat(team_ids, counts))

    def __len__(self) -> int:
        return len(self.terms)

    def tuples(self) -> list[tuple[Any, ...]]:
        n = len(self.terms)
        return list(zip(repeat(self.kind.value, n), self.entity_ids, self.terms, self.owner_ids, self.team_ids,
                        strict=True))


def _repeat(values: Sequence[Any], counts: list[int]) -> list[Any]:
    return list(chain.from_iterable(map(repeat, values, counts)))


@functools.cache
def _sqlite_statements(kind: SearchKind) -> tuple[str, str]:
    """One-row and multi-row INSERT for ``kind`` (inline: it is the same on every row)."""
    head = f"INSERT INTO search_terms ({', '.join(COLUMNS)}) VALUES "

    def row(offset: int) -> str:
        return f"('{kind.value}', ?{offset + 1}, ?{offset + 2}, ?{offset + 3}, ?{offset + 4})"

    return head + row(0), head + ", ".join(row(4 * k) for k in range(ROWS_PER_STATEMENT))


def insert_sqlite(con: Any, rows: TermRows) -> None:
    """Insert on a raw ``sqlite3`` connection, ``ROWS_PER_STATEMENT`` rows a statement."""
    single, multi = _sqlite_statements(rows.kind)
    n = len(rows)
    full = n - n % ROWS_PER_STATEMENT
    if full:
        # One flat parameter list, sliced per statement: no tuple per row.
        flat: list[Any] = [None] * (4 * full)
        flat[0::4] = rows.entity_ids[:full]
        flat[1::4] = rows.terms[:full]
        flat[2::4] = rows.owner_ids[:full]
        flat[3::4] = rows.team_ids[:full]
        step = 4 * ROWS_PER_STATEMENT
        con.executemany(multi, [flat[i:i + step] for i in range(0, len(flat), step)])
    if full < n:
        con.executemany(single, list(zip(rows.entity_ids[full:], rows.terms[full:], rows.owner_ids[full:],
                                         rows.team_ids[full:], strict=True)))


def copy_postgresql(cursor: Any, rows: TermRows) -> None:
    """COPY on a psycopg cursor."""
    with cursor.copy(f"COPY search_terms ({', '.join(COLUMNS)}) FROM STDIN") as copy:
        for row in zip(repeat(rows.kind.value, len(rows)), rows.entity_ids, rows.terms, rows.owner_ids,
                       rows.team_ids, strict=True):
            copy.write_row(row)
