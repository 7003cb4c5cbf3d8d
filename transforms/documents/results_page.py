"""The results page (results/report.html): progress and outcomes by department and item, the
share of problems found, and the results published late. One HTML file, plotly.js inline."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.offline import get_plotlyjs

from jointdraw.transforms.documents.report import chart_html, styled
from jointdraw.transforms.reference import code_names, department_names, result_codes_in
from jointdraw.transforms.results import PROGRESS_HEADERS
from jointdraw.transforms.storage.packaged import page_template


def results_summary(results: pl.DataFrame, progress: pl.DataFrame, share: float) -> dict[str, Any]:
    """The figures of summary.json and the report's headline."""
    return {
        "items_due": int(progress["items_due"].sum()),
        "answered": int(progress["answered"].sum()),
        "outstanding": int(progress["outstanding"].sum()),
        "answered_late": int(progress["answered_late"].sum()),
        "outstanding_overdue": int(progress["outstanding_overdue"].sum()),
        "problem_share": round(share, 6),
        "by_code": dict(
            sorted(results.select(pl.col("result_codes").explode()).group_by("result_codes").len().iter_rows())
        ),
        "by_department": {
            r["department"]: {k: v for k, v in r.items() if k != "department"} for r in progress.to_dicts()
        },
    }


def problems_by_item(results: pl.DataFrame, item_names: dict[str, str]) -> pl.DataFrame:
    """Per (item, department): answered, problems found, share; highest share first."""
    found = pl.col("result_codes").list.eval(pl.element().is_in(result_codes_in("problem"))).list.any()
    return (
        results.group_by("item_id", "department")
        .agg(answered=pl.len(), problems=found.sum())
        .with_columns(
            share=pl.col("problems") / pl.col("answered"),
            item=pl.col("item_id").replace_strict(item_names, default=pl.col("item_id")),
            department=pl.col("department").replace_strict(department_names(), default=pl.col("department")),
        )
        .sort(["share", "answered", "item_id"], descending=[True, True, False])
    )


def _progress_chart(progress: pl.DataFrame) -> go.Figure:
    names = department_names()
    labels = [names.get(d, d) for d in progress["department"]]
    fig = go.Figure(
        [
            go.Bar(name="已录入 answered", x=labels, y=progress["answered"].to_list()),
            go.Bar(name="未录入 outstanding", x=labels, y=progress["outstanding"].to_list()),
            go.Bar(name="逾期公示 published late", x=labels, y=progress["answered_late"].to_list()),
        ]
    )
    return styled(fig.update_layout(barmode="group"), "各部门录入进度 results entered by department")


def _outcomes_chart(summary: dict[str, Any]) -> go.Figure:
    names = code_names("result_codes")
    codes = list(summary["by_code"])
    fig = go.Figure(go.Bar(x=[names.get(c, c) for c in codes], y=[summary["by_code"][c] for c in codes]))
    return styled(fig, "检查结果分布 results by code (an item may have several)", height=460)


def render_results_report(
    *,
    plan_id: str,
    run_id: str,
    as_of: str,
    limit: int,
    calendar: str,
    summary: dict[str, Any],
    progress: pl.DataFrame,
    by_item: pl.DataFrame,
    overdue: pl.DataFrame,
    validation: pl.DataFrame,
    follow_up: pl.DataFrame,
    follow_up_limit: int,
) -> str:
    figures = [
        ("应录入事项 items due", f"{summary['items_due']:,}"),
        ("已录入 answered", f"{summary['answered']:,}"),
        ("未录入 outstanding", f"{summary['outstanding']:,}"),
        ("发现问题比例 problems found", f"{summary['problem_share']:.1%}"),
        ("逾期公示 published late", f"{summary['answered_late']:,}"),
        ("逾期未录入 overdue, not entered", f"{summary['outstanding_overdue']:,}"),
        ("待审核 pending review", f"{summary.get('pending_review', 0):,}"),
        ("审核退回 returned", f"{summary.get('returned', 0):,}"),
        ("逾期未完结处置 follow-up overdue", f"{summary.get('follow_up_overdue', 0):,}"),
        ("更正 corrections", f"{summary.get('corrections', 0):,}"),
    ]
    names = department_names()
    rows = progress.with_columns(
        department_name=pl.col("department").replace_strict(names, default=pl.col("department"))
    )
    return page_template("results_report.html.j2").render(
        plan_id=plan_id,
        run_id=run_id,
        as_of=as_of,
        limit=limit,
        calendar=calendar,
        figures=figures,
        plotly_js=get_plotlyjs(),
        charts={
            "by_department": chart_html(_progress_chart(progress), "chart-progress"),
            "outcomes": chart_html(_outcomes_chart(summary), "chart-outcomes"),
        },
        progress_headers=list(PROGRESS_HEADERS.values()),
        progress=rows.select(list(PROGRESS_HEADERS)).rows(),
        by_item=by_item.head(30).to_dicts(),
        overdue=overdue.head(500).to_dicts(),
        overdue_total=overdue.height,
        follow_up=follow_up.head(500).to_dicts(),
        follow_up_total=follow_up.height,
        follow_up_limit=follow_up_limit,
        validation=validation.to_dicts(),
    )
