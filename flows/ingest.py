"""Stage `ingest` (SPEC §4.1): every department's files → raw and typed Parquet, per file.

    01_ingest/raw/<DEPT>/<kind>.parquet   the rows as submitted (text), with source_file/line
    01_ingest/<kind>/<DEPT>.parquet       typed and normalised, same rows in the same order
    01_ingest/stage.json                  inputs, outputs, accounting, failed departments

Nothing is dropped: rows read = rows written, per file, checked. A department whose file
cannot be read fails; every failing department is reported, then the stage fails.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from jointdraw.flows.errors import StageFailed
from jointdraw.flows.fanout import map_tasks
from jointdraw.transforms.normalise import normalise_registry
from jointdraw.transforms.registry import KINDS, Kind
from jointdraw.transforms.storage.registry_files import (
    RegistryFile,
    RegistryFileError,
    read_registry,
    scan_inbox,
)
from jointdraw.transforms.storage.runfolder import file_record, stage_dir, write_json, write_parquet

SKIPPED_LISTED = 100  # rows without data listed per file in stage.json (all are counted)


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
def ingest_file(file: RegistryFile, inbox: Path, out_dir: Path) -> dict[str, Any]:
    """Reads one file and writes its raw and typed Parquet; returns their records or the failure."""
    started = time.perf_counter()
    source = file_record(file.path, None, inbox)
    try:
        raw = read_registry(file)
    except RegistryFileError as e:
        return {"department": file.department, "kind": file.kind, "source": source, "error": e.reason}
    typed = normalise_registry(raw.frame, file.kind, file.department)
    if typed.height != raw.frame.height:  # pragma: no cover - normalise is row-preserving by construction
        raise AssertionError(f"{file.relative}: {raw.frame.height} rows read but {typed.height} normalised")
    raw_path = write_parquet(raw.frame, out_dir / "raw" / file.department / f"{file.kind}.parquet")
    typed_path = write_parquet(typed, out_dir / file.kind / f"{file.department}.parquet")
    source["rows"] = raw.frame.height
    return {
        "department": file.department,
        "kind": file.kind,
        "source": source,
        "encoding": raw.encoding,
        "unmapped_headers": raw.unmapped_headers,
        "header_line": raw.header_line,
        # rows without data (a title above the header, blank rows, notes below the data), by spreadsheet row
        "rows_skipped": len(raw.skipped),
        "skipped": [{"line": s.line, "why": s.why, "text": s.text} for s in raw.skipped[:SKIPPED_LISTED]],
        "rows_read": raw.frame.height,
        "rows_written": typed.height,
        "outputs": [file_record(raw_path, raw.frame.height, out_dir), file_record(typed_path, typed.height, out_dir)],
        "seconds": round(time.perf_counter() - started, 3),
    }


def _skipped_summary(skipped: list[dict[str, Any]]) -> str:
    """'title row 1; blank 2, 18; note 19, 20'."""
    by_why: dict[str, list[str]] = {}
    for s in skipped:
        by_why.setdefault(s["why"], []).append(str(s["line"]))
    return "; ".join(f"{why} {', '.join(lines[:5])}{' …' if len(lines) > 5 else ''}" for why, lines in by_why.items())


def run_ingest(inbox: Path, run_dir: Path, kinds: tuple[Kind, ...] = KINDS) -> dict[str, Any]:
    """Ingests the whole inbox, one `ingest-file` task per department file, mapped on the flow's
    threads or a Dask cluster (flows/fanout.py); writes stage.json."""
    logger = get_run_logger()
    started = time.perf_counter()
    out_dir = stage_dir(run_dir, "ingest")
    found = scan_inbox(inbox, kinds)
    for rel, why in found.ignored:
        logger.warning("ingest: ignored %s: %s", rel, why)
    futures = map_tasks(ingest_file, file=found.files, inbox=inbox, out_dir=out_dir)
    files = sorted((f.result() for f in futures), key=lambda r: (r["department"], r["kind"]))
    failures = [
        {"department": e.file.rstrip("/").split("/")[0], "file": e.file, "reason": e.reason} for e in found.problems
    ]
    failures += [
        {"department": r["department"], "file": r["source"]["path"], "reason": r["error"]}
        for r in files
        if "error" in r
    ]
    for r in files:
        if "error" not in r:
            logger.info(
                "ingest: %s %s rows (%s)%s%s",
                r["source"]["path"],
                f"{r['rows_read']:,}",
                r["encoding"],
                f"; unmapped headers: {', '.join(r['unmapped_headers'])}" if r["unmapped_headers"] else "",
                f"; header in row {r['header_line']}, {r['rows_skipped']} rows without data skipped "
                f"({_skipped_summary(r['skipped'])}: see stage.json)"
                if r["rows_skipped"]
                else "",
            )
    record = {
        "stage": "ingest",
        "inbox": str(inbox),
        "files": files,
        "ignored": [{"file": f, "reason": why} for f, why in found.ignored],
        "failed_departments": failures,
        "rows_read": sum(r.get("rows_read", 0) for r in files),
        "rows_written": sum(r.get("rows_written", 0) for r in files),
        "rows_skipped": sum(r.get("rows_skipped", 0) for r in files),  # titles, blank rows, notes: never data
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_json(record, out_dir / "stage.json")
    if failures:
        lines = "\n".join(f"  - {f['department']}: {f['file']}: {f['reason']}" for f in failures)
        raise StageFailed(
            f"ingest: {len({f['department'] for f in failures})} department(s) could not be read:\n{lines}"
        )
    return record
