"""The warehouse (SPEC §4): one DuckDB file, OUT/warehouse.duckdb, beside OUT/runs/, that keeps
what every published run did, so a later run can take it into account and any run can be
looked up again. Written by the publish stage (`record_run`), read by commit and assign.

    runs(run_id, plan_id, period_start, period_end, commitment, seed, recorded_at, kpi_targets, directory,
         public_directory)
        kpi_targets: the plan's `kpi_targets` as JSON text, or null (transforms/kpi.py)
        directory: the key of the directory the run drew from, in `directories`
        public_directory: the reuse key (transforms/storage/reuse.py) of the bundle's audit/directory.parquet
    directories(directory, entity_key, name, entity_type, district_code, industry_code, status, credit_risk,
                departments)                                each directory drawn from, once (see below; the USCC is
                                                            the entity key but for ORG:…/REG:… keys: the views give it)
    directory_bases(directory, base), directory_hidden(directory, entity_key)
        a directory merged again from another (its base) is stored as the rows of its entities merged again: the
        base's rows of those entities are hidden, the base's others are its too
    directory_rows (a view): every directory's rows, the base's included
    snapshots (a view): run_id, plan_id, entity_key, uscc, name, entity_type, district_code,
              industry_code, status, credit_risk, departments   the directory as each plan drew it, and who lists
                                                            each entity: `runs` joined with `directories`
    items(run_id, plan_id, item_id, department, name, category)
                                                            the item lists (抽查事项清单) the plan was drawn under
    draws(run_id, plan_id, task_id, department, uscc, credit_risk, score_key, score, drawn_on)
    joint_tasks(run_id, plan_id, joint_task_id, uscc, departments, lead_department,
                task_ids, item_ids, planned_date)
    task_items(run_id, plan_id, joint_task_id, uscc, department, item_id, planned_date)
                                                            what each department must answer
    teams(run_id, plan_id, joint_task_id, department, inspector_id)      who was sent
    visits(uscc, plan_id, run_id, joint_task_id, inspector_id, planned_date, inspected_on)
        who went: the team as sent, replaced by the inspectors present once results arrive
    results(plan_id, results_run_id, joint_task_id, uscc, department, item_id, inspection_date,
            inspectors, method, result_codes, follow_up, findings, substitution_reason,
            first_published_on, deadline, overdue, review_state, reviewer, review_note,
            follow_up_completed_on, follow_up_deadline, follow_up_overdue, entity_type, public_until,
            on_notice)                                      written by the results flow (and a correction)
    corrections(correction_id, plan_id, corrected_at, corrected_by, source, action, joint_task_id,
            department, item_id, reason, changes, old_row, new_row)   every correction of a result
    history (a view): uscc, plan_id, run_id, task_id, drawn_on, inspected_on
        what the draw's exclusions read: one row per earlier draw

A plan has one set of rows: publishing it again replaces its own rows in one transaction.
A directory is kept once however many plans drew from it (a quarterly plan whose registries did not
change draws from the annual plan's): its key is the SHA-256 of its Parquet files' SHA-256s, and a
directory no plan's run names any more is deleted in the transaction that stopped naming it (unless a directory a
run names is stored against it). A quarterly plan whose directory was merged again from the annual plan's (one
department's objects file changed: flows/merge.py) stores its entities merged again, some thousand rows, instead of
the whole directory again (5.8M rows at 8M objects).
(A warehouse written before, with `snapshots` as a table, has its rows moved into `directories`.)
Opening the file waits (with backoff) while another process holds DuckDB's lock on it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from jointdraw.transforms.audit import next_entry, operator
from jointdraw.transforms.merge import USCC_OF_ENTITY_KEY
from jointdraw.transforms.storage.layout import OutputRoot
from jointdraw.transforms.storage.runfolder import ParquetFiles, parquet_paths, sha256_file

HISTORY_SCHEMA = {
    "uscc": pl.String,
    "plan_id": pl.String,
    "run_id": pl.String,
    "task_id": pl.String,
    "drawn_on": pl.Date,
    "inspected_on": pl.Date,
}
VISITS_SCHEMA = {
    "uscc": pl.String,
    "plan_id": pl.String,
    "run_id": pl.String,
    "joint_task_id": pl.String,
    "inspector_id": pl.String,
    "planned_date": pl.Date,
    "inspected_on": pl.Date,
}
RESULTS_SCHEMA = {
    "uscc": pl.String,
    "plan_id": pl.String,
    "results_run_id": pl.String,
    "joint_task_id": pl.String,
    "department": pl.String,
    "item_id": pl.String,
    "inspection_date": pl.Date,
    "result_codes": pl.List(pl.String),
    "first_published_on": pl.Date,
}
TASK_ITEMS_SCHEMA = {
    "joint_task_id": pl.String,
    "uscc": pl.String,
    "department": pl.String,
    "item_id": pl.String,
    "planned_date": pl.Date,
}
TEAMS_SCHEMA = {"joint_task_id": pl.String, "department": pl.String, "inspector_id": pl.String}
TABLES = {"history": HISTORY_SCHEMA, "visits": VISITS_SCHEMA, "results": RESULTS_SCHEMA}
LOCK_WAITS = (0.5, 1, 2, 4, 8)  # seconds between attempts to open a file another process holds

SCHEMA_SQL = """
create table if not exists runs (run_id varchar, plan_id varchar, period_start date, period_end date,
                                 commitment varchar, seed varchar, recorded_at timestamptz);
