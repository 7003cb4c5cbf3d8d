"""Matching inspectors to joint tasks (SPEC §4.6) on literal pools whose answers follow from
the rules, and the independent rule check that guards the stage."""

import datetime as dt

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from jointdraw.transforms.assign import (
    _least_loaded,
    _Pools,
    _rebalance,
    avoid_pairs,
    match_inspectors,
    workload_spread,
)
from jointdraw.transforms.plan import Plan
from jointdraw.transforms.team_rules import team_violations
from jointdraw.transforms.workdays import working_days

DAYS = [dt.date(2026, 3, 2) + dt.timedelta(days=i) for i in range(5)]  # Mon 2 – Fri 6 March 2026
NO_PREVIOUS = pl.DataFrame(schema={"uscc": pl.String, "inspector_id": pl.String})


def _plan(**extra) -> Plan:
    return Plan.model_validate(
        {
            "plan_id": "P",
            "period": {"start": "2026-03-02", "end": "2026-03-06"},
            "tasks": [{"task_id": "T", "department": "AMR", "items": ["A1"], "count": 1}],
            **extra,
        }
    )


def _inspectors(rows) -> pl.DataFrame:
    """rows: (id, department, district, items, status, valid_until, conflicts)."""
    return pl.DataFrame(
        rows,
        schema={
            "inspector_id": pl.String,
            "department": pl.String,
            "district_code": pl.String,
            "item_scope": pl.List(pl.String),
            "status": pl.String,
            "cert_valid_until": pl.Date,
            "conflicts": pl.List(pl.String),
        },
        orient="row",
    )


def _inspector(
    i, department="AMR", district="440303", items=("A1", "A2"), status="active", until=dt.date(2028, 1, 1), conflicts=()
):
    return (i, department, district, list(items), status, until, list(conflicts))


def _tasks(rows):
    """rows: (uscc, district, [(department, items, is_lead), ...]) → joint_tasks, task_departments."""
    joint = pl.DataFrame(
        [(f"P-{u}", u, d) for u, d, _ in rows], schema=["joint_task_id", "uscc", "district_code"], orient="row"
    )
    shares = pl.DataFrame(
        [(f"P-{u}", u, dept, lead, list(items), [f"T-{dept}"]) for u, _, parts in rows for dept, items, lead in parts],
        schema={
            "joint_task_id": pl.String,
            "uscc": pl.String,
            "department": pl.String,
            "is_lead": pl.Boolean,
            "item_ids": pl.List(pl.String),
            "task_ids": pl.List(pl.String),
        },
        orient="row",
    )
    return joint, shares


def _match(inspectors, rows, plan=None, previous=NO_PREVIOUS, seed="s", days=DAYS):
    plan = plan or _plan()
    joint, shares = _tasks(rows)
    avoid = avoid_pairs(inspectors, previous)
    m = match_inspectors(shares, joint, inspectors, avoid, plan, seed, days)
    assert team_violations(
        joint, shares, m.team, m.planned_dates, m.unassigned, inspectors, avoid, plan, days
    ).is_empty()
    return m


def test_a_two_department_task_gets_two_from_the_lead_and_one_from_the_other():
    inspectors = _inspectors(
        [_inspector(f"A{i}") for i in range(4)] + [_inspector(f"E{i}", "ENV", items=["E1"]) for i in range(3)]
    )
    m = _match(inspectors, [("U1", "440303", [("ENV", ["E1"], True), ("AMR", ["A1"], False)])])
    sent = dict(m.team.group_by("department").len().iter_rows())
    assert sent == {"ENV": 2, "AMR": 1} and m.team["pool"].unique().to_list() == ["district"]
    assert m.planned_dates["planned_date"].item() in DAYS


def test_the_district_pool_first_then_the_department_pool():
    # only one AMR inspector in 440304 covers A1: the lead needs two, so the whole department pool staffs it
    inspectors = _inspectors(
        [
            _inspector("A1", district="440304"),
            _inspector("A2", district="440304", items=["A2"]),
            _inspector("A3", district="440305"),
            _inspector("A4", district="440305"),
        ]
    )
    m = _match(inspectors, [("U1", "440304", [("AMR", ["A1"], True)]), ("U2", "440305", [("AMR", ["A1"], True)])])
    pools = dict(m.team.group_by("joint_task_id").agg(pl.col("pool").first()).iter_rows())
    assert pools == {"P-U1": "department", "P-U2": "district"}
    assert set(m.team.filter(pl.col("joint_task_id") == "P-U2")["inspector_id"]) == {"A3", "A4"}


