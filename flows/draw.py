"""Stages `commit` and `draw` (SPEC §4.4, §5).

    04_commit/directory.parquet, exclusions.parquet, plan.yaml   what fixes the eligible sets
    04_commit/commitment.json                                     SHA-256 over them (transforms/commitment.py)
    05_draw/draws.parquet                                         one row per (task, object) drawn
    05_draw/strata.parquet                                        every (task, class) stratum: eligible n and k
    05_draw/seed.json                                             the seed, where it came from, when it was used
    05_draw/stage.json                                            eligible pairs, strata, draws, fusion figures in
                                                                  both modes

A plan can stop after `commit`, publish the commitment, and draw later with public numbers
(`--start-at draw --seed-source ...`): the run refuses to go on if a committed file changed
(transforms/rerun.py checks every earlier stage's recorded hashes before a later stage starts).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from prefect import get_run_logger
from prefect.events import emit_event

from jointdraw.flows.errors import StageFailed
from jointdraw.transforms import settings
from jointdraw.transforms.audit import draw_digest, entry_event, operator, seed_shopping
from jointdraw.transforms.commitment import commitment
from jointdraw.transforms.documents import people_headers
from jointdraw.transforms.documents.prepublication import plan_items, plan_notice
from jointdraw.transforms.draw import DRAWS_ORDER, draw_plan, eligible_sizes, score_keys
from jointdraw.transforms.exclusions import exclusions_from_history
from jointdraw.transforms.fusion_figures import figure_text, fusion_figures
from jointdraw.transforms.merge import DRAWN_ID
from jointdraw.transforms.plan import Plan, plan_item_problems
from jointdraw.transforms.seed import Seed, SeedError, public_seed_problems, resolve_seed
from jointdraw.transforms.storage.bundle import publish_prepublication
from jointdraw.transforms.storage.layout import OutputRoot, read_run_record, write_run_record
from jointdraw.transforms.storage.runfolder import (
    accepted_registry,
    copy_file,
    file_record,
    inputs_from,
    stage_dir,
    write_json,
    write_parquet,
)
from jointdraw.transforms.storage.warehouse import append_attempt, audit_entries, read_history, read_warehouse_table
from jointdraw.transforms.storage.xlsxout import write_people_tables

DRAW_COLUMNS = [
    "plan_id",
    "task_id",
    "department",
    "item_ids",
    "uscc",
    "name",
    "district_code",
    "credit_risk",
    "stratum_size",
    "k",
    "score_key",
    "score",
]


def _prepublication(plan: Plan, items: pl.DataFrame, folder: Path) -> list[Path]:
    """`04_commit/pre/`: the plan's item list and the plan notice, CSV and XLSX with Chinese headers."""
    return [
        *write_people_tables(plan_items(plan, items), folder / "items.csv", people_headers.PRE_ITEMS, "抽查事项清单"),
        *write_people_tables(plan_notice(plan), folder / "plan_notice.csv", people_headers.PRE_PLAN, "抽查计划"),
    ]


