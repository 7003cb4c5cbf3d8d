"""The results flow (SPEC §4.8, "一公开"): departments' inspection results in, checked against the
plan in the warehouse, published beside the draw, and fed back to the next draw.

    results_run(plan_id, inbox, out, as_of=None, limit_working_days=…, run_id=None, threshold=…, dask=None)
    (the defaults of the limit and the threshold are in transforms/settings.py)

    OUT/runs/<run_id>/00_plan/       the plan as the warehouse holds it (task items, teams, results so far)
    OUT/runs/<run_id>/01_ingest/     results files → raw and typed Parquet (the registries' reader)
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
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.states import Failed

from jointdraw.flows.errors import StageFailed
from jointdraw.flows.fanout import fan_out
from jointdraw.flows.ingest import run_ingest
from jointdraw.flows.validate import (
    file_failures,
    finish_validation,
    map_files,
    validate_department_file,
)
from jointdraw.transforms import settings
from jointdraw.transforms.audit import RESULTS as RESULTS_EVENT
from jointdraw.transforms.audit import entry_event
from jointdraw.transforms.contract.suites import result_rules
from jointdraw.transforms.contract.validation import Contract
from jointdraw.transforms.documents import people_headers
from jointdraw.transforms.documents.manifest import RESULTS_MANIFEST, algorithm, file_list, results_files
from jointdraw.transforms.documents.report import validation_table
from jointdraw.transforms.documents.results_page import (
    problems_by_item,
    render_results_report,
    results_summary,
)
from jointdraw.transforms.documents.seal import seal_of
from jointdraw.transforms.plan import PlanError, check_safe_id
from jointdraw.transforms.privacy import public_leaks
from jointdraw.transforms.reference import department_names
from jointdraw.transforms.registry import RESULT_KINDS, Kind
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
    with_result_checks,
)
from jointdraw.transforms.storage.bundle import (
    PRE,
    PUBLIC,
    REGULATOR,
    bundle_file,
    folder_bytes,
    io_errno,
    move_into_place,
    publish_failure,
    results_folder,
    staging_folder,
)
from jointdraw.transforms.storage.layout import OutputRoot, RunRecord, write_run_record
from jointdraw.transforms.storage.runfolder import (
    copy_file,
    new_run_id,
    read_stage_record,
    results_stage_dir,
    write_json,
    write_parquet,
)
from jointdraw.transforms.storage.runlock import PlanLocked, plan_lock
from jointdraw.transforms.storage.warehouse import WarehouseBusy, append_seal, plan_side_tables, record_results
from jointdraw.transforms.storage.xlsxout import write_people_tables
from jointdraw.transforms.workdays import working_days

USER_ERRORS = (StageFailed, PlanLocked, WarehouseBusy, PlanError)
RESULT_COLUMNS = list(PUBLISHED_SCHEMA)


@task(name="validate-results-file", task_run_name="validate results · {department}", cache_policy=NO_CACHE)
def validate_results_file(
    kind: Kind, department: str, ingest_dir: Path, out_dir: Path, plan_dir: Path
) -> dict[str, Any]:
    """One department's results: the checks against the plan, then the contract."""
    checked = with_result_checks(
        pl.read_parquet(ingest_dir / kind / f"{department}.parquet"), _load_plan_side(plan_dir)
    )
    checked_path = write_parquet(checked, out_dir / "checked" / f"{department}.parquet")
    return validate_department_file(kind, department, checked_path, ingest_dir, result_rules(), out_dir)


def _save_plan_side(out: Path, plan_id: str, as_of: dt.date, plan_dir: Path) -> PlanSide:
    """The plan as the warehouse holds it now, written to the run folder (00_plan/): what every
    task of the run checks against (tasks get its path, not frames)."""
    try:
        tables = plan_side_tables(out, plan_id)
    except LookupError as e:
        raise StageFailed(f"results: {e}") from None
    for name in ("task_items", "teams", "results"):
        write_parquet(tables[name], plan_dir / f"{name}.parquet")
    write_json(
        {"period": [d.isoformat() for d in tables["period"]], "as_of": as_of.isoformat()}, plan_dir / "plan.json"
    )
    return _load_plan_side(plan_dir)


