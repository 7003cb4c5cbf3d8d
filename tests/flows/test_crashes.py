"""Crashes (issue 10): a run killed with SIGKILL at a random point of every stage, then resumed,
publishes the bundle an uninterrupted run publishes; the warehouse holds the plan's rows once;
published/ never shows a partial bundle."""

import json
import os
import random
import signal
import subprocess
import sys
import time

from prefect.settings import PREFECT_API_URL

from jointdraw.transforms.documents.manifest import file_digest, manifest_problems
from jointdraw.transforms.storage.bundle import bundle_file
from jointdraw.transforms.storage.runfolder import STAGES
from jointdraw.transforms.storage.warehouse import connect_warehouse
from tests.conftest import plan_path
from tests.flows.test_publish_stage import VOLATILE

PLAN_ID = "SZ-2026-ANNUAL"


def _published_is_whole(out):
    """published/ holds nothing but complete bundles: each one's manifest checks out."""
    published = out / "published"
    if not published.exists():
        return
    assert sorted(p.name for p in published.iterdir()) in ([], [PLAN_ID]), list(published.iterdir())
    if (published / PLAN_ID).exists():
        assert manifest_problems(published / PLAN_ID) == []


def test_killed_at_a_random_point_of_every_stage_then_resumed(prefect_server, dirty_run, dirty_city, tmp_path):
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    out, rng = tmp_path / "out", random.Random(20261127)
    run_dir = out / "runs" / "crash"
    cli = [sys.executable, "-m", "jointdraw.cli"]
    command = [
        *cli,
        "run",
        str(plan_path(dirty_city)),
        "--inbox",
        str(dirty_city / "inbox"),
        "--out",
        str(out),
        "--run-id",
        "crash",
    ]
    killed_in = []
    for number, stage in enumerate(STAGES, start=1):
        if (run_dir / f"{number:02d}_{stage}" / "stage.json").exists():
            continue  # finished before the last kill landed
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 240
        while not (run_dir / f"{number:02d}_{stage}").exists() and process.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.4))  # somewhere in the stage
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            killed_in.append(
                next((s for n, s in reversed(list(enumerate(STAGES, 1))) if (run_dir / f"{n:02d}_{s}").exists()), "?")
            )
        _published_is_whole(out)
        # what an operator does after a crash: resume where it stopped (the kernel released the dead run's lock)
        command = [*cli, "resume", "crash", "--out", str(out)]
    final = subprocess.run(command, env=env, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr[-3000:]
    assert len(killed_in) >= 5, killed_in  # most stages were really interrupted

    reference, bundle = dirty_run.parent.parent / "published" / PLAN_ID, out / "published" / PLAN_ID
    first, second = (
        json.loads(bundle_file(b, "manifest.json").read_text(encoding="utf-8")) for b in (reference, bundle)
    )
    assert {k: v for k, v in first.items() if k not in VOLATILE} == {
        k: v for k, v in second.items() if k not in VOLATILE
    }
    for f in first["files"]:
        assert file_digest(reference, f["path"]) == file_digest(bundle, f["path"]), f["path"]  # pages: but their seal
    con = connect_warehouse(out, read_only=True)
    try:
        assert con.sql("select count(*) from runs where plan_id = $p", params={"p": PLAN_ID}).fetchall() == [(1,)]
        tasks = con.sql(
            "select count(*), count(distinct joint_task_id) from joint_tasks where plan_id = $p", params={"p": PLAN_ID}
        ).fetchall()
    finally:
        con.close()
    assert tasks[0][0] == tasks[0][1] == second["accounting"]["fuse"]["joint_tasks"]  # each row once
    assert not list((out / "published").glob(".*"))


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_sigterm_ends_the_run_and_its_temporary_server_and_resume_publishes_the_same_bytes(
    dirty_run, dirty_city, tmp_path
):
    """Issue 18: SIGTERM (what a scheduler or a container stop sends) at a random point: the run stops
    with a message saying how to resume, its temporary Prefect server stops listening, the Dask
    LocalCluster it started (`--dask local`: a scheduler and worker processes) is gone, the plan's lock
    is released (resume needs no unlock), and the resumed run publishes the uninterrupted run's bytes."""
    import re

    import psutil

    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # the run starts its own temporary server
    env["PREFECT_HOME"], env["PREFECT_LOGGING_LEVEL"] = (
        str(tmp_path / "prefect-home"),
        "INFO",
    )  # INFO: the server says its port
    out, rng = tmp_path / "out", random.Random(18)
    run_dir = out / "runs" / "term"
    cli = [sys.executable, "-m", "jointdraw.cli"]
    command = [
        *cli,
        "run",
        str(plan_path(dirty_city)),
        "--inbox",
        str(dirty_city / "inbox"),
        "--out",
        str(out),
        "--run-id",
        "term",
        "--dask",
        "local",
    ]
    # in validate, while the Dask workers write: the temporary server, the scheduler side and the workers are up
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, folder = time.monotonic() + 240, run_dir / f"{STAGES.index('validate') + 1:02d}_validate"
    while not ((folder / "accepted").exists() and len(psutil.Process(process.pid).children(recursive=True)) >= 3):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(rng.uniform(0, 0.3))
    started = psutil.Process(process.pid).children(recursive=True)
    ports = {c.laddr.port for p in started for c in p.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output[-2000:]
    assert "interrupted; the stages that finished are kept: continue with `jointdraw resume term" in output
    assert "Traceback" not in output and "CancelledError" not in output
    port = int(re.search(r"Starting temporary server on http://127\.0\.0\.1:(\d+)", output).group(1))
    _, alive = psutil.wait_procs(started, timeout=15)
    assert len(started) >= 3 and not alive, [(p.pid, p.name()) for p in alive]  # server, scheduler, workers: gone
    assert not [p for p in ports | {port} if _listening(p)], "a port the run opened is still listening"
    command = [*cli, "resume", "term", "--out", str(out)]  # no unlock: the lock was released
    on_server = {**env, "PREFECT_API_URL": PREFECT_API_URL.value()}  # the session's server: no second temporary one
    final = subprocess.run(command, env=on_server, capture_output=True, text=True)
    assert final.returncode == 0, final.stdout[-2000:] + final.stderr[-2000:]
    assert "Traceback" not in final.stdout + final.stderr
    reference, bundle = dirty_run.parent.parent / "published" / PLAN_ID, out / "published" / PLAN_ID
    first, second = (
        json.loads(bundle_file(b, "manifest.json").read_text(encoding="utf-8")) for b in (reference, bundle)
    )
    assert {k: v for k, v in first.items() if k not in VOLATILE} == {
        k: v for k, v in second.items() if k not in VOLATILE
    }
