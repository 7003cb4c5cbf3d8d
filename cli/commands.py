"""The `jointdraw` command: thin argument parsing around the transforms and the flows."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

from jointdraw.cli import FLOW_COMMANDS
from jointdraw.flows.errors import UserFacingError
from jointdraw.transforms import settings
from jointdraw.transforms.storage.runfolder import STAGES


def _generate(args: argparse.Namespace) -> int:
    from jointdraw.transforms.samplecity.submission import write_generated_city

    started = time.perf_counter()
    city, written = write_generated_city(args.objects, args.seed, Path(args.out_dir), dirty=args.dirty)
    console = _console()
    console.print(
        _table(
            f"generated city: {args.out_dir} (seed {args.seed}{', dirty' if args.dirty else ''})",
            [{"file": str(w.path.relative_to(args.out_dir)), "format": w.fmt, "rows": w.rows} for w in written],
        )
    )
    n_rows = sum(w.rows for w in written if w.path.stem == "objects")
    console.print(
        f"object rows {n_rows:,}; plan {city.plan.plan_id} with {len(city.plan.tasks)} tasks; "
        f"expected reduction {city.expected_reduction:.2%}; {time.perf_counter() - started:.1f} s"
    )
    return 0


def _generate_results(args: argparse.Namespace) -> int:
    import datetime as dt

    from jointdraw.transforms.results import PlanSide
    from jointdraw.transforms.samplecity.results import generate_results
    from jointdraw.transforms.samplecity.submission import write_results
    from jointdraw.transforms.storage.warehouse import plan_side_tables

    try:
        tables = plan_side_tables(Path(args.out), args.plan_id)
    except LookupError as e:
        print(f"jointdraw generate-results: {e}", file=sys.stderr)
        return 1
    plan = PlanSide(tables["task_items"], tables["teams"], tuple(tables["period"]), dt.date.fromisoformat(args.as_of))
    results, truth = generate_results(plan, args.seed, dirty=args.dirty)
    written = write_results(results, truth, Path(args.inbox))
    console = _console()
    console.print(
        _table(
            f"generated results for {args.plan_id} as of {args.as_of} → {args.inbox}",
            [{"file": str(w.path.relative_to(args.inbox)), "format": w.fmt, "rows": w.rows} for w in written],
        )
    )
    if not truth.is_empty():
        console.print(f"{truth.height} planted errors listed in {Path(args.inbox).parent / 'results-truth.csv'}")
    return 0


def _results(args: argparse.Namespace) -> int:
    from jointdraw.flows.results import results_run

    _quiet_temporary_server_shutdown()
    summary = results_run(
        plan_id=args.plan_id,
        inbox=args.inbox,
        out=args.out,
        as_of=args.as_of,
        limit_working_days=args.limit_days,
        run_id=args.run_id,
        dask=args.dask,
        review_required=args.review,
        public_years=_public_years(args.public_years),
        follow_up_limit_working_days=args.follow_up_days,
    )
    _console().print(f"results (检查结果) of {summary['plan_id']} as of {summary['as_of']}")
    _print_run_summary(summary)
    return 0


def _kpi(args: argparse.Namespace) -> int:
    import polars as pl

    from jointdraw.flows.kpi import figures_day, write_kpi
    from jointdraw.transforms.kpi import ALL_TYPES, KPIS, MISSED, percent_text

    # no Prefect run: the figures read the warehouse and write one folder (the deployment runs the flow, kpi_run)
    year, day = figures_day(args.year, args.as_of)
    s = write_kpi(year, Path(args.out).resolve(), day, args.limit_days).model_dump(mode="json")
    figures = pl.read_parquet(Path(s["folder"]) / "kpi.parquet").filter(pl.col("entity_type") == ALL_TYPES)
    rows = []
    for kpi, d in KPIS.items():
        of = figures.filter(pl.col("kpi") == kpi)
        city = of.filter(pl.col("department").is_null()).row(0, named=True)
        missed = of.filter(pl.col("department").is_not_null() & (pl.col("status") == MISSED))["department"]
        rows.append(
            {
                "指标 figure": f"{d.name} {kpi}",
                "全市 city": percent_text(city["value"]) or "—",
                "分子 numerator": city["numerator"],
                "分母 denominator": city["denominator"],
                "目标 target": percent_text(city["target"]) or "",
                "全市 status": city["status"],
                "未达标部门 departments under target": "、".join(missed.to_list()),
            }
        )
    console = _console()
    plans = "、".join(s["plans"]) or "none"
    console.print(_table(f"{s['year']} 年度考核指标 yearly figures (plans: {plans}; as of {s['as_of']})", rows))
    console.print(f"every department and entity type: {Path(s['folder']) / 'kpi.xlsx'}")
    console.print(f"KPI page: {s['page']}")
    return 0


def _public_years(text: str | None) -> dict[str, int] | None:
    """`individual=1,enterprise=3` → {individual: 1, enterprise: 3} (the types not named: the plan's, else the
    settings' years)."""
    if not text:
        return None
    years: dict[str, int] = {}
    for part in text.replace("，", ",").split(","):
        kind, _, n = part.partition("=")
        if not n.strip().isdigit() or kind.strip() not in settings.RESULTS_PUBLIC_YEARS:
            raise SystemExit(
                f"jointdraw results: --public-years {text!r}: write TYPE=YEARS,… with TYPE one of "
                f"{', '.join(settings.RESULTS_PUBLIC_YEARS)} (e.g. individual=1)"
            )
        years[kind.strip()] = int(n)
    return years


def _correct(args: argparse.Namespace) -> int:
    from jointdraw.flows.correct import correct_run

    _quiet_temporary_server_shutdown()
    sets = {}
    for pair in args.set or []:
        column, sep, value = pair.partition("=")
        if not sep:
            print(f"jointdraw correct: --set {pair!r}: write column=value", file=sys.stderr)
            return 1
        sets[column.strip()] = value.strip()
    s = correct_run(
        plan_id=args.plan_id,
        joint_task=args.joint_task,
        item=args.item,
        reason=args.reason,
        out=args.out,
        sets=sets,
        withdraw=args.withdraw,
        department=args.department,
        by=args.by,
        as_of=args.as_of,
    )
    console = _console()
    what = "撤回 withdrawn" if s["action"] == "withdraw" else s["changes"]
    console.print(
        f"更正 (correction) #{s['correction_id']} of {s['joint_task_id']} item {s['item_id']} ({s['department']}): "
        f"{what}; reason: {s['reason']}" + ("" if s["new"] else " — made before; nothing new")
    )
    if s["seal"]:
        console.print(f"republished {s['bundle']}; results seal (封存值) {s['seal']} — announce it")
    return 0


def _redraw(args: argparse.Namespace) -> int:
    from jointdraw.flows.redraw import redraw_run

    _quiet_temporary_server_shutdown()
    s = redraw_run(
        plan_id=args.plan_id,
        joint_task=args.joint_task,
        inspector=args.inspector,
        reason=args.reason,
        out=args.out,
        note=args.note or "",
    )
    console = _console()
    console.print(
        f"递补 (replacement draw) on {s['joint_task_id']}: {s['replaced']} → {s['replacement']} "
        f"({s['pool']} pool, redraw {s['counter']} of the task), audit entry #{s['entry']}"
        + ("" if s["new"] else " — drawn before; nothing new")
    )
    if s["seal"]:
        console.print(f"republished {s['bundle']}; seal (封存值) {s['seal']} — announce it")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from jointdraw.transforms.audit import chain_problems, is_attempt, seed_shopping
    from jointdraw.transforms.storage.warehouse import audit_entries

    entries = audit_entries(Path(args.out), args.plan_id)
    console = _console()
    if not entries:
        console.print(f"no draw attempts of {args.plan_id} in {Path(args.out) / 'warehouse.duckdb'}")
        return 1
    console.print(
        _table(
            f"draw attempts and seals of {args.plan_id} (audit log, chained by hash)",
            [
                {
                    "seq": e["seq"],
                    "time": e["time"],
                    "run": e["run_id"],
                    "event": e.get("event") or "draw",
                    "seed or seal": e["seed"] if is_attempt(e) else e["seal"] or _redraw_line(e),
                    "commitment": e["commitment"][:16] + "…" if is_attempt(e) else "",
                    "draw digest": e["draw_digest"][:16] + "…" if is_attempt(e) else "",
                    "operator": e["operator"],
                }
                for e in entries
            ],
        )
    )
    shopping = seed_shopping(entries)
    for commitment, attempts in shopping.items():
        console.print(
            f"[bold red]SEED SHOPPING?[/] commitment {commitment[:16]}… "
            f"was drawn with {len({a['seed'] for a in attempts})} "
            f"different seeds: "
            + "; ".join(f"#{a['seq']} seed {a['seed']!r} → {a['draw_digest'][:16]}…" for a in attempts)
        )
    problems = chain_problems(entries)
    if problems:
        console.print(f"[bold red]the chain is broken[/]: {problems[0]}")
        return 1
    console.print(f"the chain of {len(entries)} entries is intact (last {entries[-1]['entry_hash'][:16]}…)")
    return 0


def _console():
    """A console as wide as the terminal, or 160 columns when the output is a file or a pipe
    (logs keep whole ids rather than folded ones)."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=160)


def _table(title: str, rows: list[dict]):
    from rich.table import Table

    table = Table(title=title)
    columns = list(rows[0]) if rows else []
    for c in columns:
        table.add_column(c, justify="right" if rows and isinstance(rows[0][c], int) else "left", overflow="fold")
    for row in rows:
        table.add_row(
            *["" if row[c] is None else (f"{row[c]:,}" if isinstance(row[c], int) else str(row[c])) for c in columns]
        )
    return table


def _print_run_summary(summary: dict) -> None:
    """Each finished stage's part of the summary (its record says what: transforms/stage_records.py)."""
    from jointdraw.transforms.stage_records import Table

    console = _console()
    for record in summary["stages"].values():
        for part in record.report(Path(summary["run_dir"])):
            console.print(_table(part.title, part.rows) if isinstance(part, Table) else part)
    console.print(f"run folder: {summary['run_dir']}")


class _SaidOnce:
    """A console-log filter: a failure the CLI ends with (one line, `jointdraw CMD: …`) is not also
    printed by the flow's logger and echoed by Prefect's engine ("Task run failed with state:
    Failed(…)", "Finished in state Failed(…)", with an empty "NoneType: None" traceback), nor is
    an interruption (SIGINT, SIGTERM) followed by the traceback of where it landed. Only the
    terminal is spared: the Prefect API (the UI's run logs) keeps every record. Failures
    that are defects (an exception, with its traceback) still show."""

    ECHOES = ("failed with state: Failed(", "in state Failed(")

    def filter(self, record) -> bool:  # noqa: A003 (logging's name)
        if getattr(record, "user_facing", False):
            return False
        if record.exc_info and record.exc_info[1] is not None and _by_a_signal(record.exc_info[1]):
            return False  # a signal: the CLI says "interrupted" and how to resume (the traceback says where it landed)
        if not record.name.startswith(("prefect.task_runs", "prefect.flow_runs", "prefect.engine")):
            return True
        message = record.getMessage()
        if any(
            echo in message for echo in self.ECHOES
        ):  # at INFO too: "Finished in state Failed('…the whole message…')"
            return False
        return record.levelno < 40 or not any(s in message for s in SIGNAL_EXCEPTIONS)


SIGNAL_EXCEPTIONS = ("KeyboardInterrupt", "TerminationSignal")


def _by_a_signal(e: BaseException) -> bool:
    """Whether `e` is, or was caused by, SIGINT or SIGTERM. During a flow run Prefect turns SIGTERM
    into its own TerminationSignal; a library catching every exception may wrap it into another
    (pydantic: "Error calling function …: TerminationSignal"), so the chain and the text are read."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if type(e).__name__ in SIGNAL_EXCEPTIONS or any(s in str(e) for s in SIGNAL_EXCEPTIONS):
            return True
        e = e.__cause__ or e.__context__
    return False


def _quiet_temporary_server_shutdown() -> None:
    """Without PREFECT_API_URL, Prefect starts a temporary server for the run and stops it at
    exit; Prefect 3.9's task-run recorder and SQLAlchemy pool then log CancelledError
    tracebacks about events still in flight. They say nothing about the run: hide them. And a
    failure is said once on the terminal, by the CLI (`_SaidOnce`)."""
    import logging
    import os

    from prefect.logging.handlers import PrefectConsoleHandler
    from prefect.logging.loggers import get_logger

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # offline: no telemetry errors in the log
    if not os.environ.get("PREFECT_API_URL"):
        for name in ("prefect.server.services.task_run_recorder", "sqlalchemy.pool.impl.AsyncAdaptedQueuePool"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    get_logger()  # Prefect's logging is configured on first use
    loggers = [
        logging.getLogger(),
        *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)),
    ]
    for handler in {h for lg in loggers for h in lg.handlers if isinstance(h, PrefectConsoleHandler)}:
        if not any(isinstance(f, _SaidOnce) for f in handler.filters):
            handler.addFilter(_SaidOnce())


def _run(args: argparse.Namespace) -> int:
    from jointdraw.flows.plan_run import plan_run

    _quiet_temporary_server_shutdown()
    first, last = STAGES.index(args.start_at), STAGES.index(args.stop_after) if args.stop_after else len(STAGES) - 1
    with _progress(last - first + 1):
        summary = plan_run(
            plan=args.plan,
            inbox=args.inbox,
            out=args.out,
            seed=args.seed,
            start_at=args.start_at,
            dask=args.dask,
            stop_after=args.stop_after,
            run_id=args.run_id,
            seed_sources=args.seed_source,
            reuse=not args.no_reuse,
        )
    _print_run_summary(summary)
    return 0


def _progress(stages: int):
    """A progress bar over the stages in a terminal; nothing extra in a pipe or a log file."""
    from contextlib import nullcontext

    if not sys.stdout.isatty():
        return nullcontext()
    import prefect  # noqa: F401  (sets up Prefect's logging, whose console lines the bar replaces)

    from jointdraw.cli.progress import stage_progress

    return stage_progress(stages)


def _resume(args: argparse.Namespace) -> int:
    from jointdraw.flows.plan_run import plan_run
    from jointdraw.transforms.rerun import first_unfinished_stage
    from jointdraw.transforms.storage.layout import OutputRoot, read_run_record, run_record_path

    root = OutputRoot(Path(args.out))
    run_dir = root.run(args.run_id)
    if not run_record_path(run_dir).exists():
        print(f"jointdraw resume: no run {args.run_id} in {root.runs} (no run.json)", file=sys.stderr)
        return 1
    run = read_run_record(run_dir)
    stage = first_unfinished_stage(run_dir)
    if stage is None:
        print(
            f"run {args.run_id} finished every stage; nothing to resume "
            "(rerun a stage with `jointdraw run … --start-at`)"
        )
        return 0
    print(f"resuming run {args.run_id} of plan {run.plan_id} at {stage} (the stages before it are read from disk)")
    _quiet_temporary_server_shutdown()
    with _progress(len(STAGES) - STAGES.index(stage)):
        summary = plan_run(
            plan=run.plan,
            inbox=run.inbox,
            out=args.out,
            run_id=args.run_id,
            start_at=stage,
            dask=args.dask,
            seed=run.seed,
            seed_sources=run.seed_sources,
            reuse=not args.no_reuse,
        )
    _print_run_summary(summary)
    return 0


def _unlock(args: argparse.Namespace) -> int:
    from jointdraw.transforms.storage.runlock import clear_lock

    print(clear_lock(Path(args.out), args.plan_id, force=args.force))
    return 0


def _history(args: argparse.Namespace) -> int:

    from jointdraw.transforms.storage.warehouse import entity_history

    console = _console()
    found = entity_history(Path(args.out), args.uscc.strip().upper())
    if not any(t.height for t in found.values()):
        console.print(f"{args.uscc}: no draws, joint tasks or visits in {Path(args.out) / 'warehouse.duckdb'}")
        return 0
    titles = {
        "draws": "draws (抽取)",
        "joint_tasks": "joint tasks (联合检查任务)",
        "visits": "teams (检查人员)",
        "results": "results (检查结果)",
    }
    for name, table in found.items():
        rows = [
            {k: ("；".join(v) if isinstance(v, list) else (None if v is None else str(v))) for k, v in r.items()}
            for r in table.to_dicts()
        ]
        console.print(
            _table(f"{args.uscc}: {titles.get(name, name)}", rows)
            if rows
            else f"{args.uscc}: no {titles.get(name, name)}"
        )
    return 0


def _seed(args: argparse.Namespace) -> int:
    from jointdraw.transforms.seed import rfc3797_key

    print(rfc3797_key(args.source))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from jointdraw.transforms.verify import check_entity, verify_draw

    if args.entity:
        print("\n".join(check_entity(Path(args.folder), args.entity)))
        return 0
    report = verify_draw(Path(args.folder), seal=args.seal, results_seal=args.results_seal)
    print(report.text())
    return 0 if report.ok else 1


def _dask_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dask",
        default=None,
        metavar="ADDRESS",
        help="run the fanned-out tasks (each department file's ingest and validation, each key range's merge) "
        "on Dask: 'local' (2 worker processes) or a scheduler address",
    )


def _reuse_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-reuse",
        action="store_true",
        help="compute every department file's ingest and validation, and the merge, even when an earlier run in "
        "the same output root did so from the same inputs (default: take them from it)",
    )


def _redraw_line(entry: dict) -> str:
    import json

    r = json.loads(entry.get("redraw") or "{}")
    return f"{r.get('joint_task_id')}: {r.get('replaced')} → {r.get('replacement')} ({r.get('reason')})"


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the `jointdraw` command itself, not a caller in the same process
        _skip_final_collection()
    parser = argparse.ArgumentParser(prog="jointdraw", description="Joint random inspection draw (双随机、一公开).")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser(
        "generate", help="write a synthetic city's submissions and plan (检查对象、执法人员、事项、计划)"
    )
    g.add_argument("out_dir")
    g.add_argument("--objects", type=int, default=20_000, help="object rows across all departments (default 20,000)")
    g.add_argument("--seed", type=int, default=2021)
    g.add_argument("--dirty", action="store_true", help="plant known errors and write truth.csv")
    g.set_defaults(func=_generate)

    r = sub.add_parser("run", help="run a plan through the pipeline stages")
    r.add_argument("plan", help="the plan YAML (抽查计划)")
    r.add_argument("--inbox", required=True, help="folder of department folders (inbox/<DEPT>/objects.* ...)")
    r.add_argument("--out", required=True, help="output root: runs/<run_id>/ and published/<plan_id>/ go here")
    r.add_argument("--seed", default=None, help="seed string (overrides the plan's)")
    r.add_argument(
        "--seed-source",
        action="append",
        default=None,
        metavar="NUMBERS",
        help="public numbers announced after the commitment, one source per option (RFC 3797), "
        "e.g. --seed-source '2 5 12 8 10'",
    )
    r.add_argument(
        "--start-at", default="ingest", choices=STAGES, help="first stage to run (earlier ones are read from disk)"
    )
    r.add_argument("--stop-after", default=None, choices=STAGES, help="last stage to run")
    r.add_argument("--run-id", default=None, help="run id (default: <plan_id>-<UTC time>)")
    _dask_option(r)
    _reuse_option(r)
    r.set_defaults(func=_run)

    rs = sub.add_parser("resume", help="rerun a run from the first stage that did not finish")
    rs.add_argument("run_id")
    rs.add_argument("--out", required=True, help="the output root the run is under (runs/<run_id>/)")
    _dask_option(rs)
    _reuse_option(rs)
    rs.set_defaults(func=_resume)

    ul = sub.add_parser("unlock", help="clear a plan's lock left by a run that is no longer running")
    ul.add_argument("plan_id")
    ul.add_argument("--out", required=True)
    ul.add_argument(
        "--force",
        action="store_true",
        help="clear a lock named by a run on another machine (this host cannot tell whether it still runs)",
    )
    ul.set_defaults(func=_unlock)

    hi = sub.add_parser("history", help="an entity's draws, joint tasks, teams and results across runs (warehouse)")
    hi.add_argument("uscc")
    hi.add_argument("--out", required=True, help="the output root holding warehouse.duckdb")
    hi.set_defaults(func=_history)

    sd = sub.add_parser("seed", help="print the RFC 3797 key string of public numbers")
    sd.add_argument(
        "--source", action="append", required=True, metavar="NUMBERS", help="one source's numbers, in published order"
    )
    sd.set_defaults(func=_seed)

    gr = sub.add_parser("generate-results", help="write sample inspection results (检查结果) for a published plan")
    gr.add_argument("plan_id")
    gr.add_argument("--out", required=True, help="the output root holding warehouse.duckdb")
    gr.add_argument("--inbox", required=True, help="where to write <DEPT>/results.*")
    gr.add_argument("--as-of", required=True, help="results for task items planned on or before this day (YYYY-MM-DD)")
    gr.add_argument("--seed", type=int, default=2021)
    gr.add_argument(
        "--dirty", action="store_true", help="plant one error per department file and write results-truth.csv"
    )
    gr.set_defaults(func=_generate_results)

    rr = sub.add_parser("results", help="take in, check and publish inspection results (检查结果公示)")
    rr.add_argument("plan_id")
    rr.add_argument("--inbox", required=True, help="folder of department folders (inbox/<DEPT>/results.*)")
    rr.add_argument("--out", required=True, help="the output root the plan was published under")
    rr.add_argument("--as-of", default=None, help="publication day (YYYY-MM-DD; default: today in China)")
    rr.add_argument(
        "--limit-days",
        type=int,
        default=settings.RESULTS_LIMIT_WORKING_DAYS,
        help=f"working days after the inspection to publish a result (default {settings.RESULTS_LIMIT_WORKING_DAYS})",
    )
    rr.add_argument("--run-id", default=None)
    rr.add_argument(
        "--review",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="--no-review publishes every accepted result without review (default: the plan's results.review_required, "
        "else required: only 审核通过 results are public)",
    )
    rr.add_argument(
        "--public-years",
        default=None,
        metavar="TYPE=YEARS,…",
        help="years a result stays on the public notice per entity type (default "
        + ",".join(f"{k}={v}" for k, v in settings.RESULTS_PUBLIC_YEARS.items())
        + ")",
    )
    rr.add_argument(
        "--follow-up-days",
        type=int,
        default=settings.FOLLOW_UP_LIMIT_WORKING_DAYS,
        help="working days after the inspection to complete a problem's follow-up "
        f"(default {settings.FOLLOW_UP_LIMIT_WORKING_DAYS})",
    )
    _dask_option(rr)
    rr.set_defaults(func=_results)

    kp = sub.add_parser("kpi", help="the yearly figures (年度考核指标) per department and for the city (warehouse)")
    kp.add_argument("--year", type=int, default=None, help="the year (default: last year); its plans start in it")
    kp.add_argument("--out", required=True, help="the output root holding warehouse.duckdb; writes kpi/<year>/")
    kp.add_argument("--as-of", default=None, help="count results up to this day (YYYY-MM-DD; default: today in China)")
    kp.add_argument(
        "--limit-days",
        type=int,
        default=settings.RESULTS_LIMIT_WORKING_DAYS,
        help="working days after the inspection a result is due (default %(default)s)",
    )
    kp.set_defaults(func=_kpi)

    co = sub.add_parser(
        "correct", help="correct or withdraw a published result (更正/撤回), kept with the reason, republished"
    )
    co.add_argument("plan_id")
    co.add_argument("--joint-task", required=True, help="the joint task (联合任务编号)")
    co.add_argument("--item", required=True, help="the item (事项编号)")
    co.add_argument("--department", default=None, help="the department, when several answered the item")
    co.add_argument("--reason", required=True, help="why (更正原因): published with the correction")
    co.add_argument(
        "--set",
        action="append",
        metavar="COLUMN=VALUE",
        help="a column's new value, as a results file writes it (e.g. result_codes=E, review_state=审核通过, "
        "follow_up_completed_on=2026-10-09); repeat for several",
    )
    co.add_argument("--withdraw", action="store_true", help="withdraw the result (撤回) instead")
    co.add_argument("--by", default=None, help="who corrects (更正人; default: the OS user and host)")
    co.add_argument("--as-of", default=None, help="publication day (YYYY-MM-DD; default: today in China)")
    co.add_argument("--out", required=True, help="the output root the plan was published under")
    co.set_defaults(func=_correct)

    rd = sub.add_parser(
        "redraw", help="replace one member of a published team by a second random draw (递补), logged and republished"
    )
    rd.add_argument("plan_id")
    rd.add_argument("--joint-task", required=True, help="the joint task (联合任务编号)")
    rd.add_argument("--inspector", required=True, help="the member to replace (人员编号)")
    rd.add_argument(
        "--reason", required=True, help="recusal (回避) | unavailable (无法到岗) | other (其他), in either language"
    )
    rd.add_argument("--note", default=None, help="a free-text note kept with the redraw (说明)")
    rd.add_argument("--out", required=True, help="the output root the plan was published under")
    rd.set_defaults(func=_redraw)

    au = sub.add_parser("audit", help="a plan's draw attempts and a check of their hash chain (审计日志)")
    au.add_argument("plan_id")
    au.add_argument("--out", required=True, help="the output root holding warehouse.duckdb")
    au.set_defaults(func=_audit)

    v = sub.add_parser("verify", help="recompute a draw from its published files and report any difference")
    v.add_argument(
        "folder",
        help="a published bundle (published/<plan_id>, or a folder holding its public/ and audit/ parts), "
        "or a run folder (out/runs/<run_id>)",
    )
    v.add_argument(
        "--seal", metavar="HASH", help="the seal (封存值) that was announced: the bundle must be the one it seals"
    )
    v.add_argument("--results-seal", metavar="HASH", help="the results' seal that was announced")
    v.add_argument(
        "--entity",
        metavar="USCC",
        help="check one entity (核验): per task, eligible or not and why, its score, "
        "its stratum's cut-off, drawn or not",
    )
    v.set_defaults(func=_verify)

    args = parser.parse_args(argv)
    _interrupt_on_sigterm()
    # the script (cli/__init__.py) has started the temporary server; meanwhile the files ingest will read are hashed
    if argv is None and args.command == "run":  # (but those known)
        from jointdraw.transforms.storage.hashed_ahead import hash_ahead, load_known
        from jointdraw.transforms.storage.layout import OutputRoot
        from jointdraw.transforms.storage.registry_files import scan_inbox

        if not args.no_reuse:
            load_known(OutputRoot(Path(args.out)).known_digests)
        with contextlib.suppress(FileNotFoundError):  # no inbox: ingest says so
            hash_ahead([f.path for f in scan_inbox(Path(args.inbox)).files])
    if args.command in FLOW_COMMANDS and (problem := _unreachable_prefect_api()):
        print(f"jointdraw {args.command}: {problem}", file=sys.stderr)
        return 1
    try:
        with _prefect_api(args):
            if argv is None:
                _collect_from_here(args)
            return args.func(args)
    except UserFacingError as e:
        print(f"jointdraw {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # SIGINT, or SIGTERM (a scheduler, a container stop) turned into it
        print(f"jointdraw {args.command}: interrupted; {_how_to_resume(args)}", file=sys.stderr)
        return 130
    except Exception as e:
        if not _by_a_signal(e):
            raise  # a defect: its traceback is what to report
        print(f"jointdraw {args.command}: interrupted; {_how_to_resume(args)}", file=sys.stderr)
        return 130


def _collect_from_here(args: argparse.Namespace) -> None:
    """The `jointdraw` command loads its modules with the collector of reference cycles off (cli/__init__.py):
    Prefect, Great Expectations, pandas and polars make a million objects as they load, and the collector went
    over all of them six times, 1.1 of the 6 CPU s the command took to load a run's modules (`gc.disable()`
    or not before `import jointdraw.cli.commands, jointdraw.flows.plan_run, jointdraw.flows.validate`, eight
    runs each: 5.0 s against 6.1 s, medians). Once the flow's modules are loaded (a temporary server's command
    has loaded them while the server started; with a server configured, here), what they made is frozen out of
    the collector's later passes and it is on again for the run."""
    import gc
    import importlib

    for module in _flow_modules(args):
        importlib.import_module(module)
    gc.freeze()
    gc.enable()


