"""The privacy scan of the public part (transforms/privacy.py) on literal files of each kind it reads."""

from __future__ import annotations

import polars as pl

from jointdraw.transforms.privacy import public_leaks
from jointdraw.transforms.storage.xlsxout import write_people_xlsx


def test_a_phone_is_found_in_any_cell_or_header_of_any_table(tmp_path):
    """A phone number in a workbook's text cell, a Parquet file's number column or a CSV's header is a leak,
    reported once per file in the files' order; the clean tables beside them are not (a 12-digit number, a
    phone inside a code, a date)."""
    clean = pl.DataFrame({"name": ["某某餐饮店", "913100001234567890"], "note": ["2026-03-01", "139123456781"]})
    write_people_xlsx(clean, tmp_path / "a_clean.xlsx", {"name": "名称", "note": "备注"})
    clean.write_csv(tmp_path / "b_clean.csv")
    clean.with_columns(count=pl.lit(13912345678 * 10)).write_parquet(tmp_path / "c_clean.parquet")
    with_phone = clean.with_columns(note=pl.Series(["联系 13912345678", None]))
    write_people_xlsx(with_phone, tmp_path / "d_cell.xlsx", {"name": "名称", "note": "备注"})
    clean.with_columns(count=pl.lit(13912345678)).write_parquet(tmp_path / "e_number.parquet")
    clean.rename({"note": "电话 0755-12345678"}).write_csv(tmp_path / "f_header.csv")
    assert public_leaks(tmp_path) == [
        "d_cell.xlsx: a phone number (139…)",
        "e_number.parquet: a phone number (139…)",
        "f_header.csv: a phone number (075…)",
    ]
