"""Inspection results (检查结果, SPEC §4.8): the rules a result must meet beyond its columns,
when it is overdue, and what is published — one home for each, used by the results flow,
the generator and the tests.

A result answers one item of one department in one joint task:
(joint_task_id, department, item_id). The plan's side comes from the warehouse:

    task_items(joint_task_id, uscc, department, item_id, planned_date)   what must be answered
    teams(joint_task_id, department, inspector_id)                        who was sent

"谁检查、谁录入、谁公开": a department submits and answers for its own results only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import NamedTuple

import polars as pl

from jointdraw.transforms.documents import people_headers
from jointdraw.transforms.reference import code_names, department_names, result_codes_in
from jointdraw.transforms.workdays import add_working_days

# derived check column → (quarantine reason, the column it is about); true = the row passes
RESULT_CHECKS: dict[str, tuple[str, str]] = {
    "own_department": ("not_own_result", "department"),
    "task_known": ("task_unknown", "joint_task_id"),
    "department_on_task": ("department_not_on_task", "department"),
    "item_on_task": ("item_not_on_task", "item_id"),
    "inspectors_on_team": ("inspector_not_on_team", "inspectors"),
    "date_in_period": ("date_outside_period", "inspection_date"),
    "date_not_after_as_of": ("date_in_future", "inspection_date"),
    "codes_consistent": ("codes_contradict", "result_codes"),
}
RESULT_KEY = ("joint_task_id", "department", "item_id")
PUBLISHED_SCHEMA = {  # a published result (results.parquet, the warehouse's `results`)
    "joint_task_id": pl.String,
    "uscc": pl.String,
    "department": pl.String,
    "item_id": pl.String,
    "inspection_date": pl.Date,
    "inspectors": pl.List(pl.String),
    "method": pl.String,
    "result_codes": pl.List(pl.String),
    "follow_up": pl.String,
    "findings": pl.String,
    "substitution_reason": pl.String,
    "first_published_on": pl.Date,
    "deadline": pl.Date,
    "overdue": pl.Boolean,
}
NO_PROBLEM = "1"  # 未发现问题


class PlanSide(NamedTuple):
    """What results are checked against: the plan's task items and teams, its period, the day."""

    task_items: pl.DataFrame
    teams: pl.DataFrame
    period: tuple[dt.date, dt.date]
    as_of: dt.date


def with_result_checks(typed: pl.DataFrame, plan: PlanSide) -> pl.DataFrame:
    """`typed` (one department's normalised results) with a boolean column per RESULT_CHECKS and
    `result_key` (joint task + item, unique per file). A check whose inputs are blank passes:
    the blank is the required-value rule's to report, once."""
    items = plan.task_items.select(*RESULT_KEY).unique()
    on_task = items.select("joint_task_id", "department").unique()
    tasks = items.select("joint_task_id").unique()
    team = plan.teams.group_by("joint_task_id", "department").agg(team=pl.col("inspector_id").unique())
    problems = result_codes_in("problem")
    start, end = plan.period
    checked = (
        typed.with_row_index("_row")
        .join(tasks.with_columns(_task=pl.lit(True)), on="joint_task_id", how="left")
        .join(on_task.with_columns(_dept=pl.lit(True)), on=["joint_task_id", "department"], how="left")
        .join(items.with_columns(_item=pl.lit(True)), on=list(RESULT_KEY), how="left")
        .join(team, on=["joint_task_id", "department"], how="left")
        .sort("_row")
    )
    blank = {c: pl.col(c).is_null() for c in ("joint_task_id", "department", "item_id", "inspection_date")}
    return checked.select(
        *typed.columns,
        result_key=pl.concat_str("joint_task_id", "item_id", separator="|"),
        own_department=blank["department"] | (pl.col("department") == pl.col("submitted_by")),
        task_known=blank["joint_task_id"] | pl.col("_task").fill_null(False),
        department_on_task=blank["joint_task_id"]
        | blank["department"]
        | pl.col("_task").is_null()
        | pl.col("_dept").fill_null(False),
        item_on_task=(blank["item_id"] | pl.col("_dept").is_null() | pl.col("_item").fill_null(False)),
        inspectors_on_team=(
            pl.col("team").is_null()
            | pl.col("substitution_reason").is_not_null()
            | pl.col("inspectors").list.set_difference(pl.col("team")).list.len().eq(0)
        ),
        date_in_period=blank["inspection_date"] | pl.col("inspection_date").is_between(start, end),
        date_not_after_as_of=blank["inspection_date"] | (pl.col("inspection_date") <= plan.as_of),
        codes_consistent=~(
            pl.col("result_codes").list.contains(NO_PROBLEM)
            & pl.col("result_codes").list.eval(pl.element().is_in(problems)).list.any()
        ).fill_null(False),
    )


def result_deadlines(inspection_dates: pl.Series, limit: int) -> pl.Series:
    """The last day a result may be published: `limit` working days (official calendar) after
    the inspection date."""
    distinct = inspection_dates.drop_nulls().unique().to_list()
    deadline = {d: add_working_days(d, limit) for d in distinct}
    return inspection_dates.replace_strict(deadline, default=None, return_dtype=pl.Date).alias("deadline")


