"""From a Great Expectations validation result to row verdicts: quarantined rows with their
reasons and original values, and the accepted rows (SPEC §4.2).

GX names a failing row by its position in the file's typed rows (`unexpected_index_list`), and ingest
keeps a file's rows as submitted in the same order, so the verdicts are worked out from those positions
(`at`): only the flagged rows are read, of the typed and the submitted rows alike (at 8M objects with errors
planted in 1% of the rows, AMR's 36,180 quarantined of 5.8M), never the whole file, and the accepted rows are
every row whose position is not quarantined, streamed (department_files.py `write_accepted`). A quarantined
row is reported by (source_file, source_line). Accounting is exact by construction: accepted = typed rows not
quarantined, so read = accepted + quarantined.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import polars as pl

from jointdraw.transforms.contract.suites import Rule
from jointdraw.transforms.normalise import submitted_rows
from jointdraw.transforms.registry import Kind

ROW_KEY = ["source_file", "source_line"]
AT = "at"  # a row's position in its file's typed rows (and in its rows as submitted: the same order)
QUARANTINE_SCHEMA = {
    "source_file": pl.String,
    "source_line": pl.Int64,
    "department": pl.String,
    "kind": pl.String,
    "reason": pl.String,
    "column": pl.String,
    "rule": pl.String,
    "reasons": pl.List(pl.String),
    "original_values": pl.String,
}


@dataclass(frozen=True)
class Verdicts:
    """A file's quarantined rows (QUARANTINE_SCHEMA, by row key) and their positions in its typed rows (`at`,
    ascending): what `accepted_rows` leaves out."""

    quarantined: pl.DataFrame
    at: pl.Series


def file_verdicts(
    typed: pl.LazyFrame, kept: pl.LazyFrame, results: list[Any], rules: list[Rule], kind: Kind
) -> Verdicts:
    """The verdicts on one file's rows from its share of a GX result (`results`: the failing rows by position in
    `typed`). `kept` is what ingest kept of the rows as submitted (normalise.py `raw_to_keep`, same rows, same
    order). Reads only the flagged rows of either."""
    none = Verdicts(pl.DataFrame(schema=QUARANTINE_SCHEMA), pl.Series(AT, [], dtype=pl.get_index_type()))
    failed = failed_positions(results)
    if failed.is_empty():
        return none
    flagged = rows_at(typed, failed[AT].unique().sort())
    verdicts = quarantine_rows(flagged, failed, rules, kind)
    if verdicts.is_empty():  # only the first rows of repeated keys were flagged: they stay
        return none
    at = verdicts[AT].sort()
    typed_rows = flagged.filter(pl.col(AT).is_in(at.implode()))
    quarantined = with_original_values(verdicts, submitted_rows(rows_at(kept, at), typed_rows, kind))
    return Verdicts(quarantined, at)


def rows_at(rows: pl.LazyFrame, at: pl.Series) -> pl.DataFrame:
    """The rows at positions `at` (ascending), in that order, each with its position as `at`: one streaming pass
    over the file, which is never whole in memory."""
    return (
        rows.with_row_index(AT)
        .filter(pl.col(AT).is_in(at.cast(pl.get_index_type()).implode()))
        .collect(engine="streaming")
    )


def accepted_rows(typed: pl.DataFrame, quarantined_at: pl.Series, offset: int = 0) -> pl.DataFrame:
    """The rows that go on: every typed row whose position is not quarantined, in file order. `typed` may be a
    piece of the file's rows whose first is at position `offset` (the file written piece by piece)."""
    positions = pl.int_range(offset, offset + pl.len(), dtype=pl.Int64)
    return typed.filter(~positions.is_in(quarantined_at.cast(pl.Int64).implode()))


def failed_positions(results: list[Any]) -> pl.DataFrame:
    """(at, rule_index) for every row each expectation found unexpected: GX reports rows by their position in
    the file's typed rows; results are matched to rules by the `rule_index` in each expectation's meta."""
    schema = {AT: pl.get_index_type(), "rule_index": pl.Int64}
    parts = [
        pl.DataFrame({AT: rows, "rule_index": [r.expectation_config.meta["rule_index"]] * len(rows)}, schema=schema)
        for r in results
        if (rows := r.result.get("unexpected_index_list"))
    ]
    return pl.concat(parts) if parts else pl.DataFrame(schema=schema)


