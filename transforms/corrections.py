"""Corrections (更正) and withdrawals (撤回) of published results (issue 22): the one home of what a
correction is, how it changes the results, and how verify checks it.

A correction names a published result by its key (joint task, department, item), says why, and either
gives the columns that change (the rest stay as published) or withdraws the result. It keeps the row as
published before (`old_row`) and after (`new_row`, none for a withdrawal), as JSON of the submitted
columns (transforms/results.py `SUBMITTED_COLUMNS`), with when, who and from where (the command, or a
department's `corrections.*` file and line). Every results publication applies the plan's corrections
in order on top of the departments' files, so a later results run keeps them: a corrected result is
what its last correction says until another correction; a withdrawn one is gone from the results (its
item is outstanding again) and kept in the corrections.

    corrections_frame(rows) / apply_corrections(submitted, corrections) / correction_problems(...)
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import polars as pl

from jointdraw.transforms.results import PUBLISHED_SCHEMA, RESULT_CHECKS, RESULT_KEY, SUBMITTED_COLUMNS, PlanSide

CORRECTION_SCHEMA = {
    "correction_id": pl.Int64,  # 1, 2, … per plan, in the order made
    "plan_id": pl.String,
    "corrected_at": pl.String,  # ISO 8601, UTC
    "corrected_by": pl.String,  # the operator (the command), or the file's 更正人, else its department
    "source": pl.String,  # `command`, or `<DEPT>/corrections.<ext>:<line>`
    "action": pl.String,  # correct | withdraw
    "joint_task_id": pl.String,
    "department": pl.String,
    "item_id": pl.String,
    "reason": pl.String,
    "changes": pl.String,  # for people: `column: old → new；…` (a withdrawal: 撤回)
    "old_row": pl.String,  # the result as published before (JSON of SUBMITTED_COLUMNS)
    "new_row": pl.String,  # as published after; null for a withdrawal
}
SUBMITTED_SCHEMA = {c: PUBLISHED_SCHEMA[c] for c in SUBMITTED_COLUMNS}
CHANGEABLE = tuple(c for c in SUBMITTED_COLUMNS if c not in RESULT_KEY)


def empty_corrections() -> pl.DataFrame:
    return pl.DataFrame(schema=CORRECTION_SCHEMA)


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def row_json(row: dict[str, Any]) -> str:
    """A result's submitted columns as canonical JSON (fixed key order, dates ISO, lists as lists)."""
    return json.dumps({c: _plain(row.get(c)) for c in SUBMITTED_COLUMNS}, ensure_ascii=False, separators=(",", ":"))


def rows_of_json(texts: list[str]) -> pl.DataFrame:
    """The result rows that JSON texts (row_json) hold, typed as published."""
    rows = []
    for text in texts:
        row = json.loads(text)
        for c, t in SUBMITTED_SCHEMA.items():
            if t == pl.Date and row.get(c):
                row[c] = dt.date.fromisoformat(row[c])
        rows.append(row)
    return pl.DataFrame(rows, schema=SUBMITTED_SCHEMA)


def _shown(value: Any) -> str:
    if value is None:
        return "（空）"
    if isinstance(value, list):
        return "；".join(map(str, value))
    return str(_plain(value))


def make_correction(
    old: dict[str, Any],
    changes: dict[str, Any],
    *,
    withdraw: bool,
    reason: str,
    by: str,
    source: str,
    at: str,
    plan_id: str,
    correction_id: int,
) -> dict[str, Any]:
    """One correction of the published row `old` (a dict of its submitted columns): `changes` (typed
    values of CHANGEABLE columns) replace the old values, or the row is withdrawn."""
    if withdraw:
        new, shown = None, "撤回 withdrawn"
    else:
        new = {**{c: old.get(c) for c in SUBMITTED_COLUMNS}, **changes}
        shown = "；".join(
            f"{c}: {_shown(old.get(c))} → {_shown(new[c])}" for c in CHANGEABLE if _plain(old.get(c)) != _plain(new[c])
        )
    return {
        "correction_id": correction_id,
        "plan_id": plan_id,
        "corrected_at": at,
        "corrected_by": by,
        "source": source,
        "action": "withdraw" if withdraw else "correct",
        **{k: old[k] for k in RESULT_KEY},
        "reason": reason,
        "changes": shown,
        "old_row": row_json(old),
        "new_row": row_json(new) if new is not None else None,
    }


