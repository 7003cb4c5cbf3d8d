"""A worksheet's data rows as XML, made by polars a column at a time: the very bytes xlsxwriter's
constant_memory mode writes for `write_row` cell by cell (about 7 µs a cell, most of the publish
stage at 8M objects), without a Python call per cell.

    write_sheet_rows(worksheet, table)   rows 1… of `worksheet` (row 0 holds the header)

What xlsxwriter 3.3 writes, cell by cell, for the tokens `write_row` gets from `iter_rows()`:

* None or "" — nothing (a blank cell without a format is skipped); a row with nothing is not written
* str — `<c r="B7" t="inlineStr"><is><t>…</t></is></c>`: first a literal `_xHHHH_` becomes
  `_x005F_xHHHH_`, control characters (but tab and newline) and U+FFFE/U+FFFF become `_xHHHH_`;
  then `xml:space="preserve"` on `<t>` when the text starts or ends with whitespace; then `&`, `<`, `>`
  escaped. A text that then starts with `<r>` and ends with `</r>` is taken for a rich string and
  written as it is, unescaped (xlsxwriter's rule, kept for identical bytes)
* int — `<c r="B7"><v>42</v></c>` (Python's `.16G`: the digits, for |n| < 2**53)
* date — `<c r="B7" s="N"><v>46023</v></c>`: the Excel serial day (1900 counted as a leap year) in the
  workbook's default date format, whose style index N is given at its first use
* each row `<row r="7">` … `</row>`, no spans, written to the worksheet's row data file

A table with anything else (floats, datetimes, a text longer than half of Excel's 32,767-unit
limit, which xlsxwriter would cut) is written cell by cell as before: `sheet_rows_supported`.
tests/transforms/test_sheetrows.py compares both ways byte for byte.
"""

from __future__ import annotations

import datetime as dt
import sys

import polars as pl
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import Worksheet

CHUNK_ROWS = 50_000  # rows made into XML at a time (bounds the memory of a million-row sheet)
SHORT_TEXT = 32_767 // 2  # xlsxwriter cuts a text only beyond this many characters
EXCEL_EPOCH = dt.date(1899, 12, 31)
FAKE_LEAP_DAY = 59  # serial days after 1900-02-28 count Excel's 1900-02-29 too

_ESCAPED_ESCAPE = r"(_x[0-9a-fA-F]{4}_)"  # a literal _xHHHH_ in the data: xlsxwriter prefixes _x005F
_CONTROL = [chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20))] + ["\ufffe", "\uffff"]
_CONTROL_ESCAPES = [f"_x{ord(c):04X}_" for c in _CONTROL]
_CONTROL_CHARS = r"[\x00-\x08\x0B-\x1F\x{FFFE}\x{FFFF}]"
_PRESERVED = '<is><t xml:space="preserve">'
# what Python's re (xlsxwriter's `^\s` / `\s$`) counts as whitespace, as one character class
_WHITESPACE = "".join(f"\\x{{{c:X}}}" for c in range(sys.maxunicode + 1) if chr(c).isspace())


def sheet_rows_supported(table: pl.DataFrame) -> bool:
    """Whether `write_sheet_rows` makes exactly what `write_row` would for this table (cells as
    `xlsxout._cells` leaves them: text, integers, dates)."""
    for name, dtype in table.schema.items():
        if dtype == pl.String:
            if table.height and (table[name].str.len_chars().max() or 0) > SHORT_TEXT:
                return False
        elif not (dtype.is_integer() or dtype == pl.Date or dtype == pl.Null):
            return False
    return True


