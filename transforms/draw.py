"""The joint draw in DuckDB (SPEC §4.4): eligible sets, strata, scores, lowest-k selection.

`draw_plan(con, plan, seed, keys)` expects the views `directory` (the committed object
directory) and `exclusions` on `con`, and returns one row per (task, drawn object). The
selection depends only on the seed and the eligible sets — not on row order, thread count
or machine: every step is a total order (score, then USCC) or exact integer arithmetic.

The directory comes in parts (the merge's key ranges), and the draw runs part by part as
transforms/partition.py tells why it may — on one machine one part after the other, on a Dask
cluster as tasks (flows/draw.py):
    1. each part keeps its eligible pairs and counts them per stratum    keep_eligible_pairs
    2. once: the counts summed, k and a score threshold per stratum       summed_sizes, strata_table
    3. each part: its k lowest per stratum under the whole stratum's k     part_candidates
    4. once: the k lowest of those (a stratum short of k: asked again)     lowest_k
Only counts and at most k rows per stratum and part leave a part. `draw_plan` is the same with
one part.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from jointdraw.transforms.merge import drawn_entities
from jointdraw.transforms.partition import ORDER, lowest_k_rows
from jointdraw.transforms.plan import Plan
from jointdraw.transforms.reference import industry_sections
from jointdraw.transforms.storage.packaged import sql_text
from jointdraw.transforms.storage.runfolder import ParquetFiles, parquet_paths
from jointdraw.transforms.strata import CLASSES, stratum_k

DRAWS_ORDER = ORDER  # transforms/partition.py: the lowest-k order
ABOVE_ALL = "g"  # sorts after every lower-case hex string: no threshold


def score_keys(plan: Plan, mode: str) -> dict[str, str]:
    """Task → the key its scores use. `planned`: the task's coordination group, else its id;
    `independent`: every task its own id; `coordinated`: the planned groups, or — when the plan
    has none — all tasks in one group (the most overlap chance allows)."""
    if mode == "independent":
        return {t.task_id: t.task_id for t in plan.tasks}
    if mode == "coordinated" and not any(t.group for t in plan.tasks):
        return {t.task_id: f"{plan.plan_id}-coordinated" for t in plan.tasks}
    return {t.task_id: t.group or t.task_id for t in plan.tasks}


def _disjoint_prefixes(prefixes: list[str]) -> list[str]:
    """The prefixes that no shorter prefix of the list already covers (H and H62 → H)."""
    kept: list[str] = []
    for p in sorted(set(prefixes), key=lambda p: (len(p), p)):
        if not any(p.startswith(k) for k in kept):
            kept.append(p)
    return sorted(kept)


def task_scopes(plan: Plan) -> pl.DataFrame:
    """One row per (task, industry prefix) in the task's scope — every section for a 不定向 task —
    with the task's other filters."""
    rows = []
    for t in plan.tasks:
        s = t.scope
        prefixes = _disjoint_prefixes(list(s.industries)) if s and s.industries else industry_sections()
        for prefix in prefixes:
            rows.append(
                {
                    "task_id": t.task_id,
                    "department": t.department,
                    "prefix": prefix,
                    "entity_types": list(s.entity_types) if s else [],
                    "districts": list(s.districts) if s else [],
                    "tags": list(s.tags) if s else [],
                    "registered_types": list(s.registered_types) if s else [],
                    "foreign_invested": s.foreign_invested if s else None,
                    "branch": s.branch if s else None,
                }
            )
    schema = {
        "task_id": pl.String,
        "department": pl.String,
        "prefix": pl.String,
        "entity_types": pl.List(pl.String),
        "districts": pl.List(pl.String),
        "tags": pl.List(pl.String),
        "registered_types": pl.List(pl.String),
        "foreign_invested": pl.Boolean,
        "branch": pl.Boolean,
    }
    return pl.DataFrame(rows, schema=schema)


def threshold_hex(k: int, n: int) -> str:
    """A score bound under which the k lowest of n uniform scores almost surely fall:
    (k + 4√k + 8)/n of the score range, as 16 hex digits (or no bound)."""
    share = (k + 4 * math.sqrt(k) + 8) / n if n else 1.0
    return ABOVE_ALL if share >= 1 else f"{int(share * 2**64):016x}"


def strata_table(plan: Plan, sizes: pl.DataFrame) -> pl.DataFrame:
    """(task_id, credit_risk, n, k, threshold_hex) for every stratum with objects."""
    by_task: dict[str, dict[str, int]] = {}
    for task_id, cls, n in sizes.iter_rows():
        by_task.setdefault(task_id, {})[cls] = n
    rows = []
    for t in plan.tasks:
        n = by_task.get(t.task_id, {})
        k = stratum_k(t, n)
        rows += [
            {"task_id": t.task_id, "credit_risk": c, "n": n[c], "k": k[c], "threshold_hex": threshold_hex(k[c], n[c])}
            for c in CLASSES
            if n.get(c)
        ]
    schema = {"task_id": pl.String, "credit_risk": pl.String, "n": pl.Int64, "k": pl.Int64, "threshold_hex": pl.String}
    return pl.DataFrame(rows, schema=schema)


