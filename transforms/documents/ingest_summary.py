"""The end-of-run table for ingest: rows per department and registry kind."""

from __future__ import annotations

from typing import Any

import polars as pl

from jointdraw.transforms.registry import submitted_kinds


def ingest_summary(record: dict[str, Any]) -> pl.DataFrame:
    """One row per department: rows ingested per kind (null where the department sent no such
    file; an optional kind such as inspections only when some department sent one), then a `total`
    row. Read from the ingest stage's record."""
    rows = pl.DataFrame(
        [{"department": f["department"], "kind": f["kind"], "rows": f.get("rows_written")} for f in record["files"]],
        schema={"department": pl.String, "kind": pl.String, "rows": pl.Int64},
    )
    kinds = submitted_kinds(rows["kind"].unique().to_list())
    wide = rows.pivot(on="kind", index="department", values="rows", aggregate_function="first")
    wide = wide.with_columns([pl.lit(None, pl.Int64).alias(k) for k in kinds if k not in wide.columns]).select(
        "department", *kinds
    )
    wide = wide.sort("department")
    total = wide.select(pl.lit("total").alias("department"), *[pl.col(k).sum() for k in kinds])
    return pl.concat([wide, total])
