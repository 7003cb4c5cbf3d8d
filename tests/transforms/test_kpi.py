"""The yearly figures (transforms/kpi.py) on a hand-built warehouse of ten entities, E01 … E10, two
departments (AMR, ENV) and three plans, written literally into a real DuckDB file through the warehouse's
own schema. Every ratio below is computed by hand in the comments.

    P-ANNUAL  2026-03-01 … 2026-12-31   targets: coverage 0.3, items_drawn 0.5, results_on_time 0.9,
                                          follow_up_completed 0.5, joint_share 0.1, reduction_rate 0.2
    P-Q2      2026-04-01 … 2026-06-30   targets: coverage 0.6 (the year's coverage target: the highest)
    P-2025    2025-03-01 … 2025-12-31   target coverage 0.99 — not a plan of 2026: its target, list,
                                          draws and joint tasks do not count; its results count by date

The figures are computed as of 2027-01-15 (the yearly deployment's day) with the 20-working-day limit.
"""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import polars as pl
import pytest

from jointdraw.transforms.kpi import (
    ALL_TYPES,
    MET,
    MISSED,
    NO_DATA,
    NO_TARGET,
    KpiInputs,
    kpi_figures,
)
from jointdraw.transforms.storage.warehouse import connect_warehouse, kpi_tables

AS_OF = dt.date(2027, 1, 15)
LIMIT = 20

