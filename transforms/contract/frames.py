"""What Great Expectations judges for a batch of typed rows (SPEC §4.2), and its verdicts back on the rows.

A row rule's verdict on a row depends on the row's value in the rule's column alone, but for the
uniqueness rules, which depend on every row of the file. So a batch is judged on two frames:

    per_row     uniqueness keys (every row), identifiers and free text (USCC, names: nearly every
                value differs, there is nothing to share)
    per_value   every other rule column — code lists, classes, districts, industries, dates, the
                derived flags — once per distinct value (8M object rows hold 9 districts, 4 credit
                classes, 27k date texts)

and `row_result` puts a per-value verdict back on the rows: a row fails exactly when its value does.
What comes out is what one GX validation of every row gives (the failing rows' positions in the
batch, the counts and percentages per row), so the verdicts, the quarantine and Data Docs do not
depend on how GX was fed. Measured on 7.9M object rows: most of the stage's time had gone into GX
evaluating rules on millions of repeated values and into moving them to pandas.
"""

from __future__ import annotations

import bisect
import copy
from collections import Counter
from dataclasses import dataclass
from typing import Any

import great_expectations.expectations as gxe
import numpy as np
import pandas as pd
import polars as pl

from jointdraw.transforms.contract.suites import MAX_TEXT, Rule
from jointdraw.transforms.registry import COLUMNS, Kind

DOCS_ROWS = 20  # failing values kept per expectation and file (as many as Data Docs show)
ROW_BY_ROW = ("code", "text", "org_code")  # how COLUMNS normalises identifiers and free text: judged row by row


@dataclass
class ValidationFrames:
    """A batch of typed rows as the suite judges it (`validation_frame`). Positions are the rows'
    in the batch, which is how GX and `row_result` report failing rows."""

    rows: pl.DataFrame  # every rule column, row by row: where verdicts land, what the docs show
    per_row: pd.DataFrame  # what GX judges on every row (uniqueness keys as the position of their first row)
    per_value: pd.DataFrame  # column c's distinct values first (len(distinct[c])), then its first value again
    distinct: dict[str, pl.Series]

    @property
    def height(self) -> int:
        return self.rows.height

    def row_result(self, result: Any) -> Any:
        """A GX result on `per_row` or `per_value` as GX gives it on every row of the batch: the
        failing rows in batch order (for a per-value rule, the rows whose value failed), counts and
        percentages per row, the failing values as the rows hold them."""
        found = sorted(result.result.get("unexpected_index_list") or [])
        column = result.expectation_config.kwargs["column"]
        if column in self.distinct and found:
            distinct = self.distinct[column]
            bad = distinct.gather([i for i in found if i < distinct.len()])  # past it: padding, the first value again
            values = self.rows[column]
            hit = values.is_in(bad.drop_nulls().implode()).fill_null(False)
            if bad.null_count():
                hit = hit | values.is_null()
            found = np.flatnonzero(hit.to_numpy()).tolist()
        return file_share(result, found, 0, self.height, self)


