"""Running it like production: resume after a failure, refuse a rerun on changed files, one
run of a plan at a time, and the warehouse across the annual plan and a quarterly batch."""

import fcntl
import json
import shutil
import subprocess
import sys

import polars as pl
import pytest

from jointdraw.cli.commands import main
from jointdraw.flows.errors import StageFailed
from jointdraw.flows.plan_run import plan_run
from jointdraw.transforms.commitment import directory_sha256
from jointdraw.transforms.storage.bundle import bundle_file
from jointdraw.transforms.storage.runfolder import directory_parts
from jointdraw.transforms.storage.runlock import PlanLocked, held, lock_path, plan_lock, read_lock
from jointdraw.transforms.storage.warehouse import connect_warehouse
from tests.conftest import plan_path

EARLY = ("01_ingest", "02_validate", "03_merge", "04_commit", "05_draw", "06_fuse")


def _snapshot(run_dir, stages):
    return {
        p.relative_to(run_dir): (p.stat().st_mtime_ns, p.read_bytes())
        for s in stages
        for p in (run_dir / s).rglob("*")
        if p.is_file()
    }


def test_resume_after_a_failed_assign_redoes_nothing_before_it(
    prefect_server, dirty_run, dirty_city, tmp_path, monkeypatch, capsys
):
    def broken(*args, **kwargs):
        raise RuntimeError("injected failure in assign")

    monkeypatch.setattr("jointdraw.flows.assign.match_inspectors", broken)
    with pytest.raises(RuntimeError, match="injected"):
        plan_run(
            plan=str(plan_path(dirty_city)),
            inbox=str(dirty_city / "inbox"),
            out=str(tmp_path),
            run_id="r",
            seed="SZ-2026-ANNUAL-demo-seed",
        )
    monkeypatch.undo()
    run = tmp_path / "runs" / "r"
    assert not (run / "07_assign" / "stage.json").exists() and read_lock(tmp_path, "SZ-2026-ANNUAL") is None
    before = _snapshot(run, EARLY)
    assert main(["resume", "r", "--out", str(tmp_path)]) == 0
    assert "resuming run r of plan SZ-2026-ANNUAL at assign" in capsys.readouterr().out
    assert _snapshot(run, EARLY) == before  # ingest … fuse untouched: same bytes, same modification times
    # the bundle equals the uninterrupted run's, file for file
    mine = json.loads(
        bundle_file(tmp_path / "published" / "SZ-2026-ANNUAL", "manifest.json").read_text(encoding="utf-8")
    )
    theirs = json.loads(
        bundle_file(dirty_run.parent.parent / "published" / "SZ-2026-ANNUAL", "manifest.json").read_text(
            encoding="utf-8"
        )
    )
    assert mine["files"] == theirs["files"]
    assert main(["resume", "r", "--out", str(tmp_path)]) == 0 and "nothing to resume" in capsys.readouterr().out


def test_a_rerun_refuses_changed_outputs_and_changed_inputs(prefect_server, dirty_run, dirty_city, tmp_path):
    run = tmp_path / "runs" / "copy"
    shutil.copytree(dirty_run, run)
    inbox = tmp_path / "inbox"
    shutil.copytree(dirty_city / "inbox", inbox)
    common = {"plan": str(plan_path(dirty_city)), "inbox": str(inbox), "out": str(tmp_path), "run_id": "copy"}
    with open(run / "03_merge" / "directory-000.parquet", "ab") as f:
        f.write(b"\0")
    with pytest.raises(
        StageFailed, match=r"merge: 1 of its files changed since it wrote them \(directory-000.parquet\)"
    ):
        plan_run(**common, start_at="commit")
    shutil.copy(dirty_run / "03_merge" / "directory-000.parquet", run / "03_merge" / "directory-000.parquet")
    edu = inbox / "EDU" / "objects.csv"
    edu.write_bytes(edu.read_bytes() + b"\n")
    with pytest.raises(StageFailed, match="input EDU/objects.csv changed since ingest read it"):
        plan_run(**common, start_at="commit")


