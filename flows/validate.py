"""Stage `validate` (SPEC §4.2): the Great Expectations contract on every department's files.

    02_validate/accepted/<kind>/<DEPT>.parquet     rows that go on (typed, file order)
    02_validate/quarantine/<kind>/<DEPT>.parquet   rejected rows: file, line, column, reason, original values
    02_validate/quarantine.csv                     all of them, for people (UTF-8 with BOM)
    02_validate/validation/index.html              GX Data Docs, readable offline
    02_validate/stage.json                         per file: read = accepted + quarantined, by reason

One task run per department file (`validate-file`), mapped on the flow's threads or a Dask
cluster (flows/fanout.py): items first (inspectors' item scopes must name accepted items),
then inspectors and objects together. Each task writes its own accepted and quarantined rows
and returns its GX results; the stage gathers them into one Data Docs site. A file-level
failure (required column missing, no rows) fails its department; the stage fails when any
department failed, or when a registry kind's
quarantined share passes the plan's threshold — after writing everything, so the reasons
can be read.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import polars as pl
from prefect import Task, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE

from jointdraw.flows.errors import StageFailed
from jointdraw.flows.fanout import map_tasks
from jointdraw.transforms import settings
from jointdraw.transforms.contract.quarantine import (
    QUARANTINE_SCHEMA,
    accepted_rows,
    quarantine_rows,
    with_original_values,
)
from jointdraw.transforms.contract.suites import (
    Rule,
    file_inventory,
    file_rules,
    inspector_rules,
    item_rules,
    object_rules,
    validation_frame,
)
from jointdraw.transforms.contract.validation import Contract, build_data_docs
from jointdraw.transforms.documents import people_headers
from jointdraw.transforms.registry import KINDS, RESULT_KINDS, Kind
from jointdraw.transforms.storage.runfolder import (
    copy_file,
    file_record,
    inputs_from,
    read_stage_record,
    stage_dir,
    write_json,
    write_parquet,
)
from jointdraw.transforms.storage.xlsxout import write_people_tables

VALIDATION_ORDER: tuple[Kind, ...] = ("items", "inspectors", "objects")


def contract_rules(kind: Kind, run_date: dt.date, item_ids: list[str]) -> list[Rule]:
    """The row rules of a kind: inspectors' item scopes must name accepted items; objects' dates
    may not be after the run date."""
    if kind == "items":
        return item_rules()
    return inspector_rules(item_ids) if kind == "inspectors" else object_rules(run_date)


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
            "file": _source_file(ingest_dir, d, kind),
            "rows_read": rows[d],
            "file_problems": why,
        }
        for d, why in sorted(problems.items())
    ]


def _source_file(ingest_dir: Path, department: str, kind: Kind) -> str:
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


@task(name="validate-file", task_run_name="validate {kind} · {department}", cache_policy=NO_CACHE)
def validate_file(
    kind: Kind, department: str, ingest_dir: Path, out_dir: Path, run_date: dt.date, item_ids: list[str]
) -> dict[str, Any]:
    """Validates one department's registry file of one kind (its file-level rules already met)."""
    return validate_department_file(
        kind,
        department,
        ingest_dir / kind / f"{department}.parquet",
        ingest_dir,
        contract_rules(kind, run_date, item_ids),
        out_dir,
    )


