"""Validate's Data Docs (02_validate/validation/), built on a thread of this process while the stages after
the merge run: rendering the Great Expectations results of every department file takes about a second (0.9 s in a
quarterly run at 8M, where validating the one changed file takes less), and nothing before publish reads them.

    build_later(build, site)         keeps `build()`, which writes `site` (moved into place whole when done)
    start_data_docs()                starts the builds kept (the plan flow: when the merge has ended)
    data_docs_built(site, again)     returns once `site` is there: builds it now if it was kept and not started,
                                     waits for it if it was started (raising what the build raised), or calls
                                     `again()` when this process has no build of it and `site` is missing (the
                                     process that validated stopped before the site was whole: a resume from a
                                     later stage builds it from what validate kept)
    all_data_docs_built()            every build of this process done (a flow does not end before them)

Publish copies the site into the bundle: it waits first. A validate stage that fails builds it before it ends:
its reasons are read in the site. Why after the merge: at 8M the merge keeps both cores busy for 26 s, and a
build beside it (one core, the GIL) made it 2.5–4 s longer; at the lowest priority (a thread's nice value) it did
not, but a flow that then waited for the build on a busy machine waited for a thread that got no core (the test
suite, two runs at once, took 8 min 10 s instead of 7). This module does not load Great Expectations (a run
resumed at publish with the site in place never does).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

_BUILDER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="data-docs")
_KEPT: dict[Path, Callable[[], Path]] = {}  # builds not started yet, by the site's absolute path
_BUILDING: dict[Path, Future[Path]] = {}  # builds started


def build_later(build: Callable[[], Path], site: Path) -> Path:
    """Keeps `build()` (which writes `site`) for `start_data_docs`; returns the site's index page."""
    _KEPT[Path(site).resolve()] = build
    return Path(site) / "index.html"


def start_data_docs() -> None:
    """Starts every build kept, on this process's Data Docs thread."""
    while _KEPT:
        site, build = _KEPT.popitem()
        _BUILDING[site] = _BUILDER.submit(build)


def data_docs_built(site: Path, again: Callable[[], Path]) -> Path:
    """The site's index page, once the site is whole (see the module's text)."""
    key = Path(site).resolve()
    if (build := _KEPT.pop(key, None)) is not None:
        return build()
    if (pending := _BUILDING.pop(key, None)) is not None:
        return pending.result()
    if not (site / "index.html").is_file():
        return again()
    return site / "index.html"


def all_data_docs_built() -> None:
    """Returns when every site this process was asked to build is whole; raises what a build raised."""
    start_data_docs()
    while _BUILDING:
        _, pending = _BUILDING.popitem()
        pending.result()
