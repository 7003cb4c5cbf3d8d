"""Stages `commit` and `draw` (SPEC §4.4, §5).

    04_commit/directory-NNN.parquet, exclusions.parquet, plan.yaml   what fixes the eligible sets (the merge's
                                                                  directory, linked)
    04_commit/inspections.parquet                                 the inspections the visit caps counted (if any)
    04_commit/commitment.json                                     SHA-256 over them (transforms/commitment.py)
    05_draw/draws.parquet                                         one row per (task, object) drawn
    05_draw/strata.parquet                                        every (task, class) stratum: eligible n and k
    05_draw/in-scope-NNN.parquet                                  each part's in-scope pairs (before exclusions),
                                                                  for a later plan of the same directory and scopes
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
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from prefect import get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from jointdraw.flows.errors import StageFailed
from jointdraw.flows.fanout import map_tasks, on_cluster
from jointdraw.transforms import settings
from jointdraw.transforms.audit import draw_digest, entry_event, operator, seed_shopping
from jointdraw.transforms.commitment import VERSION, commitment
from jointdraw.transforms.documents.prepublication import write_prepublication_tables
from jointdraw.transforms.draw import (
    PlanDraw,
    draw_both_modes,
    draw_connection,
    keep_eligible_pairs,
    pairs_connection,
    part_candidates,
    strata_table,
    summed_sizes,
    task_scopes,
)
from jointdraw.transforms.exclusions import exclusions_from_history, with_visit_caps
from jointdraw.transforms.fusion_figures import fusion_figures
from jointdraw.transforms.merge import DRAWN_ID
from jointdraw.transforms.plan import Plan, plan_item_problems
from jointdraw.transforms.seed import Seed, SeedError, public_seed_problems, resolve_seed
from jointdraw.transforms.stage_records import CommitRecord, DrawRecord, ReuseKey
from jointdraw.transforms.storage.bundle import publish_prepublication
from jointdraw.transforms.storage.layout import RunFolder, read_run_record, write_run_record
from jointdraw.transforms.storage.reuse import (
    EarlierResults,
    Taken,
    directory_digest_key,
    earlier_directory_digest,
    in_scope_key,
)
from jointdraw.transforms.storage.runfolder import (
    DIRECTORY_PARTS,
    accepted_registry,
    copy_file,
    directory_parts,
    file_record,
    inputs_from,
    link_file,
    parquet_paths,
    write_json,
    write_parquet,
)
from jointdraw.transforms.storage.warehouse import append_attempt, audit_entries, read_history, read_warehouse_table
from jointdraw.transforms.visit_caps import visit_cap_exclusions

PARTS = ".parts"  # in the draw's folder while it runs: each part's eligible pairs (step 1, read by step 3)
IN_SCOPE = "in-scope"  # in the draw's folder: each part's in-scope pairs (`in-scope-NNN.parquet`), for later runs


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def run_commit(run: RunFolder, plan_file: Path, plan: Plan, reuse: bool = False) -> CommitRecord:
    """Freezes what fixes the eligible sets — the directory, the exclusions (from the warehouse's
    history of other plans' runs, and from the departments' inspections when the plan sets visit
    caps), the plan — and writes the commitment to them. With `reuse`, the directory's digest is taken
    from an earlier run's commit of the same directory files."""
    out = run.stage("commit")
    # frozen: hard links (every writer replaces files, none writes in place; the commitment hashes them)
    for old in directory_parts(out):  # a rerun's: the merge's ranges may have been more
        old.unlink()
    directory = [link_file(part, out / part.name) for part in directory_parts(run.stage("merge"))]
    # the item list and the inspectors are frozen with the directory: assign reads these copies
    registries = {
        kind: write_parquet(accepted_registry(run.path, kind), out / f"{kind}.parquet")
        for kind in ("items", "inspectors")
    }
    # the inspections the visit caps count are frozen too (when any were submitted): changed later, the
    # draw refuses (transforms/rerun.py checks every file a stage wrote)
    inspections = accepted_registry(run.path, "inspections")
    if not inspections.is_empty():
        registries["inspections"] = write_parquet(inspections, out / "inspections.parquet")
    items = pl.read_parquet(registries["items"])
    if problems := plan_item_problems(plan, items):
        raise StageFailed(
            f"commit: plan {plan.plan_id} cannot be drawn: {'; '.join(problems)} — correct the plan's `items` or "
            "submit the missing items"
        )
    out_root = run.root.path
    history = read_history(out_root)
    classes = pl.read_parquet(parquet_paths(directory), columns=["entity_key", "credit_risk"]).select(
        DRAWN_ID, "credit_risk"
    )
    excluded = exclusions_from_history(history, classes, plan, read_warehouse_table(out_root, "results"))
    if plan.visit_caps is not None:
        if inspections.is_empty():
            get_run_logger().warning(
                "commit: the plan sets visit_caps but no department submitted an inspections.* file: "
                "no entity is excluded for its visits"
            )
        excluded = with_visit_caps(excluded, visit_cap_exclusions(inspections, classes, plan))
    exclusions = write_parquet(excluded, out / "exclusions.parquet")
    plan_copy = copy_file(plan_file, out / "plan.yaml")
    pre = write_prepublication_tables(plan, items, out / "pre")
    # the directory's digest (its canonical serialisation: 2.4 s at 8M), taken from an earlier run's commit of
    # the same directory files (a quarterly plan drawn from the annual plan's directory: the merge reused)
    parts_sha256 = [f["sha256"] for f in inputs_from(run.path, "merge", DIRECTORY_PARTS)]
    digest_key = directory_digest_key(parts_sha256, VERSION)
    earlier = earlier_directory_digest(run, digest_key) if reuse else None
    commit = commitment(
        directory, exclusions, plan_copy, pre=out / "pre", directory_digest=earlier[1] if earlier else None
    )
    write_json({**commit, "committed_at": _now()}, out / "commitment.json")
    published_pre = publish_prepublication(out_root, plan.plan_id, out)
    return CommitRecord(
        inputs=inputs_from(run.path, "merge", DIRECTORY_PARTS) + inputs_from(run.path, "validate"),
        **commit,
        history_rows=history.height,
        exclusions_by_reason=dict(sorted(excluded.group_by("reason").len().iter_rows())),
        outputs=[file_record(p, None, out) for p in (*directory, exclusions, plan_copy, *registries.values(), *pre)],
        prepublished=str(published_pre),
        reuse=ReuseKey(key=digest_key),
        directory_sha256_from=earlier[0] if earlier else None,
    )


