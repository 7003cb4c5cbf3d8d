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
      team.parquet / .xlsx / .csv          one row per member: department, role, leader (组长), pool
      redraws.parquet / .xlsx / .csv       replacement draws (递补) since the draw: who, whom, why
      inspectors.parquet, avoid.parquet, items.parquet   what a redraw is drawn from (verify recomputes it)
      unassigned.parquet / .xlsx / .csv    joint tasks that could not be staffed, with reasons
      quarantine/                   every rejected row with file, line, reason and original values
      validation/                   the Great Expectations results as Data Docs

The bundle is assembled in a staging folder and moved into place in one step
(transforms/storage/bundle.py); the seal is then appended to the plan's audit log, and the warehouse's
transaction for the run — begun while the bundle was written, with the directory snapshot — is committed.
08_publish/stage.json records where the bundle went and its seal.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

from prefect import get_run_logger
from prefect.events import emit_event

from jointdraw.flows.data_docs import data_docs_built
from jointdraw.transforms.audit import PUBLISH, entry_event
from jointdraw.transforms.documents.draw_bundle import (
    DRAWS_TABLE,
    EarlierFile,
    assemble_bundle,
    keep_results,
    seal_bundle,
    write_notice_from,
    write_public_directory,
)
from jointdraw.transforms.plan import Plan
from jointdraw.transforms.privacy import public_leaks
from jointdraw.transforms.stage_records import PublishRecord
from jointdraw.transforms.storage.background import asked_ahead, write_ahead
from jointdraw.transforms.storage.bundle import (
    AUDIT,
    PUBLIC,
    bundle_file,
    folder_bytes,
    publish_atomically,
    refuse_leaks,
)
from jointdraw.transforms.storage.layout import OutputRoot, RunFolder
from jointdraw.transforms.storage.reuse import merged_again, public_directory_key
from jointdraw.transforms.storage.runfolder import DIRECTORY_PARTS, copy_verified, directory_parts, inputs_from
from jointdraw.transforms.storage.warehouse import (
    DirectoryDelta,
    append_seal,
    audit_entries,
    directory_key,
    plans_with_public_directory,
    recording_run,
)
from jointdraw.transforms.storage.xlsxout import write_people_tables_from


def _earlier_public_directories(root: OutputRoot, key: str) -> list[EarlierFile]:
    """The published bundles' audit/directory.parquet of this reuse key, with the SHA-256 their manifests list."""
    found = []
    for plan_id in plans_with_public_directory(root.path, key):
        manifest = bundle_file(root.published(plan_id), "manifest.json")
        if not manifest.is_file():
            continue
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        found += [
            EarlierFile(plan_id, bundle_file(root.published(plan_id), "directory.parquet"), f["sha256"])
            for f in files
            if f["path"] == f"{AUDIT}/directory.parquet"
        ]
    return found


AHEAD = ".ahead"  # in 08_publish/: audit/directory.parquet and the draws' tables while they are written ahead


def _ahead_directory(run: RunFolder, key: str) -> Path:
    """Where audit/directory.parquet of this public directory key is written ahead."""
    return run.stage("publish") / AHEAD / f"directory-{key[:16]}.parquet"


def _ahead_draws(run: RunFolder) -> Path:
    """Where audit/draws.csv (and draws.xlsx beside it) is written ahead."""
    return run.stage("publish") / AHEAD / "draws.csv"


def _ahead_notice(run: RunFolder) -> Path:
    """Where public/notice.csv (and notice.xlsx, notice.html beside it) is written ahead."""
    return run.stage("publish") / AHEAD / "notice.csv"


def _directory_sha256(run: RunFolder) -> list[str]:
    """The SHA-256 of the committed directory's files, in order, as the commit recorded them."""
    return [f["sha256"] for f in inputs_from(run.path, "commit", DIRECTORY_PARTS)]


def _directory_delta(run: RunFolder) -> DirectoryDelta | None:
    """For a directory merged again (`merged_again`): the directory it was merged again from and the entities merged
    again, for the warehouse to store it as the rows that differ."""
    again = merged_again(run)
    return DirectoryDelta(directory_key(again.earlier_directory_sha256), again.affected) if again else None


def _public_directory_sources(run: RunFolder, reuse: bool) -> tuple[str, list[EarlierFile]]:
    """The reuse key of the run's audit/directory.parquet (its directory files and the code) and, with `reuse`,
    the published bundles' copies of it."""
    key = public_directory_key(_directory_sha256(run))
    return key, _earlier_public_directories(run.root, key) if reuse else []


