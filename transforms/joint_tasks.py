"""Fusion (查重、融合, SPEC §4.5): the draws of one entity — by several tasks, often of several
departments — become one joint task: one visit, one team, one day.

    fuse_draws(draws, items, directory, plan_id) -> Fused(joint_tasks, task_departments)

`task_departments` has one row per (joint task, department): the department's items and
tasks in it, how many of those items are key (重点) items — what assign staffs. The lead
department of a joint task is the one with a key item, else the one with the most items;
between departments that tie, the one with more items, then the smallest department code.
"""

from __future__ import annotations

from typing import NamedTuple

import polars as pl

JOINT_TASK_COLUMNS = [
    "joint_task_id",
    "uscc",
    "name",
    "district_code",
    "address",
    "credit_risk",
    "departments",
    "lead_department",
    "task_ids",
    "item_ids",
    "draws",
]
TASK_DEPARTMENT_COLUMNS = ["joint_task_id", "uscc", "department", "is_lead", "item_ids", "key_items", "task_ids"]


class Fused(NamedTuple):
    joint_tasks: pl.DataFrame
    task_departments: pl.DataFrame


def joint_task_id(plan_id: pl.Expr | str, uscc: pl.Expr) -> pl.Expr:
    """`<plan_id>-<uscc>`: stable across reruns of the plan, readable on the notice."""
    plan = pl.lit(plan_id) if isinstance(plan_id, str) else plan_id
    return pl.concat_str(plan, pl.lit("-"), uscc)


def _sorted_unique(col: str) -> pl.Expr:
    return pl.col(col).explode().unique().sort()


# what a joint task carries of its entity's directory row (besides the uscc)
ENTITY_ATTRIBUTES = ("name", "district_code", "address", "credit_risk")


def fuse_draws(draws: pl.DataFrame, items: pl.DataFrame, directory: pl.DataFrame, plan_id: str) -> Fused:
    """One joint task per entity drawn (sorted by joint_task_id), and its departments."""
    is_key = dict(items.select("item_id", pl.col("category") == "key").iter_rows())
    per_department = (
        draws.group_by("uscc", "department")
        .agg(item_ids=_sorted_unique("item_ids"), task_ids=pl.col("task_id").unique().sort())
        .with_columns(
            key_items=pl.col("item_ids")
            .list.eval(pl.element().replace_strict(is_key, default=False))
            .list.sum()
            .cast(pl.Int64)
        )
        # the lead: a key item first, then the most items, then the smallest department code
        .sort(
            ["uscc", pl.col("key_items") > 0, pl.col("item_ids").list.len(), "department"],
            descending=[False, True, True, False],
        )
        .with_columns(
            is_lead=pl.col("department").cum_count().over("uscc") == 1,
            joint_task_id=joint_task_id(plan_id, pl.col("uscc")),
        )
    )
    attributes = directory.select("uscc", *ENTITY_ATTRIBUTES)
    joint = (
        per_department.group_by("joint_task_id", "uscc")
        .agg(
            departments=pl.col("department").sort(),
            lead_department=pl.col("department").filter("is_lead").first(),
            task_ids=_sorted_unique("task_ids"),
            item_ids=_sorted_unique("item_ids"),
        )
        .join(draws.group_by("uscc").len("draws"), on="uscc")
        .join(attributes, on="uscc", how="left")
        .select(JOINT_TASK_COLUMNS)
        .sort("joint_task_id")
    )
    return Fused(joint, per_department.select(TASK_DEPARTMENT_COLUMNS).sort("joint_task_id", "department"))
