"""Stage `merge` (SPEC §4.3): the departments' accepted objects → one object directory.

03_merge/directory.parquet   one row per entity, sorted by entity_key (transforms/merge.py states the rules)
03_merge/links.csv           records without a USCC, and the entity each was linked to (or not)
03_merge/conflicts.parquet   every attribute on which departments disagree, and the value chosen
03_merge/conflicts.csv       the same, for people
03_merge/unlinked.csv        of those, the ones no other record's codes link to
03_merge/stage.json          records in, entities out, linked and unlinked counts
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from prefect import get_run_logger

from jointdraw.transforms import settings
from jointdraw.transforms.merge import links_query, merge_connection, merge_into, type_conflicts_query
from jointdraw.transforms.storage.csvout import write_people_csv
from jointdraw.transforms.storage.runfolder import (
    atomic_path,
    file_record,
    stage_dir,
    write_json,
    write_parquet,
)


def _copy_to_parquet(con: Any, query: str, path: Path) -> Path:
    """A DuckDB query written to Parquet, atomically."""
    with atomic_path(path) as tmp:
        con.sql(query).write_parquet(str(tmp), compression="zstd")
    return path


def run_merge(run_dir: Path) -> dict[str, Any]:
    logger = get_run_logger()
    started = time.perf_counter()
    accepted = sorted((stage_dir(run_dir, "validate") / "accepted" / "objects").glob("*.parquet"))
    out_dir = stage_dir(run_dir, "merge")
    spill = out_dir / ".spill"
    spill.mkdir(parents=True, exist_ok=True)
    con = merge_connection(settings.MERGE_MEMORY_LIMIT, spill)
    con.read_parquet([str(p) for p in accepted]).create_view("records")
    merged = merge_into(con)
    directory = _copy_to_parquet(con, "select * from directory order by entity_key", out_dir / "directory.parquet")
    links = con.sql(links_query()).pl()
    type_conflicts = con.sql(type_conflicts_query()).pl()
    several = con.execute("select count(*) from directory where len(departments) > 1").fetchall()[0][0]
    by_link = dict(
        con.execute(
            "select l, count(*) from (select unnest(linked_by) as l from directory) group by l order by l"
        ).fetchall()
    )
    con.close()
    shutil.rmtree(spill, ignore_errors=True)
    outputs = [
        file_record(directory, merged.entities, out_dir),
        file_record(write_people_csv(links, out_dir / "links.csv"), links.height, out_dir),
        file_record(write_parquet(merged.conflicts, out_dir / "conflicts.parquet"), merged.conflicts.height, out_dir),
        file_record(write_people_csv(merged.conflicts, out_dir / "conflicts.csv"), merged.conflicts.height, out_dir),
        file_record(write_people_csv(merged.unlinked, out_dir / "unlinked.csv"), merged.unlinked.height, out_dir),
        file_record(write_people_csv(type_conflicts, out_dir / "type_conflicts.csv"), type_conflicts.height, out_dir),
    ]
    unlinked_entities = merged.unlinked["entity_key"].n_unique()
    record = {
        "stage": "merge",
        "inputs": [file_record(p, None, stage_dir(run_dir, "validate")) for p in accepted],
        "records_in": merged.records,
        "entities": merged.entities,
        "entities_listed_by_several_departments": several,
        "entities_by_link": by_link,
        "unlinked_entities": unlinked_entities,
        "conflicts_by_attribute": dict(sorted(merged.conflicts.group_by("attribute").len().iter_rows())),
        "type_conflicts": type_conflicts.height,  # registered type vs the USCC's entity class (GB 32100)
        "outputs": outputs,
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_json(record, out_dir / "stage.json")
    logger.info(
        "merge: %s records → %s entities (%s listed by several departments, %s unlinked); conflicts %s; "
        "%s records whose registered type contradicts their USCC (type_conflicts.csv)",
        f"{merged.records:,}",
        f"{merged.entities:,}",
        f"{several:,}",
        f"{unlinked_entities:,}",
        record["conflicts_by_attribute"] or "none",
        f"{type_conflicts.height:,}",
    )
    return record
