"""Shared fixtures: an isolated Prefect home, one Prefect test server per session, and
generated cities (clean and dirty) made once per session."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Prefect reads its settings at import: isolate it before anything imports prefect.
_PREFECT_HOME = tempfile.mkdtemp(prefix="jointdraw-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# the session's server records no task runs, as a command's temporary server (cli/prefect_server.py); the real
# server of tests/flows/test_deployment.py records them, as users' servers do
from jointdraw.cli.prefect_server import TASK_RUN_RECORDER  # noqa: E402 (it loads nothing of Prefect)

os.environ.setdefault(TASK_RUN_RECORDER, "false")

import pytest  # noqa: E402

from jointdraw.transforms.samplecity.city import generate_city  # noqa: E402
from jointdraw.transforms.samplecity.submission import write_city  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SMALL_CITY_OBJECTS = 20_000
CITY_SEED = 2021


@pytest.fixture(scope="session")
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def small_city(tmp_path_factory) -> Path:
    """A clean generated city of about 20,000 object rows (inbox/, plans/)."""
    root = tmp_path_factory.mktemp("city")
    write_city(generate_city(SMALL_CITY_OBJECTS, CITY_SEED), root, dirty=False, seed=CITY_SEED)
    return root


@pytest.fixture(scope="session")
def dirty_city(tmp_path_factory) -> Path:
    """The same city with planted errors and truth.csv."""
    root = tmp_path_factory.mktemp("dirty-city")
    write_city(generate_city(SMALL_CITY_OBJECTS, CITY_SEED), root, dirty=True, seed=CITY_SEED)
    return root


def plan_path(city: Path, plan_id: str = "SZ-2026-ANNUAL") -> Path:
    return city / "plans" / f"{plan_id}.yaml"


@pytest.fixture(scope="session")
def dirty_run(prefect_server, dirty_city, tmp_path_factory) -> Path:
    """The dirty city run through every stage once (the plan's own seed); returns the run folder."""
    from jointdraw.flows.plan_run import plan_run

    out = tmp_path_factory.mktemp("dirty-run")
    plan_run(plan=str(plan_path(dirty_city)), inbox=str(dirty_city / "inbox"), out=str(out), run_id="dirty")
    return out / "runs" / "dirty"


@pytest.fixture(scope="session")
def installed(tmp_path_factory, worker_id) -> Path:
    """The project as another machine installs it: the wheel built from this checkout (the pinned
    build backend), installed with requirements.lock (hashes checked) into a fresh environment that
    has no checkout on its path. Returns the environment's bin/ (jointdraw, python, dask). Built once
    per test command: the first of pytest-xdist's workers to ask builds it, under a lock, in the
    temporary folder they share; the others wait for it (about 25 s of the 2 cores' time each)."""
    if worker_id == "master":  # not under xdist
        return _install(tmp_path_factory.mktemp("installed"))
    shared = tmp_path_factory.getbasetemp().parent / "installed"
    with open(shared.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or when its worker dies
        if not (shared / "done").exists():
            shutil.rmtree(shared, ignore_errors=True)  # a worker that died while building
            _install(shared)
            (shared / "done").touch()
    return shared / "venv" / "bin"


def _install(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--wheel-dir", str(root / "dist"), str(ROOT)],
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    into = [*pip, "--python", str(root / "venv" / "bin" / "python"), "install", "--no-compile"]
    subprocess.run([*into, "--require-hashes", "--requirement", str(ROOT / "requirements.lock")], check=True)
    subprocess.run([*into, "--no-deps", *map(str, (root / "dist").glob("jointdraw-*.whl"))], check=True)
    # --no-compile spares compiling the whole environment (37 CPU s more for pip); what the tests' processes load
    # is compiled once here instead, by its first import, with the bytecode written as Python writes it by default:
    # where PYTHONDONTWRITEBYTECODE is set (as in this sandbox) each of them — the run, the verify, Dask's scheduler
    # and workers — compiled Prefect, Great Expectations, pandas and distributed again (10 CPU s a process)
    python = root / "venv" / "bin" / "python"
    subprocess.run([python, "-c", f"import {', '.join(INSTALLED_IMPORTS)}"], env=writing_bytecode(), check=True)
    return root / "venv" / "bin"


# what the processes of the installed package load: the command's run and its contract, Dask's scheduler and workers
INSTALLED_IMPORTS = (
    "jointdraw.cli.commands",
    "jointdraw.flows.plan_run",
    "jointdraw.flows.validate",
    "dask.__main__",
    "distributed.cli.dask_scheduler",
    "distributed.cli.dask_worker",
    "prefect_dask",
)


def writing_bytecode(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without PYTHONDONTWRITEBYTECODE: Python writes the bytecode of what it imports, as it
    does on a machine nobody told otherwise."""
    return {k: v for k, v in (os.environ if env is None else env).items() if k != "PYTHONDONTWRITEBYTECODE"}
