"""Raw registry text → typed, normalised columns (SPEC §3, §4.1).

Codes: full-width to ASCII, no whitespace, upper case. Text: trimmed, inner runs of
white space folded. Dates: ISO, slashes, 8 digits, 年月日, or an Excel serial number;
typed `Date`, with the submitted text kept beside it in `<col>_text` so a date that
cannot be read is quarantined with its original value, never silently null.
Enumerations: every known spelling mapped to the canonical value (compared after NFKC, lower case,
without spaces: 吊销，未注销 = 吊销,未注销); unknown values kept as submitted. Lists: split on
; ； , ， 、 |. Registry values as systems write them, through the code tables: the entity type as
registered (transforms/entity_types.py), the district by code or name or from the address
(transforms/districts.py), the industry in any GB/T 4754 form (transforms/industry.py). A column
the file lacks comes out null (validation decides whether that is allowed).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from functools import cache

import numpy as np
import polars as pl

from jointdraw.transforms.districts import district_column
from jointdraw.transforms.entity_types import entity_type_columns
from jointdraw.transforms.industry import industry_column
from jointdraw.transforms.registry import COLUMNS, DERIVED, ENUMS, Kind
from jointdraw.transforms.uscc import INVISIBLE, normalise_code, normalise_org_code

LIST_SEPARATORS = r"[;；,，、|]"
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日", "%Y.%m.%d")
EXCEL_EPOCH = pl.date(1899, 12, 30)  # Excel's day 0 (serial numbers count days from it)
TIME_OF_DAY = r"[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$"  # XLSX cells read as text carry 00:00:00


def normalise_text(expr: pl.Expr) -> pl.Expr:
    e = expr.str.replace_all(INVISIBLE, "").str.replace_all(r"\s+", " ").str.strip_chars()
    return pl.when(e == "").then(None).otherwise(e)


def parse_date(expr: pl.Expr) -> pl.Expr:
    """A date from the text forms departments use; null when none fits."""
    text = expr.str.normalize("NFKC").str.strip_chars().str.replace(TIME_OF_DAY, "")
    serial = pl.when(text.str.contains(r"^\d{5}$")).then(
        EXCEL_EPOCH + pl.duration(days=text.cast(pl.Int64, strict=False))
    )
    return pl.coalesce([text.str.to_date(f, strict=False) for f in DATE_FORMATS] + [serial])


def enum_key(text: str) -> str:
    """How an enumeration's spellings are compared: NFKC, lower case, no spaces."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


@cache
def _spellings(enum: str) -> dict[str, str]:
    return {enum_key(k): v for k, v in ENUMS[enum].items()}


def _enum_key_expr(text: pl.Expr) -> pl.Expr:
    return text.str.replace_all(r"\s+", "").str.to_lowercase()


def _enum(expr: pl.Expr, enum: str) -> pl.Expr:
    text = normalise_text(expr.str.normalize("NFKC"))
    return _enum_key_expr(text).replace_strict(_spellings(enum), default=text)


def _list(expr: pl.Expr, codes: bool) -> pl.Expr:
    parts = expr.str.replace_all(LIST_SEPARATORS, ";").str.split(";")
    element = normalise_code(pl.element()) if codes else normalise_text(pl.element())
    return parts.list.eval(element).list.drop_nulls().fill_null([])


def _list_enum(expr: pl.Expr, enum: str) -> pl.Expr:
    """A list of enumeration values (codes or names); unknown ones are kept as submitted."""
    parts = expr.str.replace_all(LIST_SEPARATORS, ";").str.split(";")
    element = normalise_text(pl.element().str.normalize("NFKC"))
    return (
        parts.list.eval(_enum_key_expr(element).replace_strict(_spellings(enum), default=element))
        .list.drop_nulls()
        .fill_null([])
    )


def _rule(how: str) -> Callable[[pl.Expr], pl.Expr]:
    if how == "code":
        return normalise_code
    if how == "org_code":
        return normalise_org_code
    if how == "text":
        return normalise_text
    if how == "date":
        return parse_date
    if how.startswith("enum:"):
        return lambda e: _enum(e, how.removeprefix("enum:"))
    if how in ("list", "list_code"):
        return lambda e: _list(e, codes=how == "list_code")
    if how.startswith("list_enum:"):
        return lambda e: _list_enum(e, how.removeprefix("list_enum:"))
    raise ValueError(f"unknown column rule {how!r}")  # pragma: no cover - COLUMNS is static


