"""The run folder: where stages meet on disk (STYLE §4).

    OUT/runs/<run_id>/<NN_stage>/...        one folder per stage, numbered in order
    OUT/runs/<run_id>/<NN_stage>/stage.json what the stage read and wrote (path, SHA-256,
                                            rows), its accounting and its seconds

A stage rerun with `start_at` reads the earlier stages' files from here.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from jointdraw.transforms.storage.hashed_ahead import hashed, remembered, same_bytes

STAGES = ("ingest", "validate", "merge", "commit", "draw", "fuse", "assign", "publish")
STAGE_RECORD = "stage.json"
FAILED_RECORD = "stage.failed.json"  # what a stage that refused its input found: it has not finished


# the results flow's stages: the plan as the warehouse holds it, then ingest and validate as the plan flow numbers
# them, then its own publish
RESULTS_STAGES = ("plan", "ingest", "validate", "publish")


def stage_dir(run_dir: Path, stage: str) -> Path:
    """A plan run's stage folder: 01_ingest … 08_publish."""
    return Path(run_dir) / f"{STAGES.index(stage) + 1:02d}_{stage}"


def results_stage_dir(run_dir: Path, stage: str) -> Path:
    """A results run's stage folder: 00_plan, 01_ingest, 02_validate, 03_publish."""
    return Path(run_dir) / f"{RESULTS_STAGES.index(stage):02d}_{stage}"


