"""The yearly figures flow (年度考核指标, issue 22): the warehouse's year in, OUT/kpi/<year>/ out.

    kpi_run(year=None, out, as_of=None, limit_working_days=…)   (year: the previous year in China)

Reads the warehouse (warehouse.kpi_tables), computes every figure (transforms/kpi.py), and writes
kpi.parquet, kpi.csv, kpi.xlsx and kpi.html (transforms/documents/kpi_report.py) into a staging
folder that replaces OUT/kpi/<year>/ in one step. Deployment `kpi-yearly` (prefect.yaml) runs it
on 15 January for the year before.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.states import Failed
from pydantic import BaseModel

from jointdraw.flows.errors import USER_ERRORS, StageFailed
from jointdraw.transforms import settings
from jointdraw.transforms.documents.kpi_report import write_kpi_files
from jointdraw.transforms.kpi import ALL_TYPES, MISSED, KpiInputs, kpi_figures, kpi_for_people
from jointdraw.transforms.reference import department_names
from jointdraw.transforms.storage.bundle import folder_bytes, publish_atomically
from jointdraw.transforms.storage.layout import OutputRoot
from jointdraw.transforms.storage.runfolder import file_record
from jointdraw.transforms.storage.warehouse import kpi_tables

CHINA = dt.timezone(dt.timedelta(hours=8))


class KpiRecord(BaseModel):
    """What a yearly figures run wrote: the folder, each file's path, SHA-256 and rows, the year's plans."""

    year: int
    as_of: dt.date
    limit_working_days: int
    folder: str
    page: str
    plans: list[str]
    rows: int
    missed: int  # figures under their target
    files: list[dict[str, Any]]


def figures_day(year: int | None, as_of: str | None) -> tuple[int, dt.date]:
    """The year of the figures (given, else the year before today in China) and the day results are
    counted up to (given as YYYY-MM-DD, else today in China)."""
    today = dt.datetime.now(CHINA).date()
    return (year if year is not None else today.year - 1), (dt.date.fromisoformat(as_of) if as_of else today)


def write_kpi(year: int, out: Path, as_of: dt.date, limit: int) -> KpiRecord:
    """The year's figures from the warehouse under `out`, written whole to OUT/kpi/<year>/."""
    try:
        tables = kpi_tables(out, year)
    except LookupError as e:
        raise StageFailed(f"kpi: {e}") from None
    figures = kpi_figures(KpiInputs(**tables), year, as_of, limit)
    plans = tables["runs"]["plan_id"].to_list()
    target = OutputRoot(out).kpi(year)

    def fill(staging: Path) -> list[Path]:
        return write_kpi_files(
            staging, figures, year=year, as_of=as_of, limit=limit, plans=plans, department_names=department_names()
        )

    written = publish_atomically(target, out, fill, lambda: folder_bytes(target) or 20 << 20, "kpi")
    return KpiRecord(
        year=year,
        as_of=as_of,
        limit_working_days=limit,
        folder=str(target),
        page=str(target / "kpi.html"),
        plans=plans,
        rows=figures.height,
        missed=figures.filter(pl.col("status") == MISSED).height,
        files=[file_record(target / p.name, figures.height if p.suffix != ".html" else None, out) for p in written],
    )


@flow(name="kpi-run", flow_run_name="kpi {year}", log_prints=False, validate_parameters=True)
def kpi_run(
    out: str,
    year: int | None = None,
    as_of: str | None = None,
    limit_working_days: int = settings.RESULTS_LIMIT_WORKING_DAYS,
) -> dict[str, Any]:
    """The yearly figures of `year` (default: the year before today in China) from OUT/warehouse.duckdb,
    written to OUT/kpi/<year>/. `as_of` (YYYY-MM-DD, default today in China): the day results are counted
    up to (a result whose deadline has not come is not yet due)."""
    year, day = figures_day(year, as_of)
    try:
        record = write_kpi(year, Path(os.path.abspath(out)), day, limit_working_days)
    except USER_ERRORS as e:
        get_run_logger().error("%s", e, extra={"user_facing": True})
        return Failed(message=str(e), data=e)
    figures = pl.read_parquet(Path(record.folder) / "kpi.parquet")
    city = kpi_for_people(figures.filter(pl.col("department").is_null(), pl.col("entity_type") == ALL_TYPES), {})
    create_table_artifact(
        key="kpi-city", table=city.drop("department_code").to_dicts(), description=f"{year} 年度考核指标（全市）"
    )
    create_link_artifact(key="kpi-page", link=Path(record.page).resolve().as_uri(), description=f"{year} kpi.html")
    get_run_logger().info(
        "kpi %s: %d figures (plans: %s) → %s (%d under target)",
        year,
        record.rows,
        ", ".join(record.plans) or "none",
        record.folder,
        record.missed,
    )
    return record.model_dump(mode="json")
