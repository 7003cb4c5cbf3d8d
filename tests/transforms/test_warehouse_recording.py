"""A run recorded in the warehouse in two steps (transforms/storage/warehouse.py: recording_run): the
directory snapshot inserted first, the rest and the commit once the bundle is in place; leaving
without finishing leaves the warehouse as it was, and finishing writes what record_run writes."""

import datetime as dt

import duckdb
import polars as pl
import pytest

from jointdraw.transforms.storage.runfolder import sha256_file, write_parquet
from jointdraw.transforms.storage.warehouse import (
    DirectoryDelta,
    connect_warehouse,
    directory_key,
    record_run,
    recording_run,
)

PERIOD = (dt.date(2026, 1, 1), dt.date(2026, 12, 31))


def _files(folder, entities):
    """One draw, joint task and team member per entity (E1, E2 …): the smallest run the warehouse records."""
    n = len(entities)
    return {
        "draws": write_parquet(
            pl.DataFrame(
                {
                    "task_id": ["T1"] * n,
                    "department": ["AMR"] * n,
                    "uscc": entities,
                    "credit_risk": ["A"] * n,
                    "score_key": ["T1"] * n,
                    "score": list(range(n)),
                },
                schema_overrides={"score": pl.UInt64},
            ),
            folder / "draws.parquet",
        ),
        "joint_tasks": write_parquet(
            pl.DataFrame(
                {
                    "joint_task_id": [f"J{e}" for e in entities],
                    "uscc": entities,
                    "departments": [["AMR"]] * n,
                    "lead_department": ["AMR"] * n,
                    "task_ids": [["T1"]] * n,
                    "item_ids": [["I1"]] * n,
                    "planned_date": [dt.date(2026, 3, 2)] * n,
                }
            ),
            folder / "joint_tasks.parquet",
        ),
        "task_departments": write_parquet(
            pl.DataFrame(
                {
                    "joint_task_id": [f"J{e}" for e in entities],
                    "uscc": entities,
                    "department": ["AMR"] * n,
                    "item_ids": [["I1"]] * n,
                }
            ),
            folder / "task_departments.parquet",
        ),
        "team": write_parquet(
            pl.DataFrame(
                {"joint_task_id": [f"J{e}" for e in entities], "department": ["AMR"] * n, "inspector_id": ["P1"] * n}
            ),
            folder / "team.parquet",
        ),
        "items": write_parquet(
            pl.DataFrame({"item_id": ["I1"], "department": ["AMR"], "name": ["事项"], "category": ["c"]}),
            folder / "items.parquet",
        ),
    }


def _directory(folder, entities):
    return write_parquet(
        pl.DataFrame(
            {
                "entity_key": entities,
                "uscc": entities,
                "name": [f"名称{e}" for e in entities],
                "entity_type": ["enterprise"] * len(entities),
                "district_code": ["440305"] * len(entities),
                "industry_code": ["I6513"] * len(entities),
                "status": ["active"] * len(entities),
                "credit_risk": ["A"] * len(entities),
                "departments": [["AMR"]] * len(entities),
                "operator_name": ["张三"] * len(entities),  # personal: never recorded
            }
        ),
        folder / "directory.parquet",
    )


def _rows(out):
    con = connect_warehouse(out, read_only=True)
    try:
        return {
            t: con.sql(f"select * exclude (run_id) from {t} where plan_id = 'P' order by all").fetchall()
            for t in ("snapshots", "draws", "joint_tasks", "task_items", "teams", "visits", "items")
        } | {"runs": con.sql("select run_id, commitment from runs where plan_id = 'P'").fetchall()}
    finally:
        con.close()


def _record(out, folder, run_id, entities, **kw):
    return record_run(
        out,
        run_id=run_id,
        plan_id="P",
        period=PERIOD,
        commitment=f"c-{run_id}",
        seed="s",
        directory=_directory(folder, entities),
        **_files(folder, entities),
        **kw,
    )


def test_a_recording_left_unfinished_leaves_the_warehouse_as_it_was(tmp_path):
    # the first run of P is recorded; a second run's recording begins (old rows deleted, its snapshot
    # inserted in the open transaction) and the block is left by an error before finish: nothing changed
    out, first, second = tmp_path / "out", tmp_path / "first", tmp_path / "second"
    for folder in (out, first, second):
        folder.mkdir()
    counts = _record(out, first, "R1", ["E1", "E2"])
    assert counts["snapshots"] == 2 and counts["task_items"] == 2 and counts["runs"] == 1
    before = _rows(out)
    for snapshot_inserted in (False, True):
        with pytest.raises(RuntimeError, match="the bundle could not be published"):
            with recording_run(
                out, run_id="R2", plan_id="P", directory=_directory(second, ["E3", "E4", "E5"])
            ) as recording:
                if snapshot_inserted:
                    recording._thread.join()  # the old rows deleted and the snapshot inserted, uncommitted
                raise RuntimeError("the bundle could not be published")
        assert _rows(out) == before


