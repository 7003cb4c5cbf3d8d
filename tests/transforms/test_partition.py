"""The draw computed per district and merged equals the draw of one machine (issue 8)."""

import json

import polars as pl

from jointdraw.transforms.draw import score_keys, strata_table
from jointdraw.transforms.partition import merge_lowest_k, partition_lowest_k, stratum_counts
from jointdraw.transforms.plan import read_plan
from jointdraw.transforms.score import score
from jointdraw.transforms.verify import eligible_pairs


def test_per_district_lowest_k_merged_is_the_published_draw(dirty_run):
    commit = dirty_run / "04_commit"
    plan = read_plan(commit / "plan.yaml")
    seed = json.loads((dirty_run / "05_draw" / "seed.json").read_text())["seed"]
    directory = pl.read_parquet(commit / "directory.parquet")
    pairs = eligible_pairs(directory, pl.read_parquet(commit / "exclusions.parquet"), plan)
    keys = score_keys(plan, "planned")
    located = pairs.join(directory.select("uscc", "district_code"), on="uscc")
    scored = located.with_columns(
        score=pl.Series(
            [score(seed, keys[t], u) for t, u in zip(located["task_id"], located["uscc"], strict=True)], dtype=pl.UInt64
        )
    )
    parts = scored.partition_by("district_code")
    assert len(parts) >= 9
    # steps 1–2: counts per partition, summed
    n = pl.concat([stratum_counts(p) for p in parts]).group_by("task_id", "credit_risk").agg(pl.col("n").sum())
    k_table = strata_table(plan, n.sort("task_id", "credit_risk"))  # k from the whole stratum
    # steps 3–4: each district's k lowest, then the k lowest of those
    partials = [partition_lowest_k(p.drop("district_code"), k_table) for p in parts]
    merged = merge_lowest_k(partials, k_table)
    published = pl.read_parquet(dirty_run / "05_draw" / "draws.parquet")
    assert merged.select("task_id", "uscc", "score").equals(published.select("task_id", "uscc", "score"))
    # and no partition shipped more than k rows of a stratum
    shipped = pl.concat([p.group_by("task_id", "credit_risk").len() for p in partials]).join(
        k_table, on=["task_id", "credit_risk"]
    )
    assert (shipped["len"] <= shipped["k"]).all() and shipped["len"].sum() < scored.height / 5