# on the flow's threads (this process), a part's eligible pairs stay in its DuckDB connection from step 1 to step 3,
# by their file's path, instead of being written and read back (0.3 s a part at 8M); on Dask the file crosses
# machines
_KEPT: dict[Path, duckdb.DuckDBPyConnection] = {}


@task(name="draw-part-pairs", task_run_name="draw: eligible pairs of {part.name}", cache_policy=NO_CACHE)
def draw_part_pairs(
    part: Path,
    exclusions: Path,
    plan: Plan,
    pairs: Path,
    threads: int | None,
    in_scope: Path,
    found: bool = False,
    keep: bool = False,
) -> pl.DataFrame:
    """Step 1 on one part of the directory: its eligible pairs, written to `pairs` (with `keep`, kept in this
    process instead: `_KEPT`); returns their strata sizes. Its in-scope pairs are read from `in_scope` when
    `found` (taken from an earlier run), else found and written there."""
    con = draw_connection(part, exclusions, settings.DRAW_MEMORY_LIMIT, threads)
    sizes = keep_eligible_pairs(con, plan, in_scope, found)
    if keep:
        _KEPT[pairs] = con
    else:
        con.sql("select * from eligible_pairs").write_parquet(str(pairs))
        con.close()
    return sizes


@task(name="draw-part-lowest", task_run_name="draw: lowest k of {pairs.name}", cache_policy=NO_CACHE)
def draw_part_lowest(
    pairs: Path, plan: Plan, seed: str, keys: list[dict[str, str]], strata: pl.DataFrame, threads: int | None
) -> list[pl.DataFrame]:
    """Step 3 on one part: its k lowest per stratum of `strata` under each of `keys` (at most k rows per stratum
    each; the part's pairs loaded once for all, or kept since step 1)."""
    kept = _KEPT.get(pairs)
    con = kept or pairs_connection(pairs, settings.DRAW_MEMORY_LIMIT, threads)
    candidates = [part_candidates(con, plan, seed, k, strata) for k in keys]
    if kept is None:
        con.close()
    return candidates


