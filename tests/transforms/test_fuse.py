"""Fusion (SPEC §4.5) on literal draws whose answers can be counted by hand."""

import polars as pl
from polars.testing import assert_frame_equal

from jointdraw.transforms.fusion_figures import fusion_figures, fusion_summary, overlap_matrix
from jointdraw.transforms.joint_tasks import fuse_draws

ITEMS = pl.DataFrame(
    {
        "item_id": ["AMR-1", "AMR-2", "AMR-3", "ENV-1", "ENV-2", "HLT-1", "HLT-2"],
        "department": ["AMR", "AMR", "AMR", "ENV", "ENV", "HLT", "HLT"],
        "category": ["general", "general", "general", "key", "general", "general", "general"],
    }
)
DIRECTORY = pl.DataFrame(
    {
        "uscc": ["U1", "U2", "U3", "U4"],
        "name": ["甲公司", "乙公司", "丙店", "丁厂"],
        "district_code": ["440303", "440304", "440305", "440303"],
        "address": ["a", "b", "c", "d"],
        "credit_risk": ["B", "C", "D", "B"],
    }
)


def _draws(rows):
    return pl.DataFrame(
        rows,
        schema={
            "task_id": pl.String,
            "department": pl.String,
            "item_ids": pl.List(pl.String),
            "uscc": pl.String,
            "district_code": pl.String,
            "credit_risk": pl.String,
        },
        orient="row",
    )


def test_three_tasks_of_two_departments_make_one_joint_task_led_by_the_key_item():
    # U1 is drawn by two AMR tasks (3 items in all) and one ENV task with a key item: one visit,
    # two visits saved, and ENV leads although AMR has more items (a key item comes first)
    draws = _draws(
        [
            ("AMR-T1", "AMR", ["AMR-1", "AMR-2"], "U1", "440303", "B"),
            ("AMR-T2", "AMR", ["AMR-2", "AMR-3"], "U1", "440303", "B"),
            ("ENV-T1", "ENV", ["ENV-1"], "U1", "440303", "B"),
            ("AMR-T1", "AMR", ["AMR-1", "AMR-2"], "U2", "440304", "C"),
        ]
    )
    fused = fuse_draws(draws, ITEMS, DIRECTORY, "P1")
    u1 = fused.joint_tasks.filter(pl.col("uscc") == "U1").row(0, named=True)
    assert u1["joint_task_id"] == "P1-U1" and u1["lead_department"] == "ENV" and u1["departments"] == ["AMR", "ENV"]
    assert u1["task_ids"] == ["AMR-T1", "AMR-T2", "ENV-T1"] and u1["item_ids"] == ["AMR-1", "AMR-2", "AMR-3", "ENV-1"]
    assert u1["draws"] == 3 and u1["name"] == "甲公司" and u1["address"] == "a"
    amr = fused.task_departments.filter((pl.col("uscc") == "U1") & (pl.col("department") == "AMR")).row(0, named=True)
    assert (
        amr["item_ids"] == ["AMR-1", "AMR-2", "AMR-3"]
        and amr["task_ids"] == ["AMR-T1", "AMR-T2"]
        and not amr["is_lead"]
    )
    assert fusion_figures(draws) == {
        "drawn_total": 4,
        "duplicate_entities": 1,
        "joint_tasks": 2,
        "visits_saved": 2,
        "reduction_rate": 0.5,
    }


def test_lead_without_key_items_is_the_most_items_then_the_smallest_code():
    draws = _draws(
        [
            ("HLT-T1", "HLT", ["HLT-1", "HLT-2"], "U3", "440305", "D"),  # HLT: 2 items beats AMR's 1
            ("AMR-T3", "AMR", ["AMR-3"], "U3", "440305", "D"),
            ("HLT-T2", "HLT", ["HLT-1"], "U4", "440303", "B"),  # one item each: AMR < HLT
            ("AMR-T3", "AMR", ["AMR-3"], "U4", "440303", "B"),
        ]
    )
    lead = dict(fuse_draws(draws, ITEMS, DIRECTORY, "P1").joint_tasks.select("uscc", "lead_department").iter_rows())
    assert lead == {"U3": "HLT", "U4": "AMR"}


def test_the_five_figures_when_some_entities_are_drawn_three_times():
    # U1 ×3, U2 ×2, U3 ×1: 6 draws, 3 joint tasks, 3 visits saved, but only 2 duplicate entities
    draws = _draws(
        [
            ("T1", "AMR", ["AMR-1"], "U1", "440303", "B"),
            ("T2", "ENV", ["ENV-2"], "U1", "440303", "B"),
            ("T3", "HLT", ["HLT-1"], "U1", "440303", "B"),
            ("T1", "AMR", ["AMR-1"], "U2", "440304", "C"),
            ("T2", "ENV", ["ENV-2"], "U2", "440304", "C"),
            ("T1", "AMR", ["AMR-1"], "U3", "440305", "D"),
        ]
    )
    assert fusion_figures(draws) == {
        "drawn_total": 6,
        "duplicate_entities": 2,
        "joint_tasks": 3,
        "visits_saved": 3,
        "reduction_rate": 0.5,
    }
    fused = fuse_draws(draws, ITEMS, DIRECTORY, "P1")
    summary = fusion_summary(draws, fused.joint_tasks)
    # AMR drew all three, ENV two of them, HLT one; AMR and ENV share U1 and U2
    assert overlap_matrix(fused.joint_tasks) == {
        "AMR": {"AMR": 3, "ENV": 2, "HLT": 1},
        "ENV": {"AMR": 2, "ENV": 2, "HLT": 1},
        "HLT": {"AMR": 1, "ENV": 1, "HLT": 1},
    }
    # one general item each everywhere: the smallest code, AMR, leads all three
    assert summary["by_department"] == {
        "AMR": {"draws": 3, "joint_tasks": 3, "lead": 3},
        "ENV": {"draws": 2, "joint_tasks": 2, "lead": 0},
        "HLT": {"draws": 1, "joint_tasks": 1, "lead": 0},
    }
    assert summary["by_credit_class"] == {
        "B": {"draws": 3, "joint_tasks": 1},
        "C": {"draws": 2, "joint_tasks": 1},
        "D": {"draws": 1, "joint_tasks": 1},
    }
    assert summary["departments_per_joint_task"] == {"1": 1, "2": 1, "3": 1}


def test_row_order_does_not_change_the_joint_tasks():
    draws = _draws(
        [
            ("AMR-T1", "AMR", ["AMR-2", "AMR-1"], "U1", "440303", "B"),
            ("ENV-T1", "ENV", ["ENV-2"], "U1", "440303", "B"),
            ("AMR-T1", "AMR", ["AMR-2", "AMR-1"], "U2", "440304", "C"),
            ("HLT-T1", "HLT", ["HLT-1"], "U2", "440304", "C"),
        ]
    )
    first = fuse_draws(draws, ITEMS, DIRECTORY, "P1")
    again = fuse_draws(draws.reverse(), ITEMS.reverse(), DIRECTORY.reverse(), "P1")
    assert_frame_equal(first.joint_tasks, again.joint_tasks)
    assert_frame_equal(first.task_departments, again.task_departments)
