"""The reader on real files: GBK with Chinese headers, UTF-8 with BOM, XLSX, Parquet, and bad files."""

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from jointdraw.transforms.storage.registry_files import (
    RegistryFile,
    RegistryFileError,
    read_registry,
    scan_inbox,
    sniff_encoding,
)

ZH_CSV = (
    "统一社会信用代码,企业名称,主体类型,行政区划代码,成立日期,登记状态,信用风险分类\n"
    "91350100M000100Y43,深圳市华润（深圳）贸易有限公司,企业,440305,2020/01/05,存续,B\n"
    "914403001922038216,福田区鑫盛便利店,个体工商户,440304,2019-12-31,注销,A\n"
)


def _file(tmp_path, name, data: bytes, dept="ENV"):
    folder = tmp_path / "inbox" / dept
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return RegistryFile(dept, name.split(".")[0], folder / name, f"{dept}/{name}")


def _expected() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "uscc": ["91350100M000100Y43", "914403001922038216"],
            "name": ["深圳市华润（深圳）贸易有限公司", "福田区鑫盛便利店"],
            "entity_type": ["企业", "个体工商户"],
            "district_code": ["440305", "440304"],
            "registered_on": ["2020/01/05", "2019-12-31"],
            "status": ["存续", "注销"],
            "credit_risk": ["B", "A"],
        }
    )


@pytest.mark.parametrize("encoding, sniffed", [("gbk", "gb18030"), ("utf-8-sig", "utf-8-sig"), ("utf-8", "utf-8")])
def test_csv_in_each_encoding_with_chinese_headers(tmp_path, encoding, sniffed):
    f = _file(tmp_path, "objects.csv", ZH_CSV.encode(encoding))
    raw = read_registry(f)
    assert raw.encoding == sniffed
    # headers mapped to SPEC names; values exactly as submitted; lines as a spreadsheet numbers them
    assert_frame_equal(raw.frame.drop("source_file", "source_line"), _expected())
    assert raw.frame["source_line"].to_list() == [2, 3]
    assert raw.frame["source_file"].unique().to_list() == ["ENV/objects.csv"]


def test_xlsx_keeps_codes_as_text(tmp_path):
    path = tmp_path / "inbox" / "EMR" / "objects.xlsx"
    path.parent.mkdir(parents=True)
    pl.read_csv(ZH_CSV.encode(), infer_schema=False).write_excel(path)
    raw = read_registry(RegistryFile("EMR", "objects", path, "EMR/objects.xlsx"))
    assert_frame_equal(raw.frame.drop("source_file", "source_line"), _expected())


def test_parquet_lists_and_dates_become_text(tmp_path):
    import datetime as dt

    path = tmp_path / "inbox" / "HLT" / "objects.parquet"
    path.parent.mkdir(parents=True)
    pl.DataFrame(
        {
            "uscc": ["91350100M000100Y43"],
            "registered_on": [dt.date(2020, 1, 5)],
            "tags": [["食品经营许可证", "经营异常名录"]],
        }
    ).write_parquet(path)
    raw = read_registry(RegistryFile("HLT", "objects", path, "HLT/objects.parquet")).frame
    assert raw.row(0, named=True) | {} == {
        "uscc": "91350100M000100Y43",
        "registered_on": "2020-01-05",
        "tags": "食品经营许可证;经营异常名录",
        "source_file": "HLT/objects.parquet",
        "source_line": 2,
    }


def test_unmapped_headers_are_reported(tmp_path):
    f = _file(tmp_path, "objects.csv", "uscc,备注\n91350100M000100Y43,x\n".encode())
    assert read_registry(f).unmapped_headers == ["备注"]


@pytest.mark.parametrize(
    "data, needle",
    [
        (b"", "empty"),
        (b"\x00\x01\x02binary\x00", "binary"),
        (b"uscc,name\n\xff\xfe\xfa\x80,x\n", "neither UTF-8 nor GB18030"),
        ("uscc,统一社会信用代码\n1,2\n".encode(), "several headers name the same column"),
    ],
)
def test_unreadable_files_name_the_file_and_the_reason(tmp_path, data, needle):
    f = _file(tmp_path, "objects.csv", data)
    with pytest.raises(RegistryFileError) as e:
        read_registry(f)
    assert needle in str(e.value) and "objects.csv" in str(e.value)


def test_corrupt_xlsx_and_parquet(tmp_path):
    for name, what in (("objects.xlsx", "XLSX"), ("inspectors.parquet", "Parquet")):
        f = _file(tmp_path, name, b"PK\x03\x04 not really a zip")
        with pytest.raises(RegistryFileError, match=what):
            read_registry(f)