def _keep_first_occurrences(failed: pl.DataFrame, flagged: pl.DataFrame, rules: list[Rule]) -> pl.DataFrame:
    """Uniqueness rules flag every row of a repeated key; the first (lowest line) is kept. `flagged`: the typed
    rows at the failed positions."""
    keep = []
    for i, rule in enumerate(rules):
        marked = failed.filter(pl.col("rule_index") == i)
        if not rule.first_kept or marked.is_empty():
            continue
        # every row of a repeated key is flagged, so the first occurrence is among the flagged rows
        rows = flagged.filter(pl.col(AT).is_in(marked[AT].implode())).sort(ROW_KEY)
        first = rows.filter(pl.struct(list(rule.first_kept)).is_first_distinct()).select(AT)
        keep.append(marked.join(first, on=AT, how="semi"))
    return failed.join(pl.concat(keep), on=[AT, "rule_index"], how="anti") if keep else failed


def _own_reasons(rows: pl.DataFrame, flagged: pl.DataFrame, rule: Rule) -> pl.DataFrame:
    """Rows failing an identifier rule get that identifier's own reason (e.g. uscc_length or
    uscc_check_char), computed by the one rule in transforms/uscc.py."""
    values = rows.join(flagged.select(AT, rule.column), on=AT, how="left", maintain_order="left")[rule.column]
    return rows.with_columns(reason=rule.reason_of(values).fill_null(rule.reason))  # type: ignore[misc]


def quarantine_rows(flagged: pl.DataFrame, failed: pl.DataFrame, rules: list[Rule], kind: str) -> pl.DataFrame:
    """One row per quarantined source row, with its position `at`: the first rule it breaks names its reason and
    column; `reasons` lists all. `failed`: the failing positions of each rule (`failed_positions`); `flagged`: the
    typed rows at those positions (`rows_at`). (`original_values` is added by `with_original_values`.)"""
    failed = _keep_first_occurrences(failed, flagged, rules)
    if failed.is_empty():
        return pl.DataFrame(
            schema={AT: pl.get_index_type(), **{k: v for k, v in QUARANTINE_SCHEMA.items() if k != "original_values"}}
        )
    table = pl.DataFrame(
        {
            "rule_index": list(range(len(rules))),
            "reason": [r.reason for r in rules],
            "column": [r.column for r in rules],
            "rule": [r.expectation.expectation_type for r in rules],
        }
    )
    rows = failed.join(table, on="rule_index")
    rows = pl.concat(
        [
            _own_reasons(rows.filter(pl.col("rule_index") == i), flagged, rule)
            if rule.reason_of
            else rows.filter(pl.col("rule_index") == i)
            for i, rule in enumerate(rules)
        ]
    )
    return (
        rows.join(flagged.select(AT, *ROW_KEY, department="submitted_by"), on=AT)
        .sort(*ROW_KEY, "rule_index")
        .group_by(AT, maintain_order=True)
        .agg(
            pl.col("source_file", "source_line", "department").first(),
            kind=pl.lit(kind),
            reason=pl.col("reason").first(),
            column=pl.col("column").first(),
            rule=pl.col("rule").first(),
            reasons=pl.col("reason").unique(maintain_order=True),
        )
    )


def with_original_values(verdicts: pl.DataFrame, submitted: pl.DataFrame) -> pl.DataFrame:
    """The verdicts of one file's rows (with their positions `at`) with `original_values`: the row as submitted
    (`submitted`, the rows at those positions, with `at`), as JSON of the file's own columns."""
    value_cols = [c for c in submitted.columns if c not in (*ROW_KEY, AT)]
    as_json = [
        json.dumps(dict(zip(value_cols, vals, strict=True)), ensure_ascii=False)
        for vals in submitted.select(value_cols).iter_rows()
    ]
    originals = submitted.select(AT, original_values=pl.Series(as_json, dtype=pl.String))
    return verdicts.join(originals, on=AT, how="left").select(list(QUARANTINE_SCHEMA)).sort(ROW_KEY)