def test_one_run_of_a_plan_at_a_time_and_a_dead_holder_needs_no_unlock(prefect_server, small_city, tmp_path):
    common = {
        "plan": str(plan_path(small_city)),
        "inbox": str(small_city / "inbox"),
        "out": str(tmp_path),
        "stop_after": "ingest",
    }
    with (
        plan_lock(tmp_path, "SZ-2026-ANNUAL", "night-run"),
        pytest.raises(PlanLocked, match="being run by run night-run"),
    ):
        plan_run(**common, run_id="second")
    assert main(["unlock", "SZ-2026-ANNUAL", "--out", str(tmp_path)]) == 0  # nothing to clear now
    # a run killed with SIGKILL while holding the lock: the kernel releases it, the next run just runs
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from jointdraw.transforms.storage.runlock import plan_lock\n"
            "with plan_lock(sys.argv[1], 'SZ-2026-ANNUAL', 'killed'):\n print('held', flush=True); time.sleep(600)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held" and held(tmp_path, "SZ-2026-ANNUAL")
    with pytest.raises(PlanLocked, match="being run by run killed"):
        plan_run(**common, run_id="third")
    holder.kill()
    holder.wait()
    assert read_lock(tmp_path, "SZ-2026-ANNUAL")["run_id"] == "killed" and not held(tmp_path, "SZ-2026-ANNUAL")
    assert plan_run(**common, run_id="third")["stages"]["ingest"].rows_read > 0  # no unlock needed
    assert read_lock(tmp_path, "SZ-2026-ANNUAL") is None  # released: the file names nobody
    # a holder on another machine (a shared disk): this host cannot tell, so it counts until cleared
    lock = lock_path(tmp_path, "SZ-2026-ANNUAL")
    lock.write_text(json.dumps({"run_id": "elsewhere", "pid": 1, "host": "another-host", "since": "x"}))
    with pytest.raises(PlanLocked, match="on another machine.*jointdraw unlock SZ-2026-ANNUAL"):
        plan_run(**common, run_id="fourth")
    assert main(["unlock", "SZ-2026-ANNUAL", "--out", str(tmp_path)]) == 1  # not without --force
    assert (
        main(["unlock", "SZ-2026-ANNUAL", "--out", str(tmp_path), "--force"]) == 0
        and read_lock(tmp_path, "SZ-2026-ANNUAL") is None
    )
    assert plan_run(**common, run_id="fourth")["stages"]["ingest"].rows_read > 0


def test_a_live_lock_is_not_cleared_without_force(tmp_path, capsys):
    with plan_lock(tmp_path, "P", "alive"):
        assert main(["unlock", "P", "--out", str(tmp_path)]) == 1
        assert "still running" in capsys.readouterr().err


def test_a_holder_that_has_not_written_its_name_yet_is_described_as_starting(tmp_path, capsys):
    path = lock_path(tmp_path, "P")
    path.parent.mkdir(parents=True)
    with open(path, "w") as starting:  # the kernel lock taken, the name not yet written
        fcntl.flock(starting, fcntl.LOCK_EX)
        with pytest.raises(PlanLocked, match=r"being run by a run that has just started \(it has not written"):
            with plan_lock(tmp_path, "P", "second"):
                pass
        assert main(["unlock", "P", "--out", str(tmp_path)]) == 1
        assert "locked by a run that has just started (it has not written its name yet), which is still running" in (
            capsys.readouterr().err
        )


