"""manifest.json (SPEC §6): what a published bundle is and how it came to be.

    manifest(...) -> the manifest as a dict, keys in a fixed order

Fields that differ between two runs of the same inputs and seed — and only these:
`run_id`, `timeline` (run date, commitment, seed use, publication times), the SHA-256 of
the `documents` (report.html and validation/, which print the run id and times) and `audit`
(the plan's logged draw attempts: times, runs, operators; transforms/audit.py). Everything
else — seed, commitment, algorithm, packages, inputs, `files` with their SHA-256 and rows,
accounting — is the same, so two runs can be compared field by field.
"""

from __future__ import annotations

import json
import re
from importlib.metadata import distributions, version
from pathlib import Path
from typing import Any

import polars as pl

from transforms.assign import ASSIGN_ALGORITHM
from transforms.commitment import VERSION as COMMITMENT_VERSION
from transforms.runfolder import sha256_file
from transforms.score import DRAW_ALGORITHM

MANIFEST_VERSION = "jointdraw-manifest-v1"
DOCUMENTS = ("report.html", "validation/")  # published files that print the run id and times
NESTED_BUNDLES = ("results", "pre")  # subfolders with their own manifest.json (results; 事前公示), each checked by its own


def _own_files(folder: Path) -> list[Path]:
    """The files of a bundle: not manifest.json, not a nested bundle's, not a hidden staging folder's."""
    folder = Path(folder)
    nested = {n for n in NESTED_BUNDLES if (folder / n / "manifest.json").is_file()}
    return sorted(q for q in folder.rglob("*") if q.is_file() and q.name != "manifest.json"
                  and not q.relative_to(folder).parts[0].startswith(".")
                  and not (len(q.relative_to(folder).parts) > 1 and q.relative_to(folder).parts[0] in nested))


def package_versions() -> dict[str, str]:
    """Every installed distribution and its version, by normalised name (PEP 503)."""
    found = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version for d in distributions() if d.metadata["Name"]}
    return dict(sorted(found.items()))


def algorithm() -> dict[str, str]:
    return {"jointdraw": version("jointdraw"), "draw": DRAW_ALGORITHM, "commitment": COMMITMENT_VERSION, "assign": ASSIGN_ALGORITHM}


def _rows(path: Path) -> int | None:
    if path.suffix == ".parquet":
        return pl.scan_parquet(path).select(pl.len()).collect().item()
    if path.suffix == ".csv":
        return pl.scan_csv(path, infer_schema=False).select(pl.len()).collect().item()
    return None


def file_list(folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(files, documents): every file under `folder` but manifest.json, sorted by path, with
    SHA-256, bytes and rows (Parquet and CSV)."""
    files, documents = [], []
    for p in _own_files(folder):
        rel = p.relative_to(folder).as_posix()
        record = {"path": rel, "sha256": sha256_file(p), "bytes": p.stat().st_size, "rows": _rows(p)}
        (documents if rel.startswith(DOCUMENTS) else files).append(record)
    return files, documents


def manifest(*, plan_id: str, run_id: str, timeline: dict[str, str], seed: dict[str, Any], commitment: dict[str, Any],
             inputs: list[dict[str, Any]], folder: Path, accounting: dict[str, Any], audit: dict[str, Any]) -> dict[str, Any]:
    files, documents = file_list(folder)
    return {
        "manifest_version": MANIFEST_VERSION,
        "plan_id": plan_id,
        "run_id": run_id,
        "timeline": timeline,
        "seed": seed,
        "commitment": commitment,
        "algorithm": algorithm(),
        "packages": package_versions(),
        "inputs": inputs,
        "files": files,
        "documents": documents,
        "accounting": accounting,
        "audit": audit,
    }


def manifest_problems(folder: Path) -> list[str]:
    """Every file the manifest lists whose SHA-256 differs or that is missing, and every file
    in the folder the manifest does not list."""
    data = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    listed = {r["path"]: r for r in [*data.get("files", []), *data.get("documents", [])]}
    problems = []
    for path, record in listed.items():
        p = Path(folder) / path
        if not p.is_file():
            problems.append(f"manifest: {path} is listed but missing")
        elif (actual := sha256_file(p)) != record["sha256"]:
            problems.append(f"manifest: {path} has SHA-256 {actual}, the manifest says {record['sha256']}")
    present = {q.relative_to(folder).as_posix() for q in _own_files(folder)}
    problems += [f"manifest: {path} is in the bundle but not in the manifest" for path in sorted(present - set(listed))]
    for nested in NESTED_BUNDLES:  # results/ answers for itself
        if (Path(folder) / nested / "manifest.json").is_file():
            problems += [p.replace("manifest: ", f"manifest: {nested}/", 1) for p in manifest_problems(Path(folder) / nested)]
    return problems


def stage_accounting(records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every stage's counts, from the stages' stage.json records: read, accepted, quarantined by reason,
    excluded by reason, eligible, drawn, fused, assigned, unassigned."""
    ingest, validate, merge, commit, draw, fuse, assign = (records.get(s) or {} for s in
                                                           ("ingest", "validate", "merge", "commit", "draw", "fuse", "assign"))
    by_reason: dict[str, int] = {}
    for f in validate.get("files", []):
        for reason, n in f.get("quarantined_by_reason", {}).items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    return {
        "ingest": {"rows_read": ingest.get("rows_read"), "rows_written": ingest.get("rows_written"),
                   "files": len(ingest.get("files", [])), "failed_departments": ingest.get("failed_departments", [])},
        "validate": {"rows_read": validate.get("rows_read"), "rows_accepted": validate.get("rows_accepted"),
                     "rows_quarantined": validate.get("rows_quarantined"), "quarantined_by_reason": dict(sorted(by_reason.items())),
                     "per_file": [{"file": f.get("file"), "read": f["rows_read"], "accepted": f.get("rows_accepted"),
                                   "quarantined": f.get("rows_quarantined")} for f in validate.get("files", [])]},
        "merge": {k: merge.get(k) for k in ("records_in", "entities", "entities_listed_by_several_departments", "unlinked_entities",
                                            "conflicts_by_attribute")},
        "commit": {"excluded_by_reason": commit.get("exclusions_by_reason", {})},
        "draw": {k: draw.get(k) for k in ("eligible_pairs", "strata", "drawn", "mode")},
        "fuse": fuse.get("figures", {}),
        "assign": {k: assign.get(k) for k in ("joint_tasks", "assigned", "unassigned", "unassigned_by_reason")},
    }
