"""The warehouse (SPEC §4): one DuckDB file, OUT/warehouse.duckdb, beside OUT/runs/, that keeps
what every published run did, so a later run can take it into account and any run can be
looked up again. Written by the publish stage (`record_run`), read by commit and assign.

    runs(run_id, plan_id, period_start, period_end, commitment, seed, recorded_at)
    snapshots(run_id, plan_id, entity_key, uscc, name, entity_type, district_code,
              industry_code, status, credit_risk)           the directory as drawn
    draws(run_id, plan_id, task_id, department, uscc, credit_risk, score_key, score, drawn_on)
    joint_tasks(run_id, plan_id, joint_task_id, uscc, departments, lead_department,
                task_ids, item_ids, planned_date)
    visits(uscc, plan_id, run_id, joint_task_id, inspector_id, planned_date, inspected_on)
    results(...)                                            from issue 9 on
    history (a view): uscc, plan_id, run_id, task_id, drawn_on, inspected_on
        what the draw's exclusions read: one row per earlier draw

A plan has one set of rows: publishing it again replaces its own rows in one transaction.
Opening the file waits (with backoff) while another process holds DuckDB's lock on it.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import duckdb
import polars as pl

WAREHOUSE = "warehouse.duckdb"
HISTORY_SCHEMA = {"uscc": pl.String, "plan_id": pl.String, "run_id": pl.String, "task_id": pl.String,
                  "drawn_on": pl.Date, "inspected_on": pl.Date}
VISITS_SCHEMA = {"uscc": pl.String, "plan_id": pl.String, "run_id": pl.String, "joint_task_id": pl.String,
                 "inspector_id": pl.String, "planned_date": pl.Date, "inspected_on": pl.Date}
TABLES = {"history": HISTORY_SCHEMA, "visits": VISITS_SCHEMA}
LOCK_WAITS = (0.5, 1, 2, 4, 8)  # seconds between attempts to open a file another process holds

SCHEMA_SQL = """
create table if not exists runs (run_id varchar, plan_id varchar, period_start date, period_end date,
                                 commitment varchar, seed varchar, recorded_at timestamptz);
create table if not exists snapshots (run_id varchar, plan_id varchar, entity_key varchar, uscc varchar, name varchar,
                                      entity_type varchar, district_code varchar, industry_code varchar, status varchar,
                                      credit_risk varchar);
create table if not exists draws (run_id varchar, plan_id varchar, task_id varchar, department varchar, uscc varchar,
                                  credit_risk varchar, score_key varchar, score ubigint, drawn_on date);
create table if not exists joint_tasks (run_id varchar, plan_id varchar, joint_task_id varchar, uscc varchar,
                                        departments varchar[], lead_department varchar, task_ids varchar[],
                                        item_ids varchar[], planned_date date);
create table if not exists visits (uscc varchar, plan_id varchar, run_id varchar, joint_task_id varchar,
                                   inspector_id varchar, planned_date date, inspected_on date);
create or replace view history as
    select d.uscc, d.plan_id, d.run_id, d.task_id, d.drawn_on, max(v.inspected_on) as inspected_on
    from draws d left join visits v on v.plan_id = d.plan_id and v.uscc = d.uscc
    group by all;
"""
PLAN_TABLES = ("runs", "snapshots", "draws", "joint_tasks", "visits")


class WarehouseBusy(RuntimeError):
    """Another process kept the warehouse file locked through every wait."""


def warehouse_path(out_root: Path) -> Path:
    return Path(out_root) / WAREHOUSE


def connect_warehouse(out_root: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the warehouse, created with its schema when missing; waits with backoff
    while another process holds the file's lock (the only failure a retry can mend)."""
    path = warehouse_path(out_root)
    for wait in (*LOCK_WAITS, None):
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            if not read_only:
                con.execute(SCHEMA_SQL)
            return con
        except duckdb.IOException as e:
            if "lock" not in str(e).lower() or wait is None:
                raise WarehouseBusy(f"warehouse {path} is locked by another process ({e}); wait for it to finish or stop it, "
                                    f"then rerun this stage") from e
            time.sleep(wait)
    raise AssertionError("unreachable")


def read_warehouse_table(out_root: Path, table: str) -> pl.DataFrame:
    """One warehouse table (or view) with its documented columns, or no rows when the warehouse
    or the table does not exist yet (the first run of a city)."""
    schema = TABLES[table]
    if not warehouse_path(out_root).exists():
        return pl.DataFrame(schema=schema)
    con = connect_warehouse(out_root, read_only=True)
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


def record_run(out_root: Path, *, run_id: str, plan_id: str, period: tuple[dt.date, dt.date], commitment: str, seed: str,
               directory: Path, draws: Path, joint_tasks: Path, team: Path) -> dict[str, int]:
    """Replaces the plan's rows in every table with this run's, in one transaction; returns the rows written per table."""
    con = connect_warehouse(out_root)
    p = {"run": run_id, "plan": plan_id}
    try:
        con.execute("begin transaction")
        for table in PLAN_TABLES:
            con.execute(f"delete from {table} where plan_id = $plan", {"plan": plan_id})
        con.execute("insert into runs values ($run, $plan, $start, $end, $commitment, $seed, now())",
                    {**p, "start": period[0], "end": period[1], "commitment": commitment, "seed": seed})
        con.execute("""insert into snapshots select $run, $plan, entity_key, uscc, name, entity_type, district_code, industry_code,
                       status, credit_risk from read_parquet($path)""", {**p, "path": str(directory)})
        # a draw counts from its plan period's start (what the exclusion window measures from)
        con.execute("""insert into draws select $run, $plan, task_id, department, uscc, credit_risk, score_key, score, $start
                       from read_parquet($path)""", {**p, "path": str(draws), "start": period[0]})
        con.execute("""insert into joint_tasks select $run, $plan, joint_task_id, uscc, departments, lead_department, task_ids,
                       item_ids, planned_date from read_parquet($path)""", {**p, "path": str(joint_tasks)})
        con.execute("""insert into visits select j.uscc, $plan, $run, t.joint_task_id, t.inspector_id, j.planned_date, null
                       from read_parquet($team) t join read_parquet($joint) j using (joint_task_id)""",
                    {**p, "team": str(team), "joint": str(joint_tasks)})
        counts = {t: con.execute(f"select count(*) from {t} where plan_id = $plan", {"plan": plan_id}).fetchall()[0][0]
                  for t in PLAN_TABLES}
        con.execute("commit")
        return counts
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.close()


def entity_history(out_root: Path, uscc: str) -> dict[str, pl.DataFrame]:
    """One entity across every recorded run: its draws, joint tasks, teams (and, from issue 9,
    results), oldest first."""
    if not warehouse_path(out_root).exists():
        return {}
    con = connect_warehouse(out_root, read_only=True)
    p = {"u": uscc}
    try:
        return {
            "draws": con.sql("""select d.plan_id, d.run_id, d.task_id, d.department, d.credit_risk, d.drawn_on, d.score_key
                                from draws d where uscc = $u order by drawn_on, plan_id, task_id""", params=p).pl(),
            "joint_tasks": con.sql("""select plan_id, run_id, joint_task_id, departments, lead_department, item_ids, planned_date
                                      from joint_tasks where uscc = $u order by planned_date, plan_id""", params=p).pl(),
            "visits": con.sql("""select plan_id, run_id, joint_task_id, list(inspector_id order by inspector_id) as inspector_ids,
                                 first(planned_date) as planned_date, max(inspected_on) as inspected_on
                                 from visits where uscc = $u group by all order by planned_date, plan_id""", params=p).pl(),
        }
    finally:
        con.close()
