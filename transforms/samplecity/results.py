"""Sample inspection results for a published plan (the demo, the tests): what departments
would submit after inspecting, in the registries' formats and encodings.

    generate_results(plan_side, seed, dirty) -> ({department: results frame}, truth)

Seeded: the same plan side and seed give the same files. A department answers each task item with
probability 0.9, inspected on its planned day or up to three days later by the department's team
(5%: one member replaced, with the reason given), and enters it some days after the inspection (80%
within five days, 15% within three weeks, 5% up to two months: what makes some results late). Results
arrive over the year: a file as of a day holds what was entered by then, and every row of an earlier
day's file is in a later one (each row's chances are drawn over all the plan's items, whatever the day).
Review (审核, issue 22): a result is reviewed up to a week after entry — pending (待审核) until then,
approved (审核通过) by the department's reviewer, or, 4%, returned (审核退回) with the reason, and
approved once put right one to three weeks later. A problem found is followed up to completion
(处置完结日期) 1–12 weeks after the inspection, 85% of them; the date appears once it has passed.
`dirty` plants one error per file of at least 40 rows, a different rule per department, and lists it
in the truth table (file, line, kind, column, expected reason).
"""

from __future__ import annotations

import datetime as dt
import zlib

import numpy as np
import polars as pl

from jointdraw.transforms.reference import result_codes_in
from jointdraw.transforms.results import PlanSide

ANSWERED = 0.9
OUTCOMES = [  # result codes, follow-up, findings, weight
    (["1"], "none", None, 0.82),
    (["E"], "rectify", "现场检查发现部分台账记录不完整，已当场责令改正。", 0.06),
    (["P"], "rectify", "发现问题，已下达责令限期整改通知书。", 0.03),
    (["B"], "rectify", "未按规定公示年度报告信息。", 0.02),
    (["E", "3"], "case", "违反食品安全管理规定，线索已移送。", 0.015),
    (["6"], "abnormal", "通过登记的住所无法联系，拟列入经营异常名录。", 0.02),
    (["7"], "none", "现场已关闭停业。", 0.015),
    (["F"], "none", "未发现开展本次抽查涉及的经营活动。", 0.02),
]
METHODS = (["onsite", "documents", "online", "testing"], [0.8, 0.1, 0.05, 0.05])
FORMATS = ["csv-utf8", "csv-gbk", "xlsx", "parquet", "csv-utf8-bom"]
PLANTED = {  # kind → (column, the reason validation must give)
    "task_unknown": ("joint_task_id", "task_unknown"),
    "codes_contradict": ("result_codes", "codes_contradict"),
    "inspector_not_on_team": ("inspectors", "inspector_not_on_team"),
    "date_outside_period": ("inspection_date", "date_outside_period"),
    "result_code_unknown": ("result_codes", "result_code_unknown"),
    "not_own_result": ("department", "not_own_result"),
}
MIN_ROWS_TO_PLANT = 40
RETURNED = 0.04
RETURN_REASONS = [
    "检查结果与检查情况描述不一致，请核实后重新提交",
    "缺少现场检查记录等佐证材料",
    "后续处置措施填写不完整",
]
FOLLOWED_UP = 0.85
TRUTH_SCHEMA = {"file": pl.String, "line": pl.Int64, "kind": pl.String, "column": pl.String, "expected": pl.String}


def _rng(seed: int, department: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(department.encode())])


