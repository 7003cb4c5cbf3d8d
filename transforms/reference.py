"""The code tables in `data/reference/` (districts, industries, entity types, statuses, credit classes,
departments, result codes).

Districts, credit classes, departments and result codes copied from ../shared/reference (GB/T
2260, practice of provincial platforms); `districts_shenzhen.csv` gains `aliases` (南山, 龙华新区,
大鹏新区, 前海深港合作区 …). `industries_gbt4754_2017.csv` is the whole GB/T 4754-2017 with its
2019 amendment (sections to classes; two public copies compared, disagreements settled by a
third); `entity_types.csv` the registration authorities' type-code table (市场主体类型代码,
cross-checked across six public copies); `object_statuses.csv` the status wordings registration
systems print. Another city replaces `districts_shenzhen.csv`; nothing else is wired to Shenzhen.
Ours: `result_codes.csv` gains `category` (none: 未发现问题; problem: a finding; status: the
entity's state, e.g. 注销) and `closes_entity` (the entity is gone: the next draw leaves it
out); `inspection_methods.csv` (检查方式) and `follow_up_actions.csv` (后续处置).
"""

from __future__ import annotations

from functools import cache

import polars as pl

from jointdraw.transforms.storage.packaged import reference_dir


@cache
def reference_table(name: str) -> pl.DataFrame:
    """One code table, every column a string (codes keep their leading zeros)."""
    return pl.read_csv(reference_dir() / f"{name}.csv", infer_schema=False)


def district_codes() -> list[str]:
    return reference_table("districts_shenzhen")["district_code"].to_list()


def industry_sections() -> list[str]:
    """The 20 sections (门类) A–T of GB/T 4754-2017."""
    t = reference_table("industries_gbt4754_2017")
    return t.filter(pl.col("level") == "section")["code"].to_list()


def department_names() -> dict[str, str]:
    """Department code → Chinese name."""
    t = reference_table("departments")
    return dict(zip(t["code"], t["name_zh"], strict=True))


def code_names(name: str) -> dict[str, str]:
    """Code → Chinese name of a code table with `code` and `name_zh` columns."""
    t = reference_table(name)
    return dict(zip(t["code"], t["name_zh"], strict=True))


def enum_spellings(name: str) -> dict[str, str]:
    """Every accepted spelling (code, Chinese name, English name; lower-case) → the code."""
    t = reference_table(name)
    return {
        spelling.lower(): code
        for col in ("code", "name_zh", "name_en")
        for spelling, code in zip(t[col], t["code"], strict=True)
    }


def closing_result_codes() -> list[str]:
    """Result codes saying the entity is gone (closed, deregistered, revoked, moved out)."""
    t = reference_table("result_codes")
    return t.filter(pl.col("closes_entity") == "true")["code"].to_list()


def result_codes_in(category: str) -> list[str]:
    """Result codes of a category: none (未发现问题), problem, status."""
    t = reference_table("result_codes")
    return t.filter(pl.col("category") == category)["code"].to_list()
