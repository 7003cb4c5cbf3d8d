"""Stage `fuse` (查重、融合, SPEC §4.5): the draws → one joint task per entity.

06_fuse/joint_tasks.parquet       one row per entity drawn (transforms/joint_tasks.py)
06_fuse/task_departments.parquet  one row per (joint task, department): what assign staffs
06_fuse/summary.json              the five figures of SPEC §4.5, counts by department,
                                  district and class, the department-overlap matrix
06_fuse/stage.json                inputs, outputs, figures, seconds
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import polars as pl
from prefect import get_run_logger

from jointdraw.flows.errors import StageFailed
from jointdraw.transforms.fusion_figures import FIGURE_LABELS, fusion_summary
from jointdraw.transforms.joint_tasks import fuse_draws
from jointdraw.transforms.merge import DRAWN_ID
from jointdraw.transforms.plan import Plan
from jointdraw.transforms.storage.runfolder import (
    file_record,
    inputs_from,
    stage_dir,
    write_json,
    write_parquet,
)


def run_fuse(run_dir: Path, plan: Plan) -> dict[str, Any]:
    logger = get_run_logger()
    started = time.perf_counter()
    commit_dir, draw_dir, out = stage_dir(run_dir, "commit"), stage_dir(run_dir, "draw"), stage_dir(run_dir, "fuse")
    draws = pl.read_parquet(draw_dir / "draws.parquet")
    items = pl.read_parquet(commit_dir / "items.parquet", columns=["item_id", "department", "category"])
    directory = (
        pl.scan_parquet(commit_dir / "directory.parquet")
        .with_columns(DRAWN_ID)
        .join(draws.select("uscc").unique().lazy(), on="uscc", how="semi")
        .collect(engine="streaming")
    )
    missing = draws.join(directory, on="uscc", how="anti")["uscc"].unique().sort()
    if missing.len():
        raise StageFailed(
            f"fuse: {missing.len()} drawn USCCs are not in {commit_dir / 'directory.parquet'} "
            f"(first: {', '.join(missing.head(3))}); the draw and the commit do not belong together — rerun from commit"
        )
    fused = fuse_draws(draws, items, directory, plan.plan_id)
    summary = fusion_summary(draws, fused.joint_tasks)
    outputs = [
        file_record(write_parquet(fused.joint_tasks, out / "joint_tasks.parquet"), fused.joint_tasks.height, out),
        file_record(
            write_parquet(fused.task_departments, out / "task_departments.parquet"), fused.task_departments.height, out
        ),
        file_record(write_json({"plan_id": plan.plan_id, **summary}, out / "summary.json"), None, out),
    ]
    record = {
        "stage": "fuse",
        "inputs": inputs_from(run_dir, "draw", "draws.parquet")
        + inputs_from(run_dir, "commit", "items.parquet", "directory.parquet"),
        "figures": {k: summary[k] for k in FIGURE_LABELS},
        "by_department": summary["by_department"],
        "outputs": outputs,
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_json(record, out / "stage.json")
    logger.info(
        "fuse: %s draws → %s joint tasks (%s entities drawn more than once); %s visits saved, %.2f%%",
        f"{summary['drawn_total']:,}",
        f"{summary['joint_tasks']:,}",
        f"{summary['duplicate_entities']:,}",
        f"{summary['visits_saved']:,}",
        100 * summary["reduction_rate"],
    )
    return record
