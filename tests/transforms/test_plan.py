"""The plan against the item list: no item outside the list (一单)."""

import polars as pl

from jointdraw.transforms.plan import Plan, plan_item_problems

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
