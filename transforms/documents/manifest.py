"""manifest.json (SPEC §6): what a published bundle is and how it came to be.

    manifest(...) -> the manifest as a dict, keys in a fixed order

The manifest lists every file of the bundle's three parts (paths relative to the bundle:
public/…, audit/…, regulator/…) but itself and the nested bundles that answer for themselves
(public/pre/, and the results under public/results/manifest.json). Its SHA-256 is the seal.

Fields that differ between two runs of the same inputs and seed — and only these:
`run_id`, `timeline` (run date, commitment, seed use, publication times), the SHA-256 of
the `documents` (report.html, validation/ and audit/attempts.json — the plan's log: times, runs,
operators — which print run ids and times), and `audit` (counts from that log). The pages that
show the seal differ on disk by the seal only; their listed SHA-256 (`file_digest`) is equal. Everything
else — seed, commitment, algorithm, packages, inputs, `files` with their SHA-256 and rows,
accounting — is the same, so two runs can be compared field by field.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import distributions, version
from pathlib import Path
from typing import Any

import polars as pl

from jointdraw.transforms.assign import ASSIGN_ALGORITHM
from jointdraw.transforms.commitment import VERSION as COMMITMENT_VERSION
from jointdraw.transforms.score import DRAW_ALGORITHM
from jointdraw.transforms.storage.bundle import AUDIT, PARTS, PRE, PUBLIC, REGULATOR, RESULTS
from jointdraw.transforms.storage.runfolder import sha256_file

MANIFEST_VERSION = "jointdraw-manifest-v2"  # v2: the bundle in parts (public/, audit/, regulator/), sealed
MANIFEST = f"{PUBLIC}/manifest.json"  # the draw's manifest, in the public part; its SHA-256 is the seal
DOCUMENTS = (
    f"{PUBLIC}/report.html",
    f"{REGULATOR}/validation/",
    f"{AUDIT}/attempts.json",  # files that print run ids and times
    f"{REGULATOR}/{RESULTS}/report.html",
    f"{REGULATOR}/{RESULTS}/validation/",
)
PRE_FOLDER = f"{PUBLIC}/{PRE}"  # 事前公示: published at commit, with its own manifest
RESULT_FOLDERS = (
    f"{PUBLIC}/{RESULTS}",
    f"{REGULATOR}/{RESULTS}",
)  # published later, under public/results/manifest.json
RESULTS_MANIFEST = f"{PUBLIC}/{RESULTS}/manifest.json"
NESTED = (PRE_FOLDER, *RESULT_FOLDERS)  # what the draw's manifest leaves to the nested manifests


def files_under(root: Path, folders: tuple[str, ...] = ("",), leave_out: tuple[str, ...] = ()) -> list[str]:
    """Every file under root/<folder> for each folder — hidden ones too — as paths relative to `root`,
    sorted; but those in or equal to a path of `leave_out`."""
    root, found = Path(root), set()
    for folder in folders:
        base = root / folder if folder else root
        if base.is_dir():
            found |= {q.relative_to(root).as_posix() for q in base.rglob("*") if q.is_file() or q.is_symlink()}
    return sorted(f for f in found if not any(f == x or f.startswith(x.rstrip("/") + "/") for x in leave_out))


def draw_files(bundle: Path) -> list[str]:
    """What the draw's manifest lists: everything in the bundle but itself and the nested bundles."""
    return files_under(bundle, leave_out=(MANIFEST, *NESTED))


def results_files(bundle: Path) -> list[str]:
    return files_under(bundle, RESULT_FOLDERS, leave_out=(RESULTS_MANIFEST,))


INSTALLERS = {
    "pip",
    "setuptools",
    "wheel",
}  # what installed the environment, not what ran: a venv made without pip lacks them


def package_versions() -> dict[str, str]:
    """Every installed distribution and its version, by normalised name (PEP 503), but the installers."""
    return dict(_installed_distributions())


@cache
def _installed_distributions() -> tuple[tuple[str, str], ...]:
    """`package_versions`, read once per process (the reuse fingerprint reads them as ingest starts, publish's
    manifest again), each distribution's metadata parsed once (`metadata` parses its file at every call, `version`
    too): 0.03–0.06 s a process instead of 0.08–0.15 s a call."""
    found = {
        re.sub(r"[-_.]+", "-", meta["Name"]).lower(): meta["Version"]
        for meta in (d.metadata for d in distributions())
        if meta["Name"]
    }
    return tuple(sorted((name, v) for name, v in found.items() if name not in INSTALLERS))


def algorithm() -> dict[str, str]:
    return {
        "jointdraw": version("jointdraw"),
        "draw": DRAW_ALGORITHM,
        "commitment": COMMITMENT_VERSION,
        "assign": ASSIGN_ALGORITHM,
    }


def _rows(path: Path) -> int | None:
    if path.suffix == ".parquet":
        return pl.scan_parquet(path).select(pl.len()).collect().item()
    if path.suffix == ".csv":
        return pl.scan_csv(path, infer_schema=False).select(pl.len()).collect().item()
    return None


