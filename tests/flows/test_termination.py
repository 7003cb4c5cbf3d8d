"""A SIGTERM that some library swallows still ends the run at the next stage (flows/termination.py).
Seen once in CI: the signal landed while the flow waited on a Dask future, the TerminationSignal
raised there was caught, and the run went on to publish with exit code 0."""

import os
import signal

import pytest
from prefect.exceptions import TerminationSignal

from jointdraw.flows.termination import noticing_sigterm, stop_if_terminated


def _raise_termination(signum, frame):  # what Prefect's handler does during a flow run
    raise TerminationSignal(signal=signum)


def test_a_swallowed_sigterm_is_raised_again_before_the_next_stage():
    before = signal.signal(signal.SIGTERM, _raise_termination)
    try:
        with noticing_sigterm():
            stop_if_terminated()  # nothing received yet: goes on
            try:
                os.kill(os.getpid(), signal.SIGTERM)
            except BaseException:  # a library that catches everything
                pass
            with pytest.raises(TerminationSignal):
                stop_if_terminated()
        assert signal.getsignal(signal.SIGTERM) is _raise_termination  # the handler before the block is back
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_new_block_starts_without_the_last_runs_signal():
    before = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        with noticing_sigterm():
            os.kill(os.getpid(), signal.SIGTERM)
        with noticing_sigterm():
            stop_if_terminated()  # the next run in this process is not stopped by the last one's signal
    finally:
        signal.signal(signal.SIGTERM, before)
