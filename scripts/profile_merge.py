"""Where the merge stage's time goes: each of its DuckDB steps timed on a run's accepted objects.

    .venv/bin/python scripts/profile_merge.py out/bench/runs/bench-8000000

Same connection settings as the stage (memory limit, spill folder); the outputs go to a
temporary folder, the run folder is only read.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from jointdraw.transforms.merge import (
    FULL_WIDTH,
    HALF_WIDTH,
    REGISTRATION_AUTHORITY,
    SHARED_COLUMNS,
    merge_connection,
    sql_statements,
)
from jointdraw.transforms.settings import MERGE_MEMORY_LIMIT
from jointdraw.transforms.storage.packaged import sql_text

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    run = Path(sys.argv[1])
    scratch = Path(tempfile.mkdtemp(prefix="profile-merge-"))
    con = merge_connection(MERGE_MEMORY_LIMIT, scratch / ".spill")
    con.read_parquet(
        [str(p) for p in sorted((run / "02_validate" / "accepted" / "objects").glob("*.parquet"))]
    ).create_view("records")

    def keyed() -> None:
        for statement in sql_statements("merge_keyed"):
            con.execute(statement, {"authority": REGISTRATION_AUTHORITY} if "$authority" in statement else None)

    steps = [
        ("keyed (view, links)", keyed),
        (
            "listed several times",
            lambda: con.execute(
                "create or replace temp table listed_several_times as "
                "select entity_key from keyed group by 1 having count(*) > 1"
            ),
        ),
        (
            "shared",
            lambda: con.execute(
                f"create or replace temp table shared as select {', '.join(SHARED_COLUMNS)} "
                "from keyed semi join listed_several_times using (entity_key)"
            ),
        ),
        ("grouped", lambda: con.execute(f"create or replace temp table grouped as {sql_text('merge_grouped')}")),
        (
            "directory (view)",
            lambda: con.execute(f"create or replace temp view directory as {sql_text('merge_directory')}"),
        ),
        (
            "conflicts",
            lambda: con.sql(
                sql_text("merge_conflicts"),
                params={"full_width": FULL_WIDTH, "half_width": HALF_WIDTH, "authority": REGISTRATION_AUTHORITY},
            ).pl(),
        ),
        (
            "sorted Parquet write",
            lambda: con.sql("select * from directory order by entity_key").write_parquet(
                str(scratch / "directory.parquet"), compression="snappy"
            ),
        ),
        (
            "unsorted Parquet write",
            lambda: con.sql("select * from directory").write_parquet(
                str(scratch / "unsorted.parquet"), compression="snappy"
            ),
        ),
    ]
    total = 0.0
    for name, step in steps:
        started = time.perf_counter()
        step()
        seconds = time.perf_counter() - started
        total += seconds if name != "unsorted Parquet write" else 0
        print(f"  {name:<24} {seconds:6.1f} s")
    print(f"  {'total (stage steps)':<24} {total:6.1f} s")


if __name__ == "__main__":
    main()
