"""tests/cpu_per_test.py, the plugin that says where the test command's CPU goes: on pytest-xdist's two
workers, each test's CPU is counted in the pytest process or in the processes it started, and the
controller prints them per file."""

import subprocess
import sys

from tests.conftest import ROOT

BUSY = "sum(i * i for i in range(3_000_000))"


def test_the_plugin_tells_a_tests_own_cpu_from_the_cpu_of_the_processes_it_started(tmp_path):
    starts = f"subprocess.run([sys.executable, '-c', {BUSY!r}], check=True)"
    (tmp_path / "test_starts.py").write_text(f"import subprocess, sys\n\ndef test_starts():\n    {starts}\n")
    (tmp_path / "test_works.py").write_text(f"def test_works():\n    {BUSY}\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.cpu_per_test", "-n", "2", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = done.stdout.split("CPU seconds per test file")[1]
    rows = {
        line.split()[-1]: [float(x.rstrip("s")) for x in line.split()[:4]]  # wall, CPU, pytest's, started
        for line in table.splitlines()
        if line.endswith(".py") and "CPU" not in line
    }
    assert rows["test_starts.py"][3] > 0.05 and rows["test_starts.py"][3] > rows["test_starts.py"][2] / 2
    assert rows["test_works.py"][2] > 0.05 and rows["test_works.py"][3] == 0
    assert "2 tests:" in table and "in the processes they started" in table
