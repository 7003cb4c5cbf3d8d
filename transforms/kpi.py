"""The yearly figures (年度考核指标, issue 22): per department and for the city, from the warehouse.
Every figure is a ratio, written as its numerator and denominator (README "The yearly figures"):

    coverage             entities inspected / entities supervised, also by entity type (检查对象覆盖率)
    items_drawn          items drawn at least once / items listed (抽查事项覆盖率)
    results_on_time      results published within the limit / results due (结果按时公示率)
    follow_up_completed  problems with completed follow-up / problems found (问题处置完结率)
    joint_share          joint tasks with two or more departments / all joint tasks (联合检查占比)
    reduction_rate       visits saved by fusion / objects drawn, the city only (减少上门检查比例)

"The year's plans" are the plans whose period starts in the year. Supervision, items, draws and joint
tasks are counted over them; results by date: a result is due in the year its deadline falls in, an
entity counts as inspected and a problem as found in the year of the inspection date, whichever plan
they answer. A plan may set targets (`kpi_targets`): the year's target of a figure is the highest any of
the year's plans sets, and a figure under it is 未达标.

    kpi_figures(KpiInputs, year, as_of, limit) -> one row per (figure, department or city, entity type)
"""

from __future__ import annotations

import datetime as dt
import json
from typing import NamedTuple

import polars as pl

from jointdraw.transforms.fusion_figures import fusion_figures
from jointdraw.transforms.reference import result_codes_in
from jointdraw.transforms.results import result_deadlines


class KpiDefinition(NamedTuple):
    name: str  # as people read it
    numerator: str
    denominator: str
    rule: str  # what is counted, in a sentence (the page's definitions; the README has them in full)


KPIS: dict[str, KpiDefinition] = {  # in the order every output lists them
    "coverage": KpiDefinition(
        "检查对象覆盖率",
        "已检查对象数",
        "监管对象数",
        "监管对象：本年度计划（计划期间始于本年）名录快照中至少一次为存续状态的主体，按列管部门各计一次；"
        "已检查：该部门录入了检查日期在本年的检查结果。另按主体类型分列。",
    ),
    "items_drawn": KpiDefinition(
        "抽查事项覆盖率",
        "至少抽中一次的事项数",
        "事项清单事项数",
        "事项清单：本年度计划发布时各部门的抽查事项清单；抽中：本年度计划中至少一户抽中对象须检查该事项。",
    ),
    "results_on_time": KpiDefinition(
        "结果按时公示率",
        "按时公示的结果数",
        "应公示的结果数",
        "应公示：公示期限（检查日期后第 N 个工作日；尚未检查的按计划检查日期计）在本年内且已届满的检查事项，"
        "不论属于哪个计划；按时：首次公示日期不晚于公示期限。",
    ),
    "follow_up_completed": KpiDefinition(
        "问题处置完结率",
        "处置完结的问题数",
        "发现的问题数",
        "发现问题：检查日期在本年、检查结果含问题类代码的结果；处置完结：已填处置完结日期（未填视为未完结）。",
    ),
    "joint_share": KpiDefinition(
        "联合检查占比",
        "两个及以上部门的联合检查任务数",
        "联合检查任务数",
        "本年度计划融合后的联合检查任务；部门一行计其参与的任务。",
    ),
    "reduction_rate": KpiDefinition(
        "减少上门检查比例",
        "融合减少上门检查次数",
        "抽取检查对象数",
        "本年度各计划的融合数据之和（减少上门检查 = 抽取检查对象 − 联合检查任务），仅计全市。",
    ),
}
ALL_TYPES = "all"  # the row of a figure over every entity type (the one a target applies to)
ENTITY_TYPES = ("enterprise", "individual", "cooperative", "other")
ENTITY_TYPE_NAMES = {
    ALL_TYPES: "全部类型",
    "enterprise": "企业",
    "individual": "个体工商户",
    "cooperative": "农民专业合作社",
    "other": "其他",
}
CITY_NAME = "全市"
MET, MISSED, NO_TARGET, NO_DATA = "达标", "未达标", "未设目标", "无数据"
ACTIVE = "active"

