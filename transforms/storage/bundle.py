"""Moving a finished bundle into place in one step (SPEC §4.7): a reader sees the previous
bundle or the new one, never a mix, and a failed publish leaves the previous one untouched.

The bundle is assembled in a staging folder outside published/ (`OUT/.staging/`, same file
system). With no previous bundle it is renamed into place; with
one, the two folders are exchanged in one system call (Linux renameat2 RENAME_EXCHANGE)
and the old one, now in the staging folder, is removed. Where that call does not exist the
old folder is renamed aside first and restored if the second rename fails.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from jointdraw.transforms.storage.layout import OutputRoot

AT_FDCWD = -100
RENAME_EXCHANGE = 2
T = TypeVar("T")


def staging_folder(target: Path, out_root: Path) -> Path:
    """An empty folder in OUT/.staging/ (same file system as `target`, never inside published/,
    so a reader of published/ never sees a half bundle, even after a crash). Leftovers of an
    earlier attempt at the same target (a killed run) are removed first: one run of a plan at a
    time holds its lock, so nobody else is writing them."""
    prefix = "-".join(Path(target).resolve().relative_to(Path(out_root).resolve()).parts) + ".staging-"
    root = OutputRoot(Path(out_root)).staging
    root.mkdir(parents=True, exist_ok=True)
    for leftover in root.glob(f"{prefix}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private; the bundle is for readers
    return staging


def _exchange(a: Path, b: Path) -> bool:
    """Swaps two paths atomically; False when the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, f"cannot exchange {a} and {b}: {os.strerror(code)}")


def move_into_place(staging: Path, target: Path) -> None:
    """`staging` becomes `target`; a previous `target` is removed once replaced."""
    if not target.exists():
        os.rename(staging, target)
        return
    if _exchange(staging, target):
        shutil.rmtree(staging)  # the previous bundle, swapped out
        return
    aside = Path(tempfile.mkdtemp(prefix=f"{target.name}.previous-", dir=staging.parent))
    os.rmdir(aside)
    os.rename(target, aside)
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside)


PRE = "pre"  # published/<plan_id>/public/pre/: the publication before the draw (事前公示)
RESULTS = "results"  # published/<plan_id>/{public,regulator}/results/: the results, published later

# Who sees what (issue 18): the bundle is three folders, each handed over whole to its audience.
PUBLIC, AUDIT, REGULATOR = "public", "audit", "regulator"
PARTS = {
    PUBLIC: "anyone (公开): notices, pre-draw publication, seed, commitment, per-stratum N, k and cut-off, the report, "
    "the manifest (its SHA-256 is the seal); nothing personal, no entity's class",
    AUDIT: "a notary or auditor (核验): what recomputes every draw — directory with classes, exclusions, plan, draws, "
    "the log of draw attempts; no personal fields",
    REGULATOR: "the departments (监管部门): teams and dates, unassigned tasks, quarantined rows "
    "with their original values, Data Docs, the regulator's results",
}
_PART_OF = {
    **dict.fromkeys(
        (
            "manifest.json",
            "notice.csv",
            "notice.xlsx",
            "notice.html",
            "strata.parquet",
            "strata.csv",
            "strata.xlsx",
            "summary.json",
            "report.html",
            "seed.json",
            "commitment.json",
            PRE,
        ),
        PUBLIC,
    ),
    **dict.fromkeys(
        (
            "directory.parquet",
            "exclusions.parquet",
            "plan.yaml",
            "draws.parquet",
            "draws.csv",
            "draws.xlsx",
            "attempts.json",
        ),
        AUDIT,
    ),
    **dict.fromkeys(
        (
            "joint_tasks.parquet",
            "joint_tasks.csv",
            "joint_tasks.xlsx",
            "unassigned.parquet",
            "unassigned.csv",
            "unassigned.xlsx",
            "team.parquet",
            "team.csv",
            "team.xlsx",
            "redraws.parquet",
            "redraws.csv",
            "redraws.xlsx",
            "inspectors.parquet",
            "avoid.parquet",
            "items.parquet",
            "quarantine",
            "validation",
        ),
        REGULATOR,
    ),
}


def bundle_file(bundle: Path, name: str) -> Path:
    """Where a published file lives: published/<plan_id>/<part>/<name> (the one home of the layout)."""
    return Path(bundle) / _PART_OF[name] / name


def results_folder(bundle: Path, part: str) -> Path:
    """published/<plan_id>/public/results/ (the results notice, progress, summary, the results manifest)
    or regulator/results/ (every result, outstanding items, quarantine, Data Docs, the results report)."""
    return Path(bundle) / part / RESULTS


def bundle_root(folder: Path) -> Path:
    """The bundle a path names: the bundle itself, or one of its parts (jointdraw verify published/P/public)."""
    folder = Path(folder)
    return folder.parent if folder.name in PARTS and not (folder / PUBLIC).is_dir() else folder


def prepublication_files(commit_dir: Path) -> list[tuple[Path, str]]:
    """(source, name in pre/) of what is made public before the draw: the item list and the plan notice
    (CSV and XLSX), and the commitment without its time (the manifest's timeline keeps that)."""
    return [(p, p.name) for p in sorted((commit_dir / PRE).iterdir()) if p.suffix in (".csv", ".xlsx")]