def validate_department_file(
    kind: Kind, department: str, typed_path: Path, ingest_dir: Path, rules: list[Rule], out_dir: Path
) -> dict[str, Any]:
    """One GX validation of one department's typed file (`typed_path`; its rows as submitted are in
    `ingest_dir`/raw/); writes its accepted and quarantined rows.

    Returns the file's record for stage.json and, under "docs", its GX suites and results. A
    department with no quarantined row gets its typed file as is; the typed rows are read
    again (same order: GX's positions point into them) only when some row failed."""
    started = time.perf_counter()
    raw_path = ingest_dir / "raw" / department / f"{kind}.parquet"
    rows = pl.scan_parquet(raw_path).select(pl.len()).collect().item()
    record: dict[str, Any] = {
        "department": department,
        "kind": kind,
        "file": _source_file(ingest_dir, department, kind),
        "rows_read": rows,
    }
    frame = validation_frame(pl.scan_parquet(typed_path), kind, rules)  # streams: only the frame is whole in memory
    contract = Contract.ephemeral()
    result = contract.validate(f"{kind}-{department}", frame, rules, suite_name=kind, batch=f"{department} {kind}")
    docs = contract.validations()
    del frame
    acc_path, q_path = (
        out_dir / "accepted" / kind / f"{department}.parquet",
        out_dir / "quarantine" / kind / f"{department}.parquet",
    )
    if not any(r.result.get("unexpected_index_list") for r in result.results):
        quarantined = pl.DataFrame(schema=QUARANTINE_SCHEMA)
        copy_file(typed_path, acc_path)  # nothing rejected: the typed file is the accepted file
        accepted_n = rows
    else:
        typed = pl.read_parquet(typed_path)
        quarantined = with_original_values(
            quarantine_rows(typed, result.results, rules, kind), pl.read_parquet(raw_path)
        )
        accepted = accepted_rows(typed, quarantined)
        write_parquet(accepted, acc_path)
        accepted_n = accepted.height
    write_parquet(quarantined, q_path)
    if accepted_n + quarantined.height != rows:  # pragma: no cover - guaranteed by construction
        raise AssertionError(
            f"{department}/{kind}: {rows} read ≠ {accepted_n} accepted + {quarantined.height} quarantined"
        )
    return {
        **record,
        "rows_accepted": accepted_n,
        "rows_quarantined": quarantined.height,
        "quarantined_by_reason": dict(sorted(quarantined.group_by("reason").len().iter_rows())),
        "outputs": [file_record(acc_path, accepted_n, out_dir), file_record(q_path, quarantined.height, out_dir)],
        "seconds": round(time.perf_counter() - started, 3),
        "docs": docs,
    }


def file_failures(contract: Contract, kinds: tuple[Kind, ...], ingest_dir: Path) -> list[dict[str, Any]]:
    """The records of the files of these kinds that break a file-level rule (they go no further)."""
    return [f for kind in kinds for f in _file_problems(contract, ingest_dir, kind)]


def map_files(
    kinds: tuple[Kind, ...], failed: list[dict[str, Any]], task: Task, ingest_dir: Path, **parameters: Any
) -> list[Any]:
    """One `task` per department file of these kinds that met the file-level rules (called with
    kind=, department=, ingest_dir= and `parameters`), mapped by `map_tasks`; their futures."""
    skip = {(f["kind"], f["department"]) for f in failed}
    pairs = [
        (kind, p.stem)
        for kind in kinds
        for p in sorted((ingest_dir / kind).glob("*.parquet"))
        if (kind, p.stem) not in skip
    ]
    if not pairs:
        return []
    return list(
        map_tasks(
            task,
            kind=[k for k, _ in pairs],
            department=[d for _, d in pairs],
            ingest_dir=ingest_dir,
            **{k: unmapped(v) for k, v in parameters.items()},
        )
    )


def run_validate(run_dir: Path, threshold: float, run_date: dt.date) -> dict[str, Any]:
    """Validates every ingested file (one task per department file, on the flow's threads or
    a Dask cluster); writes accepted rows, the quarantine, one Data Docs site, stage.json."""
    started = time.perf_counter()
    ingest_dir, out_dir = stage_dir(run_dir, "ingest"), stage_dir(run_dir, "validate")
    contract = Contract.ephemeral()
    failed = file_failures(contract, VALIDATION_ORDER, ingest_dir)
    common = {"ingest_dir": ingest_dir, "out_dir": out_dir, "run_date": run_date}
    done = [f.result() for f in map_files(("items",), failed, validate_file, **common, item_ids=[])]
    accepted_items = list((out_dir / "accepted" / "items").glob("*.parquet"))
    item_ids = sorted(pl.read_parquet(accepted_items)["item_id"].unique().to_list()) if accepted_items else []
    done += [
        f.result() for f in map_files(("inspectors", "objects"), failed, validate_file, **common, item_ids=item_ids)
    ]
    return finish_validation(
        contract,
        failed + done,
        out_dir,
        threshold,
        KINDS,
        started,
        {"stage": "validate", "inputs": inputs_from(run_dir, "ingest"), "run_date": run_date.isoformat()},
    )


