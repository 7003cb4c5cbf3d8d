"""Bad files (issue 10): every one gives a clear error naming the department, the file and the
problem, fails only its department, and the run's records still show every other department."""

import json
import os
import shutil

import polars as pl
import pytest
import xlsxwriter

from jointdraw.flows.plan_run import plan_run
from tests.conftest import plan_path

HEADER = "统一社会信用代码,企业名称,主体类型,行政区划代码,行业代码,登记状态,信用风险分类,成立日期"
USCC = ["91440304MATRRNYM0D", "91440100MA6NRCX09X", "91440300MAHKR2UA1J"]  # valid codes (citygen.make_usccs)
ROW = f"{USCC[0]},深圳甲公司,企业,440303,F5211,存续,A类,2019-05-06"


def _objects_file(inbox, dept, name, data: bytes | None = None):
    """Replaces the department's objects file with `name` (written with `data` when given)."""
    for old in (inbox / dept).glob("objects.*"):
        old.unlink()
    path = inbox / dept / name
    if data is not None:
        path.write_bytes(data)
    return path


def _xlsx(path, rows, first_sheet_empty=False, merged_header=False, formula=None):
    book = xlsxwriter.Workbook(path)
    if first_sheet_empty:
        book.add_worksheet("说明")
    sheet = book.add_worksheet("数据")
    for r, line in enumerate(rows):
        for c, value in enumerate(line.split(",")):
            if not (merged_header and r == 0 and c < 2):
                sheet.write_string(r, c, value)
    if merged_header:
        sheet.merge_range(0, 0, 0, 1, "统一社会信用代码")
    if formula:
        sheet.write_formula(1, 1, formula[0], None, formula[1])
    book.close()


UNREADABLE = {  # department → (file, what the message must say)
    "AMR": ("objects.csv", "is empty"),
    "CUL": ("objects.csv", "separated by ';'"),
    "EDU": ("objects.csv", "byte-order mark but is not UTF-8"),
    "EMR": ("objects.csv", "row 3 is not UTF-8"),
    "ENV": ("objects.csv", "looks binary"),
    "FIR": ("objects.xlsx", "cannot be read as an XLSX workbook"),
    "HLT": ("objects.parquet", "cannot be read as Parquet"),
    "HRS": ("objects.xlsx", "the data is on sheet '数据'"),
    "HSG": ("objects.xlsx", "column 2 holds data but has no header"),
    "TRN": ("objects.csv", "names these headers more than once: 企业名称"),
    "URB": ("objects.csv", "no header names a column of objects"),
}


@pytest.fixture(scope="module")
def unreadable_inbox(small_city, tmp_path_factory):
    inbox = tmp_path_factory.mktemp("bad") / "inbox"
    shutil.copytree(small_city / "inbox", inbox)
    good = f"{HEADER}\n{ROW}\n"
    _objects_file(inbox, "AMR", "objects.csv", b"")
    _objects_file(inbox, "CUL", "objects.csv", good.replace(",", ";").encode())
    _objects_file(inbox, "EDU", "objects.csv", b"\xef\xbb\xbf" + good.encode("gbk"))
    _objects_file(inbox, "EMR", "objects.csv", good.encode() + ROW.replace("甲", "乙").encode("gbk") + b"\n")
    _objects_file(inbox, "ENV", "objects.csv", os.urandom(4096))
    _objects_file(inbox, "FIR", "objects.xlsx", b"PK\x03\x04" + os.urandom(600))
    _objects_file(inbox, "HLT", "objects.parquet", b"PAR1" + os.urandom(600))
    _xlsx(_objects_file(inbox, "HRS", "objects.xlsx"), [HEADER, ROW], first_sheet_empty=True)
    _xlsx(_objects_file(inbox, "HSG", "objects.xlsx"), [HEADER, ROW], merged_header=True)
    _objects_file(inbox, "TRN", "objects.csv", f"企业名称,{HEADER}\n甲,{ROW}\n".encode())
    _objects_file(
        inbox,
        "URB",
        "objects.csv",
        (",".join(f"c{i}" for i in range(10_000)) + "\n" + ",".join("x" * 10_000) + "\n").encode(),
    )
    return inbox


def test_unreadable_files_fail_their_departments_with_what_to_fix(
    prefect_server, small_city, unreadable_inbox, tmp_path
):
    with pytest.raises(Exception) as failure:
        plan_run(
            plan=str(plan_path(small_city)),
            inbox=str(unreadable_inbox),
            out=str(tmp_path),
            run_id="bad",
            stop_after="ingest",
        )
    message = str(failure.value)
    assert f"{len(UNREADABLE)} department(s) could not be read" in message
    for dept, (name, says) in UNREADABLE.items():
        line = next(x for x in message.splitlines() if x.strip().startswith(f"- {dept}:"))
        assert f"{dept}/{name}" in line and says in line, line
    assert "Traceback" not in message
    record = json.loads((tmp_path / "runs" / "bad" / "01_ingest" / "stage.failed.json").read_text(encoding="utf-8"))
    read = {f["source"]["path"]: f.get("rows_read") for f in record["files"]}
    assert read["WAT/objects.csv"] > 0  # the good department is read and recorded
    inspectors = {d: n for path, n in read.items() for d in UNREADABLE if path.startswith(f"{d}/inspectors.")}
    assert len(inspectors) == len(UNREADABLE) and all(
        n > 0 for n in inspectors.values()
    )  # the failing departments' other files too
    assert {f["department"] for f in record["failed_departments"]} == set(UNREADABLE)