def test_a_workbook_whose_first_sheet_is_empty_says_where_its_data_is(tmp_path):
    import io

    import xlsxwriter

    for name, rows, why in (
        (
            "objects.xlsx",
            [["uscc", "name"], ["91350100M000100Y43", "x"]],
            "its first sheet is empty; the data is on sheet '名录'",
        ),
        ("inspectors.xlsx", [], "has no data on any sheet"),
    ):
        data = io.BytesIO()
        book = xlsxwriter.Workbook(data, {"in_memory": True})
        book.add_worksheet("说明")
        sheet = book.add_worksheet("名录")
        for i, row in enumerate(rows):
            sheet.write_row(i, 0, row)
        book.close()
        with pytest.raises(RegistryFileError, match=why):
            read_registry(_file(tmp_path, name, data.getvalue()))


def test_sniff_prefers_bom_then_utf8_then_gb18030(tmp_path):
    for data, want in (
        (b"\xef\xbb\xbfa\n", "utf-8-sig"),
        ("名称\n".encode(), "utf-8"),
        ("名称\n".encode("gbk"), "gb18030"),
    ):
        p = tmp_path / "f.csv"
        p.write_bytes(data)
        assert sniff_encoding(p) == want


def test_an_encoding_error_names_the_spreadsheet_row_not_the_text_line(tmp_path):
    """Row 3's address has two line breaks inside its quotes (one row in a spreadsheet, three text
    lines); the bad byte is in row 4, text line 6. The message says row 4, as source_line counts."""
    good = (
        'uscc,name,address\n91440300MA5FXT4K1Q,甲公司,深圳\n91440300MA5FXT4K2Q,乙公司,"深圳市\n南山区\n科技园"\n'
    ).encode()
    f = _file(tmp_path, "objects.csv", good + b"91440300MA5FXT4K3Q,\xff\xfe,x\n")
    with pytest.raises(RegistryFileError, match=r"row 4 is not UTF-8"):
        read_registry(f)
    f = _file(tmp_path, "objects.csv", good + b"91440300MA5FXT4K4Q,ok,x\n")
    assert read_registry(f).frame["source_line"].to_list() == [2, 3, 4]


def test_scan_inbox_finds_files_and_says_what_it_ignores(tmp_path):
    _file(tmp_path, "objects.csv", b"uscc\n", dept="AMR")
    _file(tmp_path, "notes.docx", b"x", dept="AMR")
    _file(tmp_path, "items.csv", b"item_id\n", dept="ENV")
    _file(tmp_path, "items.xlsx", b"x", dept="ENV")
    found = scan_inbox(tmp_path / "inbox")
    assert [f.relative for f in found.files] == ["AMR/objects.csv"]
    assert [i[0] for i in found.ignored] == ["AMR/notes.docx"]
    assert "two items files" in str(found.problems[0])


# Exports as systems write them (issue 16): a title above the header, notes below the data.
TITLED = (
    "深圳市应急管理局 检查对象名录导出（2026年11月30日）,,\n"
    ",,\n"
    "统一社会信用代码,企业名称,登记状态\n"
    "91350100M000100Y43,深圳市华润贸易有限公司,存续\n"
    ",,\n"  # a blank row inside the data: skipped, listed
    "共计,,\n"  # one value, but not below the data: a data row (validation quarantines it)
    '914403001922038216,"华为技术\n有限公司",存续\n'  # a cell over two text lines is one spreadsheet row
    "\n"
    "共 3 条记录\n"
    "导出人：张三　导出时间：2026-11-30 09:30\n"
)


def test_a_title_above_the_header_and_notes_below_the_data_are_skipped_and_listed(tmp_path):
    raw = read_registry(_file(tmp_path, "objects.csv", TITLED.encode("gbk")))
    assert raw.header_line == 3
    assert raw.frame["uscc"].to_list() == ["91350100M000100Y43", "共计", "914403001922038216"]
    assert raw.frame["source_line"].to_list() == [4, 6, 7]  # the spreadsheet's rows, not text lines
    assert [(s.line, s.why, s.text) for s in raw.skipped] == [
        (1, "title", "深圳市应急管理局 检查对象名录导出（2026年11月30日）"),
        (2, "blank", ""),
        (5, "blank", ""),
        (8, "blank", ""),
        (9, "note", "共 3 条记录"),
        (10, "note", "导出人：张三　导出时间：2026-11-30 09:30"),
    ]


