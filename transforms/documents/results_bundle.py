"""The results' part of a plan's bundle (SPEC §4.8, "一公开"): the plan as the warehouse holds it,
saved into the results run (00_plan/), the published results computed from what was accepted, and
their files in public/results/ and regulator/results/ with their own manifest and seal. The flow
(flows/results.py) swaps the bundle in and records the seal and the warehouse rows.

    plan = save_plan_side(out, plan_id, as_of, plan_dir)      later: load_plan_side(plan_dir)
    tables = results_tables(plan, validate_dir, plan_dir, rules, plan_id)   (a correction: tables_of(...))
    seal = write_results_files(staging, tables, plan, run, plan_id, rules)
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from jointdraw.transforms.corrections import (
    CORRECTION_SCHEMA,
    SUBMITTED_SCHEMA,
    apply_corrections,
    corrections_frame,
    empty_corrections,
    file_changes,
    last_corrections,
    make_correction,
)
from jointdraw.transforms.documents import people_headers
from jointdraw.transforms.documents.manifest import RESULTS_MANIFEST, algorithm, file_list, results_files
from jointdraw.transforms.documents.report import validation_table
from jointdraw.transforms.documents.results_page import problems_by_item, render_results_report, results_summary
from jointdraw.transforms.documents.seal import seal_of
from jointdraw.transforms.privacy import public_leaks
from jointdraw.transforms.reference import department_names
from jointdraw.transforms.results import (
    PROGRESS_HEADERS,
    PUBLISHED_SCHEMA,
    RESULT_KEY,
    RESULTS_NOTICE_HEADERS,
    SUBMITTED_COLUMNS,
    PlanSide,
    ResultsRules,
    answered_results,
    follow_up_overdue,
    notice_entities,
    outstanding_items,
    problem_share,
    progress_by_department,
    published_item_names,
    published_results,
    results_notice,
)
from jointdraw.transforms.storage.bundle import PRE, PUBLIC, REGULATOR, bundle_file, refuse_leaks, results_folder
from jointdraw.transforms.storage.layout import RunFolder
from jointdraw.transforms.storage.runfolder import copy_file, write_json, write_parquet
from jointdraw.transforms.storage.warehouse import plan_side_tables
from jointdraw.transforms.storage.xlsxout import write_people_tables
from jointdraw.transforms.workdays import working_days

RESULT_COLUMNS = list(PUBLISHED_SCHEMA)


@dataclass(frozen=True)
class ResultsTables:
    """What a results run publishes: every accepted result (as corrected), the items still outstanding
    (not entered, pending review, returned), progress by department, the problems whose follow-up is
    overdue, every correction of the plan, and the summary's figures."""

    results: pl.DataFrame
    outstanding: pl.DataFrame
    progress: pl.DataFrame
    follow_up: pl.DataFrame
    corrections: pl.DataFrame
    summary: dict[str, Any]


def empty_submitted() -> pl.DataFrame:
    return pl.DataFrame(schema={**SUBMITTED_SCHEMA, "source_file": pl.String, "source_line": pl.Int64})


def tables_of(
    plan: PlanSide, submitted: pl.DataFrame, previous: pl.DataFrame, corrections: pl.DataFrame, rules: ResultsRules
) -> ResultsTables:
    """The results as published from the submitted rows (corrections applied), the plan's earlier results
    (a result keeps the day it was first published), and the rules."""
    results = published_results(submitted, plan, previous, rules)
    answered = answered_results(results, rules)
    outstanding = outstanding_items(plan, results, rules)
    progress = progress_by_department(plan, answered, outstanding)
    follow_up = follow_up_overdue(results)
    summary = results_summary(answered, progress, problem_share(answered)) | {
        "pending_review": int((results["review_state"] == "pending").sum()) if rules.review_required else 0,
        "returned": int((results["review_state"] == "returned").sum()) if rules.review_required else 0,
        "on_notice": int(results["on_notice"].sum()),
        "follow_up_overdue": follow_up.height,
        "corrections": corrections.height,
        "withdrawn": int((last_corrections(corrections)["action"] == "withdraw").sum()),
    }
    return ResultsTables(results, outstanding, progress, follow_up, corrections, summary)


