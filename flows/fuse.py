"""Stage `fuse` (查重、融合, SPEC §4.5): the draws → one joint task per entity.

06_fuse/joint_tasks.parquet       one row per entity drawn (transforms/joint_tasks.py)
06_fuse/task_departments.parquet  one row per (joint task, department): what assign staffs
06_fuse/summary.json              the five figures of SPEC §4.5, counts by department,
                                  district and class, the department-overlap matrix
06_fuse/stage.json                inputs, outputs, figures, seconds
"""

from __future__ import annotations

import polars as pl

from jointdraw.flows.errors import StageFailed
from jointdraw.transforms.fusion_figures import FIGURE_LABELS, fusion_summary
from jointdraw.transforms.joint_tasks import ENTITY_ATTRIBUTES, fuse_draws
from jointdraw.transforms.merge import drawn_entities
from jointdraw.transforms.plan import Plan
from jointdraw.transforms.stage_records import FuseRecord
from jointdraw.transforms.storage.layout import RunFolder
from jointdraw.transforms.storage.runfolder import (
    DIRECTORY_PARTS,
    directory_parts,
    file_record,
    inputs_from,
    write_json,
    write_parquet,
)


def run_fuse(run: RunFolder, plan: Plan) -> FuseRecord:
    commit_dir, draw_dir, out = run.stage("commit"), run.stage("draw"), run.stage("fuse")
    draws = pl.read_parquet(draw_dir / "draws.parquet")
    items = pl.read_parquet(commit_dir / "items.parquet", columns=["item_id", "department", "category"])
    directory = drawn_entities(directory_parts(commit_dir), draws["uscc"], *ENTITY_ATTRIBUTES)
    missing = draws.join(directory, on="uscc", how="anti")["uscc"].unique().sort()
    if missing.len():
        raise StageFailed(
            f"fuse: {missing.len()} drawn USCCs are not in the directory of {commit_dir} "
            f"(first: {', '.join(missing.head(3))}); the draw and the commit do not belong together — rerun from commit"
        )
    fused = fuse_draws(draws, items, directory, plan.plan_id)
    summary = fusion_summary(draws, fused.joint_tasks)
    written = [
        (write_parquet(fused.joint_tasks, out / "joint_tasks.parquet"), fused.joint_tasks.height),
        (write_parquet(fused.task_departments, out / "task_departments.parquet"), fused.task_departments.height),
        (write_json({"plan_id": plan.plan_id, **summary}, out / "summary.json"), None),
    ]
    return FuseRecord(
        inputs=inputs_from(run.path, "draw", "draws.parquet")
        + inputs_from(run.path, "commit", "items.parquet", DIRECTORY_PARTS),
        figures={k: summary[k] for k in FIGURE_LABELS},
        by_department=summary["by_department"],
        outputs=[file_record(path, rows, out) for path, rows in written],
    )