def test_conflicts_and_the_last_inspection_are_avoided():
    inspectors = _inspectors([_inspector("A1", conflicts=["U1"]), _inspector("A2"), _inspector("A3"), _inspector("A4")])
    previous = pl.DataFrame({"uscc": ["U1"], "inspector_id": ["A2"]})
    m = _match(inspectors, [("U1", "440303", [("AMR", ["A1"], True)])], previous=previous)
    assert set(m.team["inspector_id"]) == {"A3", "A4"}


@pytest.mark.parametrize(
    ("inspectors", "reason"),
    [
        # everyone on leave or with a certificate that ends before the plan does
        ([_inspector("A1", status="on_leave"), _inspector("A2", until=dt.date(2026, 3, 5))], "no_available_inspector"),
        ([_inspector("A1", items=["A2"]), _inspector("A2", items=["A2"])], "no_item_scope"),
        ([_inspector("A1"), _inspector("A2", items=["A2"])], "pool_too_small"),
        ([_inspector("A1", conflicts=["U1"]), _inspector("A2"), _inspector("A3", conflicts=["U1"])], "all_must_avoid"),
    ],
)
def test_a_task_that_cannot_be_staffed_is_listed_with_the_reason(inspectors, reason):
    m = _match(
        _inspectors(inspectors), [("U1", "440303", [("AMR", ["A1"], True)]), ("U2", "440303", [("AMR", ["A2"], True)])]
    )
    failed = m.unassigned.filter(pl.col("joint_task_id") == "P-U1")
    assert failed["reason"].to_list() == [reason] and failed["department"].to_list() == ["AMR"]
    assert m.team.filter(pl.col("joint_task_id") == "P-U1").is_empty()  # never staffed against the rules


def test_a_share_that_fails_leaves_no_half_team_behind():
    # ENV leads and can be staffed; AMR cannot (nobody covers A9): the whole joint task is unassigned
    inspectors = _inspectors(
        [_inspector("E1", "ENV", items=["E1"]), _inspector("E2", "ENV", items=["E1"]), _inspector("A1")]
    )
    m = _match(inspectors, [("U1", "440303", [("ENV", ["E1"], True), ("AMR", ["A9"], False)])])
    assert m.team.is_empty() and m.unassigned.rows() == [
        (
            "P-U1",
            "AMR",
            "no_item_scope",
            "AMR: 0 of 1 available inspectors cover the items",
            "无检查人员的事项范围覆盖该部门事项",
        )
    ]
    assert m.workload["tasks"].sum() == 0


def test_loads_in_a_pool_differ_by_at_most_one():
    # 5 interchangeable inspectors, 23 tasks × 2 = 46 visits: 9 or 10 each
    inspectors = _inspectors([_inspector(f"A{i}") for i in range(5)])
    m = _match(
        inspectors, [(f"U{i:02d}", "440303", [("AMR", ["A1"], True)]) for i in range(23)], plan=_plan(daily_cap=4)
    )
    assert sorted(m.workload["tasks"]) == [9, 9, 9, 9, 10]
    assert workload_spread(m.workload)["spread"].to_list() == [1]
    # and no two inspectors are always paired (the tie-break changes with each task)
    pairs = m.team.group_by("joint_task_id").agg(pl.col("inspector_id").sort().str.join("+"))["inspector_id"]
    assert pairs.n_unique() >= 8