# Values matching these are already normal: the rule runs only on the others. (A word of text is neither white
# space nor an invisible character: `\S` alone let a zero-width space pasted into a name through.)
_WORD = rf"[^\s{INVISIBLE.removeprefix('[').removesuffix(']')}]+"
ALREADY_NORMAL = {"code": r"^[0-9A-Z]+$", "org_code": r"^[0-9A-Z]+$", "text": rf"^{_WORD}( {_WORD})*$"}


def _rule_over(values: pl.Series, rule: Callable[[pl.Expr], pl.Expr]) -> pl.Series:
    """`rule` on every value, in a lazy query (see `_apply`)."""
    return values.to_frame().lazy().select(rule(pl.col(values.name))).collect().to_series()


def _normal_already(values: pl.Series | pl.Expr, already_normal: str) -> pl.Series | pl.Expr:
    """Whether each value is normal already (matches the rule's `ALREADY_NORMAL` pattern; null is): its rule would
    give it back unchanged."""
    return values.str.contains(already_normal).fill_null(True)


def _apply(
    values: pl.Series, rule: Callable[[pl.Expr], pl.Expr], per_unique: bool, already_normal: str | None = None
) -> pl.Series:
    """`rule` over a column. Registry columns repeat a lot (dates, classes, districts, enums):
    those are normalised once per distinct value and looked up (`_per_distinct`); columns of distinct values
    (USCC, name, address) are normalised only where they are not normal already. Both are
    10-20x faster at city scale than the rule on every row, with the same result.

    The rule runs in a lazy query: its optimiser computes a sub-expression a rule names twice
    (`normalise_code`'s cleaned text, in three branches) once; an eager select computed it three times."""
    if not per_unique:
        if already_normal is None:
            return _rule_over(values, rule).alias(values.name)
        todo = np.flatnonzero(~_normal_already(values, already_normal).to_numpy())
        fixed = _rule_over(values.gather(todo), rule)
        return values.clone().scatter(todo, fixed) if len(todo) else values  # scatter writes in place: not the caller's
    return _per_distinct(values, {values.name: rule})[values.name]


def _per_distinct(values: pl.Series, rules: dict[str, Callable[[pl.Expr], pl.Expr]]) -> dict[str, pl.Series]:
    """Each of `rules` (output name → rule) over `values`, computed once per distinct value and mapped back to the
    rows. An output its rule leaves unchanged (`_left_unchanged`) is `values` itself: most columns of a system's
    export (AMR's batches of 500,000 rows at 8M: 4-6 ms instead of 10-11 for its credit class, legacy and
    organisation codes). The others are looked up row by row (`_looked_up`) instead of joined back over the rows
    (a batch's status 17-20 ms instead of 26, its tags 18 instead of 23-25)."""
    distinct = (
        values.to_frame()
        .lazy()
        .unique()
        .with_columns(rule(pl.col(values.name)).alias(f"_{out}") for out, rule in rules.items())
        .collect()
    )
    kept = _left_unchanged(distinct, values.name, list(rules))
    return {
        name: values.alias(name) if name in kept else _looked_up(values, distinct[values.name], distinct[f"_{name}"])
        for name in rules
    }


def _looked_up(values: pl.Series, keys: pl.Series, found: pl.Series) -> pl.Series:
    """`found`'s value for each of `values`, every one of which is among `keys` (nulls too): by a lookup
    (`replace_strict`), or for a list (tags, codes), which a lookup does not return, gathered by its key's
    position."""
    name = found.name.removeprefix("_")
    if not found.dtype.is_nested():
        return values.replace_strict(keys, found, return_dtype=found.dtype).alias(name)
    position = values.replace_strict(keys, pl.int_range(keys.len(), dtype=pl.UInt32, eager=True))
    return found.gather(position).alias(name)


def _left_unchanged(distinct: pl.DataFrame, column: str, outputs: list[str]) -> set[str]:
    """The outputs whose rule gives every distinct value of `column` back unchanged: the same type, the same values,
    nulls where they were (`distinct`: the values, and each output's as `_<output>`). Enumerations already
    canonical, codes already normal, a column of nulls."""
    return {
        out
        for out in outputs
        if distinct[f"_{out}"].equals(distinct[column], check_names=False, check_dtypes=True, null_equal=True)
    }