def run_commit(run_dir: Path, plan_file: Path, plan: Plan) -> dict[str, Any]:
    """Freezes what fixes the eligible sets — the directory, the exclusions from the warehouse's
    history of other plans' runs, the plan — and writes the commitment to them."""
    started = time.perf_counter()
    out = stage_dir(run_dir, "commit")
    directory = copy_file(stage_dir(run_dir, "merge") / "directory.parquet", out / "directory.parquet")
    # the item list and the inspectors are frozen with the directory: assign reads these copies
    registries = {
        kind: write_parquet(accepted_registry(run_dir, kind), out / f"{kind}.parquet")
        for kind in ("items", "inspectors")
    }
    problems = plan_item_problems(plan, pl.read_parquet(registries["items"]))
    if problems:
        raise StageFailed(
            f"commit: plan {plan.plan_id} cannot be drawn: "
            + "; ".join(problems)
            + " — correct the plan's `items` or submit the missing items"
        )
    out_root = OutputRoot.of_run(run_dir).path
    history = read_history(out_root)
    results = read_warehouse_table(out_root, "results")
    excluded = exclusions_from_history(
        history,
        pl.read_parquet(directory, columns=["entity_key", "credit_risk"]).select(DRAWN_ID, "credit_risk"),
        plan,
        results,
    )
    exclusions = write_parquet(excluded, out / "exclusions.parquet")
    by_reason = dict(sorted(excluded.group_by("reason").len().iter_rows()))
    plan_copy = copy_file(plan_file, out / "plan.yaml")
    pre = _prepublication(plan, pl.read_parquet(registries["items"]), out / "pre")
    commit = commitment(directory, exclusions, plan_copy, pre=out / "pre")
    write_json(
        {**commit, "committed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}, out / "commitment.json"
    )
    published_pre = publish_prepublication(out_root, plan.plan_id, out)
    record = {
        "stage": "commit",
        "inputs": inputs_from(run_dir, "merge", "directory.parquet") + inputs_from(run_dir, "validate"),
        **commit,
        "history_rows": history.height,
        "exclusions_by_reason": by_reason,
        "outputs": [file_record(p, None, out) for p in (directory, exclusions, plan_copy, *registries.values(), *pre)],
        "prepublished": str(published_pre),
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_json(record, out / "stage.json")
    get_run_logger().info(
        "commit: commitment %s (directory %s…, exclusions %s…, plan %s…, pre %s…); excluded %s; "
        "the item list and the plan notice are public before the draw in %s (事前公示)",
        commit["commitment"],
        commit["directory_sha256"][:12],
        commit["exclusions_sha256"][:12],
        commit["plan_sha256"][:12],
        commit["pre_sha256"][:12],
        by_reason or "none",
        published_pre,
    )
    return record


def _connection(commit_dir: Path, threads: int | None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(
        config={"memory_limit": settings.DRAW_MEMORY_LIMIT, **({"threads": threads} if threads else {})}
    )
    con.execute("set enable_progress_bar = false")
    con.read_parquet(str(commit_dir / "directory.parquet")).create_view("directory")
    con.read_parquet(str(commit_dir / "exclusions.parquet")).create_view("exclusions")
    return con


def draws_table(plan: Plan, draws: pl.DataFrame, directory: Path) -> pl.DataFrame:
    """The published draws: SPEC §6 columns, sorted by task, class, score, USCC."""
    tasks = pl.DataFrame(
        {
            "task_id": [t.task_id for t in plan.tasks],
            "department": [t.department for t in plan.tasks],
            "item_ids": [list(t.items) for t in plan.tasks],
        }
    )
    names = (
        pl.scan_parquet(directory)
        .select(DRAWN_ID, "name", "district_code")
        .join(draws.select("uscc").unique().lazy(), on="uscc", how="semi")
        .collect(engine="streaming")
    )
    return (
        draws.join(tasks, on="task_id", how="left")
        .join(names, on="uscc", how="left")
        .with_columns(plan_id=pl.lit(plan.plan_id))
        .select(DRAW_COLUMNS)
        .sort(DRAWS_ORDER)
    )


def _run_seed(run_dir: Path, chosen: Seed) -> Seed:
    """A generated seed belongs to its run: the first one drawn is kept in run.json and reused when the
    run's draw is redone (a retry, a resume, `--start-at draw` without a seed), so redoing a stage is
    never a new attempt with another seed. A given seed or public numbers are used as they are."""
    if chosen.origin != "generated":
        return chosen
    run = read_run_record(run_dir)
    if run.generated_seed:
        return Seed(run.generated_seed, "generated")
    write_run_record(run_dir, run.model_copy(update={"generated_seed": chosen.value}))
    return chosen


def run_draw(
    run_dir: Path, plan: Plan, seed: str | None, seed_sources: list[str] | None, threads: int | None = None
) -> dict[str, Any]:
    """Draws every task of the plan from the committed eligible sets."""
    logger = get_run_logger()
    started = time.perf_counter()
    commit_dir, out = stage_dir(run_dir, "commit"), stage_dir(run_dir, "draw")
    committed = json.loads((commit_dir / "commitment.json").read_text(encoding="utf-8"))
    # the run's own seed or public numbers win over the plan's
    given = (seed, seed_sources) if (seed or seed_sources) else (plan.seed, list(plan.seed_sources))
    if plan.seed_policy == "public":
        problems = public_seed_problems(
            *given, plan.seed_announced_at, dt.datetime.fromisoformat(committed["committed_at"])
        )
        if problems:
            raise SeedError("draw refused: " + "; ".join(problems))
    chosen = _run_seed(run_dir, resolve_seed(*given))
    con = _connection(commit_dir, threads)
    sizes = eligible_sizes(con, plan)
    draws, strata = draw_plan(con, plan, chosen.value, score_keys(plan, "planned"), sizes)
    eligible_pairs = int(strata["n"].sum())
    # a task nobody is eligible for draws nothing: said in the log, the run summary and the report, never silent
    empty = [t.task_id for t in plan.tasks if t.task_id not in set(strata["task_id"])]
    table = draws_table(plan, draws, commit_dir / "directory.parquet")
    path = write_parquet(table, out / "draws.parquet")
    # every stratum, with or without draws: what "class ratios met" is checked against
    strata_path = write_parquet(
        strata.select("task_id", "credit_risk", "n", "k").sort("task_id", "credit_risk"), out / "strata.parquet"
    )
    grouped = any(t.group for t in plan.tasks)
    other_mode = "independent" if grouped else "coordinated"
    other, _ = draw_plan(con, plan, chosen.value, score_keys(plan, other_mode), sizes)
    announced = {"sources_announced_at": plan.seed_announced_at.isoformat()} if plan.seed_policy == "public" else {}
    write_json(
        {
            "seed": chosen.value,
            "origin": chosen.origin,
            "sources": list(chosen.sources),
            **announced,
            "used_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "commitment": committed["commitment"],
        },
        out / "seed.json",
    )
    # every attempt that reaches the draw is logged, chained per plan (transforms/audit.py); the same draw again is
    # not new
    out_root = OutputRoot.of_run(run_dir).path
    attempt = append_attempt(
        out_root,
        plan_id=plan.plan_id,
        time=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        run_id=read_run_record(run_dir).run_id,
        commitment=committed["commitment"],
        seed=chosen.value,
        seed_sources=json.dumps(list(chosen.sources), ensure_ascii=False),
        draw_digest=draw_digest(table),
        operator=operator(),
    )
    if attempt:  # the chain's head leaves the building: a Prefect event an automation can react to (seed shopping)
        emit_event(
            **entry_event(
                attempt,
                shopped=committed["commitment"] in seed_shopping(audit_entries(out_root, plan.plan_id)),
            )
        )
    figures = {"coordinated" if grouped else "independent": fusion_figures(table), other_mode: fusion_figures(other)}
    record = {
        "stage": "draw",
        "inputs": inputs_from(run_dir, "commit", "directory.parquet", "exclusions.parquet", "plan.yaml"),
        "seed_origin": chosen.origin,
        "commitment": committed["commitment"],
        "eligible_pairs": eligible_pairs,
        "strata": strata.height,
        "drawn": table.height,
        "tasks_without_eligible": empty,
        "mode": "coordinated" if grouped else "independent",
        "fusion": figures,
        "audit": {"logged_as": attempt["seq"], "entry_hash": attempt["entry_hash"]}
        if attempt
        else {"logged_as": "an earlier identical attempt"},
        "outputs": [file_record(path, table.height, out), file_record(strata_path, strata.height, out)],
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_json(record, out / "stage.json")
    logger.info(
        "draw: %s eligible pairs in %s strata → %s draws (seed %s); reduction %s, %s if %s",
        f"{eligible_pairs:,}",
        strata.height,
        f"{table.height:,}",
        chosen.origin,
        f"{figure_text('reduction_rate', figures[record['mode']]['reduction_rate'])}",
        f"{figure_text('reduction_rate', figures[other_mode]['reduction_rate'])}",
        other_mode,
    )
    if empty:
        logger.warning(
            "draw: %d task(s) have no eligible object and draw nothing: %s (scope too narrow, everything excluded, "
            "or the department lists nothing active in it)",
            len(empty),
            ", ".join(empty),
        )
    return record
