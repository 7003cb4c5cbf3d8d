"""The data contract on departments' files, file by file (SPEC §4.2): what both flows' validate
stages share (the plan's registries, the results). No Prefect here: the flows map
`validate_department_files` over batches of files (flows/fanout.py) and gather with `validation_record`.

    file_failures(contract, kinds, ingest_dir)        files that break a file-level rule: they go no further
    validate_department_files(kind, typed, …)          one GX validation of a batch of files; each one's rows
    validation_record(contract, files, out_dir, …)    the quarantine CSV/XLSX, one Data Docs site, the record
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from jointdraw.transforms import settings
from jointdraw.transforms.contract.frames import result_slice, validation_frame
from jointdraw.transforms.contract.quarantine import QUARANTINE_SCHEMA, accepted_rows, file_verdicts
from jointdraw.transforms.contract.suites import Rule, file_inventory, file_rules
from jointdraw.transforms.contract.validation import Contract, build_data_docs, for_docs
from jointdraw.transforms.documents import people_headers
from jointdraw.transforms.normalise import dictionary_columns
from jointdraw.transforms.registry import Kind
from jointdraw.transforms.stage_records import FileRecord, ValidateRecord
from jointdraw.transforms.storage.runfolder import (
    file_record,
    link_file,
    read_stage_record,
    work_parquet_appender,
    write_parquet,
)
from jointdraw.transforms.storage.xlsxout import write_people_tables


def _file_problems(contract: Contract, ingest_dir: Path, kind: Kind) -> list[dict[str, Any]]:
    """The records of the kind's files that break a file-level rule (one GX validation of the
    kind's file inventory): those departments fail and their rows go no further."""
    departments = sorted(p.stem for p in (ingest_dir / kind).glob("*.parquet"))
    raw_path = {d: ingest_dir / "raw" / d / f"{kind}.parquet" for d in departments}
    rows = {d: pl.scan_parquet(raw_path[d]).select(pl.len()).collect().item() for d in departments}
    if not departments:
        return []
    rules = file_rules(kind)
    inventory = file_inventory({d: list(pl.read_parquet_schema(raw_path[d])) for d in departments}, rows, kind)
    result = contract.validate(
        f"{kind}-files", inventory, rules, suite_name=f"{kind}-files", batch=f"{kind} file inventory"
    )
    problems: dict[str, list[str]] = {}
    for r in result.results:
        for row in r.result.get("unexpected_index_list") or []:
            problems.setdefault(inventory["source_file"][row], []).append(
                rules[r.expectation_config.meta["rule_index"]].reason
            )
    return [
        {
            "department": d,
            "kind": kind,
            "file": source_file(ingest_dir, d, kind),
            "rows_read": rows[d],
            "file_problems": why,
        }
        for d, why in sorted(problems.items())
    ]


def file_failures(contract: Contract, kinds: tuple[Kind, ...], ingest_dir: Path) -> list[dict[str, Any]]:
    """The records of the files of these kinds that break a file-level rule (they go no further)."""
    return [f for kind in kinds for f in _file_problems(contract, ingest_dir, kind)]


def source_file(ingest_dir: Path, department: str, kind: Kind) -> str:
    """The file as the department submitted it (`AMR/objects.csv`): from its rows, else (a file
    without rows) from ingest's record."""
    first = (
        pl.scan_parquet(ingest_dir / "raw" / department / f"{kind}.parquet")
        .select(pl.col("source_file").first())
        .collect()
        .item()
    )
    if first:
        return first
    ingest = read_stage_record(ingest_dir.parent, "ingest") or {}
    return next(
        (f["source"]["path"] for f in ingest.get("files", []) if f["department"] == department and f["kind"] == kind),
        f"{department}/{kind}.*",
    )


