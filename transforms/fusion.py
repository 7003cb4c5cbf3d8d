"""The fusion figures (SPEC §4.5), with exactly the definitions of the spec. Every stage,
report and test that states them calls `fusion_figures`.

    drawn_total        = draw rows
    duplicate_entities = entities with ≥ 2 draws
    joint_tasks        = distinct entities drawn
    visits_saved       = drawn_total − joint_tasks
    reduction_rate     = visits_saved / drawn_total
"""

from __future__ import annotations

import polars as pl


def fusion_figures(draws: pl.DataFrame) -> dict[str, int | float]:
    per_entity = draws.group_by("uscc").len()
    drawn_total = draws.height
    joint_tasks = per_entity.height
    visits_saved = drawn_total - joint_tasks
    return {
        "drawn_total": drawn_total,
        "duplicate_entities": per_entity.filter(pl.col("len") >= 2).height,
        "joint_tasks": joint_tasks,
        "visits_saved": visits_saved,
        "reduction_rate": round(visits_saved / drawn_total, 6) if drawn_total else 0.0,
    }