def test_a_chain_of_hand_overs_evens_what_a_direct_move_cannot():
    # one pool: G may take classes 1 and 2, S1 only class 1, S2 only class 2. Loads G 2, S1 3, S2 1.
    # S1 cannot give to S2 (class 1 only) and G is only one below S1; but S1 → G (class 1) and
    # G → S2 (class 2) leaves 2, 2, 2
    pools = _Pools(
        ids=["G", "S1", "S2"],
        department=["AMR"] * 3,
        district=["440303"] * 3,
        rank=np.array([0, 1, 2], dtype=np.uint64),
        by_class={1: np.array([0, 1]), 2: np.array([0, 2])},
        by_class_district={},
        class_members={1: {0, 1}, 2: {0, 2}},
        avoid={},
    )
    members = [[1], [1], [1], [0], [0], [2]]
    share_class = [1, 1, 1, 2, 2, 2]
    slots_of = [[3, 4], [0, 1, 2], [5]]
    loads = np.array([2, 3, 1])
    moves = _rebalance(pools, members, share_class, ["U"] * 6, slots_of, loads)
    assert moves == 1 and loads.tolist() == [2, 2, 2]
    assert all(m in pools.class_members[c] for team, c in zip(members, share_class, strict=True) for m in team)


def test_the_daily_cap_and_the_period_capacity():
    # two inspectors, cap 1 a day, 5 working days: five tasks fit (one a day), the sixth cannot
    inspectors = _inspectors([_inspector("A1"), _inspector("A2")])
    m = _match(inspectors, [(f"U{i}", "440303", [("AMR", ["A1"], True)]) for i in range(6)], plan=_plan(daily_cap=1))
    assert sorted(m.planned_dates["planned_date"]) == DAYS
    assert m.unassigned["reason"].to_list() == ["capacity_reached"]


def test_same_seed_same_teams_whatever_the_row_order_and_another_seed_differs():
    inspectors = _inspectors([_inspector(f"A{i}", district=d) for i, d in enumerate(["440303"] * 6 + ["440304"] * 4)])
    rows = [(f"U{i:02d}", "440303" if i % 3 else "440304", [("AMR", ["A1"], True)]) for i in range(30)]
    first = _match(inspectors, rows)
    again = _match(inspectors.reverse(), rows[::-1])
    assert_frame_equal(first.team, again.team) and assert_frame_equal(first.planned_dates, again.planned_dates)
    other = _match(inspectors, rows, seed="another")
    assert not first.team.equals(other.team)


def test_the_rule_check_catches_a_broken_team():
    inspectors = _inspectors([_inspector(f"A{i}") for i in range(3)] + [_inspector("X", conflicts=["U1"])])
    plan = _plan()
    joint, shares = _tasks([("U1", "440303", [("AMR", ["A1"], True)])])
    avoid = avoid_pairs(inspectors, NO_PREVIOUS)
    m = match_inspectors(shares, joint, inspectors, avoid, plan, "s", DAYS)
    swapped = m.team.with_columns(
        inspector_id=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("X")).otherwise("inspector_id")
    )
    rules = team_violations(joint, shares, swapped, m.planned_dates, m.unassigned, inspectors, avoid, plan, DAYS)[
        "rule"
    ].to_list()
    assert rules == ["must_avoid"]
    saturday = m.planned_dates.with_columns(planned_date=pl.lit(dt.date(2026, 3, 7)))
    leader_alone = m.team.filter("team_leader")
    rules = team_violations(joint, shares, leader_alone, saturday, m.unassigned, inspectors, avoid, plan, DAYS)[
        "rule"
    ].to_list()
    assert rules == ["team_size", "working_day"]


def test_working_days_follow_the_official_calendar():
    october = working_days(dt.date(2026, 10, 1), dt.date(2026, 10, 12))
    # National Day 1–7 October 2026 off (6th and 7th by the State Council's notice), Saturday 10 October worked (调休)
    assert october.days == [dt.date(2026, 10, 8), dt.date(2026, 10, 9), dt.date(2026, 10, 10), dt.date(2026, 10, 12)]
    assert october.note.startswith("official")
    assert "Monday–Friday" in working_days(dt.date(2031, 1, 6), dt.date(2031, 1, 10)).note


# issue 21: assign modes, experts and third parties, the team leader


def _items(rows) -> pl.DataFrame:
    """rows: (item_id, department, expert field or None)."""
    return pl.DataFrame(rows, schema=["item_id", "department", "expert"], orient="row")


