"""Benchmark: generate a city of N object rows (cached by its arguments), run the plan flow
on it, and print per step the wall seconds and peak resident memory; write them to JSON.

    .venv/bin/python scripts/bench.py --objects 8000000 [--seed 2021] [--json out/bench.json]

Each step runs in its own process so its peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Runs one jointdraw command in this child process and prints its peak RSS (KiB) last.
CHILD = """
import json, resource, sys
from flows.cli import main
code = main(sys.argv[1:])
print(json.dumps({"exit": code, "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _step(args: list[str]) -> dict:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"bench: `jointdraw {' '.join(args)}` failed:\n{done.stderr[-3000:]}")
    last = json.loads(done.stdout.strip().splitlines()[-1])
    return {"seconds": round(seconds, 1), "peak_gib": round(last["peak_kib"] / 2**20, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--objects", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=2021)
    p.add_argument("--json", type=Path, default=ROOT / "out" / "bench.json")
    args = p.parse_args()
    city = ROOT / "data" / "generated" / f"city-{args.objects}-{args.seed}"
    figures: dict = {"objects": args.objects, "seed": args.seed, "steps": {}}
    if not (city / "plans").exists():
        figures["steps"]["generate"] = _step(["generate", str(city), "--objects", str(args.objects), "--seed", str(args.seed)])
    out = ROOT / "out" / "bench"
    run_id = f"bench-{args.objects}"
    plan = next((city / "plans").glob("*.yaml"))
    figures["steps"]["plan_run"] = _step(["run", str(plan), "--inbox", str(city / "inbox"), "--out", str(out), "--run-id", run_id])
    ingest = json.loads((out / "runs" / run_id / "01_ingest" / "stage.json").read_text())
    figures["stages"] = {"ingest": {"seconds": ingest["seconds"], "rows": ingest["rows_read"],
                                    "rows_per_second": round(ingest["rows_read"] / ingest["seconds"])}}
    print(f"city: {city} ({args.objects:,} object rows requested)")
    for name, f in figures["steps"].items():
        print(f"  {name:<10} {f['seconds']:>8.1f} s  peak {f['peak_gib']:>6.2f} GiB  (own process)")
    for name, f in figures["stages"].items():
        print(f"  stage {name:<8} {f['seconds']:>6.1f} s  {f['rows']:>12,} rows  {f['rows_per_second']:>10,} rows/s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
