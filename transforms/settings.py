"""Limits and memory, in one place. The flows read them here; a deployment overrides what is a
parameter (`limit_working_days` and `threshold` of the results flow in prefect.yaml, `--limit-days`)
and a plan what is the plan's (`quarantine_threshold`). Nothing else restates these numbers.
"""

# SPEC §4.8: a result is published within this many working days of its inspection
RESULTS_LIMIT_WORKING_DAYS = 20
# a registry kind (objects, inspectors, items) with a larger share of quarantined rows fails the run
QUARANTINE_THRESHOLD = 0.05
# quarantine.xlsx for people holds the first rows and a note; quarantine.csv has every row
QUARANTINE_XLSX_ROWS = 100_000
# DuckDB spills to disk past these rather than grow: merge to 03_merge/.spill (at 8M object rows the
# whole flow then peaks under 8 GiB), the draw while its eligible pairs stream
MERGE_MEMORY_LIMIT = "5GB"
DRAW_MEMORY_LIMIT = "2GB"
