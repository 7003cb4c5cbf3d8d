"""Stage `assign` (SPEC §4.6): a team and a day for every joint task the rules allow.

    07_assign/joint_tasks.parquet   SPEC §6 columns; inspector_ids and planned_date empty when unassigned
    07_assign/team.parquet          one row per (joint task, member): department, lead, which pool, role, leader
    07_assign/unassigned.parquet    joint tasks that could not be staffed: department, reason, detail
    07_assign/unassigned.csv        the same with the entity, for people (Chinese headers)
    07_assign/workload.parquet      per available inspector: tasks, most visits on one day
    07_assign/avoid.parquet         (uscc, inspector_id) who must not meet (回避): conflicts, last teams
    07_assign/stage.json            figures, workload spread per (department, district) pool, calendar

The matching is checked by transforms/team_rules.py before anything is written: a matching
that breaks a rule fails the stage instead of being published.
"""

from __future__ import annotations

import json

import polars as pl

from jointdraw.flows.errors import StageFailed
from jointdraw.transforms.assign import (
    avoid_pairs,
    duplicate_inspector_ids,
    match_inspectors,
    published_joint_tasks,
    unassigned_for_people,
    workload_figures,
)
from jointdraw.transforms.documents import people_headers
from jointdraw.transforms.plan import Plan
from jointdraw.transforms.stage_records import AssignRecord
from jointdraw.transforms.storage.layout import RunFolder
from jointdraw.transforms.storage.runfolder import file_record, inputs_from, write_parquet
from jointdraw.transforms.storage.warehouse import previous_inspectors, read_warehouse_table
from jointdraw.transforms.storage.xlsxout import write_people_tables
from jointdraw.transforms.team_rules import team_violations
from jointdraw.transforms.workdays import working_days


def run_assign(run: RunFolder, plan: Plan) -> AssignRecord:
    commit_dir, fuse_dir, out = run.stage("commit"), run.stage("fuse"), run.stage("assign")
    seed = json.loads((run.stage("draw") / "seed.json").read_text(encoding="utf-8"))["seed"]
    joint_tasks = pl.read_parquet(fuse_dir / "joint_tasks.parquet")
    task_departments = pl.read_parquet(fuse_dir / "task_departments.parquet")
    inspectors = pl.read_parquet(commit_dir / "inspectors.parquet")
    items = pl.read_parquet(commit_dir / "items.parquet")
    if problem := duplicate_inspector_ids(inspectors):
        raise StageFailed(f"assign: {problem}")
    visits = read_warehouse_table(run.root.path, "visits")
    avoid = avoid_pairs(inspectors, previous_inspectors(visits, plan.plan_id))
    calendar = working_days(plan.period.start, plan.period.end)
    if not calendar.days:
        raise StageFailed(
            f"assign: plan {plan.plan_id}'s period {plan.period.start}–{plan.period.end} has no working day"
        )
    matching = match_inspectors(task_departments, joint_tasks, inspectors, avoid, plan, seed, calendar.days, items)
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
        items,
    )
    if broken.height:
        raise StageFailed(
            f"assign: the matching breaks {broken.height} rules (first: {broken.head(3).rows()}); "
            f"nothing was written — this is a defect, please report it with the run folder"
        )
    published = published_joint_tasks(joint_tasks, matching)
    unassigned_people = unassigned_for_people(matching.unassigned, joint_tasks)
    written = [
        (write_parquet(published, out / "joint_tasks.parquet"), published.height),
        (write_parquet(matching.team, out / "team.parquet"), matching.team.height),
        (write_parquet(matching.unassigned, out / "unassigned.parquet"), matching.unassigned.height),
        *[
            (p, unassigned_people.height)
            for p in write_people_tables(
                unassigned_people, out / "unassigned.csv", people_headers.UNASSIGNED, "未派员任务"
            )
        ],
        (write_parquet(matching.workload, out / "workload.parquet"), matching.workload.height),
        (write_parquet(avoid, out / "avoid.parquet"), avoid.height),  # what a replacement draw (递补) obeys too
    ]
    return AssignRecord(
        inputs=inputs_from(run.path, "fuse", "joint_tasks.parquet", "task_departments.parquet")
        + inputs_from(run.path, "commit", "inspectors.parquet", "items.parquet"),
        **matching.figures,
        calendar=calendar.note,
        previous_visits_in_warehouse=visits.height,
        avoid_pairs=avoid.height,
        workload=workload_figures(matching.workload),
        outputs=[file_record(path, rows, out) for path, rows in written],
    )
