"""The worksheet rows made a column at a time (transforms/storage/sheetrows.py) are the bytes
xlsxwriter writes cell by cell: every workbook is written both ways and compared byte for byte."""

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jointdraw.transforms.storage import sheetrows, xlsxout

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

TEXTS = [
    "plain",
    "",
    None,
    " leading space",
    "trailing space ",
    "\ttab first",
    "line\nbreak",
    "ends with a newline\n",
    'a&b<c>d"e',
    "_x0041_ is an escape already",
    "_X00a1_ and _x00G1_",
    "control\x01 and \x1f and \x0b and \r",
    "\ufffe and \uffff",
    "<r><t>a rich string</t></r>",
    "<r>not rich",
    "\u3000全角空格开头",
    "不间断空格结尾\xa0",
    '=HYPERLINK("http://x")',
    "统一社会信用代码 91440300MA5XXXXX0X",
]


def _both_ways(
    df: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str = "t"
) -> tuple[bytes, bytes]:
    """(made a column at a time, written cell by cell)."""
    fast = xlsxout.write_people_xlsx(df, tmp_path / f"{name}-fast.xlsx", {"a": "甲"}, "表").read_bytes()
    with monkeypatch.context() as m:
        m.setattr(xlsxout, "sheet_rows_supported", lambda table: False)
        slow = xlsxout.write_people_xlsx(df, tmp_path / f"{name}-slow.xlsx", {"a": "甲"}, "表").read_bytes()
    return fast, slow


def test_every_kind_of_cell_is_the_same_bytes(tmp_path, monkeypatch):
    n = len(TEXTS)
    dates = [dt.date(2026, 1, 1), None, dt.date(1900, 2, 28), dt.date(1900, 3, 1), dt.date(1899, 12, 30)]
    df = pl.DataFrame(
        {
            "a": TEXTS,
            "count": [i - 3 if i % 4 else None for i in range(n)],
            "big": [2**53 - 1 - i for i in range(n)],  # still a number: a spreadsheet holds it exactly
            "score": [2**63 + i for i in range(n)],  # a 64-bit score: text
            "day": (dates * n)[:n],
            "flag": [True, False, None] * (n // 3) + [True] * (n % 3),
            "items": [["I1", "I2"], [], None] * (n // 3) + [["x"]] * (n % 3),
        },
        schema_overrides={"score": pl.UInt64},
    )
    assert xlsxout.sheet_rows_supported(xlsxout._cells(df))
    fast, slow = _both_ways(df, tmp_path, monkeypatch)
    assert fast == slow


def test_empty_rows_empty_tables_and_dates_never_written(tmp_path, monkeypatch):
    # a row of nothing is no row; a date column without a date gives the workbook no date style
    blank_rows = pl.DataFrame(
        {"a": ["x", None, "", None], "day": [None, None, None, None]}, schema={"a": pl.String, "day": pl.Date}
    )
    empty = pl.DataFrame(schema={"a": pl.String, "n": pl.Int64, "day": pl.Date})
    nothing_after_header = pl.DataFrame({"a": [None, ""], "n": [None, None]}, schema={"a": pl.String, "n": pl.Int64})
    for i, df in enumerate((blank_rows, empty, nothing_after_header)):
        fast, slow = _both_ways(df, tmp_path, monkeypatch, f"t{i}")
        assert fast == slow, i


def test_a_long_table_continues_on_sheets_and_in_chunks_the_same(tmp_path, monkeypatch):
    monkeypatch.setattr(xlsxout, "SHEET_ROWS", 4)  # 10 rows: sheets 表, 表续1, 表续2
    monkeypatch.setattr(sheetrows, "CHUNK_ROWS", 3)
    df = pl.DataFrame(
        {"a": [f"行{i}" if i % 5 else None for i in range(10)], "day": [dt.date(2026, 3, i + 1) for i in range(10)]}
    )
    fast, slow = _both_ways(df, tmp_path, monkeypatch)
    assert fast == slow


def test_what_it_does_not_model_is_written_cell_by_cell():
    assert not xlsxout.sheet_rows_supported(pl.DataFrame({"x": [0.5]}))  # floats: Python's .16G
    assert not xlsxout.sheet_rows_supported(pl.DataFrame({"x": [dt.datetime(2026, 1, 1, 8)]}))
    assert not xlsxout.sheet_rows_supported(
        pl.DataFrame({"x": ["长" * (sheetrows.SHORT_TEXT + 1)]})
    )  # cut by xlsxwriter
    assert xlsxout.sheet_rows_supported(pl.DataFrame({"x": ["长" * sheetrows.SHORT_TEXT]}))


@SETTINGS
@given(
    st.lists(
        st.tuples(st.one_of(st.none(), st.text(max_size=12)), st.one_of(st.none(), st.integers(-(2**40), 2**40))),
        min_size=1,
        max_size=12,
    )
)
def test_any_text_is_the_same_bytes(tmp_path_factory, values):
    tmp_path = tmp_path_factory.mktemp("sheetrows")
    df = pl.DataFrame(
        {"a": [v[0] for v in values], "n": [v[1] for v in values]}, schema={"a": pl.String, "n": pl.Int64}
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast, slow = _both_ways(df, tmp_path, monkeypatch)
    assert fast == slow
