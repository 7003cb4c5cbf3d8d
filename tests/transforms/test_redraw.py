"""The replacement draw (递补, issue 21) on literal teams whose answers follow from the rule:
deterministic, never the replaced nor anyone replaced before, by the share's mode, under 回避, and a
replaced expert by an expert of the field; verify's recomputation catches an edited redraw."""

import json

import polars as pl
import pytest

from jointdraw.transforms.assign import avoid_pairs, match_inspectors
from jointdraw.transforms.redraw import (
    NoReplacement,
    Situation,
    apply_redraws,
    pick_replacement,
    reason_code,
    redraw_details,
    redraw_problems,
    undo_redraws,
)
from tests.transforms.test_assign import (
    DAYS,
    HOME_AND_AWAY,
    NO_PREVIOUS,
    _inspector,
    _inspectors,
    _items,
    _plan,
    _tasks,
    _with_role,
)


def _situation(inspectors, rows, plan, items=None, previous=NO_PREVIOUS, seed="s") -> Situation:
    items = _items([("A1", "AMR", None), ("A2", "AMR", None)]) if items is None else items
    joint, shares = _tasks(rows)
    avoid = avoid_pairs(inspectors, previous)
    m = match_inspectors(shares, joint, inspectors, avoid, plan, seed, DAYS, items)
    joint_tasks = joint.join(m.planned_dates, on="joint_task_id").join(
        shares.group_by("joint_task_id").agg(pl.col("task_ids").list.explode(), pl.col("item_ids").list.explode()),
        on="joint_task_id",
    )
    return Situation(plan, seed, joint_tasks, m.team, inspectors, avoid, items, len(DAYS))


def _redraw(situation: Situation, joint_task: str, replaced: str, earlier: list[dict]) -> dict:
    r = pick_replacement(situation, joint_task, replaced, earlier)
    return {**json.loads(redraw_details(r, "recusal", "")), "seq": 10 + len(earlier)}


def test_a_redraw_is_deterministic_and_never_picks_the_replaced_or_a_member():
    s = _situation(
        _inspectors([_inspector(f"A{i}") for i in range(6)]), [("U1", "440303", [("AMR", ["A1"], True)])], _plan()
    )
    team = s.team["inspector_id"].to_list()
    first = _redraw(s, "P-U1", team[0], [])
    assert first == _redraw(s, "P-U1", team[0], []) and first["replacement"] not in team
    assert first["counter"] == 1 and first["pool"] == "district"
    # the second redraw of the task: a new counter, never the first replaced nor the replacement's teammates
    after = apply_redraws(s.team, [first])
    second = _redraw(s, "P-U1", first["replacement"], [first])
    assert second["counter"] == 2 and second["replacement"] not in {*team, first["replacement"]}
    assert apply_redraws(s.team, [first, second])["team_leader"].sum() == 1
    assert undo_redraws(apply_redraws(s.team, [first, second]), [first, second]).equals(s.team)
    assert after.height == s.team.height


def test_a_redraw_keeps_the_mode_and_avoids_the_entity():
    away = [_inspector("W3", district="440304"), _inspector("W9", district="440304", conflicts=["U1"])]
    inspectors = _inspectors(HOME_AND_AWAY + away)
    s = _situation(inspectors, [("U1", "440303", [("AMR", ["A1"], True)])], _plan(assign={"mode": "cross_district"}))
    gone = s.team["inspector_id"][0]
    r = _redraw(s, "P-U1", gone, [])
    assert r["pool"] == "cross_district" and r["replacement"].startswith("W") and r["replacement"] != "W9"
    # nobody left outside the district: refused with why, nothing drawn
    r2 = _redraw(s, "P-U1", r["replacement"], [r])
    with pytest.raises(NoReplacement, match="nobody may replace"):
        _redraw(s, "P-U1", r2["replacement"], [r, r2])


def test_an_expert_is_replaced_by_an_expert_of_the_field():
    inspectors = _with_role(
        _inspectors(HOME_AND_AWAY + [_inspector(f"EX{i}", items=[]) for i in range(3)]),
        {"EX0": ("expert", ["food"]), "EX1": ("third_party", ["food"]), "EX2": ("expert", ["drug"])},
    )
    items = _items([("A1", "AMR", "food")])
    s = _situation(inspectors, [("U1", "440303", [("AMR", ["A1"], True)])], _plan(), items=items)
    expert = s.team.filter(pl.col("role") != "inspector")["inspector_id"].item()
    r = _redraw(s, "P-U1", expert, [])
    assert r["replacement"] in {"EX0", "EX1"} - {expert} and r["replaced_role"] in ("expert", "third_party")


def test_verify_recomputes_redraws_and_catches_an_edited_one():
    s = _situation(
        _inspectors([_inspector(f"A{i}") for i in range(6)]), [("U1", "440303", [("AMR", ["A1"], True)])], _plan()
    )
    r = _redraw(s, "P-U1", s.team["inspector_id"][0], [])
    assert redraw_problems(s, [r]) == []
    chosen = {
        **r,
        "replacement": next(
            i for i in ("A0", "A1", "A2", "A3", "A4", "A5") if i not in s.team["inspector_id"] and i != r["replacement"]
        ),
    }
    assert "the rule gives" in redraw_problems(s, [chosen])[0]


def test_a_member_not_on_the_team_and_reasons():
    s = _situation(
        _inspectors([_inspector(f"A{i}") for i in range(4)]), [("U1", "440303", [("AMR", ["A1"], True)])], _plan()
    )
    with pytest.raises(NoReplacement, match="not on the team"):
        pick_replacement(s, "P-U1", "NOBODY", [])
    assert reason_code("回避") == reason_code("avoid") == "recusal" and reason_code("无法到岗") == "unavailable"
    with pytest.raises(ValueError, match="give one of"):
        reason_code("bored")