def file_list(root: Path, paths: list[str] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(files, documents): the files `paths` (relative to `root`; default every file under it but
    manifest.json) with SHA-256, bytes and rows (Parquet and CSV), in that order. Two files at a time: hashing
    and counting release the GIL (a quarterly bundle at 8M, 270 MB: 0.23–0.28 s instead of 0.44–0.62 s)."""
    root = Path(root)

    def record(rel: str) -> dict[str, Any]:
        p = root / rel
        return {"path": rel, "sha256": sha256_file(p), "bytes": p.stat().st_size, "rows": _rows(p)}

    files, documents = [], []
    rels = paths if paths is not None else files_under(root, leave_out=("manifest.json",))
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="manifest") as pool:
        for r in pool.map(record, rels):
            (documents if r["path"].startswith(DOCUMENTS) else files).append(r)
    return files, documents


def manifest(
    *,
    plan_id: str,
    run_id: str,
    timeline: dict[str, str],
    seed: dict[str, Any],
    commitment: dict[str, Any],
    inputs: list[dict[str, Any]],
    folder: Path,
    accounting: dict[str, Any],
    audit: dict[str, Any],
) -> dict[str, Any]:
    files, documents = file_list(folder, draw_files(folder))
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
        "parts": {part: about for part, about in PARTS.items()},
        "files": files,
        "documents": documents,
        "accounting": accounting,
        "audit": audit,
    }


@dataclass
class ManifestCheck:
    problems: list[str] = field(default_factory=list)
    checked: int = 0  # files whose SHA-256 was compared
    absent_parts: dict[str, int] = field(default_factory=dict)  # a part not handed over → files it would hold


def file_digest(root: Path, rel: str) -> str:
    """The SHA-256 the manifest lists for a file: of its bytes, or for a page that shows the seal, of
    the page with its seal slot emptied (transforms/documents/seal.py)."""
    from jointdraw.transforms.documents.seal import SEAL_PAGES, hash_with_empty_slot

    return (
        hash_with_empty_slot(Path(root) / rel)
        if rel in {f"{PUBLIC}/{p}" for p in SEAL_PAGES}
        else sha256_file(Path(root) / rel)
    )


def check_manifest(root: Path, manifest_path: Path, present: list[str]) -> ManifestCheck:
    """Every file the manifest at `manifest_path` lists (paths relative to `root`) against the files
    `present`: missing, SHA-256 different (`file_digest`), or present and not listed. A whole part
    that is not there (a bundle handed over as public/ + audit/) is counted, not reported."""
    root, check = Path(root), ManifestCheck()
    data = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    listed = {r["path"]: r for r in [*data.get("files", []), *data.get("documents", [])]}
    label = Path(manifest_path).relative_to(root).as_posix() if Path(manifest_path).is_relative_to(root) else "manifest"
    for path, record in listed.items():
        p = root / path
        part = path.split("/")[0]
        if part in PARTS and not (root / part).is_dir():
            check.absent_parts[part] = check.absent_parts.get(part, 0) + 1
        elif not p.is_file():
            check.problems.append(f"{label}: {path} is listed but missing")
        else:
            actual = file_digest(root, path)
            check.checked += 1
            if actual != record["sha256"]:
                check.problems.append(f"{label}: {path} has SHA-256 {actual}, the manifest says {record['sha256']}")
    check.problems += [
        f"{label}: {path} is in the bundle but not in the manifest" for path in sorted(set(present) - set(listed))
    ]
    return check


def check_bundle(bundle: Path) -> ManifestCheck:
    """The draw's manifest against the bundle, the publication before the draw against its own, and
    the results (public/results/ and regulator/results/) against theirs."""
    bundle = Path(bundle)
    check = check_manifest(bundle, bundle / MANIFEST, draw_files(bundle))
    nested = []
    if (bundle / PRE_FOLDER / "manifest.json").is_file():
        nested.append(
            check_manifest(
                bundle / PRE_FOLDER,
                bundle / PRE_FOLDER / "manifest.json",
                files_under(bundle / PRE_FOLDER, leave_out=("manifest.json",)),
            )
        )
    if (bundle / RESULTS_MANIFEST).is_file():
        nested.append(check_manifest(bundle, bundle / RESULTS_MANIFEST, results_files(bundle)))
    elif results_files(bundle):
        check.problems.append(f"results files without a results manifest: {', '.join(results_files(bundle)[:5])}")
    for n in nested:
        check.problems += [p if p.startswith(PUBLIC) else f"{PRE_FOLDER}/{p}" for p in n.problems]
        check.checked += n.checked
        for part, count in n.absent_parts.items():
            check.absent_parts[part] = check.absent_parts.get(part, 0) + count
    return check


def manifest_problems(bundle: Path) -> list[str]:
    return check_bundle(bundle).problems
