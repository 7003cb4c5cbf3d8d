"""Writes a generated city as departments submit it: `inbox/<DEPT>/{objects,inspectors,items}.*`
(and, for the departments that report them, `inspections.*`) in mixed formats and encodings, the
plan under `plans/`, and with `dirty` a truth file of every planted error (file, line, kind, column,
the reason validation must give).

Each department's system has its own dialect (`DIALECTS`): the entity type as a registered type
name (full- or half-width brackets), a type code, both, or an old short form; the status in its
own words (存续（在营、开业、在册）, 在营（开业）企业, 开业, 在业 …); the district as a code, a name,
深圳市南山区 or 广东省深圳市南山区 (or blank, the address naming it); the industry as I6513, 6513
or [6513]; the extra columns exports carry (法定代表人, 注册资本, 登记机关, 经营范围, 核准日期). Some
export with a title row above the header and note rows below the data (共 N 条记录, 导出人…).

Line numbers are the spreadsheet's rows: with the header in row 1 the first data row is line 2;
below a title and a blank row, line 4 (for Parquet: the row's position + 2).

A city made in chunks (`city.generate_city`) is written as it is made (`write_generated_city`): each
chunk's objects are put in their departments' dialects, planted with errors and appended to their
files (`_ExportFile`); the last chunk's are written with the rest of each department's files, in the
order a city of one chunk always was, so a city of one chunk is the same bytes as ever.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import xlsxwriter

from jointdraw.transforms.plan import plan_as_yaml
from jointdraw.transforms.reasons import ACCEPT
from jointdraw.transforms.reference import department_names, reference_table
from jointdraw.transforms.registry import ENUMS, HEADER_ALIASES, KIND_LABELS_ZH, Kind
from jointdraw.transforms.samplecity.city import (
    CHUNK_ENTITIES,
    FORMATS,
    XLSX_MAX_ROWS,
    City,
    chunk_sizes,
    city_entities,
    generate_city,
    quarterly_plan,
)
from jointdraw.transforms.uscc import complete_uscc

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
    # in the registries' real vocabulary
    "bad_division": ("industry_code", "industry_unknown"),  # 9901: GB/T 4754 has no division 99
    "wrong_section": ("industry_code", "industry_section_mismatch"),  # F6513: 65 is in section I
    "unknown_type": ("entity_type", "enum_unknown"),
    "unknown_status": ("status", "enum_unknown"),
    "type_conflict": (
        "entity_type",
        ACCEPT,
    ),  # a 个体工商户 type on an enterprise's 91… code: reported, not quarantined
    "code_guard": ("uscc", ACCEPT),  # '9144…<tab>: what systems write to keep a code text in a spreadsheet
    "district_from_address": ("district_code", ACCEPT),  # blank district, the address names it
}
INSPECTOR_ERRORS = {
    "bad_date": ("cert_valid_until", "date_unparseable"),
    "unknown_district": ("district_code", "district_unknown"),
    "blank_required": ("name", "required_missing"),
    "duplicate_id": ("inspector_id", "duplicate_id"),
}
XLSX_CREATED = dt.datetime(2026, 1, 1)
EXPORTED_AT = "2026-11-30 09:30:00"

# How each department's system prints a status (canonical → its words).
STATUS_WORDS = {
    "gsxt": {
        "active": "存续（在营、开业、在册）",
        "revoked": "吊销，未注销",
        "deregistered": "注销",
        "moved_out": "迁出",
    },
    "guangdong": {
        "active": "在营（开业）企业",
        "revoked": "吊销,未注销",
        "deregistered": "注销企业",
        "moved_out": "已迁出企业",
    },
    "short": {"active": "开业", "revoked": "吊销", "deregistered": "已注销", "moved_out": "迁出"},
    "old": {"active": "存续", "revoked": "吊销", "deregistered": "注销", "moved_out": "迁往市外"},
    "zaiye": {"active": "在业", "revoked": "吊销企业", "deregistered": "吊销，已注销", "moved_out": "迁出"},
    "en": {"active": "active", "revoked": "revoked", "deregistered": "deregistered", "moved_out": "moved_out"},
}
SHORT_TYPES = {"enterprise": "企业", "individual": "个体工商户", "cooperative": "农民专业合作社", "other": "其他"}
EXTRA_HEADERS_ZH = {
    "legal_representative": "法定代表人",
    "registered_capital": "注册资本",
    "registration_authority": "登记机关",
    "business_scope": "经营范围",
    "approved_on": "核准日期",
}


@dataclass(frozen=True)
class Dialect:
    """How one department's system writes registry values."""

    entity_type: str  # name | name_half (half-width brackets) | code | name_code | short
    status: str  # a key of STATUS_WORDS
    district: str  # code | name (南山区) | city (深圳市南山区) | province (广东省深圳市南山区)
    industry: str  # letter (I6513) | digits (6513) | bracket ([6513])
    blank_district: float = 0.0  # share of rows with the district left blank (their address names it)
    titled: bool = False  # a title row above the header, notes below the data


