"""Where the merge stage's time goes: each of its steps timed (wall and CPU of this process) on a run's
accepted objects.

    .venv/bin/python scripts/profile_merge.py out/bench/runs/bench-8000000 [--range-records N] [--memory-limit 3GB]

`--range-records` and `--memory-limit` try other values of settings.MERGE_PARTITION_RECORDS and
MERGE_MEMORY_LIMIT (what each range holds, and where DuckDB spills). It runs the stage itself
(flows/merge.py `run_merge`, which names its steps) in a temporary run folder whose 02_validate
links to the given run's: the run folder is only read. CPU is the process's (DuckDB's
threads included): on a shared machine it is steadier than wall time.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect import flow

from jointdraw.flows.merge import run_merge
from jointdraw.transforms import settings
from jointdraw.transforms.stage_records import MergeRecord
from jointdraw.transforms.storage.layout import RunFolder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="a run folder whose 02_validate holds accepted objects")
    p.add_argument("--range-records", type=int, default=settings.MERGE_PARTITION_RECORDS)
    p.add_argument("--memory-limit", default=settings.MERGE_MEMORY_LIMIT)
    args = p.parse_args()
    settings.MERGE_PARTITION_RECORDS, settings.MERGE_MEMORY_LIMIT = args.range_records, args.memory_limit
    run = args.run
    root = Path(tempfile.mkdtemp(prefix="profile-merge-"))
    scratch = RunFolder(root / "runs" / run.name)
    scratch.path.mkdir(parents=True)
    scratch.stage("validate").symlink_to(RunFolder(run).stage("validate").resolve(), target_is_directory=True)
    times: list[tuple[str, float, float]] = []

    @contextmanager
    def step(name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        times.append((name, time.perf_counter() - wall, time.process_time() - cpu))

    @flow(name="profile-merge")
    def merged() -> MergeRecord:  # the stage maps its key ranges as tasks: inside a flow, as in a run
        return run_merge(scratch, step=step)

    wall, cpu = time.perf_counter(), time.process_time()
    record = merged()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"  {'step':<32} {'wall':>6}   {'CPU':>6}")
    for name, seconds, cpu_seconds in times:
        print(f"  {name:<32} {seconds:6.1f} s {cpu_seconds:6.1f} s")
    print(f"  {'stage (run_merge)':<32} {wall:6.1f} s {cpu:6.1f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"  {record.records_in:,} records, {record.entities:,} entities; peak RSS {peak:.2f} GiB")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