def validation_frame(typed: pl.DataFrame | pl.LazyFrame, kind: Kind, rules: list[Rule]) -> ValidationFrames:
    """The batch's rule columns and the two frames GX judges (see the module's docstring), with the
    derived columns the rules read: `text_fits` (no text value longer than MAX_TEXT), `identifier`
    (objects: USCC, organization code or registration number present, else null), and the
    uniqueness keys as 64-bit fingerprints, `row_digest` (the whole row with its file: duplicate
    rows in one column instead of a compound key) and `<id>_in_file` (the file and the id). Lists
    are joined with `;`. The quarantine re-checks flagged rows on their exact values, so a
    fingerprint collision can never reject a row.

    Given a LazyFrame (a scan of the typed files) it streams: only the rule columns are ever whole
    in memory, not the typed rows. Whole rows are read only where they matter (`_whole_rows`)."""
    spec, text = list(COLUMNS[kind]), [c for c, how in COLUMNS[kind].items() if how == "text"]
    judged = list(dict.fromkeys(r.expectation.column for r in rules))
    ids = [r.column for r in rules if r.reason == "duplicate_id"]
    typed = typed.lazy()
    whole_row = pl.struct("source_file", *spec).hash(seed=0)
    derived = {
        # at most MAX_TEXT bytes is at most MAX_TEXT characters; the characters of longer values are counted below
        "text_fits": pl.max_horizontal([pl.col(c).str.len_bytes() for c in text]).fill_null(0) <= MAX_TEXT,
        **(
            {
                "identifier": pl.when(
                    pl.any_horizontal(pl.col("uscc", "org_code", "legacy_reg_no").is_not_null())
                ).then(True)
            }
            if kind == "objects"
            else {}
        ),
        # the file and the id, a null id too: only rows that share theirs with another row can be duplicate rows
        **{f"{c}_key": pl.struct("source_file", c).hash(seed=0) for c in ids},
        **{
            f"{c}_in_file": pl.when(pl.col(c).is_not_null()).then(pl.struct("source_file", c).hash(seed=0)) for c in ids
        },
        **({} if ids else {"row_digest": whole_row}),
    }
    schema = typed.collect_schema()
    names = schema.names()
    presence = [c for c in judged if c in names and _presence_only(c, rules)]
    # text judged once per distinct value (classes, districts, dates as written) is held as categories: every
    # row's value costs 4 bytes, not a 16-byte string view (at 16M object rows, over a GB of the stage's peak)
    repeated_text = {
        c for c in names if schema[c] == pl.String and COLUMNS[kind].get(c) not in ROW_BY_ROW and c not in presence
    }
    df = typed.select(
        *[
            pl.col(c).cast(pl.Categorical) if c in repeated_text else pl.col(c)
            for c in names
            if c in judged and c not in presence
        ],
        # a column only required to be there: whether it is, is all its rule reads (true, else null)
        *[pl.when(pl.col(c).is_not_null()).then(True).alias(c) for c in presence],
        **derived,
    ).collect(engine="streaming")
    shared = _repeated(df[f"{ids[0]}_key"].to_numpy()) if ids else np.zeros(df.height, bool)
    df = _whole_rows(df, typed, whole_row, text, f"{ids[0]}_key" if ids else None, shared)
    keys = {"row_digest", *(f"{c}_in_file" for c in ids)}
    rows = df.select(
        [
            pl.col(c).list.join(";") if isinstance(df.schema[c], pl.List) else pl.col(c)
            for c in judged
            if c in df.columns
        ]
    )
    del df
    # the keys that may repeat: those of rows sharing their (file, id); without an id rule, any
    maybe_repeated = {"row_digest": shared if ids else None, **{f"{c}_in_file": shared for c in ids[:1]}}
    per_row = [c for c in rows.columns if c in keys or (COLUMNS[kind].get(c) in ROW_BY_ROW and c not in presence)]
    distinct = _distinct_values(rows, [c for c in rows.columns if c not in per_row])
    return ValidationFrames(
        rows=rows,
        per_row=rows.select(
            [_first_positions(rows[c], maybe_repeated.get(c)) if c in keys else pl.col(c) for c in per_row]
        ).to_pandas(use_pyarrow_extension_array=True),
        per_value=_padded(distinct).to_pandas(use_pyarrow_extension_array=True),
        distinct=distinct,
    )


def _whole_rows(
    df: pl.DataFrame, typed: pl.LazyFrame, whole_row: pl.Expr, text: list[str], key: str | None, shared: np.ndarray
) -> pl.DataFrame:
    """`df` with what needs the whole typed row, read again for those rows only. `row_digest`:
    identical rows have the same file and id (`key`), so only rows whose (file, id) repeats (`shared`)
    can be duplicates: they get the whole row's hash, the others keep their (file, id) hash, unique
    already (hashing every whole row of 7.9M objects took longer than GX's whole suite); without an id
    rule `df` has every row's. `text_fits`: counted in characters where the bytes passed MAX_TEXT."""
    long = ~df["text_fits"].to_numpy()
    again = pl.Series("at", np.flatnonzero(shared | long)).cast(pl.get_index_type())
    if again.is_empty():
        return df.with_columns(row_digest=pl.col(key)) if key else df
    whole = (
        typed.with_row_index("at")
        .filter(pl.col("at").is_in(again.implode()))
        .select(
            "at",
            digest=whole_row,
            fits=pl.max_horizontal([pl.col(c).str.len_chars() for c in text]).fill_null(0) <= MAX_TEXT,
        )
        .collect(engine="streaming")
    )
    at = whole["at"].to_numpy()
    digest, fits = whole.filter(pl.Series(shared[at])), whole.filter(pl.Series(long[at]))
    return df.with_columns(
        df["text_fits"].scatter(fits["at"], fits["fits"]),
        *([df[key].scatter(digest["at"], digest["digest"]).alias("row_digest")] if key else []),
    )


def _presence_only(column: str, rules: list[Rule]) -> bool:
    """Whether every rule on `column` only requires a value (not null): then GX judges whether there is
    one, not what it is (7.9M object names need not be read into pandas to be found present)."""
    return all(
        isinstance(r.expectation, gxe.ExpectColumnValuesToNotBeNull) for r in rules if r.expectation.column == column
    )


def _repeated(values: np.ndarray) -> np.ndarray:
    """Where a value occurs more than once (a sort: 0.1 s for 8M fingerprints, where hashing them took 2 s)."""
    ordered = np.sort(values)
    twice = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    return pl.Series(values).is_in(pl.Series(twice).implode()).to_numpy() if len(twice) else np.zeros(len(values), bool)


