"""The correction flow (更正, issue 22): one published result corrected or withdrawn, kept with the old
row, the new row, the reason, the time and who (transforms/corrections.py), and the results republished
atomically with a new results seal in the plan's audit log.

    correct_run(plan_id, joint_task, item, reason, out, sets={column: value}, withdraw=False,
                department=None, by=None, as_of=None) -> summary

The results republished are the plan's published results (the warehouse's) with the correction, under
the rules the last results publication applied (its manifest), as of `as_of` (default today in China);
the results run they came from keeps its folder (its quarantine and Data Docs are published again).
Holds the plan's lock. The same correction again does nothing and returns the one made.
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
from jointdraw.flows.results import publish_results_tables
from jointdraw.transforms.audit import operator
from jointdraw.transforms.corrections import (
    CHANGEABLE,
    SUBMITTED_SCHEMA,
    apply_corrections,
    corrections_frame,
    last_corrections,
    make_correction,
    rows_of_json,
)
from jointdraw.transforms.documents.manifest import RESULTS_MANIFEST
from jointdraw.transforms.documents.results_bundle import load_plan_side, tables_of
from jointdraw.transforms.normalise import normalise_registry
from jointdraw.transforms.plan import check_safe_id
from jointdraw.transforms.reasons import ROW_REASONS
from jointdraw.transforms.reference import code_names
from jointdraw.transforms.registry import REVIEW_STATES
from jointdraw.transforms.results import RESULT_CHECKS, RESULT_KEY, SUBMITTED_COLUMNS, ResultsRules, with_result_checks
from jointdraw.transforms.storage.layout import OutputRoot
from jointdraw.transforms.storage.runlock import plan_lock
from jointdraw.transforms.storage.warehouse import recorded_corrections, recorded_results


def _typed_changes(sets: dict[str, str], key: dict[str, str]) -> dict[str, Any]:
    """`column=value` texts as the results' reader types them (codes or Chinese names, dates in any
    written form, lists split on ；)."""
    unknown = sorted(set(sets) - set(CHANGEABLE))
    if unknown:
        raise StageFailed(f"correct: {', '.join(unknown)} cannot be set; a correction sets {', '.join(CHANGEABLE)}")
    raw = pl.DataFrame(
        {**{k: [v] for k, v in key.items()}, **{c: [v or None] for c, v in sets.items()}},
        schema={**dict.fromkeys(key, pl.String), **dict.fromkeys(sets, pl.String)},
    ).with_columns(source_file=pl.lit("command"), source_line=pl.lit(1, pl.Int64))
    typed = normalise_registry(raw, "corrections", key["department"])
    unreadable = [
        c for c in sets if f"{c}_text" in typed.columns and typed[f"{c}_text"][0] and typed[c].to_list()[0] is None
    ]
    if unreadable:
        raise StageFailed(f"correct: {', '.join(unreadable)}: {ROW_REASONS['date_unparseable']}")
    return {c: typed[c].to_list()[0] for c in sets}


def _new_row_problems(new: dict[str, Any], plan: Any) -> list[str]:
    """What the corrected row breaks of the results' rules (the contract's vocabularies and the checks
    against the plan), as `reason: text`."""
    row = pl.DataFrame([new], schema=SUBMITTED_SCHEMA).with_columns(submitted_by=pl.lit(new["department"]))
    checked = with_result_checks(row, plan).row(0, named=True)
    found = [reason for check, (reason, _) in RESULT_CHECKS.items() if checked[check] is False]
    vocabularies = {
        "method": code_names("inspection_methods"),
        "follow_up": code_names("follow_up_actions"),
        "review_state": REVIEW_STATES,
    }
    found += [
        f"enum_unknown ({c})" for c, allowed in vocabularies.items() if new[c] is not None and new[c] not in allowed
    ]
    if any(code not in code_names("result_codes") for code in new["result_codes"] or []):
        found.append("result_code_unknown")
    return [f"{r}: {ROW_REASONS.get(r.split(' ')[0], '')}" for r in found]


@flow(name="correct-result", flow_run_name="correct · {plan_id} · {joint_task} · {item}")
def correct_run(
    plan_id: str,
    joint_task: str,
    item: str,
    reason: str,
    out: str,
    sets: dict[str, str] | None = None,
    withdraw: bool = False,
    department: str | None = None,
    by: str | None = None,
    as_of: str | None = None,
) -> dict[str, Any] | Failed:
    """Corrects (or withdraws) the published result of `item` in `joint_task` of plan `plan_id`;
    returns a summary: the correction, whether it is new, the new results seal."""
    try:
        return _correct(
            check_safe_id(plan_id, "plan id"),
            joint_task,
            item,
            reason,
            out,
            sets or {},
            withdraw,
            department,
            by,
            as_of,
        )
    except (*USER_ERRORS, ValueError) as e:
        get_run_logger().error("%s", e, extra={"user_facing": True})
        return Failed(message=str(e), data=StageFailed(str(e)))


def _correct(
    plan_id: str,
    joint_task: str,
    item: str,
    reason: str,
    out: str,
    sets: dict[str, str],
    withdraw: bool,
    department: str | None,
    by: str | None,
    as_of: str | None,
) -> dict[str, Any]:
    logger = get_run_logger()
    if not reason.strip():
        raise StageFailed("correct: give the reason (--reason): a correction is published with it")
    if withdraw == bool(sets):
        raise StageFailed("correct: give what changes (--set column=value …) or --withdraw, one of them")
    day = dt.date.fromisoformat(as_of) if as_of else dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    root = OutputRoot(Path(out).absolute())
    bundle = root.published(plan_id)
    manifest_path = bundle / RESULTS_MANIFEST
    if not manifest_path.is_file():
        raise StageFailed(
            f"correct: {plan_id} has no published results under {root.path}; a result not yet published is "
            f"corrected in the department's results file"
        )
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    rules = ResultsRules.from_json({**manifest, **manifest.get("rules", {})})
    run = root.run_folder(manifest["run_id"], results=True)
    with plan_lock(root.path, plan_id, f"correct-{manifest['run_id']}"):
        results = recorded_results(root.path, plan_id)
        recorded = recorded_corrections(root.path, plan_id)
        match = (pl.col("joint_task_id") == joint_task) & (pl.col("item_id") == item)
        if department:
            match &= pl.col("department") == department
        found = results.filter(match)
        last = last_corrections(recorded.filter(match))
        if found.height > 1:
            raise StageFailed(
                f"correct: {joint_task} item {item} has results of {', '.join(found['department'])}: "
                f"name the department (--department)"
            )
        if found.is_empty():
            if withdraw and last.height and last["action"][0] == "withdraw":
                done = last.row(0, named=True)
                logger.info("correct: %s item %s was withdrawn before (#%d)", joint_task, item, done["correction_id"])
                return {**done, "new": False, "seal": None, "bundle": str(bundle)}
            raise StageFailed(f"correct: {plan_id} has no published result of {joint_task} item {item}")
        old = found.select(SUBMITTED_COLUMNS).cast(SUBMITTED_SCHEMA).row(0, named=True)
        key = {k: old[k] for k in RESULT_KEY}
        changes = {} if withdraw else _typed_changes(sets, key)
        correction = make_correction(
            old,
            changes,
            withdraw=withdraw,
            reason=reason.strip(),
            by=by or operator(),
            source="command",
            at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            plan_id=plan_id,
            correction_id=recorded.height + 1,
        )
        if last.height and all(last[k][0] == correction[k] for k in ("action", "reason", "new_row")):
            done = last.row(0, named=True)
            logger.info("correct: made before (#%d); nothing new", done["correction_id"])
            return {**done, "new": False, "seal": None, "bundle": str(bundle)}
        if not withdraw and correction["new_row"] == correction["old_row"]:
            raise StageFailed(f"correct: the result of {joint_task} item {item} already says that; nothing changes")
        plan = load_plan_side(run.stage("plan"))._replace(as_of=day)
        if not withdraw and (
            broken := _new_row_problems(rows_of_json([correction["new_row"]]).row(0, named=True), plan)
        ):
            raise StageFailed(f"correct: the corrected result would break the results' rules: {'; '.join(broken)}")
        corrections = pl.concat([recorded, corrections_frame([correction])])
        submitted = apply_corrections(
            results.select(SUBMITTED_COLUMNS)
            .cast(SUBMITTED_SCHEMA)
            .with_columns(source_file=pl.lit(None, pl.String), source_line=pl.lit(None, pl.Int64)),
            corrections_frame([correction]),
        )
        tables = tables_of(plan, submitted, results, corrections, rules)
        record = publish_results_tables(plan_id, run, root.path, plan, tables, rules)
        logger.info(
            "correct: #%d %s %s item %s (%s): %s; results seal %s",
            correction["correction_id"],
            correction["action"],
            joint_task,
            item,
            correction["department"],
            correction["changes"],
            record.seal,
        )
    return {**correction, "new": True, "seal": record.seal, "bundle": str(bundle)}
