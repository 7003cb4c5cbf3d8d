"""Stage `validate` (SPEC §4.2): the Great Expectations contract on every department's files.

    02_validate/accepted/<kind>/<DEPT>.parquet     rows that go on (typed, file order)
    02_validate/quarantine/<kind>/<DEPT>.parquet   rejected rows: file, line, column, reason, original values
    02_validate/quarantine.csv                     all of them, for people (UTF-8 with BOM)
    02_validate/validation/index.html              GX Data Docs, readable offline
    02_validate/stage.json                         per file: read = accepted + quarantined, by reason

Items are validated first (inspectors' item scopes must name listed items), then
inspectors, then objects. A file-level failure (required column missing, no rows) fails its
department; the stage fails when any department failed, or when a registry kind's
quarantined share passes the plan's threshold — after writing everything, so the reasons
can be read.
"""

from __future__ import annotations

import datetime as dt
import gc
import time
from pathlib import Path
from typing import Any

import polars as pl
from prefect import get_run_logger

from flows.errors import StageFailed
from transforms.contract import (
    Rule,
    file_inventory,
    file_rules,
    inspector_rules,
    item_rules,
    object_rules,
    validation_frame,
)
from transforms.csvout import write_people_csv
from transforms.quarantine import (
    QUARANTINE_SCHEMA,
    accepted_rows,
    quarantine_rows,
    with_original_values,
)
from transforms.registry import KINDS, Kind
from transforms.runfolder import (
    copy_file,
    file_record,
    inputs_from,
    stage_dir,
    write_json,
    write_parquet,
)
from transforms.validate_registry import Contract, build_data_docs

VALIDATION_ORDER: tuple[Kind, ...] = ("items", "inspectors", "objects")


def _file_problems(contract: Contract, columns: dict[str, list[str]], rows: dict[str, int], kind: Kind) -> dict[str, list[str]]:
    """Department → the file-level rules its file breaks (one GX validation over the kind's file inventory)."""
    rules = file_rules(kind)
    inventory = file_inventory(columns, rows, kind).rename(columns={"source_file": "department"})
    result = contract.validate(f"{kind}-files", inventory, rules, row_id=["department"])
    problems: dict[str, list[str]] = {}
    for r in result.results:
        for row in r.result.get("unexpected_index_list") or []:
            problems.setdefault(row["department"], []).append(rules[r.expectation_config.meta["rule_index"]].reason)
    return problems


def _validate_kind(contract: Contract, ingest_dir: Path, out_dir: Path, kind: Kind, rules: list[Rule]) -> list[dict[str, Any]]:
    """Validates every department's file of one kind in one GX run; writes accepted and quarantined rows.

    Memory at city scale: the typed rows are released while GX runs and read again only when
    some row failed; a department with no quarantined row gets its typed file as is."""
    departments = sorted(p.stem for p in (ingest_dir / kind).glob("*.parquet"))
    raw_path = {d: ingest_dir / "raw" / d / f"{kind}.parquet" for d in departments}
    source_file = {d: pl.scan_parquet(raw_path[d]).select(pl.col("source_file").first()).collect().item() or f"{d}/{kind}.*"
                   for d in departments}
    rows = {d: pl.scan_parquet(raw_path[d]).select(pl.len()).collect().item() for d in departments}
    problems = _file_problems(contract, {d: list(pl.read_parquet_schema(raw_path[d])) for d in departments}, rows, kind)
    files = [{"department": d, "kind": kind, "file": source_file[d], "rows_read": rows[d], "file_problems": problems[d]}
             for d in departments if d in problems]
    good = [d for d in departments if d not in problems]
    if not good:
        return files
    paths = [ingest_dir / kind / f"{d}.parquet" for d in good]
    frame = validation_frame(pl.scan_parquet(paths), kind, rules)  # streams: the typed rows are never all in memory
    gc.collect()
    result = contract.validate(kind, frame, rules)
    del frame
    failed_any = any(r.result.get("unexpected_index_list") for r in result.results)
    typed = pl.read_parquet(paths) if failed_any else None  # same rows, same order: GX's positions point into it
    verdicts = quarantine_rows(typed, result.results, rules, kind) if typed is not None else None
    for d, path in zip(good, paths, strict=True):
        mine = verdicts.filter(pl.col("department") == d) if verdicts is not None else None
        acc_path, q_path = out_dir / "accepted" / kind / f"{d}.parquet", out_dir / "quarantine" / kind / f"{d}.parquet"
        if mine is None or mine.is_empty():
            quarantined = pl.DataFrame(schema=QUARANTINE_SCHEMA)
            copy_file(path, acc_path)  # nothing rejected: the typed file is the accepted file
            accepted_rows_n = rows[d]
        else:
            quarantined = with_original_values(mine, pl.read_parquet(raw_path[d]))
            accepted = accepted_rows(typed.filter(pl.col("submitted_by") == d), quarantined)  # type: ignore[union-attr]
            write_parquet(accepted, acc_path)
            accepted_rows_n = accepted.height
        write_parquet(quarantined, q_path)
        if accepted_rows_n + quarantined.height != rows[d]:  # pragma: no cover - guaranteed by construction
            raise AssertionError(f"{d}/{kind}: {rows[d]} read ≠ {accepted_rows_n} accepted + {quarantined.height} quarantined")
        files.append({
            "department": d, "kind": kind, "file": source_file[d],
            "rows_read": rows[d], "rows_accepted": accepted_rows_n, "rows_quarantined": quarantined.height,
            "quarantined_by_reason": dict(sorted(quarantined.group_by("reason").len().iter_rows())),
            "outputs": [file_record(acc_path, accepted_rows_n, out_dir), file_record(q_path, quarantined.height, out_dir)],
        })
    return sorted(files, key=lambda f: f["department"])


