"""The results' part of a plan's bundle (SPEC §4.8, "一公开"): the plan as the warehouse holds it,
saved into the results run (00_plan/), the published results computed from what was accepted, and
their files in public/results/ and regulator/results/ with their own manifest and seal. The flow
(flows/results.py) swaps the bundle in and records the seal and the warehouse rows.

    plan = save_plan_side(out, plan_id, as_of, plan_dir)      later: load_plan_side(plan_dir)
    tables = results_tables(plan, validate_dir, plan_dir, limit)
    seal = write_results_files(staging, tables, plan, run, plan_id, limit)
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

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
    RESULTS_NOTICE_HEADERS,
    PlanSide,
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
    """What a results run publishes: every accepted result, the items still outstanding, progress by
    department, and the summary's figures."""

    results: pl.DataFrame
    outstanding: pl.DataFrame
    progress: pl.DataFrame
    summary: dict[str, Any]


def results_tables(plan: PlanSide, validate_dir: Path, plan_dir: Path, limit: int) -> ResultsTables:
    """The results as published: this run's accepted rows with the plan's earlier results (a result
    keeps the day it was first published), what is outstanding, progress, the summary."""
    accepted_paths = sorted((validate_dir / "accepted" / "results").glob("*.parquet"))
    results = published_results(
        pl.read_parquet(accepted_paths) if accepted_paths else None,
        plan,
        pl.read_parquet(plan_dir / "results.parquet"),
        limit,
    )
    outstanding = outstanding_items(plan, results, limit)
    progress = progress_by_department(plan, results, outstanding)
    return ResultsTables(results, outstanding, progress, results_summary(results, progress, problem_share(results)))


def save_plan_side(out: Path, plan_id: str, as_of: dt.date, plan_dir: Path) -> PlanSide:
    """The plan as the warehouse holds it now, written to the run folder (00_plan/): what every
    task of the run checks against (tasks get its path, not frames)."""
    try:
        tables = plan_side_tables(out, plan_id)
    except LookupError as e:
        raise LookupError(f"results: {e}") from None
    for name in ("task_items", "teams", "results"):
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
    limit: int,
) -> str:
    """The results' files, in their two parts of the bundle being staged (the old ones removed first),
    the results manifest last; returns the results' seal (refused if the public part would hold what
    is not public)."""
    ingest, validate, run_id = run.stage_record("ingest"), run.stage_record("validate"), run.run_id
    results, outstanding, progress, summary = tables.results, tables.outstanding, tables.progress, tables.summary
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
        results_notice(results, notice_entities(bundle_file(staging, "notice.csv")), item_names),
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
            overdue=results.filter(pl.col("overdue")),
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
            "calendar": calendar,
            "timeline": {"published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")},
            "algorithm": algorithm(),
            "inputs": [{"department": f["department"], **f["source"]} for f in ingest.files],
            "results": results.height,
            "files": files,
            "documents": documents,
        },
        staging / RESULTS_MANIFEST,
    )
    refuse_leaks(public_leaks(results_folder(staging, PUBLIC)), "results")
    return seal_of(staging / RESULTS_MANIFEST)
