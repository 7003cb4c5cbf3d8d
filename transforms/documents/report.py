"""report.html (SPEC §6): the draw for people — one self-contained file that opens offline.

    render_report(ReportData) -> HTML text

Headline: the five fusion figures with the Shenzhen report's labels. Then charts (plotly,
with plotly.js embedded once in the page: no network needed) of draws by department and by
district, the department-overlap matrix as a heat map and the reduction under both draw
modes; and tables of class ratios met, exclusions, unassigned joint tasks by reason and validation
results per file. Labels are Chinese; every value comes from the run's files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.offline import get_plotlyjs

from jointdraw.transforms.documents.prepublication import class_ratio_words
from jointdraw.transforms.documents.seal import seal_slot
from jointdraw.transforms.entity_check import CHECK_STEPS_ZH, score_snippet
from jointdraw.transforms.fusion_figures import FIGURE_LABELS, figure_text
from jointdraw.transforms.plan import ClassRatio, Plan
from jointdraw.transforms.reference import department_names, reference_table
from jointdraw.transforms.storage.packaged import page_template

FONT = "Microsoft YaHei, PingFang SC, Noto Sans CJK SC, WenQuanYi Zen Hei, sans-serif"


@dataclass(frozen=True)
class ReportData:
    plan_id: str
    plan_title: str
    period: str
    run_id: str
    seed: dict[str, Any]
    commitment: str
    summary: dict[str, Any]  # summary.json
    fusion_modes: dict[str, dict[str, Any]]  # draw stage: figures under the mode used and the other
    mode: str
    strata: pl.DataFrame  # task_id, department, credit_risk, ratio, count, planned, stratum_size, k, drawn
    exclusions: dict[str, int]
    unassigned: pl.DataFrame  # joint_task_id, name, department, reason_zh, detail
    validation: pl.DataFrame  # department, registry, file, read, accepted, quarantined, reasons
    assign: dict[str, Any]
    seed_shopping: list[dict[str, Any]]  # the attempts of a commitment drawn with several seeds (audit log), else empty
    empty_tasks: list[str] = field(default_factory=list)  # tasks no object was eligible for: they drew nothing
    rules: list[tuple[str, str]] = field(default_factory=list)  # rules_in_force: (rule, how this plan set it)


MODE_WORDS = {"local_first": "本片区优先", "cross_district": "跨片区（所所交叉）", "any": "本部门范围"}
NOT_SET = "未设定 not set"


def _zh(enum: str, code: str) -> str:
    """The Chinese word of an enumeration's code (市级 for city), else the code."""
    from jointdraw.transforms.registry import ENUMS

    return next((w for w, c in ENUMS[enum].items() if c == code and not w.isascii()), code)


def _percent(r: float) -> str:
    return f"{100 * r:.2f}%".replace(".00%", "%")


def rules_in_force(plan: Plan, assign: dict[str, Any], redraws: int) -> list[tuple[str, str]]:
    """The rules this plan ran under, as (规则 rule, 本计划 how it is set) rows for the report: ratios and
    their floors and caps, the policy bands, exclusions and caps, the assign mode per task, the team, the
    experts, the daily cap and the replacement draws since the draw."""
    floors = [t.task_id for t in plan.tasks if any(isinstance(v, ClassRatio) for v in (t.ratio or {}).values())]
    bands = "；".join(f"{c}类 {_percent(b.min)}–{_percent(b.max)}" for c, b in sorted(plan.policy_bands.items()))
    caps = plan.visit_caps
    visit = NOT_SET
    if caps is not None:
        parts = [
            f"总计 {caps.total} 次" if caps.total else "",
            f"同一部门 {caps.per_department} 次" if caps.per_department else "",
        ]
        parts += [f"{_zh('inspection_level', level)} {n} 次" for level, n in caps.per_level.items()]
        visit = "；".join(p for p in parts if p) + (
            f"；不计入 {'、'.join(_zh('inspection_kind', k) for k in caps.exempt_kinds)}" if caps.exempt_kinds else ""
        )
    overrides = {t.task_id: t.assign.mode for t in plan.tasks if t.assign is not None}
    modes = MODE_WORDS[plan.assign.mode] + "".join(
        f"；{task}: {MODE_WORDS[mode]}" for task, mode in sorted(overrides.items())
    )
    return [
        (
            "抽取比例 ratios",
            "按信用风险分类 k = min(N, max(最低户数, min(最高户数, ⌈比例×N⌉)))"
            + (f"；设最低/最高户数的任务 {len(floors)} 项" if floors else ""),
        ),
        ("分类比例区间 policy bands", bands or NOT_SET),
        ("每类必抽 no class at zero", "是" if plan.no_zero_class else "否"),
        ("排除窗口 exclusion window", f"{plan.exclusion_window_days} 天" if plan.exclusion_window_days else NOT_SET),
        (
            "年度抽查上限 yearly caps",
            "；".join(f"{c}类 {n} 次" for c, n in sorted(plan.yearly_caps.items())) or NOT_SET,
        ),
        ("年度检查频次上限 visit caps", visit),
        ("派员方式 assign mode", modes),
        ("检查组 team", f"每部门 {plan.inspectors_per_department} 名执法人员，牵头部门至少 2 名，设组长"),
        ("专家、第三方 experts", f"需专家事项各派 1 名专家或第三方机构（本次 {assign.get('experts_sent', 0):,} 人次）"),
        ("每日上限 daily cap", f"每人每工作日至多 {plan.daily_cap} 户"),
        ("递补 redraws", f"{redraws} 次" if redraws else "无"),
    ]


