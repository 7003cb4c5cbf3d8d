"""One writer per plan (SPEC §4, issue 7): a run holds OUT/locks/<plan_id>.lock while it works.

The lock file says which run holds it, its process id and host, the process's start time
(so a reused pid is not mistaken for the holder) and since when. A second run of the plan
is refused with that; a lock whose process is gone (a killed run) is reported as stale and
`jointdraw unlock PLAN_ID --out OUT` removes it — only when it is stale, unless forced.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class PlanLocked(Exception):
    """Another run of the plan holds the lock (or left it behind); the message names it."""


def lock_path(out_root: Path, plan_id: str) -> Path:
    return Path(out_root) / "locks" / f"{plan_id}.lock"


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(holder: dict[str, Any]) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # another machine's run: we cannot tell, so it counts as running
    pid = int(holder.get("pid", 0))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started = holder.get("process_start")
    return started is None or _process_start(pid) in (None, started)


def read_lock(out_root: Path, plan_id: str) -> dict[str, Any] | None:
    path = lock_path(out_root, plan_id)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"run_id": "?", "pid": 0, "host": "?", "note": f"unreadable lock file {path}"}


def lock_is_stale(holder: dict[str, Any]) -> bool:
    return not _alive(holder)


def _describe(holder: dict[str, Any]) -> str:
    return f"run {holder.get('run_id')} (pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')})"


@contextmanager
def plan_lock(out_root: Path, plan_id: str, run_id: str) -> Iterator[Path]:
    """Holds the plan's lock for the block; refuses when another run holds it or left it."""
    path = lock_path(out_root, plan_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(), "process_start": _process_start(os.getpid()),
          "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        holder = read_lock(out_root, plan_id) or {}
        if lock_is_stale(holder):
            raise PlanLocked(f"plan {plan_id}: a lock left by {_describe(holder)}, which is no longer running, is in {path}; "
                             f"check that run's folder, then clear it with `jointdraw unlock {plan_id} --out {out_root}`") from None
        raise PlanLocked(f"plan {plan_id} is being run by {_describe(holder)} (lock {path}); wait for it to finish, "
                         f"or stop it, before starting run {run_id}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(me, f)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def clear_lock(out_root: Path, plan_id: str, force: bool = False) -> str:
    """Removes a stale lock (or any lock, with force); returns what was done, for people."""
    holder = read_lock(out_root, plan_id)
    if holder is None:
        return f"plan {plan_id} is not locked"
    if not force and not lock_is_stale(holder):
        raise PlanLocked(f"plan {plan_id} is locked by {_describe(holder)}, which is still running; not cleared "
                         f"(stop it first, or use --force if you are sure)")
    lock_path(out_root, plan_id).unlink(missing_ok=True)
    return f"cleared the lock of plan {plan_id} left by {_describe(holder)}"
