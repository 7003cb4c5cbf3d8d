"""Files hashed ahead, or hashed already (先行计算摘要): a command that is about to read files hashes them on a
background thread while it waits for something else, every file it hashes is remembered, and
`runfolder.sha256_file` takes a file's SHA-256 from here when the file is still what it was when it was hashed.

    hash_ahead(paths)                      `jointdraw run`: its inbox's files, while the temporary server starts
    hashed(path) -> SHA-256                hashed now, and remembered for this process (`own`: a file the
                                           pipeline wrote in its output root, remembered even when recent)
    remembered(path) -> SHA-256 or None    hashed ahead or hashed already, and unchanged since (None: hash it)
    with same_bytes(source, target): …     around a link or a rename of our own: what is known holds
    load_known(store), keep_known(store)   what the commands of one output root hashed, known to the next ones

Why: ingest needs every department file's SHA-256 (for the manifest, and to find an earlier run's result
of the same bytes: transforms/storage/reuse.py), 2.5 GB at 8M objects, about 3 s of one core; the command
waits 4-6 s for its temporary server with one core mostly idle. And a quarterly run that reuses the annual
run's results verifies each file as it takes it (reuse.py hashes it), then records it again: the merge its
inputs (the accepted objects files), the commit the directory it links: 0.9 s of hashing at 8M, saved by
remembering.

A file "still what it was" has the same inode, size, modification time and change time (ns) as when it was
hashed; any write changes the change time, which no program can set back (one that writes and then sets
the modification time back, as `cp -p`, `rsync -t` or tar do, still changes it). The kernel stamps those
times from a clock that ticks every few milliseconds, so a file written shortly before it was hashed could
be written again within the same tick unseen: a file whose bytes were written less than RACY_SECONDS before
it was hashed (its modification time) is hashed again when it is asked for, as git does with its "racily
clean" files. A file's change time alone may be recent (a link, a rename): a write after the hashing would
still give it a new modification time.

What is known of a file is kept by its inode, so every name of it (an earlier run's file and its links in
this run) finds it. A link or a rename of our own (`same_bytes`) changes the change time of the inode, not
its bytes: the SHA-256 known for `source` just before it (the file unchanged since it was hashed, change time
included) holds after it when `target` is the same inode with the same size and modification time, and is
remembered under its new change time.

Known across commands (`load_known`, `keep_known`: OUT/known_digests.json). A run keeps what it knows in its
output root when it ends, and the next command there starts from it, under the same rule: a file is taken
from it only while its inode, size, modification time and change time are what they were when it was hashed.
A quarterly run then reads none of the unchanged department files nor the earlier run's results it takes
(2.6 GB at 8M objects, about 3.5 s of one core while the server starts and ingest verifies them); a file
that was written, copied over, touched or linked since is hashed again. `jointdraw verify` reads every byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from pathlib import Path

Identity = tuple[int, int, int, int]  # inode, size, modification time, change time (ns)
RACY_SECONDS = 2.0  # a file changed this shortly before it was hashed is not trusted to be unchanged since
HASH_CHUNK = 1 << 25  # 32 MiB (sha256_of)
_AHEAD: dict[str, Future[None]] = {}  # files given to the hash-ahead thread, by absolute path: done or not
# hashed already (`hashed`, here or ahead), or known through a link (`same_bytes`), by (device, inode): every name
_KNOWN: dict[tuple[int, int], tuple[Identity, str]] = {}
_NAMES: dict[tuple[int, int], str] = {}  # a name each known inode had (keep_known checks it is unchanged)


def file_identity(path: Path) -> Identity:
    return _inode(path)[1]


def _inode(path: Path) -> tuple[tuple[int, int], Identity]:
    """The file's (device, inode), under which what is known of it is kept whatever its path, and its identity."""
    st = os.stat(path)
    return (st.st_dev, st.st_ino), (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes, read into one buffer of up to HASH_CHUNK bytes. Reading and hashing a chunk
    release the GIL, but each takes it back after: in 4 MiB chunks a hashing thread waits for the GIL 500
    times a gigabyte while the main thread imports or works (a 2.2 GB file, 4 MiB chunks, next to a busy
    thread: 7.0 s instead of 1.5 alone; in 32 MiB chunks 2.2 s)."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        buffer = bytearray(min(max(os.fstat(f.fileno()).st_size, 1 << 16), HASH_CHUNK))  # no new bytes per chunk
        view = memoryview(buffer)
        while read := f.readinto(buffer):
            h.update(view[:read])
    return h.hexdigest()


def _settled(identity: Identity) -> bool:
    """Whether the file's bytes were written RACY_SECONDS or more ago (its modification time)."""
    return time.time_ns() - identity[2] > RACY_SECONDS * 1e9


def hash_ahead(paths: Iterable[Path]) -> None:
    """Hashes `paths` (`hashed`: remembered) one after the other on a daemon thread (it never holds the process
    open), but those known already and unchanged since, and those whose bytes have not settled yet."""
    todo = [(Path(p), Future()) for p in paths if remembered(Path(p)) is None]
    for path, future in todo:
        _AHEAD[os.path.abspath(path)] = future

    def work() -> None:
        for path, future in todo:
            try:
                if _settled(file_identity(path)):
                    hashed(path)
                future.set_result(None)
            except OSError as e:
                future.set_exception(e)

    threading.Thread(target=work, name="hash-ahead", daemon=True).start()


def _wait_ahead(path: Path) -> None:
    """Waits until the hash-ahead thread is done with `path`, if it was given it."""
    future = _AHEAD.get(os.path.abspath(path))
    if future is not None:
        with suppress(OSError):
            future.result()


def hashed(path: Path, own: bool = False) -> str:
    """The file's SHA-256, read now; remembered (`remembered`) when it did not change while it was read and its bytes
    had settled — or, with `own`, even when they are recent: a file of the pipeline's own storage (the output
    root), which it wrote once, atomically, and closed. The wait of RACY_SECONDS guards against a writer this
    process does not know of writing again within the clock's tick; none writes the pipeline's files (OUT is its
    own, like the warehouse). Without `own` a stage's outputs were never remembered (they are hashed as soon as
    they are written), and the quarterly run that followed the annual one read the files it took again (1 GB at
    8M objects: 0.6 s of its ingest)."""
    inode, before = _inode(path)
    digest = sha256_of(path)
    if (own or _settled(before)) and _inode(path) == (inode, before):
        _know(inode, before, digest, path)
    return digest


def _know(inode: tuple[int, int], identity: Identity, digest: str, path: Path) -> None:
    _KNOWN[inode] = (identity, digest)
    _NAMES[inode] = os.path.abspath(path)


def _valid(path: Path) -> tuple[Identity, str] | None:
    """(identity, SHA-256) of the file if it was hashed already (by this path or another of the same inode) or
    hashed ahead, and has not changed since."""
    try:
        inode, now = _inode(path)
    except OSError:
        return None
    known = _KNOWN.get(inode)
    if known is None or known[0] != now:  # not known, or known before it changed: maybe being hashed ahead
        _wait_ahead(path)
        known = _KNOWN.get(inode)
    return known if known is not None and known[0] == now else None


def remembered(path: Path) -> str | None:
    """The file's SHA-256 if it was hashed ahead (waiting for it when it is being hashed) or hashed already
    (`hashed`, `same_bytes`) and has not changed since; else None."""
    entry = _valid(path)
    return entry[1] if entry is not None else None


@contextmanager
def same_bytes(source: Path, target: Path) -> Iterator[None]:
    """Around a link or a rename of our own of `source` to `target`: the SHA-256 known for `source` just before
    (`remembered`) holds after for `target` (another name of the same inode) if `target` is that inode with the
    same size and modification time; only its change time is new (the link or rename made it so)."""
    before = _valid(source)
    yield
    if before is None:
        return
    (identity, digest), same = before, slice(0, 3)  # inode, size, modification time
    try:
        inode, now = _inode(target)
    except OSError:
        return
    if now[same] == identity[same]:
        _know(inode, now, digest, target)


def load_known(store: Path) -> None:
    """What the commands before this one kept in `store` (`keep_known`) is known here too (what this process
    knows already stays). A store that cannot be read is as none: its files are hashed again."""
    try:
        entries = json.loads(store.read_text(encoding="utf-8"))["files"]
        known = {(e["device"], e["inode"]): (_identity(e), e["sha256"], e["path"]) for e in entries}
    except (OSError, ValueError, KeyError, TypeError):
        return
    for inode, (identity, digest, path) in known.items():
        if inode not in _KNOWN:
            _know(inode, identity, digest, Path(path))


def keep_known(store: Path) -> bool:
    """Writes to `store` (atomically) what this process knows of the files that are still unchanged, with what
    `store` held of others (another command of the output root may have written it meanwhile); a file gone
    or changed since is dropped. False when `store` cannot be written (the next command hashes again)."""
    load_known(store)
    files = []
    for (device, inode), (identity, digest) in sorted(_KNOWN.items()):
        path = _NAMES.get((device, inode))
        if path is not None and _unchanged(path, (device, inode), identity):
            files.append(
                {
                    "path": path,  # a name it had (for people: the file is found by its inode)
                    "device": device,
                    "inode": inode,
                    "size": identity[1],
                    "mtime_ns": identity[2],
                    "ctime_ns": identity[3],
                    "sha256": digest,
                }
            )
    tmp = store.with_name(f".{store.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps({"files": files}, indent=1), encoding="utf-8")
        os.replace(tmp, store)
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
    return True


def _unchanged(path: str, inode: tuple[int, int], identity: Identity) -> bool:
    try:
        return _inode(Path(path)) == (inode, identity)
    except OSError:
        return False


def _identity(entry: dict) -> Identity:
    return (entry["inode"], entry["size"], entry["mtime_ns"], entry["ctime_ns"])