DIALECTS = {
    "AMR": Dialect("name", "gsxt", "code", "letter"),
    "ENV": Dialect("name_half", "guangdong", "name", "digits"),
    "EMR": Dialect("code", "short", "city", "letter", titled=True),
    "HLT": Dialect("name_code", "old", "code", "digits"),
    "HSG": Dialect("short", "zaiye", "province", "letter"),
    "TRN": Dialect("name", "en", "code", "digits"),
    "CUL": Dialect("name_half", "gsxt", "name", "letter", titled=True),
    "FIR": Dialect("name_code", "guangdong", "code", "letter"),
    "HRS": Dialect("code", "old", "city", "digits", blank_district=0.05),
    "URB": Dialect("name", "short", "name", "bracket", titled=True),
    "WAT": Dialect("short", "zaiye", "code", "digits"),
    "EDU": Dialect("name", "gsxt", "code", "letter"),
}
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


def in_dialect(objects: pl.DataFrame, dialect: Dialect, rng: np.random.Generator) -> pl.DataFrame:
    """The objects as the department's system writes them: entity type, status, district and
    industry in its dialect (the registered type columns folded into `entity_type`)."""
    names = dict(reference_table("districts_shenzhen").select("district_code", "name_zh").iter_rows())
    name = pl.col("district_code").replace_strict(names, default=pl.col("district_code"))
    district = {
        "code": pl.col("district_code"),
        "name": name,
        "city": pl.lit("深圳市") + name,
        "province": pl.lit("广东省深圳市") + name,
    }[dialect.district]
    if dialect.blank_district:
        district = (
            pl.when(pl.Series(rng.random(objects.height) < dialect.blank_district)).then(None).otherwise(district)
        )
    code = pl.col("registered_type_code")
    named = pl.col("registered_type").cast(pl.String)
    entity_type = {
        "name": named,
        "name_half": named.str.replace_all("（", "(", literal=True).str.replace_all("）", ")", literal=True),
        "code": pl.when(code != "").then(code).otherwise(named),
        "name_code": pl.when(code != "").then(pl.concat_str(named, pl.lit("("), code, pl.lit(")"))).otherwise(named),
        "short": pl.col("entity_type").replace_strict(SHORT_TYPES),
    }[dialect.entity_type]
    industry = {
        "letter": pl.col("industry_code"),
        "digits": pl.col("industry_code").str.slice(1),
        "bracket": pl.lit("[") + pl.col("industry_code").str.slice(1) + pl.lit("]"),
    }[dialect.industry]
    return objects.with_columns(
        entity_type=entity_type,
        status=pl.col("status").replace_strict(STATUS_WORDS[dialect.status]),
        district_code=district,
        industry_code=industry,
    ).drop("registered_type", "registered_type_code")


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
    enums = {
        "entity_type": "entity_type",
        "status": "object_status" if kind == "objects" else "inspector_status",
        "role": "inspector_role",
        "category": "item_category",
        "method": "inspection_method",
        "follow_up": "follow_up",
        "inspection_kind": "inspection_kind",
        "level": "inspection_level",
        "review_state": "review_state",
    }
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
    return out.rename({**_zh_headers(kind), **EXTRA_HEADERS_ZH}, strict=False) if lang == "zh" else out


