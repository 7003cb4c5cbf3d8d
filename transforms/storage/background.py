"""Files written beside the caller, in threads: the publish stage's workbooks and big Parquet files.

    with BackgroundWriters() as writers:
        writers.submit(write_people_xlsx, df, path, headers, sheet)
        ...                                   # the caller goes on writing its own files
    # here every submitted file is written, or the first writer's error is raised

Threads, not processes: what these writers spend their time in — polars, zlib (xlsxwriter's zip)
and DuckDB — runs without Python's GIL, so two writers and the caller share the two cores, and
nothing is pickled (a process would have to be handed the frames or read them again).
A writer writes its own file atomically (transforms/storage/runfolder.py: atomic_path).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

WRITERS = 2  # threads: one per core of the machine the pipeline is sized for


class BackgroundWriters:
    """A pool of writer threads whose exit waits for every submitted writer and raises the first
    error one of them raised (after all have stopped: no writer is left writing into a folder the
    caller is about to remove)."""

    def __init__(self, threads: int = WRITERS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="writer")
        self._futures: list[Future] = []

    def submit(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._futures.append(self._pool.submit(write, *args, **kwargs))

    def wait(self) -> None:
        """Waits for every writer submitted so far; raises the first error."""
        futures, self._futures = self._futures, []
        errors = [f.exception() for f in futures]  # waits for each
        if first := next((e for e in errors if e is not None), None):
            raise first

    def __enter__(self) -> BackgroundWriters:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        try:
            if kind is None:
                self.wait()
            else:
                for f in self._futures:
                    f.cancel()  # not started yet: never starts
                self._pool.shutdown(wait=True)  # started: finishes before the caller's error goes on
        finally:
            self._pool.shutdown(wait=True)
