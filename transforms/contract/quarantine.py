"""From a Great Expectations validation result to row verdicts: quarantined rows with their
reasons and original values, and the accepted rows (SPEC §4.2).

Rows are identified by (source_file, source_line). Accounting is exact by construction:
accepted = typed rows not quarantined, so read = accepted + quarantined.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from jointdraw.transforms.contract.suites import Rule

ROW_KEY = ["source_file", "source_line"]
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


def failed_rows(results: list[Any], typed: pl.DataFrame) -> pl.DataFrame:
    """(source_file, source_line, rule_index) for every row each expectation found unexpected.
    GX reports rows by their position in `typed` (the frame's index); results are
    matched to rules by the `rule_index` in each expectation's meta."""
    parts = []
    for r in results:
        rows = r.result.get("unexpected_index_list") or []
        if rows:
            parts.append(
                typed.select(ROW_KEY)[rows].with_columns(
                    rule_index=pl.lit(r.expectation_config.meta["rule_index"], pl.Int64)
                )
            )
    schema = {"source_file": pl.String, "source_line": pl.Int64, "rule_index": pl.Int64}
    return pl.concat(parts) if parts else pl.DataFrame(schema=schema)


def _keep_first_occurrences(failed: pl.DataFrame, typed: pl.DataFrame, rules: list[Rule]) -> pl.DataFrame:
    """Uniqueness rules flag every row of a repeated key; the first (lowest line) is kept."""
    keep = []
    for i, rule in enumerate(rules):
        flagged = failed.filter(pl.col("rule_index") == i)
        if not rule.first_kept or flagged.is_empty():
            continue
        # every row of a repeated key is flagged, so the first occurrence is among the flagged rows
        rows = typed.join(flagged, on=ROW_KEY, how="semi").sort(ROW_KEY)
        first = rows.filter(pl.struct(list(rule.first_kept)).is_first_distinct()).select(ROW_KEY)
        keep.append(flagged.join(first, on=ROW_KEY, how="semi"))
    return failed.join(pl.concat(keep), on=[*ROW_KEY, "rule_index"], how="anti") if keep else failed


def _own_reasons(rows: pl.DataFrame, typed: pl.DataFrame, rule: Rule) -> pl.DataFrame:
    """Rows failing an identifier rule get that identifier's own reason (e.g. uscc_length or
    uscc_check_char), computed by the one rule in transforms/uscc.py."""
    values = rows.join(typed.select(*ROW_KEY, rule.column), on=ROW_KEY, how="left", maintain_order="left")[rule.column]
    return rows.with_columns(reason=rule.reason_of(values).fill_null(rule.reason))  # type: ignore[misc]


def quarantine_rows(typed: pl.DataFrame, results: list[Any], rules: list[Rule], kind: str) -> pl.DataFrame:
    """One row per quarantined source row: the first rule it breaks names its reason and column;
    `reasons` lists all. (`original_values` is added by `with_original_values`.)"""
    failed = _keep_first_occurrences(failed_rows(results, typed), typed, rules)
    if failed.is_empty():
        return pl.DataFrame(schema={k: v for k, v in QUARANTINE_SCHEMA.items() if k != "original_values"})
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
            _own_reasons(rows.filter(pl.col("rule_index") == i), typed, rule)
            if rule.reason_of
            else rows.filter(pl.col("rule_index") == i)
            for i, rule in enumerate(rules)
        ]
    )
    verdicts = (
        rows.sort(*ROW_KEY, "rule_index")
        .group_by(ROW_KEY, maintain_order=True)
        .agg(
            pl.col("reason").first(),
            pl.col("column").first(),
            pl.col("rule").first(),
            reasons=pl.col("reason").unique(maintain_order=True),
        )
    )
    departments = typed.select(*ROW_KEY, department="submitted_by")
    return verdicts.join(departments, on=ROW_KEY, how="left").select(
        "source_file",
        "source_line",
        "department",
        kind=pl.lit(kind),
        reason="reason",
        column="column",
        rule="rule",
        reasons="reasons",
    )


def with_original_values(verdicts: pl.DataFrame, raw: pl.DataFrame) -> pl.DataFrame:
    """The verdicts of one file's rows with `original_values`: the row as submitted, as JSON of
    the file's own columns (the raw text ingest kept)."""
    originals = raw.join(verdicts.select(ROW_KEY), on=ROW_KEY, how="semi")
    value_cols = [c for c in raw.columns if c not in ROW_KEY]
    as_json = [
        json.dumps(dict(zip(value_cols, vals, strict=True)), ensure_ascii=False)
        for vals in originals.select(value_cols).iter_rows()
    ]
    originals = originals.select(ROW_KEY).with_columns(original_values=pl.Series(as_json, dtype=pl.String))
    return verdicts.join(originals, on=ROW_KEY, how="left").select(list(QUARANTINE_SCHEMA)).sort(ROW_KEY)


def accepted_rows(typed: pl.DataFrame, quarantined: pl.DataFrame) -> pl.DataFrame:
    """The rows that go on: every typed row not quarantined, in file order."""
    return typed.join(quarantined.select(ROW_KEY), on=ROW_KEY, how="anti", maintain_order="left")