def _effective_format(fmt: str, rows: int) -> tuple[str, str]:
    """(format, file extension): a sheet too big for a department to send by XLSX goes as CSV."""
    if fmt == "xlsx" and rows > XLSX_MAX_ROWS:
        fmt = "csv-utf8-bom"
    return fmt, {"parquet": "parquet", "xlsx": "xlsx"}.get(fmt, "csv")


def _title(department: str, kind: Kind) -> str:
    return f"深圳市{department_names()[department]} {KIND_LABELS_ZH[kind]}导出（2026年11月30日）"


def _notes(rows: int) -> list[str]:
    return [f"共 {rows} 条记录", f"导出人：系统管理员　导出时间：{EXPORTED_AT}"]


TITLE_ROWS = 2  # a titled export: the title, a blank row, then the header


class _ExportFile:
    """One file as the department's system exports it, written a frame at a time: CSV (UTF-8, with a
    BOM, or GBK; with `title`, a title row and a blank row above the header and a blank row and notes
    below the data) appended as the frames come; Parquet by polars when it is one frame, else by
    pyarrow frame by frame; XLSX held (it has at most XLSX_MAX_ROWS rows) and written when closed, or
    as UTF-8-BOM CSV from the frame that takes it past XLSX_MAX_ROWS. The frames share one schema."""

    def __init__(self, folder: Path, kind: Kind, fmt: str, lang: str, title: str | None = None) -> None:
        self.folder, self.kind, self.fmt, self.lang, self.title = folder, kind, fmt, lang, title
        self.rows = 0
        self._held: list[pl.DataFrame] = []  # XLSX: its text so far; Parquet: its first frame
        self._parquet: pq.ParquetWriter | None = None
        self._csv_started = False

    @property
    def path(self) -> Path:
        return self.folder / f"{self.kind}.{_effective_format(self.fmt, self.rows)[1]}"

    @property
    def next_line(self) -> int:
        """The line the next frame's first row goes on (the spreadsheet's rows; Parquet: position + 2)."""
        return 2 + (TITLE_ROWS if self.title else 0) + self.rows

    def append(self, df: pl.DataFrame) -> None:
        if self.fmt == "parquet":
            self._append_parquet(df.with_columns(pl.col(pl.Categorical).cast(pl.String)))
        elif self.fmt == "xlsx":
            self._held.append(_as_text(df, self.kind, self.lang))
            if self.rows + df.height > XLSX_MAX_ROWS:  # too big for a department to send by XLSX: CSV from here
                self.fmt, _ = _effective_format(self.fmt, self.rows + df.height)
                held, self._held = self._held, []
                for text in held:
                    self._append_csv(text)
        else:
            self._append_csv(_as_text(df, self.kind, self.lang))
        self.rows += df.height

    def _append_parquet(self, df: pl.DataFrame) -> None:
        if self._parquet is None and not self._held:
            self._held = [df]
            return
        if self._parquet is None:
            first = self._held.pop().to_arrow(compat_level=pl.CompatLevel.newest())
            self._parquet = pq.ParquetWriter(self.path, first.schema, compression="zstd", write_statistics=False)
            self._parquet.write_table(first)
        self._parquet.write_table(df.to_arrow(compat_level=pl.CompatLevel.newest()).cast(self._parquet.schema))

    def _append_csv(self, text: pl.DataFrame) -> None:
        first, self._csv_started = not self._csv_started, True
        with self.path.open("wb" if first else "ab") as f:
            if not self.title and self.fmt != "csv-gbk":
                text.write_csv(f, include_header=first, include_bom=first and self.fmt == "csv-utf8-bom")
            else:
                self._write_text(
                    f,
                    (f"{self.title}\n\n" if first and self.title else "") + text.write_csv(include_header=first),
                    first,
                )

    def _write_text(self, f: BinaryIO, text: str, first: bool) -> None:
        if self.fmt == "csv-gbk":  # as Excel on Chinese Windows saves "CSV (逗号分隔)"
            f.write(text.encode("gbk"))
        else:
            f.write(("\ufeff" if first and self.fmt == "csv-utf8-bom" else "").encode() + text.encode("utf-8"))

    def close(self) -> WrittenFile:
        path = self.path
        if self.fmt == "parquet":
            if self._parquet is not None:
                self._parquet.close()
            else:
                self._held.pop().write_parquet(path, statistics=False)
        elif self.fmt == "xlsx":
            text = self._held[0] if len(self._held) == 1 else pl.concat(self._held)
            self._held = []
            workbook = xlsxwriter.Workbook(path)
            workbook.set_properties({"created": XLSX_CREATED})  # a fixed date keeps the file byte-identical
            sheet = workbook.add_worksheet()
            if self.title:
                sheet.merge_range(0, 0, 0, max(1, text.width - 1), self.title)
            position = (TITLE_ROWS if self.title else 0, 0)
            text.write_excel(workbook=workbook, worksheet=sheet, position=position, autofit=False)
            if self.title:
                for i, note in enumerate(_notes(text.height)):
                    sheet.write_string(TITLE_ROWS + text.height + 2 + i, 0, note)
            workbook.close()
        elif self.title:
            with path.open("ab") as f:
                self._write_text(f, "\n" + "".join(f"{note}\n" for note in _notes(self.rows)), False)
        return WrittenFile(path, self.rows, self.fmt)


