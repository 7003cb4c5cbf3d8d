"""The yearly figures' files (OUT/kpi/<year>/, jointdraw kpi):

kpi.parquet          the figures (transforms/kpi.py KPI_SCHEMA: English names, shares as numbers)
kpi.csv / kpi.xlsx   the same for people: Chinese headers (people_headers.KPI), shares as percentages
kpi.html             the page: the city's figures with their targets, each figure per department as a
                     chart with its target line, the coverage by entity type, every row as a table,
                     and each figure's definition; one HTML file, plotly.js inline (opens offline)
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import plotly.graph_objects as go
import polars as pl
from plotly.offline import get_plotlyjs

from jointdraw.transforms.documents import people_headers
from jointdraw.transforms.documents.report import chart_html, styled
from jointdraw.transforms.kpi import ALL_TYPES, ENTITY_TYPE_NAMES, KPIS, MISSED, kpi_for_people, percent_text
from jointdraw.transforms.storage.packaged import page_template
from jointdraw.transforms.storage.runfolder import atomic_path, write_parquet
from jointdraw.transforms.storage.xlsxout import write_people_tables

KPI_FILES = ("kpi.parquet", "kpi.csv", "kpi.xlsx", "kpi.html")

MISSED_COLOUR, DEFAULT_COLOUR = "#c53030", "#1d4e89"


def _by_department_chart(rows: pl.DataFrame, kpi: str, names: dict[str, str]) -> go.Figure:
    """One figure per department (and the city) as bars; the target as a dashed line; missed in red."""
    labels = [names.get(d, d) if d else "全市" for d in rows["department"]]
    values = [None if v is None else round(100 * v, 2) for v in rows["value"]]
    colours = [MISSED_COLOUR if s == MISSED else DEFAULT_COLOUR for s in rows["status"]]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=values,
            marker_color=colours,
            text=[percent_text(v) for v in rows["value"]],
            customdata=list(zip(rows["numerator"], rows["denominator"], strict=True)),
            hovertemplate="%{x}: %{text}（%{customdata[0]:,} / %{customdata[1]:,}）<extra></extra>",
        )
    )
    target = rows["target"].drop_nulls()
    if target.len():
        fig.add_hline(
            y=100 * target[0],
            line_dash="dash",
            line_color=MISSED_COLOUR,
            annotation_text=f"目标 {percent_text(target[0])}",
        )
    fig.update_yaxes(title="%", rangemode="tozero")
    return styled(fig, f"{KPIS[kpi].name}（各部门）", height=360)


def _coverage_by_type_chart(rows: pl.DataFrame) -> go.Figure:
    city = rows.filter(pl.col("department").is_null() & (pl.col("entity_type") != ALL_TYPES))
    fig = go.Figure(
        go.Bar(
            x=[ENTITY_TYPE_NAMES.get(t, t) for t in city["entity_type"]],
            y=[None if v is None else round(100 * v, 2) for v in city["value"]],
            text=[percent_text(v) for v in city["value"]],
            customdata=list(zip(city["numerator"], city["denominator"], strict=True)),
            hovertemplate="%{x}: %{text}（%{customdata[0]:,} / %{customdata[1]:,}）<extra></extra>",
            marker_color=DEFAULT_COLOUR,
        )
    )
    fig.update_yaxes(title="%", rangemode="tozero")
    return styled(fig, "检查对象覆盖率（全市，按主体类型）", height=340)


def render_kpi_page(
    *,
    figures: pl.DataFrame,
    people: pl.DataFrame,
    year: int,
    as_of: dt.date,
    limit: int,
    plans: list[str],
    department_names: dict[str, str],
) -> str:
    """kpi.html: `figures` (transforms/kpi.py KPI_SCHEMA) and the same rows for people (`people`, with the
    headers of people_headers.KPI), for the year's `plans`."""
    city = figures.filter(pl.col("department").is_null() & (pl.col("entity_type") == ALL_TYPES))
    headline = [
        {
            "kpi": r["kpi"],
            "name": KPIS[r["kpi"]].name,
            "value": percent_text(r["value"]) or "—",
            "counts": f"{r['numerator']:,} / {r['denominator']:,}",
            "target": percent_text(r["target"]),
            "status": r["status"],
        }
        for r in city.iter_rows(named=True)
    ]
    overall = figures.filter(pl.col("entity_type") == ALL_TYPES)
    charts = {
        kpi: chart_html(
            _by_department_chart(overall.filter(pl.col("kpi") == kpi), kpi, department_names), f"chart-{kpi}"
        )
        for kpi in KPIS
        if kpi != "reduction_rate"
    }
    charts["coverage_by_type"] = chart_html(
        _coverage_by_type_chart(figures.filter(pl.col("kpi") == "coverage")), "chart-coverage-by-type"
    )
    return page_template("kpi_report.html.j2").render(
        year=year,
        as_of=as_of.isoformat(),
        limit=limit,
        plans=plans,
        headline=headline,
        missed=overall.filter(pl.col("status") == MISSED).height,
        definitions=[(k, d) for k, d in KPIS.items()],
        plotly_js=get_plotlyjs(),
        charts=charts,
        headers=list(people_headers.KPI.values()),
        rows=people.select(list(people_headers.KPI)).rows(),
        missed_word=MISSED,
    )


def write_kpi_files(
    folder: Path,
    figures: pl.DataFrame,
    *,
    year: int,
    as_of: dt.date,
    limit: int,
    plans: list[str],
    department_names: dict[str, str],
) -> list[Path]:
    """Writes KPI_FILES into `folder` (the staging folder of OUT/kpi/<year>/); returns their paths."""
    people = kpi_for_people(figures, department_names)
    write_parquet(figures, folder / "kpi.parquet")
    write_people_tables(people, folder / "kpi.csv", people_headers.KPI, "年度考核指标")
    html = render_kpi_page(
        figures=figures,
        people=people,
        year=year,
        as_of=as_of,
        limit=limit,
        plans=plans,
        department_names=department_names,
    )
    with atomic_path(folder / "kpi.html") as tmp:
        tmp.write_text(html, encoding="utf-8")
    return [folder / name for name in KPI_FILES]