def _text_cell(text: pl.Series, ref: pl.Expr) -> pl.Expr:
    """The cells of a text column (null for None and ""). Each escape runs only on a column that needs it: a
    column-wide replace costs more than the check, and most columns need none."""
    text = text.set(text == "", None)
    if text.str.contains("_x", literal=True).any():
        text = text.str.replace_all(_ESCAPED_ESCAPE, "_x005F${1}")
    if text.str.contains(_CONTROL_CHARS).any():
        text = text.str.replace_many(_CONTROL, _CONTROL_ESCAPES)
    rich = text.str.starts_with("<r>") & text.str.ends_with("</r>")
    preserve = text.str.contains(f"^[{_WHITESPACE}]|[{_WHITESPACE}]$")
    data = (
        text.str.replace_many(["&", "<", ">"], ["&amp;", "&lt;", "&gt;"]) if text.str.contains("[&<>]").any() else text
    )
    opening, closing = pl.lit("<is><t>"), pl.lit("</t></is>")
    if preserve.any():
        opening = pl.when(pl.lit(preserve)).then(pl.lit(_PRESERVED)).otherwise(opening)
    if rich.any():  # written as it is, unescaped (see the module's docstring)
        opening = pl.when(pl.lit(rich)).then(pl.lit("<is>")).otherwise(opening)
        closing = pl.when(pl.lit(rich)).then(pl.lit("</is>")).otherwise(closing)
        data = text.zip_with(rich.fill_null(False), data)
    return pl.concat_str(
        pl.lit('<c r="'), ref, pl.lit('" t="inlineStr">'), opening, pl.lit(data), closing, pl.lit("</c>")
    )


def _number_cell(value: pl.Expr, ref: pl.Expr, style: str) -> pl.Expr:
    """The cells of a number column (null for None)."""
    return pl.concat_str(pl.lit('<c r="'), ref, pl.lit(f'"{style}><v>'), value.cast(pl.String), pl.lit("</v></c>"))


def _excel_days(col: str) -> pl.Expr:
    days = (pl.col(col) - pl.lit(EXCEL_EPOCH)).dt.total_days()
    return pl.when(days > FAKE_LEAP_DAY).then(days + 1).otherwise(days)


def _cells(table: pl.DataFrame, row: pl.Expr, date_style: int | None) -> list[pl.Expr]:
    cells = []
    for j, (name, dtype) in enumerate(table.schema.items()):
        ref = pl.concat_str(pl.lit(xl_col_to_name(j)), row)
        if dtype == pl.String:
            cells.append(_text_cell(table[name], ref))
        elif dtype == pl.Date:
            cells.append(_number_cell(_excel_days(name), ref, f' s="{date_style}"'))
        elif dtype != pl.Null:
            cells.append(_number_cell(pl.col(name), ref, ""))
    return cells


def write_sheet_rows(ws: Worksheet, table: pl.DataFrame) -> None:
    """Writes `table` as rows 1… of `ws` (a constant_memory worksheet whose header is row 0), as
    `ws.write_row(i, 0, row)` for each row would. Needs `sheet_rows_supported(table)`."""
    has_dates = any(
        dtype == pl.Date and table[name].null_count() < table.height for name, dtype in table.schema.items()
    )
    header_out = False
    last_row = None
    for start in range(0, table.height, CHUNK_ROWS):
        chunk = table.slice(start, CHUNK_ROWS)
        row = pl.int_range(start + 2, start + 2 + chunk.height).cast(pl.String)  # 1-based, after the header
        if not header_out:
            # the header row goes out first (its bold style takes the first style index, as row by row)
            ws._write_single_row(1)
            header_out = True
        date_style = ws.default_date_format._get_xf_index() if has_dates else None
        cells = pl.concat_str(_cells(chunk, row, date_style), ignore_nulls=True) if chunk.width else pl.lit("")
        rows = chunk.select(cells=cells, row=row).filter(pl.col("cells") != "")
        if rows.height:
            xml = rows.select(pl.concat_str(pl.lit('<row r="'), "row", pl.lit('">'), "cells", pl.lit("</row>")))
            ws.fh.flush()  # the header, as text; the rows go to the same file as UTF-8 bytes
            ws.fh.buffer.write(xml.to_series().str.join("").cast(pl.Binary).item())
            last_row = int(rows["row"][-1]) - 1
    if last_row is not None:
        ws.dim_rowmax = max(ws.dim_rowmax or 0, last_row)
        ws.previous_row = last_row + 1
