"""Concurrent runs (issue 10), as separate `jointdraw` processes on one output root: a second run
of the same plan is refused with a clear message; two different plans both finish and the
warehouse holds both."""

import os
import subprocess
import sys
import time

from prefect.settings import PREFECT_API_URL

from tests.conftest import plan_path
from jointdraw.transforms.bundle import bundle_file
from jointdraw.transforms.runlock import held
from jointdraw.transforms.warehouse import connect_warehouse


def _start(args, env):
    return subprocess.Popen([sys.executable, "-m", "jointdraw.flows.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _env():
    return {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}  # the test server: no temporary server per process


def test_two_runs_of_one_plan_at_once_one_is_refused(prefect_server, small_city, tmp_path):
    env, out = _env(), tmp_path / "out"
    run = ["run", str(plan_path(small_city)), "--inbox", str(small_city / "inbox"), "--out", str(out), "--stop-after", "validate"]
    first = _start([*run, "--run-id", "first"], env)
    deadline = time.monotonic() + 60
    while not held(out, "SZ-2026-ANNUAL"):  # the first run holds the plan
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()[1][-3000:]
        time.sleep(0.05)
    second = subprocess.run([sys.executable, "-m", "jointdraw.flows.cli", *run, "--run-id", "second"], env=env, capture_output=True, text=True)
    _, first_err = first.communicate(timeout=300)  # reads its output: a full pipe cannot stall it
    assert first.returncode == 0, first_err[-3000:]
    assert second.returncode == 1
    assert "SZ-2026-ANNUAL is being run by run first" in second.stderr and "Traceback" not in second.stderr
    assert not (out / "runs" / "second" / "01_ingest").exists()


def test_two_plans_at_once_both_finish_and_the_warehouse_holds_both(prefect_server, small_city, tmp_path):
    env, out = _env(), tmp_path / "out"
    runs = {plan_id: _start(["run", str(plan_path(small_city, plan_id)), "--inbox", str(small_city / "inbox"), "--out", str(out),
                             "--run-id", plan_id.lower()], env)
            for plan_id in ("SZ-2026-ANNUAL", "SZ-2026-Q2")}
    for plan_id, process in runs.items():
        _, stderr = process.communicate(timeout=400)
        assert process.returncode == 0, (plan_id, stderr[-3000:])
    con = connect_warehouse(out, read_only=True)
    try:
        held = dict(con.sql("select plan_id, count(*) from joint_tasks group by plan_id").fetchall())
        runs_held = con.sql("select plan_id, run_id from runs order by plan_id").fetchall()
    finally:
        con.close()
    assert set(held) == {"SZ-2026-ANNUAL", "SZ-2026-Q2"} and all(n > 0 for n in held.values())
    assert runs_held == [("SZ-2026-ANNUAL", "sz-2026-annual"), ("SZ-2026-Q2", "sz-2026-q2")]
    assert bundle_file(out / "published" / "SZ-2026-ANNUAL", "manifest.json").exists() and bundle_file(out / "published" / "SZ-2026-Q2", "manifest.json").exists()
