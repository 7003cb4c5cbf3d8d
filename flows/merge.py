"""Stage `merge` (SPEC §4.3): the departments' accepted objects → one object directory.

    03_merge/directory.parquet   one row per entity (transforms/merge.py states the rules)
    03_merge/records.parquet     which source rows (department, file, line) make each entity
    03_merge/conflicts.parquet   every attribute on which departments disagree, and the value chosen
    03_merge/conflicts.csv       the same, for people
    03_merge/unlinked.csv        records without a USCC that no other record's codes link to
    03_merge/stage.json          records in, entities out, linked and unlinked counts
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import polars as pl
from prefect import get_run_logger

from transforms.csvout import write_people_csv
from transforms.merge import entity_keys, merge_directories
from transforms.runfolder import file_record, stage_dir, write_json, write_parquet


def run_merge(run_dir: Path) -> dict[str, Any]:
    logger = get_run_logger()
    started = time.perf_counter()
    accepted = sorted((stage_dir(run_dir, "validate") / "accepted" / "objects").glob("*.parquet"))
    out_dir = stage_dir(run_dir, "merge")
    objects = pl.read_parquet(accepted)
    records_in = objects.height
    keyed = entity_keys(objects)
    del objects  # at city scale every copy is gigabytes
    merged = merge_directories(keyed)
    del keyed
    directory, found, records = merged.directory, merged.conflicts, merged.records
    unlinked = directory.filter(pl.col("linked_by").list.contains("unlinked"))
    outputs = [
        file_record(write_parquet(directory, out_dir / "directory.parquet"), directory.height, out_dir),
        file_record(write_parquet(records, out_dir / "records.parquet"), records.height, out_dir),
        file_record(write_parquet(found, out_dir / "conflicts.parquet"), found.height, out_dir),
        file_record(write_people_csv(found, out_dir / "conflicts.csv"), found.height, out_dir),
        file_record(write_people_csv(records.join(unlinked.select("entity_key", "name"), on="entity_key"), out_dir / "unlinked.csv"),
                    unlinked.height, out_dir),
    ]
    linked = directory.select(pl.col("linked_by").explode()).to_series().value_counts(sort=True)
    record = {
        "stage": "merge",
        "inputs": [file_record(p, None, stage_dir(run_dir, "validate")) for p in accepted],
        "records_in": records_in,
        "entities": directory.height,
        "entities_listed_by_several_departments": directory.filter(pl.col("departments").list.len() > 1).height,
        "entities_by_link": dict(sorted(linked.iter_rows())),
        "unlinked_entities": unlinked.height,
        "conflicts_by_attribute": dict(sorted(found.group_by("attribute").len().iter_rows())),
        "outputs": outputs,
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_json(record, out_dir / "stage.json")
    logger.info("merge: %s records → %s entities (%s listed by several departments, %s unlinked); conflicts %s",
                f"{records_in:,}", f"{directory.height:,}", f"{record['entities_listed_by_several_departments']:,}",
                f"{unlinked.height:,}", record["conflicts_by_attribute"] or "none")
    return record
