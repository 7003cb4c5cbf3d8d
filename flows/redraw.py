"""The replacement draw flow (递补, issue 21): one member of a published team replaced by a second
random draw (transforms/redraw.py), the redraw appended to the plan's audit log, the bundle
republished (the publish stage again: teams, joint tasks, redraws, manifest, seal) and the warehouse's
teams updated, so results accept the replacement without a substitution reason.

    redraw_run(plan_id, joint_task, inspector, reason, out, note="") -> summary

Holds the plan's lock. Refused when the plan's results are already published (a redraw after the
inspection is a substitution: the results' `substitution_reason` says it). The same call again does
nothing and returns the replacement already drawn.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, get_run_logger
from prefect.states import Failed

from jointdraw.flows.errors import USER_ERRORS, StageFailed
from jointdraw.flows.publish import run_publish
from jointdraw.flows.stage import run_stage_step
from jointdraw.transforms.plan import Plan, check_safe_id, read_plan
from jointdraw.transforms.redraw import (
    Situation,
    apply_redraws,
    pick_replacement,
    reason_code,
    redraw_details,
    redraws_of,
)
from jointdraw.transforms.storage.bundle import PUBLIC, bundle_file, results_folder
from jointdraw.transforms.storage.layout import OutputRoot, RunFolder
from jointdraw.transforms.storage.runlock import plan_lock
from jointdraw.transforms.storage.warehouse import append_redraw, audit_entries
from jointdraw.transforms.team_rules import team_violations
from jointdraw.transforms.workdays import working_days


def run_situation(run: RunFolder, plan: Plan) -> Situation:
    """What a redraw of `run`'s teams is drawn from: the run's own stage files (the bundle holds copies)."""
    commit, assign = run.stage("commit"), run.stage("assign")
    return Situation(
        plan=plan,
        seed=json.loads((run.stage("draw") / "seed.json").read_text(encoding="utf-8"))["seed"],
        joint_tasks=pl.read_parquet(assign / "joint_tasks.parquet"),
        team=pl.read_parquet(assign / "team.parquet"),
        pool=pl.read_parquet(commit / "inspectors.parquet"),
        avoid=pl.read_parquet(assign / "avoid.parquet"),
        items=pl.read_parquet(commit / "items.parquet"),
        working_days=len(working_days(plan.period.start, plan.period.end).days),
    )


def _published_run(root: OutputRoot, plan_id: str) -> RunFolder:
    bundle = root.published(plan_id)
    manifest = bundle_file(bundle, "manifest.json")
    if not manifest.is_file():
        raise StageFailed(f"redraw: {plan_id} has no published draw under {root.path} (run the plan first)")
    if (results_folder(bundle, PUBLIC) / "manifest.json").is_file():
        raise StageFailed(
            f"redraw: the results of {plan_id} are already published; a member replaced after the inspection "
            f"is a substitution: give it in the results' 人员变更说明 (substitution_reason)"
        )
    run = root.run_folder(json.loads(manifest.read_text(encoding="utf-8"))["run_id"])
    if not (run.stage("assign") / "avoid.parquet").is_file():
        raise StageFailed(f"redraw: run {run.run_id} (published {plan_id}) has no assign stage files under {run.path}")
    return run


def _check_team(situation: Situation, run: RunFolder, team: pl.DataFrame) -> None:
    """The team after the redraw obeys every rule of assign (transforms/team_rules.py), or nothing is written."""
    plan = situation.plan
    dates = situation.joint_tasks.filter(pl.col("planned_date").is_not_null()).select("joint_task_id", "planned_date")
    broken = team_violations(
        situation.joint_tasks,
        pl.read_parquet(run.stage("fuse") / "task_departments.parquet"),
        team,
        dates,
        pl.read_parquet(run.stage("assign") / "unassigned.parquet"),
        situation.pool,
        situation.avoid,
        plan,
        working_days(plan.period.start, plan.period.end).days,
        situation.items,
    )
    if broken.height:
        raise StageFailed(
            f"redraw: the team would break {broken.height} rules (first: {broken.head(3).rows()}); nothing was "
            f"written — this is a defect, please report it with the run folder"
        )


@flow(name="redraw", flow_run_name="redraw · {plan_id} · {joint_task}")
def redraw_run(
    plan_id: str, joint_task: str, inspector: str, reason: str, out: str, note: str = ""
) -> dict[str, Any] | Failed:
    """Replaces `inspector` on `joint_task` of the published plan `plan_id` (递补); returns a summary:
    the replacement, the audit entry, whether it is new, and the new seal."""
    try:
        return _redraw(check_safe_id(plan_id, "plan id"), joint_task, inspector, reason_code(reason), out, note)
    except (*USER_ERRORS, ValueError) as e:
        get_run_logger().error("%s", e, extra={"user_facing": True})
        return Failed(message=str(e), data=StageFailed(str(e)))


def _redraw(plan_id: str, joint_task: str, inspector: str, reason: str, out: str, note: str) -> dict[str, Any]:
    logger = get_run_logger()
    root = OutputRoot(Path(out).absolute())
    run = _published_run(root, plan_id)
    plan = read_plan(run.stage("commit") / "plan.yaml")
    with plan_lock(root.path, plan_id, f"redraw-{run.run_id}"):
        redraws = redraws_of(audit_entries(root.path, plan_id), run.run_id)
        done = next((r for r in redraws if r["joint_task_id"] == joint_task and r["replaced"] == inspector), None)
        situation = run_situation(run, plan)
        if done is None:
            replacement = pick_replacement(situation, joint_task, inspector, redraws)
            details = redraw_details(replacement, reason, note)
            _check_team(situation, run, apply_redraws(situation.team, [*redraws, json.loads(details)]))
            now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            entry = append_redraw(root.path, plan_id=plan_id, run_id=run.run_id, redraw=details, time=now)
            done = {**json.loads(details), "seq": entry["seq"]}
            logger.info(
                "redraw: %s replaced by %s on %s (%s pool, redraw %d of the task), audit entry #%d",
                inspector,
                done["replacement"],
                joint_task,
                done["pool"],
                done["counter"],
                entry["seq"],
            )
            new = True
        else:
            logger.info(
                "redraw: %s was already replaced by %s on %s (audit entry #%d)",
                inspector,
                done["replacement"],
                joint_task,
                done["seq"],
            )
            new = False
        published = pl.read_parquet(bundle_file(root.published(plan_id), "team.parquet"))
        in_bundle = published.filter(
            (pl.col("joint_task_id") == joint_task) & (pl.col("inspector_id") == done["replacement"])
        ).height
        record = None
        if new or not in_bundle:  # republish: teams, joint tasks, redraws, manifest, seal, warehouse
            # the plan's own bundle holds its audit/directory.parquet: copied, not written again
            republish = lambda: run_publish(run, plan, reuse=True)  # noqa: E731
            record = run_stage_step("publish", run.stage("publish"), republish, run.run_id)
    return {
        "plan_id": plan_id,
        "run_id": run.run_id,
        "joint_task_id": joint_task,
        "replaced": inspector,
        "replacement": done["replacement"],
        "pool": done["pool"],
        "counter": done["counter"],
        "entry": done["seq"],
        "new": new,
        "seal": record.seal if record else None,
        "bundle": str(root.published(plan_id)),
    }