def strata_met(strata: pl.DataFrame, draws: pl.DataFrame, plan: Plan) -> pl.DataFrame:
    """Every (task, class) stratum: the planned ratio (or the task's count), the same in words with its floor
    and cap (`planned`), eligible N, k, the rows actually drawn — "class ratios met" when drawn = k — and
    the cut-off score (the k-th lowest)."""
    planned = pl.DataFrame(
        [
            {
                "task_id": t.task_id,
                "department": t.department,
                "credit_risk": c,
                "ratio": t.class_ratio(c).ratio if t.ratio is not None else None,
                "count": t.count,
                "planned": class_ratio_words(t.class_ratio(c)) if t.ratio is not None else f"{t.count} 户",
            }
            for t in plan.tasks
            for c in "ABCD"
        ],
        schema={
            "task_id": pl.String,
            "department": pl.String,
            "credit_risk": pl.String,
            "ratio": pl.Float64,
            "count": pl.Int64,
            "planned": pl.String,
        },
    )
    drawn = draws.group_by("task_id", "credit_risk").agg(drawn=pl.len(), cutoff_score=pl.col("score").max())
    return (
        strata.join(drawn, on=["task_id", "credit_risk"], how="left")
        .join(planned, on=["task_id", "credit_risk"])
        .select(
            "task_id",
            "department",
            "credit_risk",
            "ratio",
            "count",
            "planned",
            stratum_size="n",
            k="k",
            drawn=pl.col("drawn").fill_null(0).cast(pl.Int64),
            cutoff_score="cutoff_score",
        )
        .sort("task_id", "credit_risk")
    )


def validation_table(validate_record: dict[str, Any]) -> pl.DataFrame:
    """One row per department file: read, accepted, quarantined and why (the validate stage's record)."""
    return pl.DataFrame(
        [
            {
                "department": f["department"],
                "registry": f["kind"],
                "file": f.get("file") or "",
                "read": f["rows_read"],
                "accepted": f.get("rows_accepted"),
                "quarantined": f.get("rows_quarantined"),
                "reasons": "; ".join(f.get("file_problems", []))
                or " ".join(f"{r}:{n}" for r, n in f.get("quarantined_by_reason", {}).items()),
            }
            for f in validate_record.get("files", [])
        ],
        schema={
            "department": pl.String,
            "registry": pl.String,
            "file": pl.String,
            "read": pl.Int64,
            "accepted": pl.Int64,
            "quarantined": pl.Int64,
            "reasons": pl.String,
        },
    )


def styled(fig: go.Figure, title: str, height: int = 380) -> go.Figure:
    """`fig` in the reports' look: title, CJK font, white template, legend on top."""
    fig.update_layout(
        title=title,
        height=height,
        font={"family": FONT},
        margin={"l": 60, "r": 20, "t": 50, "b": 60},
        template="plotly_white",
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.0, "yanchor": "bottom"},
    )
    return fig


def _by_department_chart(summary: dict[str, Any]) -> go.Figure:
    names = department_names()
    rows = summary["by_department"]
    labels = [f"{names.get(d, d)}" for d in rows]
    fig = go.Figure(
        [
            go.Bar(name="抽取检查对象", x=labels, y=[r["draws"] for r in rows.values()]),
            go.Bar(name="联合检查任务", x=labels, y=[r["joint_tasks"] for r in rows.values()]),
            go.Bar(name="牵头任务", x=labels, y=[r["lead"] for r in rows.values()]),
        ]
    )
    return styled(fig.update_layout(barmode="group"), "各部门抽取与联合检查任务 draws and joint tasks by department")