def _load_plan_side(plan_dir: Path) -> PlanSide:
    meta = json.loads((plan_dir / "plan.json").read_text(encoding="utf-8"))
    return PlanSide(
        pl.read_parquet(plan_dir / "task_items.parquet"),
        pl.read_parquet(plan_dir / "teams.parquet"),
        tuple(dt.date.fromisoformat(d) for d in meta["period"]),
        dt.date.fromisoformat(meta["as_of"]),
    )


def _write_results(
    staging: Path,
    results: pl.DataFrame,
    outstanding: pl.DataFrame,
    progress: pl.DataFrame,
    summary: dict[str, Any],
    plan: PlanSide,
    run_dir: Path,
    plan_id: str,
    run_id: str,
    limit: int,
) -> None:
    """The results' files, in their two parts of the bundle being staged (the old ones removed first)."""
    public, regulator = results_folder(staging, PUBLIC), results_folder(staging, REGULATOR)
    for folder in (public, regulator):
        shutil.rmtree(
            folder, ignore_errors=True
        )  # hard links to the published files: removing them leaves those intact
        folder.mkdir(parents=True)
    validate_dir = results_stage_dir(run_dir, "validate")
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
            validation=validation_table(read_stage_record(run_dir, "validate") or {}),
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
            "inputs": [
                {"department": f["department"], **f["source"]}
                for f in (read_stage_record(run_dir, "ingest") or {}).get("files", [])
            ],
            "results": results.height,
            "files": files,
            "documents": documents,
        },
        staging / RESULTS_MANIFEST,
    )


