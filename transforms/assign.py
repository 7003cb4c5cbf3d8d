"""Random matching of inspectors to joint tasks (SPEC §4.6), and the day of each visit.

    match_inspectors(task_departments, joint_tasks, inspectors, avoid, plan, seed, days) -> Matching

The rules, each applied where the comment says:

* a team: `plan.inspectors_per_department` certified inspectors (role `inspector`) from every
  department in the joint task, and at least two from the lead department (Administrative
  Penalty Law art. 42); one of the lead department's is the team leader (组长);
* an item that requires a field of expertise (items `expert`, 所需专家领域) adds one expert or
  third-party institution (role `expert` / `third_party`) of the department with that field
  in its `expertise` — on top of the certified inspectors, so a team is never experts alone;
* anyone may go when active, with a certificate (or appointment) valid through the plan's
  end; an inspector when the item scope covers all of the department's items in the joint task;
* where from, by the share's assign mode (`assign.mode` of the plan, or of a task; a share of
  several tasks takes the strictest): `local_first` the entity's district (片区) when that
  pool can staff the share, else the department's whole pool; `cross_district` (所所交叉) never
  anyone whose district is the entity's; `any` the department's whole pool;
* never an inspector who must avoid the entity (回避): declared conflicts, or the team of
  the entity's previous inspection (warehouse `visits`);
* workloads even: each pick takes the least-loaded eligible inspector; afterwards, within
  every (department, district, inspectors | experts) pool, a task moves from a member to one
  with at least two fewer whenever the rules allow, until no such move is left;
* at most `plan.daily_cap` visits per inspector per working day, and so at most
  daily_cap × working days per inspector over the period.

Randomness comes from seeded scores, like the draw (transforms/score.py): joint tasks are
staffed in the order of score(seed, "#assign", uscc); between equally loaded inspectors
the lower score(seed, "#inspectors", inspector_id) XOR the task's score wins (so no two
inspectors are always paired); the team leader is the lead department's inspector who comes
first by that same order. ("#" cannot start a task id, so these keys never meet a draw's.) The
same seed and inputs give the same teams and days whatever the row order.

A joint task that cannot be staffed by these rules is returned in `unassigned` with the
department that could not be staffed and why — never dropped, never staffed against a rule.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import polars as pl

from jointdraw.transforms.plan import ASSIGN_MODES, Plan
from jointdraw.transforms.score import score

ASSIGN_ALGORITHM = (
    "jointdraw-assign-v1: joint tasks in order of score(seed, '#assign', uscc); least-loaded eligible inspector, "
    "ties by score(seed, '#inspectors', inspector_id) XOR the task's score; "
    "chain rebalancing per (department, district, role group) pool; days round-robin over working days under the "
    "daily cap; modes local_first | cross_district | any; one expert per required field; leader: the lead "
    "department's first inspector by the tie order"
)
TASK_ORDER_KEY = "#assign"
INSPECTOR_RANK_KEY = "#inspectors"
TEAM_SCHEMA = {
    "joint_task_id": pl.String,
    "department": pl.String,
    "inspector_id": pl.String,
    "lead_department": pl.Boolean,
    "pool": pl.String,  # district | department | cross_district: where the member was drawn from
    "role": pl.String,  # inspector | expert | third_party
    "team_leader": pl.Boolean,  # 组长
}
ROLES = ("inspector", "expert", "third_party")
EXPERT_ROLES = ("expert", "third_party")
UNASSIGNED_SCHEMA = {
    "joint_task_id": pl.String,
    "department": pl.String,
    "reason": pl.String,
    "detail": pl.String,
}  # + reason_zh

# why a department's share of a joint task could not be staffed
REASONS = {  # code: (中文, English)
    "no_available_inspector": (
        "部门无在岗且执法证有效的检查人员",
        "no active inspector with a certificate valid through the plan's end",
    ),
    "no_item_scope": (
        "无检查人员的事项范围覆盖该部门事项",
        "no available inspector's item scope covers the department's items",
    ),
    "pool_too_small": ("符合条件的检查人员不足", "fewer eligible inspectors than the team needs"),
    "all_must_avoid": (
        "符合条件的检查人员均须回避",
        "every eligible inspector must avoid the entity (conflict or last inspection)",
    ),
    "no_cross_district_pool": (
        "片区外无符合条件的检查人员",
        "no eligible inspector outside the entity's district (assign mode cross_district)",
    ),
    "no_expert": (
        "无具备所需专业领域的专家或第三方机构",
        "no available expert or third party with the field of expertise an item requires",
    ),
    "capacity_reached": ("符合条件的检查人员工作量已满", "every eligible inspector is at the period's capacity"),
    "no_common_day": ("无共同工作日", "no working day on which every member is under the daily cap"),
}
REASONS_ZH = {code: zh for code, (zh, _) in REASONS.items()}


class Matching(NamedTuple):
    team: pl.DataFrame  # one row per (joint task, inspector): department, lead_department, pool (district | department)
    planned_dates: pl.DataFrame  # joint_task_id, planned_date
    unassigned: pl.DataFrame  # joint_task_id, department, reason, detail, reason_zh
    workload: pl.DataFrame  # one row per available inspector: department, district_code, tasks, busiest_day
    figures: dict


def available_inspectors(inspectors: pl.DataFrame, plan: Plan) -> pl.DataFrame:
    """The people who may be sent at all: active, certificate valid through the plan's end; with
    their role (none given: `inspector`) and fields of expertise (none: empty)."""
    return with_roles(inspectors).filter(
        (pl.col("status") == "active") & (pl.col("cert_valid_until") >= plan.period.end)
    )


def with_roles(inspectors: pl.DataFrame) -> pl.DataFrame:
    """The registry with `role` and `expertise` filled in: a registry without them (or a row that
    leaves them empty) lists certified inspectors without fields of expertise."""
    if "role" not in inspectors.columns:
        inspectors = inspectors.with_columns(role=pl.lit(None, dtype=pl.String))
    if "expertise" not in inspectors.columns:
        inspectors = inspectors.with_columns(expertise=pl.lit(None, dtype=pl.List(pl.String)))
    return inspectors.with_columns(
        pl.col("role").fill_null("inspector"), pl.col("expertise").fill_null(pl.lit([], dtype=pl.List(pl.String)))
    )


def share_modes(task_departments: pl.DataFrame, plan: Plan) -> pl.DataFrame:
    """(joint_task_id, department, mode): each share's assign mode — its tasks' own (`assign.mode`)
    or the plan's; of several, the strictest (cross_district, then local_first, then any)."""
    strictness = {m: i for i, m in enumerate(ASSIGN_MODES)}
    own = {t.task_id: strictness[(t.assign or plan.assign).mode] for t in plan.tasks}
    plan_wide = strictness[plan.assign.mode]
    strictest = (
        pl.col("task_ids")
        .cast(pl.List(pl.String))  # literal frames may hold empty lists of no type
        .list.eval(pl.element().replace_strict(own, default=plan_wide, return_dtype=pl.Int64))
        .list.min()
        .fill_null(plan_wide)
    )
    modes = dict(enumerate(ASSIGN_MODES))
    return task_departments.select(
        "joint_task_id", "department", mode=strictest.replace_strict(modes, return_dtype=pl.String)
    )


