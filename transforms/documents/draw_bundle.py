"""The draw's bundle, assembled (SPEC §6; what each file is: flows/publish.py's docstring): every
file of the three parts written into a staging folder, the manifest last, then the seal written
into the pages that show it. The publish stage moves the folder into place.

    manifest, _ = assemble_bundle(staging, run, plan, audit_entries(out_root, plan.plan_id))
    seal = seal_bundle(staging)
    keep_results(published, staging)
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl

from jointdraw.transforms.assign import team_for_people, with_roles, with_team
from jointdraw.transforms.audit import attempts, seed_shopping
from jointdraw.transforms.documents import people_headers
from jointdraw.transforms.documents.manifest import manifest
from jointdraw.transforms.documents.notice import NOTICE_COLUMNS, public_notice, render_notice_page
from jointdraw.transforms.documents.report import (
    ReportData,
    render_report,
    rules_in_force,
    strata_met,
    validation_table,
)
from jointdraw.transforms.documents.seal import SEAL_PAGES, fill_seal, seal_of
from jointdraw.transforms.draw import score_keys
from jointdraw.transforms.entity_check import stratum_cutoffs
from jointdraw.transforms.merge import drawn_entities
from jointdraw.transforms.plan import Plan
from jointdraw.transforms.redraw import apply_redraws, redraw_table, redraws_for_people, redraws_of
from jointdraw.transforms.stage_records import stage_accounting
from jointdraw.transforms.storage.background import BackgroundWriters, written_ahead
from jointdraw.transforms.storage.bundle import (
    PRE,
    PUBLIC,
    REGULATOR,
    bundle_file,
    results_folder,
    write_prepublication,
)
from jointdraw.transforms.storage.layout import RunFolder
from jointdraw.transforms.storage.runfolder import (
    STAGES,
    copy_file,
    copy_parquet_without,
    copy_verified,
    directory_parts,
    write_json,
    write_parquet,
)
from jointdraw.transforms.storage.xlsxout import write_people_tables

PERSONAL_COLUMNS = ("operator_name", "phone")  # never leave the run folder
# the inspectors registry as a replacement draw reads it (no names, no certificate numbers)
POOL_COLUMNS = (
    "inspector_id",
    "department",
    "district_code",
    "status",
    "cert_valid_until",
    "item_scope",
    "role",
    "expertise",
)


def _json(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _without_keys(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}


def _report_data(
    run: RunFolder,
    plan: Plan,
    summary: dict[str, Any],
    seed: dict[str, Any],
    shopped: list[dict[str, Any]],
    redraws: int,
) -> ReportData:
    draw_dir = run.stage("draw")
    strata = strata_met(pl.read_parquet(draw_dir / "strata.parquet"), pl.read_parquet(draw_dir / "draws.parquet"), plan)
    assign_dir = run.stage("assign")
    unassigned = pl.read_parquet(assign_dir / "unassigned.parquet").join(
        pl.read_parquet(assign_dir / "joint_tasks.parquet", columns=["joint_task_id", "name"]),
        on="joint_task_id",
        how="left",
    )
    validation = validation_table(run.stage_record("validate").model_dump())
    draw_record = run.stage_record("draw")
    return ReportData(
        plan_id=plan.plan_id,
        plan_title=plan.title,
        period=f"{plan.period.start}至{plan.period.end}",
        run_id=run.run_id,
        seed=seed,
        commitment=seed.get("commitment", ""),
        summary=summary,
        fusion_modes=draw_record.fusion,
        mode=draw_record.mode,
        strata=strata,
        exclusions=run.stage_record("commit").exclusions_by_reason,
        unassigned=unassigned,
        validation=validation,
        assign=run.stage_record("assign").model_dump(),
        rules=rules_in_force(plan, run.stage_record("assign").model_dump(), redraws),
        seed_shopping=shopped,
        empty_tasks=draw_record.tasks_without_eligible,
    )


def _write_teams(
    at,
    team: pl.DataFrame,
    redraws: list[dict[str, Any]],
    commit_dir: Path,
    assign_dir: Path,
    writers: BackgroundWriters,
) -> None:
    """The regulator's team files, the redraws, and what a redraw is drawn from (so `verify` can
    recompute it): the committed inspectors without names, the avoid pairs, the items' expert fields."""
    write_parquet(team, at("team.parquet"))
    write_people_tables(team_for_people(team), at("team.csv"), people_headers.TEAM, "检查组", writers=writers)
    table = redraw_table(redraws)
    write_parquet(table, at("redraws.parquet"))
    write_people_tables(
        redraws_for_people(table), at("redraws.csv"), people_headers.REDRAWS, "递补记录", writers=writers
    )
    pool = with_roles(pl.read_parquet(commit_dir / "inspectors.parquet")).select(POOL_COLUMNS)
    write_parquet(pool.sort("inspector_id"), at("inspectors.parquet"))
    copy_file(assign_dir / "avoid.parquet", at("avoid.parquet"))
    items = pl.read_parquet(commit_dir / "items.parquet")
    expert = pl.col("expert") if "expert" in items.columns else pl.lit(None, pl.String)
    write_parquet(items.select("item_id", "department", "name", "category", expert=expert), at("items.parquet"))


