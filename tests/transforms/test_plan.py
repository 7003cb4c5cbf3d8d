"""The plan: against the item list, no item outside the list (一单); ratio rules with floors and caps, and the
plan's policy bands, refused before anything runs when broken."""

import polars as pl
import pytest
import yaml

from jointdraw.transforms.plan import (
    ClassRatio,
    Plan,
    PlanError,
    PolicyBand,
    plan_as_yaml,
    plan_item_problems,
    read_plan,
)

ITEMS = pl.DataFrame({"item_id": ["AMR-1", "ENV-1"], "department": ["AMR", "ENV"]})


def _plan(items, department="AMR"):
    return Plan.model_validate(
        {
            "plan_id": "P",
            "period": {"start": "2026-03-01", "end": "2026-03-31"},
            "tasks": [{"task_id": "T1", "department": department, "items": items, "count": 1}],
        }
    )


def test_listed_items_of_the_tasks_department_pass():
    assert plan_item_problems(_plan(["AMR-1"]), ITEMS) == []


def test_an_unlisted_item_and_another_departments_item_are_named():
    problems = plan_item_problems(_plan(["AMR-9", "ENV-1"]), ITEMS)
    assert problems == [
        "task T1 names item AMR-9, which no department's item list (items.*) has",
        "task T1 of AMR names item ENV-1, which is ENV's item",
    ]


# ratio rules as plans write them (issue 21): per class a ratio, or {ratio, min_count, max_count}; the plan's
# policy_bands and no_zero_class, checked when the plan is read
def _ratio_plan(tmp_path, tasks, **plan_keys):
    path = tmp_path / "plan.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "plan_id": "P",
                "period": {"start": "2026-03-01", "end": "2026-03-31"},
                **plan_keys,
                "tasks": [{"department": "AMR", "items": ["AMR-1"], **t} for t in tasks],
            }
        ),
        encoding="utf-8",
    )
    return path


def test_a_class_may_give_a_floor_and_a_cap_beside_bare_ratios_and_the_yaml_keeps_its_form(tmp_path):
    text = (
        "plan_id: P\nperiod: {start: 2026-03-01, end: 2026-03-31}\ntasks:\n"
        "- task_id: T1\n  department: AMR\n  items: [AMR-1]\n"
        "  ratio: {A: 0.01, B: 0.02, D: {ratio: 0.1, min_count: 2, max_count: 40}}\n"
    )
    (tmp_path / "plan.yaml").write_text(text, encoding="utf-8")
    plan = read_plan(tmp_path / "plan.yaml")
    task = plan.tasks[0]
    assert task.class_ratio("A") == ClassRatio(ratio=0.01)  # a bare number: no floor, no cap
    assert task.class_ratio("C") == ClassRatio(ratio=0.0)  # a class not named draws nothing
    assert task.class_ratio("D") == ClassRatio(ratio=0.1, min_count=2, max_count=40)
    # written back as it was read: bare numbers stay bare, the mapping keeps only what was given
    assert yaml.safe_load(plan_as_yaml(plan))["tasks"][0]["ratio"] == {
        "A": 0.01,
        "B": 0.02,
        "D": {"ratio": 0.1, "min_count": 2, "max_count": 40},
    }


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ({"ratio": 0.1, "min_count": 5, "max_count": 2}, "task T1 class D: min_count 5 is above max_count 2"),
        ({"ratio": 0.1, "min_count": -1}, "tasks.0.ratio.D.rule.min_count: Input should be greater than or equal to 0"),
        ({"ratio": 0.1, "min_count": 1.5}, "tasks.0.ratio.D.rule.min_count"),
        ({"ratio": 0.1, "min": 2}, "tasks.0.ratio.D.rule.min: Extra inputs are not permitted"),  # a typo is named
        ({"min_count": 2}, "tasks.0.ratio.D.rule.ratio: Field required"),
        ({"ratio": 1.5, "max_count": 2}, "tasks.0.ratio.D.rule.ratio: Input should be less than or equal to 1"),
    ],
)
def test_a_floor_or_cap_that_cannot_be_is_refused_naming_the_task_and_class(tmp_path, rule, says):
    with pytest.raises(PlanError) as refused:
        read_plan(_ratio_plan(tmp_path, [{"task_id": "T1", "ratio": {"A": 0.01, "D": rule}}]))
    assert str(refused.value).startswith(f"plan {tmp_path / 'plan.yaml'}: ") and says in str(refused.value)


BANDS = {"A": {"min": 0.001, "max": 0.01}, "D": {"min": 0.05, "max": 1}}


def test_ratio_tasks_inside_the_bands_and_count_tasks_pass():
    # T1 keeps both bands (bounds included); B and C have no band; the count task is outside the policy's reach
    plan = _plan_with(
        [
            {"task_id": "T1", "ratio": {"A": 0.01, "B": 0.5, "C": 0, "D": 0.05}},
            {"task_id": "T2", "count": 3},
        ],
        policy_bands=BANDS,
    )
    assert plan.policy_bands["D"] == PolicyBand(min=0.05, max=1.0)