def _write(df: pl.DataFrame, folder: Path, kind: Kind, fmt: str, lang: str, title: str | None = None) -> WrittenFile:
    """The file as the department's system exports it (`_ExportFile`, of one frame)."""
    file = _ExportFile(folder, kind, fmt, lang, title)
    file.append(df)
    return file.close()


def _per_kind(rows: int, kinds: int) -> int:
    """How many rows of each kind of error a file of `rows` rows gets: DIRTY_SHARE of its rows over
    the kinds, at least one of each, none in a small file (it keeps its share near DIRTY_SHARE)."""
    per_kind = max(1, int(rows * DIRTY_SHARE / kinds))
    return per_kind if rows >= max(MIN_ROWS_TO_PLANT, 3 * per_kind * kinds) else 0


def _plant(
    df: pl.DataFrame,
    errors: dict[str, tuple[str, str]],
    rng: np.random.Generator,
    first_line: int = 2,
    dates_as_text: bool = False,
    per_kind: int | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Plant each kind of error in `per_kind` rows (default `_per_kind` of the frame; distinct rows per
    kind); returns the dirty frame (dates as text) and the truth rows but their file (the first data
    row is `first_line`). With none to plant the frame is returned as it is, its dates as text if
    asked (a chunk of a file whose other chunks have theirs as text)."""
    per_kind = _per_kind(df.height, len(errors)) if per_kind is None else per_kind
    if per_kind == 0:
        kept = df.with_columns(pl.col(pl.Date).dt.strftime("%Y-%m-%d")) if dates_as_text else df
        return kept, pl.DataFrame(
            schema={"line": pl.Int64, "kind": pl.String, "column": pl.String, "expected": pl.String}
        )
    rows = rng.choice(df.height, size=per_kind * len(errors), replace=False)
    kind_of_row = np.full(df.height, "", dtype=object)
    for i, kind in enumerate(errors):
        kind_of_row[rows[i * per_kind : (i + 1) * per_kind]] = kind
    df = df.with_columns(
        pl.col(pl.Date).dt.strftime("%Y-%m-%d"), _kind=pl.Series(kind_of_row.astype(str)), _pos=pl.int_range(pl.len())
    )
    k = pl.col("_kind")
    changes = []
    if "uscc" in df.columns:
        # per-row Python only on the few planted rows: full-width text, a broken org-code check
        planted = {}
        for kind, fn in (("full_width", lambda u: u.translate(_FULL_WIDTH)), ("bad_org_check", _break_org_check)):
            pos = np.flatnonzero(kind_of_row == kind)
            planted[kind] = pl.repeat(None, df.height, dtype=pl.String, eager=True).scatter(
                pos, [fn(u) for u in df["uscc"].gather(pos)]
            )
        wrong_last = pl.col("uscc").str.slice(0, 17) + pl.when(pl.col("uscc").str.ends_with("0")).then(
            pl.lit("1")
        ).otherwise(pl.lit("0"))
        changes += [
            pl.when(k == "bad_check_char")
            .then(wrong_last)
            .when(k == "bad_org_check")
            .then(planted["bad_org_check"])
            .when(k == "uscc_missing_org_code")
            .then(None)
            .when(k == "stray_spaces")
            .then(pl.lit("  ") + pl.col("uscc").str.to_lowercase() + pl.lit(" "))
            .when(k == "full_width")
            .then(planted["full_width"])
            .when(k == "code_guard")
            .then(pl.lit("'") + pl.col("uscc") + pl.lit("\t"))
            .otherwise("uscc")
            .alias("uscc"),
            pl.when(k == "uscc_missing_org_code").then(pl.col("uscc").str.slice(8, 9)).alias("org_code"),
        ]
    date_col = "registered_on" if "registered_on" in df.columns else "cert_valid_until"
    changes += [
        pl.when(k == "bad_date").then(pl.lit("2021-13-45")).otherwise(date_col).alias(date_col),
        pl.when(k == "unknown_district")
        .then(pl.lit("440399"))
        .when(k == "district_from_address")
        .then(None)
        .otherwise("district_code")
        .alias("district_code"),
        pl.when(k == "blank_required").then(pl.lit("")).otherwise("name").alias("name"),
    ]
    if "industry_code" in df.columns:  # objects, in the department's dialect
        digits = pl.col("industry_code").str.extract(r"(\d{4})")
        changes += [
            pl.when(k == "bad_division")
            .then(pl.lit("99") + digits.str.slice(2))
            .when(k == "wrong_section")
            .then(pl.when(digits.str.slice(0, 2).is_in(["51", "52"])).then(pl.lit("H")).otherwise(pl.lit("F")) + digits)
            .otherwise("industry_code")
            .alias("industry_code"),
            pl.when(k == "unknown_type")
            .then(pl.lit("有限责任公司（试点类型）"))
            .when(k == "type_conflict")
            .then(
                pl.when(pl.col("uscc").str.starts_with("91"))
                .then(pl.lit("个体工商户"))
                .otherwise(pl.lit("有限责任公司（自然人投资或控股）"))
            )
            .otherwise("entity_type")
            .alias("entity_type"),
            pl.when(k == "unknown_status").then(pl.lit("状态待核实")).otherwise("status").alias("status"),
        ]
    df = df.with_columns(changes)
    dup_kind = "duplicate_row" if "duplicate_row" in errors else "duplicate_id"
    copies = df.filter(k == dup_kind).with_columns(_copy=pl.lit(1))
    if dup_kind == "duplicate_id":  # same id, otherwise a different person
        copies = copies.with_columns(name=pl.col("name") + pl.lit("二"))
    df = pl.concat(
        [df.with_columns(_copy=pl.lit(0), _kind=pl.when(k == dup_kind).then(pl.lit("")).otherwise(k)), copies]
    )
    df = df.sort("_pos", "_copy").with_columns(_line=pl.int_range(pl.len()) + first_line)
    truth = df.filter(pl.col("_kind") != "").select(
        line=pl.col("_line").cast(pl.Int64),
        kind="_kind",
        column=pl.col("_kind").replace_strict({e: c for e, (c, _) in errors.items()}),
        expected=pl.col("_kind").replace_strict({e: r for e, (_, r) in errors.items()}),
    )
    return df.drop("_kind", "_pos", "_copy", "_line"), truth


INSPECTION_ERRORS = (  # one per inspections file, by turns: (column, the value planted, the reason)
    ("inspection_kind", "专项整治", "enum_unknown"),
    ("inspection_date", "2026-02-30", "date_unparseable"),
)


def _plant_in_inspections(df: pl.DataFrame, turn: int, file: str, first_line: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One planted error in a department's inspections (its second row): a kind outside the vocabulary
    or a date that does not exist, by turns; the dirty frame (dates as text) and its truth row."""
    column, value, reason = INSPECTION_ERRORS[turn % len(INSPECTION_ERRORS)]
    row = 1
    dirty = df.with_columns(pl.col(pl.Date).dt.strftime("%Y-%m-%d")).with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
    )
    truth = pl.DataFrame(
        {"file": [file], "line": [first_line + row], "kind": [f"inspection_{reason}"], "column": [column]}
    ).with_columns(expected=pl.lit(reason))
    return dirty, truth