def expert_needs(task_departments: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """(joint_task_id, department, expert): one row per field of expertise a share's items require
    (items' `expert` column, 所需专家领域); none when no item requires one."""
    schema = {"joint_task_id": pl.String, "department": pl.String, "expert": pl.String}
    if "expert" not in items.columns:
        return pl.DataFrame(schema=schema)
    wanted = items.select("item_id", "department", "expert").drop_nulls("expert").filter(pl.col("expert") != "")
    return (
        task_departments.select("joint_task_id", "department", item_id="item_ids")
        .explode("item_id")
        .join(wanted, on=["item_id", "department"])
        .select(list(schema))
        .unique()
        .sort(list(schema))
    )


def avoid_pairs(inspectors: pl.DataFrame, previous: pl.DataFrame) -> pl.DataFrame:
    """(uscc, inspector_id) who must not meet: declared conflicts, and each entity's last team."""
    declared = inspectors.select("inspector_id", uscc="conflicts").explode("uscc").drop_nulls("uscc")
    pairs = pl.concat([declared.select("uscc", "inspector_id"), previous.select("uscc", "inspector_id")])
    return pairs.unique().sort("uscc", "inspector_id")  # sorted: avoid.parquet is published, byte for byte


def team_need(is_lead: bool, plan: Plan) -> int:
    """How many inspectors a department sends to a joint task."""
    return max(2, plan.inspectors_per_department) if is_lead else plan.inspectors_per_department


def _scores(seed: str, key: str, subjects: list[str]) -> np.ndarray:
    return np.array([score(seed, key, s) for s in subjects], dtype=np.uint64)


@dataclass
class _Pools:
    """People as integer positions (sorted by inspector_id), and who may take which share."""

    ids: list[str]
    department: list[str]
    district: list[str]
    rank: np.ndarray
    by_class: dict[int, np.ndarray]  # share class → eligible positions, ascending
    by_class_district: dict[tuple[int, str], np.ndarray]
    class_members: dict[int, set[int]]
    avoid: dict[str, set[int]]
    department_size: dict[str, int] = field(default_factory=dict)  # available inspectors per department
    expert_size: dict[str, int] = field(default_factory=dict)  # available experts and third parties per department
    role: list[str] = field(default_factory=list)  # empty: everyone an inspector
    blocked: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # scratch: who a share avoids

    def __post_init__(self) -> None:
        self.blocked = np.zeros(len(self.ids), dtype=bool)

    def group(self, position: int) -> str:
        """Inspectors and experts are evened out separately: they never take each other's place."""
        return "expert" if self.role and self.role[position] in EXPERT_ROLES else "inspector"


def _eligibility(shares: pl.DataFrame, available: pl.DataFrame) -> pl.DataFrame:
    """(class_id, position): for an inspectors' share, the available inspectors of the department
    whose item scope holds every item of it; for an expert's, the department's available experts
    and third parties with the field of expertise."""
    classes = shares.select("class_id", "department", "item_ids", "expert").unique("class_id")
    inspectors = available.filter(pl.col("role") == "inspector")
    wanted = classes.filter(pl.col("expert").is_null()).explode("item_ids").rename({"item_ids": "item"}).unique()
    scope = inspectors.select("position", "department", item="item_scope").explode("item").unique()
    by_scope = (
        wanted.join(scope, on=["department", "item"])
        .group_by("class_id", "position")
        .len()
        .join(wanted.group_by("class_id").len("needed"), on="class_id")
        .filter(pl.col("len") == pl.col("needed"))
        .select("class_id", "position")
    )
    experts = available.filter(pl.col("role").is_in(EXPERT_ROLES)).select("position", "department", expert="expertise")
    by_field = (
        classes.filter(pl.col("expert").is_not_null())
        .join(experts.explode("expert").unique(), on=["department", "expert"])
        .select("class_id", "position")
    )
    return pl.concat([by_scope, by_field]).unique().sort("class_id", "position")


def _pools(shares: pl.DataFrame, available: pl.DataFrame, avoid: pl.DataFrame, seed: str) -> _Pools:
    eligible = _eligibility(shares, available).join(available.select("position", "district_code"), on="position")
    by_class = {
        c: np.array(p, dtype=np.int64)
        for c, p in eligible.group_by("class_id").agg(pl.col("position").sort()).iter_rows()
    }
    by_class_district = {
        (c, d): np.array(p, dtype=np.int64)
        for c, d, p in eligible.group_by("class_id", "district_code").agg(pl.col("position").sort()).iter_rows()
    }
    position = dict(available.select("inspector_id", "position").iter_rows())
    avoid_sets: dict[str, set[int]] = {}
    for uscc, inspector in avoid.iter_rows():
        if inspector in position:
            avoid_sets.setdefault(uscc, set()).add(position[inspector])
    ids = available["inspector_id"].to_list()
    is_expert = pl.col("role").is_in(EXPERT_ROLES)
    return _Pools(
        ids=ids,
        department=available["department"].to_list(),
        district=available["district_code"].to_list(),
        rank=_scores(seed, INSPECTOR_RANK_KEY, ids),
        by_class=by_class,
        by_class_district=by_class_district,
        class_members={c: set(p.tolist()) for c, p in by_class.items()},
        avoid=avoid_sets,
        department_size=dict(available.filter(~is_expert).group_by("department").len().iter_rows()),
        expert_size=dict(available.filter(is_expert).group_by("department").len().iter_rows()),
        role=available["role"].to_list(),
    )


def _least_loaded(
    candidates: np.ndarray, load: np.ndarray, need: int, rank: np.ndarray, task_score: np.uint64
) -> list[int]:
    """The `need` candidates with the lowest load (`load`: theirs); ties by rank XOR the task's score (then by
    position in `candidates`). A department's pool holds up to thousands and a share needs two or three: the few
    with a load at most the `need`-th lowest, and of those at that load the few with the lowest tie-breakers, are
    found in linear time (`np.partition`) and only they are sorted (sorting them all was most of the matching
    loop's time). Most often the least loaded are `need` or more: they alone are looked at."""
    lowest = (load == load.min()).nonzero()[0]
    if len(lowest) >= need:  # the picks all have the lowest load: the lowest tie-breakers among them
        ties = rank[candidates[lowest]] ^ task_score
        if need == 1:
            return [int(candidates[lowest[ties.argmin()]])]  # argmin: the first of equal ties, as a stable sort
        if len(lowest) > need:
            few = ties <= np.partition(ties, need - 1)[need - 1]
            lowest, ties = lowest[few], ties[few]
        return candidates[lowest[np.argsort(ties, kind="stable")[:need]]].tolist()
    if len(candidates) > 4 * need:  # a handful is sorted as quickly as it is partitioned
        at_most = np.partition(load, need - 1)[need - 1]
        below, at = load < at_most, np.flatnonzero(load == at_most)
        wanted = need - int(below.sum())
        if len(at) > wanted:
            ties = rank[candidates[at]] ^ task_score
            cut = np.partition(ties, wanted - 1)[wanted - 1]
            below[at[ties <= cut]] = True
        else:
            below[at] = True
        candidates, load = candidates[below], load[below]
    order = np.lexsort((rank[candidates] ^ task_score, load))
    return candidates[order[:need]].tolist()


class _Share(NamedTuple):
    """One department's share of a joint task to staff: its certified inspectors (expert None), or
    the one expert or third party of a field of expertise (expert: the field)."""

    class_id: int
    department: str
    district: str  # the entity's
    uscc: str
    need: int
    mode: str
    expert: str | None


def _outside(candidates: np.ndarray | None, pools: _Pools, district: str) -> np.ndarray:
    if candidates is None:
        return np.zeros(0, dtype=np.int64)
    return candidates[np.array([pools.district[c] != district for c in candidates.tolist()], dtype=bool)]


def _mode_pools(pools: _Pools, share: _Share) -> list[tuple[str, np.ndarray | None]]:
    """Where the share may be drawn from, in order of preference: (pool name, candidates)."""
    everyone = pools.by_class.get(share.class_id)
    if share.mode == "cross_district":  # 所所交叉: nobody from the entity's district
        return [("cross_district", _outside(everyone, pools, share.district))]
    if share.mode == "any":
        return [("department", everyone)]
    return [("district", pools.by_class_district.get((share.class_id, share.district))), ("department", everyone)]


def _staff_share(
    pools: _Pools, share: _Share, loads: np.ndarray, capacity: int, task_score: np.uint64, taken: list[int]
) -> tuple[list[int], str, str]:
    """(positions, pool, "") for one share of a joint task, or ([], reason, detail). `taken`: who is
    already on the task (an expert of two required fields goes once)."""
    avoid = [*(pools.avoid.get(share.uscc) or ()), *taken]  # 回避: declared conflicts and the last team
    need = share.need
    for pool, candidates in _mode_pools(pools, share):
        if candidates is None or len(candidates) < need:
            continue
        if avoid:
            pools.blocked[avoid] = True
            candidates = candidates[~pools.blocked[candidates]]
            pools.blocked[avoid] = False
        load = loads[candidates]
        if len(load) and load.max() >= capacity:  # someone's period is full
            free = load < capacity
            candidates, load = candidates[free], load[free]
        if len(candidates) >= need:
            return _least_loaded(candidates, load, need, pools.rank, task_score), pool, ""
    return [], *_why_not_staffed(pools, share, capacity)


def _why_not_staffed(pools: _Pools, share: _Share, capacity: int) -> tuple[str, str]:
    """(reason, detail) of a share nobody could take, most basic reason first."""
    department, need = share.department, share.need
    everyone = pools.by_class.get(share.class_id)
    n = 0 if everyone is None else len(everyone)
    if share.expert is not None and n == 0:
        experts = pools.expert_size.get(department, 0)
        return "no_expert", f"{department}: {experts} available experts or third parties, none in {share.expert}"
    if not pools.department_size.get(department):
        return "no_available_inspector", f"{department}: 0 available"
    if n == 0:
        return (
            "no_item_scope",
            f"{department}: 0 of {pools.department_size[department]} available inspectors cover the items",
        )
    if n < need:
        return "pool_too_small", f"{department}: {n} eligible, {need} needed"
    assert everyone is not None
    if share.mode == "cross_district":
        everyone = _outside(everyone, pools, share.district)
        if len(everyone) < need:
            return (
                "no_cross_district_pool",
                f"{department}: {len(everyone)} eligible outside {share.district}, {need} needed",
            )
    avoid = pools.avoid.get(share.uscc) or set()
    free = everyone[~np.isin(everyone, list(avoid))]
    if len(free) < need:
        return (
            "all_must_avoid",
            f"{department}: {len(everyone)} eligible, {len(everyone) - len(free)} must avoid the entity, {need} needed",
        )
    return "capacity_reached", f"{department}: {len(free)} eligible, all at {capacity} visits for the period"


def _rebalance(
    pools: _Pools,
    members: list[list[int]],
    share_class: list[int],
    share_uscc: list[str],
    slots_of: list[list[int]],
    loads: np.ndarray,
    task_slots: list[list[int]] | None = None,
) -> int:
    """Evens the loads within every (department, district, inspectors | experts) pool: while some
    member has at least two more tasks than another the rules could hand one to — directly, or
    along a chain (A gives a share to B, who gives another to C) — the chain is applied; never to
    someone already on the joint task (`task_slots[slot]`: the slots of the slot's joint task; by
    default the slot alone). Returns the moves made. Each move lowers the sum of squared loads, so
    this ends; when it ends no such chain is left, which is what "as even as the constraints allow"
    means here."""
    pool_of: dict[tuple[str, str, str], list[int]] = {}
    for p in range(len(pools.ids)):
        pool_of.setdefault((pools.department[p], pools.district[p], pools.group(p)), []).append(p)
    position_pool = np.zeros(len(pools.ids), dtype=np.int64)  # each position's pool, as a number
    for number, members_of_pool in enumerate(pool_of.values()):
        position_pool[members_of_pool] = number
    in_pool_cache: dict[tuple[int, int], np.ndarray] = {}

    def eligible_in_pool(class_id: int, key: int) -> np.ndarray:
        if (class_id, key) not in in_pool_cache:
            everyone = pools.by_class.get(class_id, np.zeros(0, dtype=np.int64))
            in_pool_cache[(class_id, key)] = everyone[position_pool[everyone] == key]
        return in_pool_cache[(class_id, key)]

    def on_task(slot: int) -> list[int]:
        return [m for other in task_slots[slot] for m in members[other]] if task_slots else members[slot]

    visited = np.zeros(len(pools.ids), dtype=bool)
    moves = 0
    for pool in pool_of.values():
        key = int(position_pool[pool[0]])
        pool_arr = np.array(pool, dtype=np.int64)
        progress = True
        while progress:
            progress = False
            for hi in sorted(pool, key=lambda p: (-loads[p], pools.rank[p])):
                if loads[hi] < loads[pool_arr].min() + 2:
                    break
                path = _chain(
                    hi,
                    loads[hi] - 2,
                    on_task,
                    share_class,
                    share_uscc,
                    slots_of,
                    loads,
                    pools,
                    eligible_in_pool,
                    key,
                    visited,
                )
                if path:
                    for giver, slot, taker in path:
                        members[slot][members[slot].index(giver)] = taker
                        slots_of[giver].remove(slot)
                        slots_of[taker].append(slot)
                    loads[hi] -= 1
                    loads[path[-1][2]] += 1
                    moves += 1
                    progress = True
                    break
    return moves


def _chain(
    hi: int,
    at_most: int,
    on_task,
    share_class: list[int],
    share_uscc: list[str],
    slots_of: list[list[int]],
    loads: np.ndarray,
    pools: _Pools,
    eligible_in_pool,
    key: int,
    visited: np.ndarray,
) -> list[tuple[int, int, int]]:
    """The shortest chain of hand-overs (giver, share, taker) from `hi` to a pool member with at
    most `at_most` tasks, breadth first in a fixed order; [] when there is none."""
    parent: dict[int, tuple[int, int]] = {}
    queue, touched = [hi], [hi]
    visited[hi] = True
    found = None
    try:
        for u in queue:
            for slot in sorted(slots_of[u]):
                takers = eligible_in_pool(share_class[slot], key)
                takers = takers[~visited[takers]]
                if not len(takers):
                    continue
                avoid = pools.avoid.get(share_uscc[slot])
                for v in takers.tolist():
                    if v in on_task(slot) or (avoid and v in avoid):
                        continue
                    visited[v] = True
                    touched.append(v)
                    parent[v] = (u, slot)
                    if loads[v] <= at_most:
                        found = v
                        break
                    queue.append(v)
                if found is not None:
                    break
            if found is not None:
                break
    finally:
        visited[touched] = False
    if found is None:
        return []
    path = []
    v = found
    while v != hi:
        u, slot = parent[v]
        path.append((u, slot, v))
        v = u
    return path[::-1]


def _schedule(task_members: list[list[int]], days: list[dt.date], daily_cap: int) -> list[int | None]:
    """A day index for each staffed joint task (in staffing order): round-robin over the
    working days so every day gets its share, moving on to the next day whenever a member
    already has `daily_cap` visits that day; None when no day fits."""
    busy: dict[tuple[int, int], int] = {}
    chosen: list[int | None] = []
    n = len(days)
    for position, team in enumerate(task_members):
        found = None
        for offset in range(n):
            day = (position + offset) % n
            if all(busy.get((m, day), 0) < daily_cap for m in team):
                found = day
                break
        if found is not None:
            for m in team:
                busy[(m, found)] = busy.get((m, found), 0) + 1
        chosen.append(found)
    return chosen


def _team_leaders(
    members: list[list[int]],
    share_rows: list[tuple[str, str, bool, str, bool]],
    share_task: list[int],
    task_score_of: list[np.uint64],
    pools: _Pools,
) -> list[int]:
    """Per staffed joint task, its leader (组长): of the lead department's certified inspectors, the
    first by score(seed, '#inspectors', id) XOR the task's score (the order that breaks ties)."""
    leaders = [-1] * len(task_score_of)
    for slot, team in enumerate(members):
        _, _, is_lead, _, is_expert = share_rows[slot]
        if is_lead and not is_expert:
            t = share_task[slot]
            leaders[t] = min(team, key=lambda m: int(pools.rank[m] ^ task_score_of[t]))
    return leaders


def staffing_shares(
    task_departments: pl.DataFrame, joint_tasks: pl.DataFrame, items: pl.DataFrame, plan: Plan
) -> pl.DataFrame:
    """What must be staffed, one row per share: each department's certified inspectors (expert
    null, need = team_need) and one expert or third party per field of expertise its items require
    (need 1); with the entity's district, the share's mode and `class_id` (shares that the same
    people may take have the same class)."""
    base = task_departments.join(joint_tasks.select("joint_task_id", "district_code"), on="joint_task_id").join(
        share_modes(task_departments, plan), on=["joint_task_id", "department"]
    )
    columns = ["joint_task_id", "uscc", "department", "is_lead", "item_ids", "district_code", "mode"]
    inspectors = base.select(
        *columns,
        expert=pl.lit(None, dtype=pl.String),
        need=pl.when("is_lead").then(team_need(True, plan)).otherwise(team_need(False, plan)).cast(pl.Int64),
    )
    experts = base.join(expert_needs(task_departments, items), on=["joint_task_id", "department"]).select(
        *columns, "expert", need=pl.lit(1, dtype=pl.Int64)
    )
    who = pl.when(pl.col("expert").is_null()).then(pl.col("item_ids").list.join(",")).otherwise("expert")
    kind = pl.when(pl.col("expert").is_null()).then(pl.lit("|inspectors|")).otherwise(pl.lit("|expert|"))
    return pl.concat([inspectors, experts]).with_columns(
        class_id=pl.concat_str("department", kind, who).rank("dense").cast(pl.Int64)
    )


def match_inspectors(
    task_departments: pl.DataFrame,
    joint_tasks: pl.DataFrame,
    inspectors: pl.DataFrame,
    avoid: pl.DataFrame,
    plan: Plan,
    seed: str,
    days: list[dt.date],
    items: pl.DataFrame | None = None,
) -> Matching:
    """Teams and days for every joint task that the rules allow; the others, with reasons. `items`
    (item_id, department, expert) says which items require an expert; None: none does."""
    items = pl.DataFrame(schema={"item_id": pl.String, "department": pl.String}) if items is None else items
    available = (
        available_inspectors(inspectors, plan)
        .sort("inspector_id")
        .with_row_index("position")
        .with_columns(pl.col("position").cast(pl.Int64))
    )
    shares = staffing_shares(task_departments, joint_tasks, items, plan)
    pools = _pools(shares, available, avoid, seed)
    capacity = plan.daily_cap * len(days)
    loads = np.zeros(len(pools.ids), dtype=np.int64)

    # staffing order: the tasks' seeded scores; within a task the lead department first, experts after inspectors
    usccs = joint_tasks["uscc"].to_list()
    order = (
        joint_tasks.select("joint_task_id", "uscc")
        .with_columns(task_score=pl.Series(_scores(seed, TASK_ORDER_KEY, usccs)))
        .sort("task_score", "uscc")
    )
    ordered = shares.join(order, on=["joint_task_id", "uscc"]).sort(
        "task_score", "uscc", pl.col("is_lead").not_(), "department", pl.col("expert").is_not_null(), "expert"
    )

    members: list[list[int]] = []  # per staffed share
    share_task: list[int] = []
    share_rows: list[tuple[str, str, bool, str, bool]] = []  # joint task, department, lead, pool, expert share
    share_class: list[int] = []
    share_uscc: list[str] = []
    task_score_of: list[np.uint64] = []  # per staffed joint task
    failed: list[tuple[str, str | None, str, str]] = []
    rows = ordered.select(
        "joint_task_id",
        "uscc",
        "department",
        "is_lead",
        "class_id",
        "district_code",
        "task_score",
        "need",
        "mode",
        "expert",
    ).rows()
    task_index = -1
    i = 0
    while i < len(rows):  # one joint task at a time: all its shares, or none
        jt = rows[i][0]
        j = i
        while j < len(rows) and rows[j][0] == jt:
            j += 1
        picks, problem = [], None
        for _, uscc, department, is_lead, class_id, district, task_score, need, mode, expert in rows[i:j]:
            # a person belongs to one department (ids are unique: the stage checks), and inspectors and experts
            # are apart, so shares never overlap
            share = _Share(class_id, department, district, uscc, need, mode, expert)
            taken = [m for pick in picks for m in pick[3]]
            chosen, pool_or_reason, detail = _staff_share(pools, share, loads, capacity, np.uint64(task_score), taken)
            if not chosen:
                problem = (jt, department, pool_or_reason, detail)
                break
            picks.append((department, is_lead, pool_or_reason, chosen, class_id, uscc, expert is not None))
        if problem:
            failed.append(problem)
        else:
            task_index += 1
            task_score_of.append(np.uint64(rows[i][6]))
            for department, is_lead, pool, chosen, class_id, uscc, is_expert in picks:
                loads[chosen] += 1
                members.append(chosen)
                share_task.append(task_index)
                share_rows.append((jt, department, is_lead, pool, is_expert))
                share_class.append(class_id)
                share_uscc.append(uscc)
        i = j

    slots_of: list[list[int]] = [[] for _ in pools.ids]
    for slot, team in enumerate(members):
        for m in team:
            slots_of[m].append(slot)
    slots_by_task: dict[int, list[int]] = {}
    for slot, t in enumerate(share_task):
        slots_by_task.setdefault(t, []).append(slot)
    task_slots = [slots_by_task[t] for t in share_task]
    moves = _rebalance(pools, members, share_class, share_uscc, slots_of, loads, task_slots)

    # one day for the whole team of a joint task (一日查)
    task_ids = [share_rows[s][0] for s in range(len(members)) if s == 0 or share_task[s] != share_task[s - 1]]
    task_members: list[list[int]] = [[] for _ in task_ids]
    for slot, team in enumerate(members):
        task_members[share_task[slot]].extend(team)
    day_of = _schedule(task_members, days, plan.daily_cap)
    for t, day in enumerate(day_of):
        if day is None:
            failed.append(
                (task_ids[t], None, "no_common_day", f"team of {len(task_members[t])}, daily cap {plan.daily_cap}")
            )

    leaders = _team_leaders(members, share_rows, share_task, task_score_of, pools)
    scheduled = {t for t, day in enumerate(day_of) if day is not None}
    team = pl.DataFrame(
        [
            (
                share_rows[s][0],
                share_rows[s][1],
                pools.ids[m],
                share_rows[s][2],
                share_rows[s][3],
                pools.role[m],
                leaders[share_task[s]] == m,
            )
            for s, team_s in enumerate(members)
            if share_task[s] in scheduled
            for m in team_s
        ],
        schema=TEAM_SCHEMA,
        orient="row",
    ).sort("joint_task_id", pl.col("lead_department").not_(), "department", "inspector_id")
    dates = pl.DataFrame(
        {
            "joint_task_id": [task_ids[t] for t in sorted(scheduled)],
            "planned_date": [days[day_of[t]] for t in sorted(scheduled)],
        },
        schema={"joint_task_id": pl.String, "planned_date": pl.Date},
    ).sort("joint_task_id")
    unassigned = (
        pl.DataFrame(failed, schema=UNASSIGNED_SCHEMA, orient="row")
        .with_columns(reason_zh=pl.col("reason").replace_strict(REASONS_ZH, default=None))
        .sort("joint_task_id", "department")
    )
    workload = _workload(available, team, dates)
    figures = {
        "joint_tasks": joint_tasks.height,
        "assigned": dates.height,
        "unassigned": unassigned.height,
        "unassigned_by_reason": dict(sorted(unassigned.group_by("reason").len().iter_rows())),
        "inspectors_available": available.height,
        "inspectors_sent": team["inspector_id"].n_unique(),
        "team_size": {
            str(k): n for k, n in team.group_by("joint_task_id").len().group_by("len").len("n").sort("len").iter_rows()
        },
        "from_department_pool": team.filter(pl.col("pool") == "department")["joint_task_id"].n_unique(),
        "shares_by_mode": dict(sorted(shares.filter(pl.col("expert").is_null()).group_by("mode").len().iter_rows())),
        "experts_sent": team.filter(pl.col("role").is_in(EXPERT_ROLES)).height,
        "rebalancing_moves": moves,
        "working_days": len(days),
        "capacity_per_inspector": capacity,
    }
    return Matching(team, dates, unassigned, workload, figures)


def _workload(available: pl.DataFrame, team: pl.DataFrame, dates: pl.DataFrame) -> pl.DataFrame:
    """One row per available person: role, tasks over the period and the most visits on one day."""
    per_day = (
        team.join(dates, on="joint_task_id")
        .group_by("inspector_id", "planned_date")
        .len()
        .group_by("inspector_id")
        .agg(tasks=pl.col("len").sum(), busiest_day=pl.col("len").max())
    )
    return (
        available.select("inspector_id", "department", "district_code", "role")
        .join(per_day, on="inspector_id", how="left")
        .with_columns(pl.col("tasks", "busiest_day").fill_null(0).cast(pl.Int64))
        .sort("inspector_id")
    )


def workload_spread(workload: pl.DataFrame) -> pl.DataFrame:
    """Per (department, district, inspectors | experts) pool — the pools assign evens out: members
    (`inspectors`), tasks, min and max tasks per member, spread."""
    group = pl.when(pl.col("role").is_in(EXPERT_ROLES)).then(pl.lit("experts")).otherwise(pl.lit("inspectors"))
    return (
        workload.with_columns(group=group)
        .group_by("department", "district_code", "group")
        .agg(inspectors=pl.len(), tasks=pl.col("tasks").sum(), min=pl.col("tasks").min(), max=pl.col("tasks").max())
        .with_columns(spread=pl.col("max") - pl.col("min"))
        .sort("department", "district_code", "group")
    )


def workload_figures(workload: pl.DataFrame) -> dict:
    """How evenly the tasks fell: per (department, district) pool the spread of tasks per inspector
    (`by_pool`), how many pools with tasks have a spread of at most one, tasks per inspector, the
    busiest day of any inspector."""
    spread = workload_spread(workload)
    busy = spread.filter(pl.col("tasks") > 0)
    return {
        "pools": spread.height,
        "pools_with_tasks": busy.height,
        "pools_spread_at_most_1": busy.filter(pl.col("spread") <= 1).height,
        "max_spread": int(busy["spread"].max() or 0),
        "tasks_per_inspector": {
            "min": int(workload["tasks"].min() or 0),
            "max": int(workload["tasks"].max() or 0),
            "mean": round(float(workload["tasks"].mean() or 0), 2),
        },
        "busiest_day": int(workload["busiest_day"].max() or 0),
        "by_pool": spread.to_dicts(),
    }


PUBLISHED_COLUMNS = [
    "joint_task_id",
    "uscc",
    "name",
    "district_code",
    "address",
    "departments",
    "lead_department",
    "task_ids",
    "item_ids",
    "inspector_ids",
    "planned_date",
]


def published_joint_tasks(joint_tasks: pl.DataFrame, matching: Matching) -> pl.DataFrame:
    """The joint tasks as published (SPEC §6): with their team and day; both empty when unassigned."""
    return with_team(joint_tasks.join(matching.planned_dates, on="joint_task_id", how="left"), matching.team)


def with_team(joint_tasks: pl.DataFrame, team: pl.DataFrame) -> pl.DataFrame:
    """The joint tasks (with their day) and `inspector_ids` from `team` in its order (lead department first):
    what the assign stage publishes, and the bundle after a replacement draw (递补)."""
    teams = team.group_by("joint_task_id", maintain_order=True).agg(inspector_ids=pl.col("inspector_id"))
    return (
        joint_tasks.drop("inspector_ids", strict=False)
        .join(teams, on="joint_task_id", how="left")
        .select(PUBLISHED_COLUMNS)
        .sort("joint_task_id")
    )


def team_for_people(team: pl.DataFrame) -> pl.DataFrame:
    """team.csv / .xlsx: the team with its role and pool in words and the leader marked 是."""
    from jointdraw.transforms.documents.people_headers import TEAM, TEAM_VALUES

    return team.with_columns(
        *(pl.col(c).replace_strict(words, default=pl.col(c)) for c, words in TEAM_VALUES.items()),
        team_leader=pl.when("team_leader").then(pl.lit("是")).otherwise(pl.lit("")),
    ).select(list(TEAM))


def duplicate_inspector_ids(inspectors: pl.DataFrame) -> str | None:
    """What is wrong when inspector ids are not unique across departments (None: they are)."""
    twice = inspectors.filter(pl.col("inspector_id").is_duplicated()).sort("inspector_id", "source_file", "source_line")
    if not twice.height:
        return None
    where = "; ".join(
        f"{r['inspector_id']} in {r['source_file']} line {r['source_line']}"
        for r in twice.head(6).iter_rows(named=True)
    )
    return (
        f"inspector ids must be unique across departments ({twice['inspector_id'].n_unique()} appear more than "
        f"once: {where}); give each inspector one id and rerun from ingest"
    )


def unassigned_for_people(unassigned: pl.DataFrame, joint_tasks: pl.DataFrame) -> pl.DataFrame:
    """unassigned.csv / .xlsx: each joint task that could not be staffed, with its entity (the columns
    of people_headers.UNASSIGNED)."""
    from jointdraw.transforms.documents.people_headers import UNASSIGNED

    return unassigned.join(
        joint_tasks.select("joint_task_id", "uscc", "name", "district_code", "departments"),
        on="joint_task_id",
        how="left",
    ).select(list(UNASSIGNED))
