import datetime as dt

import polars as pl

from transforms.exclusions import HISTORY_SCHEMA, exclusions_from_history
from transforms.plan import Period, Plan, Task

PLAN = Plan(plan_id="Q2", period=Period(start=dt.date(2026, 4, 1), end=dt.date(2026, 6, 30)), exclusion_window_days=90,
            yearly_caps={"A": 1, "B": 2}, tasks=[Task(task_id="T", department="AMR", items=["I"], count=1)])
DIRECTORY = pl.DataFrame({"uscc": ["u1", "u2", "u3", "u4", "u5"], "credit_risk": ["B", "B", "A", "B", "D"]})


def _history(rows):
    return pl.DataFrame(rows, schema=list(HISTORY_SCHEMA), orient="row").cast(HISTORY_SCHEMA)


def test_recent_inspections_and_yearly_caps_exclude_with_their_reason():
    history = _history([
        ("u1", "ANNUAL", "r1", "X", dt.date(2026, 3, 1), dt.date(2026, 3, 20)),   # inspected 12 days before: recent
        ("u2", "ANNUAL", "r1", "X", dt.date(2025, 3, 1), dt.date(2025, 3, 20)),   # a year ago: outside the 90-day window
        ("u3", "ANNUAL", "r1", "X", dt.date(2026, 1, 1), None),                   # class A, drawn once this year: cap 1 reached
        ("u4", "ANNUAL", "r1", "X", dt.date(2026, 1, 1), None),                   # class B, once: under its cap of 2
        ("u5", "Q2", "r0", "T", dt.date(2026, 4, 1), dt.date(2026, 3, 30)),       # this plan's own earlier run: ignored
    ])
    got = exclusions_from_history(history, DIRECTORY, PLAN)
    # u3 was drawn 2026-01-01 (no inspection yet), 90 days before 04-01 is 2026-01-01: recent too
    assert got.select("uscc", "reason", "source_run").rows() == [
        ("u1", "recently_inspected", "r1"), ("u3", "recently_inspected", "r1"), ("u3", "yearly_cap", "r1"),
        ("u4", "recently_inspected", "r1")]
    assert got["task_id"].null_count() == got.height  # for every task


def test_no_history_no_exclusions():
    assert exclusions_from_history(_history([]), DIRECTORY, PLAN).is_empty()