def file_corrections(
    submitted: pl.DataFrame, recorded: pl.DataFrame, rows: pl.DataFrame, plan_id: str, at: str
) -> pl.DataFrame:
    """The plan's corrections: those recorded, then the accepted rows of the departments' correction files
    (in file and line order) that are new — a file stays in the inbox, so a row whose correction is already
    the result's last (same action, reason and new row) is not made again, nor one that changes nothing or
    names a result no longer published (withdrawn)."""
    made = recorded.sort("correction_id").to_dicts()
    current = {tuple(r[k] for k in RESULT_KEY): r for r in submitted.to_dicts()}
    last = {tuple(r[k] for k in RESULT_KEY): r for r in made}
    for row in rows.sort("source_file", "source_line").iter_rows(named=True):
        key = tuple(row[k] for k in RESULT_KEY)
        if key not in current:
            continue
        correction = make_correction(
            current[key],
            file_changes(row),
            withdraw=row.get("action") == "withdraw",
            reason=row["correction_reason"],
            by=row.get("corrected_by") or row["submitted_by"],
            source=f"{row['source_file']}:{row['source_line']}",
            at=at,
            plan_id=plan_id,
            correction_id=len(made) + 1,
        )
        before = last.get(key)
        if before and all(before[k] == correction[k] for k in ("action", "reason", "new_row")):
            continue  # made before, from this file
        if correction["action"] == "correct" and correction["new_row"] == correction["old_row"]:
            continue  # nothing changes
        made.append(correction)
        last[key] = correction
        if correction["action"] == "withdraw":
            del current[key]
        else:
            current[key] = {**current[key], **file_changes(row)}
    return corrections_frame(made)


def results_tables(
    plan: PlanSide, validate_dir: Path, plan_dir: Path, rules: ResultsRules, plan_id: str = ""
) -> ResultsTables:
    """The results as published: this run's accepted rows with the plan's corrections (those recorded,
    then the new ones of this run's correction files) and its earlier results (a result keeps the day it
    was first published), what is outstanding, progress, overdue follow-ups, the summary."""
    accepted_paths = sorted((validate_dir / "accepted" / "results").glob("*.parquet"))
    submitted = (
        pl.read_parquet(accepted_paths).select(*SUBMITTED_COLUMNS, "source_file", "source_line")
        if accepted_paths
        else empty_submitted()
    )
    recorded_path = plan_dir / "corrections.parquet"
    recorded = pl.read_parquet(recorded_path) if recorded_path.is_file() else empty_corrections()
    submitted = apply_corrections(submitted, recorded)
    correction_paths = sorted((validate_dir / "accepted" / "corrections").glob("*.parquet"))
    if correction_paths:
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        corrections = file_corrections(submitted, recorded, pl.read_parquet(correction_paths), plan_id, at)
        submitted = apply_corrections(submitted, corrections)
    else:
        corrections = recorded
    return tables_of(plan, submitted, pl.read_parquet(plan_dir / "results.parquet"), corrections, rules)


def save_plan_side(out: Path, plan_id: str, as_of: dt.date, plan_dir: Path) -> PlanSide:
    """The plan as the warehouse holds it now, written to the run folder (00_plan/): what every
    task of the run checks against (tasks get its path, not frames)."""
    try:
        tables = plan_side_tables(out, plan_id)
    except LookupError as e:
        raise LookupError(f"results: {e}") from None
    for name in ("task_items", "teams", "results", "corrections"):
        write_parquet(tables[name], plan_dir / f"{name}.parquet")
    write_json(
        {"period": [d.isoformat() for d in tables["period"]], "as_of": as_of.isoformat()}, plan_dir / "plan.json"
    )
    return load_plan_side(plan_dir)


def load_plan_side(plan_dir: Path) -> PlanSide:
    meta = json.loads((plan_dir / "plan.json").read_text(encoding="utf-8"))
    return PlanSide(
        pl.read_parquet(plan_dir / "task_items.parquet"),
        pl.read_parquet(plan_dir / "teams.parquet"),
        tuple(dt.date.fromisoformat(d) for d in meta["period"]),
        dt.date.fromisoformat(meta["as_of"]),
    )