create table if not exists draws (run_id varchar, plan_id varchar, task_id varchar, department varchar, uscc varchar,
                                  credit_risk varchar, score_key varchar, score ubigint, drawn_on date);
create table if not exists joint_tasks (run_id varchar, plan_id varchar, joint_task_id varchar, uscc varchar,
                                        departments varchar[], lead_department varchar, task_ids varchar[],
                                        item_ids varchar[], planned_date date);
create table if not exists visits (uscc varchar, plan_id varchar, run_id varchar, joint_task_id varchar,
                                   inspector_id varchar, planned_date date, inspected_on date);
create table if not exists task_items (run_id varchar, plan_id varchar, joint_task_id varchar, uscc varchar,
                                       department varchar,
                                       item_id varchar, planned_date date);
create table if not exists teams (run_id varchar, plan_id varchar, joint_task_id varchar, department varchar,
                                  inspector_id varchar);
create table if not exists results (plan_id varchar, results_run_id varchar, joint_task_id varchar, uscc varchar,
                                    department varchar, item_id varchar, inspection_date date, inspectors varchar[],
                                    method varchar, result_codes varchar[], follow_up varchar, findings varchar,
                                    substitution_reason varchar, first_published_on date, deadline date,
                                    overdue boolean);
create table if not exists audit_log (plan_id varchar, seq integer, time varchar, run_id varchar, commitment varchar,
                                      seed varchar, seed_sources varchar, draw_digest varchar, operator varchar,
                                      prev_hash varchar, entry_hash varchar);
alter table audit_log add column if not exists event varchar;  -- seal entries (issue 18): publish | results
alter table audit_log add column if not exists seal varchar;
alter table audit_log add column if not exists redraw varchar;  -- redraw entries (issue 21): details as JSON
-- the yearly figures (issue 22, transforms/kpi.py): who lists each entity, the item lists, the plan's targets, and
-- when a problem's follow-up was completed (处置完结日期; null: not completed). Old warehouses gain the columns empty.
alter table runs add column if not exists kpi_targets varchar;
alter table results add column if not exists follow_up_completed_on date;
create table if not exists items (run_id varchar, plan_id varchar, item_id varchar, department varchar,
                                  name varchar, category varchar);
-- issue 22: review before publication, the follow-up, the public period
alter table results add column if not exists review_state varchar;
alter table results add column if not exists reviewer varchar;
alter table results add column if not exists review_note varchar;
alter table results add column if not exists follow_up_deadline date;
alter table results add column if not exists follow_up_overdue boolean;
alter table results add column if not exists entity_type varchar;
alter table results add column if not exists public_until date;
alter table results add column if not exists on_notice boolean;
create table if not exists corrections (correction_id bigint, plan_id varchar, corrected_at varchar,
                                        corrected_by varchar, source varchar, action varchar, joint_task_id varchar,
                                        department varchar, item_id varchar, reason varchar, changes varchar,
                                        old_row varchar, new_row varchar);
alter table runs add column if not exists directory varchar;
alter table runs add column if not exists public_directory varchar;
create table if not exists directories (directory varchar, entity_key varchar, name varchar,
                                        entity_type varchar, district_code varchar, industry_code varchar,
                                        status varchar, credit_risk varchar, departments varchar[]);
-- the USCC is the entity key, but for an entity without one (the views give it): a warehouse written before kept it
alter table directories drop column if exists uscc;
create table if not exists directory_bases (directory varchar, base varchar);
create table if not exists directory_hidden (directory varchar, entity_key varchar);
create or replace view history as
    select d.uscc, d.plan_id, d.run_id, d.task_id, d.drawn_on, max(v.inspected_on) as inspected_on
    from draws d left join visits v on v.plan_id = d.plan_id and v.uscc = d.uscc
    group by all;
