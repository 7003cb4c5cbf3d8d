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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl

from jointdraw.transforms import settings
from jointdraw.transforms.documents import people_headers
from jointdraw.transforms.reference import code_names, department_names, result_codes_in
from jointdraw.transforms.registry import COLUMNS
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
    "review_signed": ("review_unsigned", "reviewer"),
    "return_explained": ("returned_without_reason", "review_note"),
    "follow_up_after_inspection": ("follow_up_before_inspection", "follow_up_completed_on"),
    "follow_up_not_after_as_of": ("follow_up_in_future", "follow_up_completed_on"),
}
# a correction's own checks (transforms/corrections.py), after the result's
CORRECTION_CHECKS: dict[str, tuple[str, str]] = {
    "corrects_published": ("correction_target_unknown", "item_id"),
    "says_what_changes": ("correction_incomplete", "action"),
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
    # issue 22: review (审核), follow-up to completion (处置完结), how long the result stays public
    "review_state": pl.String,  # pending | approved | returned (a blank is pending)
    "reviewer": pl.String,
    "review_note": pl.String,
    "follow_up_completed_on": pl.Date,
    "follow_up_deadline": pl.Date,  # problems only: FOLLOW_UP_LIMIT_WORKING_DAYS after the inspection
    "follow_up_overdue": pl.Boolean,  # a problem not followed up to completion by its deadline, as of today
    "entity_type": pl.String,  # enterprise | individual | cooperative | other: what the public period depends on
    "public_until": pl.Date,  # the day it leaves the public notice (first published + the type's years)
    "on_notice": pl.Boolean,  # on the public results notice as of the publication day
}
NO_PROBLEM = "1"  # 未发现问题
# what a department submits for a result (and a correction may change): the registry's results columns
SUBMITTED_COLUMNS = tuple(COLUMNS["results"])


@dataclass(frozen=True)
class ResultsRules:
    """The rules a results publication applies, in one record (written into the results manifest, so
    verify applies the same): the publication limit, whether review is required, the public period per
    entity type (years), the follow-up limit (working days)."""

    limit: int = settings.RESULTS_LIMIT_WORKING_DAYS
    review_required: bool = settings.RESULTS_REVIEW_REQUIRED
    public_years: dict[str, int] = field(default_factory=lambda: dict(settings.RESULTS_PUBLIC_YEARS))
    follow_up_limit: int = settings.FOLLOW_UP_LIMIT_WORKING_DAYS

    def as_json(self) -> dict[str, Any]:
        return {
            "limit_working_days": self.limit,
            "review_required": self.review_required,
            "public_years": dict(sorted(self.public_years.items())),
            "follow_up_limit_working_days": self.follow_up_limit,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ResultsRules:
        """From a results manifest; a manifest from before issue 22 has only the limit (no review, no
        retention: what was published then)."""
        return cls(
            limit=d.get("limit_working_days", settings.RESULTS_LIMIT_WORKING_DAYS),
            review_required=d.get("review_required", False),
            public_years=d.get("public_years", {}),
            follow_up_limit=d.get("follow_up_limit_working_days", settings.FOLLOW_UP_LIMIT_WORKING_DAYS),
        )


def results_rules(
    limit: int,
    follow_up_limit: int,
    review_required: bool | None = None,
    public_years: dict[str, int] | None = None,
    policy: Any = None,
) -> ResultsRules:
    """The rules a results run applies: the flow's parameter where given, else the plan's `results` key
    (transforms/plan.py `ResultsPolicy`), else the setting. Public years per entity type: the setting's,
    then the plan's, then the parameter's, each overriding the types it names."""
    plan_review = policy.review_required if policy is not None else None
    return ResultsRules(
        limit=limit,
        review_required=next(
            v for v in (review_required, plan_review, settings.RESULTS_REVIEW_REQUIRED) if v is not None
        ),
        public_years={
            **settings.RESULTS_PUBLIC_YEARS,
            **(dict(policy.public_years) if policy is not None else {}),
            **(public_years or {}),
        },
        follow_up_limit=follow_up_limit,
    )


def _rules(rules: ResultsRules | int) -> ResultsRules:
    return ResultsRules(limit=rules) if isinstance(rules, int) else rules


def releasable(review_required: bool) -> pl.Expr:
    """A result may reach the public notice: approved (审核通过), or any accepted result when review is
    not required."""
    return pl.lit(True) if not review_required else pl.col("review_state") == "approved"


def public_until(public_years: dict[str, int]) -> pl.Expr:
    """The day a result leaves the public notice: `first_published_on` plus its entity type's years (an
    unknown type counts as `other`; a type without years, or an unpublished result: null, no end)."""
    kind = pl.col("entity_type").fill_null("other")
    years = kind.replace_strict({k: int(v) for k, v in public_years.items()}, default=None, return_dtype=pl.Int64)
    return (
        pl.when(years.is_not_null() & pl.col("first_published_on").is_not_null())
        .then(pl.col("first_published_on").dt.offset_by(pl.format("{}y", years)))
        .otherwise(None)
        .alias("public_until")
    )


def on_notice(rules: ResultsRules, as_of: dt.date) -> pl.Expr:
    """The one rule of what the public results notice shows on `as_of` (the flow and verify call it):
    releasable, published, and not past its public period. Older rows stay in the regulator's files."""
    published = pl.col("first_published_on").is_not_null() & releasable(rules.review_required)
    within = pl.col("public_until").is_null() | (pl.col("public_until") > as_of)
    return (published & within).fill_null(False).alias("on_notice")


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
        review_signed=~pl.col("review_state").is_in(["approved", "returned"]).fill_null(False)
        | pl.col("reviewer").is_not_null(),
        return_explained=(pl.col("review_state") != "returned").fill_null(True) | pl.col("review_note").is_not_null(),
        follow_up_after_inspection=(pl.col("follow_up_completed_on") >= pl.col("inspection_date")).fill_null(True),
        follow_up_not_after_as_of=(pl.col("follow_up_completed_on") <= plan.as_of).fill_null(True),
    )