def new_run_id(plan_id: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"{plan_id}-{now:%Y%m%dT%H%M%SZ}"


def sha256_file(path: Path, own: bool = False) -> str:
    """The SHA-256 of a file's bytes (taken from transforms/storage/hashed_ahead.py when it was hashed ahead or
    hashed already and has not changed since). `own`: a file the pipeline just wrote in its output root, remembered
    even though recent (hashed_ahead `hashed`)."""
    return remembered(path) or hashed(path, own=own)


DIRECTORY_PARTS = "directory-[0-9][0-9][0-9].parquet"  # the object directory's files in a stage's folder
# a directory merged again (flows/merge.py): the entities merged again, whose rows may differ from the earlier one's
AFFECTED_ENTITIES = "affected.parquet"


def directory_part(number: int) -> str:
    """The name of one range of the object directory in a stage's folder (flows/merge.py)."""
    return f"directory-{number:03d}.parquet"


def directory_parts(stage_folder: Path) -> list[Path]:
    """The object directory a stage holds (merge, commit): its files in key order, together sorted by entity_key."""
    return sorted(Path(stage_folder).glob(DIRECTORY_PARTS))


def file_record(path: Path, rows: int | None, root: Path) -> dict[str, Any]:
    """Where a file of a run folder is (relative to `root`), its SHA-256, its size and row count. The run folder is
    the pipeline's own: its SHA-256 is remembered even when the file was just written (`sha256_file`, `own`)."""
    p = Path(path)
    return {
        "path": p.relative_to(root).as_posix(),
        "sha256": sha256_file(p, own=True),
        "bytes": p.stat().st_size,
        "rows": rows,
    }


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary name beside `path` to write to; renamed to `path` when the block succeeds,
    so a reader never sees half a file (and a failed write leaves the old file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# how every file the pipeline keeps or publishes is written (zstd, statistics, no per-run metadata)
PARQUET_OPTIONS = {"compression": "zstd", "statistics": True}
# a stage's working files, which later stages read and nothing publishes: snappy, which writes and reads 3-5x
# faster than zstd for files about 1.5x as large
WORK_OPTIONS = {"compression": "snappy", "statistics": True}
# one Parquet file, or the files of one table in order (the object directory: `directory_parts`)
ParquetFiles = Path | Sequence[Path]
WORK_STATISTICS = ["source_line"]  # the working files' one column with min/max kept (see work_parquet_appender)


def parquet_paths(files: ParquetFiles) -> list[str]:
    """The file names of `files`, in order (what polars' and DuckDB's readers take)."""
    return [str(files)] if isinstance(files, str | Path) else [str(p) for p in files]


def write_parquet(df: pl.DataFrame, path: Path) -> Path:
    """Parquet written the same way everywhere (PARQUET_OPTIONS), atomically."""
    with atomic_path(path) as tmp:
        df.write_parquet(tmp, **PARQUET_OPTIONS)
    return path


def write_work_parquet(df: pl.DataFrame, path: Path) -> Path:
    """A stage's working file, which later stages read and nothing publishes (the merge's affected entities):
    WORK_OPTIONS."""
    with atomic_path(path) as tmp:
        df.write_parquet(tmp, **WORK_OPTIONS)
    return path


def _leaf_paths(schema: pa.Schema, columns: Sequence[str]) -> list[str]:
    """Parquet's paths of the values of these columns: a list column's values are `<name>.list.element`."""
    lists = (pa.types.is_list, pa.types.is_large_list, pa.types.is_list_view, pa.types.is_large_list_view)
    return [f"{c}.list.element" if any(is_list(schema.field(c).type) for is_list in lists) else c for c in columns]


@contextmanager
def work_parquet_appender(path: Path, dictionary: Sequence[str] = ()) -> Iterator[Callable[[pl.DataFrame], None]]:
    """A working Parquet file written frame by frame (frames of one schema, each a row group or more),
    snappy, with dictionary pages only for the columns named in `dictionary` (ingest's raw and typed rows: the
    typed rows' columns of few distinct values); in place when the block ends, never half written. Each frame
    is written on a thread of its own while the caller goes on (pyarrow writes without the GIL), one frame
    waiting at most; a failed write is raised by the next call or at the end."""
    with atomic_path(path) as tmp:
        writer: pq.ParquetWriter | None = None

        def write(df: pl.DataFrame) -> None:
            nonlocal writer
            table = df.to_arrow(compat_level=pl.CompatLevel.newest())  # string views: no copy of the text
            if writer is None:
                # dictionary pages for a column of distinct values cost twice the time for nothing; statistics for
                # the line numbers only (the rows are in file order, so no other column's min/max skips anything)
                writer = pq.ParquetWriter(
                    tmp,
                    table.schema,
                    compression="snappy",
                    use_dictionary=_leaf_paths(table.schema, dictionary) or False,
                    write_statistics=WORK_STATISTICS,
                )
            writer.write_table(table.cast(writer.schema))

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-writer") as pool:
            pending: Future[None] | None = None

            def append(df: pl.DataFrame) -> None:
                nonlocal pending
                if pending is not None:  # the frame before this one is written first
                    pending.result()
                pending = pool.submit(write, df)

            try:
                yield append
                if pending is not None:
                    pending.result()
            finally:
                pool.shutdown(wait=True)
                if writer is not None:
                    writer.close()


def copy_parquet_without(source: ParquetFiles, path: Path, columns: Collection[str]) -> Path:
    """`source` without `columns` (never read), written as `write_parquet` writes: the same bytes as
    reading it whole, dropping them and writing the rest (polars' `write_parquet` is this streaming sink
    over the frame: checked byte for byte on the 8M directory), with a few row groups in memory at a time."""
    sources = parquet_paths(source)
    kept = [c for c in pl.read_parquet_schema(sources[0]) if c not in columns]
    with atomic_path(path) as tmp:
        pl.scan_parquet(sources).select(kept).sink_parquet(tmp, **PARQUET_OPTIONS)
    return path


def copy_file(source: Path, path: Path) -> Path:
    """`source` copied to `path`, atomically."""
    with atomic_path(path) as tmp:
        shutil.copyfile(source, tmp)
    return path


def copy_verified(source: Path, sha256: str, path: Path) -> Path:
    """`source` copied to `path`, atomically, if the copy's bytes have the SHA-256 `sha256`; otherwise ValueError
    and nothing at `path`."""
    with atomic_path(path) as tmp:
        shutil.copyfile(source, tmp)
        if (found := sha256_file(tmp)) != sha256:
            raise ValueError(f"{source} has SHA-256 {found}, not {sha256}")
    return path


def link_or_copy(source: Path, target: Path) -> None:
    """`source` at `target` (which must not exist) too: a hard link, else (another file system, links not
    allowed) a copy. A missing `source` raises FileNotFoundError."""
    try:
        os.link(source, target)
    except FileNotFoundError:
        raise
    except OSError:
        shutil.copyfile(source, target)


def link_file(source: Path, path: Path) -> Path:
    """`source` at `path` too, atomically (`link_or_copy`): for a working file another stage wrote whole, which
    nothing writes in place (every writer replaces files)."""
    with same_bytes(source, path), atomic_path(path) as tmp:  # a link keeps the SHA-256 known (a copy: hashed)
        link_or_copy(source, tmp)
    return path


def write_json(data: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(
            json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8"
        )
    return path


def accepted_registry(run_dir: Path, kind: str) -> pl.DataFrame:
    """Every department's accepted rows of one registry kind (02_validate/accepted/<kind>/),
    in department order then file order."""
    files = sorted((stage_dir(run_dir, "validate") / "accepted" / kind).glob("*.parquet"))
    if not files:
        return pl.DataFrame()
    return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")


def recorded_outputs(record: Any) -> list[dict[str, Any]]:
    """Every file record (path relative to the stage folder, SHA-256) a stage.json lists as
    written by the stage: under any `outputs` list, and the validate stage's `quarantine_csv`."""
    found: list[dict[str, Any]] = []
    if isinstance(record, dict):
        for key, value in record.items():
            if key == "outputs" and isinstance(value, list):
                found += [r for r in value if isinstance(r, dict) and "sha256" in r]
            elif key == "quarantine_csv" and isinstance(value, dict):
                found.append(value)
            else:
                found += recorded_outputs(value)
    elif isinstance(record, list):
        for value in record:
            found += recorded_outputs(value)
    return found


def changed_outputs(stage_path: Path) -> list[str]:
    """The files a finished stage wrote that are missing or whose SHA-256 is no longer the one
    its stage.json recorded."""
    record = json.loads((Path(stage_path) / STAGE_RECORD).read_text(encoding="utf-8"))
    changed = []
    for r in recorded_outputs(record):
        p = Path(stage_path) / r["path"]
        if not p.is_file() or sha256_file(p) != r["sha256"]:
            changed.append(r["path"] + ("" if p.is_file() else " (missing)"))
    return changed


def inputs_from(run_dir: Path, stage: str, *names: str) -> list[dict[str, Any]]:
    """What a stage reads of an earlier stage's files, as that stage recorded them (path under
    the run folder, SHA-256, rows): no second hash, since a rerun checks them before it starts.
    `names`: only the files with these names or name patterns (default: all)."""
    record = read_stage_record(run_dir, stage) or {}
    folder = stage_dir(run_dir, stage).name
    return [
        {"path": f"{folder}/{r['path']}", "sha256": r["sha256"], "rows": r.get("rows")}
        for r in recorded_outputs(record)
        if not names or any(fnmatch(Path(r["path"]).name, name) for name in names)
    ]


def read_stage_record(run_dir: Path, stage: str) -> dict[str, Any] | None:
    p = stage_dir(run_dir, stage) / STAGE_RECORD
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else None
