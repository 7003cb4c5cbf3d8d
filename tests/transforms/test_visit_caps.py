"""Visit caps → exclusions (transforms/visit_caps.py) on literal inspection records, the plan's
`visit_caps` syntax, and the exclusions table with and without them."""

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from jointdraw.transforms.commitment import EXCLUSIONS_SCHEMA
from jointdraw.transforms.exclusions import exclusions_from_history, with_visit_caps
from jointdraw.transforms.plan import Period, Plan, PlanError, Task, VisitCaps, read_plan
from jointdraw.transforms.storage.warehouse import HISTORY_SCHEMA
from jointdraw.transforms.visit_caps import VISIT_EXCLUSIONS_SCHEMA, visit_cap_exclusions

d = dt.date
CAPS = VisitCaps(total=3, per_department=2, per_level={"city": 2, "district": 1}, exempt_kinds=["complaint"])
PLAN = Plan(
    plan_id="Q2",
    period=Period(start=d(2026, 4, 1), end=d(2026, 6, 30)),
    visit_caps=CAPS,
    tasks=[
        Task(task_id="AMR-T1", department="AMR", items=["I1"], count=1),
        Task(task_id="AMR-T2", department="AMR", items=["I2"], count=1),
        Task(task_id="ENV-T1", department="ENV", items=["I3"], count=1),
    ],
)
DIRECTORY = pl.DataFrame({"uscc": ["u1", "u2", "u3", "u4", "u6"]})  # u5 is not in it

INSPECTIONS = pl.DataFrame(
    [
        # u1: three that count, by three departments at two levels → the total cap (3) only; its two
        # district inspections pass the district cap (1), which binds district plans, not this city plan
        ("u1", "AMR", d(2026, 1, 10), "random", "city", "AMR/inspections.csv", 2),
        ("u1", "ENV", d(2026, 2, 1), "licence", "district", "ENV/inspections.csv", 2),
        ("u1", "HLT", d(2026, 3, 1), "other", "district", "HLT/inspections.xlsx", 4),
        # u2: twice by AMR at city level → AMR's tasks (not ENV's) and the city cap (2); total 2 < 3
        ("u2", "AMR", d(2026, 2, 5), "licence", "city", "AMR/inspections.csv", 4),
        ("u2", "AMR", d(2026, 1, 5), "random", "city", "AMR/inspections.csv", 3),
        # u3: three complaints (exempt) and one random inspection: one counts
        ("u3", "ENV", d(2026, 1, 2), "complaint", "city", "ENV/inspections.csv", 3),
        ("u3", "ENV", d(2026, 1, 3), "complaint", "city", "ENV/inspections.csv", 4),
        ("u3", "ENV", d(2026, 1, 4), "complaint", "city", "ENV/inspections.csv", 5),
        ("u3", "ENV", d(2026, 1, 6), "random", "city", "ENV/inspections.csv", 6),
        # u4: last year, and on or after the period's start, do not count: one counts
        ("u4", "AMR", d(2025, 12, 20), "random", "city", "AMR/inspections.csv", 5),
        ("u4", "AMR", d(2026, 3, 31), "random", "city", "AMR/inspections.csv", 6),
        ("u4", "AMR", d(2026, 4, 1), "random", "city", "AMR/inspections.csv", 7),
        # u5: over every cap, but not in the directory: nothing to exclude
        *[("u5", "AMR", d(2026, 1, i), "random", "city", "AMR/inspections.csv", 7 + i) for i in (1, 2, 3)],
        # u6: twice by HLT, which has no task in the plan: no department cap binds; total 2 < 3
        ("u6", "HLT", d(2026, 1, 7), "random", "district", "HLT/inspections.xlsx", 5),
        ("u6", "HLT", d(2026, 1, 8), "random", "district", "HLT/inspections.xlsx", 6),
    ],
    schema={
        "uscc": pl.String,
        "department": pl.String,
        "inspection_date": pl.Date,
        "inspection_kind": pl.String,
        "level": pl.String,
        "source_file": pl.String,
        "source_line": pl.Int64,
    },
    orient="row",
)