def write_results_files(
    staging: Path,
    tables: ResultsTables,
    plan: PlanSide,
    run: RunFolder,
    plan_id: str,
    rules: ResultsRules,
) -> str:
    """The results' files, in their two parts of the bundle being staged (the old ones removed first),
    the results manifest last; returns the results' seal (refused if the public part would hold what
    is not public)."""
    ingest, validate, run_id = run.stage_record("ingest"), run.stage_record("validate"), run.run_id
    results, outstanding, progress, summary = tables.results, tables.outstanding, tables.progress, tables.summary
    limit = rules.limit
    public, regulator = results_folder(staging, PUBLIC), results_folder(staging, REGULATOR)
    for folder in (public, regulator):
        shutil.rmtree(
            folder, ignore_errors=True
        )  # hard links to the published files: removing them leaves those intact
        folder.mkdir(parents=True)
    validate_dir = run.stage("validate")
    item_names = published_item_names(bundle_file(staging, PRE) / "items.csv")
    write_parquet(results.select(RESULT_COLUMNS), regulator / "results.parquet")
    write_people_tables(results.select(RESULT_COLUMNS), regulator / "results.csv", people_headers.RESULTS, "检查结果")
    write_people_tables(
        results_notice(
            results.filter(pl.col("on_notice")), notice_entities(bundle_file(staging, "notice.csv")), item_names
        ),
        public / "notice.csv",
        RESULTS_NOTICE_HEADERS,
        "检查结果公示",
    )
    names = department_names()
    write_people_tables(
        progress.with_columns(
            department_name=pl.col("department").replace_strict(names, default=pl.col("department"))
        ).select(list(PROGRESS_HEADERS)),
        public / "progress.csv",
        PROGRESS_HEADERS,
        "录入进度",
    )
    write_json(summary, public / "summary.json")
    write_people_tables(outstanding, regulator / "outstanding.csv", people_headers.OUTSTANDING, "未录入事项")
    write_parquet(tables.follow_up, regulator / "follow_up_overdue.parquet")
    write_people_tables(
        tables.follow_up, regulator / "follow_up_overdue.csv", people_headers.FOLLOW_UP_OVERDUE, "逾期未完结处置"
    )
    corrections = tables.corrections.select(list(CORRECTION_SCHEMA))
    write_parquet(corrections, regulator / "corrections.parquet")
    write_people_tables(corrections, regulator / "corrections.csv", people_headers.CORRECTIONS, "更正记录")
    shutil.copytree(validate_dir / "quarantine", regulator / "quarantine")
    for name in ("quarantine.csv", "quarantine.xlsx"):
        copy_file(validate_dir / name, regulator / "quarantine" / name)
    shutil.copytree(validate_dir / "validation", regulator / "validation")
    calendar = working_days(plan.as_of, plan.as_of).note
    (regulator / "report.html").write_text(
        render_results_report(
            plan_id=plan_id,
            run_id=run_id,
            as_of=plan.as_of.isoformat(),
            limit=limit,
            calendar=calendar,
            summary=summary,
            progress=progress,
            by_item=problems_by_item(results, item_names),
            overdue=answered_results(results, rules).filter(pl.col("overdue")),
            follow_up=tables.follow_up,
            follow_up_limit=rules.follow_up_limit,
            validation=validation_table(validate.model_dump()),
        ),
        encoding="utf-8",
    )
    files, documents = file_list(staging, results_files(staging))
    write_json(
        {
            "manifest_version": "jointdraw-results-manifest-v2",
            "plan_id": plan_id,
            "run_id": run_id,
            "draw_seal": seal_of(bundle_file(staging, "manifest.json")),  # the draw these results answer
            "as_of": plan.as_of.isoformat(),
            "limit_working_days": limit,
            "rules": rules.as_json(),  # review, public period, follow-up: verify applies the same
            "calendar": calendar,
            "timeline": {"published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")},
            "algorithm": algorithm(),
            "inputs": [{"department": f["department"], **f["source"]} for f in ingest.files],
            "results": results.height,
            "on_notice": int(results["on_notice"].sum()),
            "corrections": corrections.height,
            "files": files,
            "documents": documents,
        },
        staging / RESULTS_MANIFEST,
    )
    refuse_leaks(public_leaks(results_folder(staging, PUBLIC)), "results")
    return seal_of(staging / RESULTS_MANIFEST)
