"""The results flow (SPEC §4.8, "一公开"): departments' inspection results in, checked against the
plan in the warehouse, published beside the draw, and fed back to the next draw.

    results_run(plan_id, inbox, out, as_of=None, limit_working_days=…, run_id=None, threshold=…, dask=None,
                review_required=…, public_years=…, follow_up_limit_working_days=…)
    (the defaults are in transforms/settings.py)

    OUT/runs/<run_id>/00_plan/       the plan as the warehouse holds it (task items, teams, results so far)
    OUT/runs/<run_id>/01_ingest/     results (and corrections) files → raw and typed Parquet (the registries' reader)
    OUT/runs/<run_id>/02_validate/   GX contract + the checks against the plan; quarantine; Data Docs
    OUT/runs/<run_id>/03_publish/    stage.json
    OUT/published/<plan_id>/public/results/     the results notice, progress, summary, manifest.json (its
                                                SHA-256 is the results' seal, appended to the audit log)
    OUT/published/<plan_id>/regulator/results/  every result, outstanding items, quarantine, Data Docs, report
    (both swapped in at once with the rest of the bundle)

A department's results file is its results so far (each submission replaces the last), so
a run publishes every accepted result; a result keeps the date it was first published, which
is what "overdue" measures. The warehouse's `results` replace the plan's previous ones and
update `visits` (who went, when): the next plan's exclusions and inspector avoidance use them.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, get_run_logger
from prefect.events import emit_event
from prefect.states import Failed

from jointdraw.flows.errors import USER_ERRORS, StageFailed
from jointdraw.flows.fanout import fan_out
from jointdraw.flows.ingest import run_ingest
from jointdraw.flows.stage import run_stage_step
from jointdraw.flows.termination import noticing_sigterm
from jointdraw.flows.validate import run_results_validate
from jointdraw.transforms import settings
from jointdraw.transforms.audit import RESULTS as RESULTS_EVENT
from jointdraw.transforms.audit import entry_event
from jointdraw.transforms.documents.results_bundle import (
    RESULT_COLUMNS,
    ResultsTables,
    load_plan_side,
    results_tables,
    save_plan_side,
    write_results_files,
)
from jointdraw.transforms.plan import check_safe_id, read_plan
from jointdraw.transforms.registry import RESULT_KINDS
from jointdraw.transforms.results import PlanSide, ResultsRules, results_rules
from jointdraw.transforms.stage_records import ResultsPublishRecord
from jointdraw.transforms.storage.bundle import bundle_file, folder_bytes, publish_atomically
from jointdraw.transforms.storage.layout import OutputRoot, RunFolder, RunRecord, write_run_record
from jointdraw.transforms.storage.runfolder import new_run_id
from jointdraw.transforms.storage.runlock import plan_lock
from jointdraw.transforms.storage.warehouse import append_seal, record_results


def publish_results(
    plan_id: str, folder: RunFolder, out: Path, plan_dir: Path, rules: ResultsRules
) -> ResultsPublishRecord:
    """Writes the results into published/<plan_id>/ — public/results/ and regulator/results/ — by
    swapping in a copy of the whole bundle (hard links to the draw's files: no copy of the data),
    then appends the results' seal to the plan's audit log, and writes the warehouse's results."""
    plan = load_plan_side(plan_dir)
    tables = results_tables(plan, folder.stage("validate"), plan_dir, rules, plan_id)
    return publish_results_tables(plan_id, folder, out, plan, tables, rules)


def publish_results_tables(
    plan_id: str, folder: RunFolder, out: Path, plan: PlanSide, tables: ResultsTables, rules: ResultsRules
) -> ResultsPublishRecord:
    """Publishes `tables` (a results run's, or the last one's with a correction) atomically, seals them
    in the audit log, and records the results and corrections in the warehouse."""
    bundle = OutputRoot(out).published(plan_id)
    run_id = folder.run_id

    def fill(staging: Path) -> str:
        shutil.copytree(bundle, staging, copy_function=os.link, dirs_exist_ok=True)
        return write_results_files(staging, tables, plan, folder, plan_id, rules)

    seal = publish_atomically(bundle, out, fill, lambda: folder_bytes(bundle), "results")
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    sealed = append_seal(out, plan_id=plan_id, run_id=run_id, event=RESULTS_EVENT, seal=seal, time=now)
    emit_event(**entry_event(sealed, shopped=False))  # the seal in Prefect's event store too
    results = tables.results.select(RESULT_COLUMNS)
    rows = record_results(
        out,
        plan_id,
        results.with_columns(plan_id=pl.lit(plan_id), results_run_id=pl.lit(run_id)),
        tables.corrections,
    )
    return ResultsPublishRecord(
        bundle=str(bundle),
        results=results.height,
        warehouse_rows=rows,
        **tables.summary,
        seal=seal,
        seal_entry=sealed["seq"],
    )


@flow(name="results-run", flow_run_name="{plan_id} results", log_prints=False, validate_parameters=True)
def results_run(
    plan_id: str,
    inbox: str,
    out: str,
    as_of: str | None = None,
    limit_working_days: int = settings.RESULTS_LIMIT_WORKING_DAYS,
    run_id: str | None = None,
    threshold: float = settings.QUARANTINE_THRESHOLD,
    dask: str | None = None,
    review_required: bool | None = None,
    public_years: dict[str, int] | None = None,
    follow_up_limit_working_days: int = settings.FOLLOW_UP_LIMIT_WORKING_DAYS,
) -> dict[str, Any]:
    """Takes in the results in `inbox` (<DEPT>/results.*, and <DEPT>/corrections.* of published ones) for a
    published plan; publishes them to OUT/published/<plan_id>/results/ and the warehouse. `as_of`
    (YYYY-MM-DD, default today in China) is the publication day that deadlines are measured against.
    `review_required`: only approved results (审核通过) reach the public notice; `public_years`: years a
    result stays on it, per entity type (not given: the published plan's `results` key, else the settings);
    a problem's follow-up is overdue `follow_up_limit_working_days` after the inspection."""
    # the parameters given; the published plan's `results` key and the settings complete them (_run)
    asked = {
        "limit": limit_working_days,
        "follow_up_limit": follow_up_limit_working_days,
        "review_required": review_required,
        "public_years": public_years,
    }
    try:
        with noticing_sigterm():  # absolute paths: Dask workers have working folders of their own
            return _run(
                plan_id,
                Path(os.path.abspath(inbox)),
                Path(os.path.abspath(out)),
                as_of,
                asked,
                run_id,
                threshold,
                dask,
            )
    except USER_ERRORS as e:
        get_run_logger().error("%s", e, extra={"user_facing": True})  # the CLI ends with it
        return Failed(message=str(e), data=e)


def _run(
    plan_id: str,
    inbox: Path,
    out: Path,
    as_of: str | None,
    asked: dict[str, Any],
    run_id: str | None,
    threshold: float,
    dask: str | None,
) -> dict[str, Any]:
    day = dt.date.fromisoformat(as_of) if as_of else dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    check_safe_id(plan_id, "plan id")
    run_id = check_safe_id(run_id, "run id") if run_id else new_run_id(f"{plan_id}-RESULTS")
    root = OutputRoot(out)
    folder = root.run_folder(run_id, results=True)
    run_dir = folder.path
    if not bundle_file(root.published(plan_id), "notice.csv").is_file():
        raise StageFailed(
            f"results: {root.published(plan_id)} holds no published draw; publish the plan first (`jointdraw run`)"
        )
    published_plan = read_plan(bundle_file(root.published(plan_id), "plan.yaml"))
    rules = results_rules(**asked, policy=published_plan.results)
    with plan_lock(out, plan_id, run_id), fan_out(dask):  # the plan's one lock: the plan flow publishes here too
        plan_dir = folder.stage("plan")
        try:
            plan = save_plan_side(out, plan_id, day, plan_dir)
        except LookupError as e:
            raise StageFailed(str(e)) from None
        get_run_logger().info(
            "results of plan %s as of %s (%s): %s items of %s joint tasks to answer; run %s → %s",
            plan_id,
            day,
            f"review {'required' if rules.review_required else 'not required'}, public years {rules.public_years}",
            f"{plan.task_items.height:,}",
            f"{plan.task_items['joint_task_id'].n_unique():,}",
            run_id,
            run_dir,
        )
        run = RunRecord(
            run_id=run_id,
            plan_id=plan_id,
            inbox=str(inbox),
            out=str(out),
            as_of=day.isoformat(),
            limit_working_days=rules.limit,
        )
        write_run_record(run_dir, run)
        steps = {
            "ingest": lambda: run_ingest(inbox, folder, RESULT_KINDS),
            "validate": lambda: run_results_validate(folder, plan_dir, threshold, day),
            "publish": lambda: publish_results(plan_id, folder, out, plan_dir, rules),
        }
        stages = {stage: run_stage_step(stage, folder.stage(stage), step, run_id) for stage, step in steps.items()}
    return {"run_id": run_id, "run_dir": str(run_dir), "plan_id": plan_id, "as_of": day.isoformat(), "stages": stages}