def _drawn_part_by_part(
    parts: list[Path],
    exclusions: Path,
    plan: Plan,
    seed: str,
    work: Path,
    threads: int | None,
    in_scope: list[Path],
    found: list[bool],
) -> PlanDraw:
    """The plan drawn in both modes from the directory's parts (transforms/draw.py, steps 1–4): each step a task
    per part, on the flow's threads one at a time (each uses every core; a part's pairs kept in this process
    between the steps), on a Dask cluster on the workers. `in_scope`: each part's in-scope pairs, taken from an
    earlier run (where `found`) or to be written."""
    work.mkdir(parents=True, exist_ok=True)
    pairs = [work / f"eligible-{n:03d}.parquet" for n in range(len(parts))]
    static = {"plan": unmapped(plan), "threads": unmapped(threads)}
    try:
        sizes = [
            f.result()
            for f in map_tasks(
                draw_part_pairs,
                at_once=1,
                part=parts,
                pairs=pairs,
                in_scope=in_scope,
                found=found,
                exclusions=unmapped(exclusions),
                keep=unmapped(not on_cluster()),
                **static,
            )
        ]
        strata = strata_table(plan, summed_sizes(sizes))

        def candidates(keys: list[dict[str, str]], asked: pl.DataFrame) -> list[list[pl.DataFrame]]:
            by_part = [
                f.result()
                for f in map_tasks(
                    draw_part_lowest,
                    at_once=1,
                    pairs=pairs,
                    seed=unmapped(seed),
                    keys=unmapped(keys),
                    strata=unmapped(asked),
                    **static,
                )
            ]
            return [[part[i] for part in by_part] for i in range(len(keys))]

        return draw_both_modes(plan, strata, candidates, parts)
    finally:
        for path in pairs:
            if (con := _KEPT.pop(path, None)) is not None:
                con.close()


def _run_seed(run: RunFolder, chosen: Seed) -> Seed:
    """A generated seed belongs to its run: the first one drawn is kept in run.json and reused when the
    run's draw is redone (a retry, a resume, `--start-at draw` without a seed), so redoing a stage is
    never a new attempt with another seed. A given seed or public numbers are used as they are."""
    if chosen.origin != "generated":
        return chosen
    record = read_run_record(run.path)  # read again: the seed may have been kept by this very attempt's first try
    if record.generated_seed:
        return Seed(record.generated_seed, "generated")
    write_run_record(run.path, record.model_copy(update={"generated_seed": chosen.value}))
    return chosen


@dataclass(frozen=True)
class InScopePairs:
    """Each part's in-scope pairs in the draw's folder (`in-scope-NNN.parquet`), their keys (`in_scope_key`), and
    for each the earlier run's result it was taken from (None: found in this run)."""

    paths: list[Path]
    keys: list[str]
    taken: list[Taken | None]

    def record(self) -> dict[str, Any]:
        """`in_scope_pairs` in the stage's record: each part's key and file, or the earlier record it was taken
        from (with `reused_from`), and the time the taking took."""
        parts = [
            taken.record_here()
            if taken
            else {"reuse": ReuseKey(key=key).model_dump(), "outputs": [file_record(path, None, path.parent)]}
            for path, key, taken in zip(self.paths, self.keys, self.taken, strict=True)
        ]
        return {"seconds": round(sum(t.seconds for t in self.taken if t), 3), "parts": parts}


def _in_scope_pairs(run: RunFolder, plan: Plan, reuse: bool) -> InScopePairs:
    """Where each part's in-scope pairs go in the draw's folder (`in-scope-NNN.parquet`); with `reuse`, a part's
    are those of an earlier run for the same part (number and SHA-256) and task scopes, linked there when found."""
    out = run.stage("draw")
    for stale in out.glob(f"{IN_SCOPE}-*.parquet"):  # an earlier attempt's, perhaps of other parts or scopes
        stale.unlink()
    parts_sha256 = [f["sha256"] for f in inputs_from(run.path, "commit", DIRECTORY_PARTS)]
    scopes = task_scopes(plan).to_dicts()
    keys = [in_scope_key(n, sha256, scopes) for n, sha256 in enumerate(parts_sha256)]
    earlier = EarlierResults.of(run, "draw") if reuse else EarlierResults()
    return InScopePairs(
        paths=[out / f"{IN_SCOPE}-{n:03d}.parquet" for n in range(len(keys))],
        keys=keys,
        taken=[earlier.take(key, out) for key in keys],
    )


