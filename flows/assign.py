"""Stage `assign` (SPEC §4.6): a team and a day for every joint task the rules allow.

    07_assign/joint_tasks.parquet   SPEC §6 columns; inspector_ids and planned_date empty when unassigned
    07_assign/team.parquet          one row per (joint task, inspector): department, lead, which pool
    07_assign/unassigned.parquet    joint tasks that could not be staffed: department, reason, detail
    07_assign/unassigned.csv        the same with the entity, for people (Chinese headers)
    07_assign/workload.parquet      per available inspector: tasks, most visits on one day
    07_assign/stage.json            figures, workload spread per (department, district) pool, calendar

The matching is checked by transforms/team_rules.py before anything is written: a matching
that breaks a rule fails the stage instead of being published.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import polars as pl
from prefect import get_run_logger

from jointdraw.flows.errors import StageFailed
from jointdraw.transforms.assign import avoid_pairs, match_inspectors, unassigned_for_people, workload_spread
from jointdraw.transforms.documents import people_headers
from jointdraw.transforms.plan import Plan
from jointdraw.transforms.storage.layout import OutputRoot
from jointdraw.transforms.storage.runfolder import (
    file_record,
    inputs_from,
    stage_dir,
    write_json,
    write_parquet,
)
from jointdraw.transforms.storage.warehouse import previous_inspectors, read_warehouse_table
from jointdraw.transforms.storage.xlsxout import write_people_tables
from jointdraw.transforms.team_rules import team_violations
from jointdraw.transforms.workdays import working_days

JOINT_TASKS_PUBLISHED = [
    "joint_task_id",
    "uscc",
    "name",
    "district_code",
    "address",
    "departments",
    "lead_department",
    "task_ids",
    "item_ids",
    "inspector_ids",
    "planned_date",
]
UNASSIGNED_HEADERS = people_headers.UNASSIGNED


def _unique_inspector_ids(inspectors: pl.DataFrame) -> None:
    twice = inspectors.filter(pl.col("inspector_id").is_duplicated()).sort("inspector_id", "source_file", "source_line")
    if twice.height:
        where = "; ".join(
            f"{r['inspector_id']} in {r['source_file']} line {r['source_line']}"
            for r in twice.head(6).iter_rows(named=True)
        )
        raise StageFailed(
            f"assign: inspector ids must be unique across departments ({twice['inspector_id'].n_unique()} "
            f"appear more than once: {where}); give each inspector one id and rerun from ingest"
        )


def run_assign(run_dir: Path, plan: Plan) -> dict[str, Any]:
    logger = get_run_logger()
    started = time.perf_counter()
    commit_dir, fuse_dir, out = stage_dir(run_dir, "commit"), stage_dir(run_dir, "fuse"), stage_dir(run_dir, "assign")
    seed = json.loads((stage_dir(run_dir, "draw") / "seed.json").read_text(encoding="utf-8"))["seed"]
    joint_tasks = pl.read_parquet(fuse_dir / "joint_tasks.parquet")
    task_departments = pl.read_parquet(fuse_dir / "task_departments.parquet")
    inspectors = pl.read_parquet(commit_dir / "inspectors.parquet")
    _unique_inspector_ids(inspectors)
    visits = read_warehouse_table(OutputRoot.of_run(run_dir).path, "visits")
    avoid = avoid_pairs(inspectors, previous_inspectors(visits, plan.plan_id))
    calendar = working_days(plan.period.start, plan.period.end)
    if not calendar.days:
        raise StageFailed(
            f"assign: plan {plan.plan_id}'s period {plan.period.start}–{plan.period.end} has no working day"
        )
    matching = match_inspectors(task_departments, joint_tasks, inspectors, avoid, plan, seed, calendar.days)
    broken = team_violations(
        joint_tasks,
        task_departments,
        matching.team,
        matching.planned_dates,
        matching.unassigned,
        inspectors,
        avoid,
        plan,
        calendar.days,
    )
    if broken.height:
        raise StageFailed(
            f"assign: the matching breaks {broken.height} rules (first: {broken.head(3).rows()}); "
            f"nothing was written — this is a defect, please report it with the run folder"
        )
    teams = matching.team.group_by("joint_task_id", maintain_order=True).agg(inspector_ids=pl.col("inspector_id"))
    published = (
        joint_tasks.join(teams, on="joint_task_id", how="left")
        .join(matching.planned_dates, on="joint_task_id", how="left")
        .select(JOINT_TASKS_PUBLISHED)
        .sort("joint_task_id")
    )
    unassigned_people = unassigned_for_people(matching.unassigned, joint_tasks)
    spread = workload_spread(matching.workload)
    outputs = [
        file_record(write_parquet(published, out / "joint_tasks.parquet"), published.height, out),
        file_record(write_parquet(matching.team, out / "team.parquet"), matching.team.height, out),
        file_record(write_parquet(matching.unassigned, out / "unassigned.parquet"), matching.unassigned.height, out),
        *[
            file_record(p, unassigned_people.height, out)
            for p in write_people_tables(unassigned_people, out / "unassigned.csv", UNASSIGNED_HEADERS, "未派员任务")
        ],
        file_record(write_parquet(matching.workload, out / "workload.parquet"), matching.workload.height, out),
    ]
    busy = spread.filter(pl.col("tasks") > 0)
    record = {
        "stage": "assign",
        "inputs": inputs_from(run_dir, "fuse", "joint_tasks.parquet", "task_departments.parquet")
        + inputs_from(run_dir, "commit", "inspectors.parquet"),
        **matching.figures,
        "calendar": calendar.note,
        "previous_visits_in_warehouse": visits.height,
        "avoid_pairs": avoid.height,
        "workload": {
            "pools": spread.height,
            "pools_with_tasks": busy.height,
            "pools_spread_at_most_1": busy.filter(pl.col("spread") <= 1).height,
            "max_spread": int(busy["spread"].max() or 0),
            "tasks_per_inspector": {
                "min": int(matching.workload["tasks"].min() or 0),
                "max": int(matching.workload["tasks"].max() or 0),
                "mean": round(float(matching.workload["tasks"].mean() or 0), 2),
            },
            "busiest_day": int(matching.workload["busiest_day"].max() or 0),
            "by_pool": spread.to_dicts(),
        },
        "outputs": outputs,
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_json(record, out / "stage.json")
    logger.info(
        "assign: %s of %s joint tasks staffed and scheduled on %s working days; %s unassigned %s; "
        "%s of %s pools with spread ≤ 1",
        f"{matching.figures['assigned']:,}",
        f"{joint_tasks.height:,}",
        len(calendar.days),
        f"{matching.unassigned.height:,}",
        matching.figures["unassigned_by_reason"] or "",
        record["workload"]["pools_spread_at_most_1"],
        busy.height,
    )
    return record
