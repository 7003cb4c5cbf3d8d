"""Reusing what did not change (issue 23, item 4; 复用未变更的结果): a department file's ingest, its
validation, and the merge are taken from an earlier run in the same output root when everything they
depend on is the same, instead of being computed again.

    key = ingest_key(relative, kind, sha256)                 a department file as submitted
    unchanged_since(path, file_identity(path), key, record)     … and still the file ingest just read
    key = validation_key(kind, department, ingested, rules, typed)   that file's verdicts
    key = merge_key(inputs)                                  the object directory
    key = directory_digest_key(directory_sha256, version)    the commitment's digest of the directory
    earlier_directory_digest(run, key)                       … as an earlier run's commit recorded it
    key = public_directory_key(directory_sha256)             the bundle's audit/directory.parquet
    merged_again(run)                                        a directory merged again: the earlier one, what changed
    earlier = EarlierResults.of(run, "validate")             the other runs' recorded results of a stage, by key
    taken = earlier.take(key, into)                          the newest whose files still have their recorded
                                                             SHA-256, linked (or copied) into `into`; None: compute

Every key also holds `fingerprint()`: the pipeline's source, the code tables and every installed
package's version, so a new version of jointdraw (or of polars, which writes the Parquet bytes)
computes everything once again. A result is found through the `reuse` entry its stage recorded
(transforms/stage_records.py `ReuseKey`) and is never taken on trust: its files are linked into the
new run first and their SHA-256 checked there against the earlier record (a link is immune to a
later atomic rewrite of the source, so what was checked is what stays); a file edited, deleted or
rewritten since is not taken, and the result is computed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import pickle
import platform
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import polars as pl

from jointdraw.transforms.stage_records import FileRecord, ReusedFrom, ReuseKey
from jointdraw.transforms.storage.hashed_ahead import Identity, file_identity, same_bytes
from jointdraw.transforms.storage.layout import RunFolder
from jointdraw.transforms.storage.packaged import packaged_dir, reference_dir
from jointdraw.transforms.storage.runfolder import (
    AFFECTED_ENTITIES,
    FAILED_RECORD,
    STAGE_RECORD,
    atomic_path,
    file_record,
    link_or_copy,
    read_stage_record,
    sha256_file,
)

REUSE_VERSION = "jointdraw-reuse-v1"  # the keys' own layout: a change of it makes every earlier key a stranger
DOCS_FOLDER = "docs"  # in the validate stage's folder: each validated file's GX results, pickled, for Data Docs
DATE_BOUND = "expect_column_values_to_be_dates_not_after"  # the one kind of rule that reads the run date
CANDIDATES = 3  # earlier results kept per key, newest first (what a Dask task is handed stays small)


@cache
def fingerprint() -> str:
    """SHA-256 over what every reusable result depends on besides its inputs, computed once per process:
    the pipeline's source (every .py and .sql file of jointdraw.transforms and jointdraw.flows: the
    readers, normalisation, the contract and its rules, the merge), the code tables (data/reference/),
    the Python version and every installed package's version (jointdraw's own among them)."""
    from jointdraw.transforms.documents.manifest import package_versions

    h = hashlib.sha256(REUSE_VERSION.encode())
    for label, folder, patterns in (
        ("transforms", packaged_dir("jointdraw.transforms"), ("*.py", "*.sql")),
        ("flows", packaged_dir("jointdraw.flows"), ("*.py",)),
        ("reference", reference_dir(), ("*.csv",)),
    ):
        for path in sorted({p for pattern in patterns for p in folder.rglob(pattern)}):
            h.update(f"{label}/{path.relative_to(folder).as_posix()}\0{sha256_file(path)}\n".encode())
    h.update(json.dumps({"python": platform.python_version(), "packages": package_versions()}).encode())
    return h.hexdigest()


def directory_digest_key(directory_sha256: list[str], version: str) -> str:
    """The commitment's digest of the directory (transforms/commitment.py: its canonical serialisation, 2.4 s
    at 8M) depends on the directory's files (`directory_sha256`, in order), the commitment's version and the code."""
    return _key("directory-digest", directory=directory_sha256, version=version)


def earlier_directory_digest(run: RunFolder, key: str) -> tuple[str, str] | None:
    """(run id, digest): the directory digest an earlier run's commit recorded under `key`
    (`directory_digest_key`: the same directory files, the same version and code); None: compute it."""
    for other in run.root.started_runs():
        if other.name == run.run_id:
            continue
        try:
            record = json.loads((RunFolder(other).stage("commit") / STAGE_RECORD).read_text("utf-8"))
        except (OSError, ValueError):
            continue  # not there, or being written
        if (reuse := _reuse_of(record)) and reuse.key == key and isinstance(record.get("directory_sha256"), str):
            return other.name, record["directory_sha256"]
    return None


def in_scope_key(number: int, part_sha256: str, scopes: list[dict[str, Any]]) -> str:
    """The draw's in-scope pairs of one part of the committed directory (its eligible pairs before the exclusions)
    depend on that part (its number and SHA-256), the plan's task scopes (`transforms.draw.task_scopes`: each task's
    department and filters) and the code; not on the other parts, the seed, the exclusions nor the rest of the
    plan. So a directory merged again takes the pairs of every part none of whose entities was merged again."""
    return _key("in-scope-pairs", part=number, sha256=part_sha256, scopes=scopes)


def public_directory_key(directory_sha256: list[str]) -> str:
    """The publish stage's audit/directory.parquet (the committed directory without its personal columns): the
    same files of the directory (`directory_sha256`, in order) and the same code write the same bytes."""
    return _key("public-directory", directory=directory_sha256)


def _key(stage: str, **parts: Any) -> str:
    document = {"version": REUSE_VERSION, "code": fingerprint(), "stage": stage, **parts}
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def ingest_key(relative: str, kind: str, sha256: str) -> str:
    """A department file's ingest (its raw and typed Parquet and its record) depends on its bytes, on its
    name under the inbox (`AMR/objects.csv`: the department, the kind, the format by its extension, and
    the `source_file` its rows carry) and on the code."""
    return _key("ingest", file=relative, kind=kind, sha256=sha256)


def unchanged_since(path: Path, before: Identity, key: str, record: dict[str, Any]) -> bool:
    """Whether the file ingest just read is still the one `key` was made from (its state as before it was hashed,
    and the SHA-256 ingest recorded the one in the key): a file replaced while it was read gets no key."""
    return file_identity(path) == before and key == ingest_key(
        record["source"]["path"], record["kind"], record["source"]["sha256"]
    )


def _rule_parameters(rule: Any) -> dict[str, Any]:
    """A rule as its verdicts depend on it: the expectation and its parameters (the code lists, the item ids an
    inspector's scope may name …), the reason and column it gives a failing row; a date bound's run date aside."""
    expectation = rule.expectation
    kwargs = dict(expectation.configuration.kwargs)
    if expectation.expectation_type == DATE_BOUND:
        kwargs.pop("latest", None)  # in the key as the file's date cut instead (`date_cuts`)
    return {
        "expectation": expectation.expectation_type,
        "kwargs": kwargs,
        "reason": rule.reason,
        "column": rule.column,
        "first_kept": list(rule.first_kept),
        "reason_of": f"{rule.reason_of.__module__}.{rule.reason_of.__qualname__}" if rule.reason_of else None,
    }


def date_cuts(rules: list[Any], typed: Path) -> dict[str, str | None]:
    """For each rule that bounds a column by the run date (a date may not be after it): the latest date of
    the file's column on or before the bound (None: there is none). The verdicts depend on the run date only
    through it: two run dates with the same cut split the file's dates the same way (on or before, after),
    so the same rows pass and fail. A file with no date between two run dates keeps its verdicts; one with
    a date between them (e.g. 2026-03-15, validated on 1 March and again on 1 April) does not."""
    bounds = {
        r.expectation.column: dt.date.fromisoformat(r.expectation.latest)
        for r in rules
        if r.expectation.expectation_type == DATE_BOUND
    }
    if not bounds:
        return {}
    columns = pl.read_parquet_schema(typed)
    present = {c: b for c, b in bounds.items() if c in columns}
    found = (
        pl.scan_parquet(typed)
        .select(
            *(
                pl.col(c).cast(pl.Date).filter(pl.col(c).cast(pl.Date) <= bound).max().alias(c)
                for c, bound in present.items()
            )
        )
        .collect()
        .row(0, named=True)
        if present
        else {}
    )
    return {c: (found[c].isoformat() if found.get(c) else None) for c in sorted(bounds)}


def validation_key(kind: str, department: str, ingested: list[str], rules: list[Any], typed: Path) -> str:
    """A department file's verdicts (its accepted and quarantined rows, its counts, its GX results) depend on
    its rows as ingested (`ingested`: the SHA-256 of its raw and typed Parquet, as ingest recorded them), its
    kind and department, the kind's rules (`_rule_parameters`), the cut of its dates by the run date
    (`date_cuts`, not the run date itself) and the code."""
    return _key(
        "validate",
        kind=kind,
        department=department,
        ingested=sorted(ingested),
        rules=[_rule_parameters(r) for r in rules],
        date_cuts=date_cuts(rules, typed),
    )


def merge_key(inputs: list[dict[str, Any]]) -> str:
    """The object directory (and its conflicts, links, unlinked and type conflicts) depends on the accepted
    objects files (their names and SHA-256) and the code."""
    return _key("merge", inputs=sorted((i["path"], i["sha256"]) for i in inputs))


@dataclass(frozen=True)
class Earlier:
    """A result an earlier run recorded: the run, its stage folder, and the record of the file (or stage)."""

    run_id: str
    folder: Path
    record: dict[str, Any]
    docs: FileRecord | None = None  # a validated file's kept GX results


def _reuse_of(entry: Any) -> ReuseKey | None:
    """The `reuse` an entry of a stage record carries (None: none, or not one this version reads)."""
    try:
        return ReuseKey.model_validate(entry["reuse"]) if isinstance(entry, dict) and entry.get("reuse") else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Taken:
    """A result taken from an earlier run: its record as that run wrote it, and where it came from."""

    run_id: str
    record: dict[str, Any]
    seconds: float

    def record_here(self) -> dict[str, Any]:
        """The record as this run keeps it: the earlier one, with the time the taking took and its source run."""
        return {
            **self.record,
            "seconds": round(self.seconds, 3),
            "reused_from": ReusedFrom(run_id=self.run_id).model_dump(),
        }


class EarlierResults:
    """The results of one stage that the other runs of an output root recorded, by key, newest first.

    A plain class, not a dataclass: it is every ingest task's parameter, and Prefect walks a parameter's
    dataclasses, lists and dicts looking for futures, task by task — 0.04 s a walk with four earlier runs
    of the 8M city, two walks a task, 3 s of the GIL for forty files. (Prefect's `quote` would skip the walk
    on the flow's threads, but a Dask task is handed the quote itself.)"""

    def __init__(self, by_key: dict[str, list[Earlier]] | None = None) -> None:
        self.by_key = by_key or {}

    @classmethod
    def of(cls, run: RunFolder, stage: str) -> EarlierResults:
        """Every result with a key in the stage's records (stage.json, or stage.failed.json: a stage that
        refused the run still wrote each file's outputs) of every other run under `run`'s output root."""
        found = []
        for other in run.root.started_runs():
            if other.name == run.run_id:
                continue  # its own files are being redone
            folder = RunFolder(other).stage(stage)
            for name in (STAGE_RECORD, FAILED_RECORD):
                path = folder / name
                try:
                    found.append((path.stat().st_mtime_ns, other.name, folder, json.loads(path.read_text("utf-8"))))
                except (OSError, ValueError):
                    continue  # not there, or being written: nothing to take from it
        by_key: dict[str, list[Earlier]] = {}
        for _, run_id, folder, record in sorted(found, key=lambda f: f[0], reverse=True):
            # merge keys the stage, ingest and validate each file, the draw each part of one of its fields (its
            # in-scope pairs)
            fields = [v for v in record.values() if isinstance(v, dict)]
            for entry in [record, *record.get("files", []), *fields, *(p for f in fields for p in f.get("parts", []))]:
                reuse = _reuse_of(entry)
                if reuse and isinstance(entry.get("outputs"), list) and len(by_key.get(reuse.key, [])) < CANDIDATES:
                    by_key.setdefault(reuse.key, []).append(Earlier(run_id, folder, entry, reuse.docs))
        return cls(by_key)

    def may_hold(self, relative: str, size: int) -> bool:
        """Whether an earlier run ingested a file of this inbox path and size (only then is a file hashed
        before it is read, to look for its key; otherwise it is hashed while it is read)."""
        return any(
            (e.record.get("source") or {}).get("path") == relative and e.record["source"].get("bytes") == size
            for earlier in self.by_key.values()
            for e in earlier
        )

    def take(self, key: str, into: Path) -> Taken | None:
        """The newest earlier result for `key` whose files (outputs, and kept GX results) are all still what
        its run recorded, linked into `into` at the same paths; None when there is none (then compute)."""
        for earlier in self.by_key.get(key, []):
            started = time.perf_counter()
            docs = [earlier.docs.model_dump()] if earlier.docs else []
            if _link_verified(earlier.folder, Path(into), [*earlier.record["outputs"], *docs]):
                return Taken(earlier.run_id, earlier.record, time.perf_counter() - started)
        return None


@dataclass(frozen=True)
class MergedAgain:
    """A run's directory merged again from an earlier one (flows/merge.py): the SHA-256 of the earlier directory's
    files, in order (what names it in the warehouse: `warehouse.directory_key`), and the file of the entities merged
    again (03_merge/affected.parquet); every other entity's row is the earlier directory's."""

    earlier_directory_sha256: list[str]
    affected: Path


def merged_again(run: RunFolder) -> MergedAgain | None:
    """How the run's merge was done again from an earlier directory, as its record says (`updated_from`, and its
    entities merged again among its outputs); None when it merged everything (or is older than those records)."""
    record = read_stage_record(run.path, "merge") or {}
    updated = record.get("updated_from") or {}
    affected = [f for f in record.get("outputs", []) if f.get("path") == AFFECTED_ENTITIES]
    if not updated.get("directory_sha256") or not affected:
        return None
    return MergedAgain(updated["directory_sha256"], run.stage("merge") / AFFECTED_ENTITIES)


def _safe(relative: str) -> bool:
    p = PurePosixPath(relative)
    return bool(relative) and not p.is_absolute() and ".." not in p.parts


def still_recorded(folder: Path, files: list[dict[str, Any]]) -> bool:
    """Whether every file of `files` (records: path under `folder`, SHA-256) is still there with those bytes."""
    try:
        return all(_safe(f.get("path", "")) and sha256_file(folder / f["path"]) == f.get("sha256") for f in files)
    except OSError:
        return False


def _link_verified(source: Path, into: Path, files: list[dict[str, Any]]) -> bool:
    """Links (across file systems: copies) every file of `source` to the same path under `into`, all or none:
    each is first placed under a temporary name and its SHA-256 checked there against its record."""
    placed: list[tuple[Path, Path]] = []
    try:
        for f in files:
            if not _safe(f.get("path", "")) or "sha256" not in f:
                return False
            origin, target = source / f["path"], into / f["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.reused")
            temporary.unlink(missing_ok=True)
            try:
                with same_bytes(origin, temporary):  # a file of this run's own that links it hashed it already
                    link_or_copy(origin, temporary)
            except OSError:  # gone, or it cannot be copied either
                return False
            placed.append((temporary, target))
            if sha256_file(temporary) != f["sha256"]:
                return False
        for temporary, target in placed:
            with same_bytes(temporary, target):  # verified: the SHA-256 just taken holds under its name
                os.replace(temporary, target)
        placed = []
        return True
    finally:
        for temporary, _ in placed:
            temporary.unlink(missing_ok=True)


def docs_path(stage_folder: Path, kind: str, department: str) -> Path:
    """Where a validated file's GX results (for Data Docs) are kept: 02_validate/docs/<kind>/<DEPT>.pickle."""
    return Path(stage_folder) / DOCS_FOLDER / kind / f"{department}.pickle"


def keep_docs(docs: list[tuple[Any, Any]], path: Path, stage_folder: Path) -> dict[str, Any]:
    """A validated file's GX results (suite, result for Data Docs), pickled atomically; their file record."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(pickle.dumps(docs, protocol=pickle.HIGHEST_PROTOCOL))
    return file_record(path, None, stage_folder)


def reused_docs(path: Path, rules: list[Any]) -> list[tuple[Any, Any]]:
    """A taken file's GX results for this run's Data Docs (read from its own run's folder, whose SHA-256 was
    checked: the output root is the pipeline's own storage), with this run's date bounds written in: the
    verdicts are the ones this run's bounds give (`date_cuts`), so the page states this run's rule."""
    docs = pickle.loads(Path(path).read_bytes())
    bounds = {r.expectation.column: r.expectation.latest for r in rules if r.expectation.expectation_type == DATE_BOUND}
    for suite, result in docs:
        for expectation in suite.expectations:
            if expectation.expectation_type == DATE_BOUND and expectation.column in bounds:
                expectation.latest = bounds[expectation.column]
        for r in result.results:
            kwargs = r.expectation_config.kwargs
            if r.expectation_config.type == DATE_BOUND and kwargs.get("column") in bounds:
                kwargs["latest"] = bounds[kwargs["column"]]
    return docs
