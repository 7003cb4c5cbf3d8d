"""Shared fixtures: an isolated Prefect home, one Prefect test server per session (per xdist worker), and
generated cities (clean and dirty), the dirty city's run and the installed package, each made once per test
command for both workers (`made_once`): read them, copy them to change them."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from functools import partial
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
def small_city(request, tmp_path_factory, worker_id) -> Path:
    """A clean generated city of about 20,000 object rows (inbox/, plans/)."""
    return made_once(request, tmp_path_factory, worker_id, "city", partial(_write_city, dirty=False))


@pytest.fixture(scope="session")
def dirty_city(request, tmp_path_factory, worker_id) -> Path:
    """The same city with planted errors and truth.csv."""
    return made_once(request, tmp_path_factory, worker_id, "dirty-city", partial(_write_city, dirty=True))


def _write_city(root: Path, dirty: bool) -> None:
    write_city(generate_city(SMALL_CITY_OBJECTS, CITY_SEED), root, dirty=dirty, seed=CITY_SEED)


def plan_path(city: Path, plan_id: str = "SZ-2026-ANNUAL") -> Path:
    return city / "plans" / f"{plan_id}.yaml"


@pytest.fixture(scope="session")
def dirty_run(request, prefect_server, dirty_city, tmp_path_factory, worker_id) -> Path:
    """The dirty city run through every stage once (the plan's own seed); returns the run folder."""

    def run(out: Path) -> None:
        from jointdraw.flows.plan_run import plan_run

        plan_run(plan=str(plan_path(dirty_city)), inbox=str(dirty_city / "inbox"), out=str(out), run_id="dirty")

    return made_once(request, tmp_path_factory, worker_id, "dirty-run", run) / "runs" / "dirty"


@pytest.fixture(scope="session")
def installed(request, tmp_path_factory, worker_id) -> Path:
    """The project as another machine installs it: the wheel built from this checkout (the pinned
    build backend), installed with requirements.lock (hashes checked) into a fresh environment that
    has no checkout on its path. Returns the environment's bin/ (jointdraw, python, dask). (Its
    processes write their bytecode into it: not checked as unchanged.)"""
    return made_once(request, tmp_path_factory, worker_id, "installed", _install, unchanged=False) / "venv" / "bin"


def made_once(request, tmp_path_factory, worker_id: str, name: str, make, unchanged: bool = True) -> Path:
    """A folder `make(folder)` fills, made once per test command and read by every test that asks: the first of
    pytest-xdist's workers to ask makes it, under a lock, in the temporary folder they share; the others wait
    for it (a city 2 CPU s, the dirty city's run 12, the installed package 30). Nothing may write into it: at
    the end of each worker's session, its files are checked unchanged (`unchanged`), so a test that wrote into
    it fails there, not another test on another worker by chance of which one made it."""
    if worker_id == "master":  # not under xdist
        folder = tmp_path_factory.mktemp(name)
        make(folder)
    else:
        folder = tmp_path_factory.getbasetemp().parent / name
        with open(folder.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or when its worker dies
            if not folder.with_suffix(".done").exists():
                shutil.rmtree(folder, ignore_errors=True)  # a worker that died while making it
                folder.mkdir()
                make(folder)
                folder.with_suffix(".done").touch()
    if unchanged:
        made = _folder_digest(folder)
        request.addfinalizer(lambda: _assert_unchanged(folder, made))
    return folder


def _folder_digest(folder: Path) -> str:
    """SHA-256 of every file's path and bytes under `folder`."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _assert_unchanged(folder: Path, made: str) -> None:
    assert _folder_digest(folder) == made, (
        f"a test wrote into {folder}, which the session's tests share: copy it first (shutil.copytree)"
    )


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
    # --no-compile spares compiling the whole environment (pip took 56 s with it, 20 s without); what the tests'
    # processes load is compiled once here instead, by its first import, with the bytecode written as Python writes
    # it by default: where PYTHONDONTWRITEBYTECODE is set (as in this sandbox) each of them — the run, the verify,
    # Dask's scheduler and workers — compiled Prefect, Great Expectations, pandas and distributed again (about
    # 10 CPU s a process)
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


def writing_bytecode() -> dict[str, str]:
    """This environment without PYTHONDONTWRITEBYTECODE: Python writes the bytecode of what it imports, as it
    does on a machine nobody told otherwise."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
