"""The plan flow: one run of a plan (抽查计划) through the stages, meeting on disk.

    plan_run(plan, inbox, out, seed=None, start_at="ingest", stop_after=None, run_id=None)

Stages live under OUT/runs/<run_id>/<NN_stage>/ (transforms/runfolder.py). Later issues
add validate, merge, draw, fuse, assign and publish to the same list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.states import Failed

from flows.ingest import StageFailed, run_ingest
from transforms.ingest_summary import ingest_summary
from transforms.plan import PlanError, read_plan
from transforms.runfolder import STAGES, new_run_id, write_json

Stage = Literal["ingest"]


def _flow_run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters
    return f"{Path(params['plan']).stem} from {params.get('start_at') or 'ingest'}"


@flow(name="plan-run", flow_run_name=_flow_run_name, log_prints=False, validate_parameters=True)
def plan_run(
    plan: str,
    inbox: str,
    out: str,
    seed: str | None = None,
    start_at: Stage = "ingest",
    stop_after: Stage | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Runs the plan's stages from `start_at` to `stop_after` (default: the last); returns the
    run's summary: run id, run folder, and per stage what it read and wrote."""
    try:
        return _run_stages(plan, inbox, out, seed, start_at, stop_after, run_id)
    except (StageFailed, PlanError) as e:
        # bad input: one clear line in the log and a Failed run that carries the error, no traceback
        get_run_logger().error("%s", e)
        return Failed(message=str(e), data=e)


def _run_stages(plan: str, inbox: str, out: str, seed: str | None, start_at: str, stop_after: str | None,
                run_id: str | None) -> dict[str, Any]:
    logger = get_run_logger()
    the_plan = read_plan(Path(plan))
    run_id = run_id or new_run_id(the_plan.plan_id)
    run_dir = Path(out) / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json({"plan": str(plan), "inbox": str(inbox), "out": str(out), "seed": seed, "run_id": run_id}, run_dir / "run.json")
    logger.info("run %s of plan %s (%d tasks) → %s", run_id, the_plan.plan_id, len(the_plan.tasks), run_dir)
    first = STAGES.index(start_at)
    last = STAGES.index(stop_after) if stop_after else len(STAGES) - 1
    summary: dict[str, Any] = {"run_id": run_id, "run_dir": str(run_dir), "plan_id": the_plan.plan_id, "stages": {}}
    for stage in STAGES[first:last + 1]:
        if stage == "ingest":
            record = run_ingest(Path(inbox), run_dir)
            table = ingest_summary(record)
            create_table_artifact(key="ingest-rows", table=table.to_dicts(), description=f"Rows ingested per department and registry, run {run_id}")
            summary["stages"]["ingest"] = {"rows_read": record["rows_read"], "rows_written": record["rows_written"],
                                           "seconds": record["seconds"], "table": table.to_dicts()}
    return summary


__all__ = ["plan_run", "PlanError", "StageFailed"]
