"""Scale-out: ingest and validation tasks on a Dask cluster publish the same bytes as the
flow's own threads (issue 8). The cluster is a real two-worker `distributed.LocalCluster`,
reached by its scheduler address as a production cluster would be."""

import json

import pytest
from distributed import Client, LocalCluster

from flows.plan_run import plan_run
from tests.conftest import plan_path
from tests.flows.test_publish_stage import VOLATILE
from transforms.bundle import bundle_file
from transforms.manifest import file_digest


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def _finished_on_cluster(cluster: LocalCluster) -> dict[str, int]:
    """Task name prefix → tasks that finished on the cluster's workers (the scheduler's own count)."""
    with Client(cluster) as client:
        return client.run_on_scheduler(lambda dask_scheduler: {
            name: prefix.state_counts.get("memory", 0) for name, prefix in dask_scheduler.task_prefixes.items()})


def test_a_run_on_dask_publishes_the_bytes_of_the_default_run(prefect_server, cluster, dirty_run, dirty_city, tmp_path):
    summary = plan_run(plan=str(plan_path(dirty_city)), inbox=str(dirty_city / "inbox"), out=str(tmp_path), run_id="on-dask",
                       dask=cluster.scheduler_address)

    ingest = json.loads((tmp_path / "runs" / "on-dask" / "01_ingest" / "stage.json").read_text(encoding="utf-8"))
    validate = json.loads((tmp_path / "runs" / "on-dask" / "02_validate" / "stage.json").read_text(encoding="utf-8"))
    finished = _finished_on_cluster(cluster)
    assert finished.get("ingest_file") == len(ingest["files"]) == 36  # every department file, on the workers
    assert finished.get("validate_file") == len(validate["files"]) == 36
    assert summary["stages"]["publish"]["bundle"]

    default, on_dask = dirty_run.parent.parent / "published" / "SZ-2026-ANNUAL", tmp_path / "published" / "SZ-2026-ANNUAL"
    first, second = (json.loads(bundle_file(b, "manifest.json").read_text(encoding="utf-8")) for b in (default, on_dask))
    assert {k: v for k, v in first.items() if k not in VOLATILE} == {k: v for k, v in second.items() if k not in VOLATILE}
    for f in first["files"]:
        assert file_digest(default, f["path"]) == file_digest(on_dask, f["path"]), f["path"]  # pages: but their seal
    for stage in ("01_ingest", "02_validate"):  # the stages that fanned out wrote the same files too
        for path in sorted((dirty_run / stage).rglob("*.parquet")):
            twin = tmp_path / "runs" / "on-dask" / path.relative_to(dirty_run)
            assert twin.read_bytes() == path.read_bytes(), path.relative_to(dirty_run)


def test_a_rerun_from_merge_does_not_start_a_cluster(prefect_server, dirty_run, dirty_city, tmp_path):
    """Only ingest and validate fan out: from merge on, `dask` is not even connected to."""
    import shutil

    run = tmp_path / "runs" / "later"
    shutil.copytree(dirty_run, run)
    plan_run(plan=str(plan_path(dirty_city)), inbox=str(dirty_city / "inbox"), out=str(tmp_path), run_id="later",
             start_at="merge", stop_after="merge", dask="tcp://127.0.0.1:1")  # nothing listens there
    assert json.loads((run / "03_merge" / "stage.json").read_text(encoding="utf-8"))["entities"] > 0