def _in_scope_view(con: duckdb.DuckDBPyConnection, plan: Plan) -> None:
    """The view `in_scope` (task_id, uscc, credit_risk: sql/draw_in_scope.sql), and the temp table `covered` it
    reads (every (department, industry code) of the directory with the scopes that cover it)."""
    con.register("task_scopes", task_scopes(plan))
    con.execute(sql_text("draw_in_scope"))


def _stratum_sizes(con: duckdb.DuckDBPyConnection, pairs: str) -> pl.DataFrame:
    """(task_id, credit_risk, n) of every non-empty stratum of the eligible pairs in the relation `pairs`."""
    return con.sql(f"select task_id, credit_risk, count(*)::bigint as n from {pairs} group by all order by all").pl()


def summed_sizes(sizes: list[pl.DataFrame]) -> pl.DataFrame:
    """Step 2 of the draw in parts: the strata sizes of the whole directory from its parts'."""
    return pl.concat(sizes).group_by("task_id", "credit_risk").agg(pl.col("n").sum()).sort("task_id", "credit_risk")


def keep_eligible_pairs(
    con: duckdb.DuckDBPyConnection, plan: Plan, in_scope: Path | None = None, found: bool = False
) -> pl.DataFrame:
    """Step 1 of the draw in parts, on one part (the views `directory`, `exclusions`): its eligible pairs kept as
    the temp table `eligible_pairs` (task_id, uscc, credit_risk: found once for both modes); returns their strata
    sizes. They are its in-scope pairs minus the exclusions. With `in_scope` (a file), the in-scope pairs are read
    from it when `found` (an earlier run's of the same directory part and task scopes), else found and written
    there for a later run (a quarterly plan drawn from the annual plan's directory): they do not depend on the
    exclusions, which change from plan to plan."""
    if in_scope is not None and found:
        con.execute(
            "create or replace temp table in_scope_pairs as select task_id, uscc, credit_risk from read_parquet($path)",
            {"path": str(in_scope)},
        )
    else:
        _in_scope_view(con, plan)
        if in_scope is None:
            con.execute("create or replace temp view in_scope_pairs as select * from in_scope")
        else:
            con.execute("create or replace temp table in_scope_pairs as select * from in_scope")
            # sorted: the same pairs write the same bytes (a join's rows come in the threads' order)
            con.sql("select * from in_scope_pairs order by task_id, uscc").write_parquet(str(in_scope))
    con.execute(sql_text("draw_eligible"))
    return _stratum_sizes(con, "eligible_pairs")


def part_candidates(
    con: duckdb.DuckDBPyConnection, plan: Plan, seed: str, keys: dict[str, str], strata: pl.DataFrame
) -> pl.DataFrame:
    """Step 3, on one part (the temp table `eligible_pairs`): its k lowest per stratum of `strata` (the whole
    directory's k and threshold) under these keys: draws as `draw_plan` gives them, at most k per stratum."""
    schema = {"task_id": pl.String, "score_key": pl.String}
    con.register("task_keys", pl.DataFrame(list(keys.items()), schema=schema, orient="row"))
    con.execute(
        "create or replace temp view eligible as select p.task_id, k.score_key, p.uscc, p.credit_risk "
        "from eligible_pairs p join task_keys k using (task_id)"
    )
    con.register("strata", strata)
    return con.sql(sql_text("draw_select"), params={"seed": seed}).pl()


# every part's candidates under some score keys (`part_candidates`) for the strata asked
Candidates = Callable[[pl.DataFrame], list[pl.DataFrame]]


def lowest_k(strata: pl.DataFrame, first: list[pl.DataFrame], candidates: Candidates) -> pl.DataFrame:
    """Step 4: the k lowest per stratum of `strata` of every part's candidates (`first`: each part's k lowest
    under the strata's thresholds, as `candidates(strata)` gives them), sorted as drawn. A stratum that comes up
    short (rare: the threshold was too low) is asked again without a threshold (`candidates`): the same rows a
    full ranking gives."""
    draws = lowest_k_rows(pl.concat(first))
    drawn = draws.group_by("task_id", "credit_risk").len()
    short = strata.join(drawn, on=["task_id", "credit_risk"], how="left").filter(
        pl.col("len").fill_null(0) < pl.col("k")
    )
    if not short.is_empty():
        redo = lowest_k_rows(pl.concat(candidates(short.drop("len").with_columns(threshold_hex=pl.lit(ABOVE_ALL)))))
        draws = pl.concat(
            [draws.join(short.select("task_id", "credit_risk"), on=["task_id", "credit_risk"], how="anti"), redo]
        )
    return draws.sort(DRAWS_ORDER)


