"""tests/conftest.py `made_once`, how the workers of the test command share a city, its run and the
installed package: made once, by whichever worker asks first, and a test that writes into it fails."""

import subprocess
import sys

from tests.conftest import ROOT

CONFTEST = """
import os
import pytest
from tests.conftest import made_once

def make(folder):
    (folder / "made.txt").write_text("made")
    with open(os.environ["MAKES_LOG"], "a") as log:
        log.write(f"{os.getpid()}\\n")

@pytest.fixture(scope="session")
def shared(request, tmp_path_factory, worker_id):
    return made_once(request, tmp_path_factory, worker_id, "shared", make)
"""


def test_a_shared_folder_is_made_once_for_both_workers_and_a_test_writing_into_it_fails(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_reads.py").write_text("def test_reads(shared):\n    assert (shared / 'made.txt').exists()\n")
    (tmp_path / "test_writes.py").write_text("def test_writes(shared):\n    (shared / 'made.txt').write_text('x')\n")
    (tmp_path / "test_reads_too.py").write_text("def test_too(shared):\n    assert (shared / 'made.txt').exists()\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadfile", "-p", "no:cacheprovider", "-q"]
        + ["--basetemp", str(tmp_path / "base")],  # not pytest's own, whose oldest folders it would remove
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "MAKES_LOG": str(tmp_path / "makes.log")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert len((tmp_path / "makes.log").read_text().split()) == 1, output  # made by one worker, for both
    # the writer's worker fails at its session's end (and the other worker too, if it ended after the write)
    assert "3 passed" in output and "ERROR at teardown of test_writes" in output, output[-3000:]
    assert "which the session's tests share: copy it first" in output, output[-3000:]