def test_a_finished_recording_replaces_the_plans_rows_with_the_runs(tmp_path):
    out, first, second = tmp_path / "out", tmp_path / "first", tmp_path / "second"
    for folder in (out, first, second):
        folder.mkdir()
    _record(out, first, "R1", ["E1", "E2"])
    with recording_run(out, run_id="R2", plan_id="P", directory=_directory(second, ["E3", "E4", "E5"])) as recording:
        counts = recording.finish(period=PERIOD, commitment="c-R2", seed="s", **_files(second, ["E3", "E4", "E5"]))
    rows = _rows(out)
    assert counts == {t: len(r) for t, r in rows.items()} | {"runs": 1}
    assert rows["runs"] == [("R2", "c-R2")]
    assert [r[1] for r in rows["snapshots"]] == ["E3", "E4", "E5"]  # entity_key, in order: only R2's
    con = connect_warehouse(out, read_only=True)
    try:
        # the time recorded is when the run was committed, not when its transaction began
        assert con.sql("select recorded_at <= now() from runs").fetchall() == [(True,)]
    finally:
        con.close()


def _record_plan(out, folder, plan_id, run_id, entities):
    folder.mkdir()
    return record_run(
        out,
        run_id=run_id,
        plan_id=plan_id,
        period=PERIOD,
        commitment=f"c-{run_id}",
        seed="s",
        directory=_directory(folder, entities),
        **_files(folder, entities),
    )


def _snapshots_and_directories(out):
    """Each plan's snapshot (its entity keys), and (directories kept, their rows)."""
    con = connect_warehouse(out, read_only=True)
    try:
        return (
            con.sql(
                "select plan_id, list(entity_key order by entity_key) from snapshots group by 1 order by 1"
            ).fetchall(),
            con.sql("select count(distinct directory), count(*) from directories").fetchall()[0],
        )
    finally:
        con.close()


