"""The plan against the inbox, before anything runs (issue 18): no silent gaps.

Every department a task draws for must be a known department (data/reference/departments.csv),
have a folder in the inbox and an objects file in it (else its tasks would draw nothing); every
item a task names must be on its department's item list. Each problem is one line naming the
department (or the task), said once, so a data engineer sees at a glance what to fix.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from jointdraw.transforms.normalise import normalise_registry
from jointdraw.transforms.plan import Plan, unlisted_items
from jointdraw.transforms.reference import department_names
from jointdraw.transforms.storage.registry_files import RegistryFileError, read_registry, scan_inbox


def _listed(tasks: list[str]) -> str:
    return ", ".join(tasks[:6]) + (f" … ({len(tasks)} tasks)" if len(tasks) > 6 else "")


def plan_inbox_problems(plan: Plan, inbox: Path) -> list[str]:
    """One line per problem, by department, in department order (empty when the plan can run)."""
    known = department_names()
    try:
        found = scan_inbox(Path(inbox))
    except FileNotFoundError as e:  # no such folder, or a file: nothing to draw from
        return [f"{e}: --inbox names the folder that holds one folder per department (AMR/, EDU/, …)"]
    files = {(f.department, f.kind): f for f in found.files}
    folders = {p.name for p in Path(inbox).iterdir() if p.is_dir()}
    refused = {p.file.split("/")[0]: f"{p.file} {p.reason}" for p in found.problems}  # e.g. a link leaving the inbox
    tasks_of: dict[str, list[str]] = {}
    for t in plan.tasks:
        tasks_of.setdefault(t.department, []).append(t.task_id)
    problems = []
    for dept, tasks in sorted(tasks_of.items()):
        if dept not in known:
            problems.append(
                f"{dept}: tasks {_listed(tasks)} draw for department {dept}, which is not in "
                "data/reference/departments.csv (a typo in the plan?)"
            )
        elif dept not in folders:
            problems.append(
                f"{dept}: tasks {_listed(tasks)} draw from {dept}'s objects, but the inbox has no folder {dept}/"
            )
        elif (dept, "objects") not in files and dept in refused:
            problems.append(f"{dept}: tasks {_listed(tasks)} draw from {dept}'s objects, but {refused[dept]}")
        elif (dept, "objects") not in files:
            problems.append(
                f"{dept}: tasks {_listed(tasks)} draw from {dept}'s objects, but {dept}/ has no objects.* file "
                "(its tasks would draw nothing)"
            )
        if dept not in known or dept not in folders:
            continue
        items_file = files.get((dept, "items"))
        if items_file is None:
            named = sorted({i for t in plan.tasks if t.department == dept for i in t.items})
            problems.append(
                f"{dept}: tasks {_listed(tasks)} name items {', '.join(named[:6])}…, but {dept}/ has no items.* file"
            )
            continue
        try:
            listed = normalise_registry(read_registry(items_file).frame, "items", dept).select(
                "item_id", department=pl.lit(dept)
            )
        except RegistryFileError:
            continue  # unreadable: ingest says why, with the file named
        named = sorted({i for t in plan.tasks if t.department == dept for i in t.items})
        missing = sorted(
            {u.item_id for u in unlisted_items([t for t in plan.tasks if t.department == dept], listed)}
        )  # the rule's one home (transforms/plan.py)
        if missing:
            problems.append(
                f"{dept}: tasks name items {', '.join(missing[:8])}{' …' if len(missing) > 8 else ''} that "
                f"{items_file.relative} does not list ({len(missing)} of {len(named)})"
            )
    return problems
