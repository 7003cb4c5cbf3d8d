"""Stage `ingest` (SPEC §4.1): every department's files → raw and typed Parquet, per file.

    01_ingest/raw/<DEPT>/<kind>.parquet   the rows as submitted (text), with source_file/line; a text or code
                                          column only where it differs from the typed value (null: as typed)
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

from prefect import get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE

from jointdraw.flows.errors import StageFailed
from jointdraw.flows.fanout import map_tasks
from jointdraw.transforms import settings
from jointdraw.transforms.registry import KINDS, Kind
from jointdraw.transforms.stage_records import IngestRecord, ReuseKey, reused_from
from jointdraw.transforms.storage import ingest_files
from jointdraw.transforms.storage.hashed_ahead import file_identity
from jointdraw.transforms.storage.layout import RunFolder
from jointdraw.transforms.storage.registry_files import RegistryFile, scan_inbox
from jointdraw.transforms.storage.reuse import EarlierResults, ingest_key, unchanged_since
from jointdraw.transforms.storage.runfolder import sha256_file


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
def ingest_file(file: RegistryFile, inbox: Path, out_dir: Path, earlier: EarlierResults) -> dict[str, Any]:
    """Reads one file and writes its raw and typed Parquet — or takes them from an earlier run that read the
    same bytes (`earlier`) —; returns their records, with the file's reuse key, or the failure."""
    before = file_identity(file.path)
    sha256, taken = _taken(file, out_dir, earlier)
    if taken is not None:
        return taken
    record = ingest_files.ingest_file(file, inbox, out_dir, sha256)  # hashed once: the state check sees a change
    if "error" in record:
        return record
    key = ingest_key(file.relative, file.kind, record["source"]["sha256"])
    if not unchanged_since(file.path, before, key, record):
        return record  # a file that changed while it was read: its outputs are not keyed (no later run takes them)
    return {**record, "reuse": ReuseKey(key=key).model_dump()}


def _taken(file: RegistryFile, out_dir: Path, earlier: EarlierResults) -> tuple[str | None, dict[str, Any] | None]:
    """(the file's SHA-256 if it was hashed, the record of its ingest taken from an earlier run that read the same
    bytes, or None). Hashed only when an earlier run ingested a file of this name and size."""
    if not earlier.may_hold(file.relative, file_identity(file.path)[1]):
        return None, None
    sha256 = sha256_file(file.path)
    taken = earlier.take(ingest_key(file.relative, file.kind, sha256), out_dir)
    return sha256, taken.record_here() if taken else None


def _taken_here(files: list[RegistryFile], out_dir: Path, earlier: EarlierResults) -> dict[str, dict[str, Any]]:
    """The files whose ingest is taken from an earlier run, by inbox path, taken in the flow itself (a task per
    file costs Prefect's round trips: 0.5 s for the 8M city's forty files); a file that cannot be read now is
    left to its task, which retries."""
    found = {}
    for file in files:
        try:
            _, taken = _taken(file, out_dir, earlier)
        except OSError:
            continue
        if taken is not None:
            found[file.relative] = taken
    return found


def run_ingest(inbox: Path, run: RunFolder, kinds: tuple[Kind, ...] = KINDS, reuse: bool = False) -> IngestRecord:
    """Ingests the whole inbox, one `ingest-file` task per department file, mapped on the flow's
    threads or a Dask cluster (flows/fanout.py); with `reuse`, a file an earlier run in the output root
    ingested from the same bytes is taken from it instead."""
    logger = get_run_logger()
    found = scan_inbox(inbox, kinds)
    for rel, why in found.ignored:
        logger.warning("ingest: ignored %s: %s", rel, why)
    earlier = EarlierResults.of(run, "ingest") if reuse else EarlierResults()
    taken = _taken_here(found.files, run.stage("ingest"), earlier)
    largest_first = sorted(  # the city's export sets the pace
        (f for f in found.files if f.relative not in taken), key=lambda f: -f.path.stat().st_size
    )
    futures = map_tasks(
        ingest_file,
        at_once=settings.INGEST_FILES_AT_ONCE,
        file=largest_first,
        inbox=inbox,
        out_dir=run.stage("ingest"),
        earlier=unmapped(earlier),
    )
    record = ingest_files.ingest_record(inbox, found, [*taken.values(), *(f.result() for f in futures)])
    for r in record.files:
        if "error" not in r:
            taken = f" — {reused.text()}" if (reused := reused_from(r)) else ""
            logger.info("ingest: %s%s", ingest_files.file_news(r), taken)
    if failures := record.failed_departments:
        lines = "\n".join(f"  - {f['department']}: {f['file']}: {f['reason']}" for f in failures)
        departments = len({f["department"] for f in failures})
        raise StageFailed(f"ingest: {departments} department(s) could not be read:\n{lines}", record)
    return record
