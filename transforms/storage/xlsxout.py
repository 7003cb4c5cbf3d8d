"""The one XLSX writer for files people open (SPEC §6): the spreadsheet beside every people-facing CSV.

Excel, WPS and LibreOffice turn an all-digit 18-character USCC in a CSV into a floating-point
number and keep 15 significant digits (`924403007797840980` → `924403007797841024`); saving the
sheet keeps the wrong code. In this workbook every text value is a text cell (`write_string`: a
code stays a code, and `=HYPERLINK(…)` is shown, never run — no cell is ever a formula), lists
are joined with `；`, dates are date cells, counts are numbers, and an integer column a spreadsheet
cannot hold exactly (the 64-bit draw score) is text. Headers are Chinese, the header row is frozen,
columns are sized to what they hold (a CJK character counts double), and the document properties
are fixed, so the same table gives the same bytes. A table longer than a sheet continues on the
next sheet (续1, 续2 …) under the same header.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from pathlib import Path

import polars as pl
import xlsxwriter

from jointdraw.transforms.storage.background import BackgroundWriters
from jointdraw.transforms.storage.csvout import LIST_JOIN, yes_no
from jointdraw.transforms.storage.runfolder import atomic_path
from jointdraw.transforms.storage.sheetrows import sheet_rows_supported, write_sheet_rows

CREATED = dt.datetime(2026, 1, 1)  # fixed document date: byte-identical files on reruns
SHEET_ROWS = 1_048_575  # data rows per sheet (one row is the header)
EXACT_INTEGERS = 2**53  # above this a spreadsheet number loses digits
WIDTH_SAMPLE = 2_000  # rows looked at to size a column
MAX_WIDTH = 60


def display_width(text: str) -> int:
    """Columns a text takes in a spreadsheet: wide (CJK) characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _cells(df: pl.DataFrame) -> pl.DataFrame:
    """The frame as cells: lists joined, flags as 是/否, an integer column a spreadsheet cannot hold
    exactly as text; dates and the other numbers as they are."""
    cols = []
    for name, dtype in df.schema.items():
        c = pl.col(name)
        if isinstance(dtype, pl.List):
            c = c.cast(pl.List(pl.String)).list.join(LIST_JOIN)
        elif dtype.is_integer() or dtype.is_float():
            largest = df[name].drop_nulls().abs().max() if df.height else None
            c = c if largest is None or largest < EXACT_INTEGERS else c.cast(pl.String)
        elif dtype == pl.Boolean:
            c = yes_no(c)
        elif dtype not in (pl.Date, pl.Datetime):
            c = c.cast(pl.String)
        cols.append(c.alias(name))
    return df.select(cols)


def _widths(df: pl.DataFrame, headers: list[str]) -> list[int]:
    sample = df.head(WIDTH_SAMPLE)
    out = []
    for name, header in zip(df.columns, headers, strict=True):
        values = {str(v) for v in set(sample[name].drop_nulls().to_list())}
        widest = max([display_width(header), *(display_width(v) for v in values)])
        out.append(min(MAX_WIDTH, widest + 2))
    return out


def write_people_xlsx(
    df: pl.DataFrame,
    path: Path,
    headers: dict[str, str] | None = None,
    sheet: str = "Sheet1",
    max_rows: int | None = None,
) -> Path:
    """Writes `df` as a workbook for people (columns renamed to `headers` where given), atomically.
    With `max_rows`, a longer table keeps its first `max_rows` rows and says so in a last row (the
    CSV beside it has them all): a workbook of a million rows helps nobody and takes a minute."""
    headers = headers or {}
    total = df.height
    if max_rows is not None and total > max_rows:
        df = df.head(max_rows)
    table = _cells(df)
    if df.height < total:
        note = (
            f"……仅列出前 {df.height:,} 行，共 {total:,} 行：全部见同名 CSV 文件 "
            f"(the first {df.height:,} of {total:,} rows; all in the CSV)"
        )
        table = pl.concat([table, pl.DataFrame({table.columns[0]: [note]}).cast(pl.String)], how="diagonal_relaxed")
    names = [headers.get(c, c) for c in table.columns]
    widths = _widths(table, names)
    with atomic_path(path) as tmp:
        # every str a text cell (never a formula, number or link), every date a date cell
        book = xlsxwriter.Workbook(
            str(tmp),
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_numbers": False,
                "strings_to_urls": False,
                "default_date_format": "yyyy-mm-dd",
            },
        )
        book.set_properties({"created": CREATED})
        bold = book.add_format({"bold": True})
        parts = max(1, -(-table.height // SHEET_ROWS))
        for part in range(parts):
            ws = book.add_worksheet(sheet if part == 0 else f"{sheet}续{part}")
            ws.freeze_panes(1, 0)
            for j, (name, width) in enumerate(zip(names, widths, strict=True)):
                ws.set_column(j, j, width)
                ws.write_string(0, j, name, bold)
            rows = table.slice(part * SHEET_ROWS, SHEET_ROWS)
            if sheet_rows_supported(rows):
                write_sheet_rows(ws, rows)  # the same bytes as the loop below, made a column at a time
            else:
                for i, row in enumerate(rows.iter_rows(), start=1):
                    ws.write_row(i, 0, row)  # str → text cell, int/float → number, date → date cell, None → nothing
        book.close()
    return path


def write_people_tables(
    df: pl.DataFrame,
    csv_path: Path,
    headers: dict[str, str],
    sheet: str,
    max_xlsx_rows: int | None = None,
    writers: BackgroundWriters | None = None,
) -> tuple[Path, Path]:
    """A people-facing table as CSV (for machines and spreadsheets that import text) and, beside it,
    as XLSX (for people: codes stay codes); both with the Chinese headers. With `writers`, the
    workbook is written by one of them (it is there once the writers are waited for)."""
    from jointdraw.transforms.storage.csvout import write_people_csv

    xlsx = csv_path.with_suffix(".xlsx")
    if writers is not None:
        writers.submit(write_people_xlsx, df, xlsx, headers, sheet, max_xlsx_rows)
        return write_people_csv(df, csv_path, headers), xlsx
    return write_people_csv(df, csv_path, headers), write_people_xlsx(df, xlsx, headers, sheet, max_xlsx_rows)


def write_people_tables_from(parquet: Path, csv_path: Path, headers: dict[str, str], sheet: str) -> tuple[Path, Path]:
    """`write_people_tables` of a Parquet file's rows: what a background writer is sent instead of the rows (a
    path is sent in no time; 61,000 draws pickled are 17 MB, 0.1 s of the sender's time)."""
    return write_people_tables(pl.read_parquet(parquet), csv_path, headers, sheet)


def read_workbook(path: Path) -> pl.DataFrame:
    """A people's workbook back as text cells, its sheets one after another (a long table continues
    on sheets named …续1, …续2): what `jointdraw verify` compares with the CSV beside it."""
    import fastexcel

    book = fastexcel.read_excel(path)
    return pl.concat([book.load_sheet(name, dtypes="string").to_polars() for name in book.sheet_names], how="vertical")