def test_an_xlsx_export_with_a_merged_title_keeps_the_sheet_rows(tmp_path):
    import xlsxwriter

    path = tmp_path / "inbox" / "EMR" / "objects.xlsx"
    path.parent.mkdir(parents=True)
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet()
    sheet.merge_range(1, 0, 1, 2, "深圳市应急管理局 检查对象名录导出（2026年11月30日）")  # row 2: row 1 is empty
    sheet.write_row(3, 0, ["统一社会信用代码", "企业名称", "登记状态"])  # row 4
    sheet.write_row(4, 0, ["91350100M000100Y43", "深圳市华润贸易有限公司", "存续"])
    sheet.write_number(5, 0, 914403001922038216)  # a code typed into a number cell: its last digits are gone
    sheet.write_row(5, 1, ["华为技术有限公司", "存续"])
    sheet.write_string(8, 0, "合计：2 户")
    book.close()
    raw = read_registry(RegistryFile("EMR", "objects", path, "EMR/objects.xlsx"))
    assert raw.header_line == 4
    assert raw.frame["source_line"].to_list() == [5, 6]
    assert raw.frame["uscc"].to_list() == ["91350100M000100Y43", "914403001922038272"]
    assert [(s.line, s.why) for s in raw.skipped] == [
        (1, "blank"),
        (2, "title"),
        (3, "blank"),
        (7, "blank"),
        (8, "blank"),
        (9, "note"),
    ]


def test_without_a_title_the_first_row_is_the_header(tmp_path):
    raw = read_registry(_file(tmp_path, "objects.csv", ZH_CSV.encode("gbk")))
    assert raw.header_line == 1 and raw.skipped == () and raw.frame["source_line"].to_list() == [2, 3]


def test_links_that_leave_the_inbox_are_refused_with_the_path_named(tmp_path):
    """Issue 18: a file or a department folder linking outside the inbox (even /etc/passwd) is never read."""
    _file(tmp_path, "items.csv", b"item_id\nAMR-001\n", dept="AMR")
    (tmp_path / "inbox" / "AMR" / "objects.csv").symlink_to("/etc/passwd")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "objects.csv").write_bytes(b"uscc\n")
    (tmp_path / "inbox" / "ENV").symlink_to(outside)
    inside = tmp_path / "inbox" / "HLT"
    inside.mkdir()
    (inside / "objects.csv").symlink_to(tmp_path / "inbox" / "AMR" / "items.csv")  # a link within the inbox is fine
    found = scan_inbox(tmp_path / "inbox")
    problems = {p.file: p.reason for p in found.problems}
    assert "/etc/passwd" in problems["AMR/objects.csv"] and "outside the inbox" in problems["ENV/"]
    assert [f.relative for f in found.files] == ["AMR/items.csv", "HLT/objects.csv"]


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
@pytest.mark.parametrize("batch_rows", [1, 2, 3, 5])
def test_read_in_batches_the_rows_lines_and_skipped_rows_are_the_same(tmp_path, encoding, batch_rows):
    """A city's export is read a batch of rows at a time (issue 23): however the batches fall — a blank
    row or the notes at the end split across batches — the rows, their lines and what was skipped are
    what one read of the whole file gives. UTF-8 is streamed by polars, GBK sliced after decoding."""
    long = TITLED.replace(",,\n共计", ",,\n,,\n914403001922038217,甲,存续\n,,\n共计", 1)  # blanks further in
    f = _file(tmp_path, "objects.csv", long.encode(encoding))
    whole, batched = read_registry(f, batch_rows=10**6), read_registry(f, batch_rows=batch_rows)
    assert_frame_equal(batched.frame, whole.frame)
    assert batched.skipped == whole.skipped and batched.header_line == whole.header_line == 3
    assert [s.why for s in whole.skipped] == ["title", "blank", "blank", "blank", "blank", "blank", "note", "note"]


def test_a_parquet_registry_read_in_batches_numbers_every_row(tmp_path):
    path = tmp_path / "inbox" / "HLT" / "objects.parquet"
    path.parent.mkdir(parents=True)
    pl.DataFrame({"uscc": [f"9144030000000000{i:02d}" for i in range(7)], "tags": [["a", "b"]] * 7}).write_parquet(path)
    raw = read_registry(RegistryFile("HLT", "objects", path, "HLT/objects.parquet"), batch_rows=3)
    assert raw.frame["source_line"].to_list() == list(range(2, 9)) and raw.frame["tags"][0] == "a;b"
