"""Stage `validate` (SPEC §4.2): the Great Expectations contract on every department's files.

    02_validate/accepted/<kind>/<DEPT>.parquet     rows that go on (typed, file order)
    02_validate/quarantine/<kind>/<DEPT>.parquet   rejected rows: file, line, column, reason, original values
    02_validate/quarantine.csv                     all of them, for people (UTF-8 with BOM)
    02_validate/validation/index.html              GX Data Docs, readable offline (built on a thread while the
                                                   stages after the merge run: flows/data_docs.py)
    02_validate/stage.json                         per file: read = accepted + quarantined, by reason

The validate stage of both flows (the plan flow's registries: `run_validate`; the results flow's
results: `run_results_validate`). Files are validated in batches (`validate-files` tasks mapped by
flows/fanout.py: a kind's files in batches of about VALIDATE_BATCH_ROWS rows, on the flow's threads one
batch at a time; on a Dask cluster in parallel, smaller batches to keep every worker busy): items first
(inspectors' item scopes must name accepted items), then inspectors, objects and inspections.
Each task writes its files' accepted and quarantined rows and returns their GX results; the stage
gathers them into one Data Docs site (transforms/contract/department_files.py). A file-level
failure (required column missing, no rows) fails its department; the stage fails when any
department failed, or when a registry kind's quarantined share passes the plan's threshold —
after writing everything, so the reasons can be read (stage.failed.json).

With `reuse`, a file whose rows, rules and date cut (transforms/storage/reuse.py `validation_key`) an
earlier run in the same output root validated is taken from that run: its accepted and quarantined
rows, its record and its GX results for Data Docs (kept in 02_validate/docs/); the threshold is applied
to every file after, as always.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from jointdraw.flows.data_docs import all_data_docs_built, build_later
from jointdraw.flows.errors import StageFailed
from jointdraw.flows.fanout import map_department_files
from jointdraw.transforms.contract.department_files import file_failures, validate_department_files, validation_record
from jointdraw.transforms.contract.suites import (
    Rule,
    inspection_rules,
    inspector_rules,
    item_rules,
    object_rules,
    result_rules,
)
from jointdraw.transforms.contract.validation import Contract, build_data_docs
from jointdraw.transforms.corrections import with_correction_checks
from jointdraw.transforms.documents.results_bundle import load_plan_side
from jointdraw.transforms.registry import RESULT_KINDS, Kind, submitted_kinds
from jointdraw.transforms.results import with_result_checks
from jointdraw.transforms.stage_records import ReuseKey, ValidateRecord
from jointdraw.transforms.storage.layout import RunFolder
from jointdraw.transforms.storage.reuse import EarlierResults, docs_path, keep_docs, reused_docs, validation_key
from jointdraw.transforms.storage.runfolder import inputs_from, write_parquet

VALIDATION_ORDER: tuple[Kind, ...] = ("items", "inspectors", "objects", "inspections")


def contract_rules(kind: Kind, run_date: dt.date, item_ids: list[str]) -> list[Rule]:
    """The row rules of a kind: inspectors' item scopes must name accepted items; objects' and
    inspections' dates may not be after the run date."""
    if kind == "items":
        return item_rules()
    if kind == "inspections":
        return inspection_rules(run_date)
    return inspector_rules(item_ids) if kind == "inspectors" else object_rules(run_date)


@task(name="validate-files", task_run_name="validate {kind} · {departments}", cache_policy=NO_CACHE)
def validate_files(
    kind: Kind, departments: list[str], ingest_dir: Path, out_dir: Path, run_date: dt.date, item_ids: list[str]
) -> list[dict[str, Any]]:
    """Validates departments' registry files of one kind in one GX validation (their file-level
    rules already met); one record per file."""
    typed = {d: ingest_dir / kind / f"{d}.parquet" for d in departments}
    return validate_department_files(kind, typed, ingest_dir, contract_rules(kind, run_date, item_ids), out_dir)


def run_validate(run: RunFolder, threshold: float, run_date: dt.date, reuse: bool = False) -> ValidateRecord:
    """Validates every ingested file (a task per batch of a kind's files, on the flow's threads one at a time, on
    a Dask cluster in parallel: flows/fanout.py): items first, since inspectors' item scopes must name accepted items.
    With `reuse`, a file an earlier run validated under the same key is taken from it instead."""
    out_dir = run.stage("validate")
    contract = Contract.ephemeral()
    failed = file_failures(contract, VALIDATION_ORDER, run.stage("ingest"))
    earlier = EarlierResults.of(run, "validate") if reuse else EarlierResults()
    done = _validated(run, ("items",), failed, earlier, run_date, item_ids=[])
    item_ids = _accepted_item_ids(out_dir)
    done += _validated(run, ("inspectors", "objects", "inspections"), failed, earlier, run_date, item_ids)
    files = in_report_order(failed + done)
    record = validation_record(
        contract,
        files,
        out_dir,
        threshold,
        submitted_kinds(f["kind"] for f in files),
        run_date.isoformat(),
        inputs_from(run.path, "ingest"),
        data_docs=lambda contract, site: build_later(partial(build_data_docs, contract, site), site),
    )
    return contract_met(record, out_dir)


