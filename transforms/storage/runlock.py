"""One writer per plan (SPEC §4, issues 7, 19): every run that writes a plan's bundle or warehouse
rows — the plan flow and the results flow — holds OUT/locks/<plan_id>.lock while it works.

The lock is the kernel's (`flock` on the file), so it is released when its holder dies, however
it dies: no stale lock to clear by hand after a killed run. The file also says which run holds
it, its process id and host, the process's start time and since when, so a second run is
refused with that; it is emptied on release. A file that still names a holder when the kernel
lock is free was left by a run that died: on this host that is simply taken over; a holder on
another machine (a lock file on a shared disk, where the kernel lock may not reach) counts as
running until `jointdraw unlock PLAN_ID --out OUT` clears it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jointdraw.transforms.storage.layout import OutputRoot


class PlanLocked(Exception):
    """Another run of the plan holds the lock (or left it behind); the message names it."""


def lock_path(out_root: Path, plan_id: str) -> Path:
    return OutputRoot(Path(out_root)).lock(plan_id)


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _parse(text: str, path: Path) -> dict[str, Any] | None:
    if not text.strip():
        return None  # released
    try:
        return json.loads(text)
    except ValueError:
        return {"run_id": "?", "pid": 0, "host": "?", "note": f"unreadable lock file {path}"}


def read_lock(out_root: Path, plan_id: str) -> dict[str, Any] | None:
    """Who the lock file names (None: nobody; the lock may still be taken: see `held`)."""
    path = lock_path(out_root, plan_id)
    try:
        return _parse(path.read_text(encoding="utf-8"), path)
    except FileNotFoundError:
        return None


def held(out_root: Path, plan_id: str) -> bool:
    """Whether a live process on this host holds the plan's kernel lock now."""
    path = lock_path(out_root, plan_id)
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _describe(holder: dict[str, Any] | None) -> str:
    """Who holds a lock, for people; a holder that has taken the kernel lock but not yet written its name
    (the instant between the two) as starting."""
    if not holder:
        return "a run that has just started (it has not written its name yet)"
    return f"run {holder.get('run_id')} (pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')})"


def _elsewhere(holder: dict[str, Any] | None) -> bool:
    return bool(holder) and holder.get("host") != socket.gethostname()


@contextmanager
def plan_lock(out_root: Path, plan_id: str, run_id: str) -> Iterator[Path]:
    """Holds the plan's lock for the block; refuses when another run holds it."""
    path = lock_path(out_root, plan_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        holder = read_lock(out_root, plan_id)
        raise PlanLocked(
            f"plan {plan_id} is being run by {_describe(holder)} (lock {path}); wait for it to finish, "
            f"or stop it, before starting run {run_id}"
        ) from None
    try:
        left = _parse(os.pread(fd, 1 << 16, 0).decode("utf-8", "replace"), path)
        if _elsewhere(left):
            raise PlanLocked(
                f"plan {plan_id} is locked by {_describe(left)} on another machine (lock {path}); if that run "
                f"is gone, clear it with `jointdraw unlock {plan_id} --out {out_root}`"
            )
        me = {
            "run_id": run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "process_start": _process_start(os.getpid()),
            "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # released: the file names nobody
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def clear_lock(out_root: Path, plan_id: str, force: bool = False) -> str:
    """Clears the name of a holder that is gone; a holder on another machine (which this host cannot
    see) only with force; a holder running here never. Returns what was done, for people."""
    holder = read_lock(out_root, plan_id)
    if held(out_root, plan_id):
        raise PlanLocked(
            f"plan {plan_id} is locked by {_describe(holder)}, which is still running; not cleared (stop it first)"
        )
    if holder is None:
        return f"plan {plan_id} is not locked"
    if _elsewhere(holder) and not force:
        raise PlanLocked(
            f"plan {plan_id} is locked by {_describe(holder)} on another machine, which may still be running; "
            f"not cleared (check that machine, then use --force)"
        )
    lock_path(out_root, plan_id).write_text("", encoding="utf-8")
    return f"cleared the lock of plan {plan_id} left by {_describe(holder)}"
