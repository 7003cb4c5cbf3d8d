"""Stage `merge` (SPEC §4.3): the departments' accepted objects → one object directory.

03_merge/directory.parquet   one row per entity, sorted by entity_key (transforms/merge.py states the rules)
03_merge/links.csv           records without a USCC, and the entity each was linked to (or not)
03_merge/conflicts.parquet   every attribute on which departments disagree, and the value chosen
03_merge/conflicts.csv       the same, for people
03_merge/unlinked.csv        of those, the ones no other record's codes link to
03_merge/stage.json          records in, entities out, linked and unlinked counts

With `reuse`, a directory an earlier run in the same output root merged from the same accepted objects
files (transforms/storage/reuse.py `merge_key`) is taken from that run: its record says `reused_from`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from prefect import get_run_logger

from jointdraw.transforms import settings
from jointdraw.transforms.merge import (
    StepTimer,
    links_query,
    merge_connection,
    merge_into,
    type_conflicts_query,
    untimed,
)
from jointdraw.transforms.stage_records import MergeRecord, ReuseKey
from jointdraw.transforms.storage.csvout import write_people_csv
from jointdraw.transforms.storage.layout import RunFolder
from jointdraw.transforms.storage.reuse import EarlierResults, merge_key
from jointdraw.transforms.storage.runfolder import (
    atomic_path,
    file_record,
    write_parquet,
)


def _copy_to_parquet(con: Any, query: str, path: Path) -> Path:
    """A DuckDB query written to Parquet, atomically (snappy, as stages' working files are: runfolder.py)."""
    with atomic_path(path) as tmp:
        con.sql(query).write_parquet(str(tmp), compression="snappy")
    return path


def run_merge(run: RunFolder, reuse: bool = False, step: StepTimer = untimed) -> MergeRecord:
    """The directory merged from the accepted objects files, or, with `reuse`, taken from an earlier run
    that merged the same files. (`step` times the steps: scripts/profile_merge.py.)"""
    accepted = sorted((run.stage("validate") / "accepted" / "objects").glob("*.parquet"))
    out_dir = run.stage("merge")
    with step("inputs' SHA-256"):
        inputs = [file_record(p, None, run.stage("validate")) for p in accepted]
    key = ReuseKey(key=merge_key(inputs))
    if reuse and (taken := EarlierResults.of(run, "merge").take(key.key, out_dir)):
        get_run_logger().info("merge: reused from run %s (the accepted objects files are unchanged)", taken.run_id)
        return MergeRecord.model_validate({**taken.record_here(), "inputs": inputs, "reuse": key})
    spill = out_dir / ".spill"
    spill.mkdir(parents=True, exist_ok=True)
    con = merge_connection(settings.MERGE_MEMORY_LIMIT, spill)
    con.read_parquet([str(p) for p in accepted]).create_view("records")
    merged = merge_into(con, step)
    with step("directory, sorted, to Parquet"):
        directory = _copy_to_parquet(con, "select * from directory order by entity_key", out_dir / "directory.parquet")
    with step("links, type conflicts"):
        links = con.sql(links_query()).pl()
        type_conflicts = con.sql(type_conflicts_query()).pl()
    with step("close"):
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    with step("small files"):
        written = [
            (directory, merged.entities),
            (write_people_csv(links, out_dir / "links.csv"), links.height),
            (write_parquet(merged.conflicts, out_dir / "conflicts.parquet"), merged.conflicts.height),
            (write_people_csv(merged.conflicts, out_dir / "conflicts.csv"), merged.conflicts.height),
            (write_people_csv(merged.unlinked, out_dir / "unlinked.csv"), merged.unlinked.height),
            (write_people_csv(type_conflicts, out_dir / "type_conflicts.csv"), type_conflicts.height),
        ]
    with step("outputs' SHA-256"):
        outputs = [file_record(path, rows, out_dir) for path, rows in written]
    return MergeRecord(
        inputs=inputs,
        records_in=merged.records,
        entities=merged.entities,
        entities_listed_by_several_departments=merged.listed_by_several_departments,
        entities_by_link=merged.entities_by_link,
        unlinked_entities=merged.unlinked["entity_key"].n_unique(),
        conflicts_by_attribute=dict(sorted(merged.conflicts.group_by("attribute").len().iter_rows())),
        type_conflicts=type_conflicts.height,
        outputs=outputs,
        reuse=key,
    )
