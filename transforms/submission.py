"""Writes a generated city as departments submit it: `inbox/<DEPT>/{objects,inspectors,items}.*`
in mixed formats and encodings, the plan under `plans/`, and with `dirty` a truth file
of every planted error (file, line, kind, column, the reason validation must give).

Line numbers follow the ingest convention: the header is line 1, the first data row line 2
(for Parquet: the row's position + 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import datetime as dt

import numpy as np
import polars as pl
import xlsxwriter

from transforms.citygen import FORMATS, XLSX_MAX_ROWS, City, quarterly_plan
from transforms.plan import plan_as_yaml
from transforms.reasons import ACCEPT
from transforms.registry import ENUMS, HEADER_ALIASES, Kind
from transforms.uscc import complete_uscc

MIN_ROWS_TO_PLANT = 100
DIRTY_SHARE = 0.01  # share of rows of each objects/inspectors file given a planted error
OBJECT_ERRORS = {  # kind → (column, the reason validation must give)
    "bad_check_char": ("uscc", "uscc_check_char"),
    "bad_org_check": ("uscc", "uscc_org_check"),
    "uscc_missing_org_code": ("uscc", ACCEPT),
    "duplicate_row": ("", "duplicate_row"),
    "bad_date": ("registered_on", "date_unparseable"),
    "unknown_district": ("district_code", "district_unknown"),
    "stray_spaces": ("uscc", ACCEPT),
    "full_width": ("uscc", ACCEPT),
    "blank_required": ("name", "required_missing"),
}
INSPECTOR_ERRORS = {
    "bad_date": ("cert_valid_until", "date_unparseable"),
    "unknown_district": ("district_code", "district_unknown"),
    "blank_required": ("name", "required_missing"),
    "duplicate_id": ("inspector_id", "duplicate_id"),
}
XLSX_CREATED = dt.datetime(2026, 1, 1)
_FULL_WIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})


@dataclass(frozen=True)
class WrittenFile:
    path: Path
    rows: int
    fmt: str


def _zh_headers(kind: Kind) -> dict[str, str]:
    """SPEC name → the first Chinese header that maps to it."""
    out: dict[str, str] = {}
    for header, name in HEADER_ALIASES[kind].items():
        if name not in out and not header.isascii():
            out[name] = header
    return out


def _zh_enum_values(enum: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for spelling, value in ENUMS[enum].items():
        if value not in out and not spelling.isascii():
            out[value] = spelling
    return out


def _as_text(df: pl.DataFrame, kind: Kind, lang: str) -> pl.DataFrame:
    """Every column as text the way a department's spreadsheet shows it."""
    sep = "；" if lang == "zh" else ";"
    date_fmt = "%Y/%m/%d" if lang == "zh" else "%Y-%m-%d"
    enums = {"entity_type": "entity_type", "status": "object_status" if kind == "objects" else "inspector_status",
             "category": "item_category", "method": "inspection_method", "follow_up": "follow_up"}
    cols = []
    for name, dtype in df.schema.items():
        c = pl.col(name)
        if isinstance(dtype, pl.List):
            c = c.list.join(sep)
        elif dtype == pl.Date:
            c = c.dt.strftime(date_fmt)
        elif lang == "zh" and name in enums:
            c = c.replace(_zh_enum_values(enums[name]))
        cols.append(c.cast(pl.String).alias(name))
    out = df.select(cols)
    return out.rename(_zh_headers(kind), strict=False) if lang == "zh" else out


def _effective_format(fmt: str, rows: int) -> tuple[str, str]:
    """(format, file extension): a sheet too big for a department to send by XLSX goes as CSV."""
    if fmt == "xlsx" and rows > XLSX_MAX_ROWS:
        fmt = "csv-utf8-bom"
    return fmt, {"parquet": "parquet", "xlsx": "xlsx"}.get(fmt, "csv")


