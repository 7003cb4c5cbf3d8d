"""The one CSV writer for files people open (SPEC §6): UTF-8 with BOM so Excel on Chinese
Windows shows it correctly, lists joined with `；`, flags as 是/否, and every cell that a spreadsheet
would execute (starting with = + - @, a tab or a carriage return) neutralised with a leading `'`.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from jointdraw.transforms.storage.runfolder import atomic_path

FORMULA_START = r"^[=+\-@\t\r]"
LIST_JOIN = "；"
YES, NO = "是", "否"  # a flag as people read it


def neutralise_formulas(expr: pl.Expr) -> pl.Expr:
    """A cell Excel would run as a formula becomes text: `=HYPERLINK(...)` → `'=HYPERLINK(...)`."""
    return pl.when(expr.str.contains(FORMULA_START)).then(pl.lit("'") + expr).otherwise(expr)


def yes_no(flag: pl.Expr) -> pl.Expr:
    return pl.when(flag).then(pl.lit(YES)).when(~flag).then(pl.lit(NO))


def people_frame(df: pl.DataFrame) -> pl.DataFrame:
    """Every column as safe text: lists joined, dates ISO, formulas neutralised."""
    cols = []
    for name, dtype in df.schema.items():
        c = pl.col(name)
        if isinstance(dtype, pl.List):
            c = c.cast(pl.List(pl.String)).list.join(LIST_JOIN)
        elif dtype == pl.Boolean:
            c = yes_no(c)
        cols.append(neutralise_formulas(c.cast(pl.String)).alias(name))
    return df.select(cols)


def write_people_csv(df: pl.DataFrame, path: Path, headers: dict[str, str] | None = None) -> Path:
    """Writes `df` for people (optionally renaming columns to Chinese headers), atomically."""
    out = people_frame(df)
    if headers:
        out = out.rename({k: v for k, v in headers.items() if k in out.columns})
    with atomic_path(path) as tmp:
        out.write_csv(tmp, include_bom=True)
    return path