def published_results(
    accepted: pl.DataFrame | None, plan: PlanSide, previous: pl.DataFrame, limit: int
) -> pl.DataFrame:
    """The results as published (PUBLISHED_SCHEMA, then planned_date, source_file, source_line):
    the accepted rows with their entity, first publication date (kept from an earlier results
    run, else today's `as_of`), deadline and whether they were published late (`overdue`).
    `previous`: (joint_task_id, department, item_id, first_published_on); no accepted rows: none."""
    if accepted is None:
        return pl.DataFrame(
            schema={**PUBLISHED_SCHEMA, "planned_date": pl.Date, "source_file": pl.String, "source_line": pl.Int64}
        )
    entity = plan.task_items.select(*RESULT_KEY, "uscc", "planned_date").unique(subset=list(RESULT_KEY))
    rows = (
        accepted.select(
            "joint_task_id",
            "department",
            "item_id",
            "inspection_date",
            "inspectors",
            "method",
            "result_codes",
            "follow_up",
            "findings",
            "substitution_reason",
            "source_file",
            "source_line",
        )
        .join(entity, on=list(RESULT_KEY), how="left")
        .join(previous.select(*RESULT_KEY, "first_published_on"), on=list(RESULT_KEY), how="left")
        .with_columns(first_published_on=pl.col("first_published_on").fill_null(plan.as_of))
    )
    rows = rows.with_columns(deadline=result_deadlines(rows["inspection_date"], limit))
    return rows.with_columns(overdue=pl.col("first_published_on") > pl.col("deadline")).sort(*RESULT_KEY)


def outstanding_items(plan: PlanSide, results: pl.DataFrame, limit: int) -> pl.DataFrame:
    """Every item of every joint task that no accepted result answers yet, with its planned
    date and whether the planned date is more than `limit` working days ago (`overdue`)."""
    open_items = plan.task_items.join(results.select(RESULT_KEY), on=list(RESULT_KEY), how="anti")
    open_items = open_items.with_columns(deadline=result_deadlines(open_items["planned_date"], limit))
    return (
        open_items.with_columns(overdue=pl.col("deadline") < plan.as_of)
        .select(*RESULT_KEY, "uscc", "planned_date", "deadline", "overdue")
        .sort(*RESULT_KEY)
    )


def progress_by_department(plan: PlanSide, results: pl.DataFrame, outstanding: pl.DataFrame) -> pl.DataFrame:
    """Per department: joint tasks, items to answer, answered, outstanding, published late,
    outstanding past their deadline."""
    due = plan.task_items.group_by("department").agg(joint_tasks=pl.col("joint_task_id").n_unique(), items_due=pl.len())
    answered = results.group_by("department").agg(answered=pl.len(), answered_late=pl.col("overdue").sum())
    still = outstanding.group_by("department").agg(outstanding=pl.len(), outstanding_overdue=pl.col("overdue").sum())
    return (
        due.join(answered, on="department", how="left")
        .join(still, on="department", how="left")
        .with_columns(
            pl.col("answered", "answered_late", "outstanding", "outstanding_overdue").fill_null(0).cast(pl.Int64)
        )
        .select(
            "department", "joint_tasks", "items_due", "answered", "outstanding", "answered_late", "outstanding_overdue"
        )
        .sort("department")
    )


PROGRESS_HEADERS = people_headers.PROGRESS
RESULTS_NOTICE_HEADERS = people_headers.RESULTS_NOTICE


def notice_entities(notice_csv: Path) -> pl.DataFrame:
    """(joint_task_id, district, name) from the draw's public notice: what the results notice names."""
    return pl.read_csv(notice_csv, infer_schema=False).select(
        joint_task_id=people_headers.NOTICE["joint_task_id"],
        district=people_headers.NOTICE["district"],
        name=people_headers.NOTICE["name"],
    )


def published_item_names(pre_items_csv: Path) -> dict[str, str]:
    """Item id → name, from the item list published before the draw (public/pre/items.csv)."""
    items = pl.read_csv(pre_items_csv, infer_schema=False)
    return dict(items.select(people_headers.PRE_ITEMS["item_id"], people_headers.PRE_ITEMS["name"]).iter_rows())


def results_notice(results: pl.DataFrame, entities: pl.DataFrame, item_names: dict[str, str]) -> pl.DataFrame:
    """The public results notice (抽查结果公示), one row per answered item: district, entity name,
    USCC, item, department, date, result and follow-up in words. Never inspectors, findings
    (free text may name people), the credit class or any personal field. `entities`
    (joint_task_id, district, name) comes from the draw's public notice, so an individual
    business's name is masked by the one rule (transforms/documents/notice.py)."""
    codes, follow_ups, departments = code_names("result_codes"), code_names("follow_up_actions"), department_names()
    return (
        results.join(entities, on="joint_task_id", how="left")
        .select(
            district="district",
            name="name",
            uscc="uscc",
            item=pl.col("item_id").replace_strict(item_names, default=pl.col("item_id")),
            department=pl.col("department").replace_strict(departments, default=pl.col("department")),
            inspection_date=pl.col("inspection_date").cast(pl.String),
            result=pl.col("result_codes")
            .list.eval(pl.element().replace_strict(codes, default=pl.element()))
            .list.join("；"),
            follow_up=pl.col("follow_up").replace_strict(follow_ups, default=pl.col("follow_up")),
            joint_task_id="joint_task_id",
        )
        .sort("district", "name", "uscc", "department", "item")
    )


def problem_share(results: pl.DataFrame) -> float:
    """The share of answered items where a problem was found (a code of category `problem`)."""
    if results.is_empty():
        return 0.0
    found = results["result_codes"].list.eval(pl.element().is_in(result_codes_in("problem"))).list.any()
    return float(found.mean())