def test_a_ratio_outside_its_band_is_refused_before_anything_runs_naming_task_class_and_band(tmp_path):
    path = _ratio_plan(
        tmp_path,
        [
            {"task_id": "T1", "ratio": {"A": 0.01, "D": 0.5}},
            {"task_id": "T2", "ratio": {"A": 0.02, "D": {"ratio": 0.01, "min_count": 5}}},  # a floor is no excuse
        ],
        policy_bands=BANDS,
    )
    with pytest.raises(PlanError) as refused:
        read_plan(path)
    assert str(refused.value) == (
        f"plan {path}: "
        "task T2 class A: ratio 0.02 is outside the plan's policy band for class A [0.001, 0.01] (policy_bands.A); "
        "change the task's ratio or the band; "
        "task T2 class D: ratio 0.01 is outside the plan's policy band for class D [0.05, 1.0] (policy_bands.D); "
        "change the task's ratio or the band"
    )


def test_a_class_a_ratio_task_leaves_out_is_below_a_band_that_starts_above_zero(tmp_path):
    with pytest.raises(PlanError, match=r"task T1 class D: ratio 0 \(class not given\) is outside .* class D \[0.05"):
        read_plan(_ratio_plan(tmp_path, [{"task_id": "T1", "ratio": {"A": 0.01}}], policy_bands=BANDS))


def test_no_zero_class_wants_every_ratio_task_to_draw_from_every_class(tmp_path):
    every = {"A": 0.01, "B": 0.01, "C": {"ratio": 0, "min_count": 1}, "D": 0.1}  # a floor draws from C
    assert _plan_with([{"task_id": "T1", "ratio": every}, {"task_id": "T2", "count": 1}], no_zero_class=True)
    with pytest.raises(PlanError) as refused:
        read_plan(
            _ratio_plan(
                tmp_path,
                [{"task_id": "T1", "ratio": {**every, "A": 0, "D": {"ratio": 0.1, "max_count": 0}}}],
                no_zero_class=True,
            )
        )
    message = str(refused.value)
    assert (
        "task T1 class A: draws no object of class A (ratio 0.0, no min_count) but the plan says no_zero_class"
        in message
    )
    assert "task T1 class D: draws no object of class D (max_count 0)" in message
    assert "class B" not in message and "class C" not in message


def test_a_band_whose_min_is_above_its_max_is_refused(tmp_path):
    with pytest.raises(PlanError, match=r"policy_bands.A: band min 0.5 is above its max 0.1"):
        read_plan(_ratio_plan(tmp_path, [{"task_id": "T1", "count": 1}], policy_bands={"A": {"min": 0.5, "max": 0.1}}))
    with pytest.raises(PlanError, match=r"policy_bands.E"):
        read_plan(_ratio_plan(tmp_path, [{"task_id": "T1", "count": 1}], policy_bands={"E": {"max": 0.1}}))


def _plan_with(tasks, **plan_keys) -> Plan:
    return Plan.model_validate(
        {
            "plan_id": "P",
            "period": {"start": "2026-03-01", "end": "2026-03-31"},
            **plan_keys,
            "tasks": [{"department": "AMR", "items": ["AMR-1"], **t} for t in tasks],
        }
    )


def _plan_file(tmp_path, targets) -> object:
    path = tmp_path / "plan.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "plan_id": "P",
                "period": {"start": "2026-03-01", "end": "2026-12-31"},
                "kpi_targets": targets,
                "tasks": [{"task_id": "T1", "department": "AMR", "items": ["AMR-1"], "count": 1}],
            }
        ),
        encoding="utf-8",
    )
    return path


def test_kpi_targets_are_shares_of_known_figures(tmp_path):
    """kpi_targets (the yearly figures' targets, transforms/kpi.py): each a share in [0, 1] of a figure jointdraw
    kpi computes; a misspelt figure or a percentage written as 90 is refused, naming it."""
    plan = read_plan(_plan_file(tmp_path, {"coverage": 0.05, "results_on_time": 0.9}))
    assert plan.kpi_targets is not None and plan.kpi_targets.model_dump(exclude_none=True) == {
        "coverage": 0.05,
        "results_on_time": 0.9,
    }
    assert "kpi_targets:" in plan_as_yaml(plan)
    with pytest.raises(PlanError, match="kpi_targets.coverge"):
        read_plan(_plan_file(tmp_path, {"coverge": 0.05}))
    with pytest.raises(PlanError, match="kpi_targets.results_on_time"):
        read_plan(_plan_file(tmp_path, {"results_on_time": 90}))
    assert "kpi_targets" not in plan_as_yaml(_plan(["AMR-1"]))  # a plan without targets is written as before
