"""The plan flow: one run of a plan (抽查计划) through the stages, meeting on disk.

    plan_run(plan, inbox, out, seed=None, start_at="ingest", stop_after=None, run_id=None)

Stages live under OUT/runs/<run_id>/<NN_stage>/ (transforms/runfolder.py). A run started
at a later stage reads the earlier stages' files from the same run folder.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.states import Failed

from flows.assign import run_assign
from flows.draw import run_commit, run_draw
from flows.errors import StageFailed
from flows.fuse import run_fuse
from flows.ingest import run_ingest
from flows.merge import run_merge
from flows.publish import run_publish
from flows.validate import run_validate
from transforms.fusion import FIGURE_LABELS
from transforms.certificate import draw_certificate
from transforms.ingest_summary import ingest_summary
from transforms.plan import Plan, PlanError, read_plan
from transforms.runfolder import STAGES, new_run_id, read_stage_record, write_json
from transforms.seed import SeedError

Stage = Literal["ingest", "validate", "merge", "commit", "draw", "fuse", "assign", "publish"]


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
    seed_sources: list[str] | None = None,
) -> dict[str, Any]:
    """Runs the plan's stages from `start_at` to `stop_after` (default: the last); returns the
    run's summary: run id, run folder, and per stage what it did. `seed` or `seed_sources`
    (public numbers, RFC 3797) override the plan's; without any, a seed is generated."""
    try:
        return _run_stages(plan, inbox, out, seed, start_at, stop_after, run_id, seed_sources)
    except (StageFailed, PlanError, SeedError) as e:
        # bad input: one clear line in the log and a Failed run that carries the error, no traceback
        get_run_logger().error("%s", e)
        return Failed(message=str(e), data=e)


def _run_context(the_plan: Plan, plan: str, inbox: str, out: str, seed: str | None, run_id: str | None) -> tuple[Path, dict]:
    """The run folder and run.json (kept from the first attempt, so a rerun uses the same run date)."""
    run_id = run_id or new_run_id(the_plan.plan_id)
    run_dir = Path(out) / "runs" / run_id
    existing = run_dir / "run.json"
    if existing.exists():
        context = {**json.loads(existing.read_text(encoding="utf-8")), "run_id": run_id}
    else:
        context = {"run_id": run_id, "plan_id": the_plan.plan_id, "plan": str(plan), "inbox": str(inbox), "out": str(out),
                   "seed": seed, "run_date": dt.datetime.now(dt.UTC).date().isoformat()}
        write_json(context, existing)
    return run_dir, context


def _run_stages(plan: str, inbox: str, out: str, seed: str | None, start_at: str, stop_after: str | None,
                run_id: str | None, seed_sources: list[str] | None) -> dict[str, Any]:
    logger = get_run_logger()
    the_plan = read_plan(Path(plan))
    run_dir, context = _run_context(the_plan, plan, inbox, out, seed, run_id)
    logger.info("run %s of plan %s (%d tasks) → %s", context["run_id"], the_plan.plan_id, len(the_plan.tasks), run_dir)
    first = STAGES.index(start_at)
    last = STAGES.index(stop_after) if stop_after else len(STAGES) - 1
    if first > 0 and read_stage_record(run_dir, STAGES[first - 1]) is None:
        raise StageFailed(f"run {context['run_id']} has no completed {STAGES[first - 1]} stage in {run_dir}: "
                          f"start at {STAGES[first - 1]} (or earlier) instead")
    summary: dict[str, Any] = {"run_id": context["run_id"], "run_dir": str(run_dir), "plan_id": the_plan.plan_id, "stages": {}}
    for stage in STAGES[first:last + 1]:
        if stage == "ingest":
            record = run_ingest(Path(inbox), run_dir)
            table = ingest_summary(record)
            create_table_artifact(key="ingest-rows", table=table.to_dicts(), description=f"Rows ingested per department and registry, run {context['run_id']}")
            summary["stages"]["ingest"] = {"rows_read": record["rows_read"], "rows_written": record["rows_written"],
                                           "seconds": record["seconds"], "table": table.to_dicts()}
        elif stage == "validate":
            record = run_validate(run_dir, the_plan.quarantine_threshold, dt.date.fromisoformat(context["run_date"]))
            table = [{"department": f["department"], "registry": f["kind"], "read": f["rows_read"],
                      "accepted": f.get("rows_accepted"), "quarantined": f.get("rows_quarantined"),
                      "reasons": "; ".join(f.get("file_problems", [])) or " ".join(f"{r}:{n}" for r, n in f["quarantined_by_reason"].items())}
                     for f in record["files"]]
            create_table_artifact(key="validation-results", table=table, description=f"Data contract per department file, run {context['run_id']}")
            summary["stages"]["validate"] = {k: record[k] for k in ("rows_read", "rows_accepted", "rows_quarantined", "seconds", "data_docs")}
            summary["stages"]["validate"]["table"] = table
        elif stage == "merge":
            record = run_merge(run_dir)
            summary["stages"]["merge"] = {k: record[k] for k in ("records_in", "entities", "entities_listed_by_several_departments",
                                                                 "unlinked_entities", "conflicts_by_attribute", "seconds")}
        elif stage == "commit":
            record = run_commit(run_dir, Path(plan), the_plan)
            summary["stages"]["commit"] = {k: record[k] for k in ("commitment", "exclusions_by_reason", "seconds")}
        elif stage == "draw":
            record = run_draw(run_dir, the_plan, seed, seed_sources)
            summary["stages"]["draw"] = {k: record[k] for k in ("seed_origin", "commitment", "eligible_pairs", "strata", "drawn",
                                                                "mode", "fusion", "seconds")}
            rows = [{"mode": m, **f} for m, f in record["fusion"].items()]
            create_table_artifact(key="fusion-figures", table=rows, description=f"Fusion figures (SPEC §4.5), run {context['run_id']}")
        elif stage == "fuse":
            record = run_fuse(run_dir, the_plan)
            summary["stages"]["fuse"] = {k: record[k] for k in ("figures", "by_department", "seconds")}
            rows = [{"figure": FIGURE_LABELS[k], "value": f"{v:.2%}" if k == "reduction_rate" else f"{v:,}"}
                    for k, v in record["figures"].items()]
            create_table_artifact(key="fusion-summary", table=rows, description=f"Fusion (查重融合), run {context['run_id']}")
        elif stage == "assign":
            record = run_assign(run_dir, the_plan)
            summary["stages"]["assign"] = {k: record[k] for k in ("joint_tasks", "assigned", "unassigned", "unassigned_by_reason",
                                                                  "inspectors_available", "inspectors_sent", "team_size",
                                                                  "from_department_pool", "working_days", "calendar", "seconds")}
            summary["stages"]["assign"]["workload"] = {k: v for k, v in record["workload"].items() if k != "by_pool"}
            create_table_artifact(key="workload-by-pool", table=record["workload"]["by_pool"],
                                  description=f"Tasks per inspector in each (department, district) pool, run {context['run_id']}")
        elif stage == "publish":
            record = run_publish(run_dir, the_plan)
            summary["stages"]["publish"] = {k: record[k] for k in ("bundle", "files", "documents", "manifest_sha256", "seconds")}
            bundle = Path(record["bundle"]).resolve()
            create_link_artifact(key="published-bundle", link=bundle.as_uri(), link_text=f"published/{the_plan.plan_id}",
                                 description=f"The audit bundle of run {context['run_id']}; open report.html in it")
            create_markdown_artifact(key="draw-certificate", markdown=draw_certificate(record["manifest"]),
                                     description=f"Draw certificate (抽取证书), run {context['run_id']}")
    return summary
