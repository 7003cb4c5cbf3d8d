"""Files written beside the caller, in worker processes: the publish stage's workbooks and its biggest
Parquet file.

    with BackgroundWriters() as writers:
        writers.submit(write_people_xlsx, df, path, headers, sheet)
        writers.submit(copy_parquet_without, source, path, columns)
        ...                                   # the caller goes on writing its own files
    # here every submitted file is written, or the first writer's error is raised

    warm_up()                                 # ahead, while a core is idle: the next block's workers, loaded
    write_ahead(path, write, *args)           # a later stage's file, started now; it takes it with
    written_ahead(path)                       #   (waiting for it) or writes it itself

Processes, not threads, though polars, zlib and DuckDB release the GIL: in threads, measured at 8M
objects, the workbooks took 11 s instead of 1.5 s each. xlsxwriter's zip compresses 8 KB at a time and
takes the GIL back after each piece, waiting up to the switch interval (5 ms) while the caller runs
Python (rendering the pages); and polars' worker threads are shared by every thread of a process, so
a big polars write in one thread held up the caller's small polars steps (14 s). Each worker is a
fresh interpreter (`python -m` this module; multiprocessing's spawn would run the caller's main
script again: the CLI imports Prefect) that serves one writer after another; a writer is a
module-level function, sent pickled with its arguments (frames of workbook size: polars pickles them
as Arrow IPC; the 5.8M-row directory goes as a path). A writer writes its own file atomically
(transforms/storage/runfolder.py: atomic_path); a worker stops when this process dies.
"""

from __future__ import annotations

import importlib
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

WORKERS = 2  # processes: one per core of the machine the pipeline is sized for
PARENT_CHECK_SECONDS = 0.2


def _pickled(message: Any) -> bytes:
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def _send(stream: IO[bytes], data: bytes) -> None:
    """A message (`_pickled`), with its length first."""
    stream.write(len(data).to_bytes(8, "big") + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    """The next message, or EOFError when the other side is gone."""
    header = stream.read(8)
    if len(header) < 8:
        raise EOFError
    return pickle.loads(stream.read(int.from_bytes(header, "big")))


class _Worker:
    """One worker process and the pipes to it."""

    def __init__(self) -> None:
        # the worker imports what this process can, whatever its current folder when it started (a warm worker
        # serves later writers, maybe of another folder): this process's import path, each entry made absolute
        path = [os.path.abspath(p or os.curdir) for p in sys.path]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(path))}
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(os.getpid())], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        self._answers_due = 0  # messages sent whose answer was not read yet (`send`)

    def send(self, message: bytes) -> None:
        """Has the worker run a writer (`message`) without waiting for it: `run` reads its answer first."""
        _send(self._process.stdin, message)
        self._answers_due += 1

    def run(self, message: bytes) -> None:
        """Has the worker run a writer (`message`: the writer and its arguments, pickled) and raises its error (or
        the error of a writer `send` gave it before)."""
        self.send(message)
        while self._answers_due:
            self._answers_due -= 1
            try:
                error = _receive(self._process.stdout)
            except EOFError:
                error = RuntimeError(f"a background writer process ended (exit code {self._process.wait()})")
            if error is not None:
                raise error

    def stop(self) -> None:
        self._process.terminate()

    def close(self) -> None:
        try:
            self._process.stdin.close()  # at end of file the worker's loop ends
        except OSError:
            pass  # stopped: the pipe is broken
        self._process.wait()
        self._process.stdout.close()


class BackgroundWriters:
    """Worker processes whose exit waits for every submitted writer and raises the first error one of
    them raised; when the caller fails, writers not started never start and the workers are stopped
    (no writer is left writing into a folder the caller is about to remove); when it does not, they are
    kept warm for the process's next block (`_keep_warm`)."""

    def __init__(self, workers: int = WORKERS) -> None:
        self._threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="writer")  # one per worker
        self._futures: list[Future] = []
        self._workers: dict[int, _Worker] = {}  # by the thread that feeds it
        self._lock = threading.Lock()

    def submit(self, write: Callable[..., Any], *args: Any) -> None:
        """Runs `write(*args)` in a worker: `write` a module-level function, `args` picklable. They are pickled
        here, in the caller's thread: a frame pickled by a feeding thread while the caller went on with polars
        deadlocked once (polars 2.1: both threads waiting on each other's lazily made interned string and
        lock, in `DataFrame.serialize` and `DataFrame.dtypes`), a run hung in publish."""
        self._futures.append(self._threads.submit(self._run, _pickled((write, args))))

    def _run(self, message: bytes) -> None:
        with self._lock:
            worker = self._workers.get(threading.get_ident())
            if worker is None:
                worker = self._workers[threading.get_ident()] = _take_warm() or _Worker()
        worker.run(message)

    def wait(self) -> None:
        """Waits for every writer submitted so far; raises the first error."""
        futures, self._futures = self._futures, []
        errors = [f.exception() for f in futures]
        if first := next((e for e in errors if e is not None), None):
            raise first

    def __enter__(self) -> BackgroundWriters:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        failed = kind is not None
        try:
            if not failed:
                self.wait()
        except BaseException:
            failed = True
            raise
        finally:
            for f in self._futures:
                f.cancel()  # not started yet: never starts
            if failed:
                with self._lock:
                    for worker in self._workers.values():
                        worker.stop()  # a writer under way stops; the thread waiting for it goes on
            self._threads.shutdown(wait=True)
            for worker in self._workers.values():
                if failed or not _keep_warm(worker):
                    worker.close()