def _drawn_people(commit_dir: Path, joint_tasks: pl.DataFrame) -> pl.DataFrame:
    """(uscc, entity_type, operator_name) of the drawn entities: what the notice masks names by."""
    return drawn_entities(directory_parts(commit_dir), joint_tasks["uscc"], "entity_type", "operator_name")


class EarlierFile(NamedTuple):
    """A published bundle's file: its plan, where it is, and the SHA-256 the bundle's manifest lists."""

    plan_id: str
    path: Path
    sha256: str


def write_public_directory(commit_dir: Path, path: Path) -> Path:
    """audit/directory.parquet, written at `path`: the committed directory without its personal columns."""
    return copy_parquet_without(directory_parts(commit_dir), path, PERSONAL_COLUMNS)


def _public_directory(
    commit_dir: Path, path: Path, earlier: Sequence[EarlierFile], ahead: Path | None, writers: BackgroundWriters
) -> str | None:
    """audit/directory.parquet (`write_public_directory`): copied from an earlier bundle's written from the same
    directory files by the same code (`earlier`), if the copy still has the SHA-256 that bundle's manifest lists
    (returns that bundle's plan) — the first one copied ahead at `ahead` by this process, if it was (flows/publish.py
    `write_ahead_for_publish`); else taken once the writers are done (`_take_ahead`) when this process is writing
    it at `ahead`; else written by a background writer."""
    if ahead is not None and earlier and written_ahead(ahead):
        _moved(ahead, path)
        return earlier[0].plan_id
    for plan_id, source, sha256 in earlier:
        try:
            copy_verified(source, sha256, path)
        except (FileNotFoundError, ValueError):
            continue
        return plan_id
    if ahead is None:
        writers.submit(write_public_directory, commit_dir, path)
    return None


# the draws for people: audit/draws.csv and draws.xlsx (`write_people_tables(draws, path, *DRAWS_TABLE)`)
DRAWS_TABLE = (people_headers.DRAWS, "抽取结果")


NOTICE_SHEET = "公示名单"


def write_notice(
    commit_dir: Path,
    draw_dir: Path,
    joint_tasks: pl.DataFrame,
    plan: Plan,
    path: Path,
    writers: BackgroundWriters | None = None,
) -> Path:
    """public/notice.csv at `path`, with notice.xlsx (by one of `writers`, when given) and notice.html beside it,
    from these joint tasks: fuse's or assign's, the same rows (the notice reads none of what assign adds: teams,
    days)."""
    items = pl.read_parquet(commit_dir / "items.parquet", columns=["item_id", "name"])
    notice = public_notice(joint_tasks, _drawn_people(commit_dir, joint_tasks), items, plan)
    write_people_tables(notice, path, NOTICE_COLUMNS, NOTICE_SHEET, writers=writers)
    seed_used = _json(draw_dir / "seed.json")
    page = render_notice_page(notice, plan, seed_used["seed"], seed_used.get("commitment", ""))
    path.with_suffix(".html").write_text(page, encoding="utf-8")
    return path


