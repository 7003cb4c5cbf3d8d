"""The plan flow: one run of a plan (抽查计划) through the stages, meeting on disk.

    plan_run(plan, inbox, out, seed=None, start_at="ingest", stop_after=None, run_id=None, seed_sources=None)

Stages live under OUT/runs/<run_id>/<NN_stage>/ (transforms/storage/runfolder.py); each is a Prefect
task run named "<stage> · <plan_id>". A run started at a later stage first checks that every
earlier stage finished and its recorded files are unchanged, and that the plan and the
inputs are the ones the run started with (transforms/rerun.py); it refuses otherwise. Only
one run of a plan works at a time (transforms/storage/runlock.py).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed, State

from jointdraw.flows.assign import run_assign
from jointdraw.flows.draw import run_commit, run_draw
from jointdraw.flows.errors import StageFailed
from jointdraw.flows.fanout import fan_out
from jointdraw.flows.fuse import run_fuse
from jointdraw.flows.ingest import run_ingest
from jointdraw.flows.merge import run_merge
from jointdraw.flows.publish import run_publish
from jointdraw.flows.validate import run_validate
from jointdraw.transforms.documents.certificate import draw_certificate
from jointdraw.transforms.documents.ingest_summary import ingest_summary
from jointdraw.transforms.documents.report import validation_table
from jointdraw.transforms.fusion_figures import figure_rows
from jointdraw.transforms.plan import Plan, PlanError, check_safe_id, read_plan
from jointdraw.transforms.plan_check import plan_inbox_problems
from jointdraw.transforms.rerun import first_unfinished_stage, rerun_problems
from jointdraw.transforms.seed import SeedError
from jointdraw.transforms.storage.layout import (
    OutputRoot,
    RunRecord,
    read_run_record,
    run_record_path,
    write_run_record,
)
from jointdraw.transforms.storage.runfolder import (
    STAGE_RECORD,
    STAGES,
    new_run_id,
    sha256_file,
    stage_dir,
)
from jointdraw.transforms.storage.runlock import PlanLocked, plan_lock
from jointdraw.transforms.storage.warehouse import WarehouseBusy

USER_ERRORS = (StageFailed, PlanError, SeedError, PlanLocked, WarehouseBusy)
Stage = Literal["ingest", "validate", "merge", "commit", "draw", "fuse", "assign", "publish"]


@dataclass(frozen=True)
class RunContext:
    plan: Plan
    plan_file: Path
    inbox: Path
    run_dir: Path
    run_id: str
    run_date: dt.date
    seed: str | None
    seed_sources: list[str] | None


def _plan_id_of(plan: str) -> str:
    """The plan's id as its YAML says (the file's stem when it cannot be read: the run says why later)."""
    try:
        return read_plan(Path(plan)).plan_id
    except (OSError, PlanError):
        return Path(plan).stem


def flow_run_run_id(plan_id: str, flow_run_id: str) -> str:
    """The run id of a flow run started without one: the plan and the flow run's id, so every attempt of
    the flow run (a retry from the UI or `prefect flow-run retry`) works in the same run folder."""
    return f"{plan_id}-{flow_run_id.replace('-', '')[:12]}"


def _flow_run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters
    run_id = params.get("run_id") or flow_run_run_id(_plan_id_of(params["plan"]), flow_run.id)
    return f"{run_id} from {params.get('start_at') or 'ingest'}"


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
    dask: str | None = None,
) -> dict[str, Any]:
    """Runs the plan's stages from `start_at` to `stop_after` (default: the last); returns the
    run's summary: run id, run folder, and per stage what it did. `seed` or `seed_sources`
    (public numbers, RFC 3797) override the plan's; without any, a seed is generated.
    `dask` runs the per-department ingest and validation tasks on a Dask cluster: "local"
    (two worker processes) or a scheduler address such as tcp://10.0.0.5:8786; the outputs
    are the same bytes either way."""
    try:
        return _run_stages(plan, inbox, out, seed, start_at, stop_after, run_id, seed_sources, dask)
    except USER_ERRORS as e:
        # bad input or a busy plan: one clear line in the log and a Failed run that carries the error, no traceback
        get_run_logger().error("%s", e, extra={"user_facing": True})  # the CLI ends with it
        return Failed(message=str(e), data=e)


def _derived_run_dir(the_plan: Plan, out: str) -> Path:
    from prefect.runtime import flow_run

    return OutputRoot(Path(out)).run(flow_run_run_id(the_plan.plan_id, flow_run.id or "-"))


def _run_context(
    the_plan: Plan,
    plan: str,
    inbox: str,
    out: str,
    seed: str | None,
    seed_sources: list[str] | None,
    run_id: str | None,
) -> tuple[Path, RunRecord]:
    """The run folder and run.json (kept from the first attempt: a rerun uses the same run date,
    plan, inbox and seed, and is checked against the plan's SHA-256)."""
    if run_id:
        run_id = check_safe_id(run_id, "run id")
    else:
        from prefect.runtime import flow_run

        run_id = flow_run_run_id(the_plan.plan_id, flow_run.id) if flow_run.id else new_run_id(the_plan.plan_id)
    run_dir = OutputRoot(Path(out)).run(run_id)
    if run_record_path(run_dir).exists():
        return run_dir, read_run_record(run_dir).model_copy(update={"run_id": run_id})
    record = RunRecord(
        run_id=run_id,
        plan_id=the_plan.plan_id,
        plan=str(plan),
        plan_sha256=sha256_file(Path(plan)),
        inbox=str(inbox),
        out=str(out),
        seed=seed,
        seed_sources=seed_sources,
        run_date=dt.datetime.now(dt.UTC).date().isoformat(),
    )
    write_run_record(run_dir, record)
    return run_dir, record


FAULT_FILE = (
    "JOINTDRAW_FAULT_FILE"  # for tests of retries on a real worker: a file naming a stage fails it while it exists
)


def _injected_fault(stage: str) -> None:
    path = os.environ.get(FAULT_FILE)
    if path and Path(path).is_file() and Path(path).read_text(encoding="utf-8").strip() == stage:
        raise StageFailed(f"{stage}: fault injected by {FAULT_FILE}={path} (remove the file, then retry the flow run)")


@task(name="stage", task_run_name="{stage} · {plan_id}", cache_policy=NO_CACHE)
def run_stage(stage: str, plan_id: str, ctx: RunContext) -> dict[str, Any]:
    """One stage as a Prefect task run; returns its summary for the end-of-run table. Stages are
    deterministic: they are not retried (a retry would fail the same way)."""
    get_run_logger().info("%s started", stage)
    try:
        _injected_fault(stage)
        summary, line = STAGE_STEPS[stage](ctx)
    except USER_ERRORS as e:  # bad input: the task run fails with the message, without a traceback
        return Failed(message=str(e), data=e)
    get_run_logger().info("%s done: %s", stage, line)
    return summary


def _run_stages(
    plan: str,
    inbox: str,
    out: str,
    seed: str | None,
    start_at: str,
    stop_after: str | None,
    run_id: str | None,
    seed_sources: list[str] | None,
    dask: str | None,
) -> dict[str, Any]:
    logger = get_run_logger()
    # absolute from here on: Dask workers and `jointdraw resume` have working folders of their own
    plan, inbox, out = (os.path.abspath(p) for p in (plan, inbox, out))
    the_plan = read_plan(Path(plan))
    retried = (
        run_id is None and run_record_path(_derived_run_dir(the_plan, out)).exists()
    )  # this flow run's folder: a retry
    run_dir, context = _run_context(the_plan, plan, inbox, out, seed, seed_sources, run_id)
    first = STAGES.index(start_at)
    if (
        retried
    ):  # a retry of a failed flow run (UI, `prefect flow-run retry`) goes on where it stopped, as `jointdraw resume`
        unfinished = first_unfinished_stage(run_dir)
        if unfinished is None or (stop_after and STAGES.index(unfinished) > STAGES.index(stop_after)):
            logger.info("retry of run %s: every stage asked for has finished; nothing to redo", context.run_id)
            return {"run_id": context.run_id, "run_dir": str(run_dir), "plan_id": the_plan.plan_id, "stages": {}}
        first = max(first, STAGES.index(unfinished))
        logger.info(
            "retry of run %s: going on at %s (the stages before it are read from disk)",
            context.run_id,
            STAGES[first],
        )
    last = STAGES.index(stop_after) if stop_after else len(STAGES) - 1
    fans_out = dask if first <= STAGES.index("validate") else None  # only ingest and validate fan out
    with plan_lock(Path(out), the_plan.plan_id, context.run_id), fan_out(fans_out):
        if first == 0:  # before anything runs: the plan against the inbox, one line per problem
            gaps = plan_inbox_problems(the_plan, Path(inbox))
            if gaps:
                raise StageFailed(
                    f"plan {the_plan.plan_id} does not fit the inbox {inbox}:\n"
                    + "\n".join(f"  - {g}" for g in gaps)
                    + "\n(nothing was run; fix the plan or the inbox and run again)"
                )
        if first > 0:
            problems = rerun_problems(run_dir, start_at, Path(plan), Path(inbox))
            if problems:
                raise StageFailed(
                    f"run {context.run_id} cannot go on from {start_at}: "
                    + "; ".join(problems)
                    + " — start a new run (without --run-id), or rerun from an earlier stage"
                )
        for stage in STAGES[first:]:  # what follows is redone: its old records no longer say "finished"
            (stage_dir(run_dir, stage) / STAGE_RECORD).unlink(missing_ok=True)
        logger.info(
            "run %s of plan %s (%d tasks), stages %s–%s → %s",
            context.run_id,
            the_plan.plan_id,
            len(the_plan.tasks),
            STAGES[first],
            STAGES[last],
            run_dir,
        )
        ctx = RunContext(
            plan=the_plan,
            plan_file=Path(plan),
            inbox=Path(inbox),
            run_dir=run_dir,
            run_id=context.run_id,
            run_date=dt.date.fromisoformat(context.run_date),
            seed=seed or context.seed,
            seed_sources=seed_sources or context.seed_sources,
        )
        summary: dict[str, Any] = {
            "run_id": context.run_id,
            "run_dir": str(run_dir),
            "plan_id": the_plan.plan_id,
            "stages": {},
        }
        for stage in STAGES[first : last + 1]:
            outcome = run_stage(stage, the_plan.plan_id, ctx)
            if isinstance(outcome, State):  # the stage refused its input: raise its error here
                outcome.result()
            summary["stages"][stage] = outcome
    return summary


# Each step runs one stage and returns (its part of the run summary, its one log line).


def _ingest(ctx: RunContext) -> tuple[dict, str]:
    record = run_ingest(ctx.inbox, ctx.run_dir)
    table = ingest_summary(record)
    create_table_artifact(
        key="ingest-rows",
        table=table.to_dicts(),
        description=f"Rows ingested per department and registry, run {ctx.run_id}",
    )
    return (
        {
            "rows_read": record["rows_read"],
            "rows_written": record["rows_written"],
            "seconds": record["seconds"],
            "table": table.to_dicts(),
        },
        f"{record['rows_read']:,} rows read = {record['rows_written']:,} written, {len(record['files'])} files, "
        f"{record['seconds']:.1f} s",
    )


def _validate(ctx: RunContext) -> tuple[dict, str]:
    record = run_validate(ctx.run_dir, ctx.plan.quarantine_threshold, ctx.run_date)
    table = validation_table(record).drop("file").to_dicts()
    create_table_artifact(
        key="validation-results", table=table, description=f"Data contract per department file, run {ctx.run_id}"
    )
    summary = {k: record[k] for k in ("rows_read", "rows_accepted", "rows_quarantined", "seconds", "data_docs")}
    return (
        {**summary, "table": table},
        (
            f"{record['rows_read']:,} rows in, {record['rows_accepted']:,} accepted, "
            f"{record['rows_quarantined']:,} quarantined, {record['seconds']:.1f} s"
        ),
    )


def _merge(ctx: RunContext) -> tuple[dict, str]:
    record = run_merge(ctx.run_dir)
    summary = {
        k: record[k]
        for k in (
            "records_in",
            "entities",
            "entities_listed_by_several_departments",
            "unlinked_entities",
            "conflicts_by_attribute",
            "seconds",
        )
    }
    return (
        summary,
        f"{record['records_in']:,} records in, {record['entities']:,} entities out, {record['seconds']:.1f} s",
    )


def _commit(ctx: RunContext) -> tuple[dict, str]:
    record = run_commit(ctx.run_dir, ctx.plan_file, ctx.plan)
    return (
        {k: record[k] for k in ("commitment", "exclusions_by_reason", "seconds")},
        f"commitment {record['commitment'][:16]}…, excluded {record['exclusions_by_reason'] or 'none'}, "
        f"{record['seconds']:.1f} s",
    )


def _draw(ctx: RunContext) -> tuple[dict, str]:
    record = run_draw(ctx.run_dir, ctx.plan, ctx.seed, ctx.seed_sources)
    rows = [{"mode": m, **f} for m, f in record["fusion"].items()]
    create_table_artifact(key="fusion-figures", table=rows, description=f"Fusion figures (SPEC §4.5), run {ctx.run_id}")
    summary = {
        k: record[k]
        for k in (
            "seed_origin",
            "commitment",
            "eligible_pairs",
            "strata",
            "drawn",
            "tasks_without_eligible",
            "mode",
            "fusion",
            "seconds",
        )
    }
    return (
        summary,
        f"{record['eligible_pairs']:,} eligible pairs in, {record['drawn']:,} drawn, {record['seconds']:.1f} s",
    )


def _fuse(ctx: RunContext) -> tuple[dict, str]:
    record = run_fuse(ctx.run_dir, ctx.plan)
    create_table_artifact(
        key="fusion-summary", table=figure_rows(record["figures"]), description=f"Fusion (查重融合), run {ctx.run_id}"
    )
    f = record["figures"]
    return (
        {k: record[k] for k in ("figures", "by_department", "seconds")},
        f"{f['drawn_total']:,} draws in, {f['joint_tasks']:,} joint tasks out, {f['visits_saved']:,} visits saved, "
        f"{record['seconds']:.1f} s",
    )


def _assign(ctx: RunContext) -> tuple[dict, str]:
    record = run_assign(ctx.run_dir, ctx.plan)
    summary = {
        k: record[k]
        for k in (
            "joint_tasks",
            "assigned",
            "unassigned",
            "unassigned_by_reason",
            "inspectors_available",
            "inspectors_sent",
            "team_size",
            "from_department_pool",
            "working_days",
            "calendar",
            "seconds",
        )
    }
    summary["workload"] = {k: v for k, v in record["workload"].items() if k != "by_pool"}
    create_table_artifact(
        key="workload-by-pool",
        table=record["workload"]["by_pool"],
        description=f"Tasks per inspector in each (department, district) pool, run {ctx.run_id}",
    )
    return summary, (
        f"{record['joint_tasks']:,} joint tasks in, {record['assigned']:,} staffed, "
        f"{record['unassigned']:,} unassigned, {record['seconds']:.1f} s"
    )


def _publish(ctx: RunContext) -> tuple[dict, str]:
    record = run_publish(ctx.run_dir, ctx.plan)
    bundle = Path(record["bundle"]).resolve()
    create_link_artifact(
        key="published-bundle",
        link=bundle.as_uri(),
        link_text=f"published/{ctx.plan.plan_id}",
        description=f"The bundle of run {ctx.run_id} (seal {record['seal']}); open public/report.html in it",
    )
    create_markdown_artifact(
        key="draw-certificate",
        markdown=draw_certificate(record["manifest"], record["seal"]),
        description=f"Draw certificate (抽取证书), run {ctx.run_id}",
    )
    return (
        {k: record[k] for k in ("bundle", "files", "documents", "seal", "warehouse_rows", "seconds")},
        f"{record['files']} files + {record['documents']} documents → {record['bundle']}, seal {record['seal']}, "
        f"{record['seconds']:.1f} s",
    )


STAGE_STEPS: dict[str, Callable[[RunContext], tuple[dict, str]]] = {
    "ingest": _ingest,
    "validate": _validate,
    "merge": _merge,
    "commit": _commit,
    "draw": _draw,
    "fuse": _fuse,
    "assign": _assign,
    "publish": _publish,
}
assert tuple(STAGE_STEPS) == STAGES
