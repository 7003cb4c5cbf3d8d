"""What must hold before a run continues from a later stage (issue 7): every earlier stage
finished, its files are the ones it recorded, and the plan and the inputs are the ones the
run started with. Otherwise the answer is a new run, and the message says so.

    rerun_problems(run_dir, start_at, plan_file, inbox) -> [] when the run may go on
    first_unfinished_stage(run_dir) -> the stage `jointdraw resume` starts at (None: all done)
"""

from __future__ import annotations

from pathlib import Path

from jointdraw.transforms.plan import Plan
from jointdraw.transforms.plan_check import plan_inbox_problems
from jointdraw.transforms.storage.layout import read_run_record
from jointdraw.transforms.storage.registry_files import scan_inbox
from jointdraw.transforms.storage.runfolder import STAGES, changed_outputs, read_stage_record, sha256_file, stage_dir


def first_unfinished_stage(run_dir: Path) -> str | None:
    return next((s for s in STAGES if read_stage_record(run_dir, s) is None), None)


def _input_problems(inbox: Path, ingest: dict) -> list[str]:
    recorded = {f["source"]["path"]: f["source"]["sha256"] for f in ingest.get("files", [])}
    problems = []
    for rel, sha in sorted(recorded.items()):
        p = Path(inbox) / rel
        if not p.is_file():
            problems.append(f"input {rel} is no longer in {inbox}")
        elif sha256_file(p) != sha:
            problems.append(f"input {rel} changed since ingest read it")
    now = {f.relative for f in scan_inbox(Path(inbox)).files}
    problems += [f"input {rel} is new in {inbox} since ingest" for rel in sorted(set(now) - set(recorded))]
    return problems


def rerun_problems(run_dir: Path, start_at: str, plan_file: Path, inbox: Path) -> list[str]:
    problems: list[str] = []
    for stage in STAGES[: STAGES.index(start_at)]:
        if read_stage_record(run_dir, stage) is None:
            return [
                f"{stage} has not finished in {run_dir} (no {stage_dir(run_dir, stage).name}/stage.json): "
                f"start at {stage} (or `jointdraw resume`)"
            ]
        changed = changed_outputs(stage_dir(run_dir, stage))
        if changed:
            problems.append(
                f"{stage}: {len(changed)} of its files changed since it wrote them ({', '.join(changed[:3])}"
                f"{' …' if len(changed) > 3 else ''})"
            )
    run = read_run_record(run_dir)
    if run.plan_sha256 and sha256_file(plan_file) != run.plan_sha256:
        problems.append(f"the plan {plan_file} changed since run {Path(run_dir).name} started")
    if start_at != "ingest":
        problems += _input_problems(Path(inbox), read_stage_record(run_dir, "ingest") or {})
    return problems


def retry_start(run_dir: Path, first: str, stop_after: str | None) -> str | None:
    """Where a retried flow run (the UI's Retry, `prefect flow-run retry`) goes on: the first stage
    without a stage.json, as `jointdraw resume` does, never before `first`; None when every stage
    asked for has finished."""
    unfinished = first_unfinished_stage(run_dir)
    if unfinished is None or (stop_after and STAGES.index(unfinished) > STAGES.index(stop_after)):
        return None
    return STAGES[max(STAGES.index(first), STAGES.index(unfinished))]


def start_refusal(run_dir: Path, run_id: str, plan: Plan, plan_file: Path, inbox: Path, start_at: str) -> str | None:
    """Why a run may not start at `start_at` (None: it may): from the beginning, the plan must fit the
    inbox (one line per problem); from a later stage, the run must be able to go on (`rerun_problems`)."""
    if start_at == STAGES[0]:
        gaps = plan_inbox_problems(plan, Path(inbox))
        return (
            f"plan {plan.plan_id} does not fit the inbox {inbox}:\n"
            + "\n".join(f"  - {g}" for g in gaps)
            + "\n(nothing was run; fix the plan or the inbox and run again)"
            if gaps
            else None
        )
    problems = rerun_problems(run_dir, start_at, plan_file, inbox)
    return (
        f"run {run_id} cannot go on from {start_at}: {'; '.join(problems)} — start a new run (without --run-id), "
        "or rerun from an earlier stage"
        if problems
        else None
    )