KPI_SCHEMA = {  # kpi.parquet; department null = the city
    "year": pl.Int32,
    "kpi": pl.String,
    "kpi_name": pl.String,
    "department": pl.String,
    "entity_type": pl.String,
    "numerator": pl.Int64,
    "denominator": pl.Int64,
    "value": pl.Float64,
    "target": pl.Float64,
    "target_plans": pl.String,
    "status": pl.String,
}


class KpiInputs(NamedTuple):
    """The warehouse's rows the figures read (warehouse.kpi_tables): the year's plans and what they
    supervised, listed, drew and fused; every plan's task items and results."""

    runs: pl.DataFrame  # plan_id, period_start, period_end, kpi_targets (JSON text or null)
    supervised: pl.DataFrame  # entity_key, department, entity_type: active entities, once per listing department
    items: pl.DataFrame  # department, item_id: the item lists
    draws: pl.DataFrame  # plan_id, task_id, department, uscc
    joint_tasks: pl.DataFrame  # plan_id, joint_task_id, departments
    task_items: pl.DataFrame  # plan_id, joint_task_id, uscc, department, item_id, planned_date (every plan)
    results: pl.DataFrame  # plan_id, joint_task_id, uscc, department, item_id, inspection_date, result_codes,
    #                        first_published_on, deadline, follow_up_completed_on (every plan)


def _counts(units: pl.DataFrame, keys: list[str], flag: str, by: list[str]) -> pl.DataFrame:
    """Per group of `by` (none: the whole frame): denominator = distinct `keys`, numerator = distinct
    `keys` where `flag`."""
    unit = pl.struct(keys)
    agg = {"denominator": unit.n_unique(), "numerator": unit.filter(pl.col(flag)).n_unique()}
    if not by:
        return units.select(**agg) if units.height else pl.DataFrame({"denominator": [0], "numerator": [0]})
    return units.group_by(by).agg(**agg)


def _department_and_city(units: pl.DataFrame, keys: list[str], flag: str, by_type: bool = False) -> pl.DataFrame:
    """The ratio's counts per department and for the city (department null), over every entity type
    (entity_type `all`) and, with `by_type`, per entity type. A unit is counted once per department it
    belongs to, and once for the city."""
    parts = [
        _counts(units, keys, flag, ["department"]).with_columns(entity_type=pl.lit(ALL_TYPES)),
        _counts(units, keys, flag, []).with_columns(department=pl.lit(None, pl.String), entity_type=pl.lit(ALL_TYPES)),
    ]
    if by_type:
        parts += [
            _counts(units, keys, flag, ["department", "entity_type"]),
            _counts(units, keys, flag, ["entity_type"]).with_columns(department=pl.lit(None, pl.String)),
        ]
    counts = {"numerator": pl.Int64, "denominator": pl.Int64}
    return pl.concat([p.select("department", "entity_type", *counts).cast(counts) for p in parts])


def _in_year(column: str, year: int, as_of: dt.date) -> pl.Expr:
    return pl.col(column).is_between(dt.date(year, 1, 1), min(dt.date(year, 12, 31), as_of))


def coverage(inputs: KpiInputs, year: int, as_of: dt.date) -> pl.DataFrame:
    """Entities inspected / entities supervised, per department (its listing), city, and entity type.
    Supervised: active in one of the year's snapshots, once per department that lists it. Inspected
    by a department: it recorded a result for the entity with an inspection date in the year."""
    inspected = (
        inputs.results.filter(_in_year("inspection_date", year, as_of))
        .select(entity_key="uscc", department="department")
        .unique()
        .with_columns(inspected=pl.lit(True))
    )
    units = inputs.supervised.join(inspected, on=["entity_key", "department"], how="left").with_columns(
        pl.col("inspected").fill_null(False)
    )
    return _department_and_city(units, ["entity_key"], "inspected", by_type=True)