def _department_results(
    items: pl.DataFrame, team: dict[str, list[str]], pool: list[str], plan: PlanSide, rng: np.random.Generator
) -> pl.DataFrame:
    every = items.sort("joint_task_id", "item_id")
    n = every.height
    answered = rng.random(n) < ANSWERED
    outcome = rng.choice(len(OUTCOMES), size=n, p=[o[3] for o in OUTCOMES])
    delay = rng.integers(0, 4, size=n)
    substitute = rng.random(n) < 0.05
    u = rng.random(n)  # days from the inspection to the entry: most within five, some weeks later, a few months
    entry = np.where(
        u < 0.8, rng.integers(0, 6, n), np.where(u < 0.95, rng.integers(6, 21, n), rng.integers(21, 61, n))
    )
    review = rng.integers(0, 8, size=n)
    returned = rng.random(n) < RETURNED
    return_reason = rng.integers(0, len(RETURN_REASONS), size=n)
    fixed = rng.integers(7, 22, size=n)
    followed = rng.random(n) < FOLLOWED_UP
    follow_days = rng.integers(7, 85, size=n)
    method = rng.choice(len(METHODS[0]), size=n, p=METHODS[1])
    replace_at = rng.random(n)
    problems = set(result_codes_in("problem"))
    department = every["department"][0] if n else ""
    reviewer = f"{department}-SH{int(rng.integers(1, 4)):02d}"
    rows = []
    for i, r in enumerate(every.iter_rows(named=True)):
        day = min(r["planned_date"] + dt.timedelta(days=int(delay[i])), plan.period[1])
        entered = day + dt.timedelta(days=int(entry[i]))
        if not answered[i] or day > plan.as_of or entered > plan.as_of:
            continue
        members = list(team.get(r["joint_task_id"], []))
        reason = None
        if substitute[i] and members and len(pool) > len(members):
            others = [p for p in pool if p not in members]
            members[0] = others[int(replace_at[i] * len(others))]
            reason = "原检查人员休假，由同科室执法人员替换"
        codes, follow_up, findings, _ = OUTCOMES[outcome[i]]
        reviewed = entered + dt.timedelta(days=int(review[i]))
        state, note = "approved", None
        if reviewed > plan.as_of:
            state = "pending"
        elif returned[i] and reviewed + dt.timedelta(days=int(fixed[i])) > plan.as_of:
            state, note = "returned", RETURN_REASONS[int(return_reason[i])]
        completed = day + dt.timedelta(days=int(follow_days[i]))
        rows.append(
            {
                "joint_task_id": r["joint_task_id"],
                "department": r["department"],
                "item_id": r["item_id"],
                "inspection_date": day,
                "inspectors": sorted(members),
                "method": METHODS[0][int(method[i])],
                "result_codes": codes,
                "follow_up": follow_up,
                "findings": findings,
                "substitution_reason": reason,
                "review_state": state,
                "reviewer": None if state == "pending" else reviewer,
                "review_note": note,
                "follow_up_completed_on": (
                    completed if set(codes) & problems and followed[i] and completed <= plan.as_of else None
                ),
            }
        )
    schema = {
        "joint_task_id": pl.String,
        "department": pl.String,
        "item_id": pl.String,
        "inspection_date": pl.Date,
        "inspectors": pl.List(pl.String),
        "method": pl.String,
        "result_codes": pl.List(pl.String),
        "follow_up": pl.String,
        "findings": pl.String,
        "substitution_reason": pl.String,
        "review_state": pl.String,
        "reviewer": pl.String,
        "review_note": pl.String,
        "follow_up_completed_on": pl.Date,
    }
    return pl.DataFrame(rows, schema=schema)


def _plant(df: pl.DataFrame, kind: str, plan: PlanSide, other_department: str) -> pl.DataFrame:
    """One row (the middle one) broken the way `kind` says."""
    i = df.height // 2
    row = df.row(i, named=True)
    if kind == "task_unknown":
        row["joint_task_id"] = row["joint_task_id"][:-4] + "XXXX"
    elif kind == "codes_contradict":
        row["result_codes"], row["follow_up"] = ["1", "E"], "rectify"
    elif kind == "inspector_not_on_team":
        row["inspectors"], row["substitution_reason"] = [*row["inspectors"][:1], "ZZ99999"], None
    elif kind == "date_outside_period":
        row["inspection_date"] = plan.period[0] - dt.timedelta(days=40)
    elif kind == "result_code_unknown":
        row["result_codes"] = ["X9"]
    elif kind == "not_own_result":
        row["department"] = other_department
    return pl.concat([df.slice(0, i), pl.DataFrame([row], schema=df.schema), df.slice(i + 1)])


def generate_results(
    plan: PlanSide, seed: int, dirty: bool = False
) -> tuple[dict[str, tuple[pl.DataFrame, str]], pl.DataFrame]:
    """({department: (results frame, file format)}, truth); departments in code order."""
    departments = sorted(plan.task_items["department"].unique().to_list())
    teams = plan.teams.group_by("joint_task_id", "department").agg(pl.col("inspector_id").sort())
    out, truth = {}, []
    for n, dept in enumerate(departments):
        mine = teams.filter(pl.col("department") == dept)
        team = dict(zip(mine["joint_task_id"], mine["inspector_id"].to_list(), strict=True))
        pool = sorted(plan.teams.filter(pl.col("department") == dept)["inspector_id"].unique().to_list())
        df = _department_results(
            plan.task_items.filter(pl.col("department") == dept), team, pool, plan, _rng(seed, dept)
        )
        fmt = FORMATS[n % len(FORMATS)]
        if dirty and df.height >= MIN_ROWS_TO_PLANT:
            kind = list(PLANTED)[n % len(PLANTED)]
            df = _plant(df, kind, plan, departments[(n + 1) % len(departments)])
            ext = {"parquet": "parquet", "xlsx": "xlsx"}.get(fmt, "csv")
            column, expected = PLANTED[kind]
            truth.append(
                {
                    "file": f"{dept}/results.{ext}",
                    "line": df.height // 2 + 2,
                    "kind": kind,
                    "column": column,
                    "expected": expected,
                }
            )
        out[dept] = (df, fmt)
    return out, pl.DataFrame(truth, schema=TRUTH_SCHEMA)
