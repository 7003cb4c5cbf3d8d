"""Where the test command's CPU goes: a pytest plugin, on only when asked (`bash scripts/test.sh -p
tests.cpu_per_test`). Around every test (setup, call and teardown) it reads the CPU seconds of the pytest
process and of the processes it started and waited for (`resource.getrusage`: a command run by a test, a
server stopped by a fixture), and at the end prints them per test file, the costliest first, with the totals.
Under pytest-xdist each worker measures its own tests and hands them to the controller, which prints them.

A process is counted when it is waited for: a server a session fixture starts is counted at the test after
which the session ends, not at the tests that used it (the totals hold it); a process never waited for (one left
running by a process that exited) is not counted."""

from __future__ import annotations

import json
import resource
import time
from collections import defaultdict

import pytest

SHOWN = 25  # test files in the table

_measured: list[dict] = []  # this process's tests; on the controller, every worker's too


def _cpu() -> tuple[float, float]:
    own, started = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, started.ru_utime + started.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    before, started = _cpu(), time.perf_counter()
    yield
    after = _cpu()
    _measured.append(
        {
            "file": item.nodeid.split("::")[0],
            "wall": time.perf_counter() - started,
            "own": after[0] - before[0],
            "started": after[1] - before[1],
        }
    )


def pytest_sessionfinish(session):
    if hasattr(session.config, "workeroutput"):  # an xdist worker: to the controller
        session.config.workeroutput["cpu_per_test"] = json.dumps(_measured)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    _measured.extend(json.loads(getattr(node, "workeroutput", {}).get("cpu_per_test", "[]")))


def pytest_terminal_summary(terminalreporter):
    by_file: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for m in _measured:
        row = by_file[m["file"]]
        row[0], row[1], row[2] = row[0] + m["wall"], row[1] + m["own"], row[2] + m["started"]
    own, started = sum(r[1] for r in by_file.values()), sum(r[2] for r in by_file.values())
    write = terminalreporter.write_line
    terminalreporter.section("CPU seconds per test file (tests/cpu_per_test.py)")
    write(f"{'wall s':>10} {'CPU s':>8} {'pytest':>8} {'started':>8}  file")
    for name, (wall, o, s) in sorted(by_file.items(), key=lambda kv: -(kv[1][1] + kv[1][2]))[:SHOWN]:
        write(f"{wall:>9.1f}s {o + s:>8.1f} {o:>8.1f} {s:>8.1f}  {name}")
    share = started / (own + started) if own + started else 0.0
    write(
        f"{len(_measured)} tests: {own + started:.1f} CPU s, {own:.1f} in pytest's processes, "
        f"{started:.1f} ({share:.0%}) in the processes they started"
    )