def few_distinct(how: str) -> bool:
    """Whether a column normalised by rule `how` holds few distinct values however many rows (classes, enums,
    dates, lists of codes), unlike text and codes (names, addresses, USCCs): normalised once per distinct value,
    and written dictionary-encoded."""
    return how not in ("text", "code", "org_code")


def dictionary_columns(kind: Kind) -> list[str]:
    """The columns of the typed table of `kind` that hold few distinct values (`few_distinct`, the derived
    registered type and its code, `<date>_text`, `submitted_by`, `source_file`): ingest writes them
    dictionary-encoded, which the next stages read faster (the merge at 8M: 2 s less) for a smaller file."""
    columns = [name for name, how in COLUMNS[kind].items() if few_distinct(how)]
    dates = [f"{name}_text" for name, how in COLUMNS[kind].items() if how == "date"]
    derived_text = [c for c in DERIVED.get(kind, ()) if c in ("registered_type", "registered_type_code")]
    return [*columns, *derived_text, *dates, "submitted_by", "source_file"]


def raw_dictionary_columns(kind: Kind, submitted: Iterable[str]) -> list[str]:
    """The columns of a file's rows as ingest keeps them (`raw_to_keep`: the `submitted` columns under SPEC names,
    `source_file`, `source_line`) that hold few distinct values (`few_distinct`, `source_file`): written
    dictionary-encoded too. AMR's first 3M rows at 8M: 0.6 CPU s instead of 0.8-1.3, 26 MB instead of 64, read
    back in 0.1 s instead of 0.4."""
    return [*(name for name in submitted if few_distinct(COLUMNS[kind][name])), "source_file"]


# Rules whose typed value is the submitted text when that text is already normal, and null when it is null: a
# raw column of one of them needs to keep the text only where it differs (`raw_to_keep`, `submitted_rows`).
KEPT_WHERE_CHANGED = ("text", "code", "org_code")


def _kept_where_changed(kind: Kind, columns: list[str]) -> list[str]:
    return [c for c in columns if COLUMNS[kind].get(c) in KEPT_WHERE_CHANGED]


def raw_to_keep(raw: pl.DataFrame, typed: pl.DataFrame, kind: Kind) -> pl.DataFrame:
    """What ingest keeps of a file's rows as submitted (`raw`, beside their typed rows `typed`, same rows, same
    order): every column, but a text or code column (names, addresses, USCCs: `KEPT_WHERE_CHANGED`) only where
    its text differs from the typed value, null elsewhere. Nothing is lost: such a typed value is null only when
    the text was (or was blank), so `submitted_rows` gives the rows back whole. At 8M objects the raw file is a
    third of the size, and 1.5 CPU s cheaper to write. Checked, not assumed: a typed value where the text was null
    would be taken for the text, so it is refused."""
    columns = _kept_where_changed(kind, raw.columns)
    if invented := [c for c in columns if (raw[c].is_null() & typed[c].is_not_null()).any()]:
        raise ValueError(f"{kind}: typed values where nothing was submitted in {', '.join(invented)}")
    return raw.with_columns(pl.when(pl.col(c) == typed[c]).then(None).otherwise(pl.col(c)).alias(c) for c in columns)


def submitted_rows(kept: pl.DataFrame, typed: pl.DataFrame, kind: Kind) -> pl.DataFrame:
    """A file's rows as submitted, from what ingest kept of them (`raw_to_keep`) and their typed rows (the same rows
    in the same order)."""
    if kept.height != typed.height or not kept["source_line"].equals(typed["source_line"]):
        raise ValueError(f"the raw and typed rows of a {kind} file are not the same rows")
    return kept.with_columns(pl.coalesce(pl.col(c), typed[c]).alias(c) for c in _kept_where_changed(kind, kept.columns))


# Rules of their own (code tables, once per distinct value), and the size of a batch normalised in one query
CODE_TABLES = ("entity_type", "district", "industry")
ONE_QUERY_ROWS = 15_000  # measured: one query is quicker up to 14,000 object rows, slower from 30,000
# Rules whose cost grows with a list's every element (a code's or an enumeration's rule on each): once per distinct
# value in a batch of any size (9,235 inspectors' item scopes: 287 ms a row at a time, 7 ms for their 66 distinct)
PER_DISTINCT_ALWAYS = ("list_code", "list_enum")


