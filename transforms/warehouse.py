"""The warehouse (SPEC §4): one DuckDB file, OUT/warehouse.duckdb, beside OUT/runs/, that keeps
what earlier runs did so a later run can take it into account. Read here; written by the
stage that records a run in it.

    history(uscc, plan_id, run_id, task_id, drawn_on, inspected_on)
        one row per draw of an earlier run; drawn_on = its plan period's start,
        inspected_on from results (may be null) — the draw's exclusions read it
    visits(uscc, plan_id, run_id, joint_task_id, inspector_id, planned_date, inspected_on)
        one row per (joint task, inspector) of an earlier run — assign reads it so the
        inspector of an entity's previous inspection is not sent again (回避)
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

WAREHOUSE = "warehouse.duckdb"
HISTORY_SCHEMA = {"uscc": pl.String, "plan_id": pl.String, "run_id": pl.String, "task_id": pl.String,
                  "drawn_on": pl.Date, "inspected_on": pl.Date}
VISITS_SCHEMA = {"uscc": pl.String, "plan_id": pl.String, "run_id": pl.String, "joint_task_id": pl.String,
                 "inspector_id": pl.String, "planned_date": pl.Date, "inspected_on": pl.Date}
TABLES = {"history": HISTORY_SCHEMA, "visits": VISITS_SCHEMA}


def warehouse_path(out_root: Path) -> Path:
    return Path(out_root) / WAREHOUSE


def read_warehouse_table(out_root: Path, table: str) -> pl.DataFrame:
    """One warehouse table with its documented columns, or no rows when the warehouse or the
    table does not exist yet (the first run of a city)."""
    schema = TABLES[table]
    path = warehouse_path(out_root)
    if not path.exists():
        return pl.DataFrame(schema=schema)
    con = duckdb.connect(str(path), read_only=True)
    try:
        exists = con.sql("select count(*) from information_schema.tables where table_name = $t", params={"t": table}).fetchall()[0][0]
        if not exists:
            return pl.DataFrame(schema=schema)
        return con.sql(f"select {', '.join(schema)} from {table}").pl().cast(schema)
    finally:
        con.close()


def read_history(out_root: Path) -> pl.DataFrame:
    return read_warehouse_table(out_root, "history")


def previous_inspectors(visits: pl.DataFrame, plan_id: str) -> pl.DataFrame:
    """(uscc, inspector_id): the team of each entity's most recent visit in another plan
    (by inspection date, else planned date; ties by run id) — who must not go again."""
    others = visits.filter(pl.col("plan_id") != plan_id).with_columns(on=pl.coalesce("inspected_on", "planned_date"))
    last = (others.filter(pl.col("on") == pl.col("on").max().over("uscc"))
            .filter(pl.col("run_id") == pl.col("run_id").max().over("uscc")))
    return last.select("uscc", "inspector_id").unique().sort("uscc", "inspector_id")
