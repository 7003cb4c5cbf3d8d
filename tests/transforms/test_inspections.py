"""Inspections files (`<DEPT>/inspections.*`) through the registries' reader and data contract, on real
files: a GBK CSV with Chinese headers and values, an XLSX export with a title row and English headers;
bad rows quarantined with file, line, column and rule; a file without a required column fails its
department."""

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import xlsxwriter

from jointdraw.transforms.contract.department_files import file_failures, validate_department_files
from jointdraw.transforms.contract.suites import inspection_rules
from jointdraw.transforms.contract.validation import Contract
from jointdraw.transforms.normalise import dictionary_columns
from jointdraw.transforms.storage.ingest_files import ingest_file
from jointdraw.transforms.storage.registry_files import scan_inbox

RUN_DATE = dt.date(2026, 3, 1)
A = "91350100M000100Y43"  # valid (worked by hand in test_uscc.py)
B = "914403001922038216"  # valid

GBK_CSV = (
    "统一社会信用代码,企业名称,检查部门,检查日期,检查类型,层级\n"
    f"{A},深圳市华润贸易有限公司,ENV,2026/01/05,双随机抽查,市级\n"  # 2 accepted: random, city
    f"{B},福田区鑫盛便利店,ENV,2026-02-10,投诉举报,区级\n"  # 3 accepted: complaint, district
    "91350100M000100Y44,某某公司,ENV,2026-02-11,许可核查,市级\n"  # 4 last character wrong
    f"{B},福田区鑫盛便利店,ENV,2026-02-30,转办交办,市级\n"  # 5 no 30 February
    f"{B},福田区鑫盛便利店,ENV,2026-02-12,专项整治,市级\n"  # 6 not a kind of the vocabulary
    f"{B},福田区鑫盛便利店,ENV,2026-12-01,其他,市级\n"  # 7 after the run date: has not happened
    f"{A},深圳市华润贸易有限公司,ENV,2026/01/05,双随机抽查,市级\n"  # 8 line 2 again: would count twice
    f"{B},福田区鑫盛便利店,XYZ,2026-02-13,其他,区级\n"  # 9 no such department
    ",无名商户,ENV,2026-02-14,其他,区级\n"  # 10 no USCC
    f"{B},福田区鑫盛便利店,ENV,2026-02-15,其他,月球\n"  # 11 not a level
)


def _inbox_file(tmp_path, dept: str, name: str, data: bytes | None = None):
    folder = tmp_path / "inbox" / dept
    folder.mkdir(parents=True, exist_ok=True)
    if data is not None:
        (folder / name).write_bytes(data)
    return folder / name


def _ingest_and_validate(tmp_path, dept: str):
    """The inbox's inspections file of `dept` through ingest and the contract, as the stages run them."""
    inbox, ingest_dir, out_dir = tmp_path / "inbox", tmp_path / "01_ingest", tmp_path / "02_validate"
    [file] = [f for f in scan_inbox(inbox).files if f.department == dept]
    assert file.kind == "inspections"
    read = ingest_file(file, inbox, ingest_dir)
    assert "error" not in read, read
    typed = {dept: ingest_dir / "inspections" / f"{dept}.parquet"}
    [record] = validate_department_files("inspections", typed, ingest_dir, inspection_rules(RUN_DATE), out_dir)
    quarantined = pl.read_parquet(out_dir / "quarantine" / "inspections" / f"{dept}.parquet")
    accepted = pl.read_parquet(out_dir / "accepted" / "inspections" / f"{dept}.parquet")
    assert record["rows_read"] == record["rows_accepted"] + record["rows_quarantined"] == read["rows_read"]
    return read, quarantined, accepted


def test_a_gbk_csv_with_chinese_headers_and_values_is_read_and_its_bad_rows_quarantined(tmp_path):
    _inbox_file(tmp_path, "ENV", "inspections.csv", GBK_CSV.encode("gbk"))
    read, quarantined, accepted = _ingest_and_validate(tmp_path, "ENV")
    assert read["encoding"] == "gb18030" and read["unmapped_headers"] == []
    got = {
        line: (reason, column) for line, reason, column in quarantined.select("source_line", "reason", "column").rows()
    }
    assert got == {
        4: ("uscc_check_char", "uscc"),
        5: ("date_unparseable", "inspection_date"),
        6: ("enum_unknown", "inspection_kind"),
        7: ("date_implausible", "inspection_date"),
        8: ("duplicate_row", ""),
        9: ("department_unknown", "department"),
        10: ("required_missing", "uscc"),
        11: ("enum_unknown", "level"),
    }
    assert set(quarantined["source_file"]) == {"ENV/inspections.csv"}
    # the row as submitted travels with its verdict (what the department has to correct)
    feb30 = json.loads(quarantined.filter(pl.col("source_line") == 5)["original_values"].item())
    assert feb30["inspection_date"] == "2026-02-30" and feb30["inspection_kind"] == "转办交办"
    assert accepted.select(
        "source_line", "uscc", "department", "inspection_date", "inspection_kind", "level"
    ).rows() == [
        (2, A, "ENV", dt.date(2026, 1, 5), "random", "city"),
        (3, B, "ENV", dt.date(2026, 2, 10), "complaint", "district"),
    ]