def test_the_quarterly_batch_excludes_what_the_annual_plan_drew(
    prefect_server, dirty_run, dirty_city, tmp_path, capsys, monkeypatch
):
    from jointdraw.transforms.documents import draw_bundle

    taken = []  # what publish took from the files written ahead while assign ran (flows/publish.py)

    def written_ahead(path, taken_from=draw_bundle.written_ahead):
        taken.append((path.name.split("-")[0], taken_from(path)))
        return taken[-1][1]

    monkeypatch.setattr(draw_bundle, "written_ahead", written_ahead)
    out = tmp_path
    shutil.copy(dirty_run.parent.parent / "warehouse.duckdb", out / "warehouse.duckdb")  # the annual plan, published
    shutil.copytree(dirty_run.parent.parent / "published", out / "published")
    shutil.copytree(dirty_run, out / "runs" / "dirty")
    q2_run = plan_run(
        plan=str(plan_path(dirty_city, "SZ-2026-Q2")), inbox=str(dirty_city / "inbox"), out=str(out), run_id="q2"
    )
    # the same registries: the merge is reused, so Q2 draws from the annual plan's directory, which the warehouse
    # keeps once and whose public copy (audit/directory.parquet) is copied from the annual plan's bundle
    assert q2_run["stages"]["merge"].reused_from.run_id == "dirty"
    # … so its commitment's digest of the directory is the annual run's, not computed again, and what it would be
    q2_commit = q2_run["stages"]["commit"]
    assert q2_commit.directory_sha256_from == "dirty"
    assert q2_commit.directory_sha256 == directory_sha256(directory_parts(out / "runs" / "q2" / "04_commit"))
    assert q2_run["stages"]["publish"].directory_copied_from == "SZ-2026-ANNUAL"
    # the copy made (and checked) while assign ran, with the draws' tables and the notice
    assert taken == [("directory", True), ("draws.csv", True), ("notice.csv", True)]
    assert (out / "published" / "SZ-2026-Q2" / "audit" / "directory.parquet").read_bytes() == (
        out / "published" / "SZ-2026-ANNUAL" / "audit" / "directory.parquet"
    ).read_bytes()
    con = connect_warehouse(out, read_only=True)
    kept = con.sql("select count(distinct directory), count(*) from directories").fetchall()[0]
    snapshots = dict(con.sql("select plan_id, count(*) from snapshots group by all").fetchall())
    con.close()
    assert kept == (1, snapshots["SZ-2026-ANNUAL"]) and snapshots["SZ-2026-Q2"] == snapshots["SZ-2026-ANNUAL"]
    annual = pl.read_parquet(dirty_run / "05_draw" / "draws.parquet")
    q2 = pl.read_parquet(out / "runs" / "q2" / "05_draw" / "draws.parquet")
    excluded = pl.read_parquet(out / "runs" / "q2" / "04_commit" / "exclusions.parquet")
    assert q2.height > 0 and not set(q2["uscc"]) & set(annual["uscc"])  # no Q2 draw falls inside the window
    # the plan's visit caps exclude by the departments' inspections.*, not by the history (test_draw_stage.py)
    from_history = excluded.filter(~pl.col("reason").str.starts_with("visit_cap"))
    assert set(from_history["uscc"]) == set(annual["uscc"]) and set(from_history["source_run"]) == {"dirty"}
    assert excluded.filter(pl.col("reason").str.starts_with("visit_cap"))["visits"].min() >= 2
    recent = excluded.filter(pl.col("reason") == "recently_inspected")
    assert set(recent["uscc"]) == set(annual["uscc"])  # and class A, drawn once this year, also met its yearly cap of 1
    assert set(excluded.filter(pl.col("reason") == "yearly_cap")["uscc"]) <= set(
        annual.filter(pl.col("credit_risk") == "A")["uscc"]
    )
    con = connect_warehouse(out)
    counts = dict(con.sql("select plan_id, count(*) from draws group by all").fetchall())
    con.close()
    assert counts == {"SZ-2026-ANNUAL": annual.height, "SZ-2026-Q2": q2.height}
    # publishing the annual plan again replaces its rows, never duplicates them
    plan_run(
        plan=str(plan_path(dirty_city)),
        inbox=str(dirty_city / "inbox"),
        out=str(out),
        run_id="dirty",
        start_at="publish",
    )
    con = connect_warehouse(out)
    again = dict(con.sql("select plan_id, count(*) from draws group by all").fetchall())
    visits = con.sql("select count(*) from visits where plan_id = 'SZ-2026-ANNUAL'").fetchall()[0][0]
    con.close()
    assert again == counts and visits == pl.read_parquet(dirty_run / "07_assign" / "team.parquet").height
    uscc = annual["uscc"][0]
    assert main(["history", uscc, "--out", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "SZ-2026-ANNUAL" in shown and "draws" in shown and "teams" in shown