def run_validate(run_dir: Path, threshold: float, run_date: dt.date) -> dict[str, Any]:
    """Validates every ingested file; writes accepted rows, the quarantine, Data Docs, stage.json."""
    logger = get_run_logger()
    started = time.perf_counter()
    ingest_dir, out_dir = stage_dir(run_dir, "ingest"), stage_dir(run_dir, "validate")
    contract = Contract.ephemeral()
    files: list[dict[str, Any]] = []
    item_ids: list[str] = []
    for kind in VALIDATION_ORDER:
        rules = item_rules() if kind == "items" else inspector_rules(item_ids) if kind == "inspectors" else object_rules(run_date)
        for f in _validate_kind(contract, ingest_dir, out_dir, kind, rules):
            files.append(f)
            if "file_problems" in f:
                logger.error("validate: %s: %s", f["file"], "; ".join(f["file_problems"]))
            else:
                logger.info("validate: %s %s read, %s accepted, %s quarantined %s", f["file"], f"{f['rows_read']:,}",
                            f"{f['rows_accepted']:,}", f"{f['rows_quarantined']:,}", f["quarantined_by_reason"] or "")
        if kind == "items":
            accepted = list((out_dir / "accepted" / "items").glob("*.parquet"))
            item_ids = pl.read_parquet(accepted)["item_id"].unique().to_list() if accepted else []
    quarantine = [pl.read_parquet(p) for p in sorted((out_dir / "quarantine").rglob("*.parquet"))]
    all_quarantined = pl.concat(quarantine) if quarantine else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    csv_path = write_people_csv(all_quarantined.sort("source_file", "source_line"), out_dir / "quarantine.csv")
    docs = build_data_docs(contract, out_dir / "validation")
    shares = _shares(files)
    record = {
        "stage": "validate", "inputs": inputs_from(run_dir, "ingest"),
        "run_date": run_date.isoformat(), "threshold": threshold, "files": files, "kinds": shares,
        "quarantine_csv": file_record(csv_path, all_quarantined.height, out_dir),
        "data_docs": docs.relative_to(out_dir).as_posix(),
        "rows_read": sum(f["rows_read"] for f in files),
        "rows_accepted": sum(f.get("rows_accepted", 0) for f in files),
        "rows_quarantined": sum(f.get("rows_quarantined", 0) for f in files),
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_json(record, out_dir / "stage.json")
    failures = [f"  - {f['department']}: {f['file']}: {'; '.join(f['file_problems'])}" for f in files if "file_problems" in f]
    failures += [f"  - {kind}: {s['quarantined']:,} of {s['read']:,} rows quarantined ({s['share']:.2%}) > threshold "
                 f"{threshold:.2%}; top reasons: {s['top_reasons']}; see {out_dir / 'quarantine.csv'}"
                 for kind, s in shares.items() if s["share"] > threshold]
    if failures:
        raise StageFailed("validate: the data contract is not met:\n" + "\n".join(failures))
    return record


def _shares(files: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per registry kind: rows read, quarantined, share, and the most frequent reasons."""
    out = {}
    for kind in KINDS:
        fs = [f for f in files if f["kind"] == kind and "file_problems" not in f]
        read, q = sum(f["rows_read"] for f in fs), sum(f["rows_quarantined"] for f in fs)
        reasons: dict[str, int] = {}
        for f in fs:
            for r, n in f["quarantined_by_reason"].items():
                reasons[r] = reasons.get(r, 0) + n
        top = ", ".join(f"{r} {n:,}" for r, n in sorted(reasons.items(), key=lambda x: (-x[1], x[0]))[:3])
        out[kind] = {"read": read, "quarantined": q, "share": q / read if read else 0.0, "top_reasons": top or "none"}
    return out