"""
# every directory's rows: its own, and for a directory stored as the rows that differ from another (its base),
# the base's other rows
DIRECTORY_ROWS_VIEW = f"""create or replace view directory_rows as
    with stored as (
        select * from directories
        union all by name
        select b.directory, d.* exclude (directory)
        from directory_bases b
        join directories d on d.directory = b.base
        anti join directory_hidden h on h.directory = b.directory and h.entity_key = d.entity_key
    )
    select directory, entity_key, {USCC_OF_ENTITY_KEY} as uscc, * exclude (directory, entity_key) from stored"""
# the snapshot of the directory, as the tables before it had it
SNAPSHOTS_VIEW = """create or replace view snapshots as
    select r.run_id, r.plan_id, d.entity_key, d.uscc, d.name, d.entity_type, d.district_code, d.industry_code,
           d.status, d.credit_risk, d.departments
    from runs r join directory_rows d using (directory)"""
# a warehouse written before directories were kept once: its table of snapshots becomes their directories
SNAPSHOTS_TABLE_MOVED = (
    "alter table snapshots add column if not exists departments varchar[]",
    """insert into directories select 'snapshot:' || plan_id || ':' || run_id, entity_key, name, entity_type,
                                      district_code, industry_code, status, credit_risk, departments from snapshots""",
    """update runs set directory = 'snapshot:' || plan_id || ':' || run_id
       where directory is null and (run_id, plan_id) in (select distinct run_id, plan_id from snapshots)""",
    "drop table snapshots",
)
PLAN_TABLES = (
    "runs",
    "draws",
    "joint_tasks",
    "task_items",
    "teams",
    "visits",
    "items",
)  # what publishing a plan replaces (and with its run, the snapshot it names)
NAMED_DIRECTORIES = "select directory from runs where directory is not null"
UNNAMED_DIRECTORIES = (  # what no run names any more: gone, but a base a named directory is stored against
    f"delete from directory_bases where directory not in ({NAMED_DIRECTORIES})",
    f"delete from directory_hidden where directory not in ({NAMED_DIRECTORIES})",
    f"delete from directories where directory not in ({NAMED_DIRECTORIES}) "
    "and directory not in (select base from directory_bases)",
)
VISITS_FROM_RESULTS = (  # where results arrived, who went is who was present, on the day they inspected
    "delete from visits where plan_id = $plan and joint_task_id in "
    "(select joint_task_id from results where plan_id = $plan)",
    """insert into visits
       with present as (select uscc, plan_id, joint_task_id, unnest(inspectors) as inspector_id, inspection_date
                        from results where plan_id = $plan)
       select p.uscc, p.plan_id, j.run_id, p.joint_task_id, p.inspector_id, j.planned_date,
              max(p.inspection_date) over (partition by p.joint_task_id)
       from present p join joint_tasks j on j.plan_id = p.plan_id and j.joint_task_id = p.joint_task_id
       qualify row_number() over (partition by p.joint_task_id, p.inspector_id order by p.inspection_date) = 1""",
)


def _visits_from_results(con: duckdb.DuckDBPyConnection, plan_id: str) -> None:
    for statement in VISITS_FROM_RESULTS:
        con.execute(statement, {"plan": plan_id})


class WarehouseBusy(RuntimeError):
    """Another process kept the warehouse file locked through every wait."""


def warehouse_path(out_root: Path) -> Path:
    return OutputRoot(Path(out_root)).warehouse


def connect_warehouse(out_root: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the warehouse, created with its schema when missing; waits with backoff
    while another process holds the file's lock (the only failure a retry can mend)."""
    path = warehouse_path(out_root)
    for wait in (*LOCK_WAITS, None):
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            con.execute("set enable_progress_bar = false")  # a long insert drew DuckDB's bar over the run's log
            if not read_only:
                con.execute(SCHEMA_SQL)
                _snapshots_as_view(con)
            return con
        except duckdb.IOException as e:
            if "lock" not in str(e).lower() or wait is None:
                raise WarehouseBusy(
                    f"warehouse {path} is locked by another process ({e}); wait for it to finish or stop it, "
                    f"then rerun this stage"
                ) from e
            time.sleep(wait)
    raise AssertionError("unreachable")


def _snapshots_as_view(con: duckdb.DuckDBPyConnection) -> None:
    """`snapshots` as the view over `runs` and `directory_rows` (a warehouse's older view replaced); an older
    warehouse's table of them moved first."""
    kind = con.execute("select table_type from information_schema.tables where table_name = 'snapshots'").fetchall()
    con.execute("begin transaction")
    if kind == [("BASE TABLE",)]:
        for statement in SNAPSHOTS_TABLE_MOVED:
            con.execute(statement)
    con.execute(f"{DIRECTORY_ROWS_VIEW}; {SNAPSHOTS_VIEW}; commit")


def directory_key(digests: list[str]) -> str:
    """What names a directory in `directories`: the SHA-256 of its files' SHA-256s (`digests`), in order."""
    return hashlib.sha256("".join(f"{d}\n" for d in digests).encode()).hexdigest()