def validate_department_files(
    kind: Kind, typed: dict[str, Path], ingest_dir: Path, rules: list[Rule], out_dir: Path
) -> list[dict[str, Any]]:
    """One GX validation of several departments' typed files of one kind (`typed`: department →
    typed file; their rows as submitted are in `ingest_dir`/raw/), one after the other in one frame;
    writes each department's accepted and quarantined rows.

    The rules are per file (uniqueness is a fingerprint of file + id), so a file's verdicts are the
    same in any batch; GX's fixed cost per validation (about 0.3 s for a suite, however small the
    file) is paid once per batch. The flow's threads validate a kind in one batch, a Dask cluster a
    file per task (flows/fanout.py). Returns one record per file for stage.json with, under "docs",
    its GX suite and its own share of the result (for its page in Data Docs). A department with no
    quarantined row gets its typed file as is; when some row failed, only the failing rows are read
    again (GX's positions point into the typed rows), and the accepted rows are streamed
    (`_write_verdicts`)."""
    started = time.perf_counter()
    departments = list(typed)
    counts = [pl.scan_parquet(typed[d]).select(pl.len()).collect().item() for d in departments]
    scan = pl.concat([pl.scan_parquet(typed[d]) for d in departments], how="vertical")
    frame = validation_frame(scan, kind, rules)  # streams: only the rule columns are whole in memory
    contract = Contract.ephemeral()
    name = f"{kind}-{departments[0]}" if len(departments) == 1 else f"{kind}-all"
    suite, result = contract.check(name, frame, rules, suite_name=kind)
    parts, start = [], 0
    for rows in counts:
        parts.append(result_slice(result, start, start + rows, frame))
        start += rows
    del frame  # its rows and GX's frames: before the files' verdicts are written, not beside them
    records = []
    for department, rows, part in zip(departments, counts, parts, strict=True):
        verdicts = _write_verdicts(kind, department, typed[department], ingest_dir, rules, out_dir, part, rows)
        records.append({**verdicts, "docs": [(suite, for_docs(part, f"{department} {kind}"))]})
    seconds = round(time.perf_counter() - started, 3)  # the batch's: its files were validated together
    return [{**{k: v for k, v in r.items() if k != "docs"}, "seconds": seconds, "docs": r["docs"]} for r in records]


def _write_verdicts(
    kind: Kind, department: str, typed_path: Path, ingest_dir: Path, rules: list[Rule], out_dir: Path, result, rows: int
) -> dict[str, Any]:
    """A department file's accepted and quarantined rows, from its share of a GX result. Only the flagged rows
    of its typed rows and of its rows as submitted are read (quarantine.py `file_verdicts`); its accepted rows
    are its typed file as is when none is quarantined, else that file streamed without them."""
    raw_path = ingest_dir / "raw" / department / f"{kind}.parquet"
    acc_path, q_path = (
        out_dir / "accepted" / kind / f"{department}.parquet",
        out_dir / "quarantine" / kind / f"{department}.parquet",
    )
    verdicts = file_verdicts(pl.scan_parquet(typed_path), pl.scan_parquet(raw_path), result.results, rules, kind)
    quarantined = verdicts.quarantined
    if quarantined.is_empty():
        link_file(typed_path, acc_path)  # nothing rejected: the typed file is the accepted file
    else:
        write_accepted(typed_path, verdicts.at, kind, acc_path)
    accepted_n = rows - quarantined.height
    write_parquet(quarantined, q_path)
    return {
        "department": department,
        "kind": kind,
        "file": source_file(ingest_dir, department, kind),
        "rows_read": rows,
        "rows_accepted": accepted_n,
        "rows_quarantined": quarantined.height,
        "quarantined_by_reason": dict(sorted(quarantined.group_by("reason").len().iter_rows())),
        "outputs": [file_record(acc_path, accepted_n, out_dir), file_record(q_path, quarantined.height, out_dir)],
    }


