"""The demo's year of inspection results (issue 22): each month end, the departments' results so far (the
sample generator as of that day: review states, follow-ups, one planted error per department) are taken in
and published by the results flow, as the `results-weekly` deployment would, so a result is first published
at the run after it was entered and approved and the late share on the results page is what a year of
monthly publication gives. One process: one temporary Prefect server for every run.

    .venv/bin/python scripts/demo_results.py PLAN_ID --out out --inbox data/demo/results-inbox DATE [DATE ...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import time
from pathlib import Path

from jointdraw.flows.results import results_run
from jointdraw.transforms.results import PlanSide
from jointdraw.transforms.samplecity.results import generate_results
from jointdraw.transforms.samplecity.submission import write_results
from jointdraw.transforms.storage.warehouse import plan_side_tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan_id")
    parser.add_argument("--out", required=True)
    parser.add_argument("--inbox", required=True)
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("dates", nargs="+", help="the publication days (YYYY-MM-DD), in order")
    args = parser.parse_args()
    inbox = Path(args.inbox)
    shutil.rmtree(inbox, ignore_errors=True)
    tables = plan_side_tables(Path(args.out), args.plan_id)
    for day in args.dates:
        started = time.perf_counter()
        plan = PlanSide(tables["task_items"], tables["teams"], tuple(tables["period"]), dt.date.fromisoformat(day))
        results, truth = generate_results(plan, args.seed, dirty=True)
        write_results(results, truth, inbox)
        summary = results_run(plan_id=args.plan_id, inbox=str(inbox), out=args.out, as_of=day)
        p = summary["stages"]["publish"]
        late = p.answered_late / p.answered if p.answered else 0.0
        print(
            f"results as of {day}: {p.answered:,} of {p.items_due:,} items published ({late:.0%} of them late), "
            f"{p.pending_review:,} pending review, {p.returned:,} returned, {p.follow_up_overdue:,} follow-ups "
            f"overdue; results seal {p.seal} ({time.perf_counter() - started:.1f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
