"""The draw, partition by partition (issue 8): why the lowest-k selection runs unchanged on a
distributed engine, with each worker holding one part of the directory (a district, say).

    1. every partition counts its eligible pairs per stratum            -> N_p
    2. once: N = Σ N_p and k = stratum_k(task, N)                       (the k one machine computes)
    3. every partition keeps its own k lowest (score, uscc) per stratum  (partition_lowest_k)
    4. once: the k lowest of those, per stratum                          (merge_lowest_k)

A row among the k lowest of the whole stratum is among the k lowest of its own partition
(fewer rows compete there), so step 4 sees every winner and returns exactly the rows of the
single-machine draw. Only counts (step 1) and at most k rows per stratum and partition
(step 3) cross the network.
"""

from __future__ import annotations

import polars as pl

ORDER = ["task_id", "credit_risk", "score", "uscc"]


def stratum_counts(scored_part: pl.DataFrame) -> pl.DataFrame:
    """Step 1: (task_id, credit_risk, n) of one partition."""
    return scored_part.group_by("task_id", "credit_risk").agg(n=pl.len())


def lowest_k_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """The k lowest (score, uscc) per stratum of `rows`, each carrying its stratum's k, sorted by ORDER."""
    return rows.sort(ORDER).filter(pl.int_range(pl.len()).over("task_id", "credit_risk") < pl.col("k"))


def partition_lowest_k(scored_part: pl.DataFrame, k_table: pl.DataFrame) -> pl.DataFrame:
    """Step 3: the partition's k lowest (score, uscc) per stratum; `k_table` has the global k."""
    with_k = scored_part.join(k_table.select("task_id", "credit_risk", "k"), on=["task_id", "credit_risk"])
    return lowest_k_rows(with_k).drop("k")


def merge_lowest_k(partials: list[pl.DataFrame], k_table: pl.DataFrame) -> pl.DataFrame:
    """Step 4: the k lowest per stratum of the partitions' candidates — the draw."""
    return partition_lowest_k(pl.concat(partials), k_table).sort(ORDER)
