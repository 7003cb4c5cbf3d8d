"""The commitment to the eligible sets (SPEC §5): a SHA-256 published before the seed is used.

Canonical serialisation (version jointdraw-commitment-v3), UTF-8, one line per row, fields
separated by a tab, lists joined by ';', booleans as true/false, null as the empty string:

* directory: `entity_key uscc status credit_risk industry_code entity_type district_code
  tags departments registered_type_code foreign_invested branch`, rows in entity_key order —
  every attribute that decides eligibility (v1, before scopes could name registered types, had
  the first nine; `jointdraw verify` recomputes a bundle under the version it was committed with);
* exclusions: `uscc task_id reason`, rows sorted by those fields;
* plan: the bytes of plan.yaml as published;
* pre (v3): the publication before the draw (事前公示, transforms/documents/prepublication.py): SHA-256 over
  "items.csv <sha256>\\nplan_notice.csv <sha256>\\n" of `pre/`.

    commitment = SHA-256("jointdraw-commitment-v3\\n" + directory_sha256 + "\\n" +
                         exclusions_sha256 + "\\n" + plan_sha256 + "\\n" + pre_sha256 + "\\n")

(v2 had no pre part; v1, in addition, the first nine directory fields only.)

Anyone can recompute it from directory.parquet, exclusions.parquet and plan.yaml.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from jointdraw.transforms.storage.runfolder import ParquetFiles, parquet_paths

VERSION = "jointdraw-commitment-v3"
WITH_PRE = {"jointdraw-commitment-v3"}  # versions that cover the publication before the draw
DIRECTORY_FIELDS_BY_VERSION = {
    "jointdraw-commitment-v1": [
        "entity_key",
        "uscc",
        "status",
        "credit_risk",
        "industry_code",
        "entity_type",
        "district_code",
        "tags",
        "departments",
    ],
    "jointdraw-commitment-v2": [
        "entity_key",
        "uscc",
        "status",
        "credit_risk",
        "industry_code",
        "entity_type",
        "district_code",
        "tags",
        "departments",
        "registered_type_code",
        "foreign_invested",
        "branch",
    ],
}
DIRECTORY_FIELDS_BY_VERSION["jointdraw-commitment-v3"] = DIRECTORY_FIELDS_BY_VERSION["jointdraw-commitment-v2"]
DIRECTORY_FIELDS = DIRECTORY_FIELDS_BY_VERSION[VERSION]
EXCLUSION_FIELDS = ["uscc", "task_id", "reason"]
EXCLUSIONS_SCHEMA = {"uscc": pl.String, "task_id": pl.String, "reason": pl.String, "source_run": pl.String}
BATCH = 500_000


def _lines_sha256(df: pl.DataFrame, fields: list[str]) -> str:
    """SHA-256 of the rows as canonical lines (a batch at a time: `_frames_lines_sha256`)."""
    return _frames_lines_sha256((df.slice(start, BATCH) for start in range(0, df.height, BATCH)), fields, df.schema)


def _frames_lines_sha256(frames: Iterator[pl.DataFrame], fields: list[str], schema: pl.Schema) -> str:
    """SHA-256 of the frames' rows, in order, as canonical lines. Each frame's lines are hashed straight from
    their Arrow buffer (the lines' UTF-8 bytes one after the other), never joined into one Python string; the
    next frames' lines are made on two threads meanwhile (polars works without the GIL), hashed in order."""
    h = hashlib.sha256()
    cols = [
        (pl.col(c).list.join(";") if isinstance(schema[c], pl.List) else pl.col(c).cast(pl.String)).fill_null("")
        for c in fields
    ]

    def lines(frame: pl.DataFrame) -> pa.Array | pa.ChunkedArray:
        return frame.select(pl.concat_str(cols, separator="\t") + pl.lit("\n")).to_series().to_arrow()

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="lines") as pool:
        ahead = deque(pool.submit(lines, frame) for frame in itertools.islice(frames, 3))  # at most 3 frames made
        while ahead:
            arrow = ahead.popleft().result()
            ahead.extend(pool.submit(lines, frame) for frame in itertools.islice(frames, 1))
            for chunk in arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]:
                h.update(_utf8_bytes(chunk.cast(pa.large_string())))
    return h.hexdigest()


def _utf8_bytes(array: pa.LargeStringArray) -> memoryview:
    """The strings' UTF-8 bytes one after the other: a view of the array's data buffer, no copy."""
    _, offsets, data = array.buffers()
    ends = np.frombuffer(offsets, dtype=np.int64)
    return memoryview(data)[ends[array.offset] : ends[array.offset + len(array)]]


class _NotSorted(Exception):
    pass


def _sorted_batches(paths: list[str], fields: list[str]) -> Iterator[pl.DataFrame]:
    """The directory's rows a batch at a time, in file order; raises _NotSorted at the first key out of order."""
    last = None
    for batch in pl.scan_parquet(paths).select(fields).collect_batches(chunk_size=BATCH):
        keys = batch["entity_key"]
        if keys.len() and (not keys.is_sorted() or (last is not None and keys[0] < last)):
            raise _NotSorted
        last = keys[-1] if keys.len() else last
        yield batch


def directory_sha256(directory: ParquetFiles, version: str = VERSION) -> str:
    """The directory's lines digest (its file, or its files in key order). The merge and the bundle write it
    sorted by entity_key: it is then read a batch at a time (at 16M object rows the stage read 11.6M entities
    whole); otherwise read whole and sorted."""
    fields, paths = DIRECTORY_FIELDS_BY_VERSION[version], parquet_paths(directory)
    try:
        return _frames_lines_sha256(_sorted_batches(paths, fields), fields, pl.read_parquet_schema(paths[0]))
    except _NotSorted:
        return _lines_sha256(pl.read_parquet(paths, columns=fields).sort("entity_key"), fields)


def exclusions_sha256(path: Path) -> str:
    return _lines_sha256(
        pl.read_parquet(path, columns=EXCLUSION_FIELDS).sort(EXCLUSION_FIELDS, nulls_last=True), EXCLUSION_FIELDS
    )


def commitment(
    directory: ParquetFiles,
    exclusions: Path,
    plan: Path,
    version: str = VERSION,
    pre: Path | None = None,
    directory_digest: str | None = None,
) -> dict[str, str]:
    """The digests and the commitment over them (under `version`: a published bundle is recomputed
    under the version it was committed with); `pre` is the folder of the publication before the draw;
    `directory_digest`: the directory's, when an earlier run computed it from the same files (else computed)."""
    from jointdraw.transforms.documents.prepublication import pre_sha256

    if version not in DIRECTORY_FIELDS_BY_VERSION:
        raise ValueError(
            f"unknown commitment version {version!r} (this jointdraw knows {', '.join(DIRECTORY_FIELDS_BY_VERSION)})"
        )
    parts = {
        "directory_sha256": directory_digest or directory_sha256(directory, version),
        "exclusions_sha256": exclusions_sha256(exclusions),
        "plan_sha256": hashlib.sha256(Path(plan).read_bytes()).hexdigest(),
    }
    if version in WITH_PRE:
        if pre is None:
            raise ValueError(f"{version} covers the publication before the draw: give its folder (pre/)")
        parts["pre_sha256"] = pre_sha256(pre)
    text = f"{version}\n" + "".join(f"{v}\n" for v in parts.values())
    return {"version": version, **parts, "commitment": hashlib.sha256(text.encode()).hexdigest()}