def result_deadlines(inspection_dates: pl.Series, limit: int) -> pl.Series:
    """The last day a result may be published: `limit` working days (official calendar) after
    the inspection date."""
    distinct = inspection_dates.drop_nulls().unique().to_list()
    deadline = {d: add_working_days(d, limit) for d in distinct}
    return inspection_dates.replace_strict(deadline, default=None, return_dtype=pl.Date).alias("deadline")


def published_results(
    accepted: pl.DataFrame | None, plan: PlanSide, previous: pl.DataFrame, rules: ResultsRules | int
) -> pl.DataFrame:
    """The results as published (PUBLISHED_SCHEMA, then planned_date, source_file, source_line): the
    accepted rows with their entity, review state (blank: pending where review is required), first
    publication date — the day the result first reached the public notice: kept from an earlier results
    run, else today's `as_of` when it may be published now (approved, or review not required), else none
    yet —, deadline (from the inspection) and whether it was published late (`overdue`; not yet published: late once the
    deadline has passed), the follow-up's deadline and whether it is overdue, the public period and
    whether the row is on today's public notice. `previous`: (joint_task_id, department, item_id,
    first_published_on); no accepted rows: none. `rules` may be the limit alone (the other rules'
    defaults)."""
    rules = _rules(rules)
    extra = {"planned_date": pl.Date, "source_file": pl.String, "source_line": pl.Int64}
    if accepted is None:
        return pl.DataFrame(schema={**PUBLISHED_SCHEMA, **extra})
    items = plan.task_items
    if "entity_type" not in items.columns:
        items = items.with_columns(entity_type=pl.lit(None, pl.String))
    entity = items.select(*RESULT_KEY, "uscc", "planned_date", "entity_type").unique(subset=list(RESULT_KEY))
    for column in SUBMITTED_COLUMNS:
        if column not in accepted.columns:
            accepted = accepted.with_columns(pl.lit(None, PUBLISHED_SCHEMA[column]).alias(column))
    rows = (
        accepted.select(*SUBMITTED_COLUMNS, "source_file", "source_line")
        .with_columns(  # a blank state is pending where review is required; without review it stays blank
            review_state=pl.col("review_state").fill_null("pending")
            if rules.review_required
            else pl.col("review_state")
        )
        .join(entity, on=list(RESULT_KEY), how="left")
        .join(previous.select(*RESULT_KEY, "first_published_on"), on=list(RESULT_KEY), how="left")
    )
    rows = rows.with_columns(
        first_published_on=pl.coalesce(
            "first_published_on",
            pl.when(releasable(rules.review_required)).then(pl.lit(plan.as_of)),
        )
    )
    rows = rows.with_columns(
        deadline=result_deadlines(rows["inspection_date"], rules.limit),
        follow_up_deadline=pl.when(_has_problem()).then(
            result_deadlines(rows["inspection_date"], rules.follow_up_limit)
        ),
    )
    rows = rows.with_columns(
        overdue=pl.coalesce("first_published_on", pl.lit(plan.as_of)) > pl.col("deadline"),
        follow_up_overdue=(
            _has_problem() & pl.col("follow_up_completed_on").is_null() & (pl.col("follow_up_deadline") < plan.as_of)
        ).fill_null(False),
        public_until=public_until(rules.public_years),
    )
    rows = rows.with_columns(on_notice(rules, plan.as_of))
    return rows.select(*PUBLISHED_SCHEMA, *extra).cast(PUBLISHED_SCHEMA).sort(*RESULT_KEY)