def plans_with_public_directory(out_root: Path, key: str) -> list[str]:
    """The plans whose published bundle holds an audit/directory.parquet of this reuse key (none without a
    warehouse)."""
    if not warehouse_path(out_root).exists():
        return []
    con = connect_warehouse(out_root, read_only=True)
    try:
        return [
            r[0] for r in con.execute("select plan_id from runs where public_directory = $k", {"k": key}).fetchall()
        ]
    except duckdb.BinderException:  # a warehouse older than the column: no such bundle is known
        return []
    finally:
        con.close()


def read_warehouse_table(out_root: Path, table: str) -> pl.DataFrame:
    """One warehouse table (or view) with its documented columns, or no rows when the warehouse
    or the table does not exist yet (the first run of a city)."""
    schema = TABLES[table]
    if not warehouse_path(out_root).exists():
        return pl.DataFrame(schema=schema)
    con = connect_warehouse(out_root, read_only=True)
    try:
        exists = con.sql(
            "select count(*) from information_schema.tables where table_name = $t", params={"t": table}
        ).fetchall()[0][0]
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
    last = others.filter(pl.col("on") == pl.col("on").max().over("uscc")).filter(
        pl.col("run_id") == pl.col("run_id").max().over("uscc")
    )
    return last.select("uscc", "inspector_id").unique().sort("uscc", "inspector_id")


# what the warehouse keeps of a directory's rows (`directories`, after its key)
DIRECTORY_COLUMNS = "entity_key, name, entity_type, district_code, industry_code, status, credit_risk, departments"


@dataclass(frozen=True)
class DirectoryDelta:
    """A directory merged again from an earlier one (flows/merge.py): `base`, the earlier one's key
    (`directory_key`), and `affected`, a Parquet file of the entity keys merged again; every other entity's row
    is the base's. The warehouse then stores it as their rows (`_inserted_as_delta`)."""

    base: str
    affected: Path


def _held(con: duckdb.DuckDBPyConnection, key: str) -> bool:
    """Whether the warehouse holds the directory `key` already: its rows, or it stored against a base."""
    return con.execute(
        "select exists (from directories where directory = $key) "
        "or exists (from directory_bases where directory = $key)",
        {"key": key},
    ).fetchall() == [(True,)]


def _inserted_as_delta(con: duckdb.DuckDBPyConnection, key: str, paths: list[str], delta: DirectoryDelta) -> bool:
    """The directory `key` (its files `paths`) stored as the rows of its entities merged again, against its base
    (`delta`): those rows, the base's rows they hide, and the base's key; a quarterly plan's directory with one
    department's objects changed is then some thousand rows, not millions (8M objects: 5.8M rows, 3–4 s of two
    cores). False, and nothing inserted, when the base is not held whole (it is itself stored against a base, or
    it is gone) or the row counts do not add up (this directory's rows ≠ the base's not hidden + the affected's)."""
    whole = con.execute(
        "select exists (from directories where directory = $base) "
        "and not exists (from directory_bases where directory = $base)",
        {"base": delta.base},
    ).fetchall() == [(True,)]
    if not whole:
        return False
    con.execute(
        "create or replace temp table affected as select distinct entity_key from read_parquet($path)",
        {"path": str(delta.affected)},
    )
    ((rows, kept, now),) = con.execute(
        """select (select count(*) from read_parquet($paths)),
                  (select count(*) from directories where directory = $base
                   and entity_key not in (select entity_key from affected)),
                  (select count(*) from read_parquet($paths) where entity_key in (select entity_key from affected))""",
        {"paths": paths, "base": delta.base},
    ).fetchall()
    if rows != kept + now:
        con.execute("drop table affected")
        return False
    con.execute(
        f"""insert into directories select $key, {DIRECTORY_COLUMNS} from read_parquet($paths)
            where entity_key in (select entity_key from affected)""",
        {"key": key, "paths": paths},
    )
    con.execute("insert into directory_hidden select $key, entity_key from affected", {"key": key})
    con.execute("insert into directory_bases values ($key, $base)", {"key": key, "base": delta.base})
    con.execute("drop table affected")
    return True


