import datetime as dt

import polars as pl

from jointdraw.transforms.exclusions import exclusions_from_history
from jointdraw.transforms.plan import Period, Plan, Task
from jointdraw.transforms.storage.warehouse import HISTORY_SCHEMA

PLAN = Plan(
    plan_id="Q2",
    period=Period(start=dt.date(2026, 4, 1), end=dt.date(2026, 6, 30)),
    exclusion_window_days=90,
    yearly_caps={"A": 1, "B": 2},
    tasks=[Task(task_id="T", department="AMR", items=["I"], count=1)],
)
DIRECTORY = pl.DataFrame({"uscc": ["u1", "u2", "u3", "u4", "u5"], "credit_risk": ["B", "B", "A", "B", "D"]})


def _history(rows):
    return pl.DataFrame(rows, schema=list(HISTORY_SCHEMA), orient="row").cast(HISTORY_SCHEMA)


def test_recent_inspections_and_yearly_caps_exclude_with_their_reason():
    history = _history(
        [
            ("u1", "ANNUAL", "r1", "X", dt.date(2026, 3, 1), dt.date(2026, 3, 20)),  # inspected 12 days before: recent
            (
                "u2",
                "ANNUAL",
                "r1",
                "X",
                dt.date(2025, 3, 1),
                dt.date(2025, 3, 20),
            ),  # a year ago: outside the 90-day window
            ("u3", "ANNUAL", "r1", "X", dt.date(2026, 1, 1), None),  # class A, drawn once this year: cap 1 reached
            ("u4", "ANNUAL", "r1", "X", dt.date(2026, 1, 1), None),  # class B, drawn by two tasks of one plan:
            ("u4", "ANNUAL", "r1", "Y", dt.date(2026, 1, 1), None),  # one joint visit, under its cap of 2
            ("u5", "Q2", "r0", "T", dt.date(2026, 4, 1), dt.date(2026, 3, 30)),  # this plan's own earlier run: ignored
        ]
    )
    got = exclusions_from_history(history, DIRECTORY, PLAN)
    # u3 was drawn 2026-01-01 (no inspection yet), 90 days before 04-01 is 2026-01-01: recent too
    assert got.select("uscc", "reason", "source_run").rows() == [
        ("u1", "recently_inspected", "r1"),
        ("u3", "recently_inspected", "r1"),
        ("u3", "yearly_cap", "r1"),
        ("u4", "recently_inspected", "r1"),
    ]
    assert got["task_id"].null_count() == got.height  # for every task


def test_no_history_no_exclusions():
    assert exclusions_from_history(_history([]), DIRECTORY, PLAN).is_empty()


def test_previous_inspectors_are_the_last_team_of_another_plan():
    import datetime as dt

    from jointdraw.transforms.storage.warehouse import VISITS_SCHEMA, previous_inspectors

    d = dt.date
    visits = pl.DataFrame(
        [
            ("U1", "P2024", "r1", "j", "I1", d(2024, 5, 1), d(2024, 5, 3)),
            ("U1", "P2025", "r2", "j", "I2", d(2025, 5, 1), None),  # the latest: its team is I2 and I3
            ("U1", "P2025", "r2", "j", "I3", d(2025, 5, 1), None),
            ("U1", "THIS", "r3", "j", "I4", d(2026, 5, 1), None),  # this plan's own earlier run does not count
            ("U2", "P2024", "r1", "j", "I1", d(2024, 1, 1), None),
        ],
        schema=list(VISITS_SCHEMA),
        orient="row",
    ).cast(VISITS_SCHEMA)
    assert previous_inspectors(visits, "THIS").rows() == [("U1", "I2"), ("U1", "I3"), ("U2", "I1")]