def normalise_registry(raw: pl.DataFrame, kind: Kind, department: str) -> pl.DataFrame:
    """The typed table of one file: SPEC columns in SPEC order, then the derived columns (objects:
    `registered_type`, `registered_type_code`, `foreign_invested`, `branch`, `type_conflict`), `<date>_text` columns,
    `submitted_by`, `source_file`, `source_line`. Same rows, same order."""
    n = raw.height

    def submitted(name: str) -> pl.Series:
        return raw[name] if name in raw.columns else pl.repeat(None, n, dtype=pl.String, eager=True).alias(name)

    rules = {name: how for name, how in COLUMNS[kind].items() if how not in CODE_TABLES}
    ruled = _ruled_columns(rules, submitted) if n > ONE_QUERY_ROWS else _ruled_in_one_query(rules, submitted)
    cols, extra = [], []
    for name, how in COLUMNS[kind].items():
        if how == "entity_type":
            types = entity_type_columns(submitted(name), ruled["uscc"])
            cols.append(types["entity_type"])
            extra += [types[c] for c in DERIVED["objects"]]
        elif how == "district":
            cols.append(district_column(submitted(name), submitted("address") if "address" in COLUMNS[kind] else None))
        elif how == "industry":
            cols.append(industry_column(submitted(name)))
        else:
            cols.append(ruled[name])
            if how == "date":
                extra.append(ruled[f"{name}_text"])
    return pl.DataFrame([*cols, *extra]).with_columns(
        submitted_by=pl.lit(department), source_file=raw["source_file"], source_line=raw["source_line"]
    )


def _ruled_columns(rules: dict[str, str], submitted: Callable[[str], pl.Series]) -> dict[str, pl.Series]:
    """The columns of `rules` (name → rule) normalised, and `<date>_text`: column by column, each the quickest way
    for its values (`_apply`)."""
    ruled = {}
    for name, how in rules.items():
        values = submitted(name)
        if how == "date":  # the date and the text it was read from, in one pass over the distinct values
            ruled |= _per_distinct(values, {name: parse_date, f"{name}_text": normalise_text})
            continue
        repetitive = few_distinct(how) or (how != "text" and values.approx_n_unique() < values.len() // 4)
        ruled[name] = _apply(values, _rule(how), per_unique=repetitive, already_normal=ALREADY_NORMAL.get(how))
    return ruled


def _ruled_in_one_query(rules: dict[str, str], submitted: Callable[[str], pl.Series]) -> dict[str, pl.Series]:
    """What `_ruled_columns` gives, for a small batch (the demo city's files, a quarterly correction, a test's
    rows): the rules in one query, but lists of codes or enumeration values (`PER_DISTINCT_ALWAYS`). Column by
    column took some 60 polars queries a batch, at 0.2–2 ms each whatever the rows: most of a small file's ingest."""
    by_row = {name: how for name, how in rules.items() if not how.startswith(PER_DISTINCT_ALWAYS)}
    frame = pl.DataFrame([submitted(name) for name in by_row])
    normal = _columns_already_normal(frame, by_row)
    exprs = [pl.col(name) if name in normal else _rule(how)(pl.col(name)).alias(name) for name, how in by_row.items()]
    exprs += [normalise_text(pl.col(name)).alias(f"{name}_text") for name, how in by_row.items() if how == "date"]
    out = frame.lazy().select(exprs).collect()
    per_distinct = {name: how for name, how in rules.items() if name not in by_row}
    return {**{c: out[c] for c in out.columns}, **_ruled_columns(per_distinct, submitted)}


def _columns_already_normal(frame: pl.DataFrame, rules: dict[str, str]) -> set[str]:
    """The columns whose every value is normal already (`ALREADY_NORMAL`): their rule would change nothing, and a
    code's rule on every row costs more than the rest of a small batch's query (14,000 USCCs: 19 ms of 93)."""
    checked = [name for name, how in rules.items() if how in ALREADY_NORMAL]
    if not checked:
        return set()
    flags = frame.select(_normal_already(pl.col(c), ALREADY_NORMAL[rules[c]]).all() for c in checked)
    return {c for c in checked if flags[c].item()}
