"""The fusion figures (SPEC §4.5), with exactly the definitions of the spec. Every stage,
report and test that states them calls `fusion_figures`.

    drawn_total        = draw rows
    duplicate_entities = entities with ≥ 2 draws
    joint_tasks        = distinct entities drawn
    visits_saved       = drawn_total − joint_tasks
    reduction_rate     = visits_saved / drawn_total

`fusion_summary` adds the counts people ask for next: by department, district and credit
class, and the department-overlap matrix (entities each pair of departments drew in common).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

# the Shenzhen report's wording, for tables people read (SPEC §1)
FIGURE_LABELS = {
    "drawn_total": "抽取检查对象 objects drawn",
    "duplicate_entities": "重复抽中户数 entities drawn more than once",
    "joint_tasks": "融合后联合检查任务 joint tasks",
    "visits_saved": "减少上门检查 visits saved",
    "reduction_rate": "减少比例 reduction rate",
}


def figure_text(name: str, value: int | float) -> str:
    """One figure as people read it: the reduction rate as a percentage (10.39%), counts with
    thousands separators (74,641). Every table, log line and page of the figures uses it."""
    return f"{value:.2%}" if name == "reduction_rate" else f"{value:,}"


def figure_rows(figures: Mapping[str, int | float]) -> list[dict[str, str]]:
    """The five figures in the spec's order, as rows of a table people read: label and value."""
    return [{"figure": FIGURE_LABELS[k], "value": figure_text(k, figures[k])} for k in FIGURE_LABELS if k in figures]


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


def _counts(frame: pl.DataFrame, by: str, name: str) -> dict[str, int]:
    return dict(frame.group_by(by).len(name).sort(by).iter_rows())


def overlap_matrix(joint_tasks: pl.DataFrame) -> dict[str, dict[str, int]]:
    """department → department → entities both drew (the diagonal: entities the department drew)."""
    pairs = (
        joint_tasks.select("uscc", a="departments")
        .explode("a")
        .join(joint_tasks.select("uscc", b="departments").explode("b"), on="uscc")
        .group_by("a", "b")
        .len()
        .sort("a", "b")
    )
    matrix: dict[str, dict[str, int]] = {}
    for a, b, n in pairs.iter_rows():
        matrix.setdefault(a, {})[b] = n
    return matrix


def fusion_summary(draws: pl.DataFrame, joint_tasks: pl.DataFrame) -> dict[str, Any]:
    """The five figures, then draws and joint tasks by department, district and class, the lead
    departments and the overlap matrix: what summary.json and the report carry."""
    by_department = {d: {"draws": n, "joint_tasks": 0, "lead": 0} for d, n in _counts(draws, "department", "n").items()}
    for d, n in _counts(joint_tasks.explode("departments"), "departments", "n").items():
        by_department[d]["joint_tasks"] = n
    for d, n in _counts(joint_tasks, "lead_department", "n").items():
        by_department[d]["lead"] = n
    joint_by = {col: _counts(joint_tasks, col, "n") for col in ("district_code", "credit_risk")}
    return {
        **fusion_figures(draws),
        "by_department": by_department,
        "by_district": {
            k: {"draws": n, "joint_tasks": joint_by["district_code"].get(k, 0)}
            for k, n in _counts(draws, "district_code", "n").items()
        },
        "by_credit_class": {
            k: {"draws": n, "joint_tasks": joint_by["credit_risk"].get(k, 0)}
            for k, n in _counts(draws, "credit_risk", "n").items()
        },
        "departments_per_joint_task": {
            str(k): n
            for k, n in joint_tasks.group_by(pl.col("departments").list.len().alias("k")).len().sort("k").iter_rows()
        },
        "department_overlap": overlap_matrix(joint_tasks),
    }
