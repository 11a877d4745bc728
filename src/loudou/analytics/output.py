"""Report tables as files (CSV, XLSX through ``transfer.export``) and as text columns."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from loudou.analytics.reports import Col, Table
from loudou.transfer import export

_EXPORT_KIND = {"int": export.ColumnKind.integer, "date": export.ColumnKind.date}


def export_columns(table: Table, translate: Callable[[str], str] = str) -> list[export.Column]:
    return [export.Column(translate(c.label), _EXPORT_KIND.get(c.kind, export.ColumnKind.number
                                                              if c.kind not in ("text", "bool") else
                                                              export.ColumnKind.text))
            for c in table.columns]


def export_rows(table: Table) -> Iterator[list[Any]]:
    for row in table.rows:
        yield [row.get(c.key) for c in table.columns]


def table_csv(table: Table, translate: Callable[[str], str] = str) -> Iterator[bytes]:
    return export.csv_chunks(export_columns(table, translate), export_rows(table))


def table_xlsx(table: Table, translate: Callable[[str], str] = str, note: str | None = None) -> Iterator[bytes]:
    return export.xlsx_chunks(export_columns(table, translate), export_rows(table),
                              sheet_title=translate(table.title), notes=[note] if note else [])


def text_cell(col: Col, value: Any) -> str:
    """Plain rendering for the terminal (the pages format per locale)."""
    if value is None:
        return ""
    if col.kind == "pct":
        return f"{value * 100:.1f}%"
    if col.kind == "pvalue":
        return f"{value:.3g}"
    if col.kind in ("money", "num", "days") and isinstance(value, int | float):
        return f"{value:,.2f}" if col.kind != "days" else f"{value:.1f}"
    if col.kind == "int" and isinstance(value, int):
        return f"{value:,}"
    if col.kind == "bool":
        return "yes" if value else "no"
    return str(value)


def find_table(tables: list[Table], key: str | None) -> Table | None:
    if key is None:
        return tables[0] if tables else None
    return next((t for t in tables if t.key == key), None)
