"""The generic CSV/XLSX writers: formula neutralisation, typed cells, encodings, streaming.
Every file is parsed back (csv module, openpyxl) rather than compared as bytes."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from loudou.transfer.export import (
    Column,
    ColumnKind,
    content_disposition,
    csv_chunks,
    neutralize,
    xlsx_chunks,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
COLUMNS = [Column("名称"), Column("Amount", ColumnKind.number), Column("Count", ColumnKind.integer),
           Column("Due", ColumnKind.date), Column("At", ColumnKind.datetime)]
MOMENT = dt.datetime(2026, 3, 31, 17, 30, tzinfo=dt.UTC)  # 1 April 01:30 in Shanghai

DANGEROUS = ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "\0=1", "=HYPERLINK(\"http://x\")"]


@pytest.mark.parametrize("text", DANGEROUS)
def test_formula_triggers_get_an_apostrophe(text: str) -> None:
    out = neutralize(text)
    assert out.startswith("'") and "\0" not in out


@pytest.mark.parametrize("text", ["Acme", "1+1", "a=b", " =1", "华为", "", "'quoted"])
def test_harmless_text_is_unchanged(text: str) -> None:
    assert neutralize(text) == text


def _csv(rows: list[list[Any]], columns: list[Column] = COLUMNS) -> tuple[bytes, list[list[str]]]:
    data = b"".join(csv_chunks(columns, rows, tz=SHANGHAI))
    return data, list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def _xlsx(rows: list[list[Any]], **kw: Any) -> Any:
    return load_workbook(io.BytesIO(b"".join(xlsx_chunks(COLUMNS, rows, tz=SHANGHAI, **kw))))


class TestCsv:
    def test_bom_header_and_crlf(self) -> None:
        data, rows = _csv([["华为", Decimal("1.50"), 3, dt.date(2026, 1, 2), MOMENT]])
        assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data
        assert rows == [["名称", "Amount", "Count", "Due", "At"],
                        ["华为", "1.50", "3", "2026-01-02", "2026-04-01 01:30"]]

    def test_text_is_neutralised_and_numbers_stay_numbers(self) -> None:
        _, rows = _csv([[text, Decimal("-12.5"), -3, None, None] for text in DANGEROUS])
        for (text, amount, count, due, at), original in zip(rows[1:], DANGEROUS, strict=True):
            assert text.startswith("'") and original.lstrip("\0") in text
            assert (amount, count, due, at) == ("-12.5", "-3", "", "")

    def test_decimals_never_use_exponents(self) -> None:
        _, rows = _csv([["x", Decimal("1E+3"), 0, None, None]])
        assert rows[1][1] == "1000"

    def test_a_number_column_refuses_text(self) -> None:
        with pytest.raises(TypeError):
            _csv([["x", "=1+1", 0, None, None]])

    def test_streams_in_chunks(self) -> None:
        chunks = list(csv_chunks(COLUMNS, ([f"row {i}", i, i, None, None] for i in range(1200))))
        assert len(chunks) >= 3

    def test_naive_datetimes_are_refused(self) -> None:
        with pytest.raises(ValueError, match="naive"):
            _csv([["x", 1, 1, None, dt.datetime(2026, 1, 1)]])


class TestXlsx:
    def test_cells_are_typed(self) -> None:
        book = _xlsx([["=cmd|' /C calc'!A0", Decimal("-1200.50"), 7, dt.date(2026, 1, 2), MOMENT],
                      ["plain", None, None, None, None]])
        sheet = book.worksheets[0]
        assert [c.value for c in sheet[1]] == ["名称", "Amount", "Count", "Due", "At"]
        assert sheet[1][0].font.b
        text, amount, count, due, at = sheet[2]
        assert (text.data_type, text.value) == ("s", "'=cmd|' /C calc'!A0")
        assert (amount.data_type, amount.value) == ("n", -1200.5)
        assert (count.data_type, count.value) == ("n", 7)
        assert due.is_date and due.value == dt.datetime(2026, 1, 2)
        assert at.is_date and at.value == dt.datetime(2026, 4, 1, 1, 30)
        assert [c.value for c in sheet[3]][1:] == [None, None, None, None]
        assert sheet.freeze_panes == "A2"

    @pytest.mark.parametrize("text", DANGEROUS)
    def test_no_formula_survives(self, text: str) -> None:
        cell = _xlsx([[text, 1, 1, None, None]]).worksheets[0]["A2"]
        assert cell.data_type == "s" and str(cell.value).startswith("'")

    def test_xml_special_and_control_characters(self) -> None:
        text = "<b>&amp; \"quotes\" 'x'</b>\x01\x0b tab\there"
        cell = _xlsx([[text, 1, 1, None, None]]).worksheets[0]["A2"]
        assert cell.value == "<b>&amp; \"quotes\" 'x'</b> tab\there"

    def test_notes_sheet_and_sheet_name_rules(self) -> None:
        book = _xlsx([["x", 1, 1, None, None]], sheet_title="商机/Deals: [all]", notes=["capped at 3 rows"])
        assert book.sheetnames[0] == "商机 Deals   all" and book.sheetnames[1] == "README"
        assert book.worksheets[1]["A1"].value == "capped at 3 rows"

    def test_is_a_zip_streamed_in_pieces(self) -> None:
        chunks = list(xlsx_chunks(COLUMNS, ([f"row {i}" * 20, i, i, None, MOMENT] for i in range(5000))))
        assert len(chunks) > 2
        data = b"".join(chunks)
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            assert zf.testzip() is None
            assert "xl/worksheets/sheet1.xml" in zf.namelist()
        assert load_workbook(io.BytesIO(data)).worksheets[0].max_row == 5001


def test_content_disposition_has_an_ascii_fallback() -> None:
    value = content_disposition("商机-20260401.csv")
    assert value.startswith('attachment; filename="20260401.csv"; ')
    assert "filename*=UTF-8''%E5%95%86%E6%9C%BA-20260401.csv" in value
    assert "\r" not in content_disposition("a\r\nSet-Cookie: x.csv")
