"""The draw computed per district and merged equals the draw of one machine (issue 8)."""

import json

import polars as pl

from jointdraw.transforms.draw import score_keys, strata_table
from jointdraw.transforms.partition import merge_lowest_k, partition_lowest_k, stratum_counts
from jointdraw.transforms.plan import read_plan
from jointdraw.transforms.score import score
from jointdraw.transforms.storage.runfolder import directory_parts
from jointdraw.transforms.verify import eligible_pairs


def test_per_district_lowest_k_merged_is_the_published_draw(dirty_run):
    commit = dirty_run / "04_commit"
    plan = read_plan(commit / "plan.yaml")
    seed = json.loads((dirty_run / "05_draw" / "seed.json").read_text())["seed"]
    directory = pl.read_parquet(directory_parts(commit))
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


def test_floors_and_caps_give_the_same_k_per_partition_merged_in_verify_and_in_the_stage():
    """A literal plan with a floor and a cap: the draw stage's SQL, verify's recomputation and the per-district
    draw merged (issue 21) all take k from strata.stratum_k, so they draw the same rows."""
    from polars.testing import assert_frame_equal

    from jointdraw.transforms.commitment import EXCLUSIONS_SCHEMA
    from jointdraw.transforms.plan import Task
    from jointdraw.transforms.verify import expected_draws
    from tests.transforms.test_draw import HLT_COUNT, _directory, _draw, _plan

    directory = _directory(60)  # AMR lists all 58 active: A 10, B 30, C 10, D 8
    bounded = Task(
        task_id="AMR-B",
        department="AMR",
        items=["AMR-001"],
        ratio={
            "A": {"ratio": 0.01, "min_count": 3},  # ceil(0.1) = 1, floor 3 → 3
            "B": {"ratio": 0.5, "max_count": 4},  # ceil(15) = 15, cap 4 → 4
            "C": 0.2,  # 2, as always
            "D": {"ratio": 0, "min_count": 2, "max_count": 9},  # 0, floor 2 → 2
        },
    )
    plan = _plan([bounded, HLT_COUNT])
    stage, stage_strata = _draw(directory, plan, seed="s")
    amr = stage_strata.filter(pl.col("task_id") == "AMR-B")
    assert dict(zip(amr["credit_risk"], amr["k"], strict=True)) == {"A": 3, "B": 4, "C": 2, "D": 2}

    pairs = eligible_pairs(directory, pl.DataFrame(schema=EXCLUSIONS_SCHEMA), plan)
    keys = score_keys(plan, "planned")
    verified = expected_draws(pairs, plan, "s", keys)
    located = pairs.join(directory.select("uscc", "district_code"), on="uscc").with_columns(
        score=pl.struct("task_id", "uscc").map_elements(
            lambda r: score("s", keys[r["task_id"]], r["uscc"]), return_dtype=pl.UInt64
        )
    )
    parts = located.partition_by("district_code")
    n = pl.concat([stratum_counts(p) for p in parts]).group_by("task_id", "credit_risk").agg(pl.col("n").sum())
    k_table = strata_table(plan, n.sort("task_id", "credit_risk"))
    merged = merge_lowest_k([partition_lowest_k(p.drop("district_code"), k_table) for p in parts], k_table)

    columns = ["task_id", "credit_risk", "uscc", "score"]
    assert_frame_equal(merged.select(columns), stage.select(columns))
    assert_frame_equal(verified.sort("task_id", "credit_risk", "score", "uscc").select(columns), stage.select(columns))
    assert_frame_equal(k_table.drop("threshold_hex"), stage_strata.select(k_table.drop("threshold_hex").columns))
