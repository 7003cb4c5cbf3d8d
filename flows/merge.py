"""Stage `merge` (SPEC §4.3): the departments' accepted objects → one object directory.

03_merge/directory-NNN.parquet  one row per entity, sorted by entity_key, a file per range of keys (in key order:
                             together the directory sorted; transforms/merge.py states the rules)
03_merge/links.csv           records without a USCC, and the entity each was linked to (or not)
03_merge/conflicts.parquet   every attribute on which departments disagree, and the value chosen
03_merge/conflicts.csv       the same, for people
03_merge/unlinked.csv        of those, the ones no other record's codes link to
03_merge/stage.json          records in, entities out, linked and unlinked counts
03_merge/affected.parquet    merged again only: the entities merged again (the warehouse stores the directory as
                             their rows and the earlier directory's others)

The key ranges (about MERGE_PARTITION_RECORDS records each: one for a small city) are merged one
after the other on the flow's threads, or at once as `merge-partition` tasks on a Dask cluster
(flows/fanout.py), each writing its part of the directory and its conflicts and unlinked records;
the flow adds their counts and concatenates their tables in key order.

With `reuse`, a directory an earlier run in the same output root merged from the same accepted objects
files (transforms/storage/reuse.py `merge_key`) is taken from that run: its record says `reused_from`. When
only some departments' files differ from an earlier merge's, the directory is merged again from that merge's
(`_merged_again`): only the entities whose records may differ are merged — those of the records that are not the
same in those files before and now (a record that only moved within its file is the same), and of the records
without a USCC — and the others' rows and conflicts are taken as they were, in key order, never sorted again: the
same rows, conflicts and counts as merging everything (tests/flows/test_reuse.py); the record says
`updated_from`. So a department that sends its whole registry again each quarter, a few rows changed (the market
regulator's, most of the city), has only those entities merged again. When more than settings.MERGE_UPDATE_SHARE
of the earlier merge's entities would be, everything is merged. When none would be (a file sent again with its
rows in another order, or in another format), the earlier directory's files are this one's, linked: the stages
after it find them as the earlier run's and take what they made of them (the directory's digest, the draw's
pairs in scope, the public copy of the directory).
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
from prefect import get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE

from jointdraw.flows.fanout import cluster_threads, map_tasks
from jointdraw.transforms import settings
from jointdraw.transforms.merge import (
    Merged,
    StepTimer,
    in_key_range,
    key_ranges,
    key_records,
    links_query,
    merge_again,
    merge_connection,
    merge_into,
    merged_again,
    merged_together,
    type_conflicts_query,
    untimed,
)
from jointdraw.transforms.stage_records import MergeRecord, ReuseKey, UpdatedFrom
from jointdraw.transforms.storage.csvout import write_people_csv
from jointdraw.transforms.storage.layout import RunFolder
from jointdraw.transforms.storage.packaged import sql_text
from jointdraw.transforms.storage.reuse import EarlierResults, merge_key, still_recorded
from jointdraw.transforms.storage.runfolder import (
    AFFECTED_ENTITIES,
    WORK_OPTIONS,
    atomic_path,
    directory_part,
    directory_parts,
    file_record,
    link_file,
    write_parquet,
    write_work_parquet,
)

PARTS = ".parts"  # in the stage's folder while it runs: what every key range reads, and what each wrote
KEYS = "keys.duckdb"  # in PARTS: the departments' order and bits, and the records without a USCC with their keys


def _copy_to_parquet(con: Any, query: str, path: Path) -> Path:
    """A DuckDB query written to Parquet, atomically (snappy, as stages' working files are: runfolder.py)."""
    with atomic_path(path) as tmp:
        con.sql(query).write_parquet(str(tmp), compression="snappy")
    return path


@task(name="merge-partition", task_run_name="merge keys {number}", cache_policy=NO_CACHE)
def merge_partition(accepted: list[Path], out_dir: Path, bounds: list[str], number: int) -> Merged:
    """The directory of the entities of key range `number`, sorted, written as `directory-NNN.parquet`; its
    conflicts and unlinked records written in the PARTS folder. Its connection reads only the range's records
    (filtered as the files are read) and its records without a USCC (from KEYS). Returns its counts (the flow
    reads the tables back: what crosses the network is counts)."""
    parts = out_dir / PARTS
    spill = parts / f"spill-{number:03d}"
    con = range_connection(accepted, parts, bounds, number, spill)
    merged = merge_into(con)
    write_range_directory(con, out_dir / directory_part(number))
    con.close()
    shutil.rmtree(spill, ignore_errors=True)
    for name, frame in (("conflicts", merged.conflicts), ("unlinked", merged.unlinked)):
        frame.write_parquet(parts / f"{name}-{number:03d}.parquet")
    return replace(merged, conflicts=merged.conflicts.clear(), unlinked=merged.unlinked.clear())


def range_connection(accepted: list[Path], parts: Path, bounds: list[str], number: int, spill: Path) -> Any:
    """A connection to merge key range `number` in (`merge_into`): the view `records` reads only the range's records
    (filtered as the files are read), with the departments' order and the range's records without a USCC from
    KEYS in `parts` (`write_range_keys`)."""
    spill.mkdir(parents=True, exist_ok=True)
    con = merge_connection(settings.MERGE_MEMORY_LIMIT, spill)
    files = con.read_parquet([str(p) for p in accepted])
    files.filter(in_key_range(bounds, number, "uscc")).create_view("records")  # the range's USCCs only
    con.execute(f"attach '{parts / KEYS}' as keys (read_only)")
    con.execute("create temp table departments as select * from keys.departments")
    con.execute(
        "create temp table linked_without_uscc as select * from keys.linked_without_uscc "
        f"where {in_key_range(bounds, number, 'entity_key')}"
    )
    con.execute("detach keys")
    con.execute(f"create temp view linked as {sql_text('merge_linked')}")
    return con


def write_range_directory(con: Any, path: Path) -> Path:
    """A key range's directory (`merge_into`'s table `directory`), sorted by entity key, written to `path`."""
    return _copy_to_parquet(con, "select * from directory order by entity_key", path)


def write_range_keys(con: Any, parts: Path) -> list[str]:
    """From a connection whose view `records` holds every accepted record, after `key_records`: the bounds of the
    key ranges (`key_ranges`, about MERGE_PARTITION_RECORDS records each) and, in KEYS in `parts`, what every range
    reads (`range_connection`)."""
    records = con.execute("select count(*) from records").fetchall()[0][0]
    bounds = key_ranges(con, _range_count(records))
    con.execute(f"attach '{parts / KEYS}' as keys")
    con.execute("create table keys.departments as select * from departments")
    con.execute("create table keys.linked_without_uscc as select * from linked_without_uscc")
    con.execute("detach keys")
    return bounds


def _range_count(records: int) -> int:
    """How many key ranges a merge of `records` records is cut into: about MERGE_PARTITION_RECORDS records each; on
    a cluster a range for every worker thread at least."""
    return max(-(-records // settings.MERGE_PARTITION_RECORDS), cluster_threads())


def _merged_in_ranges(con: Any, accepted: list[Path], out_dir: Path, step: StepTimer) -> Merged:
    """The entity keys cut into ranges (about MERGE_PARTITION_RECORDS records each; on a cluster a range for every
    worker thread at least), each merged by a `merge-partition` task (one at a time on the flow's threads: each
    uses every core), their counts added and their tables read back in key order."""
    with step("key ranges"):
        bounds = write_range_keys(con, out_dir / PARTS)
    numbers = list(range(len(bounds) + 1))
    with step("ranges merged"):
        merged = [
            f.result()
            for f in map_tasks(
                merge_partition,
                at_once=1,
                accepted=unmapped(accepted),
                out_dir=out_dir,
                bounds=unmapped(bounds),
                number=numbers,
            )
        ]
    tables = {
        name: pl.concat([pl.read_parquet(out_dir / PARTS / f"{name}-{n:03d}.parquet") for n in numbers])
        for name in ("conflicts", "unlinked")
    }
    return merged_together(merged, **tables)


def _merged_whole(
    accepted: list[Path], out_dir: Path, spill: Path, step: StepTimer
) -> tuple[Merged, pl.DataFrame, pl.DataFrame]:
    """Every accepted objects file merged, range by range (`_merged_in_ranges`); with the links and type conflicts."""
    con = merge_connection(settings.MERGE_MEMORY_LIMIT, spill)
    con.read_parquet([str(p) for p in accepted]).create_view("records")
    with step("links (keys of records without a USCC)"):
        key_records(con)
    merged = _merged_in_ranges(con, accepted, out_dir, step)
    with step("links, type conflicts"):
        links = con.sql(links_query()).pl()
        type_conflicts = con.sql(type_conflicts_query()).pl()
    con.close()
    return merged, links, type_conflicts


def _rows(path: Path) -> int | None:
    """A Parquet file's rows, from its footer; None when it is not there."""
    try:
        return pl.scan_parquet(path).select(pl.len()).collect().item()
    except (OSError, pl.exceptions.PolarsError):
        return None


def _earlier_merges(
    earlier: EarlierResults, inputs: list[dict[str, Any]], validate: Path | None = None
) -> list[tuple[Path, dict[str, Any], list[str]]]:
    """The merges of other runs of the output root (`earlier`) that this one may be merged again from
    (`_merged_again`), most alike first: (their stage folder, their record, the files that differ). Merged by this
    code (their key is what this code gives their inputs) from files of the same departments. Most alike: the
    fewest rows gained or lost in the files that differ (with `validate`, this run's stage folder: a file sent
    again in another order has as many rows as the one it was sent as, one a row shorter since does not), then the
    fewest bytes in them, as they were and as they are."""
    now = {f["path"]: f for f in inputs}
    found = []
    for key, candidates in earlier.by_key.items():
        for candidate in candidates:
            before = {f["path"]: f for f in candidate.record.get("inputs", [])}
            if before.keys() != now.keys() or key != merge_key(candidate.record["inputs"]):
                continue  # other departments, or another version of the code
            changed = sorted(p for p in now if now[p]["sha256"] != before[p]["sha256"])
            if not changed:
                continue
            rows = 0.0
            if validate is not None:
                earlier_validate = RunFolder(candidate.folder.parent).stage("validate")
                for p in changed:
                    rows_now, rows_before = _rows(validate / p), _rows(earlier_validate / p)
                    rows += float("inf") if rows_now is None or rows_before is None else abs(rows_now - rows_before)
            size = sum(now[p]["bytes"] + before[p]["bytes"] for p in changed)
            found.append(((rows, size), candidate.folder, candidate.record, changed))
    return [(folder, record, changed) for _, folder, record, changed in sorted(found, key=lambda f: f[0])]


def _merged_again(
    run: RunFolder, earlier: EarlierResults, inputs: list[dict[str, Any]], out_dir: Path, spill: Path
) -> tuple[Merged, pl.DataFrame, pl.DataFrame, UpdatedFrom] | None:
    """The directory merged again from an earlier merge whose files differ from these only in some departments'
    (`_earlier_merges`), written in this stage's key ranges; with its links and type conflicts, and where it came
    from. None when there is none whose files are all still as it recorded them, or when, from the most alike of
    those, more than MERGE_UPDATE_SHARE of its entities would be merged again (finding them reads every file twice:
    the others, less alike, are not tried)."""
    for folder, record, changed in _earlier_merges(earlier, inputs, run.stage("validate")):
        earlier_validate = RunFolder(folder.parent).stage("validate")
        earlier_parts = [f for f in record["outputs"] if f["path"].startswith("directory-")]
        conflicts_file = [f for f in record["outputs"] if f["path"] == "conflicts.parquet"]
        before_changed = [f for f in record["inputs"] if f["path"] in changed]
        if not (
            still_recorded(folder, earlier_parts + conflicts_file) and still_recorded(earlier_validate, before_changed)
        ):
            continue
        validate = run.stage("validate")
        now = [str(validate / f["path"]) for f in inputs]
        before = [str((earlier_validate if f["path"] in changed else validate) / f["path"]) for f in inputs]
        departments = [Path(p).stem for p in changed]
        con = merge_connection(settings.MERGE_MEMORY_LIMIT, spill)
        earlier_directory = [folder / f["path"] for f in earlier_parts]
        most = int(settings.MERGE_UPDATE_SHARE * record["entities"])
        again = merge_again(con, before, now, departments, earlier_directory, _range_count, most)
        con.close()
        if again is None:
            get_run_logger().info(
                "merge: merged whole: more than %d entities (%.0f%%) of run %s's merge would be merged again, "
                "or its departments differ",
                most,
                settings.MERGE_UPDATE_SHARE * 100,
                folder.parent.name,
            )
            return None
        # a range none of whose entities was merged again is the earlier file, linked: by its SHA-256 the draw takes
        # its pairs in scope, and when every range is, the commit takes the digest and publish the public copy
        for number, directory in enumerate(again.ranges):
            if directory is None:
                link_file(earlier_directory[number], out_dir / directory_part(number))
                continue
            with atomic_path(out_dir / directory_part(number)) as tmp:
                directory.sink_parquet(tmp, **WORK_OPTIONS)
        merged = merged_again(
            directory_parts(out_dir),
            pl.read_parquet(folder / "conflicts.parquet"),
            earlier_directory,
            again.affected,
            again.part,
            again.unlinked_records,
        )
        updated = UpdatedFrom(
            run_id=folder.parent.name,
            departments=departments,
            entities_merged_again=again.affected.len(),
            directory_sha256=[f["sha256"] for f in earlier_parts],
        )
        write_work_parquet(again.affected.sort().to_frame(), out_dir / AFFECTED_ENTITIES)
        return merged, again.links, again.type_conflicts, updated
    return None


def run_merge(run: RunFolder, reuse: bool = False, step: StepTimer = untimed) -> MergeRecord:
    """The directory merged from the accepted objects files, or, with `reuse`, taken from an earlier run
    that merged the same files, or merged again from one that merged files differing only in a few departments'.
    (`step` times the steps: scripts/profile_merge.py.)"""
    accepted = sorted((run.stage("validate") / "accepted" / "objects").glob("*.parquet"))
    out_dir = run.stage("merge")
    with step("inputs' SHA-256"):
        inputs = [file_record(p, None, run.stage("validate")) for p in accepted]
    key = ReuseKey(key=merge_key(inputs))
    for old in directory_parts(out_dir):  # an earlier attempt's: this one's ranges (or the reused run's) may be fewer
        old.unlink()
    (out_dir / AFFECTED_ENTITIES).unlink(missing_ok=True)  # an earlier attempt's, merged again
    earlier = EarlierResults.of(run, "merge") if reuse else EarlierResults()
    if taken := earlier.take(key.key, out_dir):
        get_run_logger().info("merge: reused from run %s (the accepted objects files are unchanged)", taken.run_id)
        return MergeRecord.model_validate({**taken.record_here(), "inputs": inputs, "reuse": key})
    shutil.rmtree(out_dir / PARTS, ignore_errors=True)  # an interrupted attempt's
    (out_dir / PARTS).mkdir(parents=True)
    spill = out_dir / PARTS / "spill"
    spill.mkdir()
    if again := _merged_again(run, earlier, inputs, out_dir, spill):
        merged, links, type_conflicts, updated = again
        get_run_logger().info("merge: %s; the other entities' rows and conflicts taken as they were", updated.text())
    else:
        merged, links, type_conflicts, updated = (*_merged_whole(accepted, out_dir, spill, step), None)
    with step("close"):
        shutil.rmtree(out_dir / PARTS, ignore_errors=True)
    with step("small files"):
        written = [
            *((part, pl.scan_parquet(part).select(pl.len()).collect().item()) for part in directory_parts(out_dir)),
            (write_people_csv(links, out_dir / "links.csv"), links.height),
            (write_parquet(merged.conflicts, out_dir / "conflicts.parquet"), merged.conflicts.height),
            (write_people_csv(merged.conflicts, out_dir / "conflicts.csv"), merged.conflicts.height),
            (write_people_csv(merged.unlinked, out_dir / "unlinked.csv"), merged.unlinked.height),
            (write_people_csv(type_conflicts, out_dir / "type_conflicts.csv"), type_conflicts.height),
            *([(out_dir / AFFECTED_ENTITIES, updated.entities_merged_again)] if updated else []),
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
        updated_from=updated,
    )
