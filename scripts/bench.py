"""Benchmark: generate a city of N object rows (cached by its arguments), run the plan flow
on it and print where the seconds and the memory go; write the figures to JSON.

    .venv/bin/python scripts/bench.py --objects 8000000 --whole-only [--repeat 2] [--quarterly]
    .venv/bin/python scripts/bench.py --growth 1000000 4000000 8000000 16000000
    .venv/bin/python scripts/bench.py --objects 8000000 [--whole [--dask]] [--stress]   (one process per stage)
    .venv/bin/python scripts/bench.py --objects 8000000 --whole-only --dirty   (errors planted, as real exports have)

`--whole-only`: the whole flow (ingest → publish) in one process, `--repeat` times (default 2, to
show the spread), each computing everything (`--no-reuse`); its stages, its wall time, its fixed
costs (wall − stages: the process, imports and Prefect's temporary server), its CPU seconds (the machine's
while it ran, and the command's as `/usr/bin/time` counts them, without publish's writers: a flow of 40 s on two
cores has at most 80), its peak memory (and the process's resident memory sampled while each stage ran: which
stage sets the peak), how many of the machine's cores were busy while each stage ran (a stage well below them
leaves cores idle), and its ratio to the floor measured in the same run (one read of every input file + one SHA-256 per
eligible pair). `--quarterly`: then the city's quarterly plan in the same output root on a copy
of the inbox where one department's file changed (an inspectors file, then an objects file),
reusing what did not change.
Every bench also times one core (a one-thread Python loop, `LOOP`) before and after its runs and prints it: this
VM's speed drifts by a third from hour to hour, and figures of different hours compare only beside it.
`--growth`: the whole flow once per size, time and peak per size. Without `--whole-only` each
stage runs in its own process so its peak memory is its own (each process also pays Prefect's
temporary server, which the stage's own seconds do not include). Every command runs in a child process as the
`jointdraw` script runs it, with what it does before the flow.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from jointdraw.transforms.documents.manifest import file_digest
from jointdraw.transforms.fusion_figures import figure_text
from jointdraw.transforms.stage_records import UpdatedFrom
from jointdraw.transforms.storage.bundle import bundle_file
from jointdraw.transforms.storage.runfolder import STAGES

ROOT = Path(__file__).resolve().parents[1]

# Runs one jointdraw command in this child process as the `jointdraw` script does (main() reading sys.argv: what a
# user's command does before the flow — the temporary server started before Prefect is imported, the inbox hashed
# meanwhile — is timed too) and prints its peak RSS (KiB) and its CPU time last (its own and that of the child
# processes it waited for, as `/usr/bin/time` counts it: the temporary server's, not publish's writers', which are
# kept warm and end with the process, unwaited: the machine's CPU time sampled meanwhile counts them).
CHILD = """
import json, resource, sys
from jointdraw.cli import main
sys.argv[0] = "jointdraw"
code = main()
own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"exit": code, "peak_kib": own.ru_maxrss, "children_peak_kib": children.ru_maxrss,
                  "cpu_seconds": own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime}))
