"""Check one entity yourself (核验): anyone can recompute whether an entity was drawn by a task, with
the public seed, the task's key, the entity's USCC and the published cut-off of its stratum.

    score(seed, key, uscc) = first 8 bytes, big-endian, of SHA-256(utf8(seed + "|" + key + "|" + uscc))
    drawn ⇔ (score, uscc) ≤ (the stratum's cut-off score, …): the k lowest scores win

`stratum_cutoffs` makes the published per-stratum table (task, key, class, N, k, cut-off = the k-th
lowest score); `score_snippet` is the few lines of standard Python (hashlib only) the pages show;
`entity_report` is what `jointdraw verify --entity USCC BUNDLE` prints: for every task of a department
that lists the entity, whether it was eligible (and if not, why), its score, its stratum's cut-off, and
whether it was drawn.
"""

from __future__ import annotations

import polars as pl

from jointdraw.transforms.merge import DRAWN_ID
from jointdraw.transforms.plan import Plan
from jointdraw.transforms.score import score

CUTOFF_COLUMNS = ["task_id", "score_key", "credit_risk", "stratum_size", "k", "cutoff_score"]


def stratum_cutoffs(strata: pl.DataFrame, draws: pl.DataFrame, keys: dict[str, str]) -> pl.DataFrame:
    """One row per stratum (task, credit class): its key, size N, k, and the k-th lowest score (null
    when k is 0: nobody is drawn). Sorted by task and class."""
    cutoff = draws.group_by("task_id", "credit_risk").agg(cutoff_score=pl.col("score").max())
    return (
        strata.rename({"n": "stratum_size"})
        .with_columns(score_key=pl.col("task_id").replace_strict(keys, return_dtype=pl.String))
        .join(cutoff, on=["task_id", "credit_risk"], how="left")
        .select(CUTOFF_COLUMNS)
        .sort("task_id", "credit_risk")
    )


CHECK_STEPS_ZH = [  # how anyone checks one entity, as the pages say it
    "在计划中找到该企业所属部门的抽查任务，记下任务编号（若计划把任务编入协调组，则用协调组名称）作为评分键 key；",
    "用下面几行标准 Python 程序（只用 hashlib，无需安装任何软件包）计算该企业在该任务中的评分 score；",
    "在核验表（strata.csv / strata.xlsx）中找到该任务、该企业信用风险分类所在的一层，看“入选分数线”；",
    "评分不高于入选分数线即入选（本层评分最低的 k 户入选；评分相同时按统一社会信用代码排序），高于则未入选。",
]


def score_snippet(seed: str, key: str = "<抽查任务编号或协调组>", uscc: str = "<统一社会信用代码>") -> str:
    """The computation in standard Python (3.8 or later, nothing to install), as the pages show it."""
    return (
        "import hashlib\n"
        f"seed = {seed!r}\n"
        f"key = {key!r}\n"
        f"uscc = {uscc!r}\n"
        'digest = hashlib.sha256(f"{seed}|{key}|{uscc}".encode("utf-8")).digest()\n'
        'score = int.from_bytes(digest[:8], "big")\n'
        "print(score)\n"
    )


def _why_not_eligible(entity: pl.DataFrame, task, excluded: pl.DataFrame) -> str | None:
    """Why the entity (a one-row directory frame) is not in the task's eligible set, None when it is:
    the same conditions `jointdraw verify` recomputes every draw with (verify.scope_conditions)."""
    from jointdraw.transforms.verify import scope_conditions

    row = entity.row(0, named=True)
    if task.department not in (row["departments"] or []):
        return f"{task.department} does not list it"
    if row["status"] != "active":
        return f"status {row['status']} (only active entities are drawn)"
    for asks, condition in scope_conditions(task.scope):
        if not entity.select(condition.fill_null(False)).item():
            return f"outside the task's scope, which asks for {asks}"
    reasons = excluded.filter(pl.col("task_id").is_null() | (pl.col("task_id") == task.task_id))["reason"].to_list()
    if reasons:
        return f"excluded: {', '.join(sorted(set(reasons)))}"
    return None


def entity_report(
    uscc: str,
    directory: pl.DataFrame,
    exclusions: pl.DataFrame,
    plan: Plan,
    seed: str,
    keys: dict[str, str],
    cutoffs: pl.DataFrame,
    draws: pl.DataFrame,
) -> list[str]:
    """Lines saying, for every task, what the draw did with this entity and why."""
    rows = directory.with_columns(DRAWN_ID).filter(pl.col("uscc") == uscc)
    if rows.is_empty():
        return [
            f"{uscc} is not in the directory the plan was drawn from (not submitted by any department, or quarantined)"
        ]
    entity = rows.row(0, named=True)
    excluded = exclusions.filter(pl.col("uscc") == uscc)
    drawn = set(draws.filter(pl.col("uscc") == uscc)["task_id"])
    lines = [
        f"{uscc} {entity['name']}: listed by {', '.join(entity['departments'])}; credit class {entity['credit_risk']}; "
        f"seed {seed!r}"
    ]
    for task in plan.tasks:
        if task.department not in entity["departments"]:
            continue
        why = _why_not_eligible(rows.head(1), task, excluded)
        if why:
            lines.append(f"  {task.task_id}: not eligible: {why}")
            continue
        key = keys[task.task_id]
        mine = score(seed, key, uscc)
        stratum = cutoffs.filter((pl.col("task_id") == task.task_id) & (pl.col("credit_risk") == entity["credit_risk"]))
        n, k, cutoff = stratum.row(0)[3:6] if stratum.height else (0, 0, None)
        verdict = "DRAWN" if task.task_id in drawn else "not drawn"
        rule = "k is 0" if not k else f"score {'≤' if cutoff is not None and mine <= cutoff else '>'} cut-off {cutoff}"
        lines.append(
            f"  {task.task_id}: {verdict}: score(seed, {key!r}, {uscc!r}) = {mine}; stratum {entity['credit_risk']} "
            f"of {n:,}, k = {k}; {rule}"
        )
    if len(lines) == 1:
        lines.append("  no task of the plan is a task of a department that lists it")
    return lines
