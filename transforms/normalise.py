"""Raw registry text → typed, normalised columns (SPEC §3, §4.1).

Codes: full-width to ASCII, no whitespace, upper case. Text: trimmed, inner runs of
white space folded. Dates: ISO, slashes, 8 digits, 年月日, or an Excel serial number;
typed `Date`, with the submitted text kept beside it in `<col>_text` so a date that
cannot be read is quarantined with its original value, never silently null.
Enumerations: every known spelling mapped to the canonical value; unknown values kept
as submitted. Lists: split on ; ； , ， 、 |. A column the file lacks comes out null
(validation decides whether that is allowed).
"""

from __future__ import annotations

import polars as pl

from transforms.registry import COLUMNS, ENUMS, Kind
from transforms.uscc import normalise_code, normalise_org_code

LIST_SEPARATORS = r"[;；,，、|]"
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日", "%Y.%m.%d")
EXCEL_EPOCH = pl.date(1899, 12, 30)  # Excel's day 0 (serial numbers count days from it)
TIME_OF_DAY = r"[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$"  # XLSX cells read as text carry 00:00:00


def normalise_text(expr: pl.Expr) -> pl.Expr:
    e = expr.str.replace_all(r"\s+", " ").str.strip_chars()
    return pl.when(e == "").then(None).otherwise(e)


def parse_date(expr: pl.Expr) -> pl.Expr:
    """A date from the text forms departments use; null when none fits."""
    text = expr.str.normalize("NFKC").str.strip_chars().str.replace(TIME_OF_DAY, "")
    serial = pl.when(text.str.contains(r"^\d{5}$")).then(EXCEL_EPOCH + pl.duration(days=text.cast(pl.Int64, strict=False)))
    return pl.coalesce([text.str.to_date(f, strict=False) for f in DATE_FORMATS] + [serial])


def _enum(expr: pl.Expr, enum: str) -> pl.Expr:
    text = normalise_text(expr.str.normalize("NFKC"))
    return text.str.to_lowercase().replace_strict(ENUMS[enum], default=text)


def _list(expr: pl.Expr, codes: bool) -> pl.Expr:
    parts = expr.str.replace_all(LIST_SEPARATORS, ";").str.split(";")
    element = normalise_code(pl.element()) if codes else normalise_text(pl.element())
    return parts.list.eval(element).list.drop_nulls().fill_null([])


def normalise_registry(raw: pl.DataFrame, kind: Kind, department: str) -> pl.DataFrame:
    """The typed table of one file: SPEC columns in SPEC order, then `<date>_text` columns,
    `submitted_by`, `source_file`, `source_line`."""
    cols, extra = [], []
    for name, how in COLUMNS[kind].items():
        src = pl.col(name) if name in raw.columns else pl.lit(None, dtype=pl.String)
        if how == "code":
            cols.append(normalise_code(src).alias(name))
        elif how == "org_code":
            cols.append(normalise_org_code(src).alias(name))
        elif how == "text":
            cols.append(normalise_text(src).alias(name))
        elif how == "date":
            cols.append(parse_date(src).alias(name))
            extra.append(normalise_text(src).alias(f"{name}_text"))
        elif how.startswith("enum:"):
            cols.append(_enum(src, how.removeprefix("enum:")).alias(name))
        elif how in ("list", "list_code"):
            cols.append(_list(src, codes=how == "list_code").alias(name))
        else:  # pragma: no cover - COLUMNS is static
            raise ValueError(f"unknown column rule {how!r} for {kind}.{name}")
    return raw.select(*cols, *extra, submitted_by=pl.lit(department), source_file="source_file", source_line="source_line")