def corrections_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=CORRECTION_SCHEMA) if rows else empty_corrections()


def last_corrections(corrections: pl.DataFrame) -> pl.DataFrame:
    """Each corrected result's last correction."""
    return corrections.sort("correction_id").unique(subset=list(RESULT_KEY), keep="last", maintain_order=True)


def apply_corrections(submitted: pl.DataFrame, corrections: pl.DataFrame) -> pl.DataFrame:
    """`submitted` (SUBMITTED_COLUMNS, source_file, source_line) with each corrected result replaced by its
    last correction's new row (source: the correction), and withdrawn ones removed."""
    if corrections.is_empty():
        return submitted
    last = last_corrections(corrections)
    kept = submitted.join(last.select(RESULT_KEY), on=list(RESULT_KEY), how="anti")
    corrected = last.filter(pl.col("action") == "correct")
    new = rows_of_json(corrected["new_row"].to_list()).with_columns(
        source_file=pl.Series(corrected["source"]), source_line=pl.lit(None, pl.Int64)
    )
    return pl.concat([kept.select(new.columns).cast(new.schema), new]).sort(*RESULT_KEY)


def file_changes(row: dict[str, Any]) -> dict[str, Any]:
    """What a correction file's row (typed) changes: its non-blank CHANGEABLE columns."""
    return {c: row[c] for c in CHANGEABLE if row.get(c) is not None}


def with_correction_checks(typed: pl.DataFrame, plan: PlanSide, published: pl.DataFrame) -> pl.DataFrame:
    """A correction file's typed rows with the result's checks (transforms/results.py; blank values pass,
    as a correction gives only what changes) and its own: it names a result published so far
    (`published`: the plan's results in the warehouse), and it changes something or withdraws."""
    from jointdraw.transforms.results import with_result_checks

    checked = with_result_checks(typed, plan).with_columns(pl.col(list(RESULT_CHECKS)).fill_null(True))
    known = published.select(RESULT_KEY).unique().with_columns(_known=pl.lit(True))
    return (
        checked.with_row_index("_row")
        .join(known, on=list(RESULT_KEY), how="left")
        .sort("_row")
        .with_columns(
            corrects_published=pl.col("_known").fill_null(False)
            | pl.any_horizontal(pl.col(list(RESULT_KEY)).is_null()),
            says_what_changes=(pl.col("action") == "withdraw").fill_null(False)
            | pl.any_horizontal(pl.col(list(CHANGEABLE)).is_not_null()),
        )
        .drop("_row", "_known")
    )


def correction_problems(corrections: pl.DataFrame, results: pl.DataFrame) -> list[str]:
    """What verify finds wrong between the corrections and the published results (regulator/results/):
    ids 1…n; each correction's old row is the previous correction's new row of its result; the last
    correction of a result is the published row (its submitted columns), a withdrawn result is not
    published."""
    problems = []
    ids = sorted(corrections["correction_id"].to_list())
    if ids != list(range(1, len(ids) + 1)):
        problems.append(f"corrections: ids are {ids[:10]}…, expected 1…{len(ids)} in order")
    for key, group in corrections.sort("correction_id").group_by(RESULT_KEY, maintain_order=True):
        rows = group.to_dicts()
        for before, after in zip(rows, rows[1:], strict=False):
            if after["old_row"] != before["new_row"]:
                problems.append(
                    f"corrections: #{after['correction_id']} of {'/'.join(key)} does not start from what "
                    f"#{before['correction_id']} made it"
                )
    last = last_corrections(corrections)
    published = results.select(SUBMITTED_COLUMNS).cast(SUBMITTED_SCHEMA)
    for row in last.iter_rows(named=True):
        key = {k: row[k] for k in RESULT_KEY}
        found = published.filter(*[pl.col(k) == v for k, v in key.items()])
        name = f"correction #{row['correction_id']} ({'/'.join(key.values())})"
        if row["action"] == "withdraw":
            if found.height:
                problems.append(f"corrections: {name} withdrew the result, but results.parquet still holds it")
        elif found.height != 1 or row_json(found.row(0, named=True)) != row["new_row"]:
            problems.append(f"corrections: {name}: the published result is not the correction's new row")
    return problems