RUNS = [  # plan_id, period start, end, targets
    ("P-ANNUAL", "2026-03-01", "2026-12-31", {"coverage": 0.3, "items_drawn": 0.5, "results_on_time": 0.9,
                                              "follow_up_completed": 0.5, "joint_share": 0.1, "reduction_rate": 0.2}),
    ("P-Q2", "2026-04-01", "2026-06-30", {"coverage": 0.6}),
    ("P-2025", "2025-03-01", "2025-12-31", {"coverage": 0.99}),
]  # fmt: skip
SNAPSHOTS = [  # plan, entity, category, status, departments listing it
    ("P-ANNUAL", "E01", "enterprise", "active", ["AMR", "ENV"]),
    ("P-ANNUAL", "E02", "enterprise", "active", ["AMR"]),
    ("P-ANNUAL", "E03", "enterprise", "active", ["AMR"]),
    ("P-ANNUAL", "E04", "individual", "active", ["AMR"]),
    ("P-ANNUAL", "E05", "individual", "active", ["AMR", "ENV"]),
    ("P-ANNUAL", "E06", "cooperative", "active", ["ENV"]),
    ("P-ANNUAL", "E07", "enterprise", "deregistered", ["AMR"]),  # no longer supervised
    ("P-ANNUAL", "E08", "other", "active", ["ENV"]),
    ("P-ANNUAL", "E09", "enterprise", "active", ["AMR"]),
    ("P-ANNUAL", "E10", "other", "revoked", ["ENV"]),  # revoked here …
    ("P-Q2", "E03", "enterprise", "active", ["ENV"]),  # ENV lists E03 too (by Q2)
    ("P-Q2", "E10", "individual", "active", ["ENV"]),  # … active in Q2, as an individual (the latest snapshot)
    ("P-2025", "E07", "enterprise", "active", ["AMR"]),  # 2025's snapshot: not the year's
]
ITEMS = [  # plan, department, item
    ("P-ANNUAL", "AMR", "AMR-001"), ("P-ANNUAL", "AMR", "AMR-002"), ("P-ANNUAL", "AMR", "AMR-003"),
    ("P-ANNUAL", "AMR", "AMR-004"), ("P-ANNUAL", "ENV", "ENV-001"), ("P-ANNUAL", "ENV", "ENV-002"),
    ("P-Q2", "AMR", "AMR-001"), ("P-Q2", "AMR", "AMR-005"),
    ("P-2025", "AMR", "AMR-009"),
]  # fmt: skip
DRAWS = [  # plan, task, department, entity
    ("P-ANNUAL", "AMR-T1", "AMR", "E01"), ("P-ANNUAL", "AMR-T1", "AMR", "E02"), ("P-ANNUAL", "AMR-T1", "AMR", "E04"),
    ("P-ANNUAL", "AMR-T1", "AMR", "E05"), ("P-ANNUAL", "ENV-T1", "ENV", "E01"), ("P-ANNUAL", "ENV-T1", "ENV", "E05"),
    ("P-ANNUAL", "ENV-T1", "ENV", "E06"),
    ("P-Q2", "AMR-T2", "AMR", "E01"), ("P-Q2", "AMR-T2", "AMR", "E03"), ("P-Q2", "ENV-T2", "ENV", "E03"),
    ("P-2025", "AMR-T0", "AMR", "E09"), ("P-2025", "ENV-T0", "ENV", "E09"),
]  # fmt: skip
JOINT_TASKS = [  # plan, joint task, entity, departments
    ("P-ANNUAL", "J-E01", "E01", ["AMR", "ENV"]),
    ("P-ANNUAL", "J-E02", "E02", ["AMR"]),
    ("P-ANNUAL", "J-E04", "E04", ["AMR"]),
    ("P-ANNUAL", "J-E05", "E05", ["AMR", "ENV"]),
    ("P-ANNUAL", "J-E06", "E06", ["ENV"]),
    ("P-Q2", "Q-E01", "E01", ["AMR"]),
    ("P-Q2", "Q-E03", "E03", ["AMR", "ENV"]),
    ("P-2025", "X-E09", "E09", ["AMR", "ENV"]),
]
TASK_ITEMS = [  # plan, joint task, entity, department, item, planned date
    ("P-ANNUAL", "J-E01", "E01", "AMR", "AMR-001", "2026-05-11"),
    ("P-ANNUAL", "J-E01", "E01", "AMR", "AMR-002", "2026-05-11"),
    ("P-ANNUAL", "J-E01", "E01", "ENV", "ENV-001", "2026-05-11"),
    ("P-ANNUAL", "J-E02", "E02", "AMR", "AMR-001", "2026-05-12"),
    ("P-ANNUAL", "J-E02", "E02", "AMR", "AMR-002", "2026-05-12"),  # never answered
    ("P-ANNUAL", "J-E04", "E04", "AMR", "AMR-001", "2026-12-28"),  # never answered, due in 2027
    ("P-ANNUAL", "J-E04", "E04", "AMR", "AMR-002", "2026-12-28"),  # never answered, due in 2027
    ("P-ANNUAL", "J-E05", "E05", "AMR", "AMR-001", "2026-06-15"),
    ("P-ANNUAL", "J-E05", "E05", "AMR", "AMR-002", "2026-06-15"),
    ("P-ANNUAL", "J-E05", "E05", "ENV", "ENV-001", "2026-06-15"),  # never answered
    ("P-ANNUAL", "J-E06", "E06", "ENV", "ENV-001", "2026-06-16"),
    ("P-Q2", "Q-E01", "E01", "AMR", "AMR-005", "2026-05-20"),
    ("P-Q2", "Q-E03", "E03", "AMR", "AMR-005", "2026-06-01"),
    ("P-Q2", "Q-E03", "E03", "ENV", "ENV-001", "2026-06-01"),
    ("P-2025", "X-E09", "E09", "AMR", "AMR-003", "2025-12-22"),
    ("P-2025", "X-E09", "E09", "AMR", "AMR-004", "2025-12-22"),  # never answered: due in January 2026
]
RESULTS = [  # plan, joint task, entity, department, item, inspected, first published, deadline, codes, completed
    ("P-ANNUAL", "J-E01", "E01", "AMR", "AMR-001", "2026-05-11", "2026-05-20", "2026-06-09", ["1"], None),
    ("P-ANNUAL", "J-E01", "E01", "AMR", "AMR-002", "2026-05-11", "2026-06-20", "2026-06-09", ["E"], "2026-07-01"),
    ("P-ANNUAL", "J-E01", "E01", "ENV", "ENV-001", "2026-05-11", "2026-05-15", "2026-06-09", ["P"], None),
    ("P-ANNUAL", "J-E02", "E02", "AMR", "AMR-001", "2026-05-12", "2026-05-13", "2026-06-10", ["1"], None),
    ("P-ANNUAL", "J-E05", "E05", "AMR", "AMR-001", "2026-06-15", "2026-06-16", "2026-07-13", ["B"], "2026-08-01"),
    ("P-ANNUAL", "J-E05", "E05", "AMR", "AMR-002", "2026-06-15", "2026-06-16", "2026-07-13", ["1"], None),
    ("P-ANNUAL", "J-E06", "E06", "ENV", "ENV-001", "2026-06-16", "2026-06-17", "2026-07-14", ["1"], None),
    ("P-Q2", "Q-E01", "E01", "AMR", "AMR-005", "2026-05-20", "2026-05-21", "2026-06-17", ["C"], "2027-01-10"),
    ("P-Q2", "Q-E03", "E03", "AMR", "AMR-005", "2026-06-01", "2026-06-02", "2026-06-29", ["1"], None),
    ("P-Q2", "Q-E03", "E03", "ENV", "ENV-001", "2026-06-01", "2026-07-30", "2026-06-29", ["8"], None),
    ("P-2025", "X-E09", "E09", "AMR", "AMR-003", "2025-12-23", "2025-12-24", "2026-01-22", ["P"], None),
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    out = tmp_path_factory.mktemp("kpi-warehouse")
    con = connect_warehouse(out)  # the warehouse's own schema
    try:
        for plan, start, end, targets in RUNS:
            con.execute(
                "insert into runs (run_id, plan_id, period_start, period_end, kpi_targets, directory) "
                "values (?, ?, ?, ?, ?, ?)",
                [f"run-{plan}", plan, start, end, json.dumps(targets), f"directory-{plan}"],
            )
        con.executemany(  # each plan's directory (the view `snapshots` gives them by plan)
            "insert into directories (directory, entity_key, entity_type, status, departments) values (?, ?, ?, ?, ?)",
            [(f"directory-{p}", e, t, s, d) for p, e, t, s, d in SNAPSHOTS],
        )
        con.executemany("insert into items (plan_id, department, item_id) values (?, ?, ?)", ITEMS)
        con.executemany("insert into draws (plan_id, task_id, department, uscc) values (?, ?, ?, ?)", DRAWS)
        con.executemany(
            "insert into joint_tasks (plan_id, joint_task_id, uscc, departments) values (?, ?, ?, ?)", JOINT_TASKS
        )
        con.executemany(
            "insert into task_items (plan_id, joint_task_id, uscc, department, item_id, planned_date) "
            "values (?, ?, ?, ?, ?, ?)",
            TASK_ITEMS,
        )
        con.executemany(
            "insert into results (plan_id, joint_task_id, uscc, department, item_id, inspection_date, "
            "first_published_on, deadline, result_codes, follow_up_completed_on) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            RESULTS,
        )
    finally:
        con.close()
    return out


@pytest.fixture(scope="module")
def figures(warehouse) -> pl.DataFrame:
    return kpi_figures(KpiInputs(**kpi_tables(warehouse, 2026)), 2026, AS_OF, LIMIT)


def _row(figures: pl.DataFrame, kpi: str, department: str | None, entity_type: str = ALL_TYPES) -> dict:
    found = figures.filter(
        pl.col("kpi") == kpi,
        pl.col("department").is_null() if department is None else pl.col("department") == department,
        pl.col("entity_type") == entity_type,
    )
    assert found.height == 1, (kpi, department, entity_type)
    return found.row(0, named=True)


def _check(figures, kpi, department, numerator, denominator, status, entity_type=ALL_TYPES, target=None):
    r = _row(figures, kpi, department, entity_type)
    assert (r["numerator"], r["denominator"]) == (numerator, denominator), (kpi, department, entity_type, r)
    assert r["value"] == pytest.approx(numerator / denominator)
    assert r["status"] == status, (kpi, department, entity_type, r)
    if target is not None:
        assert r["target"] == pytest.approx(target)


def test_coverage_counts_active_entities_once_per_listing_department_and_inspections_of_the_year(figures):
    # Supervised (active in one of 2026's snapshots, once per department listing it in any of them):
    #   AMR: E01 E02 E03 E04 E05 E09 = 6 (E07 is deregistered; 2025's active E07 is not the year's)
    #   ENV: E01 E05 E06 E08 E10 + E03 (listed by Q2) = 6 (E10 revoked in the annual snapshot, active in Q2's)
    #   city: E01 E02 E03 E04 E05 E06 E08 E09 E10 = 9
    # Inspected in 2026 (a result of that department with an inspection date in 2026):
    #   AMR: E01 (J-E01, Q-E01), E02, E05, E03 (Q-E03) = 4; E09 was inspected in 2025
    #   ENV: E01, E06, E03 = 3 (E05's ENV item was never answered)
    #   city: E01 E02 E03 E05 E06 = 5
    # Target: the highest of 2026's plans, 0.6 (P-Q2); 2025's 0.99 is not the year's.
    _check(figures, "coverage", "AMR", 4, 6, MET, target=0.6)  # 0.667 ≥ 0.6
    _check(figures, "coverage", "ENV", 3, 6, MISSED, target=0.6)  # 0.5 < 0.6
    _check(figures, "coverage", None, 5, 9, MISSED, target=0.6)  # 0.556 < 0.6
    assert _row(figures, "coverage", None)["target_plans"] == "P-Q2"


def test_coverage_by_entity_type_takes_the_type_of_the_latest_snapshot(figures):
    # AMR enterprise: E01 E02 E03 E09 supervised, E01 E02 E03 inspected → 3/4; individual: E04 E05, E05 → 1/2
    _check(figures, "coverage", "AMR", 3, 4, NO_TARGET, "enterprise")
    _check(figures, "coverage", "AMR", 1, 2, NO_TARGET, "individual")
    # ENV enterprise: E01 E03 both inspected → 2/2; individual: E05 and E10 (individual in Q2, the latest) → 0/2;
    # cooperative E06 → 1/1; other: E08 → 0/1 (E10 was "other" only in the earlier snapshot)
    _check(figures, "coverage", "ENV", 2, 2, NO_TARGET, "enterprise")
    _check(figures, "coverage", "ENV", 0, 2, NO_TARGET, "individual")
    _check(figures, "coverage", "ENV", 1, 1, NO_TARGET, "cooperative")
    _check(figures, "coverage", "ENV", 0, 1, NO_TARGET, "other")
    # city: enterprise E01 E02 E03 E09 → 3/4; individual E04 E05 E10 → 1/3; cooperative 1/1; other E08 0/1
    _check(figures, "coverage", None, 3, 4, NO_TARGET, "enterprise")
    _check(figures, "coverage", None, 1, 3, NO_TARGET, "individual")
    _check(figures, "coverage", None, 1, 1, NO_TARGET, "cooperative")
    _check(figures, "coverage", None, 0, 1, NO_TARGET, "other")


def test_items_drawn_count_the_years_lists_and_the_years_draws(figures):
    # Listed in 2026's lists: AMR 001 002 003 004 (annual) + 005 (Q2) = 5; ENV 001 002 = 2; city 7
    # (2025's AMR-009 is not the year's). Drawn at least once in 2026's plans: AMR 001 002 (annual), 005 (Q2) = 3
    # (AMR-003 and 004 only in the 2025 plan); ENV 001 = 1; city 4.
    _check(figures, "items_drawn", "AMR", 3, 5, MET, target=0.5)  # 0.6 ≥ 0.5
    _check(figures, "items_drawn", "ENV", 1, 2, MET, target=0.5)  # 0.5 = 0.5: met
    _check(figures, "items_drawn", None, 4, 7, MET, target=0.5)  # 0.571


def test_results_due_in_the_year_whichever_plan_and_published_within_the_limit(figures):
    # Due in 2026 (deadline in 2026 and passed by 2027-01-15):
    #   AMR: J-E01 001 (on time), J-E01 002 (published 06-20 after 06-09: late), J-E02 001 (on time),
    #        J-E02 002 (never answered; planned 05-12 + 20 working days in June: due, not on time),
    #        J-E05 001, J-E05 002, Q-E01 005, Q-E03 005 (on time),
    #        X-E09 003 (the 2025 plan, deadline 2026-01-22: due in 2026, on time),
    #        X-E09 004 (2025 plan, never answered, planned 2025-12-22 + 20 working days: January 2026, not on time)
    #        = 10 due, 7 on time; J-E04's two items (planned 2026-12-28) fall due in 2027: not counted
    #   ENV: J-E01 (on time), J-E05 (never answered), J-E06 (on time), Q-E03 (07-30 after 06-29: late) = 4, 2
    #   city: 14 due, 9 on time
    _check(figures, "results_on_time", "AMR", 7, 10, MISSED, target=0.9)
    _check(figures, "results_on_time", "ENV", 2, 4, MISSED, target=0.9)
    _check(figures, "results_on_time", None, 9, 14, MISSED, target=0.9)


def test_problems_found_in_the_year_and_their_completed_follow_up(figures):
    # Problems found in 2026 (inspection date in 2026, a problem code: E, P, B, C, 8; 1 is no problem):
    #   AMR: J-E01 002 [E] completed 2026-07-01, J-E05 001 [B] completed 2026-08-01,
    #        Q-E01 005 [C] completed 2027-01-10 (before the day of the figures) = 3 of 3
    #        (X-E09 003 [P] was found in 2025: not counted)
    #   ENV: J-E01 [P], Q-E03 [8], neither with a completion date (null = not completed) = 0 of 2
    #   city: 3 of 5
    _check(figures, "follow_up_completed", "AMR", 3, 3, MET, target=0.5)
    _check(figures, "follow_up_completed", "ENV", 0, 2, MISSED, target=0.5)
    _check(figures, "follow_up_completed", None, 3, 5, MET, target=0.5)  # 0.6


def test_joint_share_over_the_years_joint_tasks(figures):
    # 2026's joint tasks: J-E01 J-E02 J-E04 J-E05 J-E06 Q-E01 Q-E03 = 7; with ≥ 2 departments J-E01 J-E05 Q-E03 = 3
    # AMR takes part in J-E01 J-E02 J-E04 J-E05 Q-E01 Q-E03 = 6, joint 3; ENV in J-E01 J-E05 J-E06 Q-E03 = 4, joint 3
    # (X-E09 is 2025's)
    _check(figures, "joint_share", "AMR", 3, 6, MET, target=0.1)
    _check(figures, "joint_share", "ENV", 3, 4, MET, target=0.1)
    _check(figures, "joint_share", None, 3, 7, MET, target=0.1)


def test_visits_saved_by_fusion_sum_each_plans_figures(figures):
    # P-ANNUAL: 7 draws, 5 entities → 2 saved; P-Q2: 3 draws, 2 entities → 1 saved (E01, drawn by both plans, is
    # two visits: a plan's fusion does not reach into another plan). 3 saved of 10 drawn = 0.3 ≥ 0.2. City only.
    _check(figures, "reduction_rate", None, 3, 10, MET, target=0.2)
    assert figures.filter(pl.col("kpi") == "reduction_rate").height == 1


def test_every_row_in_order_and_no_target_means_no_flag(warehouse):
    figures = kpi_figures(KpiInputs(**kpi_tables(warehouse, 2026)), 2026, AS_OF, LIMIT)
    assert figures["kpi"].unique(maintain_order=True).to_list() == [
        "coverage",
        "items_drawn",
        "results_on_time",
        "follow_up_completed",
        "joint_share",
        "reduction_rate",
    ]
    # each figure: the city first, then the departments by code; coverage: every type first, then by type
    coverage = figures.filter(pl.col("kpi") == "coverage")
    assert coverage.select("department", "entity_type").rows()[:3] == [
        (None, "all"),
        (None, "enterprise"),
        (None, "individual"),
    ]
    assert figures.filter(pl.col("kpi") == "items_drawn")["department"].to_list() == [None, "AMR", "ENV"]
    # a year without plans: nothing supervised, nothing listed: no data, and no target
    empty = kpi_figures(KpiInputs(**kpi_tables(warehouse, 2024)), 2024, AS_OF, LIMIT)
    assert empty.filter(pl.col("department").is_null())["status"].unique().to_list() == [NO_TARGET]
    assert empty.filter(pl.col("kpi") == "coverage")["denominator"].to_list() == [0]


def test_a_figure_with_nothing_counted_and_a_target_has_no_data(warehouse):
    # as of 2026-01-10, only X-E09 004 could be due… and its deadline (20 working days after 2025-12-22) has not
    # come: nothing is due yet → 0/0, no data (not "missed")
    early = kpi_figures(KpiInputs(**kpi_tables(warehouse, 2026)), 2026, dt.date(2026, 1, 10), LIMIT)
    r = _row(early, "results_on_time", None)
    assert (r["numerator"], r["denominator"], r["value"], r["status"]) == (0, 0, None, NO_DATA)


def test_an_old_warehouse_gains_the_columns_and_its_plans_count_what_they_recorded(tmp_path):
    """A warehouse written before the yearly figures (no departments, no item lists, no targets, no completion
    dates) opens, gains the columns empty, and gives figures: a plan recorded then supervises no one (its
    listings are unknown) and lists no items — no data, never an error."""
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("""create table runs (run_id varchar, plan_id varchar, period_start date, period_end date,
                                      commitment varchar, seed varchar, recorded_at timestamptz);
                   create table snapshots (run_id varchar, plan_id varchar, entity_key varchar, uscc varchar,
                                           name varchar, entity_type varchar, district_code varchar,
                                           industry_code varchar, status varchar, credit_risk varchar);
                   insert into runs values ('r', 'OLD', '2026-03-01', '2026-12-31', 'c', 's', now());
                   insert into snapshots values ('r', 'OLD', 'E01', 'E01', 'n', 'enterprise', 'd', 'i', 'active',
                                                 'A');""")
    con.close()
    figures = kpi_figures(KpiInputs(**kpi_tables(tmp_path, 2026)), 2026, AS_OF, LIMIT)
    assert _row(figures, "coverage", None)["denominator"] == 0
    assert set(figures["status"]) == {NO_TARGET}
