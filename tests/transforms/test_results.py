"""The results rules on small literal data: each check against the plan, deadlines in working
days, progress, and the result-code vocabulary."""

import datetime as dt

import polars as pl

from jointdraw.transforms.exclusions import exclusions_from_history
from jointdraw.transforms.normalise import normalise_registry
from jointdraw.transforms.plan import Plan
from jointdraw.transforms.results import (
    PlanSide,
    outstanding_items,
    progress_by_department,
    published_results,
    with_result_checks,
)
from jointdraw.transforms.storage.warehouse import HISTORY_SCHEMA
from jointdraw.transforms.workdays import add_working_days

D = dt.date
PLAN = PlanSide(
    task_items=pl.DataFrame(
        {
            "joint_task_id": ["J1", "J1", "J1", "J2"],
            "uscc": ["U1", "U1", "U1", "U2"],
            "department": ["AMR", "AMR", "FIR", "AMR"],
            "item_id": ["A1", "A2", "F1", "A1"],
            "planned_date": [D(2026, 5, 6)] * 3 + [D(2026, 9, 1)],
        }
    ),
    teams=pl.DataFrame(
        {
            "joint_task_id": ["J1", "J1", "J1", "J2"],
            "department": ["AMR", "AMR", "FIR", "AMR"],
            "inspector_id": ["I1", "I2", "I9", "I1"],
        }
    ),
    period=(D(2026, 3, 1), D(2026, 11, 30)),
    as_of=D(2026, 11, 27),
)


def _raw(**overrides) -> pl.DataFrame:
    row = {
        "joint_task_id": "J1",
        "department": "AMR",
        "item_id": "A1",
        "inspection_date": "2026-05-06",
        "inspectors": "I1;I2",
        "method": "实地检查",
        "result_codes": "未发现问题",
        "follow_up": "无须后续处置",
        "findings": None,
        "substitution_reason": None,
        **overrides,
    }
    return pl.DataFrame(
        {**{k: [v] for k, v in row.items()}, "source_file": ["AMR/results.csv"], "source_line": [2]},
        schema_overrides={k: pl.String for k in row},
    )


def _failed_checks(**overrides) -> set[str]:
    checked = with_result_checks(normalise_registry(_raw(**overrides), "results", "AMR"), PLAN)
    return {
        c
        for c in (
            "own_department",
            "task_known",
            "department_on_task",
            "item_on_task",
            "inspectors_on_team",
            "date_in_period",
            "date_not_after_as_of",
            "codes_consistent",
        )
        if not checked[c][0]
    }


def test_a_good_result_passes_every_check():
    assert _failed_checks() == set()


def test_each_check_catches_its_own_mistake_only():
    assert _failed_checks(joint_task_id="J9") == {"task_known"}
    assert _failed_checks(department="FIR", item_id="F1", inspectors="I9") == {"own_department"}
    assert _failed_checks(joint_task_id="J2", item_id="A2", inspectors="I1") == {"item_on_task"}
    assert _failed_checks(item_id="F1") == {"item_on_task"}  # FIR's item, not AMR's
    assert _failed_checks(inspectors="I1;I7") == {"inspectors_on_team"}
    assert _failed_checks(inspectors="I1;I7", substitution_reason="I2 病假") == set()
    assert _failed_checks(inspection_date="2026-02-20") == {"date_in_period"}
    assert _failed_checks(inspection_date="2026-11-29") == {"date_not_after_as_of"}
    assert _failed_checks(result_codes="1;E") == {"codes_consistent"}
    assert _failed_checks(result_codes="未发现问题；注销") == set()  # a status code is not a finding


def test_blank_values_are_left_to_the_required_rule():
    assert _failed_checks(joint_task_id=None) == set()
    assert _failed_checks(inspection_date=None) == set()


def test_result_codes_are_read_as_codes_or_chinese_names():
    typed = normalise_registry(
        _raw(result_codes="发现问题经责令已改正；违反食品药品管理相关规定; x9"), "results", "AMR"
    )
    assert typed["result_codes"].to_list() == [["E", "3", "x9"]]  # the unknown one kept as written, for the quarantine


def test_the_deadline_counts_official_working_days():
    # Saturday 9 May 2026 is a make-up working day (调休) after Labour Day: the 20th is 2 June, not 3 June
    assert add_working_days(D(2026, 5, 6), 20) == D(2026, 6, 2)
    assert add_working_days(D(2026, 9, 25), 2) == D(2026, 9, 29)  # over a weekend
    assert add_working_days(D(2026, 9, 30), 1) == D(2026, 10, 8)  # over the National Day holiday (1–7 October)


def test_overdue_outstanding_and_progress():
    typed = normalise_registry(_raw(), "results", "AMR")
    previous = pl.DataFrame(
        schema={
            "joint_task_id": pl.String,
            "department": pl.String,
            "item_id": pl.String,
            "first_published_on": pl.Date,
        }
    )
    results = published_results(typed, PLAN, previous, 20)
    assert results.select("deadline", "first_published_on", "overdue").row(0) == (D(2026, 6, 2), D(2026, 11, 27), True)
    earlier = previous.vstack(
        pl.DataFrame(
            {"joint_task_id": ["J1"], "department": ["AMR"], "item_id": ["A1"], "first_published_on": [D(2026, 5, 20)]}
        )
    )
    assert published_results(typed, PLAN, earlier, 20)["overdue"].to_list() == [False]  # first published in time
    outstanding = outstanding_items(PLAN, results, 20)
    assert outstanding.select("joint_task_id", "department", "item_id").rows() == [
        ("J1", "AMR", "A2"),
        ("J1", "FIR", "F1"),
        ("J2", "AMR", "A1"),
    ]
    assert outstanding["overdue"].to_list() == [
        True,
        True,
        True,
    ]  # planned in May and September, not entered by late November
    progress = progress_by_department(PLAN, results, outstanding)
    assert progress.rows(named=True) == [
        {
            "department": "AMR",
            "joint_tasks": 2,
            "items_due": 3,
            "answered": 1,
            "outstanding": 2,
            "answered_late": 1,
            "outstanding_overdue": 2,
        },
        {
            "department": "FIR",
            "joint_tasks": 1,
            "items_due": 1,
            "answered": 0,
            "outstanding": 1,
            "answered_late": 0,
            "outstanding_overdue": 1,
        },
    ]


def test_an_entity_closed_at_its_last_inspection_is_not_drawn_again():
    plan = Plan.model_validate(
        {
            "plan_id": "Q",
            "period": {"start": "2027-01-01", "end": "2027-03-31"},
            "tasks": [{"task_id": "T", "department": "AMR", "items": ["A1"], "count": 1}],
        }
    )
    directory = pl.DataFrame({"uscc": ["U1", "U2", "U3"], "credit_risk": ["A", "A", "A"]})
    results = pl.DataFrame(
        {
            "uscc": ["U1", "U2", "U2", "U3"],
            "plan_id": ["P"] * 4,
            "results_run_id": ["P-RESULTS-1"] * 4,
            "inspection_date": [D(2026, 5, 1), D(2026, 5, 1), D(2026, 8, 1), D(2026, 5, 1)],
            "result_codes": [["9"], ["7"], ["1"], ["1"]],
        }
    )
    got = exclusions_from_history(pl.DataFrame(schema=HISTORY_SCHEMA), directory, plan, results)
    assert got.select("uscc", "reason", "source_run").rows() == [
        ("U1", "closed_per_result", "P-RESULTS-1")
    ]  # U2 reopened by August