def items_drawn(inputs: KpiInputs) -> pl.DataFrame:
    """Items drawn at least once / items listed: a listed item of a department is drawn when an entity
    drawn in one of the year's plans has it to answer (a task that drew nobody draws none of its items)."""
    drawn = inputs.task_items.join(inputs.runs.select("plan_id"), on="plan_id", how="semi")
    units = inputs.items.join(
        drawn.select("department", "item_id").unique().with_columns(drawn=pl.lit(True)),
        on=["department", "item_id"],
        how="left",
    ).with_columns(pl.col("drawn").fill_null(False))
    return _department_and_city(units, ["department", "item_id"], "drawn")


def result_due_dates(inputs: KpiInputs, limit: int) -> pl.DataFrame:
    """Every task item of every plan with its deadline and whether its result was published by then:
    answered, the result's deadline (`limit` working days after the inspection date, as the results flow
    recorded it); not answered, `limit` working days after the planned date."""
    key = ["plan_id", "joint_task_id", "department", "item_id"]
    rows = inputs.task_items.join(
        inputs.results.select(*key, "first_published_on", answered_by="deadline"), on=key, how="left"
    )
    planned = result_deadlines(rows["planned_date"], limit)
    return rows.with_columns(
        deadline=pl.coalesce("answered_by", planned),
        on_time=(pl.col("first_published_on") <= pl.coalesce("answered_by", planned)).fill_null(False),
    )


def results_on_time(inputs: KpiInputs, year: int, as_of: dt.date, limit: int) -> pl.DataFrame:
    """Results published within the limit / results due: the task items whose deadline falls in the
    year (up to `as_of`: an item not yet due is not counted), whichever plan they belong to."""
    due = result_due_dates(inputs, limit).filter(_in_year("deadline", year, as_of))
    return _department_and_city(due, ["plan_id", "joint_task_id", "department", "item_id"], "on_time")


def follow_up_completed(inputs: KpiInputs, year: int, as_of: dt.date) -> pl.DataFrame:
    """Problems with completed follow-up / problems found: results with an inspection date in the year
    and a problem code (reference result_codes, category problem); completed when the department gave a
    follow-up completion date (处置完结日期) on or before `as_of` (none: not completed)."""
    problem = pl.col("result_codes").list.eval(pl.element().is_in(result_codes_in("problem"))).list.any()
    found = inputs.results.filter(_in_year("inspection_date", year, as_of) & problem.fill_null(False))
    units = found.with_columns(completed=(pl.col("follow_up_completed_on") <= as_of).fill_null(False))
    return _department_and_city(units, ["plan_id", "joint_task_id", "department", "item_id"], "completed")


def joint_share(inputs: KpiInputs) -> pl.DataFrame:
    """Joint tasks with two or more departments / all joint tasks of the year's plans; a department's
    are the joint tasks it takes part in."""
    units = inputs.joint_tasks.with_columns(joint=pl.col("departments").list.len() >= 2).explode("departments")
    return _department_and_city(units.rename({"departments": "department"}), ["plan_id", "joint_task_id"], "joint")


def reduction_rate(inputs: KpiInputs) -> pl.DataFrame:
    """Visits saved by fusion / objects drawn, summed over the year's plans, each plan's figures by
    fusion_figures (SPEC §4.5: visits_saved = drawn_total − joint_tasks; an entity drawn by two plans
    is two visits). The city only: a saved visit belongs to no one department."""
    per_plan = [fusion_figures(d) for _, d in inputs.draws.group_by("plan_id")]
    return pl.DataFrame(
        {
            "department": [None],
            "entity_type": [ALL_TYPES],
            "numerator": [sum(f["visits_saved"] for f in per_plan)],
            "denominator": [sum(f["drawn_total"] for f in per_plan)],
        },
        schema={"department": pl.String, "entity_type": pl.String, "numerator": pl.Int64, "denominator": pl.Int64},
    )


