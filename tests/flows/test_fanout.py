"""The flow's threads run at most `at_once` mapped tasks at a time, started in the order given (ingest's
files, largest first), each with its own arguments; every result comes back in that order. Validation
batches hold at most a number of rows."""

import threading
import time

from prefect import flow, task, unmapped

from jointdraw.flows.fanout import batches_of_rows, map_tasks

_running = {"now": 0, "most": 0, "started": []}
_lock = threading.Lock()


@task
def _count(n: int, offset: int) -> int:
    with _lock:
        _running["now"] += 1
        _running["most"] = max(_running["most"], _running["now"])
        _running["started"].append(n)
    time.sleep(0.2)
    with _lock:
        _running["now"] -= 1
    return n + offset


@flow
def _mapped(at_once: int | None) -> list[int]:
    # the static argument first: `unmapped` is a tuple, and must not be taken for the mapped list
    return [f.result() for f in map_tasks(_count, at_once=at_once, offset=unmapped(10), n=[5, 4, 3, 2, 1, 0])]


def test_at_most_at_once_tasks_run_at_a_time_in_the_order_given():
    _running.update(now=0, most=0, started=[])
    assert _mapped(2) == [15, 14, 13, 12, 11, 10]
    assert _running["most"] == 2
    started = _running["started"]
    assert set(started[:2]) == {5, 4} and set(started[-2:]) == {1, 0}  # the first given start first


def test_without_a_bound_every_task_runs_at_once():
    _running.update(now=0, most=0, started=[])
    assert _mapped(None) == [15, 14, 13, 12, 11, 10]
    assert _running["most"] > 2


def test_validation_batches_hold_at_most_the_row_limit_and_a_larger_file_alone():
    rows = {"AMR": 6_000, "CUL": 900, "EDU": 300, "EMR": 2_500, "ENV": 0, "FIR": 1_200}
    assert batches_of_rows(rows, 3_000) == [["AMR"], ["CUL", "EDU"], ["EMR", "ENV"], ["FIR"]]
    assert batches_of_rows(rows, 100_000) == [list(rows)]  # a small city: one batch per kind, as before
    assert batches_of_rows({}, 3_000) == []