def finish_validation(
    contract: Contract,
    done: list[dict[str, Any]],
    out_dir: Path,
    threshold: float,
    kinds: tuple[Kind, ...],
    started: float,
    header: dict[str, Any],
) -> dict[str, Any]:
    """After every file's validation: the quarantine CSV, one Data Docs site, stage.json; then
    fails when a department's file failed or a kind's quarantined share passes `threshold`."""
    logger = get_run_logger()
    files: list[dict[str, Any]] = []
    order = {k: i for i, k in enumerate((*VALIDATION_ORDER, *RESULT_KINDS))}
    for f in sorted(done, key=lambda f: (order[f["kind"]], f["department"])):
        contract.add_validations(f.pop("docs", []))
        files.append(f)
        if "file_problems" in f:
            logger.error("validate: %s: %s", f["file"], "; ".join(f["file_problems"]))
        else:
            logger.info(
                "validate: %s %s read, %s accepted, %s quarantined %s",
                f["file"],
                f"{f['rows_read']:,}",
                f"{f['rows_accepted']:,}",
                f"{f['rows_quarantined']:,}",
                f["quarantined_by_reason"] or "",
            )
    (out_dir / "quarantine").mkdir(
        parents=True, exist_ok=True
    )  # there even when no file was validated (an empty inbox)
    quarantine = [pl.read_parquet(p) for p in sorted((out_dir / "quarantine").rglob("*.parquet"))]
    all_quarantined = pl.concat(quarantine) if quarantine else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    csv_path, _ = write_people_tables(
        all_quarantined.sort("source_file", "source_line"),
        out_dir / "quarantine.csv",
        people_headers.QUARANTINE,
        "问题数据",
        max_xlsx_rows=settings.QUARANTINE_XLSX_ROWS,
    )
    docs_started = time.perf_counter()
    docs = build_data_docs(contract, out_dir / "validation")
    logger.info("validate: Data Docs of %d validations in %.1f s", len(files), time.perf_counter() - docs_started)
    shares = _shares(files, kinds)
    record = {
        **header,
        "threshold": threshold,
        "files": files,
        "kinds": shares,
        "quarantine_csv": file_record(csv_path, all_quarantined.height, out_dir),
        "data_docs": docs.relative_to(out_dir).as_posix(),
        "rows_read": sum(f["rows_read"] for f in files),
        "rows_accepted": sum(f.get("rows_accepted", 0) for f in files),
        "rows_quarantined": sum(f.get("rows_quarantined", 0) for f in files),
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_json(record, out_dir / "stage.json")
    failures = [
        f"  - {f['department']}: {f['file']}: {'; '.join(f['file_problems'])}" for f in files if "file_problems" in f
    ]
    failures += [
        f"  - {kind}: {s['quarantined']:,} of {s['read']:,} rows quarantined ({s['share']:.2%}) > threshold "
        f"{threshold:.2%}; top reasons: {s['top_reasons']}; see {out_dir / 'quarantine.csv'}"
        for kind, s in shares.items()
        if s["share"] > threshold
    ]
    if failures:
        raise StageFailed("validate: the data contract is not met:\n" + "\n".join(failures))
    return record


def _shares(files: list[dict[str, Any]], kinds: tuple[Kind, ...]) -> dict[str, dict[str, Any]]:
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