def year_targets(runs: pl.DataFrame) -> dict[str, tuple[float, str]]:
    """Figure → (the year's target, the plans that set it): the highest target any of the year's plans
    sets (a figure is met when it meets every plan's target)."""
    given: dict[str, list[tuple[float, str]]] = {}
    for plan_id, text in runs.select("plan_id", "kpi_targets").iter_rows():
        for kpi, target in (json.loads(text) if text else {}).items():
            if target is not None:
                given.setdefault(kpi, []).append((float(target), plan_id))
    out = {}
    for kpi, targets in given.items():
        highest = max(t for t, _ in targets)
        out[kpi] = (highest, "、".join(sorted(p for t, p in targets if t == highest)))
    return out


def _status(value: float | None, numerator: int, denominator: int, target: float | None) -> str:
    if target is None:
        return NO_TARGET
    if not denominator:
        return NO_DATA
    return MET if numerator >= target * denominator else MISSED


def kpi_figures(inputs: KpiInputs, year: int, as_of: dt.date, limit: int) -> pl.DataFrame:
    """Every figure (KPI_SCHEMA): per figure the city first, then each department by code; the coverage
    over every type, then per entity type. `value` = numerator / denominator (null when nothing is
    counted); `target` and `status` (达标 / 未达标 / 未设目标 / 无数据) on the rows over every entity type."""
    parts = {
        "coverage": coverage(inputs, year, as_of),
        "items_drawn": items_drawn(inputs),
        "results_on_time": results_on_time(inputs, year, as_of, limit),
        "follow_up_completed": follow_up_completed(inputs, year, as_of),
        "joint_share": joint_share(inputs),
        "reduction_rate": reduction_rate(inputs),
    }
    targets = year_targets(inputs.runs)
    rows = []
    type_order = {t: i for i, t in enumerate((ALL_TYPES, *ENTITY_TYPES))}
    for kpi, counts in parts.items():
        ordered = counts.with_columns(
            _city=pl.col("department").is_not_null(),
            _type=pl.col("entity_type").replace_strict(type_order, default=len(type_order), return_dtype=pl.Int32),
        ).sort("_city", "department", "_type", "entity_type", nulls_last=False)
        for r in ordered.iter_rows(named=True):
            target, plans = targets.get(kpi, (None, None)) if r["entity_type"] == ALL_TYPES else (None, None)
            value = r["numerator"] / r["denominator"] if r["denominator"] else None
            rows.append(
                {
                    "year": year,
                    "kpi": kpi,
                    "kpi_name": KPIS[kpi].name,
                    "department": r["department"],
                    "entity_type": r["entity_type"],
                    "numerator": r["numerator"],
                    "denominator": r["denominator"],
                    "value": value,
                    "target": target,
                    "target_plans": plans,
                    "status": _status(value, r["numerator"], r["denominator"], target),
                }
            )
    return pl.DataFrame(rows, schema=KPI_SCHEMA, orient="row") if rows else pl.DataFrame(schema=KPI_SCHEMA)


def percent_text(value: float | None) -> str | None:
    """A share as people read it: 12.35%."""
    return None if value is None else f"{value:.2%}"


def kpi_for_people(figures: pl.DataFrame, department_names: dict[str, str]) -> pl.DataFrame:
    """The figures as the workbook and CSV show them (headers in people_headers.KPI): the department and
    entity type in words, the value and target as percentages."""

    def pct(c: str) -> pl.Expr:
        return pl.col(c).map_elements(percent_text, return_dtype=pl.String)

    return figures.select(
        "year",
        "kpi_name",
        department=pl.col("department")
        .replace_strict(department_names, default=pl.col("department"))
        .fill_null(CITY_NAME),
        department_code=pl.col("department").fill_null(""),
        entity_type=pl.col("entity_type").replace_strict(ENTITY_TYPE_NAMES, default=pl.col("entity_type")),
        numerator="numerator",
        denominator="denominator",
        value=pct("value"),
        target=pct("target"),
        status="status",
        target_plans="target_plans",
    )
