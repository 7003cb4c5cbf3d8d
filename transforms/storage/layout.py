"""Where everything lives under an output root, and what a run folder's run.json says: the one
owner of these paths (issue 20). Nothing else joins "runs", "published" or "locks" to a path.

    OUT/runs/<run_id>/run.json        what the run was started with (RunRecord), kept from its first attempt
    OUT/runs/<run_id>/<NN_stage>/     one folder per stage (runfolder.stage_dir)
    OUT/published/<plan_id>/          the plan's bundle, in three parts (bundle.py)
    OUT/warehouse.duckdb              the warehouse (warehouse.py)
    OUT/kpi/<year>/                   the yearly figures (jointdraw kpi: kpi.parquet/.csv/.xlsx, kpi.html)
    OUT/locks/<plan_id>.lock          one writer per plan (runlock.py)
    OUT/.staging/                     where bundles are assembled, outside published/
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from jointdraw.transforms.storage.runfolder import STAGE_RECORD, results_stage_dir, stage_dir, write_json

RUN_RECORD = "run.json"


@dataclass(frozen=True)
class OutputRoot:
    """OUT: runs, published bundles, the warehouse, the locks, the staging area and the known digests."""

    path: Path

    @classmethod
    def of_run(cls, run_dir: Path) -> OutputRoot:
        """The output root a run folder (OUT/runs/<run_id>) lives in."""
        return cls(Path(run_dir).parent.parent)

    @classmethod
    def of_bundle(cls, bundle: Path) -> OutputRoot | None:
        """The output root a bundle sits in (OUT/published/<plan_id>), or None when it was moved elsewhere."""
        bundle = Path(bundle).resolve()
        return cls(bundle.parent.parent) if bundle.parent.name == "published" else None

    @property
    def runs(self) -> Path:
        return self.path / "runs"

    def run(self, run_id: str) -> Path:
        return self.runs / run_id

    def run_folder(self, run_id: str, results: bool = False) -> RunFolder:
        """The run's folder as an object: stages by name, run.json, stage records."""
        return RunFolder(self.run(run_id), results)

    def published(self, plan_id: str) -> Path:
        return self.path / "published" / plan_id

    @property
    def warehouse(self) -> Path:
        return self.path / "warehouse.duckdb"

    @property
    def known_digests(self) -> Path:
        """The SHA-256 of the files the runs here read and wrote, while they are unchanged
        (transforms/storage/hashed_ahead.py `keep_known`)."""
        return self.path / "known_digests.json"

    def kpi(self, year: int) -> Path:
        """The yearly figures of `year` (written whole or not at all, like a bundle)."""
        return self.path / "kpi" / str(year)

    def lock(self, plan_id: str) -> Path:
        return self.path / "locks" / f"{plan_id}.lock"

    @property
    def staging(self) -> Path:
        return self.path / ".staging"

    def started_runs(self) -> list[Path]:
        """Every run folder that has its run.json, oldest first."""
        found = [p for p in self.runs.glob("*") if (p / RUN_RECORD).is_file()] if self.runs.is_dir() else []
        return sorted(found, key=lambda p: p.stat().st_mtime)


class RunRecord(BaseModel):
    """run.json of a plan run: written when the run starts, read by every later attempt."""

    model_config = ConfigDict(extra="allow")  # a results run's record carries its own fields (as_of, limit)

    run_id: str
    plan_id: str
    plan: str | None = None
    plan_sha256: str | None = None
    inbox: str
    out: str
    seed: str | None = None
    seed_sources: list[str] | None = None
    run_date: str | None = None
    generated_seed: str | None = None
    reuse: bool | None = None  # False: started with --no-reuse (kept only then), so its resumes compute everything


def run_record_path(run_dir: Path) -> Path:
    return Path(run_dir) / RUN_RECORD


def read_run_record(run_dir: Path) -> RunRecord:
    """The run's run.json, typed (a missing or malformed one is an error naming the file)."""
    return RunRecord.model_validate(json.loads(run_record_path(run_dir).read_text(encoding="utf-8")))


def write_run_record(run_dir: Path, record: RunRecord) -> Path:
    """run.json with the fields the run was given (in the model's order), atomically."""
    return write_json(record.model_dump(exclude_unset=True), run_record_path(run_dir))


def open_run(run_dir: Path, new: RunRecord) -> RunRecord:
    """A run's record: the one its run.json holds when the run already started (a rerun keeps the run
    date, plan, inbox and seed of its first attempt, and is checked against the plan's SHA-256), else
    `new`, written."""
    if run_record_path(run_dir).exists():
        return read_run_record(run_dir).model_copy(update={"run_id": new.run_id})
    write_run_record(run_dir, new)
    return new


@dataclass(frozen=True)
class RunFolder:
    """One run's folder, OUT/runs/<run_id>/: its stages by name (a plan run's 01_ingest … 08_publish, a
    results run's 00_plan … 03_publish), its run.json read once and typed, the stages' records typed,
    and the output root it lives in. The flows hand it to every stage."""

    path: Path
    results: bool = False  # a results run (its stages are numbered from 00_plan)

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def root(self) -> OutputRoot:
        return OutputRoot.of_run(self.path)

    def stage(self, name: str) -> Path:
        """The stage's folder, by the stage's name."""
        return results_stage_dir(self.path, name) if self.results else stage_dir(self.path, name)

    @cached_property
    def record(self) -> RunRecord:
        """run.json, read once (a run's own later writes, such as its generated seed, go through
        `write_run_record`)."""
        return read_run_record(self.path)

    def stage_record(self, name: str) -> Any:
        """A finished stage's record (its stage.json, typed: transforms/stage_records.py)."""
        from jointdraw.transforms.stage_records import RECORD_TYPES, RESULTS_RECORD_TYPES, read_record

        return read_record(self.stage(name) / STAGE_RECORD, RESULTS_RECORD_TYPES if self.results else RECORD_TYPES)