def test_plans_drawn_from_the_same_directory_share_its_rows_and_a_directory_no_run_names_is_deleted(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    _record_plan(out, tmp_path / "annual", "ANNUAL", "R1", ["E1", "E2"])
    # a quarterly plan drawn from a directory with the same files (the same bytes): not stored again
    counts = _record_plan(out, tmp_path / "q2", "Q2", "R2", ["E1", "E2"])
    assert counts["snapshots"] == 2
    assert _snapshots_and_directories(out) == ([("ANNUAL", ["E1", "E2"]), ("Q2", ["E1", "E2"])], (1, 2))
    # Q2 published again from another directory: the first is still the annual plan's
    _record_plan(out, tmp_path / "q2-again", "Q2", "R3", ["E1", "E2", "E3"])
    assert _snapshots_and_directories(out) == ([("ANNUAL", ["E1", "E2"]), ("Q2", ["E1", "E2", "E3"])], (2, 5))
    # … and the annual plan from Q2's: no run names the first directory any more
    _record_plan(out, tmp_path / "annual-again", "ANNUAL", "R4", ["E1", "E2", "E3"])
    assert _snapshots_and_directories(out) == ([("ANNUAL", ["E1", "E2", "E3"]), ("Q2", ["E1", "E2", "E3"])], (1, 3))


def test_an_older_warehouse_keeps_its_snapshots_when_it_is_opened(tmp_path):
    """A warehouse written when `snapshots` was a table of every plan's rows: its rows become directories, and the
    view gives them as before, beside a plan recorded now."""
    out = tmp_path / "out"
    out.mkdir()
    con = duckdb.connect(str(out / "warehouse.duckdb"))
    con.execute("""create table runs (run_id varchar, plan_id varchar, period_start date, period_end date,
                                      commitment varchar, seed varchar, recorded_at timestamptz);
                   create table snapshots (run_id varchar, plan_id varchar, entity_key varchar, uscc varchar,
                                           name varchar, entity_type varchar, district_code varchar,
                                           industry_code varchar, status varchar, credit_risk varchar,
                                           departments varchar[]);
                   insert into runs values ('R0', 'OLD', '2025-01-01', '2025-12-31', 'c', 's', now());
                   insert into snapshots values ('R0', 'OLD', 'E9', 'E9', 'n', 'enterprise', 'd', 'i', 'active', 'A',
                                                 ['AMR']);""")
    con.close()
    _record_plan(out, tmp_path / "new", "NEW", "R1", ["E1"])
    assert _snapshots_and_directories(out) == ([("NEW", ["E1"]), ("OLD", ["E9"])], (2, 2))


def _directory_of(folder, rows):
    """A directory of (entity_key, name) rows, the rest as `_directory` writes it."""
    folder.mkdir()
    path = _directory(folder, [e for e, _ in rows])
    write_parquet(pl.read_parquet(path).with_columns(name=pl.Series([n for _, n in rows])), path)
    return path


def _record_against(out, folder, plan_id, run_id, directory, delta=None):
    entities = pl.read_parquet(directory)["entity_key"].to_list()
    with recording_run(out, run_id=run_id, plan_id=plan_id, directory=directory, delta=delta) as recording:
        return recording.finish(period=PERIOD, commitment=f"c-{run_id}", seed="s", **_files(folder, entities))


def _stored(out):
    """(plan, its snapshot's (entity_key, name) rows), and the rows each directory keeps itself, by size."""
    con = connect_warehouse(out, read_only=True)
    try:
        snapshots = con.sql(
            "select plan_id, list([entity_key, name] order by entity_key) from snapshots group by 1 order by 1"
        ).fetchall()
        stored = con.sql("select count(*) from directories group by directory order by 1").fetchall()
        return [(p, [tuple(r) for r in rows]) for p, rows in snapshots], [n for (n,) in stored]
    finally:
        con.close()


def test_a_directory_merged_again_is_stored_as_the_rows_that_differ_from_the_one_it_was_merged_from(tmp_path):
    """A quarterly plan's directory merged again from the annual plan's (`DirectoryDelta`): the warehouse keeps the
    rows of its entities merged again, and its snapshot is the whole directory; the annual directory stays while
    the quarterly one is stored against it, and goes with it."""
    out = tmp_path / "out"
    out.mkdir()
    annual = _directory_of(tmp_path / "annual", [(f"E{i}", f"名称{i}") for i in range(1, 6)])
    _record_against(out, tmp_path / "annual", "ANNUAL", "R1", annual)
    base = directory_key([sha256_file(annual)])
    # E2 renamed, E3 gone, E6 new: the entities merged again
    now = [("E1", "名称1"), ("E2", "新名称2"), ("E4", "名称4"), ("E5", "名称5"), ("E6", "名称6")]
    quarterly = _directory_of(tmp_path / "q2", now)
    affected = write_parquet(pl.DataFrame({"entity_key": ["E2", "E3", "E6"]}), tmp_path / "affected.parquet")
    counts = _record_against(out, tmp_path / "q2", "Q2", "R2", quarterly, DirectoryDelta(base, affected))
    assert counts["snapshots"] == 5
    annual_rows = [(f"E{i}", f"名称{i}") for i in range(1, 6)]
    assert _stored(out) == ([("ANNUAL", annual_rows), ("Q2", now)], [2, 5])
    # the annual plan drawn again from another directory: the first one stays, the quarterly one is stored against it
    _record_plan(out, tmp_path / "annual-again", "ANNUAL", "R3", ["E1"])
    assert _stored(out) == ([("ANNUAL", [("E1", "名称E1")]), ("Q2", now)], [1, 2, 5])
    # … until the quarterly plan is drawn again too
    _record_plan(out, tmp_path / "q2-again", "Q2", "R4", ["E1"])
    assert _stored(out) == ([("ANNUAL", [("E1", "名称E1")]), ("Q2", [("E1", "名称E1")])], [1])
    con = connect_warehouse(out, read_only=True)
    try:
        assert con.sql("select count(*) from directory_bases").fetchall() == [(0,)]
        assert con.sql("select count(*) from directory_hidden").fetchall() == [(0,)]
    finally:
        con.close()


def test_a_directory_is_stored_whole_when_its_base_is_not_held_whole_or_the_rows_do_not_add_up(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    annual = _directory_of(tmp_path / "annual", [("E1", "名称1"), ("E2", "名称2")])
    _record_against(out, tmp_path / "annual", "ANNUAL", "R1", annual)
    base = directory_key([sha256_file(annual)])
    only_e2 = write_parquet(pl.DataFrame({"entity_key": ["E2"]}), tmp_path / "only-e2.parquet")  # E3 left out
    stored = {}
    for plan_id, delta in (("Q2", DirectoryDelta("0" * 64, only_e2)), ("Q3", DirectoryDelta(base, only_e2))):
        # Q2: a base the warehouse does not hold; Q3: E3 is new but not among the entities merged again
        stored[plan_id] = [("E1", "名称1"), ("E2", "新名称2"), ("E3", f"名称3-{plan_id}")]
        directory = _directory_of(tmp_path / plan_id, stored[plan_id])
        _record_against(out, tmp_path / plan_id, plan_id, f"R-{plan_id}", directory, delta)
    snapshots = [("ANNUAL", [("E1", "名称1"), ("E2", "名称2")]), ("Q2", stored["Q2"]), ("Q3", stored["Q3"])]
    assert _stored(out) == (snapshots, [2, 3, 3])


def test_a_warehouse_that_kept_each_entitys_uscc_drops_it_and_its_snapshots_give_it_as_before(tmp_path):
    """The USCC is the entity key but for an entity known without one: `directories` no longer keeps it (a column of
    5.8M distinct strings at 8M), the views give it."""
    out = tmp_path / "out"
    out.mkdir()
    _record_plan(out, tmp_path / "first", "P", "R1", ["E1"])
    con = duckdb.connect(str(out / "warehouse.duckdb"))
    con.execute("alter table directories add column uscc varchar")  # as a warehouse written before kept it
    con.execute(
        "insert into directories (directory, entity_key, uscc, name) select directory, 'ORG:12345678X', null, "
        "'无代码' from directories"
    )
    con.close()
    con = connect_warehouse(out)
    try:
        assert "uscc" not in [c for (c, *_) in con.sql("describe directories").fetchall()]
        assert con.sql("select entity_key, uscc from snapshots order by 1").fetchall() == [
            ("E1", "E1"),
            ("ORG:12345678X", None),
        ]
    finally:
        con.close()
