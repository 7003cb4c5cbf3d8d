"""The publication before the draw (事前公示): the item list the plan uses and the plan notice, made public
with the commitment and before the seed is known, as the rules ask (抽查事项清单 and 抽查计划 are public
before the draw).

    plan_items(plan, items)  -> one row per item the plan uses: 事项编号, 事项名称, 抽查依据, 检查方式, 部门 …
    plan_notice(plan)        -> one row per task: 任务, 部门, 定向/不定向 and its scope in words, ratio (with
                                its floor and cap) per class or count, period, items

Nothing about any entity: no USCC, no entity's class (a task's ratio per class is the plan's rule, not
anyone's class), nothing personal. Both tables are written as CSV (our one people's writer, so the
bytes are canonical) and XLSX under `pre/`; their SHA-256 enter the commitment (`pre_sha256`), so
`jointdraw verify` fails when either is changed after the draw, and it re-derives the plan notice
from `plan.yaml`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from jointdraw.transforms.industry import industry_name
from jointdraw.transforms.plan import ClassRatio, Plan, Task
from jointdraw.transforms.reference import department_names, reference_table

PRE_FILES = ("items.csv", "plan_notice.csv")  # what the commitment covers (the XLSX beside each is for people)


def plan_items(plan: Plan, items: pl.DataFrame) -> pl.DataFrame:
    """The items the plan's tasks use, with their department's name; sorted by item id."""
    used = sorted({i for t in plan.tasks for i in t.items})
    names = department_names()
    return (
        items.filter(pl.col("item_id").is_in(used))
        .select(
            "item_id",
            "name",
            "basis",
            "method",
            "category",
            "business_line",
            department=pl.col("department").replace_strict(names, default=pl.col("department")),
        )
        .with_columns(
            category=pl.col("category").replace_strict({"key": "重点", "general": "一般"}, default=pl.col("category"))
        )
        .sort("item_id")
    )


def _scope_words(plan_task) -> str:
    s = plan_task.scope
    if s is None:
        return "本部门检查对象名录全部对象"
    districts = dict(reference_table("districts_shenzhen").select("district_code", "name_zh").iter_rows())
    parts = []
    if s.industries:
        parts.append("行业：" + "、".join(f"{c} {industry_name(c) or ''}".strip() for c in s.industries))
    if s.entity_types:
        words = {"enterprise": "企业", "individual": "个体工商户", "cooperative": "农民专业合作社", "other": "其他"}
        parts.append("主体类型：" + "、".join(words.get(t, t) for t in s.entity_types))
    if s.registered_types:
        parts.append("企业类型代码：" + "、".join(s.registered_types))
    if s.foreign_invested is not None:
        parts.append("外商投资企业" if s.foreign_invested else "非外商投资企业")
    if s.branch is not None:
        parts.append("分支机构" if s.branch else "非分支机构")
    if s.districts:
        parts.append("区域：" + "、".join(districts.get(d, d) for d in s.districts))
    if s.tags:
        parts.append("标签：" + "、".join(s.tags))
    return "；".join(parts)


def class_ratio_words(rule: ClassRatio) -> str:
    """One class's rule in words: `10.00%`, or with its floor and cap `10.00%（至少 2 户，至多 40 户）`."""
    bounds = []
    if rule.min_count:
        bounds.append(f"至少 {rule.min_count} 户")
    if rule.max_count is not None:
        bounds.append(f"至多 {rule.max_count} 户")
    return f"{100 * rule.ratio:.2f}%" + (f"（{'，'.join(bounds)}）" if bounds else "")


def _share_words(plan_task: Task) -> str:
    if plan_task.count is not None:
        return f"共抽取 {plan_task.count} 户（按信用风险分类分配）"
    return "；".join(f"{c}类 {class_ratio_words(plan_task.class_ratio(c))}" for c in sorted(plan_task.ratio or {}))


def plan_notice(plan: Plan) -> pl.DataFrame:
    """One row per task, in the plan's order: what will be drawn, from whom, how many, when."""
    names = department_names()
    period = f"{plan.period.start.isoformat()}至{plan.period.end.isoformat()}"
    return pl.DataFrame(
        [
            {
                "plan_id": plan.plan_id,
                "task_id": t.task_id,
                "title": t.title,
                "department": names.get(t.department, t.department),
                "kind": "定向" if t.scope else "不定向",
                "scope": _scope_words(t),
                "share": _share_words(t),
                "window": period,
                "items": "；".join(t.items),
                "group": t.group or "",
            }
            for t in plan.tasks
        ],
        schema={
            c: pl.String
            for c in ("plan_id", "task_id", "title", "department", "kind", "scope", "share", "window", "items", "group")
        },
    )


def pre_sha256(folder: Path) -> str:
    """The digest the commitment carries: SHA-256 over the SHA-256 of each pre-published CSV, in order."""
    text = "".join(f"{name} {hashlib.sha256((folder / name).read_bytes()).hexdigest()}\n" for name in PRE_FILES)
    return hashlib.sha256(text.encode()).hexdigest()


def write_prepublication_tables(plan: Plan, items: pl.DataFrame, folder: Path) -> list[Path]:
    """`04_commit/pre/`: the plan's item list and the plan notice, CSV and XLSX with Chinese headers."""
    from jointdraw.transforms.documents import people_headers
    from jointdraw.transforms.storage.xlsxout import write_people_tables

    return [
        *write_people_tables(plan_items(plan, items), folder / "items.csv", people_headers.PRE_ITEMS, "抽查事项清单"),
        *write_people_tables(plan_notice(plan), folder / "plan_notice.csv", people_headers.PRE_PLAN, "抽查计划"),
    ]