def test_each_cap_excludes_with_its_reason_count_and_the_record_that_reached_it():
    got = visit_cap_exclusions(INSPECTIONS, DIRECTORY, PLAN)
    expected = pl.DataFrame(
        [
            # the third counted inspection of u1 by date is HLT's of 1 March
            ("u1", None, "visit_cap_total", "HLT/inspections.xlsx:4", 3, 3),
            # u2's second AMR inspection by date is the licence check of 5 February (line 4)
            ("u2", "AMR-T1", "visit_cap_department", "AMR/inspections.csv:4", 2, 2),
            ("u2", "AMR-T2", "visit_cap_department", "AMR/inspections.csv:4", 2, 2),
            ("u2", None, "visit_cap_level", "AMR/inspections.csv:4", 2, 2),
        ],
        schema=VISIT_EXCLUSIONS_SCHEMA,
        orient="row",
    )
    assert_frame_equal(got, expected)


def test_exempt_kinds_and_a_plan_of_another_level():
    # nothing exempt: u3's complaints count too (4 ≥ total 3; 4 by ENV ≥ 2 on ENV-T1; 4 at city level ≥ 2)
    plan = PLAN.model_copy(update={"visit_caps": CAPS.model_copy(update={"exempt_kinds": []})})
    u3 = visit_cap_exclusions(INSPECTIONS, DIRECTORY, plan).filter(pl.col("uscc") == "u3")
    assert u3.select("task_id", "reason", "visits").rows() == [
        ("ENV-T1", "visit_cap_department", 4),
        (None, "visit_cap_level", 4),
        (None, "visit_cap_total", 4),
    ]
    # a district plan: the district cap (1) binds, the city cap does not
    district = PLAN.model_copy(update={"visit_caps": CAPS.model_copy(update={"level": "district"})})
    level = visit_cap_exclusions(INSPECTIONS, DIRECTORY, district).filter(pl.col("reason") == "visit_cap_level")
    assert level.select("uscc", "visits", "cap").rows() == [("u1", 2, 1), ("u6", 2, 1)]


def test_no_caps_no_inspections_no_rows():
    assert visit_cap_exclusions(INSPECTIONS, DIRECTORY, PLAN.model_copy(update={"visit_caps": None})).is_empty()
    assert visit_cap_exclusions(pl.DataFrame(), DIRECTORY, PLAN).schema == pl.Schema(VISIT_EXCLUSIONS_SCHEMA)


def test_the_caps_rows_join_the_history_exclusions_with_their_counts():
    history = pl.DataFrame(
        [("u4", "ANNUAL", "r1", "X", d(2026, 3, 1), None)], schema=list(HISTORY_SCHEMA), orient="row"
    ).cast(HISTORY_SCHEMA)
    plan = PLAN.model_copy(update={"exclusion_window_days": 90})
    from_history = exclusions_from_history(history, DIRECTORY, plan)
    assert from_history.schema == pl.Schema(EXCLUSIONS_SCHEMA)  # without visit caps: the columns they always had
    both = with_visit_caps(from_history, visit_cap_exclusions(INSPECTIONS, DIRECTORY, plan))
    assert both.select("uscc", "task_id", "reason", "source_run", "visits").rows() == [
        ("u1", None, "visit_cap_total", "HLT/inspections.xlsx:4", 3),
        ("u2", "AMR-T1", "visit_cap_department", "AMR/inspections.csv:4", 2),
        ("u2", "AMR-T2", "visit_cap_department", "AMR/inspections.csv:4", 2),
        ("u2", None, "visit_cap_level", "AMR/inspections.csv:4", 2),
        ("u4", None, "recently_inspected", "r1", None),
    ]


PLAN_YAML = """plan_id: Q2
period: {start: 2026-04-01, end: 2026-06-30}
visit_caps:
  total: 3
  per_department: 2
  per_level: {市级: 2, district: 3}
  exempt_kinds: [投诉举报, referral]
tasks:
  - {task_id: T, department: AMR, items: [I], count: 1}
"""


def test_the_plan_takes_visit_caps_in_english_or_chinese_words(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN_YAML, encoding="utf-8")
    caps = read_plan(path).visit_caps
    assert caps == VisitCaps(
        total=3,
        per_department=2,
        per_level={"city": 2, "district": 3},
        level="city",
        exempt_kinds=["complaint", "referral"],
    )


@pytest.mark.parametrize(
    "change, says",
    [
        ("exempt_kinds: [投诉举报, referral]", "exempt_kinds: [inspection]"),
        ("per_department: 2", "per_departmnt: 2"),
        ("total: 3", "total: 0"),
    ],
)
def test_a_bad_visit_caps_key_is_refused_naming_it(tmp_path, change, says):
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN_YAML.replace(change, says), encoding="utf-8")
    with pytest.raises(PlanError, match=r"visit_caps"):
        read_plan(path)