def write_prepublication(commit_dir: Path, folder: Path, plan_id: str) -> None:
    """Fills `folder` (a bundle's pre/) from the commit stage's files, with its own manifest.json (a
    nested bundle: it is published before the rest and answers for itself, like results/)."""
    import json

    from jointdraw.transforms.documents.manifest import MANIFEST_VERSION, file_list
    from jointdraw.transforms.storage.runfolder import write_json

    folder.mkdir(parents=True, exist_ok=True)
    for source, name in prepublication_files(commit_dir):
        shutil.copyfile(source, folder / name)
    committed = {
        k: v
        for k, v in json.loads((commit_dir / "commitment.json").read_text(encoding="utf-8")).items()
        if k != "committed_at"
    }
    write_json(committed, folder / "commitment.json")
    write_json(
        {
            "manifest_version": MANIFEST_VERSION,
            "plan_id": plan_id,
            "published": "before the draw (事前公示)",
            "commitment": committed,
            "files": file_list(folder)[0],
        },
        folder / "manifest.json",
    )  # paths relative to pre/


def publish_prepublication(out_root: Path, plan_id: str, commit_dir: Path) -> Path:
    """published/<plan_id>/public/pre/, swapped in atomically at commit, before the seed is known; the
    full bundle, published after the draw, carries the same pre/."""
    from jointdraw.transforms.documents.manifest import MANIFEST_VERSION
    from jointdraw.transforms.storage.runfolder import write_json

    bundle = OutputRoot(Path(out_root)).published(plan_id)
    pre = bundle_file(bundle, PRE)
    if bundle.exists():  # an earlier run's bundle: only its pre/ is replaced (the rest waits for this run's publish)
        staging = staging_folder(pre, out_root)
        write_prepublication(commit_dir, staging, plan_id)
        move_into_place(staging, pre)
    else:  # the plan's folder starts as the publication before the draw, with a manifest that says so
        staging = staging_folder(bundle, out_root)
        write_prepublication(commit_dir, bundle_file(staging, PRE), plan_id)
        write_json(
            {
                "manifest_version": MANIFEST_VERSION,
                "plan_id": plan_id,
                "published": "before the draw (事前公示): everything is in public/pre/",
                "files": [],
                "documents": [],
            },
            bundle_file(staging, "manifest.json"),
        )
        move_into_place(staging, bundle)
    return pre


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) if Path(folder).is_dir() else 0


def io_errno(e: BaseException) -> int | None:
    """The system error number behind an exception: an OSError's, or the one a library's message
    quotes (polars: "(os error 28)"; shutil.Error: "[Errno 28] …")."""
    if isinstance(e, OSError) and e.errno:
        return e.errno
    found = re.search(r"os error (\d+)|\[Errno (\d+)\]", str(e))
    return int(found.group(1) or found.group(2)) if found else None


def _first_error(e: BaseException) -> tuple[int | None, str, str]:
    """(errno, path, reason) of an I/O error, or of the first error a shutil.Error (copytree) collected."""
    if isinstance(e, shutil.Error) and e.args and isinstance(e.args[0], list) and e.args[0]:
        _, dst, why = e.args[0][0]
        return io_errno(e), str(dst), os.strerror(io_errno(e)) if io_errno(e) else str(why)
    if isinstance(e, OSError):
        return io_errno(e), str(e.filename or ""), e.strerror or str(e)
    code = io_errno(e)
    return code, "", os.strerror(code) if code else str(e)


def publish_failure(e: BaseException, target: Path, needs: int) -> str:
    """One line for a publish that could not be written: which path, why, and — for a full disk — how
    much a publish needs and how much is free; the previous bundle is kept (it was never touched)."""
    code, path, why = _first_error(e)
    kept = f"the previous bundle in {target} is kept" if Path(target).exists() else f"nothing was published to {target}"
    if code == errno.ENOSPC or "No space left" in why:
        where = Path(target).parent if Path(target).parent.exists() else Path(Path(target).anchor)
        free = shutil.disk_usage(where).free
        return (
            f"the disk holding {where} is full: a publish needs about {needs / 2**20:,.0f} MiB, "
            f"{free / 2**20:,.0f} MiB are free; {kept}. Free some space, then resume the run"
        )
    if code == errno.ENOENT:
        return f"{path or 'a file'} is missing: {kept}. Rerun the stage that writes it, then publish"
    return f"{path or target}: {why}; {kept}. Fix that, then resume the run"


class PublishRefused(Exception):
    """A publication that must not happen (the public part would hold what is not public) or cannot
    (the disk is full, a file is missing): one line saying which and what to do; nothing was published."""


def publish_atomically(
    target: Path, out_root: Path, fill: Callable[[Path], T], needs: Callable[[], int], what: str = "publish"
) -> T:
    """Publishes `target` (a plan's bundle) whole or not at all: `fill` writes every file into a staging
    folder (and returns what the caller needs: the seal, the manifest); the folder then replaces
    `target` in one step; returns what `fill` returned. A full disk or a missing
    file is a `PublishRefused` that names what a publish `needs` (bytes) and what is free; the staging
    folder never stays behind."""
    import polars as pl

    staging = staging_folder(target, out_root)
    try:
        filled = fill(staging)
        move_into_place(staging, target)
        return filled
    except (OSError, pl.exceptions.PolarsError) as e:
        if not isinstance(e, OSError) and io_errno(e) is None:
            raise  # not the disk: a defect to see whole
        raise PublishRefused(f"{what}: {publish_failure(e, target, needs())}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when moved; a half bundle when something failed


def refuse_leaks(leaks: list[str], what: str = "publish") -> None:
    """Refuses a publication whose public part would hold what is not public (transforms/privacy.py)."""
    if leaks:
        raise PublishRefused(f"{what}: refused, the public part would hold what is not public: {'; '.join(leaks[:5])}")