def _flow_modules(args: argparse.Namespace) -> list[str]:
    """The modules a flow command runs: its flow's, and the contract's (Great Expectations) when it validates."""
    if args.command not in FLOW_COMMANDS:
        return []
    return [FLOW_MODULES[args.command], *(["jointdraw.flows.validate"] if _validates(args) else [])]


def _skip_final_collection() -> None:
    """At exit, after everything else (the last exit handler), the command's objects are frozen out of
    the interpreter's final garbage collection: with Great Expectations, Prefect, polars and DuckDB
    loaded it took 1–2 s after a run had finished and said so, for nothing (the process ends; files are
    closed by then, by the code that wrote them)."""
    import atexit
    import gc

    atexit.register(gc.freeze)  # registered first, so it runs last


FLOW_MODULES = {
    "run": "jointdraw.flows.plan_run",
    "resume": "jointdraw.flows.plan_run",
    "results": "jointdraw.flows.results",  # with the contract (Great Expectations)
    "redraw": "jointdraw.flows.redraw",
    "correct": "jointdraw.flows.correct",  # with the contract
}


def _prefect_api(args: argparse.Namespace):
    """For a flow command: the Prefect API it runs against; without PREFECT_API_URL, a temporary server
    started as the command began (cli/prefect_server.py), and while it comes up the command loads its
    flow and, when the run validates, Great Expectations (3 s)."""
    from contextlib import nullcontext

    if args.command not in FLOW_COMMANDS:
        return nullcontext()
    from jointdraw.cli.prefect_server import temporary_api

    _quiet_temporary_server_shutdown()
    return temporary_api(_flow_modules(args))