def draw_plan(
    con: duckdb.DuckDBPyConnection, plan: Plan, seed: str, keys: dict[str, str], sizes: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The draws (task_id, score_key, uscc, credit_risk, stratum_size, k, score) sorted by
    task, class, score, USCC; and the strata table they were drawn from: the directory of `con` as one part.
    `sizes` from `keep_eligible_pairs` on `con` (it keeps the pairs) saves finding them again when the plan is
    drawn again."""
    strata = strata_table(plan, keep_eligible_pairs(con, plan) if sizes is None else sizes)

    def candidates(asked: pl.DataFrame) -> list[pl.DataFrame]:
        return [part_candidates(con, plan, seed, keys, asked)]

    return lowest_k(strata, candidates(strata), candidates), strata


# the published draws (SPEC §6): one row per (task, entity drawn)
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


def draw_connection(
    directory: ParquetFiles, exclusions: Path, memory_limit: str, threads: int | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the committed `directory` (or a part of it) and `exclusions` as views: what
    `draw_plan` and `keep_eligible_pairs` read."""
    con = _connection(memory_limit, threads)
    con.read_parquet(parquet_paths(directory)).create_view("directory")
    con.read_parquet(str(exclusions)).create_view("exclusions")
    return con


def pairs_connection(pairs: Path, memory_limit: str, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a part's eligible pairs, as `keep_eligible_pairs` kept them and they were written
    to `pairs`, in the temp table `eligible_pairs`: what `part_candidates` reads."""
    con = _connection(memory_limit, threads)
    con.execute("create temp table eligible_pairs as select * from read_parquet($path)", {"path": str(pairs)})
    return con


def _connection(memory_limit: str, threads: int | None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"memory_limit": memory_limit, **({"threads": threads} if threads else {})})
    con.execute("set enable_progress_bar = false")
    return con


def published_draws(plan: Plan, draws: pl.DataFrame, directory: ParquetFiles) -> pl.DataFrame:
    """The draws as published: SPEC §6 columns (the entity's name and district from the directory),
    sorted by task, class, score, USCC."""
    tasks = pl.DataFrame(
        {
            "task_id": [t.task_id for t in plan.tasks],
            "department": [t.department for t in plan.tasks],
            "item_ids": [list(t.items) for t in plan.tasks],
        }
    )
    names = drawn_entities(directory, draws["uscc"], "name", "district_code")
    return (
        draws.join(tasks, on="task_id", how="left")
        .join(names, on="uscc", how="left")
        .with_columns(plan_id=pl.lit(plan.plan_id))
        .select(DRAW_COLUMNS)
        .sort(DRAWS_ORDER)
    )


@dataclass(frozen=True)
class PlanDraw:
    """A plan drawn: the published draws and every stratum (with or without draws: what "class ratios
    met" is checked against), the tasks nobody was eligible for, and the draw of the other fusion mode
    (its figures are reported beside the mode used)."""

    draws: pl.DataFrame
    strata: pl.DataFrame
    tasks_without_eligible: list[str]
    mode: str
    other_mode: str
    other_draws: pl.DataFrame


# every part's candidates for the strata asked, under each of several score keys: per keys, per part
CandidatesByKeys = Callable[[list[dict[str, str]], pl.DataFrame], list[list[pl.DataFrame]]]


def draw_both_modes(
    plan: Plan, strata: pl.DataFrame, candidates: CandidatesByKeys, directory: ParquetFiles
) -> PlanDraw:
    """The plan drawn in its own mode (coordinated when a task has a group) and in the other, from its `strata`
    (`strata_table`): `candidates(keys, asked)` gives every part's candidates (`part_candidates`) under each of
    `keys` at once (a part's pairs are loaded once for both modes), and `lowest_k` draws each mode from them."""
    mode = "coordinated" if any(t.group for t in plan.tasks) else "independent"
    other_mode = "independent" if mode == "coordinated" else "coordinated"
    keys = [score_keys(plan, "planned"), score_keys(plan, other_mode)]
    first = candidates(keys, strata)
    draws, other = (
        lowest_k(strata, found, lambda asked, k=k: candidates([k], asked)[0])
        for k, found in zip(keys, first, strict=True)
    )
    return PlanDraw(
        draws=published_draws(plan, draws, directory),
        strata=strata.select("task_id", "credit_risk", "n", "k").sort("task_id", "credit_risk"),
        tasks_without_eligible=[t.task_id for t in plan.tasks if t.task_id not in set(strata["task_id"])],
        mode=mode,
        other_mode=other_mode,
        other_draws=other,
    )