def _with_role(inspectors: pl.DataFrame, roles: dict[str, tuple[str, list[str]]]) -> pl.DataFrame:
    """roles: inspector_id → (role, expertise); the others are certified inspectors."""
    return inspectors.with_columns(
        role=pl.col("inspector_id").replace_strict({i: r for i, (r, _) in roles.items()}, default=None),
        expertise=pl.col("inspector_id").replace_strict(
            {i: e for i, (_, e) in roles.items()}, default=None, return_dtype=pl.List(pl.String)
        ),
    )


def _match_items(inspectors, rows, items, plan):
    joint, shares = _tasks(rows)
    avoid = avoid_pairs(inspectors, NO_PREVIOUS)
    m = match_inspectors(shares, joint, inspectors, avoid, plan, "s", DAYS, items)
    assert team_violations(
        joint, shares, m.team, m.planned_dates, m.unassigned, inspectors, avoid, plan, DAYS, items
    ).is_empty()
    return m


HOME_AND_AWAY = [_inspector(f"H{i}", district="440303") for i in range(3)] + [
    _inspector(f"W{i}", district="440304") for i in range(3)
]


def test_cross_district_never_sends_anyone_from_the_entitys_district():
    m = _match(
        _inspectors(HOME_AND_AWAY),
        [("U1", "440303", [("AMR", ["A1"], True)])],
        plan=_plan(assign={"mode": "cross_district"}),
    )
    assert set(m.team["pool"]) == {"cross_district"} and all(i.startswith("W") for i in m.team["inspector_id"])
    # local_first (the default) takes the entity's own district
    m = _match(_inspectors(HOME_AND_AWAY), [("U1", "440303", [("AMR", ["A1"], True)])])
    assert set(m.team["pool"]) == {"district"} and all(i.startswith("H") for i in m.team["inspector_id"])


def test_a_task_may_set_its_own_mode_and_a_share_takes_the_strictest():
    plan = Plan.model_validate(
        {
            "plan_id": "P",
            "period": {"start": "2026-03-02", "end": "2026-03-06"},
            "tasks": [
                {
                    "task_id": "T-AMR",
                    "department": "AMR",
                    "items": ["A1"],
                    "count": 1,
                    "assign": {"mode": "cross_district"},
                }
            ],
        }
    )
    m = _match(_inspectors(HOME_AND_AWAY), [("U1", "440303", [("AMR", ["A1"], True)])], plan=plan)
    assert set(m.team["pool"]) == {"cross_district"}
    only_home = _inspectors(HOME_AND_AWAY[:3])
    m = _match(only_home, [("U1", "440303", [("AMR", ["A1"], True)])], plan=plan)
    assert m.unassigned.select("reason", "detail").row(0) == (
        "no_cross_district_pool",
        "AMR: 0 eligible outside 440303, 2 needed",
    )
    assert m.unassigned["reason_zh"].item() == "片区外无符合条件的检查人员"


def test_mode_any_draws_from_the_whole_department():
    m = _match(
        _inspectors(HOME_AND_AWAY), [("U1", "440303", [("AMR", ["A1"], True)])], plan=_plan(assign={"mode": "any"})
    )
    assert set(m.team["pool"]) == {"department"}


def test_an_item_that_requires_an_expert_brings_one_on_top_of_the_inspectors():
    inspectors = _with_role(
        _inspectors(
            HOME_AND_AWAY + [_inspector("EX1", items=[]), _inspector("TP1", items=[]), _inspector("EX2", items=[])]
        ),
        {"EX1": ("expert", ["food"]), "TP1": ("third_party", ["lab", "food"]), "EX2": ("expert", ["drug"])},
    )
    items = _items([("A1", "AMR", "food"), ("A2", "AMR", None)])
    m = _match_items(inspectors, [("U1", "440303", [("AMR", ["A1"], True)])], items, _plan())
    roles = dict(m.team.group_by("role").len().iter_rows())
    assert roles["inspector"] == 2 and roles.get("expert", 0) + roles.get("third_party", 0) == 1
    assert set(m.team.filter(pl.col("role") != "inspector")["inspector_id"]) <= {"EX1", "TP1"}
    leader = m.team.filter("team_leader")
    assert leader.height == 1 and leader["role"].item() == "inspector" and leader["lead_department"].item()
    # an item without an expert field needs none
    m = _match_items(inspectors, [("U2", "440303", [("AMR", ["A2"], True)])], items, _plan())
    assert set(m.team["role"]) == {"inspector"}


