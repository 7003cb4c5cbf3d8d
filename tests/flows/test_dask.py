"""Scale-out: ingest and validation tasks, the merge's key ranges and the draw's parts on a Dask
cluster publish the same bytes as the flow's own threads (issues 8, 24). The cluster is real and
runs what another machine installs (issue 19): a `dask scheduler` and two `dask worker` processes of
the fresh environment the wheel was installed into, reached by the scheduler's address; the run is
that environment's `jointdraw`, started from a folder outside the checkout, and its bundle is
verified by the same command."""

import json
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest
from distributed import Client
from prefect.settings import PREFECT_API_URL

from jointdraw.flows.plan_run import plan_run
from jointdraw.transforms.documents.manifest import file_digest
from jointdraw.transforms.storage.bundle import bundle_file
from jointdraw.transforms.storage.runfolder import directory_parts
from tests.conftest import ROOT, plan_path, writing_bytecode
from tests.flows.test_publish_stage import VOLATILE


def outside_the_checkout(**extra: str) -> dict[str, str]:
    """The environment of a machine that has the package but not the checkout (and writes bytecode, as Python
    does unless told otherwise)."""
    env = {k: v for k, v in writing_bytecode().items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **extra}


@pytest.fixture(scope="module")
def cluster(installed: Path, tmp_path_factory) -> str:
    """A scheduler and two single-threaded workers of the installed package; yields the address."""
    folder = tmp_path_factory.mktemp("cluster")
    address_file = folder / "scheduler.json"
    env = outside_the_checkout(DASK_LOGGING__DISTRIBUTED="error")
    log = open(folder / "cluster.log", "w")
    scheduler = subprocess.Popen(
        [
            installed / "dask",
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            address_file,
        ],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=log,
    )
    workers = subprocess.Popen(
        [
            installed / "dask",
            "worker",
            "--scheduler-file",
            address_file,
            "--nworkers",
            "2",
            "--nthreads",
            "1",
            "--no-dashboard",
        ],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        while not address_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(address_file.read_text())["address"]
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for process in (workers, scheduler):
            process.terminate()
            process.wait(timeout=30)
        log.close()


def _finished_on_cluster(address: str) -> dict[str, int]:
    """Task name prefix → tasks that finished on the cluster's workers (the scheduler's own count)."""
    with Client(address) as client:
        return client.run_on_scheduler(
            lambda dask_scheduler: {
                name: prefix.state_counts.get("memory", 0) for name, prefix in dask_scheduler.task_prefixes.items()
            }
        )


def _package_on_workers(address: str) -> set[str]:
    with Client(address) as client:
        return set(client.run(lambda: __import__("jointdraw.flows.validate").flows.validate.__file__).values())


def test_the_installed_package_runs_on_its_own_workers_and_publishes_the_bytes_of_the_checkout(
    prefect_server, installed, cluster, dirty_run, dirty_city, tmp_path
):
    venv = installed.parent
    assert all(Path(f).is_relative_to(venv) for f in _package_on_workers(cluster))  # the workers run the wheel
    env = outside_the_checkout(PREFECT_API_URL=PREFECT_API_URL.value())
    where = subprocess.run(
        [installed / "python", "-c", "import jointdraw.transforms.storage.packaged as p; print(p.reference_dir())"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv) and not Path(where.stdout.strip()).is_relative_to(ROOT)

    run = subprocess.run(
        [
            installed / "jointdraw",
            "run",
            plan_path(dirty_city),
            "--inbox",
            dirty_city / "inbox",
            "--out",
            "out",
            "--run-id",
            "on-dask",
            "--dask",
            cluster,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stdout + run.stderr

    on_dask = tmp_path / "out" / "runs" / "on-dask"
    ingest, validate = (
        json.loads((on_dask / s / "stage.json").read_text(encoding="utf-8")) for s in ("01_ingest", "02_validate")
    )
    finished = _finished_on_cluster(cluster)
    files = len(list((dirty_city / "inbox").glob("*/*.*")))  # 3 registries × 12 departments + 4 inspections files
    assert finished.get("ingest_file") == len(ingest["files"]) == files == 40  # every department file, on the workers
    # on Dask in batches of at most a kind's rows divided by the two worker threads: every kind in two batches or
    # more (both workers busy), not a task per file (GX's cost paid forty times)
    assert len(validate["files"]) == 40 and 4 * 2 <= finished.get("validate_files") < 40
    # a key range per worker thread, each merged on a worker: together the directory of one merge
    assert finished.get("merge_partition") == 2 == len(directory_parts(on_dask / "03_merge"))
    assert pl.read_parquet(directory_parts(on_dask / "03_merge")).equals(
        pl.read_parquet(directory_parts(dirty_run / "03_merge"))
    )
    for name in ("conflicts.parquet", "links.csv", "unlinked.csv"):
        assert (on_dask / "03_merge" / name).read_bytes() == (dirty_run / "03_merge" / name).read_bytes(), name
    # the draw part by part on the workers: each part's pairs counted, then its lowest k in both modes at once
    assert finished.get("draw_part_pairs") == 2 and finished.get("draw_part_lowest") == 2
    for name in ("draws.parquet", "strata.parquet"):
        assert (on_dask / "05_draw" / name).read_bytes() == (dirty_run / "05_draw" / name).read_bytes(), name

    default, installed_bundle = (
        out / "published" / "SZ-2026-ANNUAL" for out in (dirty_run.parent.parent, tmp_path / "out")
    )
    first, second = (
        json.loads(bundle_file(b, "manifest.json").read_text(encoding="utf-8")) for b in (default, installed_bundle)
    )
    assert {k: v for k, v in first.items() if k not in VOLATILE} == {
        k: v for k, v in second.items() if k not in VOLATILE
    }
    for f in first["files"]:
        assert file_digest(default, f["path"]) == file_digest(installed_bundle, f["path"]), f[
            "path"
        ]  # pages: but their seal
    for stage in ("01_ingest", "02_validate"):  # the stages that fanned out wrote the same files too
        for path in sorted((dirty_run / stage).rglob("*.parquet")):
            assert (on_dask / path.relative_to(dirty_run)).read_bytes() == path.read_bytes(), path.relative_to(
                dirty_run
            )

    verify = subprocess.run(
        [installed / "jointdraw", "verify", "out/published/SZ-2026-ANNUAL"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert verify.returncode == 0 and any(line.startswith("OK:") for line in verify.stdout.splitlines()), (
        verify.stdout[-2000:] + verify.stderr[-2000:]
    )


def test_a_rerun_from_fuse_does_not_start_a_cluster(prefect_server, dirty_run, dirty_city, tmp_path):
    """Only ingest, validate, merge and draw fan out: from fuse on, `dask` is not even connected to."""
    import shutil

    run = tmp_path / "runs" / "later"
    shutil.copytree(dirty_run, run)
    plan_run(
        plan=str(plan_path(dirty_city)),
        inbox=str(dirty_city / "inbox"),
        out=str(tmp_path),
        run_id="later",
        start_at="fuse",
        stop_after="fuse",
        dask="tcp://127.0.0.1:1",
    )  # nothing listens there
    assert json.loads((run / "06_fuse" / "stage.json").read_text(encoding="utf-8"))["figures"]
