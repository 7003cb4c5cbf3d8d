"""The code tables in `data/reference/` (districts, industries, credit classes, departments, result codes).

Copied from ../shared/reference (GB/T 2260, GB/T 4754-2017, practice of provincial
platforms). Another city replaces `districts.csv`; nothing else is wired to Shenzhen.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import polars as pl

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "data" / "reference"


@cache
def reference_table(name: str) -> pl.DataFrame:
    """One code table, every column a string (codes keep their leading zeros)."""
    return pl.read_csv(REFERENCE_DIR / f"{name}.csv", infer_schema=False)


def district_codes() -> list[str]:
    return reference_table("districts_shenzhen")["district_code"].to_list()


def industry_sections() -> list[str]:
    return reference_table("industry_sections")["section"].to_list()


def department_names() -> dict[str, str]:
    """Department code → Chinese name."""
    t = reference_table("departments")
    return dict(zip(t["code"], t["name_zh"], strict=True))
