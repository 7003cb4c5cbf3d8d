"""Stage `publish` (结果公示, SPEC §4.7, §6): the audit bundle OUT/published/<plan_id>/.

    draws.parquet / .xlsx / .csv  one row per (task, entity) drawn (SPEC §6 columns)
    joint_tasks.parquet / .xlsx / .csv   one row per entity: departments, lead, tasks, items, team, day
    unassigned.xlsx / .csv        joint tasks that could not be staffed, with reasons
    notice.xlsx / .csv            the public notice (公示名单): Chinese headers, no class, no people
    notice.html                   the same as one searchable page that opens offline
    strata.parquet / .xlsx / .csv per task and class: key, N, k, cut-off score (核验: check one entity)
    summary.json                  the five fusion figures, counts by department, district, class
    report.html                   the same for people, with charts; opens offline
    directory.parquet, exclusions.parquet, plan.yaml, commitment.json, seed.json
                                  what fixed the eligible sets: `jointdraw verify` recomputes the draw
    quarantine/                   every rejected row with file, line, reason and original values
    validation/                   the Great Expectations results as Data Docs
    manifest.json                 seed, commitment, algorithm, packages, every input and file
                                  with SHA-256 and rows, every stage's accounting

The bundle is assembled in a staging folder and moved into place in one step
(transforms/bundle.py). 08_publish/stage.json records where it went and the manifest's hash.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path
from typing import Any

import polars as pl
from prefect import get_run_logger

from flows.errors import StageFailed
from transforms import people_headers
from transforms.audit import seed_shopping
from transforms.bundle import PRE, move_into_place, staging_folder, write_prepublication
from transforms.draw import score_keys
from transforms.entity_check import stratum_cutoffs
from transforms.manifest import manifest, stage_accounting
from transforms.merge import DRAWN_ID
from transforms.notice import NOTICE_COLUMNS, public_notice, render_notice_page
from transforms.plan import Plan
from transforms.report import ReportData, render_report, strata_met, validation_table
from transforms.runfolder import (
    STAGES,
    copy_file,
    inputs_from,
    read_stage_record,
    sha256_file,
    stage_dir,
    write_json,
    write_parquet,
)
from transforms.warehouse import audit_entries, record_run
from transforms.xlsxout import write_people_tables

PERSONAL_COLUMNS = ("operator_name", "phone")  # never leave the run folder


def _json(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _without_keys(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}


def _report_data(run_dir: Path, plan: Plan, run_id: str, summary: dict[str, Any], seed: dict[str, Any],
                 shopped: list[dict[str, Any]]) -> ReportData:
    draw_dir = stage_dir(run_dir, "draw")
    strata = strata_met(pl.read_parquet(draw_dir / "strata.parquet"), pl.read_parquet(draw_dir / "draws.parquet"), plan)
    assign_dir = stage_dir(run_dir, "assign")
    unassigned = (pl.read_parquet(assign_dir / "unassigned.parquet")
                  .join(pl.read_parquet(assign_dir / "joint_tasks.parquet", columns=["joint_task_id", "name"]), on="joint_task_id", how="left"))
    validation = validation_table(read_stage_record(run_dir, "validate") or {})
    draw_record = read_stage_record(run_dir, "draw") or {}
    return ReportData(
        plan_id=plan.plan_id, plan_title=plan.title, period=f"{plan.period.start}至{plan.period.end}", run_id=run_id,
        seed=seed, commitment=seed.get("commitment", ""), summary=summary, fusion_modes=draw_record.get("fusion", {}),
        mode=draw_record.get("mode", "independent"), strata=strata,
        exclusions=(read_stage_record(run_dir, "commit") or {}).get("exclusions_by_reason", {}),
        unassigned=unassigned, validation=validation, assign=read_stage_record(run_dir, "assign") or {},
        seed_shopping=shopped, empty_tasks=draw_record.get("tasks_without_eligible", []),
    )


def _assemble(bundle: Path, run_dir: Path, plan: Plan, run_id: str) -> dict[str, Any]:
    """Writes every file of the bundle into `bundle` (the staging folder); returns the manifest."""
    commit_dir, draw_dir, fuse_dir, assign_dir, validate_dir = (stage_dir(run_dir, s) for s in
                                                                ("commit", "draw", "fuse", "assign", "validate"))
    draws = pl.read_parquet(draw_dir / "draws.parquet")
    copy_file(draw_dir / "draws.parquet", bundle / "draws.parquet")
    write_people_tables(draws, bundle / "draws.csv", people_headers.DRAWS, "抽取结果")
    joint_tasks = pl.read_parquet(assign_dir / "joint_tasks.parquet")
    copy_file(assign_dir / "joint_tasks.parquet", bundle / "joint_tasks.parquet")
    write_people_tables(joint_tasks, bundle / "joint_tasks.csv", people_headers.JOINT_TASKS, "联合检查任务")
    for name in ("unassigned.csv", "unassigned.xlsx"):
        copy_file(assign_dir / name, bundle / name)
    directory = pl.read_parquet(commit_dir / "directory.parquet")
    items = pl.read_parquet(commit_dir / "items.parquet", columns=["item_id", "name"])
    notice = public_notice(joint_tasks, directory.with_columns(DRAWN_ID).join(joint_tasks.select("uscc"), on="uscc", how="semi"),
                           items, plan)
    write_people_tables(notice, bundle / "notice.csv", NOTICE_COLUMNS, "公示名单")
    seed_used = _json(draw_dir / "seed.json")
    (bundle / "notice.html").write_text(render_notice_page(notice, plan, seed_used["seed"], seed_used.get("commitment", "")),
                                        encoding="utf-8")
    # per stratum: N, k and the cut-off score, so anyone can check one entity (核验)
    cutoffs = stratum_cutoffs(pl.read_parquet(draw_dir / "strata.parquet"), draws, score_keys(plan, "planned"))
    write_parquet(cutoffs, bundle / "strata.parquet")
    write_people_tables(cutoffs, bundle / "strata.csv", people_headers.STRATA, "核验表")
    summary = _json(fuse_dir / "summary.json")
    copy_file(fuse_dir / "summary.json", bundle / "summary.json")
    # what fixed the eligible sets, as drawn — without the operators' personal data (not part of the commitment)
    write_parquet(directory.drop(PERSONAL_COLUMNS, strict=False), bundle / "directory.parquet")
    copy_file(commit_dir / "exclusions.parquet", bundle / "exclusions.parquet")
    copy_file(commit_dir / "plan.yaml", bundle / "plan.yaml")
    committed = _json(commit_dir / "commitment.json")
    seed = _json(draw_dir / "seed.json")
    write_json(_without_keys(committed, "committed_at"), bundle / "commitment.json")  # times go to the manifest's timeline
    write_json(_without_keys(seed, "used_at"), bundle / "seed.json")
    write_prepublication(commit_dir, bundle / PRE, plan.plan_id)  # 事前公示: as it was published at commit
    shutil.copytree(validate_dir / "quarantine", bundle / "quarantine")
    for name in ("quarantine.csv", "quarantine.xlsx"):
        copy_file(validate_dir / name, bundle / "quarantine" / name)
    shutil.copytree(validate_dir / "validation", bundle / "validation")
    entries = audit_entries(run_dir.parent.parent, plan.plan_id)  # every logged draw attempt of the plan, chained
    shopping = seed_shopping(entries)
    audit = {"entries": entries, "seed_shopping": {c: [e["seq"] for e in es] for c, es in shopping.items()}}
    html = render_report(_report_data(run_dir, plan, run_id, summary, seed, [e for es in shopping.values() for e in es]))
    (bundle / "report.html").write_text(html, encoding="utf-8")
    run = _json(run_dir / "run.json")
    ingest = read_stage_record(run_dir, "ingest") or {}
    document = manifest(
        plan_id=plan.plan_id, run_id=run_id,
        timeline={"run_date": run.get("run_date"), "committed_at": committed.get("committed_at"),
                  **({"seed_announced_at": seed["sources_announced_at"]} if "sources_announced_at" in seed else {}),
                  "seed_used_at": seed.get("used_at"),
                  "published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")},
        seed={"value": seed["seed"], "origin": seed["origin"], "sources": seed.get("sources", [])},
        commitment=_without_keys(committed, "committed_at"),
        inputs=[{"department": f["department"], "kind": f["kind"], **f["source"]} for f in ingest.get("files", [])],
        folder=bundle, accounting=stage_accounting({stage: read_stage_record(run_dir, stage) or {} for stage in STAGES}),
        audit=audit,
    )
    write_json(document, bundle / "manifest.json")
    return document


def run_publish(run_dir: Path, plan: Plan) -> dict[str, Any]:
    logger = get_run_logger()
    started = time.perf_counter()
    out = stage_dir(run_dir, "publish")
    run_id = _json(run_dir / "run.json")["run_id"]
    target = run_dir.parent.parent / "published" / plan.plan_id  # OUT/published/<plan_id>
    staging = staging_folder(target, run_dir.parent.parent)
    try:
        document = _assemble(staging, run_dir, plan, run_id)
        if (target / "results" / "manifest.json").is_file():  # the results published so far stay (their own manifest)
            shutil.copytree(target / "results", staging / "results")
        manifest_sha = sha256_file(staging / "manifest.json")
        move_into_place(staging, target)
    except (OSError, KeyError, ValueError) as e:
        raise StageFailed(f"publish: the bundle could not be assembled ({type(e).__name__}: {e}); the previous bundle in {target} "
                          f"is untouched — rerun the stage that writes the missing file, then publish") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when moved; a half bundle when something failed
    # the warehouse learns what this plan drew and who goes where: later plans exclude and avoid by it
    warehouse_rows = record_run(run_dir.parent.parent, run_id=run_id, plan_id=plan.plan_id,
                                period=(plan.period.start, plan.period.end), commitment=document["commitment"]["commitment"],
                                seed=document["seed"]["value"], directory=target / "directory.parquet",
                                draws=stage_dir(run_dir, "draw") / "draws.parquet",
                                joint_tasks=stage_dir(run_dir, "assign") / "joint_tasks.parquet",
                                task_departments=stage_dir(run_dir, "fuse") / "task_departments.parquet",
                                team=stage_dir(run_dir, "assign") / "team.parquet")
    inputs = [r for stage in ("validate", "commit", "draw", "fuse", "assign") for r in inputs_from(run_dir, stage)]
    record = {"stage": "publish", "inputs": inputs, "bundle": str(target), "warehouse_rows": warehouse_rows, "files": len(document["files"]), "documents": len(document["documents"]),
              "manifest_sha256": manifest_sha,
              "published": [f for f in document["files"] if "/" not in f["path"]],
              "seconds": round(time.perf_counter() - started, 3)}
    write_json(record, out / "stage.json")
    logger.info("publish: %s files and %s documents → %s (manifest %s…); warehouse rows for %s: %s", record["files"],
                record["documents"], target, manifest_sha[:12], plan.plan_id, warehouse_rows)
    return {**record, "manifest": document}
