"""The privacy scan of the public part (issue 18): run on every file of public/ before a bundle is
moved into place, by `jointdraw verify`, and by the tests with every personal value of the inputs.

    public_leaks(public_dir, personal_values=()) -> one line per leak (file, what), or []

What is a leak:
* a table (CSV, XLSX, Parquet) with a personal column (operator, phone, inspector) or with an
  entity's code and a credit class side by side (an entity's class is not public; the per-stratum
  table has classes but no entity);
* anywhere in any file (pages and JSON too): a mobile or fixed-line phone number, or one of
  `personal_values` (the operators' names and phones, the inspectors' names and ids of the run).
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from jointdraw.transforms.storage.xlsxout import read_workbook

ENTITY_COLUMNS = {"uscc", "统一社会信用代码", "entity_key", "联合任务编号", "joint_task_id"}
CLASS_COLUMNS = {"credit_risk", "信用风险分类", "信用风险分类等级", "credit_class", "信用等级"}
PERSONAL_COLUMNS = {
    "operator_name",
    "phone",
    "经营者",
    "经营者姓名",
    "联系电话",
    "inspectors",
    "inspector_id",
    "检查人员",
    "执法人员",
    "执法证号",
}
PHONE = re.compile(
    r"(?<![0-9A-Za-z.:-])(?:1[3-9]\d{9}|0\d{2,3}-\d{7,8})(?![0-9A-Za-z.:-])"
)  # not inside a hash or a code
# PHONE without look-around, for polars' regex: it matches wherever PHONE does (its \d knows every digit
# Python's does), so a text it does not match holds no phone, and Python's re (slow on 27 MB pages) is spared
MAYBE_PHONE = r"(?:^|[^0-9A-Za-z.:-])(?:1[3-9]\d{9}|0\d{2,3}-\d{7,8})(?:$|[^0-9A-Za-z.:-])"
TABLES = (".csv", ".xlsx", ".parquet")


def read_table(path: Path) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    if path.suffix == ".csv":
        return pl.read_csv(path, infer_schema=False)
    return read_workbook(path)


def _cells_text(table: pl.DataFrame, columns: list[str]) -> str:
    """A table's headers and the cells of `columns`, one a line."""
    return "\n".join([*table.columns, *(str(v) for c in columns for v in table[c].drop_nulls().to_list())])


def _text_of(path: Path, table: pl.DataFrame | None) -> str:
    """A file's text: a workbook's or a Parquet file's (`table`, as read) headers and cells, one a line."""
    if path.suffix in (".xlsx", ".parquet"):
        return _cells_text(table, table.columns)
    return path.read_text(encoding="utf-8-sig", errors="replace")


def _table_may_hold_phone(table: pl.DataFrame) -> bool:
    """Whether a header or cell of `table` matches MAYBE_PHONE, column by column (text columns in polars, on every
    core): a phone never spans two lines of `_text_of`, so its text holds one only if a header or cell does."""
    texts = [c for c, dtype in table.schema.items() if dtype == pl.String]
    other = [c for c in table.columns if c not in texts]
    if texts and table.select(pl.any_horizontal(pl.col(texts).str.contains(MAYBE_PHONE).any())).item():
        return True
    return _phone_in(_cells_text(table, other)) is not None


def _phone_in(text: str) -> re.Match | None:
    if not pl.Series([text], dtype=pl.String).str.contains(MAYBE_PHONE).item():
        return None
    return PHONE.search(text)


def table_leaks(name: str, columns: list[str]) -> list[str]:
    personal = sorted(set(columns) & PERSONAL_COLUMNS)
    leaks = [f"{name}: personal column {', '.join(personal)}"] if personal else []
    if set(columns) & ENTITY_COLUMNS and set(columns) & CLASS_COLUMNS:
        leaks.append(
            f"{name}: entities side by side with their credit class ({', '.join(sorted(set(columns) & CLASS_COLUMNS))})"
        )
    return leaks


def _file_leaks(path: Path, name: str, values: list[str]) -> list[str]:
    """The leaks of one file of the public part (`public_leaks`)."""
    leaks = []
    table = read_table(path) if path.suffix in TABLES else None
    if table is not None:
        leaks += table_leaks(name, table.columns)
    if table is not None and not values and not _table_may_hold_phone(table):
        return leaks  # no cell could hold a phone: the table's text is not needed
    text = _text_of(path, table)
    if found := _phone_in(text):
        leaks.append(f"{name}: a phone number ({found.group()[:3]}…)")
    if values:
        hits = pl.Series([text]).str.extract_many(values, overlapping=False)[0].to_list()
        if hits:
            leaks.append(f"{name}: {len(hits)} personal values of the inputs, e.g. {hits[0][:1]}…")
    return leaks


def public_leaks(public_dir: Path, personal_values: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """The leaks of every file under `public_dir`, in the files' order: the files are read and searched a few at a
    time (reading a workbook and searching a page's text release the GIL: the notice's three files take as long
    as one of them)."""
    public_dir = Path(public_dir)
    values = sorted(v for v in personal_values if v and len(v) >= 2)
    paths = sorted(p for p in public_dir.rglob("*") if p.is_file())
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="leaks") as pool:
        found = pool.map(lambda path: _file_leaks(path, path.relative_to(public_dir).as_posix(), values), paths)
        return [leak for leaks in found for leak in leaks]
