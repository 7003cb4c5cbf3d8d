"""Failures end in one clear line (issue 18): a full disk during publish, an unreachable Prefect API.
The commands run as a user runs them (a subprocess, the real terminal output), on a real small
file system (tmpfs, mounted for the test) that fills up."""

import os
import shutil
import subprocess
import sys

import pytest
from prefect.settings import PREFECT_API_URL

from jointdraw.transforms.documents.manifest import manifest_problems
from tests.conftest import plan_path

PLAN_ID = "SZ-2026-ANNUAL"
CLI = [sys.executable, "-m", "jointdraw.cli"]


def _one_failure_line(stderr: str, command: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith(f"jointdraw {command}: ")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


def test_an_unreachable_prefect_api_is_one_line(dirty_city, tmp_path):
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"}  # nothing listens on port 9
    done = subprocess.run(
        [*CLI, "run", str(plan_path(dirty_city)), "--inbox", str(dirty_city / "inbox"), "--out", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    line = _one_failure_line(done.stderr, "run")
    assert "cannot reach the Prefect API at http://127.0.0.1:9/api" in line and "prefect server start" in line
    assert done.stderr.strip() == line and not (tmp_path / "runs").exists()  # nothing else said, nothing started


def _run_as_a_user(plan, inbox, out) -> subprocess.CompletedProcess:
    """`jointdraw run` as a user runs it against the test's Prefect server, with what the terminal shows."""
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_LOGGING_LEVEL": "INFO"}
    return subprocess.run(
        [*CLI, "run", str(plan), "--inbox", str(inbox), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_an_inbox_that_is_not_there_is_one_line_without_a_traceback(prefect_server, dirty_city, tmp_path):
    """A mistyped --inbox: the run refuses to start, the flow's log included, with what to give instead."""
    missing = tmp_path / "inbox-2026"
    done = _run_as_a_user(plan_path(dirty_city), missing, tmp_path / "out")
    assert done.returncode == 1
    terminal = done.stdout + done.stderr
    assert "Traceback" not in terminal, terminal[-3000:]
    line = _one_failure_line(done.stderr, "run")
    assert f"does not fit the inbox {missing}" in line, line
    assert f"inbox {missing} is not a folder of department folders: --inbox names the folder" in terminal


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(disk)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_during_publish_keeps_the_previous_bundle_and_says_what_it_needs(
    prefect_server, dirty_run, small_disk
):
    out = small_disk / "out"
    source = dirty_run.parent.parent
    shutil.copytree(source / "runs" / "dirty", out / "runs" / "dirty")
    shutil.copytree(source / "published", out / "published")
    shutil.copy(source / "warehouse.duckdb", out / "warehouse.duckdb")
    (out / "runs" / "dirty" / "08_publish" / "stage.json").unlink()  # publish again: resume starts there
    before = {p.relative_to(out / "published"): p.read_bytes() for p in (out / "published").rglob("*") if p.is_file()}
    free = shutil.disk_usage(small_disk).free
    with open(small_disk / "filler", "wb") as f:  # leave 3 MiB: enough for the lock and the logs, not for a bundle
        f.write(b"\0" * (free - 3 * 2**20))
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    done = subprocess.run(
        [*CLI, "resume", "dirty", "--out", str(out)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1
    line = _one_failure_line(done.stderr, "resume")
    assert (
        "NoneType: None" not in done.stderr
        and sum(line[len("jointdraw resume: ") :] in x for x in done.stderr.splitlines()) == 1
    )
    assert (
        f"publish: the disk holding {out / 'published'} is full" in line
        and "a publish needs about 1" in line
        and "MiB are free" in line
    ), line
    assert f"the previous bundle in {out / 'published' / PLAN_ID} is kept" in line
    after = {p.relative_to(out / "published"): p.read_bytes() for p in (out / "published").rglob("*") if p.is_file()}
    assert after == before and manifest_problems(out / "published" / PLAN_ID) == []
    assert not list((out / ".staging").iterdir())  # the half bundle is gone
    (small_disk / "filler").unlink()  # space again: the same command finishes the run
    again = subprocess.run(
        [*CLI, "resume", "dirty", "--out", str(out)], env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr[-3000:]


def test_a_failing_plan_ends_with_its_own_message_and_no_library_traceback(prefect_server, small_city, tmp_path):
    """Issue 19: a department file with a header and no rows, run from the CLI: the run ends with the
    contract's message and nothing else — no traceback, no GX chatter. (Runs on temporary Prefect
    servers, where CancelledError tracebacks were seen at shutdown, are the SIGTERM test's: three
    runs, the same assertions.)"""
    inbox = tmp_path / "inbox"
    shutil.copytree(small_city / "inbox", inbox)
    objects = next((inbox / "EDU").glob("objects.*"))
    if objects.suffix == ".csv":
        objects.write_bytes(objects.read_bytes().splitlines(keepends=True)[0])
    else:
        pytest.skip("the generator writes EDU's objects as CSV")
    for attempt in range(1):
        done = _run_as_a_user(plan_path(small_city), inbox, tmp_path / f"out{attempt}")
        assert done.returncode == 1
        terminal = done.stdout + done.stderr
        assert "Traceback" not in terminal and "CancelledError" not in terminal, terminal[-3000:]
        assert "Created temporary directory" not in terminal  # Great Expectations' per-validation chatter
        assert (
            "jointdraw run: validate: the data contract is not met:\n"
            "  - EDU: EDU/objects.csv: the file has no data rows" in done.stderr
        )
        # the stage's line when it finds the file, and the run's last line; the flow's log and Prefect's echoes stay in
        # the API
        assert terminal.count("the file has no data rows") == 2, terminal[-3000:]