"""


class Sample(NamedTuple):
    """What the bench samples every SAMPLE_EVERY seconds while a command runs."""

    time: float  # wall clock
    gib: float  # the command's resident memory
    busy: int  # the machine's CPU time so far, busy and in all (/proc/stat, in clock ticks of all cores)
    total: int


def _step(args: list[str], samples: list[Sample] | None = None) -> dict:
    """One jointdraw command in a child process: its seconds, its CPU seconds (as `/usr/bin/time` counts them: see
    CHILD) and its peak (and its children's); with `samples`,
    its resident memory and the machine's CPU time sampled every SAMPLE_EVERY seconds while it ran are appended
    there."""
    samples = [] if samples is None else samples
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen([sys.executable, "-c", CHILD, *args], stdout=out, stderr=err, text=True, cwd=ROOT)
        while child.poll() is None:
            if (gib := _resident_gib(child.pid)) is not None:
                samples.append(Sample(time.time(), gib, *_machine_ticks()))
            time.sleep(SAMPLE_EVERY)
        seconds = time.perf_counter() - started
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        sys.exit(f"bench: `jointdraw {' '.join(args)}` failed:\n{stderr[-3000:]}")
    last = json.loads(stdout.strip().splitlines()[-1])
    return {
        "seconds": round(seconds, 1),
        "cpu_seconds": round(last["cpu_seconds"], 1),
        "peak_gib": round(last["peak_kib"] / 2**20, 2),
        "largest_child_peak_gib": round(last["children_peak_kib"] / 2**20, 2),
    }


SAMPLE_EVERY = 0.25  # seconds between two samples of a child's resident memory and of the machine's CPU time


def _resident_gib(pid: int) -> float | None:
    """A process's resident memory now (VmRSS), or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next((int(line.split()[1]) / 2**20 for line in status.splitlines() if line.startswith("VmRSS:")), None)


def _machine_ticks() -> tuple[int, int]:
    """The machine's CPU time since boot, (busy, all), in clock ticks summed over its cores (/proc/stat's first
    line: user nice system idle iowait irq softirq steal …; idle and iowait are not busy)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


def _machine_cpu_seconds(samples: list[Sample]) -> float:
    """The machine's busy CPU seconds, all cores, from the first sample to the last (while a command ran)."""
    return round((samples[-1].busy - samples[0].busy) / os.sysconf("SC_CLK_TCK"), 1) if samples else 0.0


def _stage_spans(run_dir: Path) -> dict[str, tuple[float, float]]:
    """Each stage's span in wall-clock time: from the end of the stage before (the run's start, for the first) to
    when it wrote its stage.json."""
    spans, since = {}, float("-inf")
    for n, stage in enumerate(STAGES, start=1):
        until = (run_dir / f"{n:02d}_{stage}" / "stage.json").stat().st_mtime
        spans[stage] = (since, until)
        since = until
    return spans


def _stage_peaks(samples: list[Sample], run_dir: Path) -> dict[str, float]:
    """The flow process's largest sampled resident memory while each stage ran (a stage shorter than a sample's
    interval: the last sample before its end)."""
    peaks = {}
    for stage, (since, until) in _stage_spans(run_dir).items():
        during = [s.gib for s in samples if since <= s.time <= until]
        peaks[stage] = round(max(during or [s.gib for s in samples if s.time <= until][-1:], default=0.0), 2)
    return peaks


def _stage_cores(samples: list[Sample], run_dir: Path) -> dict[str, float]:
    """How many of the machine's cores were busy, on average, while each stage ran (the samples around its span;
    the whole machine's: the flow, its server and writers, and anything else running): a stage well below
    the cores there are leaves some of them idle."""
    cores = {}
    for stage, (since, until) in _stage_spans(run_dir).items():
        before = [s for s in samples if s.time <= since][-1:] or samples[:1]
        after = [s for s in samples if s.time >= until][:1] or samples[-1:]
        busy, total = after[0].busy - before[0].busy, after[0].total - before[0].total
        cores[stage] = round(busy / total * (os.cpu_count() or 1), 2) if total > 0 else 0.0
    return cores


def _draw_floor(run_dir: Path) -> dict:
    """One SHA-256 over every eligible pair of the run's plan, in DuckDB: the cost no draw avoids. The pairs are
    found first (`keep_eligible_pairs` keeps them in a temp table); only the hashing is timed."""
    import duckdb

    from jointdraw.transforms.draw import keep_eligible_pairs
    from jointdraw.transforms.plan import read_plan
    from jointdraw.transforms.storage.runfolder import directory_parts, parquet_paths

    commit = run_dir / "04_commit"
    plan = read_plan(commit / "plan.yaml")
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    con.read_parquet(parquet_paths(directory_parts(commit))).create_view("directory")
    con.read_parquet(str(commit / "exclusions.parquet")).create_view("exclusions")
    pairs = int(keep_eligible_pairs(con, plan)["n"].sum())
    started = time.perf_counter()
    con.sql("select count(sha256('seed|' || task_id || '|' || uscc)) from eligible_pairs").fetchall()
    return {"eligible_pairs": pairs, "sha256_seconds": round(time.perf_counter() - started, 2)}


def _input_scan_floor(city: Path) -> dict:
    """One read of every input file, counting rows: DuckDB for Parquet and UTF-8 CSV, polars for
    GBK CSV (DuckDB cannot decode it offline) and XLSX. What no pipeline can avoid."""
    import duckdb
    import polars as pl

    from jointdraw.transforms.storage.registry_files import scan_inbox, sniff_encoding

    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    started, rows, files = time.perf_counter(), 0, 0
    for f in scan_inbox(city / "inbox").files:
        files += 1
        if f.path.suffix == ".parquet":
            rows += con.execute("select count(*) from read_parquet(?)", [str(f.path)]).fetchall()[0][0]
        elif f.path.suffix == ".xlsx":
            rows += pl.read_excel(f.path, infer_schema_length=0).height
        elif sniff_encoding(f.path) == "gb18030":
            text = f.path.read_bytes().decode("gb18030")  # polars does not decode GBK: as the ingest stage does
            rows += pl.read_csv(io.BytesIO(text.encode("utf-8")), infer_schema=False, truncate_ragged_lines=True).height
        else:
            rows += con.execute(
                # RFC 4180 quoting, as ingest reads it: the sniffer takes a code guarded by a leading ' for a quote
                "select count(*) from read_csv(?, all_varchar = true, null_padding = true, strict_mode = false, "
                "quote = '\"', escape = '\"')",
                [str(f.path)],
            ).fetchall()[0][0]
    return {"files": files, "rows": rows, "seconds": round(time.perf_counter() - started, 2)}


def _fresh_root(out: Path) -> Path:
    """An output root emptied: an earlier bench's runs would be another plan's history there (its draws exclude
    objects from this run's), and the runs compared must start from the same history."""
    shutil.rmtree(out, ignore_errors=True)
    return out


def _whole_flow(
    plan: Path, inbox: Path, out: Path, dask: str | None = None, run_id: str = "whole", reuse: bool = False
) -> dict:
    """The whole flow (ingest → publish) in one process, as `jointdraw run` runs it (with
    `--dask`, its ingest and validation tasks on a Dask cluster); computing everything unless `reuse`."""
    shutil.rmtree(out / "runs" / run_id, ignore_errors=True)
    samples: list[Sample] = []
    step = _step(
        [
            "run",
            str(plan),
            "--inbox",
            str(inbox),
            "--out",
            str(out),
            "--run-id",
            run_id,
            *(["--dask", dask] if dask else []),
            *([] if reuse else ["--no-reuse"]),
        ],
        samples,
    )
    records = {
        s: json.loads((out / "runs" / run_id / f"{n:02d}_{s}" / "stage.json").read_text())
        for n, s in enumerate(STAGES, start=1)
    }
    stages = {s: r["seconds"] for s, r in records.items()}
    total = round(sum(stages.values()), 1)
    return {
        **step,
        "stage_peak_gib": _stage_peaks(samples, out / "runs" / run_id),
        "stage_cores": _stage_cores(samples, out / "runs" / run_id),
        "machine_cpu_seconds": _machine_cpu_seconds(samples),
        "stage_seconds": stages,
        "stages_total": total,
        "fixed_seconds": round(step["seconds"] - total, 1),
        "reused": {s: _reused(r) for s, r in records.items() if _reused(r)},
        "merge_updated": (
            UpdatedFrom.model_validate(records["merge"]["updated_from"]).text()
            if records["merge"].get("updated_from")
            else None
        ),
    }


def _reused(record: dict) -> int:
    """How many of a stage's files (or the stage itself) its record says were reused from an earlier run."""
    files = record["files"] if isinstance(record.get("files"), list) else []
    return sum(1 for f in files if f.get("reused_from")) + (1 if record.get("reused_from") else 0)


LOOP = "sum(i * i for i in range(20_000_000))"  # one core's speed now: this VM's drifts by a third from hour to hour


def _one_thread_loop() -> float:
    """Seconds of LOOP in a fresh interpreter (its start not counted): how quick the machine is now, so that figures
    measured at different hours can be told apart from a change of the code."""
    timed = f"import time; t = time.perf_counter(); {LOOP}; print(time.perf_counter() - t)"
    done = subprocess.run([sys.executable, "-c", timed], check=True, capture_output=True, text=True)
    return round(float(done.stdout), 2)


def _floor(city: Path, run_dir: Path) -> dict:
    """What no pipeline avoids, measured now: one read of every input file and one SHA-256 per eligible pair."""
    scan, draw = _input_scan_floor(city), _draw_floor(run_dir)
    return {"input_scan": scan, "draw": draw, "seconds": round(scan["seconds"] + draw["sha256_seconds"], 2)}


def _whole_runs(plan: Path, city: Path, out: Path, repeat: int) -> dict:
    """The whole flow `repeat` times, computing everything each time, each in an emptied output root (a run after
    the first would find the plan's directory in the warehouse, stored already), and the floor measured between
    the first two."""
    runs = [_whole_flow(plan, city / "inbox", out)]
    floor = _floor(city, out / "runs" / "whole")
    runs += [_whole_flow(plan, city / "inbox", _fresh_root(out)) for _ in range(repeat - 1)]
    return {"runs": runs, "floor": floor}


GOAL_SECONDS = 40  # issue 23: the whole flow at 8M objects in 40 s wall


def _print_whole(whole: dict) -> None:
    """Per stage and in all, each run's seconds; the fixed costs, the peak, the ratio to the floor."""
    runs, floor = whole["runs"], whole["floor"]
    print(f"  whole flow in one process (ingest → publish), {len(runs)} run(s), everything computed:")
    print(f"  {'':<22}" + "".join(f"{'run ' + str(i + 1):>10}" for i in range(len(runs))))
    for stage in STAGES:
        print(f"  {stage:<22}" + "".join(f"{r['stage_seconds'][stage]:>10.1f}" for r in runs))
    print("  the process's peak GiB while each stage ran (sampled):")
    for stage in STAGES:
        print(f"  {stage:<22}" + "".join(f"{r['stage_peak_gib'][stage]:>10.2f}" for r in runs))
    print(f"  cores busy while each stage ran (mean, of the machine's {os.cpu_count()}):")
    for stage in STAGES:
        print(f"  {stage:<22}" + "".join(f"{r['stage_cores'][stage]:>10.2f}" for r in runs))
    rows = (
        ("stages", "stages_total", "{:>10.1f}"),
        ("fixed (process+server)", "fixed_seconds", "{:>10.1f}"),
        ("wall", "seconds", "{:>10.1f}"),
        ("CPU s, the machine", "machine_cpu_seconds", "{:>10.1f}"),
        ("CPU s, /usr/bin/time", "cpu_seconds", "{:>10.1f}"),
        ("peak GiB", "peak_gib", "{:>10.2f}"),
    )
    for label, key, fmt in rows:
        print(f"  {label:<22}" + "".join(fmt.format(r[key]) for r in runs))
    walls = [r["seconds"] for r in runs]
    scan, draw = floor["input_scan"], floor["draw"]
    print(
        f"  floor: one read of every input file ({scan['files']} files, {scan['rows']:,} rows) {scan['seconds']:.1f} s"
        f" + one SHA-256 per eligible pair ({draw['eligible_pairs']:,}) {draw['sha256_seconds']:.1f} s"
        f" = {floor['seconds']:.1f} s"
    )
    print(
        f"  whole flow / floor: {min(walls) / floor['seconds']:.1f}x (fastest run; goal ≤ 8x), "
        f"spread of the wall time {max(walls) - min(walls):.1f} s ({(max(walls) / min(walls) - 1) * 100:.0f}%)"
    )
    fastest, cores = min(runs, key=lambda r: r["seconds"]), os.cpu_count() or 1
    print(
        f"  CPU of the fastest run: {fastest['machine_cpu_seconds']:.1f} s of the machine's while it ran "
        f"({fastest['cpu_seconds']:.1f} s as /usr/bin/time counts the command's, without publish's writers); "
        f"{GOAL_SECONDS} s (the goal) on {cores} cores give at most {GOAL_SECONDS * cores}"
    )


CHANGED = "WAT"  # the department whose file the quarterly inboxes change


def _changed_inbox(city: Path, inboxes: Path, kind: str, department: str = CHANGED) -> Path:
    """A copy of the city's inbox (hard links) where one department's file of `kind` lost its last row:
    a department that sent a new file, the others unchanged."""
    inbox = inboxes / kind
    shutil.rmtree(inbox, ignore_errors=True)
    shutil.copytree(city / "inbox", inbox, copy_function=os.link)
    changed = inbox / department / f"{kind}.csv"
    data = changed.read_bytes()
    changed.unlink()  # a new file, not the linked one: the city's own stays as it was
    changed.write_bytes(data.rstrip(b"\r\n").rsplit(b"\n", 1)[0] + b"\n")
    return inbox


def _quarterly_inboxes(city: Path, inboxes: Path) -> dict[str, Path]:
    """The quarterly plan's inboxes: one department's inspectors file changed, and its objects file. Made before
    the annual runs, so that a department's unchanged file is, when the quarterly run reads it, as it was when
    the annual run read it — the same inode, untouched since — as between two real runs (a link made later would
    give the city's files a new change time, and the quarterly run would hash them all again:
    transforms/storage/hashed_ahead.py). The changed file has settled by then too: a file written less than
    hashed_ahead.RACY_SECONDS before it is hashed ahead is hashed again in ingest, not beside the server's start."""
    return {kind: _changed_inbox(city, inboxes, kind) for kind in ("inspectors", "objects")}


def _quarterly(city: Path, out: Path, inboxes: dict[str, Path]) -> dict:
    """The city's quarterly plan in the output root of the annual runs, twice: one department's inspectors
    file changed (the merge is reused too), then its objects file (the merge is redone)."""
    plan = next((city / "plans").glob("*-Q*.yaml"))
    runs = {}
    for kind, inbox in inboxes.items():
        run = _whole_flow(plan, inbox, out, run_id=f"quarterly-{kind}", reuse=True)
        runs[kind] = run
        print(
            f"  quarterly plan {plan.stem}, one department's {kind} file changed, reusing the rest: "
            f"{run['seconds']:.1f} s wall, {run['stages_total']:.1f} s in stages, peak {run['peak_gib']:.2f} GiB; "
            + ", ".join(f"{s} {v:.1f}" for s, v in run["stage_seconds"].items())
        )
        print("    reused: " + (", ".join(f"{s} {n}" for s, n in run["reused"].items()) or "nothing"))
        if run["merge_updated"]:
            print(f"    merge {run['merge_updated']}")
        print("    cores busy: " + ", ".join(f"{s} {c:.1f}" for s, c in run["stage_cores"].items()))
    return runs


def _bundle_differences(first: Path, second: Path) -> list[str]:
    """The files of two published bundles of the same plan that differ (manifest: but its
    volatile fields, README "Publish")."""
    a, b = (json.loads(bundle_file(x, "manifest.json").read_text(encoding="utf-8")) for x in (first, second))
    volatile = ("run_id", "timeline", "documents", "audit")
    differences = (
        []
        if {k: v for k, v in a.items() if k not in volatile} == {k: v for k, v in b.items() if k not in volatile}
        else ["manifest.json"]
    )
    return differences + [
        f["path"] for f in a["files"] if file_digest(first, f["path"]) != file_digest(second, f["path"])
    ]


def _stress(plan: Path, city: Path, out: Path, run_dir: Path) -> dict:
    """The city plan with every scope removed and ratios cut to at most 0.05% (wide scopes, tiny
    ratios: over 100M eligible pairs at 8M), drawn on the same merged directory (own run folder)."""
    import yaml

    data = yaml.safe_load(plan.read_text(encoding="utf-8"))
    data.pop("policy_bands", None)  # the cut ratios are below the city's bands by design
    for task in data["tasks"]:
        task.pop("scope", None)
        if task.get("ratio"):  # a class is a ratio or {ratio, min_count, max_count}: the cut ratio alone, as always
            task["ratio"] = {c: min(r["ratio"] if isinstance(r, dict) else r, 0.0005) for c, r in task["ratio"].items()}
    data["plan_id"] = f"{data['plan_id']}-STRESS"
    stress_plan = out / "stress-plan.yaml"
    stress_plan.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    stress_run = out / "runs" / "stress"
    shutil.rmtree(stress_run, ignore_errors=True)
    for name in ("01_ingest", "02_validate", "03_merge"):
        shutil.copytree(run_dir / name, stress_run / name)
    shutil.copy(run_dir / "run.json", stress_run / "run.json")
    base = ["run", str(stress_plan), "--inbox", str(city / "inbox"), "--out", str(out), "--run-id", "stress"]
    _step([*base, "--start-at", "commit", "--stop-after", "commit"])
    step = _step([*base, "--start-at", "draw"])
    record = json.loads((stress_run / "05_draw" / "stage.json").read_text())
    return {
        **step,
        "stage_seconds": record["seconds"],
        "eligible_pairs": record["eligible_pairs"],
        "drawn": record["drawn"],
    }


def _print_assignment(run_dir: Path, figures: dict) -> None:
    """Fuse + assign seconds, and the workload spread per (department, district) pool and overall."""
    fuse = json.loads((run_dir / "06_fuse" / "stage.json").read_text())
    assign = json.loads((run_dir / "07_assign" / "stage.json").read_text())
    w = assign["workload"]
    figures["assignment"] = {
        "fuse_assign_seconds": round(fuse["seconds"] + assign["seconds"], 2),
        **fuse["figures"],
        **{
            k: assign[k]
            for k in (
                "assigned",
                "unassigned",
                "unassigned_by_reason",
                "inspectors_available",
                "inspectors_sent",
                "rebalancing_moves",
            )
        },
        "workload": {k: v for k, v in w.items() if k != "by_pool"},
    }
    print(
        f"  fuse + assign (with scheduling): {fuse['seconds'] + assign['seconds']:.1f} s of stage time; "
        f"{fuse['figures']['drawn_total']:,} draws → {fuse['figures']['joint_tasks']:,} joint tasks "
        f"(reduction {figure_text('reduction_rate', fuse['figures']['reduction_rate'])}); "
        f"staffed {assign['assigned']:,}, "
        f"unassigned {assign['unassigned']:,} {assign['unassigned_by_reason'] or ''}; "
        f"{assign['inspectors_sent']:,} of {assign['inspectors_available']:,} available "
        f"inspectors sent; {assign['rebalancing_moves']:,} rebalancing moves"
    )
    spreads = sorted(
        (p for p in w["by_pool"] if p["tasks"]), key=lambda p: (-p["spread"], p["department"], p["district_code"])
    )
    histogram: dict[int, int] = {}
    for p in spreads:
        histogram[p["spread"]] = histogram.get(p["spread"], 0) + 1
    print(
        f"  workload: tasks per inspector overall {w['tasks_per_inspector']}; busiest day {w['busiest_day']} visits; "
        f"{w['pools_spread_at_most_1']} of {w['pools_with_tasks']} pools with spread ≤ 1; "
        "pools by spread (max − min tasks): " + ", ".join(f"{k}: {n}" for k, n in sorted(histogram.items()))
    )
    print(f"  {'pool':<12} {'inspectors':>10} {'tasks':>7} {'min':>5} {'max':>5} {'spread':>6}   (the ten widest)")
    for p in spreads[:10]:
        print(
            f"  {p['department'] + ' ' + p['district_code']:<12} {p['inspectors']:>10,} {p['tasks']:>7,} "
            f"{p['min']:>5} {p['max']:>5} {p['spread']:>6}"
        )


def _dask_run(plan: Path, city: Path, out: Path, whole: dict, figures: dict) -> None:
    """The whole flow again on a local Dask cluster (two single-threaded worker processes, as `--dask local`
    starts, here started by the bench so its scheduler can be asked afterwards): its figures, the peak of every
    process, the tasks that ran on the workers and the bytes their results brought back, and its bundle compared
    with the default run's."""
    from distributed import Client, LocalCluster

    from jointdraw.flows.fanout import LOCAL_CLUSTER

    dask_out = _fresh_root(out.parent / f"{out.name}-dask")
    quiet = {"PREFECT_LOGGING_LEVEL": "WARNING"}  # the workers' task runs: the flow process logs the stages
    with LocalCluster(**LOCAL_CLUSTER, env=quiet) as cluster, Client(cluster) as client:
        client.register_plugin(_result_bytes())
        figures["whole_dask"] = on_dask = _whole_flow(plan, city / "inbox", dask_out, dask=cluster.scheduler_address)
        on_dask["worker_peaks_gib"] = sorted(client.run(_peak_gib).values())
        done: dict[str, dict[str, int]] = {}
        for counts in client.run(_on_workers).values():
            for name, f in counts.items():
                total = done.setdefault(name, {"tasks": 0, "result_bytes": 0})
                total["tasks"] += f["tasks"]
                total["result_bytes"] += f["result_bytes"]
        on_dask["tasks_on_workers"] = dict(sorted(done.items()))
    on_dask["bundle_differences"] = differences = _bundle_differences(
        out / "published" / plan.stem, dask_out / "published" / plan.stem
    )
    print(
        f"  whole flow on a local Dask cluster (2 worker processes, 1 thread each): {on_dask['seconds']:.1f} s wall "
        f"(default runner {whole['seconds']:.1f} s); peak {on_dask['peak_gib']:.2f} GiB in the flow process, "
        f"workers {' / '.join(f'{g:.2f}' for g in on_dask['worker_peaks_gib'])} GiB"
    )
    print("    " + ", ".join(f"{s} {v:.1f}" for s, v in on_dask["stage_seconds"].items()))
    print("    tasks on the workers, and the bytes of their results (what came back to the flow process):")
    for name, f in on_dask["tasks_on_workers"].items():
        print(f"      {name:<24} {f['tasks']:>4} tasks  {f['result_bytes']:>14,} bytes")
    print(
        "    published bundle vs the default run's: "
        + (
            "byte-identical (every listed file; manifest equal but run id, timeline, documents, audit)"
            if not differences
            else f"DIFFERENT: {differences}"
        )
    )


def _peak_gib() -> float:
    """This process's peak resident memory (Linux: VmHWM), in GiB: run on each worker."""
    status = Path("/proc/self/status").read_text()
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return round(kib / 2**20, 2)


def _result_bytes():
    """A worker plugin: task prefix → tasks finished on this worker and the pickled bytes of their results (what
    the flow process fetches), in its `done` (Dask's own estimate of a result's size sees only Prefect's state)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class ResultBytes(WorkerPlugin):
        name = "result-bytes"

        def setup(self, worker) -> None:
            self.worker, self.done = worker, {}

        def transition(self, key, start, finish, *args, **kwargs) -> None:
            if finish == "memory" and key in self.worker.data:
                import pickle

                from dask.utils import key_split

                done = self.done.setdefault(key_split(key), {"tasks": 0, "result_bytes": 0})
                done["tasks"] += 1
                done["result_bytes"] += len(pickle.dumps(self.worker.data[key], protocol=5))

    return ResultBytes()


def _on_workers(dask_worker) -> dict:
    """The plugin's counts on one worker."""
    return dask_worker.plugins["result-bytes"].done


def _whole_only(args: argparse.Namespace, plan: Path, city: Path, out: Path, figures: dict) -> None:
    """The whole flow `--repeat` times with the floor (with --quarterly the quarterly rerun, with --dask the
    same on a local Dask cluster), without the per-stage runs."""
    print(f"city: {city} ({args.objects:,} object rows requested)")
    inboxes = _quarterly_inboxes(city, out.parent / f"{out.name}-quarterly-inboxes") if args.quarterly else {}
    figures["whole"] = whole = _whole_runs(plan, city, out, args.repeat)
    _print_whole(whole)
    if args.quarterly:
        figures["quarterly"] = _quarterly(city, out, inboxes)
    if args.dask:
        _dask_run(plan, city, out, whole["runs"][0], figures)


def _growth(args: argparse.Namespace, figures: dict) -> None:
    """The whole flow once per size (each computing everything): time and peak per size, and time per
    million object rows, so growth faster than linear shows."""
    figures["growth"] = rows = []
    for objects in args.growth:
        city = _city(args.work, objects, args.seed, figures, args.dirty)
        out = _fresh_root(args.work / "out" / f"bench-{objects}")
        run = _whole_flow(next((city / "plans").glob("*-ANNUAL.yaml")), city / "inbox", out)
        rows.append({"objects": objects, **run})
        print(
            f"  {objects:>12,} object rows: {run['seconds']:>7.1f} s wall ({run['stages_total']:.1f} in stages, "
            f"{run['fixed_seconds']:.1f} fixed), peak {run['peak_gib']:.2f} GiB"
        )
    print(f"  {'object rows':>12} {'wall s':>8} {'stages s':>9} {'fixed s':>8} {'peak GiB':>9} {'stages s/M':>11}")
    for r in rows:
        per_million = r["stages_total"] / (r["objects"] / 1e6)
        print(
            f"  {r['objects']:>12,} {r['seconds']:>8.1f} {r['stages_total']:>9.1f} {r['fixed_seconds']:>8.1f} "
            f"{r['peak_gib']:>9.2f} {per_million:>11.2f}"
        )


def _generator_sha256() -> str:
    """What the generated city depends on: the generator's and the plan model's sources."""
    sources = sorted((ROOT / "transforms" / "samplecity").glob("*.py")) + [
        ROOT / "transforms" / "plan.py",
        ROOT / "transforms" / "registry.py",
    ]
    return hashlib.sha256(b"".join(f.read_bytes() for f in sources)).hexdigest()


def _city(work: Path, objects: int, seed: int, figures: dict, dirty: bool = False) -> Path:
    """The generated city of that size (made again when the generator changed since it was made); `dirty`: with
    errors planted in a share of its objects and inspectors files' rows (`jointdraw generate --dirty`), as departments'
    exports have."""
    city = work / "data" / "generated" / f"city-{objects}-{seed}{'-dirty' if dirty else ''}"
    stamp = city / ".generator-sha256"
    if not (city / "plans").exists() or not stamp.exists() or stamp.read_text() != _generator_sha256():
        shutil.rmtree(city, ignore_errors=True)
        figures["steps"][f"generate {objects}"] = _step(
            ["generate", str(city), "--objects", str(objects), "--seed", str(seed), *(["--dirty"] if dirty else [])]
        )
        stamp.write_text(_generator_sha256())
    return city


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--objects", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=2021)
    p.add_argument(
        "--dirty",
        action="store_true",
        help="a city with errors planted in 1%% of its objects and inspectors files' rows (`jointdraw generate "
        "--dirty`): validate then quarantines them and writes the accepted rows, as it does for real exports",
    )
    p.add_argument("--json", type=Path, default=ROOT / "out" / "bench.json")
    p.add_argument(
        "--work",
        type=Path,
        default=ROOT,
        help="where the generated cities (WORK/data/generated/) and the runs (WORK/out/) go; default the checkout",
    )
    p.add_argument(
        "--whole",
        action="store_true",
        help="after the per-stage processes, also the whole flow in one process and the floor",
    )
    p.add_argument(
        "--whole-only",
        action="store_true",
        help="skip the per-stage processes: the whole flow (--repeat times) and the floor",
    )
    p.add_argument("--repeat", type=int, default=2, help="how many times the whole flow runs (default 2: the spread)")
    p.add_argument(
        "--quarterly",
        action="store_true",
        help="after the whole flow, the quarterly plan on the inbox with one department's objects file changed, "
        "reusing what did not change",
    )
    p.add_argument(
        "--growth",
        type=int,
        nargs="+",
        metavar="N",
        help="the whole flow once on each city of N object rows (e.g. 1000000 4000000 8000000 16000000)",
    )
    p.add_argument(
        "--dask",
        action="store_true",
        help="with --whole: run the whole flow again on a local Dask cluster (two single-threaded worker processes, "
        "as `--dask local`), print every process's peak, the tasks on the workers and the bytes of their results, and "
        "compare its published bundle with the default run's, byte for byte",
    )
    p.add_argument(
        "--stress",
        action="store_true",
        help="also draw a stress plan: the city plan with every scope removed (all tasks 不定向) and ratios "
        "≤ 0.05%%, on the same directory",
    )
    args = p.parse_args()
    figures: dict = {"objects": args.objects, "seed": args.seed, "dirty": args.dirty, "steps": {}}
    figures["machine"] = {"loop_seconds_before": _one_thread_loop()}
    try:
        if args.growth:
            _growth(args, figures)
            return
        city = _city(args.work, args.objects, args.seed, figures, args.dirty)
        out = _fresh_root(args.work / "out" / "bench")
        plan = next((city / "plans").glob("*-ANNUAL.yaml"))
        if args.whole_only:
            _whole_only(args, plan, city, out, figures)
            return
        _per_stage(args, plan, city, out, figures)
    finally:
        machine = figures["machine"]
        machine["loop_seconds_after"] = _one_thread_loop()
        print(
            f"  this machine's speed: a one-thread Python loop ({LOOP}) {machine['loop_seconds_before']:.2f} s before "
            f"the runs, {machine['loop_seconds_after']:.2f} s after (the loop the README's figures quote)"
        )
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {args.json}")


def _per_stage(args: argparse.Namespace, plan: Path, city: Path, out: Path, figures: dict) -> None:
    """Each stage in its own process (its peak memory its own), then what --whole, --dask, --stress ask."""
    run_id = f"bench-{args.objects}"
    run_dir = out / "runs" / run_id
    shutil.rmtree(run_dir, ignore_errors=True)
    for number, stage in enumerate(STAGES, start=1):
        step = _step(
            [
                "run",
                str(plan),
                "--inbox",
                str(city / "inbox"),
                "--out",
                str(out),
                "--run-id",
                run_id,
                "--start-at",
                stage,
                "--stop-after",
                stage,
            ]
        )
        record = json.loads((run_dir / f"{number:02d}_{stage}" / "stage.json").read_text())
        rows = (
            record.get("rows_read")
            or record.get("records_in")
            or record.get("eligible_pairs")
            or record.get("figures", {}).get("drawn_total")
            or record.get("joint_tasks")
            or 0
        )
        figures["steps"][stage] = {
            **step,
            "stage_seconds": record["seconds"],
            "rows": rows,
            "rows_per_second": round(rows / record["seconds"]) if record["seconds"] else None,
        }
    figures["draw_floor"] = _draw_floor(run_dir)
    if args.stress:
        figures["stress"] = _stress(plan, city, out, run_dir)
    print(f"city: {city} ({args.objects:,} object rows requested)")
    print(f"  {'step':<10} {'process s':>10} {'stage s':>8} {'rows':>12} {'rows/s':>11} {'peak GiB':>9}")
    for name, f in figures["steps"].items():
        print(
            f"  {name:<10} {f['seconds']:>10.1f} {f.get('stage_seconds', float('nan')):>8.1f} "
            f"{f.get('rows') or 0:>12,} {f.get('rows_per_second') or 0:>11,} {f['peak_gib']:>9.2f}"
        )
    f, d = figures["draw_floor"], figures["steps"]["draw"]
    print(
        f"  draw: {f['eligible_pairs']:,} eligible pairs hashed, "
        f"{f['eligible_pairs'] / d['stage_seconds']:,.0f} pairs/s; "
        f"floor (one SHA-256 per eligible pair, same run): {f['sha256_seconds']:.1f} s; stage / floor = "
        f"{d['stage_seconds'] / f['sha256_seconds']:.1f}x (the stage draws twice: the mode used and the other)"
    )
    _print_assignment(run_dir, figures)
    if args.whole:
        figures["whole"] = whole = _whole_runs(plan, city, out, args.repeat)
        _print_whole(whole)
        if args.dask:
            _dask_run(plan, city, out, whole["runs"][0], figures)
    if "stress" in figures:
        st = figures["stress"]
        print(
            f"  stress plan (every task 不定向, ratios ≤ 0.05%): {st['eligible_pairs']:,} eligible pairs "
            f"→ {st['drawn']:,} draws; "
            f"draw process {st['seconds']:.1f} s, stage {st['stage_seconds']:.1f} s, peak {st['peak_gib']:.2f} GiB"
        )


if __name__ == "__main__":
    main()