class RunRecording:
    """A run's rows replacing its plan's in the warehouse, in one transaction (`recording_run`): begun in a
    background thread — the plan's old rows deleted and, unless the warehouse holds it already (its key:
    `directory_key`), the directory inserted, the costly part (5.8M rows at 8M objects, all DuckDB, no GIL) —
    while the caller writes the bundle; `finish` inserts the rest, deletes the directories no run names
    any more, and commits. Until then no other connection sees any of it."""

    def __init__(
        self,
        out_root: Path,
        run_id: str,
        plan_id: str,
        directory: ParquetFiles,
        key: str | None,
        delta: DirectoryDelta | None = None,
    ) -> None:
        self._out_root, self._directory, self._delta = out_root, directory, delta
        self._p = {"run": run_id, "plan": plan_id}
        self._key = key
        self._con: duckdb.DuckDBPyConnection | None = None
        self._error: BaseException | None = None
        self._stopped = threading.Event()
        self._committed = False
        self._thread = threading.Thread(target=self._begin, name="warehouse-snapshot", daemon=True)
        self._thread.start()

    def _begin(self) -> None:
        try:
            self._con = con = connect_warehouse(self._out_root)
            con.execute("begin transaction")
            for table in PLAN_TABLES:
                if self._stopped.is_set():
                    return
                con.execute(f"delete from {table} where plan_id = $plan", {"plan": self._p["plan"]})
            if self._key is None:
                self._key = directory_key([sha256_file(Path(p)) for p in parquet_paths(self._directory)])
            key, paths = self._key, parquet_paths(self._directory)
            if self._stopped.is_set() or _held(con, key):
                return
            if self._delta is None or not _inserted_as_delta(con, key, paths, self._delta):
                con.execute(
                    f"insert into directories select $key, {DIRECTORY_COLUMNS} from read_parquet($path)",
                    {"key": key, "path": paths},
                )
        except BaseException as e:  # raised to the caller by finish
            self._error = e

    def finish(
        self,
        *,
        period: tuple[dt.date, dt.date],
        commitment: str,
        seed: str,
        draws: Path,
        joint_tasks: Path,
        task_departments: Path,
        team: Path,
        items: Path,
        kpi_targets: str | None = None,
        public_directory: str | None = None,
    ) -> dict[str, int]:
        """Inserts the rest of the run's rows and commits; returns the rows written per table. `public_directory`:
        the reuse key of the bundle's audit/directory.parquet (`plans_with_public_directory` finds it again)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        con, p = self._con, self._p
        con.execute(
            """insert into runs (run_id, plan_id, period_start, period_end, commitment, seed, recorded_at, kpi_targets,
                                 directory, public_directory)
                       values ($run, $plan, $start, $end, $commitment, $seed, $recorded, $targets, $directory,
                               $public)""",
            {
                **p,
                "directory": self._key,
                "public": public_directory,
                "start": period[0],
                "end": period[1],
                "commitment": commitment,
                "seed": seed,
                "recorded": dt.datetime.now(dt.UTC),  # now(), not the transaction's start: that was long ago
                "targets": kpi_targets,
            },
        )
        con.execute(
            """insert into items by name select $run as run_id, $plan as plan_id, item_id, department, name, category
                       from read_parquet($path)""",
            {**p, "path": str(items)},
        )
        # a draw counts from its plan period's start (what the exclusion window measures from)
        con.execute(
            """insert into draws select $run, $plan, task_id, department, uscc, credit_risk, score_key, score, $start
                       from read_parquet($path)""",
            {**p, "path": str(draws), "start": period[0]},
        )
        con.execute(
            """insert into joint_tasks select $run, $plan, joint_task_id, uscc, departments, lead_department, task_ids,
                       item_ids, planned_date from read_parquet($path)""",
            {**p, "path": str(joint_tasks)},
        )
        con.execute(
            """insert into task_items select $run, $plan, d.joint_task_id, d.uscc, d.department, unnest(d.item_ids),
                       j.planned_date
                       from read_parquet($departments) d join read_parquet($joint) j using (joint_task_id)""",
            {**p, "departments": str(task_departments), "joint": str(joint_tasks)},
        )
        con.execute(
            "insert into teams select $run, $plan, joint_task_id, department, inspector_id from read_parquet($team)",
            {**p, "team": str(team)},
        )
        con.execute(
            """insert into visits select j.uscc, $plan, $run, t.joint_task_id, t.inspector_id, j.planned_date, null
                       from read_parquet($team) t join read_parquet($joint) j using (joint_task_id)""",
            {**p, "team": str(team), "joint": str(joint_tasks)},
        )
        _visits_from_results(con, p["plan"])  # a republished draw keeps what its results said
        for statement in UNNAMED_DIRECTORIES:
            con.execute(statement)
        counts = {
            t: con.execute(f"select count(*) from {t} where plan_id = $plan", {"plan": p["plan"]}).fetchall()[0][0]
            for t in (*PLAN_TABLES, "snapshots")
        }
        con.execute("commit")
        self._committed = True
        return counts

    def close(self) -> None:
        """Rolls back what was not committed (stopping the snapshot's insert) and closes the connection."""
        self._stopped.set()
        if self._thread.is_alive() and self._con is not None:
            self._con.interrupt()
        self._thread.join()
        if self._con is not None:
            try:
                if not self._committed:
                    self._con.execute("rollback")
            except duckdb.Error:
                pass  # no transaction left to roll back (it failed, or never began)
            finally:
                self._con.close()


@contextmanager
def recording_run(
    out_root: Path,
    *,
    run_id: str,
    plan_id: str,
    directory: ParquetFiles,
    directory_sha256: list[str] | None = None,
    delta: DirectoryDelta | None = None,
) -> Iterator[RunRecording]:
    """Starts replacing the plan's rows in every table with this run's (`RunRecording`); leaving the block
    without `finish` leaves the warehouse as it was. `directory`: the directory snapshot as drawn;
    `directory_sha256`: its files' SHA-256 when known (else they are computed); `delta`: the directory it was
    merged again from and the entities merged again, when it was (it is then stored as their rows). The block
    holds a read-write connection: this process cannot open the warehouse read-only meanwhile."""
    key = directory_key(directory_sha256) if directory_sha256 is not None else None
    recording = RunRecording(out_root, run_id, plan_id, directory, key, delta)
    try:
        yield recording
    finally:
        recording.close()


def record_run(
    out_root: Path,
    *,
    run_id: str,
    plan_id: str,
    period: tuple[dt.date, dt.date],
    commitment: str,
    seed: str,
    directory: ParquetFiles,
    draws: Path,
    joint_tasks: Path,
    task_departments: Path,
    team: Path,
    items: Path,
    kpi_targets: str | None = None,
) -> dict[str, int]:
    """Replaces the plan's rows in every table with this run's, in one transaction; returns the rows written
    per table. `items`: the item lists the plan was drawn under; `kpi_targets`: the plan's targets as JSON."""
    with recording_run(out_root, run_id=run_id, plan_id=plan_id, directory=directory) as recording:
        return recording.finish(
            period=period,
            commitment=commitment,
            seed=seed,
            draws=draws,
            joint_tasks=joint_tasks,
            task_departments=task_departments,
            team=team,
            items=items,
            kpi_targets=kpi_targets,
        )


def plan_side_tables(out_root: Path, plan_id: str) -> dict[str, Any]:
    """The plan as the warehouse knows it: `period` (start, end), `task_items`, `teams` (as
    sent) and `results` so far; raises LookupError when the plan was never published there."""
    if not warehouse_path(out_root).exists():
        raise LookupError(f"no warehouse in {out_root}: publish the plan first (`jointdraw run`)")
    con = connect_warehouse(out_root, read_only=True)
    try:
        p = {"plan": plan_id}
        period = con.execute("select period_start, period_end from runs where plan_id = $plan", p).fetchall()
        if not period:
            raise LookupError(f"plan {plan_id} has no published run in {warehouse_path(out_root)}: publish it first")
        return {
            "period": period[0],
            # with the entity's category as drawn (how long its results stay public)
            "task_items": con.sql(
                f"""select {", ".join("t." + c for c in TASK_ITEMS_SCHEMA)}, e.entity_type
                    from task_items t left join (
                        select uscc, min(entity_type) as entity_type from snapshots
                        where plan_id = $plan and uscc in (select uscc from task_items where plan_id = $plan)
                        group by uscc
                    ) e using (uscc)
                    where t.plan_id = $plan
                    order by t.joint_task_id, t.department, t.item_id""",
                params=p,
            )
            .pl()
            .cast({**TASK_ITEMS_SCHEMA, "entity_type": pl.String}),
            "teams": con.sql(f"select {', '.join(TEAMS_SCHEMA)} from teams where plan_id = $plan", params=p)
            .pl()
            .cast(TEAMS_SCHEMA),
            "results": con.sql("select * from results where plan_id = $plan", params=p).pl(),
            "corrections": _corrections(con, plan_id),
        }
    finally:
        con.close()


def record_results(out_root: Path, plan_id: str, results: pl.DataFrame, corrections: pl.DataFrame | None = None) -> int:
    """Replaces the plan's results with `results` (columns of the `results` table) — and its corrections
    with `corrections` when given — and updates `visits` from them, in one transaction; returns the
    results rows written."""
    con = connect_warehouse(out_root)
    try:
        con.execute("begin transaction")
        con.execute("delete from results where plan_id = $plan", {"plan": plan_id})
        con.register("incoming", results.to_arrow())
        con.execute("insert into results by name select * from incoming")
        if corrections is not None:
            con.execute("delete from corrections where plan_id = $plan", {"plan": plan_id})
            con.register("incoming_corrections", corrections.with_columns(plan_id=pl.lit(plan_id)).to_arrow())
            con.execute("insert into corrections by name select * from incoming_corrections")
        _visits_from_results(con, plan_id)
        n = con.execute("select count(*) from results where plan_id = $plan", {"plan": plan_id}).fetchall()[0][0]
        con.execute("commit")
        return n
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.close()


def recorded_results(out_root: Path, plan_id: str) -> pl.DataFrame:
    """Every result the warehouse holds for the plan, all columns (what its last results run published)."""
    con = connect_warehouse(out_root, read_only=True)
    try:
        return con.sql("select * from results where plan_id = $p", params={"p": plan_id}).pl()
    finally:
        con.close()


def recorded_corrections(out_root: Path, plan_id: str) -> pl.DataFrame:
    """Every correction the warehouse holds for the plan, in order."""
    con = connect_warehouse(out_root, read_only=True)
    try:
        return _corrections(con, plan_id)
    finally:
        con.close()


def _corrections(con: duckdb.DuckDBPyConnection, plan_id: str) -> pl.DataFrame:
    from jointdraw.transforms.corrections import CORRECTION_SCHEMA

    exists = con.sql("select count(*) from information_schema.tables where table_name = 'corrections'").fetchall()
    if not exists[0][0]:  # a warehouse from before issue 22, not written since
        return pl.DataFrame(schema=CORRECTION_SCHEMA)
    found = con.sql(
        f"select {', '.join(CORRECTION_SCHEMA)} from corrections where plan_id = $p order by correction_id",
        params={"p": plan_id},
    ).pl()
    return found.cast(CORRECTION_SCHEMA)


def audit_entries(out_root: Path, plan_id: str) -> list[dict[str, Any]]:
    """The plan's audit log entries, as stored (transforms/audit.py checks them)."""
    if not warehouse_path(out_root).exists():
        return []
    con = connect_warehouse(out_root, read_only=True)
    try:
        exists = con.sql("select count(*) from information_schema.tables where table_name = 'audit_log'").fetchall()[0][
            0
        ]
        if not exists:
            return []
        return con.sql("select * from audit_log where plan_id = $p order by seq", params={"p": plan_id}).pl().to_dicts()
    finally:
        con.close()


def _append_entry(
    out_root: Path,
    plan_id: str,
    fields: dict[str, Any],
    already: Callable[[duckdb.DuckDBPyConnection, dict[str, Any] | None], dict[str, Any] | None],
) -> tuple[dict[str, Any], bool]:
    """Appends an entry to the plan's chain in one transaction, unless `already` (given the plan's last
    entry) finds the entry that has it; returns (the entry, whether it is new)."""
    con = connect_warehouse(out_root)
    try:
        con.execute("begin transaction")
        last = (
            con.sql("select * from audit_log where plan_id = $p order by seq desc limit 1", params={"p": plan_id})
            .pl()
            .to_dicts()
        )
        found = already(con, last[0] if last else None)
        if found is not None:
            con.execute("commit")
            return found, False
        entry = next_entry(last[0] if last else None, **fields)
        con.execute(f"insert into audit_log ({', '.join(entry)}) values ({', '.join('$' + k for k in entry)})", entry)
        con.execute("commit")
        return entry, True
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.close()


def append_attempt(out_root: Path, **fields: Any) -> dict[str, Any] | None:
    """Appends a draw attempt to the plan's chain; returns the entry, or None when the plan's last
    attempt has this commitment, seed and draw digest (a rerun of the same draw is not a new attempt;
    going back to an earlier seed after another one is)."""

    def same_draw(con: duckdb.DuckDBPyConnection, _: dict[str, Any] | None) -> dict[str, Any] | None:
        last = (
            con.sql(
                "select * from audit_log where plan_id = $p and event is null order by seq desc limit 1",
                params={"p": fields["plan_id"]},
            )
            .pl()
            .to_dicts()
        )
        return last[0] if last and all(last[0][k] == fields[k] for k in ("commitment", "seed", "draw_digest")) else None

    entry, new = _append_entry(out_root, fields["plan_id"], fields, same_draw)
    return entry if new else None


def append_seal(out_root: Path, *, plan_id: str, run_id: str, event: str, seal: str, time: str) -> dict[str, Any]:
    """Appends a publication's seal to the plan's chain (transforms/audit.py); a republication of the
    same bytes appends nothing and returns the entry that has it."""
    fields = {"plan_id": plan_id, "time": time, "run_id": run_id, "event": event, "seal": seal, "operator": operator()}
    entry, _ = _append_entry(
        out_root,
        plan_id,
        fields,
        lambda con, last: last if last and last.get("event") == event and last.get("seal") == seal else None,
    )
    return entry


def append_redraw(out_root: Path, *, plan_id: str, run_id: str, redraw: str, time: str) -> dict[str, Any]:
    """Appends a replacement draw (递补) to the plan's chain; the same redraw (same details) is not
    appended twice: the entry that has it is returned."""
    fields = {"plan_id": plan_id, "time": time, "run_id": run_id, "event": "redraw", "redraw": redraw}

    def logged(con: duckdb.DuckDBPyConnection, _: dict[str, Any] | None) -> dict[str, Any] | None:
        found = (
            con.sql(
                "select * from audit_log where plan_id = $p and run_id = $r and event = 'redraw' and redraw = $d",
                params={"p": plan_id, "r": run_id, "d": redraw},
            )
            .pl()
            .to_dicts()
        )
        return found[0] if found else None

    entry, _ = _append_entry(out_root, plan_id, {**fields, "operator": operator()}, logged)
    return entry


def entity_history(out_root: Path, uscc: str) -> dict[str, pl.DataFrame]:
    """One entity across every recorded run: its draws, joint tasks, teams and results, oldest first."""
    if not warehouse_path(out_root).exists():
        return {}
    con = connect_warehouse(out_root, read_only=True)
    p = {"u": uscc}
    try:
        return {
            "draws": con.sql(
                """select d.plan_id, d.run_id, d.task_id, d.department, d.credit_risk, d.drawn_on, d.score_key
                                from draws d where uscc = $u order by drawn_on, plan_id, task_id""",
                params=p,
            ).pl(),
            "joint_tasks": con.sql(
                """select plan_id, run_id, joint_task_id, departments, lead_department, item_ids, planned_date
                                      from joint_tasks where uscc = $u order by planned_date, plan_id""",
                params=p,
            ).pl(),
            "visits": con.sql(
                """select plan_id, run_id, joint_task_id, list(inspector_id order by inspector_id) as inspector_ids,
                                 first(planned_date) as planned_date, max(inspected_on) as inspected_on
                                 from visits where uscc = $u group by all order by planned_date, plan_id""",
                params=p,
            ).pl(),
            "results": con.sql(
                """select plan_id, joint_task_id, department, item_id, inspection_date, result_codes, follow_up,
                                  first_published_on, overdue
                                  from results where uscc = $u
                                  order by inspection_date, plan_id, department, item_id""",
                params=p,
            ).pl(),
        }
    finally:
        con.close()


KPI_TABLES = {  # what the yearly figures read (transforms/kpi.py: KpiInputs), as typed frames
    "runs": {"plan_id": pl.String, "period_start": pl.Date, "period_end": pl.Date, "kpi_targets": pl.String},
    "supervised": {"entity_key": pl.String, "department": pl.String, "entity_type": pl.String},
    "items": {"department": pl.String, "item_id": pl.String},
    "draws": {"plan_id": pl.String, "task_id": pl.String, "department": pl.String, "uscc": pl.String},
    "joint_tasks": {"plan_id": pl.String, "joint_task_id": pl.String, "departments": pl.List(pl.String)},
    "task_items": {
        "plan_id": pl.String,
        "joint_task_id": pl.String,
        "uscc": pl.String,
        "department": pl.String,
        "item_id": pl.String,
        "planned_date": pl.Date,
    },
    "results": {
        "plan_id": pl.String,
        "joint_task_id": pl.String,
        "uscc": pl.String,
        "department": pl.String,
        "item_id": pl.String,
        "inspection_date": pl.Date,
        "result_codes": pl.List(pl.String),
        "first_published_on": pl.Date,
        "deadline": pl.Date,
        "follow_up_completed_on": pl.Date,
    },
}
_IN_YEAR = "plan_id in (select plan_id from runs where year(period_start) = $year)"
_KPI_QUERIES = {
    "runs": f"select {', '.join(KPI_TABLES['runs'])} from runs where year(period_start) = $year order by plan_id",
    "items": f"select distinct department, item_id from items where {_IN_YEAR} order by all",
    "draws": f"select {', '.join(KPI_TABLES['draws'])} from draws where {_IN_YEAR}",
    "joint_tasks": f"select {', '.join(KPI_TABLES['joint_tasks'])} from joint_tasks where {_IN_YEAR}",
    # every plan's: a result is due in the year its deadline falls in, whichever plan it answers
    "task_items": f"select {', '.join(KPI_TABLES['task_items'])} from task_items",
    "results": f"select {', '.join(KPI_TABLES['results'])} from results",
}


def kpi_tables(out_root: Path, year: int) -> dict[str, pl.DataFrame]:
    """What the yearly figures are computed from (KPI_TABLES): the year's plans (period starting in `year`)
    with their targets, the entities they supervised (transforms/sql/kpi_supervised.sql), their item lists,
    draws and joint tasks; and every plan's task items and results (what falls due or was found in the year
    is decided by date, transforms/kpi.py). Raises LookupError when there is no warehouse."""
    from jointdraw.transforms.storage.packaged import sql_text

    if not warehouse_path(out_root).exists():
        raise LookupError(f"no warehouse in {out_root}: publish a plan first (`jointdraw run`)")
    con = connect_warehouse(out_root)  # read-write: an old warehouse gains the columns the figures read
    try:
        queries = {**_KPI_QUERIES, "supervised": sql_text("kpi_supervised")}
        return {
            name: con.sql(queries[name], params={"year": year} if "$year" in queries[name] else None)
            .pl()
            .cast(schema)
            .select(list(schema))
            for name, schema in KPI_TABLES.items()
        }
    finally:
        con.close()