@pytest.fixture(scope="module")
def odd_rows_inbox(small_city, tmp_path_factory):
    inbox = tmp_path_factory.mktemp("odd") / "inbox"
    shutil.copytree(small_city / "inbox", inbox)
    _objects_file(inbox, "AMR", "objects.csv", f"{HEADER}\n".encode())  # header only
    cul = f"{HEADER}\n{ROW}\n{ROW.replace(USCC[0], USCC[1]).replace('甲', '丙')}\n{USCC[2]},深圳丁"  # the last line cut
    _objects_file(inbox, "CUL", "objects.csv", cul.encode())
    big = ROW.replace("深圳甲公司", "名" * (50_000_000 // 3)).replace(USCC[0], USCC[1])  # a 50 MB field
    _objects_file(inbox, "EDU", "objects.csv", f"{HEADER}\n{ROW}\n{big}\n".encode())
    # a formula cell (its cached value is read), and dates as Excel serial numbers
    serial = ROW.replace("2019-05-06", "43591")
    _xlsx(
        _objects_file(inbox, "EMR", "objects.xlsx"),
        [HEADER, serial],
        formula=('=HYPERLINK("http://x","点我")', "深圳点我公司"),
    )
    return inbox


def test_odd_rows_are_quarantined_or_read_and_a_file_without_rows_fails_its_department(
    prefect_server, small_city, odd_rows_inbox, tmp_path
):
    with pytest.raises(Exception) as failure:
        plan_run(
            plan=str(plan_path(small_city)),
            inbox=str(odd_rows_inbox),
            out=str(tmp_path),
            run_id="odd",
            stop_after="validate",
        )
    assert "AMR: AMR/objects.csv: the file has no data rows" in str(failure.value)
    validate = tmp_path / "runs" / "odd" / "02_validate"
    record = json.loads((validate / "stage.failed.json").read_text(encoding="utf-8"))
    files = {f["file"]: f for f in record["files"]}
    assert files["CUL/objects.csv"]["rows_read"] == 3 and files["CUL/objects.csv"]["quarantined_by_reason"] == {
        "required_missing": 1
    }
    assert (
        files["EDU/objects.csv"]["quarantined_by_reason"] == {"value_too_long": 1}
        and files["EDU/objects.csv"]["rows_accepted"] == 1
    )
    quarantined = pl.read_parquet(validate / "quarantine" / "objects" / "EDU.parquet")
    assert len(json.loads(quarantined["original_values"][0])["name"]) == 50_000_000 // 3  # kept whole: nothing lost
    emr = pl.read_parquet(validate / "accepted" / "objects" / "EMR.parquet")
    assert (
        emr["name"][0] == "深圳点我公司" and str(emr["registered_on"][0]) == "2019-05-06"
    )  # the cached value; Excel serial 43591
    assert {f["department"] for f in record["files"]} == {
        p.name for p in odd_rows_inbox.iterdir()
    }  # every department reported
    assert all(
        f["rows_read"] == f.get("rows_accepted", 0) + f.get("rows_quarantined", 0)
        for f in record["files"]
        if "file_problems" not in f
    )


def test_a_million_bad_rows_stop_the_run_and_every_one_is_in_the_quarantine(prefect_server, small_city, tmp_path):
    inbox = tmp_path / "inbox"
    shutil.copytree(small_city / "inbox", inbox)
    n = 1_000_000
    rows = pl.DataFrame(
        {"统一社会信用代码": [f"9144{i:07d}" for i in range(n)]}
    )  # 11 characters: uscc_length, every one
    rows = rows.with_columns(
        企业名称=pl.lit("深圳某公司"),
        主体类型=pl.lit("企业"),
        行政区划代码=pl.lit("440303"),
        行业代码=pl.lit("F5211"),
        登记状态=pl.lit("存续"),
        信用风险分类=pl.lit("A类"),
    )
    rows.write_csv(_objects_file(inbox, "ENV", "objects.csv"))  # every USCC has a wrong check character
    with pytest.raises(Exception) as failure:
        plan_run(
            plan=str(plan_path(small_city)),
            inbox=str(inbox),
            out=str(tmp_path),
            run_id="million",
            stop_after="validate",
        )
    assert "objects:" in str(failure.value) and "> threshold" in str(failure.value)
    validate = tmp_path / "runs" / "million" / "02_validate"
    quarantined = (
        pl.scan_parquet(validate / "quarantine" / "objects" / "ENV.parquet")
        .select(pl.len(), pl.col("source_line").n_unique())
        .collect()
    )
    assert quarantined.row(0) == (n, n)  # complete: every row, once, with its reason
    assert pl.scan_csv(validate / "quarantine.csv", infer_schema=False).select(pl.len()).collect().item() >= n
    from jointdraw.transforms.storage.xlsxout import (
        read_workbook,  # the workbook for people: the first 100,000 rows, and a last row saying so
    )

    workbook = read_workbook(validate / "quarantine.xlsx")
    assert workbook.height == 100_001 and "仅列出前 100,000 行" in workbook[workbook.columns[0]][-1]
