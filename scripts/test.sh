#!/usr/bin/env bash
# Set up (if needed) and run the test suite. Extra arguments go to pytest (e.g. -k ingest).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
bash scripts/apps.sh  # headless Chromium and LibreOffice Calc: the tests open published files with them
# Guard rails: the Python linted and formatted as pyproject.toml says (ruff), the DuckDB SQL linted
# (sqlfluff); a violation fails the test command, and so CI. `ruff format .` fixes the formatting.
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
.venv/bin/sqlfluff lint --quiet --disable-progress-bar transforms/sql
export PREFECT_SERVER_ANALYTICS_ENABLED=false
exec .venv/bin/python -m pytest "$@"