def _first_positions(keys: pl.Series, shared: np.ndarray | None = None) -> pl.Series:
    """For each row, the position of the first row with the same key (its own when the key is unique,
    null when it is null): what GX's uniqueness rule judges, since two rows' keys are equal exactly when
    these are, and pandas finds duplicates among small integers 5-10x faster than among fingerprints.
    `shared`: the rows whose key may repeat, when known (the others are unique)."""
    present = keys.is_not_null().to_numpy()
    values = keys.fill_null(0).to_numpy()
    first = np.arange(keys.len(), dtype=np.int64)
    maybe = np.flatnonzero(present if shared is None else present & shared)
    where = maybe[_repeated(values[maybe])] if len(maybe) else maybe
    if len(where):
        groups = pl.DataFrame({"key": values[where], "at": where}).select(pl.col("at").min().over("key"))
        first[where] = groups["at"].to_numpy()
    out = pl.Series(keys.name, first, dtype=pl.Int32 if keys.len() < 2**31 else pl.Int64)
    return out.set(keys.is_null(), None) if keys.null_count() else out


def _distinct_values(rows: pl.DataFrame, columns: list[str]) -> dict[str, pl.Series]:
    """Each column's distinct values (nulls last), all columns at once."""
    if not columns:
        return {}
    found = (
        rows.lazy()
        .select([_as_text(pl.col(c).unique(), rows.schema[c]).sort(nulls_last=True).implode() for c in columns])
        .collect()
    )
    return {c: found[c][0].alias(c) for c in columns}


def _as_text(values: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Categories back to text (the values GX judges and Data Docs show are the text as submitted)."""
    return values.cast(pl.String) if isinstance(dtype, pl.Categorical) else values


def _padded(distinct: dict[str, pl.Series]) -> pl.DataFrame:
    """The distinct values as one frame: a shorter column goes on with its first value (judged
    already, so the padding changes no verdict; `row_result` reads only each column's own values)."""
    if not distinct:
        return pl.DataFrame()
    length = max(s.len() for s in distinct.values())
    return pl.DataFrame(
        [s.append(s.gather([0] * (length - s.len()))) if s.len() < length else s for s in distinct.values()]
    )


def file_share(result: Any, found: list[int], start: int, stop: int, frames: ValidationFrames) -> Any:
    """One expectation's result for the rows start…stop-1 of a batch, given its failing rows
    `found` (batch positions in that range, ascending): the failing rows renumbered from `start`,
    counts, percentages and success for those rows alone, the first DOCS_ROWS failing values (what
    the docs show; the verdicts read positions)."""
    if (result.exception_info or {}).get("raised_exception"):
        return result  # GX could not judge: the failure stands as GX reported it
    column = result.expectation_config.kwargs.get("column")
    values = frames.rows[column] if column in frames.rows.columns else None
    n = stop - start
    missing = values.slice(start, n).null_count() if values is not None else 0
    share = {**result.result, "element_count": n, "unexpected_count": len(found)}
    share["unexpected_index_list"] = [i - start for i in found]
    share["unexpected_index_query"] = f"df.filter(items={share['unexpected_index_list']}, axis=0)"
    shown = (
        values.gather(found[:DOCS_ROWS])
        .cast(pl.String if isinstance(values.dtype, pl.Categorical) else values.dtype)  # as `_as_text`
        .to_pandas(use_pyarrow_extension_array=True)
        .tolist()
        if values is not None
        else []
    )
    for key in ("unexpected_list", "partial_unexpected_list"):
        if key in result.result:
            share[key] = shown
    if "partial_unexpected_index_list" in result.result:
        share["partial_unexpected_index_list"] = share["unexpected_index_list"][:DOCS_ROWS]
    if "partial_unexpected_counts" in result.result:
        share["partial_unexpected_counts"] = [{"value": v, "count": c} for v, c in Counter(shown).most_common()]
    present = n - missing if "missing_count" in result.result else n
    if "missing_count" in result.result:
        share["missing_count"], share["missing_percent"] = missing, missing / n * 100 if n else None
    for key, base in (
        ("unexpected_percent", present),
        ("unexpected_percent_nonmissing", present),
        ("unexpected_percent_total", n),
    ):
        if key in result.result:
            share[key] = len(found) / base * 100 if base else None  # as GX computes it
    one = copy.copy(result)
    one.result, one.success = share, not found
    return one


def result_slice(result: Any, start: int, stop: int, frames: ValidationFrames) -> Any:
    """The share of one file in a GX result over a batch of files (its rows start…stop-1): each
    expectation's failing rows renumbered from the file's first row, its counts, percentages and
    success for the file alone, and the suite's statistics. Row rules only (every rule of a registry
    suite is one): a file's share is what validating it alone gives."""
    part = copy.copy(result)
    part.results = []
    for r in result.results:
        found = r.result.get("unexpected_index_list") or []
        part.results.append(
            file_share(
                r, found[bisect.bisect_left(found, start) : bisect.bisect_left(found, stop)], start, stop, frames
            )
        )
    return with_statistics(part)


def with_statistics(result: Any) -> Any:
    """`result` with its suite statistics and success counted from its expectations' results."""
    passed = sum(1 for r in result.results if r.success)
    result.statistics = {
        **(result.statistics or {}),
        "evaluated_expectations": len(result.results),
        "successful_expectations": passed,
        "unsuccessful_expectations": len(result.results) - passed,
        "success_percent": 100 * passed / len(result.results) if result.results else None,
    }
    result.success = passed == len(result.results)
    return result
