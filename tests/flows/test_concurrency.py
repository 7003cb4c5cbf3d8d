"""Concurrent runs (issue 10), as separate `jointdraw` processes on one output root: two different
plans both finish and the warehouse holds both; a second run of a plan being run is refused with a
clear message (one test: the refused run is started while the two run; the annual run is paused
with SIGSTOP while it holds its lock, so the refusal does not race the annual run's end)."""

import os
import signal
import subprocess
import sys
import time

from prefect.settings import PREFECT_API_URL

from jointdraw.transforms.storage.bundle import bundle_file
from jointdraw.transforms.storage.runlock import held, read_lock
from jointdraw.transforms.storage.warehouse import connect_warehouse
from tests.conftest import plan_path


def _start(args, env):
    return subprocess.Popen(
        [sys.executable, "-m", "jointdraw.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _env():
    return {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
    }  # the test server: no temporary server per process


def _refused_run(small_city, out, env):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "jointdraw.cli",
            "run",
            str(plan_path(small_city)),
            "--inbox",
            str(small_city / "inbox"),
            "--out",
            str(out),
            "--run-id",
            "again",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_second_run_of_a_plan_is_refused_while_two_plans_at_once_both_finish(prefect_server, small_city, tmp_path):
    env, out = _env(), tmp_path / "out"
    runs = {
        plan_id: _start(
            [
                "run",
                str(plan_path(small_city, plan_id)),
                "--inbox",
                str(small_city / "inbox"),
                "--out",
                str(out),
                "--run-id",
                plan_id.lower(),
            ],
            env,
        )
        for plan_id in ("SZ-2026-ANNUAL", "SZ-2026-Q2")
    }
    deadline = time.monotonic() + 60
    while not (held(out, "SZ-2026-ANNUAL") and read_lock(out, "SZ-2026-ANNUAL")):  # holds its plan, names itself
        assert runs["SZ-2026-ANNUAL"].poll() is None and time.monotonic() < deadline, runs[
            "SZ-2026-ANNUAL"
        ].communicate()[1][-3000:]
        time.sleep(0.05)
    os.kill(runs["SZ-2026-ANNUAL"].pid, signal.SIGSTOP)  # it keeps its lock until the second run has asked
    try:
        again = _refused_run(small_city, out, env)
    finally:
        os.kill(runs["SZ-2026-ANNUAL"].pid, signal.SIGCONT)
    for plan_id, process in runs.items():
        _, stderr = process.communicate(timeout=400)  # reads its output: a full pipe cannot stall it
        assert process.returncode == 0, (plan_id, stderr[-3000:])
    assert again.returncode == 1
    assert "SZ-2026-ANNUAL is being run by run sz-2026-annual" in again.stderr and "Traceback" not in again.stderr
    assert not (out / "runs" / "again" / "01_ingest").exists()
    con = connect_warehouse(out, read_only=True)
    try:
        tasks = dict(con.sql("select plan_id, count(*) from joint_tasks group by plan_id").fetchall())
        runs_held = con.sql("select plan_id, run_id from runs order by plan_id").fetchall()
    finally:
        con.close()
    assert set(tasks) == {"SZ-2026-ANNUAL", "SZ-2026-Q2"} and all(n > 0 for n in tasks.values())
    assert runs_held == [("SZ-2026-ANNUAL", "sz-2026-annual"), ("SZ-2026-Q2", "sz-2026-q2")]
    assert (
        bundle_file(out / "published" / "SZ-2026-ANNUAL", "manifest.json").exists()
        and bundle_file(out / "published" / "SZ-2026-Q2", "manifest.json").exists()
    )