def test_a_task_whose_expert_cannot_be_found_is_unassigned_and_experts_never_go_alone():
    inspectors = _with_role(_inspectors(HOME_AND_AWAY + [_inspector("EX2", items=[])]), {"EX2": ("expert", ["drug"])})
    items = _items([("A1", "AMR", "food")])
    m = _match_items(inspectors, [("U1", "440303", [("AMR", ["A1"], True)])], items, _plan())
    assert m.team.is_empty() and m.unassigned.select("reason", "detail").row(0) == (
        "no_expert",
        "AMR: 1 available experts or third parties, none in food",
    )
    # experts only, no certified inspector: not a team
    experts_only = _with_role(
        _inspectors([_inspector("EX1", items=["A1"]), _inspector("EX3", items=["A1"])]),
        {"EX1": ("expert", ["food"]), "EX3": ("expert", ["food"])},
    )
    m = _match_items(experts_only, [("U1", "440303", [("AMR", ["A1"], True)])], items, _plan())
    assert m.team.is_empty() and m.unassigned["reason"].to_list() == ["no_available_inspector"]


def test_the_rule_check_knows_modes_roles_and_the_leader():
    # cross_district applies to experts as well: the expert comes from another district too
    away_expert = _inspector("EX1", district="440304", items=[])
    inspectors = _with_role(_inspectors(HOME_AND_AWAY + [away_expert]), {"EX1": ("expert", ["food"])})
    items = _items([("A1", "AMR", "food")])
    plan = _plan(assign={"mode": "cross_district"})
    joint, shares = _tasks([("U1", "440303", [("AMR", ["A1"], True)])])
    avoid = avoid_pairs(inspectors, NO_PREVIOUS)
    m = match_inspectors(shares, joint, inspectors, avoid, plan, "s", DAYS, items)

    def broken(team: pl.DataFrame) -> list[str]:
        return team_violations(
            joint, shares, team, m.planned_dates, m.unassigned, inspectors, avoid, plan, DAYS, items
        )["rule"].to_list()

    assert m.team.height == 3 and broken(m.team) == []
    home = m.team.with_columns(inspector_id=pl.when(pl.col("team_leader")).then(pl.lit("H0")).otherwise("inspector_id"))
    assert broken(home) == ["cross_district"]
    assert broken(m.team.filter(pl.col("role") == "inspector")) == ["expert_missing"]
    assert broken(m.team.with_columns(team_leader=pl.lit(False))) == ["team_leader"]
    assert broken(m.team.with_columns(role=pl.lit("inspector"))) == [
        "expert_missing",
        "item_scope",  # the expert, now counted as an inspector, lacks the item
        "role",
        "team_size",
    ]
    assert broken(m.team.with_columns(pool=pl.lit("district"))) == ["assign_mode"] * 3 + ["district_pool"] * 3


def test_least_loaded_picks_what_sorting_every_candidate_picks():
    """`_least_loaded` sorts only the few candidates that can be picked: the same picks, in the same order, as
    sorting them all by (load, rank XOR the task's score, position) — with ties in load and in rank."""
    rng = np.random.default_rng(2021)
    for trial in range(3000):
        people = 300
        loads = rng.integers(0, int(rng.integers(1, 6)), people)
        tied = trial % 3 == 0  # ranks of 0–3: ties in rank too
        rank = rng.integers(0, 4 if tied else 2**63, people, dtype=np.uint64)
        candidates = np.sort(rng.choice(people, int(rng.integers(1, 200)), replace=False)).astype(np.int64)
        need = int(rng.integers(1, min(len(candidates), 5) + 1))
        task_score = np.uint64(rng.integers(0, 2**63))
        every = candidates[np.lexsort((rank[candidates] ^ task_score, loads[candidates]))][:need].tolist()
        assert _least_loaded(candidates, loads[candidates], need, rank, task_score) == every, trial
