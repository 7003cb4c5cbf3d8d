"""Stage `publish` (结果公示, SPEC §4.7, §6): the bundle OUT/published/<plan_id>/, in three parts,
each a folder handed over whole to its audience (transforms/storage/bundle.py: PARTS, bundle_file):

    public/      for anyone (公开)
      notice.xlsx / .csv / .html    the public notice (公示名单): Chinese headers, no class, no people
      strata.parquet / .xlsx / .csv per task and class: key, N, k, cut-off score (核验: check one entity)
      summary.json                  the five fusion figures, counts by department, district, class
      report.html                   the same for people, with charts; opens offline
      seed.json, commitment.json    the seed and the commitment it was drawn under
      pre/                          the publication before the draw (事前公示; own manifest)
      manifest.json                 seed, commitment, algorithm, packages, every input and every file of
                                    the three parts with SHA-256 and rows, every stage's accounting;
                                    its SHA-256 is the seal (封存值, transforms/documents/seal.py)
    audit/       for a notary or auditor: `jointdraw verify` recomputes every draw from public/ + audit/
      directory.parquet, exclusions.parquet, plan.yaml   what fixed the eligible sets (classes, no personal fields)
      draws.parquet / .xlsx / .csv  one row per (task, entity) drawn (SPEC §6 columns, with the class)
      attempts.json                 the plan's hash-chained log of draw attempts and seals, as of this publication
    regulator/   for the departments
      joint_tasks.parquet / .xlsx / .csv   one row per entity: departments, lead, tasks, items, team, day
      unassigned.parquet / .xlsx / .csv    joint tasks that could not be staffed, with reasons
      quarantine/                   every rejected row with file, line, reason and original values
      validation/                   the Great Expectations results as Data Docs

The bundle is assembled in a staging folder and moved into place in one step
(transforms/storage/bundle.py); the seal is then appended to the plan's audit log. 08_publish/stage.json
records where the bundle went and its seal.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl
from prefect import get_run_logger
from prefect.events import emit_event

from jointdraw.flows.errors import StageFailed
from jointdraw.transforms.audit import PUBLISH, attempts, entry_event, seed_shopping
from jointdraw.transforms.documents import people_headers
from jointdraw.transforms.documents.manifest import manifest, stage_accounting
from jointdraw.transforms.documents.notice import NOTICE_COLUMNS, public_notice, render_notice_page
from jointdraw.transforms.documents.report import ReportData, render_report, strata_met, validation_table
from jointdraw.transforms.documents.seal import SEAL_PAGES, fill_seal, seal_of
from jointdraw.transforms.draw import score_keys
from jointdraw.transforms.entity_check import stratum_cutoffs
from jointdraw.transforms.merge import DRAWN_ID
from jointdraw.transforms.plan import Plan
from jointdraw.transforms.privacy import public_leaks
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
    write_prepublication,
)
from jointdraw.transforms.storage.layout import OutputRoot, read_run_record
from jointdraw.transforms.storage.runfolder import (
    STAGES,
    copy_file,
    inputs_from,
    read_stage_record,
    stage_dir,
    write_json,
    write_parquet,
)
from jointdraw.transforms.storage.warehouse import append_seal, audit_entries, record_run
from jointdraw.transforms.storage.xlsxout import write_people_tables

PERSONAL_COLUMNS = ("operator_name", "phone")  # never leave the run folder


def _json(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _without_keys(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}


def _report_data(
    run_dir: Path, plan: Plan, run_id: str, summary: dict[str, Any], seed: dict[str, Any], shopped: list[dict[str, Any]]
) -> ReportData:
    draw_dir = stage_dir(run_dir, "draw")
    strata = strata_met(pl.read_parquet(draw_dir / "strata.parquet"), pl.read_parquet(draw_dir / "draws.parquet"), plan)
    assign_dir = stage_dir(run_dir, "assign")
    unassigned = pl.read_parquet(assign_dir / "unassigned.parquet").join(
        pl.read_parquet(assign_dir / "joint_tasks.parquet", columns=["joint_task_id", "name"]),
        on="joint_task_id",
        how="left",
    )
    validation = validation_table(read_stage_record(run_dir, "validate") or {})
    draw_record = read_stage_record(run_dir, "draw") or {}
    return ReportData(
        plan_id=plan.plan_id,
        plan_title=plan.title,
        period=f"{plan.period.start}至{plan.period.end}",
        run_id=run_id,
        seed=seed,
        commitment=seed.get("commitment", ""),
        summary=summary,
        fusion_modes=draw_record.get("fusion", {}),
        mode=draw_record.get("mode", "independent"),
        strata=strata,
        exclusions=(read_stage_record(run_dir, "commit") or {}).get("exclusions_by_reason", {}),
        unassigned=unassigned,
        validation=validation,
        assign=read_stage_record(run_dir, "assign") or {},
        seed_shopping=shopped,
        empty_tasks=draw_record.get("tasks_without_eligible", []),
    )


def _assemble(bundle: Path, run_dir: Path, plan: Plan, run_id: str) -> dict[str, Any]:
    """Writes every file of the bundle into `bundle` (the staging folder), the manifest last; returns
    the manifest. The pages that show the seal are written with an empty slot (see `_seal`)."""
    commit_dir, draw_dir, fuse_dir, assign_dir, validate_dir = (
        stage_dir(run_dir, s) for s in ("commit", "draw", "fuse", "assign", "validate")
    )
    at = partial(bundle_file, bundle)
    draws = pl.read_parquet(draw_dir / "draws.parquet")
    copy_file(draw_dir / "draws.parquet", at("draws.parquet"))
    write_people_tables(draws, at("draws.csv"), people_headers.DRAWS, "抽取结果")
    joint_tasks = pl.read_parquet(assign_dir / "joint_tasks.parquet")
    copy_file(assign_dir / "joint_tasks.parquet", at("joint_tasks.parquet"))
    write_people_tables(joint_tasks, at("joint_tasks.csv"), people_headers.JOINT_TASKS, "联合检查任务")
    copy_file(assign_dir / "unassigned.parquet", at("unassigned.parquet"))
    for name in ("unassigned.csv", "unassigned.xlsx"):
        copy_file(assign_dir / name, at(name))
    directory = pl.read_parquet(commit_dir / "directory.parquet")
    items = pl.read_parquet(commit_dir / "items.parquet", columns=["item_id", "name"])
    notice = public_notice(
        joint_tasks,
        directory.with_columns(DRAWN_ID).join(joint_tasks.select("uscc"), on="uscc", how="semi"),
        items,
        plan,
    )
    write_people_tables(notice, at("notice.csv"), NOTICE_COLUMNS, "公示名单")
    seed_used = _json(draw_dir / "seed.json")
    at("notice.html").write_text(
        render_notice_page(notice, plan, seed_used["seed"], seed_used.get("commitment", "")), encoding="utf-8"
    )
    # per stratum: N, k and the cut-off score, so anyone can check one entity (核验)
    cutoffs = stratum_cutoffs(pl.read_parquet(draw_dir / "strata.parquet"), draws, score_keys(plan, "planned"))
    write_parquet(cutoffs, at("strata.parquet"))
    write_people_tables(cutoffs, at("strata.csv"), people_headers.STRATA, "核验表")
    summary = _json(fuse_dir / "summary.json")
    copy_file(fuse_dir / "summary.json", at("summary.json"))
    # what fixed the eligible sets, as drawn — without the operators' personal data (not part of the commitment)
    write_parquet(directory.drop(PERSONAL_COLUMNS, strict=False), at("directory.parquet"))
    copy_file(commit_dir / "exclusions.parquet", at("exclusions.parquet"))
    copy_file(commit_dir / "plan.yaml", at("plan.yaml"))
    committed = _json(commit_dir / "commitment.json")
    seed = _json(draw_dir / "seed.json")
    write_json(_without_keys(committed, "committed_at"), at("commitment.json"))  # times go to the manifest's timeline
    write_json(_without_keys(seed, "used_at"), at("seed.json"))
    write_prepublication(commit_dir, at(PRE), plan.plan_id)  # 事前公示: as it was published at commit
    shutil.copytree(validate_dir / "quarantine", at("quarantine"))
    for name in ("quarantine.csv", "quarantine.xlsx"):
        copy_file(validate_dir / name, at("quarantine") / name)
    shutil.copytree(validate_dir / "validation", at("validation"))
    entries = audit_entries(OutputRoot.of_run(run_dir).path, plan.plan_id)  # every logged attempt and seal, chained
    shopping = seed_shopping(entries)
    write_json({"plan_id": plan.plan_id, "entries": entries}, at("attempts.json"))
    html = render_report(
        _report_data(run_dir, plan, run_id, summary, seed, [e for es in shopping.values() for e in es])
    )
    at("report.html").write_text(html, encoding="utf-8")
    run = read_run_record(run_dir)
    ingest = read_stage_record(run_dir, "ingest") or {}
    document = manifest(
        plan_id=plan.plan_id,
        run_id=run_id,
        timeline={
            "run_date": run.run_date,
            "committed_at": committed.get("committed_at"),
            **({"seed_announced_at": seed["sources_announced_at"]} if "sources_announced_at" in seed else {}),
            "seed_used_at": seed.get("used_at"),
            "published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
        seed={"value": seed["seed"], "origin": seed["origin"], "sources": seed.get("sources", [])},
        commitment=_without_keys(committed, "committed_at"),
        inputs=[{"department": f["department"], "kind": f["kind"], **f["source"]} for f in ingest.get("files", [])],
        folder=bundle,
        accounting=stage_accounting({stage: read_stage_record(run_dir, stage) or {} for stage in STAGES}),
        audit={
            "attempts": len(attempts(entries)),
            "seed_shopping": {c: [e["seq"] for e in es] for c, es in shopping.items()},
        },
    )
    write_json(document, at("manifest.json"))
    return document


def _seal(bundle: Path) -> str:
    """The seal (the final manifest's SHA-256), written into the pages that show it."""
    seal = seal_of(bundle_file(bundle, "manifest.json"))
    for page in SEAL_PAGES:
        fill_seal(bundle_file(bundle, page), seal)
    return seal


def _keep_results(previous: Path, staging: Path) -> None:
    """The results published so far stay, in both parts (they answer to their own manifest)."""
    if (results_folder(previous, PUBLIC) / "manifest.json").is_file():
        for part in (PUBLIC, REGULATOR):
            if results_folder(previous, part).is_dir():
                shutil.copytree(results_folder(previous, part), results_folder(staging, part))


def run_publish(run_dir: Path, plan: Plan) -> dict[str, Any]:
    logger = get_run_logger()
    started = time.perf_counter()
    out = stage_dir(run_dir, "publish")
    root = OutputRoot.of_run(run_dir)
    run_id = read_run_record(run_dir).run_id
    target = root.published(plan.plan_id)
    staging = staging_folder(target, root.path)
    try:
        document = _assemble(staging, run_dir, plan, run_id)
        leaks = public_leaks(staging / PUBLIC)
        if leaks:
            raise StageFailed(
                f"publish: refused, the public part would hold what is not public: {'; '.join(leaks[:5])}"
            )
        seal = _seal(staging)
        _keep_results(target, staging)
        move_into_place(staging, target)
    except (OSError, pl.exceptions.PolarsError) as e:
        if not isinstance(e, OSError) and io_errno(e) is None:
            raise  # not the disk: a defect to see whole
        needs = folder_bytes(target) or sum(
            folder_bytes(stage_dir(run_dir, s)) for s in ("commit", "draw", "assign", "validate")
        )
        raise StageFailed(f"publish: {publish_failure(e, target, needs)}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when moved; a half bundle when something failed
    sealed = append_seal(
        root.path,
        plan_id=plan.plan_id,
        run_id=run_id,
        event=PUBLISH,
        seal=seal,
        time=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    emit_event(**entry_event(sealed, shopped=False))  # the seal in Prefect's event store too
    # the warehouse learns what this plan drew and who goes where: later plans exclude and avoid by it
    warehouse_rows = record_run(
        root.path,
        run_id=run_id,
        plan_id=plan.plan_id,
        period=(plan.period.start, plan.period.end),
        commitment=document["commitment"]["commitment"],
        seed=document["seed"]["value"],
        directory=bundle_file(target, "directory.parquet"),
        draws=stage_dir(run_dir, "draw") / "draws.parquet",
        joint_tasks=stage_dir(run_dir, "assign") / "joint_tasks.parquet",
        task_departments=stage_dir(run_dir, "fuse") / "task_departments.parquet",
        team=stage_dir(run_dir, "assign") / "team.parquet",
    )
    inputs = [r for stage in ("validate", "commit", "draw", "fuse", "assign") for r in inputs_from(run_dir, stage)]
    record = {
        "stage": "publish",
        "inputs": inputs,
        "bundle": str(target),
        "warehouse_rows": warehouse_rows,
        "files": len(document["files"]),
        "documents": len(document["documents"]),
        "seal": seal,
        "seal_entry": sealed["seq"],
        "published": [f for f in document["files"] if f["path"].count("/") == 1],
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_json(record, out / "stage.json")
    logger.info(
        "publish: %s files and %s documents → %s; seal (封存值) %s, audit log entry %s; warehouse rows for %s: %s",
        record["files"],
        record["documents"],
        target,
        seal,
        sealed["seq"],
        plan.plan_id,
        warehouse_rows,
    )
    return {**record, "manifest": document}