def data_docs_again(run: RunFolder) -> Path:
    """Validate's Data Docs built again from what the stage kept, as the stage built them: the file inventories
    checked again, then every file's GX results (02_validate/docs/, with the run's date bounds) in the stage's
    order. For a run whose process stopped before its site was whole (flows/data_docs.py)."""
    out_dir = run.stage("validate")
    record = run.stage_record("validate")
    contract = Contract.ephemeral()
    file_failures(contract, VALIDATION_ORDER, run.stage("ingest"))
    run_date = dt.date.fromisoformat(record.run_date)
    item_ids = _accepted_item_ids(out_dir)
    for f in (f for f in record.files if "file_problems" not in f):  # a failed file's results: its inventory's
        rules = contract_rules(f["kind"], run_date, item_ids)
        contract.add_validations(reused_docs(docs_path(out_dir, f["kind"], f["department"]), rules))
    return build_data_docs(contract, out_dir / "validation")


def _accepted_item_ids(out_dir: Path) -> list[str]:
    """The item ids of every accepted items file: what inspectors' item scopes must name."""
    accepted = list((out_dir / "accepted" / "items").glob("*.parquet"))
    return sorted(pl.read_parquet(accepted)["item_id"].unique().to_list()) if accepted else []


def _validated(
    run: RunFolder,
    kinds: tuple[Kind, ...],
    failed: list[dict[str, Any]],
    earlier: EarlierResults,
    run_date: dt.date,
    item_ids: list[str],
) -> list[dict[str, Any]]:
    """The records of the files of these kinds that met the file-level rules: each taken from an earlier
    run when one validated it under the same key, the others validated (`validate-files` tasks); each with
    its key and its GX results kept for later runs."""
    ingest_dir, out_dir = run.stage("ingest"), run.stage("validate")
    ingested = {
        (f["kind"], f["department"]): [o["sha256"] for o in f.get("outputs", [])]
        for f in run.stage_record("ingest").files
    }
    failing = {(f["kind"], f["department"]) for f in failed}
    rules = {kind: contract_rules(kind, run_date, item_ids) for kind in kinds}
    keys = {
        (kind, d): validation_key(kind, d, ingested[(kind, d)], rules[kind], ingest_dir / kind / f"{d}.parquet")
        for kind in kinds
        for d in sorted(p.stem for p in (ingest_dir / kind).glob("*.parquet"))
        if (kind, d) not in failing
    }
    taken = []
    for (kind, department), key in keys.items():
        if found := earlier.take(key, out_dir):
            docs = reused_docs(docs_path(out_dir, kind, department), rules[kind])
            taken.append({**found.record_here(), "docs": docs})
    futures = map_department_files(
        kinds,
        failed + taken,
        validate_files,
        ingest_dir=ingest_dir,
        out_dir=out_dir,
        run_date=run_date,
        item_ids=item_ids,
    )
    done = [r for f in futures for r in f.result()]
    for r in done:
        kept = keep_docs(r["docs"], docs_path(out_dir, r["kind"], r["department"]), out_dir)
        r["reuse"] = ReuseKey(key=keys[(r["kind"], r["department"])], docs=kept).model_dump()
    return taken + done


def in_report_order(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Department files by registry kind (items, inspectors, objects, inspections, results), then department."""
    order = {k: i for i, k in enumerate((*VALIDATION_ORDER, *RESULT_KINDS))}
    return sorted(files, key=lambda f: (order[f["kind"]], f["department"]))


def contract_met(record: ValidateRecord, out_dir: Path) -> ValidateRecord:
    """Logs each file's outcome; fails the stage (what was found kept in stage.failed.json) when a
    department file broke a file-level rule or a kind's quarantined share passes the threshold."""
    logger = get_run_logger()
    for failed, line in record.file_lines():
        (logger.error if failed else logger.info)("validate: %s", line)
    if failures := record.failures(out_dir):
        all_data_docs_built()  # the reasons are read there
        raise StageFailed("validate: the data contract is not met:\n" + "\n".join(failures), record)
    return record


@task(name="validate-results", task_run_name="validate results · {departments}", cache_policy=NO_CACHE)
def validate_results_files(
    kind: Kind, departments: list[str], ingest_dir: Path, out_dir: Path, plan_dir: Path
) -> list[dict[str, Any]]:
    """Departments' results (or corrections of published ones): the checks against the plan, then the
    contract (one GX validation)."""
    plan = load_plan_side(plan_dir)

    def checked(typed: pl.DataFrame) -> pl.DataFrame:
        if kind == "corrections":
            return with_correction_checks(typed, plan, pl.read_parquet(plan_dir / "results.parquet"))
        return with_result_checks(typed, plan)

    typed = {
        d: write_parquet(
            checked(pl.read_parquet(ingest_dir / kind / f"{d}.parquet")),
            out_dir / "checked" / kind / f"{d}.parquet",
        )
        for d in departments
    }
    return validate_department_files(kind, typed, ingest_dir, result_rules(kind), out_dir)


def run_results_validate(folder: RunFolder, plan_dir: Path, threshold: float, day: dt.date) -> ValidateRecord:
    """The results flow's validate stage: each department's results file against the plan as the
    warehouse holds it (`plan_dir`: the run's 00_plan/), then the contract, in batches as above."""
    contract = Contract.ephemeral()
    ingest_dir, validate_dir = folder.stage("ingest"), folder.stage("validate")
    failed = file_failures(contract, RESULT_KINDS, ingest_dir)
    futures = map_department_files(
        RESULT_KINDS, failed, validate_results_files, ingest_dir=ingest_dir, out_dir=validate_dir, plan_dir=plan_dir
    )
    done = in_report_order(failed + [r for f in futures for r in f.result()])
    record = validation_record(contract, done, validate_dir, threshold, RESULT_KINDS, day.isoformat())
    return contract_met(record, validate_dir)
