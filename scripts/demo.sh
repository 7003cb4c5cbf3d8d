#!/usr/bin/env bash
# Set up (if needed), generate the built-in sample city, and run the plan flow on it.
# Outputs: data/demo/ (the sample inbox, plan and truth.csv of planted errors), out/runs/<run_id>/ (the run's stages),
# out/published/SZ-2026-ANNUAL/{public,audit,regulator}/ (the sealed bundle; verify checks it against its seals), and
# last the year's figures out/kpi/2026/ (kpi.parquet, kpi.csv, kpi.xlsx, kpi.html): the demo ends with the KPI page's path.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
export PREFECT_SERVER_ANALYTICS_ENABLED="${PREFECT_SERVER_ANALYTICS_ENABLED:-false}"
objects="${DEMO_OBJECTS:-20000}"
.venv/bin/jointdraw generate data/demo --objects "$objects" --seed 2021 --dirty  # 1% planted errors: the contract shows what it catches
.venv/bin/jointdraw run data/demo/plans/SZ-2026-ANNUAL.yaml --inbox data/demo/inbox --out out "$@"
# then the results departments submit over the year (sample: each file is a department's results so far, with
# review states and follow-ups; 1 planted error per department), checked and published at each month's end
# (检查结果公示) in one process: a result keeps the day it was first published, so the late share is what a year gives
.venv/bin/python scripts/demo_results.py SZ-2026-ANNUAL --out out --inbox data/demo/results-inbox \
  2026-03-31 2026-04-30 2026-05-29 2026-06-30 2026-07-31 2026-08-31 2026-09-30 2026-10-30 2026-11-27
# the seals the audit log recorded for the draw and the results (announce them); verify checks the bundle against them
read -r seal results_seal < <(.venv/bin/python -c "from jointdraw.transforms.audit import last_seal; from jointdraw.transforms.storage.warehouse import audit_entries
e = audit_entries('out', 'SZ-2026-ANNUAL'); print(last_seal(e, 'publish'), last_seal(e, 'results'))")
.venv/bin/jointdraw verify out/published/SZ-2026-ANNUAL --seal "$seal" --results-seal "$results_seal"
# the year's figures (年度考核指标) from the warehouse, counted up to the results' day: the last lines are the summary and
# the KPI page's path
.venv/bin/jointdraw kpi --year 2026 --out out --as-of 2026-11-27
