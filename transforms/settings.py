"""Limits and memory, in one place. The flows read them here; a deployment overrides what is a
parameter (`limit_working_days` and `threshold` of the results flow in prefect.yaml, `--limit-days`)
and a plan what is the plan's (`quarantine_threshold`). Nothing else restates these numbers.
"""

# SPEC §4.8: a result is published within this many working days of its inspection
RESULTS_LIMIT_WORKING_DAYS = 20
# issue 22: results reach the public notice only once reviewed (审核通过); `--no-review` / the flow's
# `review_required` turn it off (then every accepted result is public)
RESULTS_REVIEW_REQUIRED = True
# how long a result stays on the public results notice, in years from the day it was first published, by
# entity category (registry `entity_type`); it stays in the regulator's files and the warehouse for good
RESULTS_PUBLIC_YEARS: dict[str, int] = {"enterprise": 3, "cooperative": 3, "other": 3, "individual": 1}
# a problem found (result code of category `problem`) is followed up to completion (处置完结) within this
# many working days of the inspection; past it without a completion date it is listed as overdue
FOLLOW_UP_LIMIT_WORKING_DAYS = 60
# a registry kind (objects, inspectors, items) with a larger share of quarantined rows fails the run
QUARANTINE_THRESHOLD = 0.05
# quarantine.xlsx for people holds the first rows and a note; quarantine.csv has every row
QUARANTINE_XLSX_ROWS = 100_000
# DuckDB spills to disk past these rather than grow: merge to 03_merge/.parts/spill*, the draw while its eligible
# pairs stream. The merge's key ranges at 8M object rows (scripts/profile_merge.py, the stage alone): 3GB 25.6 s
# and a 3.16 GiB peak, 2500MB 27.8 s and 2.73 GiB, 2GB 30.5 s and 2.29 GiB. In the whole flow the merge sets the
# peak (scripts/bench.py --whole-only: at 8M 3.39 GiB while it ran, more than it takes alone: the process keeps
# what the earlier stages used), and at 3GB a 16M city's flow peaked at 4.29 GiB
MERGE_MEMORY_LIMIT = "2500MB"
# the merge's ranges of entity keys hold about this many records each (a city of fewer: one range): each range
# is merged, sorted and written on its own (transforms/merge.py), on one machine one after the other
MERGE_PARTITION_RECORDS = 4_000_000
# with reuse, a merge whose files differ from an earlier merge's only in some departments' is merged again from it
# (flows/merge.py) when at most this share of its entities would be merged again (those of the records that differ);
# past it, merged whole (the 8M city, one small department's file changed: 7 s instead of 26)
MERGE_UPDATE_SHARE = 0.25
DRAW_MEMORY_LIMIT = "2GB"
# polars' memory allocator (jemalloc) keeps what it frees this long before handing it back to the system (polars'
# own default: 500 ms, then 1000 ms more as MADV_FREE), so the next batch's columns reuse it instead of having the
# kernel fault and zero it again. scripts/bench.py --growth 16000000, one run each (3 December, 23:00-23:55): 1 s
# 137.5 s wall and a 3.93 GiB peak (ingest 26.4 s, validate 10.5); polars' own 172.5 s, 3.92 GiB (ingest 38.6,
# validate 16.0); 2 s 142.3 / 147.6 s, 3.97 / 3.99 GiB; 5 s 143.8 s, 4.06 GiB, past the 4 GiB goal (what the merge
# and the commit free is held while the next step allocates). Set by importing jointdraw.transforms before polars
# (its __init__); an _RJEM_MALLOC_CONF in the environment wins
POLARS_ALLOCATOR = "dirty_decay_ms:1000,muzzy_decay_ms:1000"
# department files ingested at once on the flow's threads, largest first (on Dask the workers set the pace):
# polars and pyarrow use both cores for one large file, and forty files at once on two cores thrash
INGEST_FILES_AT_ONCE = 2
# on the flow's threads a registry kind's files are validated in batches of about this many rows, one batch at a
# time (a larger file is a batch of its own): GX's fixed cost is paid once per batch, and the stage holds one
# batch's rule columns, not a kind's (at 24M a kind in one batch took the stage to 5.13 GiB). A province's market
# regulator file (17.4M rows at 24M) is still held whole: its uniqueness rules read every row of the file
VALIDATE_BATCH_ROWS = 4_000_000
