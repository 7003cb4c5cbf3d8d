#!/usr/bin/env bash
# Set up (if needed), generate the built-in sample city, and run the plan flow on it.
# Outputs: data/demo/ (the sample inbox, plan and truth.csv of planted errors), out/runs/<run_id>/ (the run's stages).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
export PREFECT_SERVER_ANALYTICS_ENABLED="${PREFECT_SERVER_ANALYTICS_ENABLED:-false}"
objects="${DEMO_OBJECTS:-20000}"
.venv/bin/jointdraw generate data/demo --objects "$objects" --seed 2021 --dirty  # 1% planted errors: the contract shows what it catches
.venv/bin/jointdraw run data/demo/plans/SZ-2026-ANNUAL.yaml --inbox data/demo/inbox --out out "$@"
# then the results departments would submit (sample, 1 planted error per department), checked and published (检查结果公示)
.venv/bin/jointdraw generate-results SZ-2026-ANNUAL --out out --inbox data/demo/results-inbox --as-of 2026-11-27 --dirty
.venv/bin/jointdraw results SZ-2026-ANNUAL --inbox data/demo/results-inbox --out out --as-of 2026-11-27
