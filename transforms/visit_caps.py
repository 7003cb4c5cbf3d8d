"""Visit caps (检查频次上限): how often one entity may be inspected in a calendar year, counting every
kind of inspection the departments report in `<DEPT>/inspections.*` — random draws, complaints,
referrals, licence checks, others — but the kinds the plan exempts (SPEC §4.4: "minus exclusions").

The plan's `visit_caps` (transforms/plan.py `VisitCaps`) turn into exclusions, one row per entity
and cap reached (per department: per task of that department):

* `visit_cap_total`: inspections by every department at every level ≥ `total` → every task;
* `visit_cap_department`: inspections by department D ≥ `per_department` → each of D's tasks only;
* `visit_cap_level`: inspections by authorities of the plan's own `level` ≥ `per_level[level]` →
  every task (the caps of other levels bind other levels' plans, not this one).

What counts: an accepted inspection record of the plan's calendar year (the year its period starts),
dated before the period starts, of a kind not in `exempt_kinds`. Only the submitted records count:
the platform's own earlier draws count once departments report them (kind random), and through the
plan's `yearly_caps` (transforms/exclusions.py), never twice here. Only entities of the directory
are listed (an exclusion of an entity that cannot be drawn says nothing).

Each row carries `visits` (the count) and `cap`; `source_run` names the record that reached the cap
(`ENV/inspections.xlsx:5`: the cap-th counted inspection by date, then file and line).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from jointdraw.transforms.commitment import EXCLUSIONS_SCHEMA
from jointdraw.transforms.exclusions import listed
from jointdraw.transforms.plan import Plan, VisitCaps

VISIT_EXCLUSIONS_SCHEMA = {**EXCLUSIONS_SCHEMA, "visits": pl.Int64, "cap": pl.Int64}
REASONS = ("visit_cap_total", "visit_cap_department", "visit_cap_level")


def counted_inspections(inspections: pl.DataFrame, plan: Plan) -> pl.DataFrame:
    """The inspection records the caps count: (uscc, department, level, inspection_date, record), dated
    in the plan's calendar year before its period starts, of a kind the plan does not exempt."""
    caps = plan.visit_caps
    if caps is None or inspections.is_empty():
        return pl.DataFrame(
            schema={
                "uscc": pl.String,
                "department": pl.String,
                "level": pl.String,
                "inspection_date": pl.Date,
                "record": pl.String,
            }
        )
    start = plan.period.start
    return (
        inspections.filter(
            pl.col("inspection_date").is_between(dt.date(start.year, 1, 1), start, closed="left"),
            ~pl.col("inspection_kind").is_in(caps.exempt_kinds),
        )
        .sort("inspection_date", "source_file", "source_line")
        .select(
            "uscc",
            "department",
            "level",
            "inspection_date",
            record=pl.concat_str("source_file", pl.lit(":"), pl.col("source_line").cast(pl.String)),
        )
    )


def _reached(counted: pl.DataFrame, by: list[str], cap: int, reason: str) -> pl.DataFrame:
    """(…by, visits, cap, source_run, reason) for every group of `by` with at least `cap` counted
    inspections; `source_run` is the record that reached the cap (`counted` is in date order)."""
    return (
        counted.group_by(by, maintain_order=True)
        .agg(visits=pl.len().cast(pl.Int64), source_run=pl.col("record").get(cap - 1, null_on_oob=True))
        .filter(pl.col("visits") >= cap)
        .with_columns(cap=pl.lit(cap, pl.Int64), reason=pl.lit(reason))
    )


def _cap_rows(counted: pl.DataFrame, caps: VisitCaps, plan: Plan) -> list[pl.DataFrame]:
    parts = []
    if caps.total is not None:
        parts.append(_reached(counted, ["uscc"], caps.total, "visit_cap_total").with_columns(task_id=pl.lit(None)))
    if caps.per_department is not None:
        tasks = pl.DataFrame(
            {"department": [t.department for t in plan.tasks], "task_id": [t.task_id for t in plan.tasks]}
        )
        by_department = _reached(counted, ["uscc", "department"], caps.per_department, "visit_cap_department")
        parts.append(by_department.join(tasks, on="department"))  # that department's tasks only
    if (level_cap := caps.per_level.get(caps.level)) is not None:
        same_level = counted.filter(pl.col("level") == caps.level)
        parts.append(_reached(same_level, ["uscc"], level_cap, "visit_cap_level").with_columns(task_id=pl.lit(None)))
    return parts


def visit_cap_exclusions(inspections: pl.DataFrame, directory: pl.DataFrame, plan: Plan) -> pl.DataFrame:
    """(uscc, task_id, reason, source_run, visits, cap), one row per entity of `directory` (its `uscc`
    column) and cap reached — per department: per task of the department —, sorted by uscc, reason,
    task_id. Empty (with its columns) when the plan sets no visit caps or nobody reached one."""
    if plan.visit_caps is None:
        return pl.DataFrame(schema=VISIT_EXCLUSIONS_SCHEMA)
    counted = listed(counted_inspections(inspections, plan), directory)
    parts = [
        p.select(list(VISIT_EXCLUSIONS_SCHEMA)).cast(VISIT_EXCLUSIONS_SCHEMA)
        for p in _cap_rows(counted, plan.visit_caps, plan)
    ]
    if not parts:
        return pl.DataFrame(schema=VISIT_EXCLUSIONS_SCHEMA)
    return pl.concat(parts).sort("uscc", "reason", "task_id", nulls_last=True)
