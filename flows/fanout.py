"""Where the fanned-out tasks run (a department file's ingest and validation, a key range's merge, a
directory part's draw steps): the flow's own threads, or a Dask cluster (scale-out).

    with fan_out(dask):                    # dask: None, "local", or a scheduler address
        ...
        futures = map_tasks(ingest_file, file=files, inbox=unmapped(inbox))   # anywhere inside the block

`dask=None` maps on the flow's task runner (Prefect's thread pool: polars and DuckDB already
use every core of one machine). `"local"` starts a `distributed.LocalCluster` of two worker
processes for the run; `tcp://host:8786` connects to an existing scheduler, whose workers
must have this project installed (same lock file) and see the same inbox and output paths.
The tasks are the same in every case and write the same bytes; only where they run differs.

The runner is found through a context variable, not passed along: anything a stage task
takes as a parameter is serialised with every task it submits to Dask, and a live client
cannot be.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import polars as pl
from prefect import Task, unmapped
from prefect.futures import PrefectFuture, PrefectFutureList, as_completed
from prefect.task_runners import TaskRunner
from prefect.utilities.annotations import BaseAnnotation

from jointdraw.flows.errors import StageFailed
from jointdraw.transforms import settings
from jointdraw.transforms.registry import Kind

_RUNNER: ContextVar[TaskRunner | None] = ContextVar("jointdraw_fan_out", default=None)
LOCAL_CLUSTER = {"n_workers": 2, "threads_per_worker": 1, "processes": True, "dashboard_address": None}


def dask_runner(dask: str) -> TaskRunner:
    """prefect-dask's task runner for `dask`: "local" (a two-worker LocalCluster) or a scheduler address."""
    from prefect_dask import DaskTaskRunner

    if dask == "local":
        # the cluster's own processes say nothing on the terminal: a task's failure reaches the run through Prefect, and
        # an interrupted run's workers would print the cancellation of every task they held (issue 19: no library
        # chatter)
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "critical")  # the worker processes read it when they start
        # the scheduler and the nannies live in this process, whose `distributed` logging was configured at import:
        # under load a worker ended by the signal left "Error in batched write" and its traceback on the terminal
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
        return DaskTaskRunner(cluster_kwargs=LOCAL_CLUSTER)
    return DaskTaskRunner(address=dask)


@contextmanager
def fan_out(dask: str | None) -> Iterator[None]:
    """Inside the block, `map_tasks` runs on a started Dask task runner for `dask` (or on the
    flow's own when it is None)."""
    if not dask:
        yield
        return
    with _api_for_workers(), dask_runner(dask) as runner:
        try:
            _ = runner.client  # connects now (or starts the local cluster), so a wrong address fails here, clearly
        except OSError as e:
            raise StageFailed(
                f"cannot reach the Dask scheduler at {dask}: {e} — start it, fix the address, or run without --dask"
            ) from None
        token = _RUNNER.set(runner)
        try:
            yield
        finally:
            _RUNNER.reset(token)


def _api_for_workers():
    """Workers report their task runs to this run's Prefect API. Under `jointdraw run` without a
    server that API is the temporary one Prefect started in this process; its address is
    handed on (otherwise every worker would start a temporary server of its own)."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        return nullcontext()
    server = SubprocessASGIServer()  # the process's one temporary server (Prefect keeps one per port)
    return temporary_settings({PREFECT_API_URL: server.api_url}) if server.server_process else nullcontext()


def map_tasks(task: Task, at_once: int | None = None, **parameters: Any) -> PrefectFutureList:
    """`task.map(**parameters)` on the runner of the enclosing `fan_out`, else the flow's. On the flow's threads,
    `at_once` runs at most that many at a time, started in the order given (the flow's pool has no bound: forty
    files read at once on two cores each take as long as all of them)."""
    runner = _RUNNER.get()
    if runner is not None:
        return runner.map(task, parameters)
    if at_once is None:
        return task.map(**parameters)
    return _submitted_at_most(task, at_once, parameters)


def on_cluster() -> bool:
    """Whether `map_tasks` runs on a Dask cluster (inside `fan_out` with a cluster), not on the flow's threads."""
    return _RUNNER.get() is not None


def cluster_threads() -> int:
    """The threads of the Dask cluster's workers inside `fan_out` (what runs at once there), else 1."""
    runner = _RUNNER.get()
    if runner is None:
        return 1
    return sum(w.get("nthreads", 1) for w in runner.client.scheduler_info()["workers"].values()) or 1


def _submitted_at_most(task: Task, at_once: int, parameters: dict[str, Any]) -> PrefectFutureList:
    """`task` submitted once per mapped value, the next when one of the `at_once` running has finished."""
    # as `map`: lists are mapped, the rest is static (Prefect's `unmapped` is a tuple too)
    mapped = {k: v for k, v in parameters.items() if isinstance(v, list | tuple) and not isinstance(v, BaseAnnotation)}
    fixed = {k: v.unwrap() if isinstance(v, BaseAnnotation) else v for k, v in parameters.items() if k not in mapped}
    futures: list[PrefectFuture[Any]] = []
    running: set[PrefectFuture[Any]] = set()
    for i in range(len(next(iter(mapped.values()), []))):
        if len(running) >= at_once:
            running.discard(next(as_completed(list(running))))
        futures.append(future := task.submit(**{k: v[i] for k, v in mapped.items()}, **fixed))
        running.add(future)
    return PrefectFutureList(futures)


def map_department_files(
    kinds: tuple[Kind, ...], failed: list[dict[str, Any]], task: Task, ingest_dir: Path, **parameters: Any
) -> list[Any]:
    """`task` over the ingested department files of these kinds that met the file-level rules, called
    with kind=, departments= (a batch), ingest_dir= and `parameters`, mapped by `map_tasks`, in batches of about
    VALIDATE_BATCH_ROWS rows of one kind (`batches_of_rows`: GX's fixed cost paid once per batch, one batch's rows
    in memory): on the flow's threads one at a time (the threads share one GX lock anyway); on a Dask cluster in
    parallel on the workers, in batches of at most a kind's rows divided by the workers' threads, so that the
    batches keep them all busy (a file per task paid GX's cost forty times: the demo city's validation took 17 s on
    the local cluster instead of 6 s)."""
    skip = {(f["kind"], f["department"]) for f in failed}
    threads = cluster_threads()
    batches = []
    for kind in kinds:
        files = [p for p in sorted((ingest_dir / kind).glob("*.parquet")) if (kind, p.stem) not in skip]
        rows = {p.stem: pl.scan_parquet(p).select(pl.len()).collect().item() for p in files}
        # a thread's share of the kind's rows at most (off a cluster one thread: the kind's rows, no cut)
        share = max(1, -(-sum(rows.values()) // threads))
        split = batches_of_rows(rows, min(settings.VALIDATE_BATCH_ROWS, share))
        batches += [(kind, batch) for batch in split if batch]
    if not batches:
        return []
    return list(
        map_tasks(
            task,
            at_once=1,
            kind=[k for k, _ in batches],
            departments=[b for _, b in batches],
            ingest_dir=ingest_dir,
            **{k: unmapped(v) for k, v in parameters.items()},
        )
    )


def batches_of_rows(rows: dict[str, int], limit: int) -> list[list[str]]:
    """The departments (in the order given, with their files' rows) cut into consecutive batches of at most
    `limit` rows; a file of more is a batch of its own."""
    batches: list[list[str]] = []
    held = 0  # rows in the last batch
    for department, n in rows.items():
        if not batches or held + n > limit:
            batches.append([])
            held = 0
        batches[-1].append(department)
        held += n
    return batches
