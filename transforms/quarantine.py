"""From a Great Expectations validation result to row verdicts: quarantined rows with their
reasons and original values, and the accepted rows (SPEC §4.2).

Accounting is exact by construction: accepted = typed rows not quarantined; read =
accepted + quarantined (checked by the stage).
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from transforms.contract import Rule

QUARANTINE_SCHEMA = {
    "source_file": pl.String, "source_line": pl.Int64, "department": pl.String, "kind": pl.String,
    "reason": pl.String, "column": pl.String, "rule": pl.String, "reasons": pl.List(pl.String), "original_values": pl.String,
}


def failed_lines(results: list[Any], rules: list[Rule]) -> pl.DataFrame:
    """(source_line, rule_index) for every row each expectation found unexpected.

    `results` are GX ExpectationValidationResults; they are matched to rules by the
    `rule_index` kept in each expectation's meta."""
    parts = []
    for r in results:
        index = r.expectation_config.meta["rule_index"]
        lines = [row["source_line"] for row in (r.result.get("unexpected_index_list") or [])]
        if lines:
            parts.append(pl.DataFrame({"source_line": lines, "rule_index": index}, schema={"source_line": pl.Int64, "rule_index": pl.Int64}))
    return pl.concat(parts) if parts else pl.DataFrame(schema={"source_line": pl.Int64, "rule_index": pl.Int64})


def _keep_first_occurrences(failed: pl.DataFrame, typed: pl.DataFrame, rules: list[Rule]) -> pl.DataFrame:
    """Uniqueness rules flag every row of a repeated key; the first (lowest line) is kept."""
    keep = []
    for i, rule in enumerate(rules):
        flagged = failed.filter(pl.col("rule_index") == i)
        if not rule.first_kept or flagged.is_empty():
            continue
        # every row of a repeated key is flagged, so the first occurrence is among the flagged rows
        rows = typed.join(flagged, on="source_line", how="semi").sort("source_line")
        first = rows.filter(pl.struct(list(rule.first_kept)).is_first_distinct()).select("source_line")
        keep.append(flagged.join(first, on="source_line", how="semi"))
    return failed.join(pl.concat(keep), on=["source_line", "rule_index"], how="anti") if keep else failed


def _own_reasons(rows: pl.DataFrame, typed: pl.DataFrame, rule: Rule) -> pl.DataFrame:
    """Rows failing an identifier rule get that identifier's own reason (e.g. uscc_length or
    uscc_check_char), computed by the one rule in transforms/uscc.py."""
    values = rows.join(typed.select("source_line", rule.column), on="source_line", how="left", maintain_order="left")[rule.column]
    own = rule.reason_of(values)  # type: ignore[misc]
    return rows.with_columns(reason=pl.Series(own).fill_null(rule.reason))


def quarantine_rows(typed: pl.DataFrame, raw: pl.DataFrame, results: list[Any], rules: list[Rule], department: str,
                    kind: str) -> pl.DataFrame:
    """One row per quarantined source row: the first rule it breaks names its reason and column;
    `reasons` lists all; `original_values` is the row as submitted (JSON of the raw text)."""
    failed = _keep_first_occurrences(failed_lines(results, rules), typed, rules)
    if failed.is_empty():
        return pl.DataFrame(schema=QUARANTINE_SCHEMA)
    table = pl.DataFrame({
        "rule_index": list(range(len(rules))),
        "reason": [r.reason for r in rules],
        "column": [r.column for r in rules],
        "rule": [r.expectation.expectation_type for r in rules],
    })
    rows = failed.join(table, on="rule_index")
    rows = pl.concat([_own_reasons(rows.filter(pl.col("rule_index") == i), typed, rule) if rule.reason_of else
                      rows.filter(pl.col("rule_index") == i) for i, rule in enumerate(rules)])
    verdicts = rows.sort("source_line", "rule_index").group_by("source_line", maintain_order=True).agg(
        pl.col("reason").first(), pl.col("column").first(), pl.col("rule").first(), reasons=pl.col("reason").unique(maintain_order=True))
    originals = raw.join(verdicts.select("source_line"), on="source_line", how="semi")
    source_file = originals["source_file"][0]
    value_cols = [c for c in raw.columns if c not in ("source_file", "source_line")]
    as_json = [json.dumps(dict(zip(value_cols, vals, strict=True)), ensure_ascii=False)
               for vals in originals.select(value_cols).iter_rows()]
    originals = originals.select("source_line").with_columns(original_values=pl.Series(as_json, dtype=pl.String))
    return verdicts.join(originals, on="source_line").select(
        source_file=pl.lit(source_file), source_line="source_line", department=pl.lit(department), kind=pl.lit(kind),
        reason="reason", column="column", rule="rule", reasons="reasons", original_values="original_values",
    ).sort("source_line")


def accepted_rows(typed: pl.DataFrame, quarantined: pl.DataFrame) -> pl.DataFrame:
    """The rows that go on: every typed row whose line is not quarantined, in file order."""
    return typed.join(quarantined.select("source_line"), on="source_line", how="anti", maintain_order="left")
