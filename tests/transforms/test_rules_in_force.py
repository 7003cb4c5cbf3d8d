"""The report says which rules the plan ran under (issue 21): modes per task, bands, floors, caps, experts,
redraws — in Chinese, from the plan itself."""

from jointdraw.transforms.documents.report import NOT_SET, rules_in_force
from jointdraw.transforms.plan import Plan


def test_the_rules_in_force_are_read_from_the_plan():
    plan = Plan.model_validate(
        {
            "plan_id": "P",
            "period": {"start": "2026-03-02", "end": "2026-06-30"},
            "policy_bands": {"A": {"min": 0.01, "max": 0.05}},
            "no_zero_class": True,
            "visit_caps": {"total": 3, "per_level": {"市级": 2}, "exempt_kinds": ["complaint"]},
            "tasks": [
                {"task_id": "T1", "department": "AMR", "items": ["A1"], "ratio": {c: 0.02 for c in "ABCD"}},
                {
                    "task_id": "T2",
                    "department": "FIR",
                    "items": ["F1"],
                    "ratio": {"A": 0.02, "B": 0.02, "C": 0.02, "D": {"ratio": 0.1, "min_count": 2}},
                    "assign": {"mode": "cross_district"},
                },
            ],
        }
    )
    rules = dict(rules_in_force(plan, {"experts_sent": 5}, 2))
    assert rules["派员方式 assign mode"] == "本片区优先；T2: 跨片区（所所交叉）"
    assert rules["分类比例区间 policy bands"] == "A类 1%–5%" and rules["每类必抽 no class at zero"] == "是"
    assert rules["抽取比例 ratios"].endswith("设最低/最高户数的任务 1 项")
    assert rules["年度检查频次上限 visit caps"] == "总计 3 次；市级 2 次；不计入 投诉举报"
    assert "本次 5 人次" in rules["专家、第三方 experts"] and rules["递补 redraws"] == "2 次"
    assert rules["年度抽查上限 yearly caps"] == NOT_SET
