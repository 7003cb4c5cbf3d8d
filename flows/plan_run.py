"""The plan flow: one run of a plan (抽查计划) through the stages, meeting on disk.

    plan_run(plan, inbox, out, seed=None, start_at="ingest", stop_after=None, run_id=None, seed_sources=None,
             dask=None, reuse=True)

Stages live under OUT/runs/<run_id>/<NN_stage>/ (transforms/storage/runfolder.py); each is a Prefect
task run named "<stage> · <plan_id>". A run started at a later stage first checks that every
earlier stage finished and its recorded files are unchanged, and that the plan and the
inputs are the ones the run started with (transforms/rerun.py); it refuses otherwise. Only
one run of a plan works at a time (transforms/storage/runlock.py). With `reuse` (the default), ingest,
validate and merge take what an earlier run in the same output root computed from the same inputs
(transforms/storage/reuse.py); `reuse=False` (`jointdraw run --no-reuse`) computes everything.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import Failed, State
from prefect.utilities.annotations import quote

from jointdraw.flows.assign import run_assign
from jointdraw.flows.data_docs import all_data_docs_built, start_data_docs
from jointdraw.flows.draw import run_commit, run_draw
from jointdraw.flows.errors import USER_ERRORS, StageFailed
from jointdraw.flows.fanout import fan_out
from jointdraw.flows.fuse import run_fuse
from jointdraw.flows.ingest import run_ingest
from jointdraw.flows.merge import run_merge
from jointdraw.flows.publish import run_publish, write_ahead_for_publish
from jointdraw.flows.stage import run_stage_step
from jointdraw.flows.termination import noticing_sigterm
from jointdraw.transforms.documents.report import warm_up_charts
from jointdraw.transforms.plan import Plan, PlanError, check_safe_id, read_plan
from jointdraw.transforms.rerun import retry_start, start_refusal
from jointdraw.transforms.stage_records import StageRecord
from jointdraw.transforms.storage.background import warm_up
from jointdraw.transforms.storage.hashed_ahead import keep_known, load_known
from jointdraw.transforms.storage.layout import OutputRoot, RunFolder, RunRecord, open_run, run_record_path
from jointdraw.transforms.storage.runfolder import (
    STAGE_RECORD,
    STAGES,
    new_run_id,
    sha256_file,
)
from jointdraw.transforms.storage.runlock import plan_lock

Stage = Literal["ingest", "validate", "merge", "commit", "draw", "fuse", "assign", "publish"]
FANS_OUT_UNTIL = "draw"  # with `dask`, the stages up to this one run tasks on the cluster (flows/fanout.py)


@dataclass(frozen=True)
class RunContext:
    plan: Plan
    plan_file: Path
    inbox: Path
    run: RunFolder  # the run's folder: stages by name, run.json
    run_date: dt.date
    seed: str | None
    seed_sources: list[str] | None
    reuse: bool  # take unchanged files' ingest and validation, and an unchanged merge, from earlier runs


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
    reuse: bool = True,
) -> dict[str, Any]:
    """Runs the plan's stages from `start_at` to `stop_after` (default: the last); returns the
    run's summary: run id, run folder, and per stage what it did. `seed` or `seed_sources`
    (public numbers, RFC 3797) override the plan's; without any, a seed is generated.
    `dask` runs the per-department ingest and validation tasks, the merge's key ranges and the draw's
    parts on a Dask cluster: "local" (two worker processes) or a scheduler address such as tcp://10.0.0.5:8786; the
    published bundle is the same bytes either way. `reuse` takes each department file's ingest and validation, and
    the merge, from an earlier run in the same output root when their inputs are unchanged (the
    same bytes either way); False computes everything, and a run started so keeps it when resumed."""
    try:
        with noticing_sigterm():
            return _run_stages(plan, inbox, out, seed, start_at, stop_after, run_id, seed_sources, dask, reuse)
    except USER_ERRORS as e:
        # bad input or a busy plan: one clear line in the log and a Failed run that carries the error, no traceback
        get_run_logger().error("%s", e, extra={"user_facing": True})  # the CLI ends with it
        return Failed(message=str(e), data=e)


FAULT_FILE = (
    "JOINTDRAW_FAULT_FILE"  # for tests of retries on a real worker: a file naming a stage fails it while it exists
)


def _injected_fault(stage: str) -> None:
    path = os.environ.get(FAULT_FILE)
    if path and Path(path).is_file() and Path(path).read_text(encoding="utf-8").strip() == stage:
        raise StageFailed(f"{stage}: fault injected by {FAULT_FILE}={path} (remove the file, then retry the flow run)")


@task(name="stage", task_run_name="{stage} · {plan_id}", cache_policy=NO_CACHE)
def run_stage(stage: str, plan_id: str, ctx: RunContext) -> StageRecord | State:
    """One stage as a Prefect task run (flows/stage.py runs it); returns its record for the
    end-of-run summary. Stages are deterministic: they are not retried (a retry would fail the same way)."""
    try:
        _injected_fault(stage)
        return run_stage_step(stage, ctx.run.stage(stage), lambda: STAGE_STEPS[stage](ctx), ctx.run.run_id)
    except USER_ERRORS as e:  # bad input: the task run fails with the message, without a traceback
        return Failed(message=str(e), data=e)


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
    reuse: bool,
) -> dict[str, Any]:
    logger = get_run_logger()
    # absolute from here on: Dask workers and `jointdraw resume` have working folders of their own
    plan, inbox, out = (os.path.abspath(p) for p in (plan, inbox, out))
    the_plan = read_plan(Path(plan))
    given_id = check_safe_id(run_id, "run id") if run_id else None
    derived = flow_run_run_id(the_plan.plan_id, flow_run.id) if flow_run.id else new_run_id(the_plan.plan_id)
    run_id = given_id or derived
    folder = OutputRoot(Path(out)).run_folder(run_id)
    run_dir = folder.path
    retried = given_id is None and run_record_path(run_dir).exists()  # this flow run's own folder: a retry
    new = RunRecord(
        run_id=run_id,
        plan_id=the_plan.plan_id,
        plan=plan,
        plan_sha256=sha256_file(Path(plan)),
        inbox=inbox,
        out=out,
        seed=seed,
        seed_sources=seed_sources,
        run_date=dt.datetime.now(dt.UTC).date().isoformat(),
        **({} if reuse else {"reuse": False}),  # kept only when off: a resume of the run computes everything too
    )
    run = open_run(run_dir, new)
    summary: dict[str, Any] = {"run_id": run_id, "run_dir": str(run_dir), "plan_id": the_plan.plan_id, "stages": {}}
    if retried:  # a retry of a failed flow run (UI, `prefect flow-run retry`) goes on where it stopped, as resume does
        start_at = retry_start(run_dir, start_at, stop_after)
        if start_at is None:
            logger.info("retry of run %s: every stage asked for has finished; nothing to redo", run_id)
            return summary
        logger.info("retry of run %s: going on at %s (the stages before it are read from disk)", run_id, start_at)
    first, last = STAGES.index(start_at), STAGES.index(stop_after or STAGES[-1])
    fans_out = dask if first <= STAGES.index(FANS_OUT_UNTIL) else None  # the later stages run here
    with plan_lock(Path(out), the_plan.plan_id, run_id), fan_out(fans_out):
        if refusal := start_refusal(run_dir, run_id, the_plan, Path(plan), Path(inbox), start_at):
            raise StageFailed(refusal)
        for stage in STAGES[first:]:  # what follows is redone: its old records no longer say "finished"
            (folder.stage(stage) / STAGE_RECORD).unlink(missing_ok=True)
        logger.info(
            "run %s of plan %s (%d tasks), stages %s–%s → %s",
            run_id,
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
            run=folder,
            run_date=dt.date.fromisoformat(run.run_date),
            seed=seed or run.seed,
            seed_sources=seed_sources or run.seed_sources,
            reuse=reuse and run.reuse is not False,
        )
        known = OutputRoot(Path(out)).known_digests  # files read before, unchanged since: not read again
        if ctx.reuse:
            load_known(known)
        try:
            for stage in STAGES[first : last + 1]:
                if stage == "commit":  # the merge, which keeps every core busy at 8M, has ended
                    start_data_docs()  # validate's
                if stage == "draw" and STAGES[last] == "publish":  # while this thread waits for DuckDB
                    threading.Thread(target=warm_up_charts, name="warm-up-charts", daemon=True).start()
                if stage == "assign" and STAGES[last] == "publish":  # assign matches on one core; meanwhile
                    warm_up()  # publish's background writers load, and they write what publish takes from the
                    write_ahead_for_publish(folder, the_plan, ctx.reuse)  # draw and fuse
                # assign's matching makes many objects: what is alive before it (Prefect, Great Expectations, polars:
                # 400,000 objects and more) is left out of the collections of its garbage, which scanned it all
                # again (measured alone: 2.85 s instead of 2.37 s). Only there: frozen before the merge at 8M, what
                # ingest left to collect stayed, and the merge took 33–34 s instead of 28 s
                with _frozen_while(stage == "assign"):  # the context quoted: Prefect does not walk the plan's tasks
                    outcome = run_stage(stage, the_plan.plan_id, quote(ctx))  # (0.14 s a stage, profiled)
                if isinstance(outcome, State):  # the stage refused its input: raise its error here
                    outcome.result()
                summary["stages"][stage] = outcome
            all_data_docs_built()  # validate's, built while the stages after the merge ran
        finally:
            _data_docs_built_anyway()
            if not keep_known(known):
                get_run_logger().warning("could not write %s: the next run hashes its files again", known)
    return summary


def _data_docs_built_anyway() -> None:
    """When a stage after validate failed, validate's Data Docs are finished before the flow ends all the same (a
    resume, or whoever copies the run folder, finds the site whole); a failure to build them is logged, the
    stage's error on its way being the run's."""
    try:
        all_data_docs_built()
    except Exception as e:
        get_run_logger().warning("validate's Data Docs were not built (%s: %s)", type(e).__name__, e)


@contextmanager
def _frozen_while(freeze: bool) -> Iterator[None]:
    """With `freeze`, the objects alive now are left out of the garbage collector's scans until the block ends."""
    if not freeze:
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _validate(ctx: RunContext) -> StageRecord:
    """Great Expectations (3 s to import) is loaded only by a run that validates."""
    from jointdraw.flows.validate import run_validate

    return run_validate(ctx.run, ctx.plan.quarantine_threshold, ctx.run_date, ctx.reuse)


# Each stage's step: reads the run folder, writes its files, returns its record (flows/<stage>.py).
STAGE_STEPS: dict[str, Callable[[RunContext], StageRecord]] = {
    "ingest": lambda ctx: run_ingest(ctx.inbox, ctx.run, reuse=ctx.reuse),
    "validate": lambda ctx: _validate(ctx),
    "merge": lambda ctx: run_merge(ctx.run, ctx.reuse),
    "commit": lambda ctx: run_commit(ctx.run, ctx.plan_file, ctx.plan, ctx.reuse),
    "draw": lambda ctx: run_draw(ctx.run, ctx.plan, ctx.seed, ctx.seed_sources, reuse=ctx.reuse),
    "fuse": lambda ctx: run_fuse(ctx.run, ctx.plan),
    "assign": lambda ctx: run_assign(ctx.run, ctx.plan),
    "publish": lambda ctx: run_publish(ctx.run, ctx.plan, ctx.reuse),
}
assert tuple(STAGE_STEPS) == STAGES