def _has_problem() -> pl.Expr:
    return pl.col("result_codes").list.eval(pl.element().is_in(result_codes_in("problem"))).list.any().fill_null(False)


def follow_up_overdue(results: pl.DataFrame) -> pl.DataFrame:
    """The problems found whose follow-up was not completed by its deadline (regulator/results/
    follow_up_overdue.*): entity, item, department, date, codes, follow-up and its deadline."""
    return results.filter(pl.col("follow_up_overdue")).select(
        *RESULT_KEY,
        "uscc",
        "inspection_date",
        "result_codes",
        "follow_up",
        "follow_up_deadline",
        "review_state",
    )


def outstanding_items(plan: PlanSide, results: pl.DataFrame, rules: ResultsRules | int) -> pl.DataFrame:
    """Every item of every joint task not on the public notice for want of an answer or of its review:
    no accepted result yet (deadline from the planned date), or a result pending review or returned
    (审核退回, with the reviewer's reason; deadline from the inspection, as for every result).
    `overdue`: the deadline has passed. A result that left the notice at the end of its public period
    is answered, not outstanding."""
    rules = _rules(rules)
    open_items = plan.task_items.join(results.select(RESULT_KEY), on=list(RESULT_KEY), how="anti")
    open_items = open_items.with_columns(
        deadline=result_deadlines(open_items["planned_date"], rules.limit),
        inspection_date=pl.lit(None, pl.Date),
        review_state=pl.lit(None, pl.String),
        reviewer=pl.lit(None, pl.String),
        review_note=pl.lit(None, pl.String),
    )
    columns = [*RESULT_KEY, "uscc", "planned_date", "inspection_date", "review_state", "reviewer", "review_note"]
    in_review = results.join(answered_results(results, rules).select(RESULT_KEY), on=list(RESULT_KEY), how="anti")
    both = pl.concat(
        [
            open_items.select(*columns, "deadline"),
            in_review.select(*columns, "deadline").cast({"planned_date": pl.Date, "inspection_date": pl.Date}),
        ]
    )
    return (
        both.with_columns(overdue=pl.col("deadline") < plan.as_of)
        .select(*columns, "deadline", "overdue")
        .sort(*RESULT_KEY)
    )


def answered_results(results: pl.DataFrame, rules: ResultsRules | int) -> pl.DataFrame:
    """The results that answer their item: published, and still releasable (a result taken back into
    review is outstanding again)."""
    return results.filter(pl.col("first_published_on").is_not_null() & releasable(_rules(rules).review_required))


def progress_by_department(plan: PlanSide, results: pl.DataFrame, outstanding: pl.DataFrame) -> pl.DataFrame:
    """Per department: joint tasks, items to answer, answered (published: `results` are the answered
    ones), outstanding (not entered, pending review or returned), published late, outstanding past
    their deadline."""
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
