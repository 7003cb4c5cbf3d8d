"""Builds data/samples/market_regulation_export/objects.xlsx from the hand-written objects.csv beside it,
the way a market-regulation system's "export to Excel" lays a sheet out: a merged title row, a blank
row, the header, the rows (codes as text cells, 序号 as numbers, dates as date cells), a blank row and
the export notes. One code carries a zero-width space, as some systems add to keep a code text.

    .venv/bin/python scripts/sample_export_xlsx.py
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import xlsxwriter

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples" / "market_regulation_export"


def main() -> None:
    lines = list(csv.reader((SAMPLE / "objects.csv").read_text(encoding="gbk").splitlines()))
    title, header = lines[0][0], lines[2]
    rows = [r for r in lines[3:] if len(r) == len(header)]
    notes = [r[0] for r in lines[3 + len(rows) :] if r]
    book = xlsxwriter.Workbook(SAMPLE / "objects.xlsx")
    book.set_properties({"created": dt.datetime(2026, 11, 30, 10, 12, 45)})  # fixed: the same bytes every time
    sheet = book.add_worksheet("检查对象名录")
    date = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.merge_range(0, 0, 0, len(header) - 1, title)
    sheet.write_row(2, 0, header)
    for i, row in enumerate(rows, start=3):
        for j, (name, value) in enumerate(zip(header, row, strict=True)):
            if name == "序号":
                sheet.write_number(i, j, int(value))
            elif name == "成立日期" and len(value) == 10 and value[4] == "-":
                sheet.write_datetime(i, j, dt.datetime.strptime(value, "%Y-%m-%d"), date)
            elif name == "统一社会信用代码" and row[0] == "5":
                sheet.write_string(i, j, value + "\u200b")
            elif value:
                sheet.write_string(i, j, value.lstrip("'"))
    for k, note in enumerate(notes):
        sheet.write_string(3 + len(rows) + 1 + k, 0, note)
    book.close()


if __name__ == "__main__":
    main()
