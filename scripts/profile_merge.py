"""Where the merge stage's time goes: each of its steps timed (wall and CPU of this process) on a run's
accepted objects.

    .venv/bin/python scripts/profile_merge.py out/bench/runs/bench-8000000 [--range-records N] [--memory-limit 3GB]
    .venv/bin/python scripts/profile_merge.py out/bench/runs/whole --ranges

`--ranges`: then each key range merged again apart, its own steps timed (`merge_into`'s, and the writing of its
sorted directory), and what that writing is made of, each apart: the range's directory rows made (into a table),
sorted by key with every column (into a table), their keys alone sorted, and the sorted table written.

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
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from prefect import flow

from jointdraw.flows.merge import range_connection, run_merge, write_range_directory, write_range_keys
from jointdraw.transforms import settings
from jointdraw.transforms.merge import StepTimer, key_records, merge_connection, merge_into
from jointdraw.transforms.stage_records import MergeRecord
from jointdraw.transforms.storage.layout import RunFolder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="a run folder whose 02_validate holds accepted objects")
    p.add_argument("--range-records", type=int, default=settings.MERGE_PARTITION_RECORDS)
    p.add_argument("--memory-limit", default=settings.MERGE_MEMORY_LIMIT)
    p.add_argument("--ranges", action="store_true", help="then each key range's own steps, the range merged apart")
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
    if args.ranges:
        times.clear()
        _ranges_apart(sorted(scratch.stage("validate").glob("accepted/objects/*.parquet")), root / "ranges", step)
        for name, seconds, cpu_seconds in times:
            print(f"  {name:<44} {seconds:6.1f} s {cpu_seconds:6.1f} s")
    shutil.rmtree(root, ignore_errors=True)


def _ranges_apart(accepted: list[Path], parts: Path, step: StepTimer) -> None:
    """Each key range merged as the stage merges it (flows/merge.py `range_connection`, `merge_into`), its steps
    timed, then what writing its sorted directory is made of, each step apart (DuckDB temp tables)."""
    parts.mkdir(parents=True)
    con = merge_connection(settings.MERGE_MEMORY_LIMIT, parts / "spill")
    con.read_parquet([str(p) for p in accepted]).create_view("records")
    key_records(con)
    bounds = write_range_keys(con, parts)
    con.close()
    for number in range(len(bounds) + 1):
        con = range_connection(accepted, parts, bounds, number, parts / f"spill-{number:03d}")

        def in_range(name: str, number: int = number) -> AbstractContextManager[None]:
            return step(f"range {number}: {name}")

        merge_into(con, in_range)
        with in_range("directory written, sorted"):
            write_range_directory(con, parts / "d.parquet")  # as merge_partition writes it
        for name, query in (
            ("apart: its rows made, into a table", "create temp table d as select * from directory"),
            ("apart: sorted by key, into a table", "create temp table s as select * from d order by entity_key"),
            ("apart: their keys alone sorted", "create temp table k as select entity_key from d order by entity_key"),
            ("apart: the sorted table written", f"copy s to '{parts / 's.parquet'}' (compression snappy)"),
        ):
            with in_range(name):
                con.execute(query)
        con.close()


if __name__ == "__main__":
    main()