def _validates(args: argparse.Namespace) -> bool:
    """Whether a plan run (`run`, `resume`) will run the validate stage."""
    validate = STAGES.index("validate")
    if args.command == "run":
        last = STAGES.index(args.stop_after) if args.stop_after else len(STAGES) - 1
        return STAGES.index(args.start_at) <= validate <= last
    if args.command == "resume":
        from jointdraw.transforms.rerun import first_unfinished_stage
        from jointdraw.transforms.storage.layout import OutputRoot

        stage = first_unfinished_stage(OutputRoot(Path(args.out)).run(args.run_id))
        return stage is not None and STAGES.index(stage) <= validate
    return False


def _unreachable_prefect_api() -> str | None:
    """With PREFECT_API_URL set, the API must answer before a run starts (else Prefect ends in
    three tracebacks): one line saying where it looked and what to do. An answer of any status
    (even 401 without credentials) means it is there."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return None  # a temporary server is started for the run
    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=10)
    except httpx.HTTPError as e:
        return (
            f"cannot reach the Prefect API at {url} ({type(e).__name__}: {e or 'no answer'}): start the server "
            "(`prefect server start`), fix PREFECT_API_URL, or unset it to run with a temporary server"
        )
    return None


def _interrupt_on_sigterm() -> None:
    """SIGTERM ends a run the way Ctrl-C does: the flow is marked crashed, the plan's lock released,
    the temporary Prefect server stopped (left running, it stayed listening: issue 18), no stage
    recorded as finished that did not finish."""
    import signal
    import threading

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def _how_to_resume(args: argparse.Namespace) -> str:
    out = getattr(args, "out", None)
    if args.command not in ("run", "resume") or not out:
        return "nothing was published that was not whole"
    from jointdraw.transforms.storage.layout import OutputRoot

    runs = OutputRoot(Path(out)).started_runs()
    run_id = getattr(args, "run_id", None) or (runs[-1].name if runs else "RUN_ID")
    return f"the stages that finished are kept: continue with `jointdraw resume {run_id} --out {out}`"