def _keep_warm(worker: _Worker) -> bool:
    """Whether `worker`, done with its writers, waits warm for this process's next ones (`warm_up` fills the pool
    to WORKERS): a process that runs several plans (an API caller, the test suite's workers: dozens of runs each)
    started two fresh interpreters a run, 0.75 CPU s each, for what the last run's had already loaded."""
    with _WARM_LOCK:
        if len(_WARM) >= WORKERS:
            return False
        _WARM.append(_loading_writers(worker))
        return True


# the modules the writers are in (and what they import: polars, xlsxwriter): what a worker loads before its first one
WRITERS = ("jointdraw.transforms.storage.xlsxout", "jointdraw.transforms.storage.runfolder")
_WARM: list[_Worker] = []  # started ahead (`warm_up`), for the next BackgroundWriters to take
_WARM_LOCK = threading.Lock()


def warm_up() -> None:
    """Starts the worker processes now, each loading the writers' modules (0.6 s of one core each), for the next
    `BackgroundWriters` of this process to take: called before a stage that leaves a core idle (assign matches
    on one core) when publish, which writes in the background, follows it. Unused, they end with this process."""
    with _WARM_LOCK:
        while len(_WARM) < WORKERS:
            _WARM.append(_loading_writers(_Worker()))


def _loading_writers(worker: _Worker) -> _Worker:
    """`worker`, told to load the writers' modules before anything else it is sent (what a warm worker has)."""
    for module in WRITERS:
        worker.send(_pickled((importlib.import_module, (module,))))
    return worker


def _take_warm() -> _Worker | None:
    with _WARM_LOCK:
        return _WARM.pop() if _WARM else None  # the last one warmed (or back from writing ahead) first


_AHEAD: dict[str, Future[None]] = {}  # files being written ahead (`write_ahead`), by absolute path


_LANES: dict[str, queue.SimpleQueue[Callable[[], None]]] = {}  # what `write_ahead` was asked, per lane, in order


def write_ahead(path: Path, write: Callable[..., Any], *args: Any, lane: str = "files") -> None:
    """`write(*args)`, which writes `path` atomically, run in a worker process (a warm one if there is one) while
    the caller goes on: a stage that leaves a core idle starts the files a later stage of the same process needs
    (publish's audit directory, while assign matches on one core), and the later stage takes them
    (`written_ahead`) or writes them itself. The files of one `lane` are written one after another, in the order
    asked, by one worker at a time; lanes go side by side. Publish's small files go in one lane, so assign keeps
    a core of its own (with three files at once, a quarterly run's assign took 4.6–4.8 s instead of 3.8–4.0 s),
    and its biggest in another (5 s of CPU at 8M when it is written, not copied: after the small ones, publish
    waited for it). The worker is warm again for the next `BackgroundWriters` once done."""
    message, done = _pickled((write, args)), Future()
    _AHEAD[os.path.abspath(path)] = done

    def run() -> None:
        worker = None
        try:
            worker = _take_warm() or _Worker()
            worker.run(message)
        except BaseException as e:  # the later stage writes the file itself
            if worker is not None:
                worker.stop()
            done.set_exception(e)
            return
        if not _keep_warm(worker):
            worker.close()
        done.set_result(None)

    with _WARM_LOCK:
        if lane not in _LANES:
            _LANES[lane] = queue.SimpleQueue()
            threading.Thread(target=_in_order, args=(_LANES[lane],), name=f"write-ahead-{lane}", daemon=True).start()
        _LANES[lane].put(run)


def _in_order(jobs: queue.SimpleQueue[Callable[[], None]]) -> None:
    while True:
        jobs.get()()  # never raises: a failure is the file's (`done`)


def asked_ahead(path: Path) -> bool:
    """Whether this process is writing `path` ahead, or wrote it (`write_ahead`)."""
    return os.path.abspath(path) in _AHEAD


def written_ahead(path: Path) -> bool:
    """Whether `path` was written ahead (`write_ahead`), waiting for its writer: False when it was not asked for
    or its writer failed (the caller writes it)."""
    done = _AHEAD.pop(os.path.abspath(path), None)
    return done is not None and done.exception() is None and Path(path).is_file()


def _stop_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)  # the parent died (killed): its staging folder is gone, write no more


def _serve(parent: int) -> None:
    """A worker: runs the writers it is sent, one after another, answering each with its error or None."""
    threading.Thread(target=_stop_with_parent, args=(parent,), daemon=True).start()
    stdin, stdout = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # what a writer prints goes to stderr, never into the answers
    sys.stdout = sys.stderr
    while True:
        try:
            write, args = _receive(stdin)
        except EOFError:
            return
        try:
            write(*args)
            error = None
        except Exception as e:
            error = e
        try:
            answer = _pickled(error)
        except Exception:  # an error that does not pickle: its text
            answer = _pickled(RuntimeError(f"{type(error).__name__}: {error}"))
        _send(stdout, answer)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))  # the parent as it started us: it may have died by now