def _by_district_chart(summary: dict[str, Any]) -> go.Figure:
    districts = dict(reference_table("districts_shenzhen").select("district_code", "name_zh").iter_rows())
    rows = summary["by_district"]
    labels = [districts.get(d, d) for d in rows]
    fig = go.Figure(
        [
            go.Bar(name="抽取检查对象", x=labels, y=[r["draws"] for r in rows.values()]),
            go.Bar(name="联合检查任务", x=labels, y=[r["joint_tasks"] for r in rows.values()]),
        ]
    )
    return styled(fig.update_layout(barmode="group"), "各区抽取与联合检查任务 draws and joint tasks by district")


def _overlap_chart(summary: dict[str, Any]) -> go.Figure:
    names = department_names()
    overlap = summary["department_overlap"]
    codes = sorted(overlap)
    z = [[overlap[a].get(b, 0) for b in codes] for a in codes]
    labels = [names.get(c, c) for c in codes]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=labels,
            text=z,
            texttemplate="%{text}",
            colorscale="Blues",
            hovertemplate="%{y} × %{x}: %{z} 户<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    return styled(fig, "部门重叠矩阵 entities drawn by both departments (diagonal: by the department)", height=560)


def _reduction_chart(modes: dict[str, dict[str, Any]], used: str) -> go.Figure:
    label = {"independent": "独立抽取 independent", "coordinated": "协同抽取 coordinated"}
    order = [used] + [m for m in modes if m != used]
    fig = go.Figure(
        [
            go.Bar(
                name="抽取检查对象",
                x=[label[m] + ("（本次）" if m == used else "") for m in order],
                y=[modes[m]["drawn_total"] for m in order],
            ),
            go.Bar(
                name="联合检查任务（上门次数）",
                x=[label[m] + ("（本次）" if m == used else "") for m in order],
                y=[modes[m]["joint_tasks"] for m in order],
                text=[f"减少 {figure_text('reduction_rate', modes[m]['reduction_rate'])}" for m in order],
                textposition="outside",
            ),
        ]
    )
    return styled(
        fig.update_layout(barmode="group"), "融合减少的上门检查 visits saved by fusion, under both draw modes"
    )


def chart_html(fig: go.Figure, div_id: str) -> str:
    """`fig` as a <div> for a report page (plotly.js is inlined once per page)."""
    return fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True, "displayModeBar": False},
    )


def warm_up_charts() -> None:
    """Loads what the report's first charts load (plotly's bar and heatmap classes and their validators, 200
    modules, and its white template: 0.4–0.5 s of publish otherwise). The plan flow calls it on a thread while the
    draw runs, when its one thread waits for DuckDB (flows/plan_run.py)."""
    chart_html(styled(go.Figure([go.Bar(x=["-"], y=[0]), go.Heatmap(z=[[0]])]), "-"), "warm-up")


def render_report(data: ReportData) -> str:
    """The public report as one HTML page (plotly.js inline): figures and counts, no list of entities
    (the unassigned joint tasks are counted by reason; their list is the regulator's), with an empty
    seal slot (transforms/documents/seal.py) filled once the manifest is final."""
    figures = [(FIGURE_LABELS[k].split(" ")[0], figure_text(k, data.summary[k]), k) for k in FIGURE_LABELS]
    charts = {
        "by_department": chart_html(_by_department_chart(data.summary), "chart-by-department"),
        "by_district": chart_html(_by_district_chart(data.summary), "chart-by-district"),
        "overlap": chart_html(_overlap_chart(data.summary), "chart-overlap"),
        "reduction": chart_html(_reduction_chart(data.fusion_modes, data.mode), "chart-reduction"),
    }
    names = department_names()
    return page_template("report.html.j2").render(
        data=data,
        figures=figures,
        charts=charts,
        plotly_js=get_plotlyjs(),
        department_names=names,
        strata=data.strata.to_dicts(),
        unassigned_total=data.unassigned.height,
        seal=seal_slot(),
        unassigned_by_reason=data.unassigned.group_by("reason_zh")
        .len()
        .sort("len", "reason_zh", descending=[True, False])
        .rows(),
        validation=data.validation.to_dicts(),
        check_steps=CHECK_STEPS_ZH,
        snippet=score_snippet(data.seed["seed"]),
    )