def test_an_xlsx_export_with_a_title_english_headers_and_date_cells(tmp_path):
    path = _inbox_file(tmp_path, "EMR", "inspections.xlsx")
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet()
    sheet.write(0, 0, "深圳市应急管理局 检查记录导出（2026年2月28日）")  # row 1: title, row 2: blank, row 3: header
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    for col, header in enumerate(("USCC", "department", "date", "kind", "level")):
        sheet.write_string(2, col, header)
    rows = [
        (A, "EMR", dt.datetime(2026, 1, 20), "licence", "city"),  # row 4, a date cell
        (B, "EMR", "2026年02月03日", "Referral", "province"),  # row 5, a date as text, the kind capitalised
        (B, "EMR", dt.datetime(2026, 2, 4), "inspection", "city"),  # row 6: not a kind
        (B, "EMR", dt.datetime(2026, 2, 5), "complaint", ""),  # row 7: no level
    ]
    for r, (uscc, dept, date, kind, level) in enumerate(rows, start=3):
        sheet.write_string(r, 0, uscc)
        sheet.write_string(r, 1, dept)
        if isinstance(date, dt.datetime):
            sheet.write_datetime(r, 2, date, day)
        else:
            sheet.write_string(r, 2, date)
        sheet.write_string(r, 3, kind)
        if level:
            sheet.write_string(r, 4, level)
    book.close()
    read, quarantined, accepted = _ingest_and_validate(tmp_path, "EMR")
    assert read["header_line"] == 3
    assert quarantined.select("source_file", "source_line", "reason", "column").rows() == [
        ("EMR/inspections.xlsx", 6, "enum_unknown", "inspection_kind"),
        ("EMR/inspections.xlsx", 7, "required_missing", "level"),
    ]
    assert accepted.select("source_line", "inspection_date", "inspection_kind", "level").rows() == [
        (4, dt.date(2026, 1, 20), "licence", "city"),
        (5, dt.date(2026, 2, 3), "referral", "province"),
    ]


def test_an_inspections_file_without_a_required_column_fails_its_department(tmp_path):
    no_level = f"统一社会信用代码,检查部门,检查日期,检查类型\n{A},AMR,2026-01-05,双随机抽查\n"
    _inbox_file(tmp_path, "AMR", "inspections.csv", no_level.encode("utf-8"))
    [file] = scan_inbox(tmp_path / "inbox").files
    assert "error" not in ingest_file(file, tmp_path / "inbox", tmp_path / "01_ingest")
    [failed] = file_failures(Contract.ephemeral(), ("inspections",), tmp_path / "01_ingest")
    assert failed["file"] == "AMR/inspections.csv" and failed["department"] == "AMR"
    assert failed["file_problems"] == ["required column `level` is missing"]


def test_ingest_writes_the_columns_of_few_distinct_values_dictionary_encoded(tmp_path):
    """The typed file's classes, enums, dates and bookkeeping columns are dictionary-encoded (the merge and the
    contract read them faster), its codes and text plain (a dictionary of distinct values only costs time)."""
    _inbox_file(tmp_path, "ENV", "inspections.csv", GBK_CSV.encode("gbk"))
    [file] = scan_inbox(tmp_path / "inbox").files
    ingest_file(file, tmp_path / "inbox", tmp_path / "01_ingest")

    def encoded(path: Path) -> dict[str, bool]:
        row_group = pq.ParquetFile(path).metadata.row_group(0)
        return {
            row_group.column(i).path_in_schema: "RLE_DICTIONARY" in row_group.column(i).encodings
            for i in range(row_group.num_columns)
        }

    typed = encoded(tmp_path / "01_ingest" / "inspections" / "ENV.parquet")
    assert {c for c, dictionary in typed.items() if dictionary} == set(dictionary_columns("inspections"))
    assert "inspection_date" in dictionary_columns("inspections")  # a date column, not only text
    assert not typed["uscc"] and not typed["name"] and typed["inspection_kind"] and typed["source_file"]
    # the rows as submitted too: their repeated text (dates, kinds, levels, the file's name), not their codes
    raw = encoded(tmp_path / "01_ingest" / "raw" / "ENV" / "inspections.parquet")
    assert {c for c, dictionary in raw.items() if dictionary} == {
        "inspection_date",
        "inspection_kind",
        "level",
        "source_file",
    }
    assert not raw["uscc"] and not raw["name"] and not raw["department"] and not raw["source_line"]
