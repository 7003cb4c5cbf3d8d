"""Stage `ingest` (SPEC §4.1): every department's files → raw and typed Parquet, per file.

    01_ingest/raw/<DEPT>/<kind>.parquet   the rows as submitted (text), with source_file/line
    01_ingest/<kind>/<DEPT>.parquet       typed and normalised, same rows in the same order
    01_ingest/stage.json                  inputs, outputs, accounting, failed departments

Nothing is dropped: rows read = rows written, per file, checked. A department whose file
cannot be read fails; every failing department is reported, then the stage fails.

A file whose bytes (and name) an earlier run in the same output root ingested with the same code is
taken from that run, with `reuse` (transforms/storage/reuse.py): its record says `reused_from`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from jointdraw.flows.errors import StageFailed
from jointdraw.flows.fanout import map_tasks
from jointdraw.transforms.registry import KINDS, Kind
from jointdraw.transforms.stage_records import IngestRecord
from jointdraw.transforms.storage import ingest_files
from jointdraw.transforms.storage.layout import RunFolder
from jointdraw.transforms.storage.registry_files import RegistryFile, scan_inbox
from jointdraw.transforms.storage.reuse import EarlierResults, ingest_key
from jointdraw.transforms.storage.runfolder import file_record


def _transient_read_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a file read only for an operating-system error (a network share that hiccupped),
    never for content: a bad file fails the same way every time."""
    return isinstance(state.data, OSError)


@task(
    name="ingest-file",
    task_run_name="ingest {file.relative}",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=_transient_read_error,
)
def ingest_file(file: RegistryFile, inbox: Path, out_dir: Path, source: dict[str, Any]) -> dict[str, Any]:
    """Reads one file and writes its raw and typed Parquet; returns their records or the failure."""
    return ingest_files.ingest_file(file, inbox, out_dir, source)


def run_ingest(inbox: Path, run: RunFolder, kinds: tuple[Kind, ...] = KINDS, reuse: bool = False) -> IngestRecord:
    """Ingests the whole inbox, one `ingest-file` task per department file, mapped on the flow's
    threads or a Dask cluster (flows/fanout.py); with `reuse`, a file an earlier run ingested from the
    same bytes is taken from it instead."""
    logger = get_run_logger()
    found = scan_inbox(inbox, kinds)
    for rel, why in found.ignored:
        logger.warning("ingest: ignored %s: %s", rel, why)
    out_dir = run.stage("ingest")
    sources = {f.relative: file_record(f.path, None, inbox) for f in found.files}
    keys = {f.relative: ingest_key(f.relative, f.kind, sources[f.relative]["sha256"]) for f in found.files}
    earlier = EarlierResults.of(run, "ingest") if reuse else EarlierResults()
    taken = {f.relative: t.record_here() for f in found.files if (t := earlier.take(keys[f.relative], out_dir))}
    todo = [f for f in found.files if f.relative not in taken]
    futures = (
        map_tasks(ingest_file, file=todo, inbox=inbox, out_dir=out_dir, source=[sources[f.relative] for f in todo])
        if todo
        else []
    )
    done = [
        r if "error" in r else {**r, "reuse": {"key": keys[r["source"]["path"]]}} for r in (f.result() for f in futures)
    ]
    record = ingest_files.ingest_record(inbox, found, done + list(taken.values()))
    for r in record.files:
        if "error" not in r:
            logger.info("ingest: %s", ingest_files.file_news(r))
    if failures := record.failed_departments:
        lines = "\n".join(f"  - {f['department']}: {f['file']}: {f['reason']}" for f in failures)
        departments = len({f["department"] for f in failures})
        raise StageFailed(f"ingest: {departments} department(s) could not be read:\n{lines}", record)
    return record