def write_ahead_for_publish(run: RunFolder, plan: Plan, reuse: bool) -> None:
    """Before assign, which matches on one core, when publish follows in this process: what publish writes from
    the draw, the joint tasks and the directory alone, written meanwhile by background workers
    (transforms/storage/background.py `write_ahead`): the draws' tables (audit/draws.csv and .xlsx, 1.2 s at 8M),
    the public notice (notice.csv, .xlsx and .html from fuse's joint tasks: 1.5 s of publish's own time and a
    workbook of its writers' in a quarterly run at 8M) and publish's biggest file,
    audit/directory.parquet (5.8M rows at 8M objects, 6.8-6.9 s of CPU on 5 December), or its copy from an
    earlier bundle when there is one (a quarterly plan's, drawn from the annual plan's directory: 0.3 s). Publish
    takes them, or writes what failed; nothing that goes wrong here fails the run (publish then writes it itself: a
    busy warehouse says so there)."""
    try:
        shutil.rmtree(run.stage("publish") / AHEAD, ignore_errors=True)  # an earlier attempt's
        (run.stage("publish") / AHEAD).mkdir(parents=True)
        key, earlier = _public_directory_sources(run, reuse)
        path = _ahead_directory(run, key)  # in a lane of its own: the longest (when it is written, not copied)
        if earlier:  # copied (and its SHA-256 checked) from the first earlier bundle
            write_ahead(path, copy_verified, earlier[0].path, earlier[0].sha256, path, lane="directory")
        else:
            write_ahead(path, write_public_directory, run.stage("commit"), path, lane="directory")
        draws = run.stage("draw") / "draws.parquet"
        write_ahead(_ahead_draws(run), write_people_tables_from, draws, _ahead_draws(run), *DRAWS_TABLE)
        joint_tasks = run.stage("fuse") / "joint_tasks.parquet"  # the notice reads none of what assign adds
        notice = (run.stage("commit"), run.stage("draw"), joint_tasks, plan, _ahead_notice(run))
        write_ahead(_ahead_notice(run), write_notice_from, *notice)
    except Exception as e:  # an optimisation only
        get_run_logger().info("publish's files not written ahead (%s): publish writes them", e)


def _validate_data_docs_again(run: RunFolder) -> Path:
    from jointdraw.flows.validate import data_docs_again  # Great Expectations: loaded only when needed

    return data_docs_again(run)


def run_publish(run: RunFolder, plan: Plan, reuse: bool = False) -> PublishRecord:
    """The bundle written, sealed and moved into place, and the run recorded in the warehouse; with `reuse`,
    audit/directory.parquet copied from a published bundle written from the same directory files."""
    root = run.root
    run_id = run.run_id
    target = root.published(plan.plan_id)
    # read before the warehouse is opened for writing below: the audit log, and the bundles whose public directory
    # was written from the same directory files (a quarterly plan's, drawn from the annual plan's directory)
    entries = audit_entries(root.path, plan.plan_id)
    data_docs_built(run.stage("validate") / "validation", again=lambda: _validate_data_docs_again(run))
    public_directory, earlier_directory = _public_directory_sources(run, reuse)
    ahead = _ahead_directory(run, public_directory)  # written meanwhile by this process (write_ahead_for_publish)?

    def fill(staging: Path) -> tuple[dict, str, str | None]:
        document, directory_from = assemble_bundle(
            staging,
            run,
            plan,
            entries,
            earlier_directory,
            ahead if asked_ahead(ahead) else None,
            _ahead_draws(run) if asked_ahead(_ahead_draws(run)) else None,
            _ahead_notice(run) if asked_ahead(_ahead_notice(run)) else None,
        )
        refuse_leaks(public_leaks(staging / PUBLIC))
        seal = seal_bundle(staging)
        keep_results(target, staging)
        return document, seal, directory_from

    def needs() -> int:
        written = ("commit", "draw", "assign", "validate")  # what a first publish copies
        return folder_bytes(target) or sum(folder_bytes(run.stage(s)) for s in written)

    # the warehouse learns what this plan drew and who goes where (later plans exclude and avoid by it) in one
    # transaction: its costly part, the directory snapshot, is inserted while the bundle is written; it is
    # committed once the bundle is in place (the committed directory is the published one but the personal columns)
    with recording_run(
        root.path,
        run_id=run_id,
        plan_id=plan.plan_id,
        directory=directory_parts(run.stage("commit")),
        directory_sha256=_directory_sha256(run),
        delta=_directory_delta(run),
    ) as recording:
        document, seal, directory_from = publish_atomically(target, root.path, fill, needs)
        sealed = append_seal(
            root.path,
            plan_id=plan.plan_id,
            run_id=run_id,
            event=PUBLISH,
            seal=seal,
            time=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        emit_event(**entry_event(sealed, shopped=False))  # the seal in Prefect's event store too
        warehouse_rows = recording.finish(
            period=(plan.period.start, plan.period.end),
            commitment=document["commitment"]["commitment"],
            seed=document["seed"]["value"],
            draws=run.stage("draw") / "draws.parquet",
            joint_tasks=bundle_file(target, "joint_tasks.parquet"),  # the teams as published: after any redraw (递补)
            task_departments=run.stage("fuse") / "task_departments.parquet",
            team=bundle_file(target, "team.parquet"),
            items=bundle_file(target, "items.parquet"),  # the item lists: what the yearly figures count items against
            kpi_targets=plan.kpi_targets.model_dump_json(exclude_none=True) if plan.kpi_targets else None,
            public_directory=public_directory,
        )
    shutil.rmtree(run.stage("publish") / AHEAD, ignore_errors=True)
    return PublishRecord(
        inputs=[
            *(r for stage in ("validate", "commit") for r in inputs_from(run.path, stage)),
            *inputs_from(run.path, "draw", "draws.parquet", "strata.parquet"),  # not its in-scope pairs: for later runs
            *(r for stage in ("fuse", "assign") for r in inputs_from(run.path, stage)),
        ],
        bundle=str(target),
        warehouse_rows=warehouse_rows,
        files=len(document["files"]),
        documents=len(document["documents"]),
        seal=seal,
        seal_entry=sealed["seq"],
        published=[f for f in document["files"] if f["path"].count("/") == 1],
        directory_copied_from=directory_from,
    ).with_manifest(document)
