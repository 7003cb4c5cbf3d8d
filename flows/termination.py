"""SIGTERM is never lost: a run that received it stops at the next stage at the latest.

During a flow run Prefect's handler turns SIGTERM into a `TerminationSignal` raised wherever the
main thread is. Code that catches every exception (a library waiting on a Dask future, a
serialiser) can swallow it, and the run then went on to publish as if nothing had happened
(seen once in CI). So the flows remember the signal before Prefect's handler runs, and the
stage runner (flows/stage.py) asks before each stage: `stop_if_terminated()` raises the `TerminationSignal` that
was lost, which ends the run as a SIGTERM does (the CLI says "interrupted" and how to resume).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from prefect.exceptions import TerminationSignal

_received = threading.Event()


@contextmanager
def noticing_sigterm() -> Iterator[None]:
    """Within the block (a flow's body, in the main thread), SIGTERM is remembered, then handled
    as before (Prefect's handler raises TerminationSignal). Outside the main thread: a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def remember(signum: int, frame: object) -> None:
        _received.set()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            raise TerminationSignal(signal=signum)

    _received.clear()
    signal.signal(signal.SIGTERM, remember)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is remember:
            signal.signal(signal.SIGTERM, previous)


def stop_if_terminated() -> None:
    """Raises the TerminationSignal of a SIGTERM received earlier in this run, if one was."""
    if _received.is_set():
        raise TerminationSignal(signal=signal.SIGTERM)
