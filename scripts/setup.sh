#!/usr/bin/env bash
# Create .venv at the repository root and install the locked dependencies and the project.
# Idempotent: does nothing when .venv already matches requirements.lock.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "jointdraw needs Python >= 3.11; found $("$python" --version 2>&1). Set PYTHON=/path/to/python3.11." >&2
    exit 1
fi
stamp=".venv/.jointdraw-lock.sha256"
want="$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "setup: creating .venv and installing requirements.lock (about a minute the first time)"
    [[ -x .venv/bin/python ]] || "$python" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade "pip>=24"
    .venv/bin/python -m pip install --quiet --require-hashes -r requirements.lock
    # The checkout installed as the package `jointdraw` (flows/ → jointdraw.flows …, see pyproject.toml);
    # setuptools' note that an editable install maps folders is expected here, so it is not printed.
    PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip install --quiet --no-deps -e .
    rm -rf build ./*.egg-info
    echo "$want" > "$stamp"
    echo "setup: done ($(.venv/bin/python --version))"
fi
# The checkout's modules compiled to bytecode, again for the files changed since (pip compiles the packages it
# installs, not an editable project's sources): where PYTHONDONTWRITEBYTECODE is set (this sandbox sets it) every
# command compiled the 86 modules a run loads again, 0.15–0.2 CPU s before it began; a fresh checkout's first run too.
.venv/bin/python -m compileall -q cli flows transforms