def write_accepted(typed_path: Path, quarantined_at: pl.Series, kind: Kind, path: Path) -> Path:
    """A file's accepted rows (`accepted_rows`: its typed rows but those at `quarantined_at`) written as ingest
    wrote its typed rows (its columns of few distinct values dictionary-encoded), a row group at a time: the
    file is never whole in memory (AMR's 5.8M rows at 8M objects). Checked, not assumed: the rows written are the
    rows read less the quarantined."""
    typed = pq.ParquetFile(typed_path)
    dictionary = [c for c in dictionary_columns(kind) if c in typed.schema_arrow.names]
    written = offset = 0
    with work_parquet_appender(path, dictionary) as append:
        for group in range(typed.num_row_groups):
            rows = pl.from_arrow(typed.read_row_group(group))
            accepted = accepted_rows(rows, quarantined_at, offset)  # type: ignore[arg-type]
            append(accepted)
            offset, written = offset + rows.height, written + accepted.height
    if written != offset - quarantined_at.len():  # pragma: no cover - guaranteed by construction
        raise AssertionError(f"{path}: {offset} read ≠ {written} accepted + {quarantined_at.len()} quarantined")
    # the row groups were read into Arrow's memory pool, which keeps what it freed for later: given back now,
    # before the merge needs it (AMR's file at 8M: 0.3-0.6 GB the pool held after it)
    pa.default_memory_pool().release_unused()
    return path


def quarantine_shares(files: list[dict[str, Any]], kinds: tuple[Kind, ...]) -> dict[str, dict[str, Any]]:
    """Per kind: rows read, quarantined, share, and the most frequent reasons."""
    out = {}
    for kind in kinds:
        fs = [f for f in files if f["kind"] == kind and "file_problems" not in f]
        read, q = sum(f["rows_read"] for f in fs), sum(f["rows_quarantined"] for f in fs)
        reasons: dict[str, int] = {}
        for f in fs:
            for r, n in f["quarantined_by_reason"].items():
                reasons[r] = reasons.get(r, 0) + n
        top = ", ".join(f"{r} {n:,}" for r, n in sorted(reasons.items(), key=lambda x: (-x[1], x[0]))[:3])
        out[kind] = {"read": read, "quarantined": q, "share": q / read if read else 0.0, "top_reasons": top or "none"}
    return out


def validation_record(
    contract: Contract,
    files: list[dict[str, Any]],
    out_dir: Path,
    threshold: float,
    kinds: tuple[Kind, ...],
    run_date: str,
    inputs: list[dict[str, Any]] | None = None,
    data_docs: Callable[[Contract, Path], Path] = build_data_docs,
) -> ValidateRecord:
    """After every file's validation (`files`, in the order to report them, each with its GX
    results under "docs"): the quarantine CSV and XLSX, one Data Docs site (`data_docs(contract, site)`
    builds it and returns its index page: `build_data_docs`, or a build started on a thread), the stage's
    record."""
    for f in files:
        contract.add_validations(f.pop("docs", []))
    (out_dir / "quarantine").mkdir(parents=True, exist_ok=True)  # there even when no file was validated
    quarantine = [pl.read_parquet(p) for p in sorted((out_dir / "quarantine").rglob("*.parquet"))]
    all_quarantined = pl.concat(quarantine) if quarantine else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    csv_path, _ = write_people_tables(
        all_quarantined.sort("source_file", "source_line"),
        out_dir / "quarantine.csv",
        people_headers.QUARANTINE,
        "问题数据",
        max_xlsx_rows=settings.QUARANTINE_XLSX_ROWS,
    )
    docs = data_docs(contract, out_dir / "validation")
    return ValidateRecord(
        inputs=[FileRecord(**r) for r in inputs or []],
        run_date=run_date,
        threshold=threshold,
        files=files,
        kinds=quarantine_shares(files, kinds),
        quarantine_csv=FileRecord(**file_record(csv_path, all_quarantined.height, out_dir)),
        data_docs=docs.relative_to(out_dir).as_posix(),
        rows_read=sum(f["rows_read"] for f in files),
        rows_accepted=sum(f.get("rows_accepted", 0) for f in files),
        rows_quarantined=sum(f.get("rows_quarantined", 0) for f in files),
    )
