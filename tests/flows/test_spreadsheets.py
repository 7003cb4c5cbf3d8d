"""Every published XLSX opened by a real spreadsheet application (LibreOffice Calc, headless; installed
by scripts/apps.sh): what a person sees in each cell is what we published, every code to the last digit.

LibreOffice reads XLSX as Excel and WPS do, and turns an all-digit USCC typed into a number into
9.14403001922038E+17: the test would see it. The CSV beside each workbook is the reference; the
only differences allowed are the CSV's formula guard (a leading ' before = + - @), which a text cell
does not need, and an empty text, which a spreadsheet shows as an empty cell.
"""

import shutil
import subprocess

import polars as pl
import pytest

from jointdraw.transforms.storage.bundle import bundle_file

TABLES = [
    "audit/draws",
    "regulator/joint_tasks",
    "regulator/unassigned",
    "regulator/team",  # issue 21: roles, leaders (组长) and pools in words
    "public/notice",
    "regulator/quarantine/quarantine",
]
CODE_HEADERS = {
    "统一社会信用代码",
    "联合任务编号",
    "抽查事项编号",
    "抽查任务编号",
    "执法检查人员编号",
    "人员编号",
    "评分",
    "行政区划代码",
    "计划编号",
}


def _opened_by_libreoffice(paths, out_dir, tmp_path):
    """Each workbook's first sheet as LibreOffice shows it, saved as UTF-8 CSV."""
    soffice = shutil.which("soffice")
    if soffice is None:
        pytest.fail("LibreOffice is not installed: run scripts/apps.sh (the test command does)")
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation=file://{tmp_path}/lo-profile",
            "--headless",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76,1",
            "--outdir",
            str(out_dir),
            *map(str, paths),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    return {p.stem: pl.read_csv(out_dir / f"{p.stem}.csv", infer_schema=False) for p in paths}


@pytest.fixture(scope="module")
def bundle(dirty_run):
    return dirty_run.parent.parent / "published" / "SZ-2026-ANNUAL"


def assert_workbooks_show_what_was_published(bundle, tables, tmp_path) -> dict[str, pl.DataFrame]:
    """Opens each `<table>.xlsx` of `bundle` in LibreOffice and compares every cell with `<table>.csv`;
    returns the tables as LibreOffice showed them."""
    seen = _opened_by_libreoffice([bundle / f"{t}.xlsx" for t in tables], tmp_path / "lo", tmp_path)
    for table in tables:
        ours = pl.read_csv(bundle / f"{table}.csv", infer_schema=False)
        ours = ours.with_columns(pl.all().str.replace(r"^'([=+\-@\t\r])", "${1}"))  # the CSV's formula guard
        ours = ours.with_columns(pl.when(pl.all() != "").then(pl.all()))  # an empty text and an empty cell look alike
        got = seen[table.split("/")[-1]]
        assert got.columns == ours.columns, table
        assert got.height == ours.height, table
        assert ours.height > 0 or table.endswith("unassigned"), table  # the dirty city's tasks are all staffed
        for column in ours.columns:
            mismatch = ours.with_row_index().filter(pl.col(column).ne_missing(got[column]))
            assert mismatch.is_empty(), (
                table,
                column,
                mismatch.head(3).to_dicts(),
                got[column].gather(mismatch["index"].head(3)),
            )
    return seen


def test_every_published_workbook_shows_every_cell_as_published(bundle, tmp_path):
    seen = assert_workbooks_show_what_was_published(bundle, TABLES, tmp_path)
    checked_codes = sum(df[c].drop_nulls().len() for df in seen.values() for c in df.columns if c in CODE_HEADERS)
    # all-digit USCCs are the ones a CSV loses in a spreadsheet: there are some, and they survived
    notice = seen["notice"]
    digits = notice.filter(pl.col("统一社会信用代码").str.contains(r"^\d{18}$"))
    assert digits.height > 10 and checked_codes > 1000


def test_the_workbooks_are_the_same_bytes_on_a_rerun(bundle, tmp_path):
    from jointdraw.transforms.documents.people_headers import DRAWS
    from jointdraw.transforms.storage.xlsxout import write_people_xlsx

    draws = pl.read_parquet(bundle_file(bundle, "draws.parquet"))
    first = write_people_xlsx(draws, tmp_path / "a.xlsx", DRAWS, "抽取结果").read_bytes()
    assert first == bundle_file(bundle, "draws.xlsx").read_bytes()
    assert first == write_people_xlsx(draws, tmp_path / "b.xlsx", DRAWS, "抽取结果").read_bytes()