def _write(df: pl.DataFrame, folder: Path, kind: Kind, fmt: str, lang: str) -> WrittenFile:
    fmt, _ = _effective_format(fmt, df.height)
    if fmt == "parquet":
        path = folder / f"{kind}.parquet"
        df.write_parquet(path, statistics=False)
        return WrittenFile(path, df.height, fmt)
    text = _as_text(df, kind, lang)
    if fmt == "xlsx":
        path = folder / f"{kind}.xlsx"
        workbook = xlsxwriter.Workbook(path)
        workbook.set_properties({"created": XLSX_CREATED})  # a fixed date keeps the file byte-identical
        text.write_excel(workbook=workbook, autofit=False)
        workbook.close()
    else:
        path = folder / f"{kind}.csv"
        if fmt == "csv-gbk":  # as Excel on Chinese Windows saves "CSV (逗号分隔)"
            path.write_bytes(text.write_csv().encode("gbk"))
        else:
            text.write_csv(path, include_bom=fmt == "csv-utf8-bom")
    return WrittenFile(path, df.height, fmt)


def _plant(df: pl.DataFrame, errors: dict[str, tuple[str, str]], rng: np.random.Generator, file: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Plant each kind of error in DIRTY_SHARE/len(errors) of the rows (distinct rows per kind);
    returns the dirty frame (dates as text) and the truth rows."""
    per_kind = max(1, int(df.height * DIRTY_SHARE / len(errors)))
    if df.height < max(MIN_ROWS_TO_PLANT, 3 * per_kind * len(errors)):  # a small file keeps its share near DIRTY_SHARE
        return df, pl.DataFrame(schema={"file": pl.String, "line": pl.Int64, "kind": pl.String, "column": pl.String, "expected": pl.String})
    rows = rng.choice(df.height, size=per_kind * len(errors), replace=False)
    kind_of_row = np.full(df.height, "", dtype=object)
    for i, kind in enumerate(errors):
        kind_of_row[rows[i * per_kind:(i + 1) * per_kind]] = kind
    df = df.with_columns(pl.col(pl.Date).dt.strftime("%Y-%m-%d"), _kind=pl.Series(kind_of_row.astype(str)), _pos=pl.int_range(pl.len()))
    k = pl.col("_kind")
    changes = []
    if "uscc" in df.columns:
        # per-row Python only on the few planted rows: full-width text, a broken org-code check
        planted = {}
        for kind, fn in (("full_width", lambda u: u.translate(_FULL_WIDTH)), ("bad_org_check", _break_org_check)):
            pos = np.flatnonzero(kind_of_row == kind)
            planted[kind] = pl.repeat(None, df.height, dtype=pl.String, eager=True).scatter(pos, [fn(u) for u in df["uscc"].gather(pos)])
        wrong_last = pl.col("uscc").str.slice(0, 17) + pl.when(pl.col("uscc").str.ends_with("0")).then(pl.lit("1")).otherwise(pl.lit("0"))
        changes += [
            pl.when(k == "bad_check_char").then(wrong_last)
            .when(k == "bad_org_check").then(planted["bad_org_check"])
            .when(k == "uscc_missing_org_code").then(None)
            .when(k == "stray_spaces").then(pl.lit("  ") + pl.col("uscc").str.to_lowercase() + pl.lit(" "))
            .when(k == "full_width").then(planted["full_width"])
            .otherwise("uscc").alias("uscc"),
            pl.when(k == "uscc_missing_org_code").then(pl.col("uscc").str.slice(8, 9)).alias("org_code"),
        ]
    date_col = "registered_on" if "registered_on" in df.columns else "cert_valid_until"
    changes += [
        pl.when(k == "bad_date").then(pl.lit("2021-13-45")).otherwise(date_col).alias(date_col),
        pl.when(k == "unknown_district").then(pl.lit("440399")).otherwise("district_code").alias("district_code"),
        pl.when(k == "blank_required").then(pl.lit("")).otherwise("name").alias("name"),
    ]
    df = df.with_columns(changes)
    dup_kind = "duplicate_row" if "duplicate_row" in errors else "duplicate_id"
    copies = df.filter(k == dup_kind).with_columns(_copy=pl.lit(1))
    if dup_kind == "duplicate_id":  # same id, otherwise a different person
        copies = copies.with_columns(name=pl.col("name") + pl.lit("二"))
    df = pl.concat([df.with_columns(_copy=pl.lit(0), _kind=pl.when(k == dup_kind).then(pl.lit("")).otherwise(k)), copies])
    df = df.sort("_pos", "_copy").with_columns(_line=pl.int_range(pl.len()) + 2)
    truth = df.filter(pl.col("_kind") != "").select(
        file=pl.lit(file), line=pl.col("_line").cast(pl.Int64), kind="_kind",
        column=pl.col("_kind").replace_strict({e: c for e, (c, _) in errors.items()}),
        expected=pl.col("_kind").replace_strict({e: r for e, (_, r) in errors.items()}),
    )
    return df.drop("_kind", "_pos", "_copy", "_line"), truth


def _break_org_check(uscc: str) -> str:
    """The same code with another organization-code check character and a correct final check."""
    new17 = "0" if uscc[16] != "0" else "1"
    return complete_uscc(uscc[:16] + new17)


def write_city(city: City, out_dir: Path, dirty: bool = False, seed: int = 0) -> list[WrittenFile]:
    """The inbox, the plan and (dirty) `truth.csv` under `out_dir`; returns what was written."""
    rng = np.random.default_rng(np.random.PCG64([seed, 1]))
    inbox = Path(out_dir) / "inbox"
    written: list[WrittenFile] = []
    truths = []
    for dept, (fmt, lang) in FORMATS.items():
        folder = inbox / dept
        folder.mkdir(parents=True, exist_ok=True)
        objects = city.objects[dept].with_columns(org_code=pl.lit(None, pl.String))
        inspectors = city.inspectors[dept]
        if dirty:
            objects, t1 = _plant(objects, OBJECT_ERRORS, rng, f"{dept}/objects.{_effective_format(fmt, objects.height)[1]}")
            inspectors, t2 = _plant(inspectors, INSPECTOR_ERRORS, rng, f"{dept}/inspectors.{_effective_format(fmt, inspectors.height)[1]}")
            truths += [t1, t2]
        written.append(_write(objects, folder, "objects", fmt, lang))
        written.append(_write(inspectors, folder, "inspectors", fmt, lang))
        written.append(_write(city.items[dept], folder, "items", fmt, lang))
    plans = Path(out_dir) / "plans"
    plans.mkdir(parents=True, exist_ok=True)
    for plan in (city.plan, quarterly_plan(city.plan, 2)):  # the annual plan and its second-quarter batch
        (plans / f"{plan.plan_id}.yaml").write_text(plan_as_yaml(plan), encoding="utf-8")
    if dirty:
        pl.concat(truths).sort("file", "line").write_csv(Path(out_dir) / "truth.csv")
    return written


def write_results(results: dict[str, tuple[pl.DataFrame, str]], truth: pl.DataFrame, inbox: Path) -> list[WrittenFile]:
    """Each department's results file under `inbox/<DEPT>/` (GBK and XLSX with Chinese headers and
    values, as for the registries); `truth.csv` beside the inbox when it lists planted errors."""
    written = []
    for dept, (df, fmt) in results.items():
        folder = Path(inbox) / dept
        folder.mkdir(parents=True, exist_ok=True)
        written.append(_write(df, folder, "results", fmt, "zh" if fmt in ("csv-gbk", "xlsx") else "en"))
    if not truth.is_empty():
        truth.sort("file", "line").write_csv(Path(inbox).parent / "results-truth.csv")
    return written
