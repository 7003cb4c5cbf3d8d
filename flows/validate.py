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
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from prefect import get_run_logger

from flows.errors import StageFailed
from transforms.contract import Rule, file_rules, inspector_rules, item_rules, object_rules, validation_frame
from transforms.csvout import write_people_csv
from transforms.quarantine import QUARANTINE_SCHEMA, accepted_rows, quarantine_rows
from transforms.registry import KINDS, Kind
from transforms.runfolder import file_record, stage_dir, write_json, write_parquet
from transforms.validate_registry import Contract, build_data_docs, rule_meta

VALIDATION_ORDER: tuple[Kind, ...] = ("items", "inspectors", "objects")


def _file_level_problems(contract: Contract, raw: pl.DataFrame, kind: Kind, department: str) -> list[str]:
    """Which file-level rules the raw file breaks (columns present, at least one row)."""
    frame = pd.DataFrame({c: np.zeros(raw.height, dtype=np.int8) for c in raw.columns if c not in ("source_file", "source_line")})
    result = contract.validate(f"{kind}-{department}-file", frame, file_rules(kind))
    problems = []
    for r in result.results:
        if not r.success:
            cfg = r.expectation_config
            problems.append(f"required column `{cfg.kwargs['column']}` is missing" if cfg.type == "expect_column_to_exist"
                            else "the file has no data rows")
    return problems


def _validate_file(contract: Contract, ingest_dir: Path, out_dir: Path, kind: Kind, department: str,
                   rules: list[Rule]) -> dict[str, Any]:
    typed = pl.read_parquet(ingest_dir / kind / f"{department}.parquet")
    raw = pl.read_parquet(ingest_dir / "raw" / department / f"{kind}.parquet")
    source_file = raw["source_file"][0] if raw.height else f"{department}/{kind}.*"
    problems = _file_level_problems(contract, raw, kind, department)
    if problems:
        return {"department": department, "kind": kind, "file": source_file, "rows_read": typed.height,
                "file_problems": problems}
    result = contract.validate(f"{kind}-{department}", validation_frame(typed, kind, rules),
                               [r.expectation for r in rules], rule_meta(rules))
    quarantined = quarantine_rows(typed, raw, result.results, rules, department, kind)
    accepted = accepted_rows(typed, quarantined)
    if accepted.height + quarantined.height != typed.height:  # pragma: no cover - guaranteed by construction
        raise AssertionError(f"{source_file}: {typed.height} read ≠ {accepted.height} accepted + {quarantined.height} quarantined")
    acc_path = write_parquet(accepted, out_dir / "accepted" / kind / f"{department}.parquet")
    q_path = write_parquet(quarantined, out_dir / "quarantine" / kind / f"{department}.parquet")
    return {
        "department": department, "kind": kind, "file": source_file,
        "rows_read": typed.height, "rows_accepted": accepted.height, "rows_quarantined": quarantined.height,
        "quarantined_by_reason": dict(sorted(quarantined.group_by("reason").len().iter_rows())),
        "expectations_failed": sum(1 for r in result.results if not r.success),
        "outputs": [file_record(acc_path, accepted.height, out_dir), file_record(q_path, quarantined.height, out_dir)],
    }


def run_validate(run_dir: Path, threshold: float, run_date: dt.date) -> dict[str, Any]:
    """Validates every ingested file; writes accepted rows, the quarantine, Data Docs, stage.json."""
    logger = get_run_logger()
    started = time.perf_counter()
    ingest_dir, out_dir = stage_dir(run_dir, "ingest"), stage_dir(run_dir, "validate")
    contract = Contract.ephemeral()
    files: list[dict[str, Any]] = []
    item_ids: list[str] = []
    for kind in VALIDATION_ORDER:
        departments = sorted(p.stem for p in (ingest_dir / kind).glob("*.parquet"))
        rules = {"items": item_rules, "inspectors": lambda: inspector_rules(item_ids), "objects": lambda: object_rules(run_date)}[kind]()
        for department in departments:
            f = _validate_file(contract, ingest_dir, out_dir, kind, department, rules)
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
        "stage": "validate", "run_date": run_date.isoformat(), "threshold": threshold, "files": files, "kinds": shares,
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
