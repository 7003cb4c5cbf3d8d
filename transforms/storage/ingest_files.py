"""Ingest, file by file (SPEC §4.1): one department's registry file read as submitted and written
twice, as raw text (a text or code column only where it differs from the typed value: normalise.py
`raw_to_keep`) and typed, with the same rows in the same order; and the stage's record of them.

    ingest_file(file, inbox, out_dir) -> the file's record (or its failure)
    ingest_record(inbox, found, files) -> IngestRecord (failed departments listed)
    file_news(record) -> the file's log line
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jointdraw.transforms.normalise import (
    dictionary_columns,
    normalise_registry,
    raw_dictionary_columns,
    raw_to_keep,
)
from jointdraw.transforms.stage_records import IngestRecord
from jointdraw.transforms.storage.registry_files import Inbox, RegistryFile, RegistryFileError, open_registry
from jointdraw.transforms.storage.runfolder import file_record, sha256_file, work_parquet_appender

SKIPPED_LISTED = 100  # rows without data listed per file in stage.json (all are counted)


def ingest_file(file: RegistryFile, inbox: Path, out_dir: Path, sha256: str | None = None) -> dict[str, Any]:
    """Reads one file and writes its raw and typed Parquet; returns their records or the failure.
    A batch of rows at a time (registry_files.BATCH_ROWS): read, normalised, appended to both; the two
    writers work on their own threads while the next batch is read, and the file is hashed beside them.
    `sha256`: the file's, when the caller hashed it already (to look for an earlier run's result)."""
    started = time.perf_counter()
    raw_path = out_dir / "raw" / file.department / f"{file.kind}.parquet"
    typed_path = out_dir / file.kind / f"{file.department}.parquet"
    rows, skipped = 0, []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-hash") as hasher:
        hashed = hasher.submit(sha256_file, file.path) if sha256 is None else None
        try:
            stream = open_registry(file)
            skipped += stream.titles
            typed_writer = work_parquet_appender(typed_path, dictionary_columns(file.kind))
            raw_writer = work_parquet_appender(raw_path, raw_dictionary_columns(file.kind, stream.mapping.values()))
            with raw_writer as raw_out, typed_writer as typed_out:
                for raw, dropped in stream.batches():
                    typed = normalise_registry(raw, file.kind, file.department)
                    if typed.height != raw.height:  # pragma: no cover - normalise is row-preserving by construction
                        raise AssertionError(f"{file.relative}: {raw.height} rows read but {typed.height} normalised")
                    raw_out(raw_to_keep(raw, typed, file.kind))
                    typed_out(typed)
                    rows += raw.height
                    skipped += dropped
            error = None
        except RegistryFileError as e:
            error = e.reason
        source = {
            "path": file.relative,
            "sha256": sha256 or hashed.result(),  # type: ignore[union-attr]
            "bytes": file.path.stat().st_size,
            "rows": None if error else rows,
        }
    if error is not None:
        return {"department": file.department, "kind": file.kind, "source": source, "error": error}
    return {
        "department": file.department,
        "kind": file.kind,
        "source": source,
        "encoding": stream.encoding,
        "unmapped_headers": stream.unmapped_headers,
        "header_line": stream.sheet.header_line,
        # rows without data (a title above the header, blank rows, notes below the data), by spreadsheet row
        "rows_skipped": len(skipped),
        "skipped": [{"line": s.line, "why": s.why, "text": s.text} for s in skipped[:SKIPPED_LISTED]],
        "rows_read": rows,
        "rows_written": rows,
        "outputs": [file_record(raw_path, rows, out_dir), file_record(typed_path, rows, out_dir)],
        "seconds": round(time.perf_counter() - started, 3),
    }


def ingest_record(inbox: Path, found: Inbox, files: list[dict[str, Any]]) -> IngestRecord:
    """The stage's record: every file's record (by department, then kind), what was ignored, and
    every department that failed (a file that could not be read, or an inbox problem)."""
    files = sorted(files, key=lambda r: (r["department"], r["kind"]))
    failures = [
        {"department": e.file.rstrip("/").split("/")[0], "file": e.file, "reason": e.reason} for e in found.problems
    ]
    failures += [
        {"department": r["department"], "file": r["source"]["path"], "reason": r["error"]}
        for r in files
        if "error" in r
    ]
    return IngestRecord(
        inbox=str(inbox),
        files=files,
        ignored=[{"file": f, "reason": why} for f, why in found.ignored],
        failed_departments=failures,
        rows_read=sum(r.get("rows_read", 0) for r in files),
        rows_written=sum(r.get("rows_written", 0) for r in files),
        rows_skipped=sum(r.get("rows_skipped", 0) for r in files),
    )


def _skipped_summary(skipped: list[dict[str, Any]]) -> str:
    """'title row 1; blank 2, 18; note 19, 20'."""
    by_why: dict[str, list[str]] = {}
    for s in skipped:
        by_why.setdefault(s["why"], []).append(str(s["line"]))
    return "; ".join(f"{why} {', '.join(lines[:5])}{' …' if len(lines) > 5 else ''}" for why, lines in by_why.items())


def file_news(r: dict[str, Any]) -> str:
    """A read file's log line: rows, encoding, unmapped headers, where the header was, rows skipped."""
    unmapped = f"; unmapped headers: {', '.join(r['unmapped_headers'])}" if r["unmapped_headers"] else ""
    skipped = (
        f"; header in row {r['header_line']}, {r['rows_skipped']} rows without data skipped "
        f"({_skipped_summary(r['skipped'])}: see stage.json)"
        if r["rows_skipped"]
        else ""
    )
    return f"{r['source']['path']} {r['rows_read']:,} rows ({r['encoding']}){unmapped}{skipped}"