def run_draw(
    run: RunFolder,
    plan: Plan,
    seed: str | None,
    seed_sources: list[str] | None,
    threads: int | None = None,
    reuse: bool = False,
) -> DrawRecord:
    """Draws every task of the plan from the committed eligible sets. With `reuse`, the in-scope pairs (the
    eligible pairs before the exclusions) are taken from an earlier run that drew from the same directory under
    the same task scopes."""
    commit_dir, out = run.stage("commit"), run.stage("draw")
    committed = json.loads((commit_dir / "commitment.json").read_text(encoding="utf-8"))
    # the run's own seed or public numbers win over the plan's
    given = (seed, seed_sources) if (seed or seed_sources) else (plan.seed, list(plan.seed_sources))
    if plan.seed_policy == "public":
        committed_at = dt.datetime.fromisoformat(committed["committed_at"])
        if problems := public_seed_problems(*given, plan.seed_announced_at, committed_at):
            raise SeedError("draw refused: " + "; ".join(problems))
    chosen = _run_seed(run, resolve_seed(*given))
    parts = directory_parts(commit_dir)
    in_scope = _in_scope_pairs(run, plan, reuse)
    found = [t is not None for t in in_scope.taken]
    drawn = _drawn_part_by_part(
        parts, commit_dir / "exclusions.parquet", plan, chosen.value, out / PARTS, threads, in_scope.paths, found
    )
    shutil.rmtree(out / PARTS, ignore_errors=True)
    path = write_parquet(drawn.draws, out / "draws.parquet")
    strata_path = write_parquet(drawn.strata, out / "strata.parquet")
    announced = {"sources_announced_at": plan.seed_announced_at.isoformat()} if plan.seed_policy == "public" else {}
    used = {"seed": chosen.value, "origin": chosen.origin, "sources": list(chosen.sources), **announced}
    write_json({**used, "used_at": _now(), "commitment": committed["commitment"]}, out / "seed.json")
    # every attempt that reaches the draw is logged, chained per plan (transforms/audit.py); the same draw again is
    # not new
    out_root = run.root.path
    attempt = append_attempt(
        out_root,
        plan_id=plan.plan_id,
        time=_now(),
        run_id=run.run_id,
        commitment=committed["commitment"],
        seed=chosen.value,
        seed_sources=json.dumps(list(chosen.sources), ensure_ascii=False),
        draw_digest=draw_digest(drawn.draws),
        operator=operator(),
    )
    if attempt:  # the chain's head leaves the building: a Prefect event an automation can react to (seed shopping)
        shopped = committed["commitment"] in seed_shopping(audit_entries(out_root, plan.plan_id))
        emit_event(**entry_event(attempt, shopped=shopped))
    if empty := drawn.tasks_without_eligible:  # never silent: said in the log, the run summary and the report
        get_run_logger().warning(
            "draw: %d task(s) have no eligible object and draw nothing: %s (scope too narrow, everything excluded, "
            "or the department lists nothing active in it)",
            len(empty),
            ", ".join(empty),
        )
    return DrawRecord(
        inputs=inputs_from(run.path, "commit", DIRECTORY_PARTS, "exclusions.parquet", "plan.yaml"),
        seed_origin=chosen.origin,
        commitment=committed["commitment"],
        eligible_pairs=int(drawn.strata["n"].sum()),
        strata=drawn.strata.height,
        drawn=drawn.draws.height,
        tasks_without_eligible=drawn.tasks_without_eligible,
        mode=drawn.mode,
        fusion={drawn.mode: fusion_figures(drawn.draws), drawn.other_mode: fusion_figures(drawn.other_draws)},
        audit={"logged_as": attempt["seq"], "entry_hash": attempt["entry_hash"]}
        if attempt
        else {"logged_as": "an earlier identical attempt"},
        outputs=[file_record(path, drawn.draws.height, out), file_record(strata_path, drawn.strata.height, out)],
        in_scope_pairs=in_scope.record(),
    )
