"""The results rules on small literal data: each check against the plan, deadlines in working
days, progress, and the result-code vocabulary."""

import datetime as dt

import polars as pl

from jointdraw.transforms.corrections import (
    apply_corrections,
    correction_problems,
    corrections_frame,
    make_correction,
)
from jointdraw.transforms.exclusions import exclusions_from_history
from jointdraw.transforms.normalise import normalise_registry
from jointdraw.transforms.plan import Plan
from jointdraw.transforms.results import (
    SUBMITTED_COLUMNS,
    PlanSide,
    ResultsRules,
    answered_results,
    follow_up_overdue,
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
        "review_state": None,
        "reviewer": None,
        "review_note": None,
        "follow_up_completed_on": None,
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
            "review_signed",
            "return_explained",
            "follow_up_after_inspection",
            "follow_up_not_after_as_of",
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
    rules = ResultsRules(limit=20, review_required=False)  # review is tested on its own below
    typed = normalise_registry(_raw(), "results", "AMR")
    previous = pl.DataFrame(
        schema={
            "joint_task_id": pl.String,
            "department": pl.String,
            "item_id": pl.String,
            "first_published_on": pl.Date,
        }
    )
    results = published_results(typed, PLAN, previous, rules)
    assert results.select("deadline", "first_published_on", "overdue").row(0) == (D(2026, 6, 2), D(2026, 11, 27), True)
    earlier = previous.vstack(
        pl.DataFrame(
            {"joint_task_id": ["J1"], "department": ["AMR"], "item_id": ["A1"], "first_published_on": [D(2026, 5, 20)]}
        )
    )
    assert published_results(typed, PLAN, earlier, rules)["overdue"].to_list() == [False]  # first published in time
    outstanding = outstanding_items(PLAN, results, rules)
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


# --- issue 22: review before publication, follow-up to completion, the public period, corrections ---


def test_review_and_follow_up_checks_catch_their_own_mistakes_only():
    assert _failed_checks(review_state="审核通过", reviewer="AMR-SH01") == set()
    assert _failed_checks(review_state="审核通过") == {"review_signed"}  # approved by nobody
    assert _failed_checks(review_state="审核退回", reviewer="AMR-SH01") == {"return_explained"}  # no reason
    assert _failed_checks(review_state="退回", reviewer="AMR-SH01", review_note="缺少佐证材料") == set()
    assert _failed_checks(review_state="待审核") == set()  # pending: nobody has signed yet
    assert _failed_checks(result_codes="E", follow_up_completed_on="2026-05-20") == set()
    assert _failed_checks(result_codes="E", follow_up_completed_on="2026-05-01") == {"follow_up_after_inspection"}
    assert _failed_checks(result_codes="E", follow_up_completed_on="2026-11-30") == {"follow_up_not_after_as_of"}


def test_review_states_are_read_in_either_language_and_unknown_ones_kept_for_the_quarantine():
    typed = pl.concat(
        [normalise_registry(_raw(review_state=v), "results", "AMR") for v in ("审核通过", "returned", "待审核", "已阅")]
    )
    assert typed["review_state"].to_list() == ["approved", "returned", "pending", "已阅"]


def _published(rules: ResultsRules, as_of=PLAN.as_of, previous=None) -> pl.DataFrame:
    """Three AMR results of J1/J2: A1 approved, A2 returned, J2's A1 with no state (pending)."""
    raw = pl.concat(
        [
            _raw(review_state="审核通过", reviewer="R1"),
            _raw(item_id="A2", review_state="审核退回", reviewer="R1", review_note="缺少佐证材料"),
            _raw(joint_task_id="J2", inspection_date="2026-09-01", inspectors="I1"),
        ]
    )
    previous = previous if previous is not None else pl.DataFrame(schema=PREVIOUS)
    return published_results(normalise_registry(raw, "results", "AMR"), PLAN._replace(as_of=as_of), previous, rules)


PREVIOUS = {"joint_task_id": pl.String, "department": pl.String, "item_id": pl.String, "first_published_on": pl.Date}


def test_only_approved_results_reach_the_notice_and_the_others_are_outstanding_with_the_reason():
    rules = ResultsRules(limit=20)
    results = _published(rules)
    # a blank state is pending where review is required; only the approved one is published (today)
    assert results.select("item_id", "joint_task_id", "review_state", "first_published_on", "on_notice").rows() == [
        ("A1", "J1", "approved", D(2026, 11, 27), True),
        ("A2", "J1", "returned", None, False),
        ("A1", "J2", "pending", None, False),
    ]
    # not yet published and past the deadline (20 working days after the inspection): late already
    assert results["overdue"].to_list() == [True, True, True]
    outstanding = outstanding_items(PLAN, results, rules)
    assert outstanding.select("joint_task_id", "department", "item_id", "review_state", "review_note").rows() == [
        ("J1", "AMR", "A2", "returned", "缺少佐证材料"),
        ("J1", "FIR", "F1", None, None),  # not entered
        ("J2", "AMR", "A1", "pending", None),
    ]
    # the deadline of a result in review counts from its inspection, of an item not entered from its plan
    assert outstanding["deadline"].to_list() == [D(2026, 6, 2), D(2026, 6, 2), add_working_days(D(2026, 9, 1), 20)]
    answered = answered_results(results, rules)
    progress = progress_by_department(PLAN, answered, outstanding)
    assert progress.select("department", "answered", "outstanding").rows() == [("AMR", 1, 2), ("FIR", 0, 1)]


def test_without_review_every_accepted_result_is_public():
    results = _published(ResultsRules(limit=20, review_required=False))
    assert results["on_notice"].all() and (results["first_published_on"] == D(2026, 11, 27)).all()
    assert outstanding_items(PLAN, results, ResultsRules(limit=20, review_required=False))["item_id"].to_list() == [
        "F1"
    ]


def test_a_result_published_before_keeps_its_day_and_leaves_the_notice_after_its_public_period():
    rules = ResultsRules(limit=20, public_years={"individual": 1, "enterprise": 3})
    previous = pl.DataFrame(
        {"joint_task_id": ["J1"], "department": ["AMR"], "item_id": ["A1"], "first_published_on": [D(2026, 5, 20)]}
    )
    plan = PLAN._replace(task_items=PLAN.task_items.with_columns(entity_type=pl.lit("individual")))

    def on(as_of, p=plan):
        raw = normalise_registry(_raw(review_state="审核通过", reviewer="R1"), "results", "AMR")
        return published_results(raw, p._replace(as_of=as_of), previous, rules).row(0, named=True)

    assert on(D(2027, 5, 19))["on_notice"] and on(D(2027, 5, 19))["public_until"] == D(2027, 5, 20)
    gone = on(D(2027, 5, 20))  # an individual business's result: one year from its first publication
    assert not gone["on_notice"] and gone["first_published_on"] == D(2026, 5, 20)
    enterprise = plan._replace(task_items=plan.task_items.with_columns(entity_type=pl.lit("enterprise")))
    assert on(D(2027, 5, 20), enterprise)["on_notice"]  # three years for an enterprise
    # off the notice, still answered (the regulator's files keep it; it is not outstanding again)
    late = published_results(
        normalise_registry(_raw(review_state="审核通过", reviewer="R1"), "results", "AMR"),
        plan._replace(as_of=D(2028, 1, 1)),
        previous,
        rules,
    )
    assert answered_results(late, rules).height == 1
    assert (
        "A1"
        not in outstanding_items(plan._replace(as_of=D(2028, 1, 1)), late, rules)
        .filter(pl.col("joint_task_id") == "J1", pl.col("department") == "AMR")["item_id"]
        .to_list()
    )


def test_a_problem_without_a_completed_follow_up_after_its_deadline_is_listed():
    rules = ResultsRules(limit=20, review_required=False, follow_up_limit=10)
    raw = pl.concat(
        [
            _raw(result_codes="E"),  # a problem, not followed up: listed
            _raw(item_id="A2", result_codes="E", follow_up_completed_on="2026-05-12"),  # completed: not listed
            _raw(joint_task_id="J2", inspection_date="2026-11-20", inspectors="I1", result_codes="P"),  # not yet due
            _raw(department="FIR", item_id="F1", inspectors="I9"),  # no problem found: nothing to follow up
        ]
    )
    typed = pl.concat(
        [normalise_registry(raw.slice(0, 3), "results", "AMR"), normalise_registry(raw.slice(3), "results", "FIR")]
    )
    results = published_results(typed, PLAN, pl.DataFrame(schema=PREVIOUS), rules)
    # 10 working days after Wednesday 6 May 2026 (Saturday 9 May is a make-up working day): 19 May
    assert results.filter(pl.col("item_id") == "A2")["follow_up_deadline"].to_list() == [D(2026, 5, 19)]
    assert results.filter(pl.col("department") == "FIR")["follow_up_deadline"].to_list() == [None]
    listed = follow_up_overdue(results)
    assert listed.select("joint_task_id", "item_id").rows() == [("J1", "A1")]


def test_a_correction_replaces_the_row_a_withdrawal_removes_it_and_both_are_checked():
    raw = pl.concat(
        [_raw(review_state="审核通过", reviewer="R1"), _raw(item_id="A2", review_state="审核通过", reviewer="R1")]
    )
    submitted = normalise_registry(raw, "results", "AMR").select(*SUBMITTED_COLUMNS, "source_file", "source_line")
    rows = submitted.to_dicts()
    common = {"by": "tester", "source": "command", "at": "2026-12-01T00:00:00+00:00", "plan_id": "P"}
    fix = make_correction(
        rows[0], {"result_codes": ["E"]}, withdraw=False, reason="录入错误", correction_id=1, **common
    )
    assert fix["changes"] == "result_codes: 1 → E"
    gone = make_correction(rows[1], {}, withdraw=True, reason="重复录入", correction_id=2, **common)
    corrections = corrections_frame([fix, gone])
    after = apply_corrections(submitted, corrections)
    assert after.select("item_id", "result_codes").rows() == [("A1", ["E"])]
    assert correction_problems(corrections, after) == []
    # tampered: the published row is not the correction's, a withdrawn row still there, ids out of order
    assert correction_problems(corrections, submitted) == [
        "corrections: correction #1 (J1/AMR/A1): the published result is not the correction's new row",
        "corrections: correction #2 (J1/AMR/A2) withdrew the result, but results.parquet still holds it",
    ]
    assert correction_problems(corrections.with_columns(correction_id=pl.Series([1, 3])), after)[0].startswith(
        "corrections: ids are [1, 3]"
    )


def test_review_and_public_years_come_from_the_parameter_else_the_plan_else_the_settings():
    from jointdraw.transforms import settings
    from jointdraw.transforms.results import results_rules

    plan = Plan.model_validate(
        {
            "plan_id": "P",
            "period": {"start": "2026-03-01", "end": "2026-11-30"},
            "results": {"review_required": False, "public_years": {"individual": 2}},
            "tasks": [{"task_id": "T", "department": "AMR", "items": ["A1"], "count": 1}],
        }
    )
    by_plan = results_rules(20, 60, policy=plan.results)
    assert not by_plan.review_required and by_plan.public_years == {**settings.RESULTS_PUBLIC_YEARS, "individual": 2}
    asked = results_rules(20, 60, review_required=True, public_years={"enterprise": 5}, policy=plan.results)
    assert asked.review_required and asked.public_years["enterprise"] == 5 and asked.public_years["individual"] == 2
    default = results_rules(20, 60)
    assert default.review_required is settings.RESULTS_REVIEW_REQUIRED is True
    assert default.public_years == settings.RESULTS_PUBLIC_YEARS
