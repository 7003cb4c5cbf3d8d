"""What must hold before a run continues from a later stage (issue 7): every earlier stage
finished, its files are the ones it recorded, and the plan and the inputs are the ones the
run started with. Otherwise the answer is a new run, and the message says so.

    rerun_problems(run_dir, start_at, plan_file, inbox) -> [] when the run may go on
    first_unfinished_stage(run_dir) -> the stage `jointdraw resume` starts at (None: all done)
"""

from __future__ import annotations

from pathlib import Path

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
