"""Validate's Data Docs (02_validate/validation/), built on a thread of this process while the stages after
validate run: rendering the Great Expectations results of every department file takes about a second (0.9 s in a
quarterly run at 8M, where validating the one changed file takes less), and nothing before publish reads them.

    build_meanwhile(build, site)     starts `build()`, which writes `site` (moved into place whole when done)
    data_docs_built(site, again)     returns once `site` is there: waits for this process's build (raising what
                                     it raised), or calls `again()` when no build of this process is under way
                                     and `site` is missing (the process that validated stopped before the
                                     site was whole: a resume from a later stage builds it from what validate kept)
    all_data_docs_built()            waits for every build this process started (a flow does not end before them)

Publish copies the site into the bundle: it waits first. A validate stage that fails waits too: its
reasons are read in the site. This module does not load Great Expectations (a run resumed at publish with
the site in place never does).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path


def _yielding() -> None:
    """The builder's thread runs at the lowest priority (Linux: a thread's nice value is its own): on a machine
    whose cores the next stage keeps busy (the merge at 8M: DuckDB on every core), the build takes what they
    leave instead of slowing them (at normal priority the merge took 28–30 s instead of 25.7 s)."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux: at the normal priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


_BUILDER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="data-docs", initializer=_yielding)
_BUILDING: dict[Path, Future[Path]] = {}  # by the site's absolute path


def build_meanwhile(build: Callable[[], Path], site: Path) -> Path:
    """Starts `build()` (which writes `site`) on this process's Data Docs thread; returns the site's index page."""
    _BUILDING[Path(site).resolve()] = _BUILDER.submit(build)
    return Path(site) / "index.html"


def data_docs_built(site: Path, again: Callable[[], Path]) -> Path:
    """The site's index page, once the site is whole (see the module's text)."""
    if (pending := _BUILDING.pop(Path(site).resolve(), None)) is not None:
        return pending.result()
    if not (site / "index.html").is_file():
        return again()
    return site / "index.html"


def all_data_docs_built() -> None:
    """Returns when every site this process started building is whole; raises what a build raised."""
    while _BUILDING:
        _, pending = _BUILDING.popitem()
        pending.result()
