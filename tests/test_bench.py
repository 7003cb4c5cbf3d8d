"""The bench at a small size (issue 23): it runs the whole flow twice, measures the floor in the
same run, prints the ratio and the fixed costs apart. Its figures are printed, not asserted (they
depend on the machine): what is asserted is that they are measured and make sense. (`--quarterly`,
which reruns with one department's file changed, is measured by hand at 8M: the reuse it shows is
tested in tests/flows/test_reuse.py, and two more runs here would cost the suite a minute.) Its city has bad
rows (`--dirty`), as real exports have: the stages' paths for them are measured too."""

import json
import os
import subprocess
import sys

from jointdraw.transforms.storage.runfolder import STAGES
from tests.conftest import ROOT


def test_the_bench_measures_the_whole_flow_twice_and_its_floor(tmp_path):
    figures = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "scripts/bench.py", "--objects", "20000", "--whole-only", "--repeat", "2", "--dirty"]
        + ["--work", str(tmp_path), "--json", str(figures)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "whole flow / floor:" in done.stdout and "fixed (process+server)" in done.stdout, done.stdout
    assert "CPU of the fastest run:" in done.stdout, done.stdout
    found = json.loads(figures.read_text())
    runs = found["whole"]["runs"]
    assert len(runs) == 2
    for run in runs:
        assert set(run["stage_seconds"]) == set(STAGES)
        assert run["seconds"] > run["stages_total"] > 0 and run["fixed_seconds"] > 0 and run["peak_gib"] > 0
        # every stage's sampled memory, none above the process's own peak (samples miss a peak, never add one)
        assert set(run["stage_peak_gib"]) == set(STAGES), run["stage_peak_gib"]
        assert all(0 < gib <= run["peak_gib"] + 0.01 for gib in run["stage_peak_gib"].values()), run
        # the machine's busy cores while each stage ran: some, never more than it has
        assert set(run["stage_cores"]) == set(STAGES), run["stage_cores"]
        assert all(0 < cores <= os.cpu_count() + 0.01 for cores in run["stage_cores"].values()), run
        # the CPU it used: the command's processes', and the machine's while it ran; neither more than the cores give
        for cpu in ("cpu_seconds", "machine_cpu_seconds"):
            assert 0 < run[cpu] <= run["seconds"] * os.cpu_count() + 0.5, (cpu, run)
        assert run["reused"] == {}, "the timed runs compute everything"
    # how quick the machine was, before and after the runs: what tells a slow hour of the VM from slower code
    assert all(0 < found["machine"][k] < 60 for k in ("loop_seconds_before", "loop_seconds_after")), found["machine"]
    assert "this machine's speed: a one-thread Python loop" in done.stdout, done.stdout
    assert found["dirty"] is True
    validated = json.loads((tmp_path / "out" / "bench" / "runs" / "whole" / "02_validate" / "stage.json").read_text())
    assert validated["rows_quarantined"] > 0, "the city's bad rows are quarantined"
    floor = found["whole"]["floor"]
    assert floor["input_scan"]["rows"] > 20_000 and floor["draw"]["eligible_pairs"] > 0 and floor["seconds"] > 0