@task(name="results-publish", task_run_name="publish results · {plan_id}", cache_policy=NO_CACHE)
def publish_results(plan_id: str, run_id: str, run_dir: Path, out: Path, plan_dir: Path, limit: int) -> dict[str, Any]:
    """Writes the results into published/<plan_id>/ — public/results/ and regulator/results/ — by
    swapping in a copy of the whole bundle (hard links to the draw's files: no copy of the data),
    then appends the results' seal to the plan's audit log, and writes the warehouse's results."""
    started = time.perf_counter()
    bundle = OutputRoot(out).published(plan_id)
    plan = _load_plan_side(plan_dir)
    validate_dir = results_stage_dir(run_dir, "validate")
    accepted_paths = sorted((validate_dir / "accepted" / "results").glob("*.parquet"))
    results = published_results(
        pl.read_parquet(accepted_paths) if accepted_paths else None,
        plan,
        pl.read_parquet(plan_dir / "results.parquet"),
        limit,
    )
    outstanding = outstanding_items(plan, results, limit)
    progress = progress_by_department(plan, results, outstanding)
    summary = results_summary(results, progress, problem_share(results))
    staging = staging_folder(bundle, out)
    try:
        shutil.copytree(bundle, staging, copy_function=os.link, dirs_exist_ok=True)
        _write_results(staging, results, outstanding, progress, summary, plan, run_dir, plan_id, run_id, limit)
        leaks = public_leaks(results_folder(staging, PUBLIC))
        if leaks:
            raise StageFailed(
                f"results: refused, the public part would hold what is not public: {'; '.join(leaks[:5])}"
            )
        seal = seal_of(staging / RESULTS_MANIFEST)
        move_into_place(staging, bundle)
    except (OSError, pl.exceptions.PolarsError) as e:
        if not isinstance(e, OSError) and io_errno(e) is None:
            raise
        raise StageFailed(f"results: {publish_failure(e, bundle, folder_bytes(bundle))}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    sealed = append_seal(
        out,
        plan_id=plan_id,
        run_id=run_id,
        event=RESULTS_EVENT,
        seal=seal,
        time=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    emit_event(**entry_event(sealed, shopped=False))  # the seal in Prefect's event store too
    rows = record_results(
        out,
        plan_id,
        results.select(RESULT_COLUMNS).with_columns(plan_id=pl.lit(plan_id), results_run_id=pl.lit(run_id)),
    )
    record = {
        "stage": "publish",
        "bundle": str(bundle),
        "results": results.height,
        "warehouse_rows": rows,
        **summary,
        "seal": seal,
        "seal_entry": sealed["seq"],
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_json(record, results_stage_dir(run_dir, "publish") / "stage.json")
    return record


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
) -> dict[str, Any]:
    """Takes in the results in `inbox` (<DEPT>/results.*) for a published plan; publishes them to
    OUT/published/<plan_id>/results/ and the warehouse. `as_of` (YYYY-MM-DD, default today in
    China) is the publication day that deadlines are measured against."""
    try:
        # absolute: Dask workers have working folders of their own
        return _run(
            plan_id,
            Path(os.path.abspath(inbox)),
            Path(os.path.abspath(out)),
            as_of,
            limit_working_days,
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
    limit: int,
    run_id: str | None,
    threshold: float,
    dask: str | None,
) -> dict[str, Any]:
    logger = get_run_logger()
    day = dt.date.fromisoformat(as_of) if as_of else dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    check_safe_id(plan_id, "plan id")
    run_id = check_safe_id(run_id, "run id") if run_id else new_run_id(f"{plan_id}-RESULTS")
    root = OutputRoot(out)
    run_dir = root.run(run_id)
    if not bundle_file(root.published(plan_id), "notice.csv").is_file():
        raise StageFailed(
            f"results: {root.published(plan_id)} holds no published draw; publish the plan first (`jointdraw run`)"
        )
    with (
        plan_lock(out, plan_id, run_id),
        fan_out(dask),
    ):  # the plan's one lock: the plan flow publishes into the same bundle
        plan_dir = results_stage_dir(run_dir, "plan")
        plan = _save_plan_side(out, plan_id, day, plan_dir)
        logger.info(
            "results of plan %s as of %s: %s items of %s joint tasks to answer; run %s → %s",
            plan_id,
            day,
            f"{plan.task_items.height:,}",
            f"{plan.task_items['joint_task_id'].n_unique():,}",
            run_id,
            run_dir,
        )
        write_run_record(
            run_dir,
            RunRecord(
                run_id=run_id,
                plan_id=plan_id,
                inbox=str(inbox),
                out=str(out),
                as_of=day.isoformat(),
                limit_working_days=limit,
            ),
        )
        ingest = run_ingest(inbox, run_dir, RESULT_KINDS)
        started = time.perf_counter()
        contract = Contract.ephemeral()
        validate_dir = results_stage_dir(run_dir, "validate")
        failed = file_failures(contract, RESULT_KINDS, results_stage_dir(run_dir, "ingest"))
        futures = map_files(
            RESULT_KINDS,
            failed,
            validate_results_file,
            ingest_dir=results_stage_dir(run_dir, "ingest"),
            out_dir=validate_dir,
            plan_dir=plan_dir,
        )
        validated = finish_validation(
            contract,
            failed + [f.result() for f in futures],
            validate_dir,
            threshold,
            RESULT_KINDS,
            started,
            {"stage": "validate", "run_date": day.isoformat()},
        )
        published = publish_results(plan_id, run_id, run_dir, out, plan_dir, limit)
    logger.info(
        "results: %s rows read, %s accepted, %s quarantined; %s of %s items answered, %s outstanding, "
        "%s published late → %s; results seal (封存值) %s",
        f"{ingest['rows_read']:,}",
        f"{validated['rows_accepted']:,}",
        f"{validated['rows_quarantined']:,}",
        f"{published['answered']:,}",
        f"{published['items_due']:,}",
        f"{published['outstanding']:,}",
        f"{published['answered_late']:,}",
        published["bundle"],
        published["seal"],
    )
    return {
        "run_id": run_id,
        "run_dir": str(run_dir),
        "plan_id": plan_id,
        "as_of": day.isoformat(),
        "ingest": {k: ingest[k] for k in ("rows_read", "rows_written")},
        "validate": {k: validated[k] for k in ("rows_read", "rows_accepted", "rows_quarantined")},
        "publish": published,
    }