def _break_org_check(uscc: str) -> str:
    """The same code with another organization-code check character and a correct final check."""
    new17 = "0" if uscc[16] != "0" else "1"
    return complete_uscc(uscc[:16] + new17)


def _in_file(truth: pl.DataFrame, written: WrittenFile) -> pl.DataFrame:
    """Truth rows (`_plant`'s) of the file written: `DEPT/name` first."""
    return truth.select(pl.lit(f"{written.path.parent.name}/{written.path.name}").alias("file"), pl.all())


class _Inbox:
    """A city's submissions under `out_dir` being written: each department's objects file open for
    more chunks and the truth of the errors planted in it so far; one generator puts the objects in
    their dialects and plants the errors, in the order the chunks come."""

    def __init__(self, out_dir: Path, dirty: bool, seed: int, dates_as_text: bool = False) -> None:
        self.out_dir, self.dirty, self.dates_as_text = Path(out_dir), dirty, dates_as_text
        self.rng = np.random.default_rng(np.random.PCG64([seed, 1]))
        self.objects: dict[str, _ExportFile] = {}
        self.truths: dict[str, list[pl.DataFrame]] = {}  # of each objects file, to be named when it is closed
        self.planted: dict[str, tuple[int, int]] = {}  # of each objects file: rows so far, errors of each kind

    def folder(self, dept: str) -> Path:
        folder = self.out_dir / "inbox" / dept
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def title(self, dept: str, kind: Kind) -> str | None:
        return _title(dept, kind) if DIALECTS[dept].titled else None

    def add_objects(self, objects: dict[str, pl.DataFrame]) -> None:
        """A chunk of every department's objects, in its dialect, planted, appended to its file."""
        for dept in FORMATS:
            self._add_objects(dept, objects[dept])

    def _add_objects(self, dept: str, frame: pl.DataFrame) -> None:
        if dept not in self.objects:
            fmt, lang = FORMATS[dept]
            self.objects[dept] = _ExportFile(self.folder(dept), "objects", fmt, lang, self.title(dept, "objects"))
            self.truths[dept] = []
            self.planted[dept] = (0, 0)
        file = self.objects[dept]
        objects = in_dialect(frame, DIALECTS[dept], self.rng).with_columns(org_code=pl.lit(None, pl.String))
        if self.dirty:
            # as many errors as the file so far would have in one piece, less those planted in earlier chunks
            rows, planted = self.planted[dept]
            n, kinds = frame.height, len(OBJECT_ERRORS)
            per_kind = min(_per_kind(rows + n, kinds) - planted, n // kinds)
            objects, truth = _plant(objects, OBJECT_ERRORS, self.rng, file.next_line, self.dates_as_text, per_kind)
            self.truths[dept].append(truth)
            self.planted[dept] = (rows + n, planted + per_kind)
        file.append(objects)

    def finish(self, city: City) -> list[WrittenFile]:
        """The city's objects (the last chunk's, after any added before) and every other file, department
        by department; the plans; with `dirty`, `truth.csv`. Returns what was written."""
        written: list[WrittenFile] = []
        truths: list[pl.DataFrame] = []
        for dept, (fmt, lang) in FORMATS.items():
            folder = self.folder(dept)
            first_line = 2 + (TITLE_ROWS if DIALECTS[dept].titled else 0)
            self._add_objects(dept, city.objects[dept])
            inspectors = city.inspectors[dept]
            if self.dirty:
                inspectors, inspectors_truth = _plant(inspectors, INSPECTOR_ERRORS, self.rng, first_line)
            written.append(self.objects.pop(dept).close())
            truths += [_in_file(t, written[-1]) for t in self.truths.pop(dept)]
            written.append(_write(inspectors, folder, "inspectors", fmt, lang, self.title(dept, "inspectors")))
            if self.dirty:
                truths.append(_in_file(inspectors_truth, written[-1]))
            written.append(_write(city.items[dept], folder, "items", fmt, lang, self.title(dept, "items")))
            if dept in city.inspections:  # optional: only the departments that report their inspections
                inspections = city.inspections[dept]
                if self.dirty:
                    name = f"{dept}/inspections.{_effective_format(fmt, inspections.height)[1]}"
                    inspections, t3 = _plant_in_inspections(
                        inspections, list(city.inspections).index(dept), name, first_line
                    )
                    truths.append(t3)
                written.append(_write(inspections, folder, "inspections", fmt, lang, self.title(dept, "inspections")))
        plans = self.out_dir / "plans"
        plans.mkdir(parents=True, exist_ok=True)
        for plan in (city.plan, quarterly_plan(city.plan, 2)):  # the annual plan and its second-quarter batch
            (plans / f"{plan.plan_id}.yaml").write_text(plan_as_yaml(plan), encoding="utf-8")
        if self.dirty:
            pl.concat(truths).sort("file", "line").write_csv(self.out_dir / "truth.csv")
        return written


def write_city(city: City, out_dir: Path, dirty: bool = False, seed: int = 0) -> list[WrittenFile]:
    """The inbox, the plan and (dirty) `truth.csv` under `out_dir` of a city in memory (its objects
    written as one chunk); returns what was written."""
    return _Inbox(out_dir, dirty, seed).finish(city)


def write_generated_city(
    n_objects: int, seed: int, out_dir: Path, dirty: bool = False, chunk_entities: int = CHUNK_ENTITIES
) -> tuple[City, list[WrittenFile]]:
    """`generate_city(n_objects, seed, chunk_entities)` written as `write_city` writes it, each chunk's
    objects appended to their files as the chunk is made: memory bounded by a chunk, whatever the size
    of the city. A city of one chunk is the same bytes as `write_city(generate_city(…))`; in a city of
    several, errors are planted chunk by chunk (the same share) and, with `dirty`, every chunk's dates
    are text (a chunk with no planted error included: a file keeps one schema). Returns the city (its
    objects the last chunk's) and what was written."""
    several = len(chunk_sizes(city_entities(n_objects), chunk_entities)) > 1
    inbox = _Inbox(out_dir, dirty, seed, dates_as_text=dirty and several)
    city = generate_city(n_objects, seed, chunk_entities, emit=inbox.add_objects)
    return city, inbox.finish(city)


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