def write_notice_from(commit_dir: Path, draw_dir: Path, joint_tasks: Path, plan: Plan, path: Path) -> Path:
    """`write_notice` of a Parquet file's joint tasks: what a background writer is sent (flows/publish.py writes the
    notice ahead from fuse's while assign matches)."""
    return write_notice(commit_dir, draw_dir, pl.read_parquet(joint_tasks), plan, path)


def _take_ahead(ahead: Path, path: Path, write: Callable[[Path], object], *beside: str) -> None:
    """`path` moved into the bundle from where it was written ahead (`ahead`, with the files of the same name and
    the suffixes `beside`), waiting for its writer; or, when that writer failed, written now (`write(path)`)."""
    if written_ahead(ahead):
        for suffix in ("", *beside):
            _moved(ahead.with_suffix(suffix or ahead.suffix), path.with_suffix(suffix or path.suffix))
    else:
        write(path)


def _moved(source: Path, path: Path) -> None:
    """A file written ahead moved into the bundle (its part's folder made if it is the part's first file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(source, path)


def assemble_bundle(
    bundle: Path,
    run: RunFolder,
    plan: Plan,
    entries: list[dict[str, Any]],
    earlier_directory: Sequence[EarlierFile] = (),
    ahead_directory: Path | None = None,
    ahead_draws: Path | None = None,
    ahead_notice: Path | None = None,
) -> tuple[dict[str, Any], str | None]:
    """Writes every file of the bundle into `bundle` (the staging folder), the manifest last; returns
    the manifest, and the plan whose bundle's audit/directory.parquet was copied (None: written). `entries`: the
    plan's audit log (every logged attempt, redraw and seal, chained); `earlier_directory`: earlier bundles'
    audit/directory.parquet written from the same directory files by the same code (`_public_directory`);
    `ahead_directory`: where this process is writing it ahead (flows/publish.py `write_ahead_for_publish`), and
    `ahead_draws` the draws' tables (DRAWS_TABLE), `ahead_notice` the public notice (`write_notice`). The
    pages that show the seal are written with an empty slot (see `_seal`). The directory and the workbooks are
    written by background writers while the rest is written here."""
    commit_dir, draw_dir, fuse_dir, assign_dir, validate_dir = (
        run.stage(s) for s in ("commit", "draw", "fuse", "assign", "validate")
    )
    at = partial(bundle_file, bundle)
    with BackgroundWriters() as writers:  # every file written once the block ends
        # what fixed the eligible sets, as drawn — without the operators' personal data (not part of the commitment);
        # the biggest file: first
        directory_from = _public_directory(
            commit_dir, at("directory.parquet"), earlier_directory, ahead_directory, writers
        )
        draws = pl.read_parquet(draw_dir / "draws.parquet")
        copy_file(draw_dir / "draws.parquet", at("draws.parquet"))
        if ahead_draws is None:
            write_people_tables(draws, at("draws.csv"), *DRAWS_TABLE, writers=writers)
        redraws = redraws_of(entries, run.run_id)  # replacement draws (递补) made since the run published
        team = apply_redraws(pl.read_parquet(assign_dir / "team.parquet"), redraws)
        joint_tasks = pl.read_parquet(assign_dir / "joint_tasks.parquet")
        if redraws:
            joint_tasks = with_team(joint_tasks, team)
            write_parquet(joint_tasks, at("joint_tasks.parquet"))
        else:
            copy_file(assign_dir / "joint_tasks.parquet", at("joint_tasks.parquet"))
        write_people_tables(
            joint_tasks, at("joint_tasks.csv"), people_headers.JOINT_TASKS, "联合检查任务", writers=writers
        )
        _write_teams(at, team, redraws, commit_dir, assign_dir, writers)
        copy_file(assign_dir / "unassigned.parquet", at("unassigned.parquet"))
        for name in ("unassigned.csv", "unassigned.xlsx"):
            copy_file(assign_dir / name, at(name))
        if ahead_notice is None:
            write_notice(commit_dir, draw_dir, joint_tasks, plan, at("notice.csv"), writers=writers)
        # per stratum: N, k and the cut-off score, so anyone can check one entity (核验)
        cutoffs = stratum_cutoffs(pl.read_parquet(draw_dir / "strata.parquet"), draws, score_keys(plan, "planned"))
        write_parquet(cutoffs, at("strata.parquet"))
        write_people_tables(cutoffs, at("strata.csv"), people_headers.STRATA, "核验表", writers=writers)
        summary = _json(fuse_dir / "summary.json")
        copy_file(fuse_dir / "summary.json", at("summary.json"))
        copy_file(commit_dir / "exclusions.parquet", at("exclusions.parquet"))
        copy_file(commit_dir / "plan.yaml", at("plan.yaml"))
        committed = _json(commit_dir / "commitment.json")
        seed = _json(draw_dir / "seed.json")
        # times go to the manifest's timeline
        write_json(_without_keys(committed, "committed_at"), at("commitment.json"))
        write_json(_without_keys(seed, "used_at"), at("seed.json"))
        write_prepublication(commit_dir, at(PRE), plan.plan_id)  # 事前公示: as it was published at commit
        shutil.copytree(validate_dir / "quarantine", at("quarantine"))
        for name in ("quarantine.csv", "quarantine.xlsx"):
            copy_file(validate_dir / name, at("quarantine") / name)
        shutil.copytree(validate_dir / "validation", at("validation"))
        shopping = seed_shopping(entries)
        write_json({"plan_id": plan.plan_id, "entries": entries}, at("attempts.json"))
        shopped = [e for es in shopping.values() for e in es]
        html = render_report(_report_data(run, plan, summary, seed, shopped, len(redraws)))
        at("report.html").write_text(html, encoding="utf-8")
    if directory_from is None and ahead_directory is not None:
        _take_ahead(ahead_directory, at("directory.parquet"), partial(write_public_directory, commit_dir))
    if ahead_draws is not None:
        _take_ahead(ahead_draws, at("draws.csv"), lambda path: write_people_tables(draws, path, *DRAWS_TABLE), ".xlsx")
    if ahead_notice is not None:
        written = partial(write_notice, commit_dir, draw_dir, joint_tasks, plan)
        _take_ahead(ahead_notice, at("notice.csv"), written, ".xlsx", ".html")
    ingest = run.stage_record("ingest")
    document = manifest(
        plan_id=plan.plan_id,
        run_id=run.run_id,
        timeline={
            "run_date": run.record.run_date,
            "committed_at": committed.get("committed_at"),
            **({"seed_announced_at": seed["sources_announced_at"]} if "sources_announced_at" in seed else {}),
            "seed_used_at": seed.get("used_at"),
            "published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
        seed={"value": seed["seed"], "origin": seed["origin"], "sources": seed.get("sources", [])},
        commitment=_without_keys(committed, "committed_at"),
        inputs=[{"department": f["department"], "kind": f["kind"], **f["source"]} for f in ingest.files],
        folder=bundle,
        accounting=stage_accounting({stage: run.stage_record(stage) for stage in STAGES[:-1]}),
        audit={
            "attempts": len(attempts(entries)),
            "seed_shopping": {c: [e["seq"] for e in es] for c, es in shopping.items()},
        },
    )
    write_json(document, at("manifest.json"))
    return document, directory_from


def seal_bundle(bundle: Path) -> str:
    """The seal (the final manifest's SHA-256), written into the pages that show it."""
    seal = seal_of(bundle_file(bundle, "manifest.json"))
    for page in SEAL_PAGES:
        fill_seal(bundle_file(bundle, page), seal)
    return seal


def keep_results(previous: Path, staging: Path) -> None:
    """The results published so far stay, in both parts (they answer to their own manifest)."""
    if (results_folder(previous, PUBLIC) / "manifest.json").is_file():
        for part in (PUBLIC, REGULATOR):
            if results_folder(previous, part).is_dir():
                shutil.copytree(results_folder(previous, part), results_folder(staging, part))
