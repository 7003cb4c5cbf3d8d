"""Files written beside the caller: the publish stage's workbooks and its biggest Parquet file.

    with BackgroundWriters() as writers:
        writers.submit(write_people_xlsx, df, path, headers, sheet)        # in a thread
        writers.submit_to_process(copy_parquet_without, source, path, cols)  # in a process of its own
        ...                                   # the caller goes on writing its own files
    # here every submitted file is written, or the first writer's error is raised

Threads for the workbooks: what they spend their time in — polars and zlib (xlsxwriter's zip) —
runs without Python's GIL, and nothing is pickled. A process for a writer that keeps polars busy
for seconds (rewriting the 5.8M-row directory at 8M objects): polars' worker threads are shared by
every thread of a process, and while one big write holds them the caller's small polars steps wait
for it (measured: 14 s). Such a writer gets paths, never frames, and reads what it writes.
A writer writes its own file atomically (transforms/storage/runfolder.py: atomic_path).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

WRITERS = 2  # threads: one per core of the machine the pipeline is sized for


class _ProcessWriter:
    """One writer in a fresh interpreter (`python -m` this module: unlike multiprocessing's spawn, it does
    not run the caller's main script again), handed the function and its arguments pickled on stdin;
    its error, if any, comes back pickled on stdout. stdin stays open while the writer runs: when this
    process dies (killed), the writer sees it end and stops at once instead of writing on."""

    def __init__(self, write: Callable[..., Any], args: tuple) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        task = pickle.dumps((write, args))
        self._process.stdin.write(len(task).to_bytes(8, "big") + task)
        self._process.stdin.flush()

    def error(self) -> BaseException | None:
        """Waits for the writer; its error, or None."""
        answer = self._process.stdout.read()
        self._close()
        error = pickle.loads(answer) if answer else None
        if error is None and self._process.returncode != 0:
            error = RuntimeError(f"a background writer process ended with exit code {self._process.returncode}")
        return error

    def stop(self) -> None:
        self._process.terminate()
        self._close()

    def _close(self) -> None:
        self._process.stdin.close()
        self._process.wait()
        self._process.stdout.close()


def _child() -> None:
    """The writer process: reads its task, then writes its file, stopping if its parent's end of stdin closes."""
    stdin = sys.stdin.buffer
    size = int.from_bytes(stdin.read(8), "big")
    write, args = pickle.loads(stdin.read(size))

    def stop_with_parent() -> None:
        while os.read(stdin.fileno(), 1 << 16):  # the raw file: no lock for shutdown to wait on
            pass
        os._exit(1)  # end of file: the parent closed it (done with us) or died

    threading.Thread(target=stop_with_parent, daemon=True).start()
    try:
        write(*args)
        error = None
    except BaseException as e:
        error = e
    try:
        answer = pickle.dumps(error)
    except Exception:  # an error that does not pickle: its text
        answer = pickle.dumps(RuntimeError(f"{type(error).__name__}: {error}"))
    sys.stdout.buffer.write(answer)
    sys.stdout.buffer.flush()


class BackgroundWriters:
    """Writer threads, and writer processes, whose exit waits for every submitted writer and raises
    the first error one of them raised; when the caller fails, writers not started never start and
    processes are stopped (no writer is left writing into a folder the caller is about to remove)."""

    def __init__(self, threads: int = WRITERS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="writer")
        self._futures: list[Future] = []
        self._processes: list[_ProcessWriter] = []

    def submit(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Runs `write(*args, **kwargs)` in one of the threads."""
        self._futures.append(self._pool.submit(write, *args, **kwargs))

    def submit_to_process(self, write: Callable[..., Any], *args: Any) -> None:
        """Runs `write(*args)` in a process of its own: `write` a module-level function, `args` small
        and picklable (paths)."""
        self._processes.append(_ProcessWriter(write, args))

    def wait(self) -> None:
        """Waits for every writer submitted so far; raises the first error."""
        futures, self._futures = self._futures, []
        processes, self._processes = self._processes, []
        errors = [f.exception() for f in futures] + [p.error() for p in processes]
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
                for p in self._processes:
                    p.stop()
        finally:
            self._pool.shutdown(wait=True)  # a started thread finishes before the caller goes on


if __name__ == "__main__":
    _child()
