"""The replacement draw (递补, issue 21): a member of a published team who must recuse (回避) or cannot
go is replaced by a second random draw, recorded in the plan's audit log and recomputable from the
bundle by `jointdraw verify`.

    pick_replacement(situation, joint_task_id, replaced, redraws) -> Replacement (or raises NoReplacement)
    apply_redraws(team, redraws) -> the team with every recorded replacement made

The rule. The replacement of `replaced` on joint task J is, among the people of the same department
and role group (a certified inspector for an inspector; an expert or third party with the field the
team now lacks for an expert), those who

* are active with a certificate (or appointment) valid through the plan's end, and, for an
  inspector, an item scope covering the department's items in J;
* may come from where the share's assign mode allows (`local_first`: the entity's district when
  anyone there qualifies, else the department; `cross_district`: never the entity's district;
  `any`: the department);
* need not avoid the entity (declared conflicts, the team of its last inspection: audit avoid.parquet);
* are not on J's team, are not `replaced`, and were not replaced on J before;
* are under the daily cap on J's planned day and under the period's capacity (daily cap × working days)
  with the teams as they stand;

the one with the lowest score(seed, "#redraw|J|n", inspector_id), n = 1 for J's first redraw, 2
for its second… ("#" cannot start a task id: these keys never meet a draw's.) Same bundle, same
redraws in the same order: same replacements.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

import polars as pl

from jointdraw.transforms.assign import EXPERT_ROLES, available_inspectors, expert_needs, share_modes, with_roles
from jointdraw.transforms.plan import Plan
from jointdraw.transforms.score import score

REDRAW = "redraw"  # the audit log's event
REDRAW_KEY = "#redraw"
REASONS = {  # code: (中文, English); what the command accepts, in either language
    "recusal": ("回避", "must recuse (conflict of interest)"),
    "unavailable": ("无法到岗", "unavailable (illness, leave, another duty)"),
    "other": ("其他", "other"),
}
REDRAW_ALGORITHM = (
    "jointdraw-redraw-v1: among the same department and role who may go (available, item scope or field, "
    "assign mode, 回避, not on the team, not replaced on the task, under the daily cap and the period's capacity), "
    "the lowest score(seed, '#redraw|<joint task>|<n>', inspector_id), n = the task's nth redraw"
)
REDRAW_COLUMNS = {  # redraws.parquet: one row per redraw of the published run, in log order
    "seq": pl.Int64,  # the audit log entry
    "time": pl.String,
    "joint_task_id": pl.String,
    "department": pl.String,
    "replaced": pl.String,
    "replaced_role": pl.String,
    "replaced_pool": pl.String,
    "replacement": pl.String,
    "role": pl.String,
    "pool": pl.String,
    "counter": pl.Int64,
    "reason": pl.String,
    "note": pl.String,
    "operator": pl.String,
}


class NoReplacement(ValueError):
    """Nobody may take the place; the message says who was considered and why they were not."""


def reason_code(text: str) -> str:
    """The reason code for what a user typed: recusal | unavailable | other, or their Chinese names
    (回避, 无法到岗, 其他) — `avoid` also means recusal."""
    spelled = {code: code for code in REASONS} | {zh: code for code, (zh, _) in REASONS.items()} | {"avoid": "recusal"}
    code = spelled.get(text.strip().lower()) or spelled.get(text.strip())
    if code is None:
        raise ValueError(f"reason {text!r}: give one of {', '.join(f'{c} ({zh})' for c, (zh, _) in REASONS.items())}")
    return code


@dataclass(frozen=True)
class Situation:
    """What a replacement is drawn from: the published bundle's files (or the run's stage files)."""

    plan: Plan
    seed: str
    joint_tasks: pl.DataFrame  # joint_task_id, uscc, district_code, task_ids, item_ids, planned_date
    team: pl.DataFrame  # as assigned (team.parquet of the assign stage): before any redraw
    pool: pl.DataFrame  # the committed inspectors registry (with role, expertise)
    avoid: pl.DataFrame  # uscc, inspector_id
    items: pl.DataFrame  # item_id, department, expert
    working_days: int


class Replacement(NamedTuple):
    joint_task_id: str
    department: str
    replaced: str
    replaced_role: str
    replaced_pool: str
    replacement: str
    role: str
    pool: str
    counter: int


def redraws_of(entries: list[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    """The redraws of the audit log that change run `run_id`'s teams, in log order: each entry's
    `redraw` details with its seq, time and operator."""
    logged = sorted((e for e in entries if e.get("event") == REDRAW and e["run_id"] == run_id), key=lambda e: e["seq"])
    return [{**json.loads(e["redraw"]), "seq": e["seq"], "time": e["time"], "operator": e["operator"]} for e in logged]


def redraw_details(r: Replacement, reason: str, note: str) -> str:
    """What the audit log's redraw entry records in its `redraw` field: canonical JSON."""
    details = {**r._asdict(), "reason": reason, "note": note}
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def redraw_table(redraws: list[dict[str, Any]]) -> pl.DataFrame:
    """The redraws as a table (redraws.parquet)."""
    return pl.DataFrame([{c: e.get(c) for c in REDRAW_COLUMNS} for e in redraws], schema=REDRAW_COLUMNS).sort("seq")


def redraws_for_people(table: pl.DataFrame) -> pl.DataFrame:
    """redraws.csv / .xlsx: the redraws with the reason, role and pool in words."""
    from jointdraw.transforms.documents.people_headers import REDRAWS, TEAM_VALUES

    return table.with_columns(
        *(pl.col(c).replace_strict(words, default=pl.col(c)) for c, words in TEAM_VALUES.items()),
        reason=pl.col("reason").replace_strict({c: zh for c, (zh, _) in REASONS.items()}, default=pl.col("reason")),
    ).select(list(REDRAWS))


def _swap(team: pl.DataFrame, joint_task_id: str, leaving: str, coming: str, pool: str, role: str) -> pl.DataFrame:
    """`coming` takes `leaving`'s row on the joint task (department, lead, leader), with its own pool and role."""
    row = (pl.col("joint_task_id") == joint_task_id) & (pl.col("inspector_id") == leaving)
    return team.with_columns(
        inspector_id=pl.when(row).then(pl.lit(coming)).otherwise("inspector_id"),
        pool=pl.when(row).then(pl.lit(pool)).otherwise("pool"),
        role=pl.when(row).then(pl.lit(role)).otherwise("role"),
    )


def _in_team_order(team: pl.DataFrame) -> pl.DataFrame:
    return team.sort("joint_task_id", pl.col("lead_department").not_(), "department", "inspector_id")


def apply_redraws(team: pl.DataFrame, redraws: list[dict[str, Any]]) -> pl.DataFrame:
    """The team with every replacement made in log order: the replacement takes the replaced member's
    row (department, lead, leader), its pool and role the redraw's."""
    for e in redraws:
        team = _swap(team, e["joint_task_id"], e["replaced"], e["replacement"], e["pool"], e["role"])
    return _in_team_order(team)


def undo_redraws(team: pl.DataFrame, redraws: list[dict[str, Any]]) -> pl.DataFrame:
    """The team as assigned: the published team with the logged replacements taken back, last first."""
    for e in reversed(redraws):
        team = _swap(team, e["joint_task_id"], e["replacement"], e["replaced"], e["replaced_pool"], e["replaced_role"])
    return _in_team_order(team)


def _share(situation: Situation, joint_task_id: str, department: str) -> pl.DataFrame:
    """The department's share of the joint task, as assign saw it (task_departments' columns)."""
    own = {t.task_id: t.department for t in situation.plan.tasks}
    item_department = dict(situation.items.select("item_id", "department").iter_rows())
    task = situation.joint_tasks.filter(pl.col("joint_task_id") == joint_task_id).row(0, named=True)
    return pl.DataFrame(
        {
            "joint_task_id": [joint_task_id],
            "department": [department],
            "task_ids": [[t for t in task["task_ids"] if own.get(t) == department]],
            "item_ids": [[i for i in task["item_ids"] if item_department.get(i) == department]],
        }
    )


def _lacking_field(situation: Situation, share: pl.DataFrame, members: pl.DataFrame) -> str | None:
    """For an expert's place: the field of expertise the share needs that the other experts do not cover."""
    needed = expert_needs(share, situation.items)["expert"].to_list()
    covered = set(members.filter(pl.col("role").is_in(EXPERT_ROLES))["expertise"].explode().drop_nulls().to_list())
    lacking = sorted(f for f in needed if f not in covered)
    return lacking[0] if lacking else None


def pick_replacement(
    situation: Situation, joint_task_id: str, replaced: str, redraws: list[dict[str, Any]]
) -> Replacement:
    """The replacement of `replaced` on `joint_task_id` after the earlier `redraws` (the audit log's,
    in order), by the rule of this module; raises NoReplacement saying why nobody qualifies."""
    plan = situation.plan
    team = apply_redraws(situation.team, redraws)
    on_task = team.filter(pl.col("joint_task_id") == joint_task_id)
    if on_task.is_empty():
        raise NoReplacement(f"joint task {joint_task_id} has no team (not a staffed joint task of this draw)")
    mine = on_task.filter(pl.col("inspector_id") == replaced)
    if mine.is_empty():
        raise NoReplacement(
            f"{replaced} is not on the team of {joint_task_id} (its team: {', '.join(on_task['inspector_id'])})"
        )
    department, role, was_from = mine["department"].item(), mine["role"].item(), mine["pool"].item()
    task = situation.joint_tasks.filter(pl.col("joint_task_id") == joint_task_id).row(0, named=True)
    share = _share(situation, joint_task_id, department)
    mode = share_modes(share, plan)["mode"].item()
    pool = available_inspectors(situation.pool, plan).filter(pl.col("department") == department)
    others = on_task.join(
        with_roles(situation.pool).select("inspector_id", "expertise"), on="inspector_id", how="left"
    ).filter(pl.col("inspector_id") != replaced)
    if role in EXPERT_ROLES:
        field = _lacking_field(situation, share, others)
        if field is None:
            raise NoReplacement(f"{replaced}'s field of expertise on {joint_task_id} is covered by the others")
        pool = pool.filter(pl.col("role").is_in(EXPERT_ROLES) & pl.col("expertise").list.contains(field))
        what = f"experts or third parties of {department} in {field}"
    else:
        items = share["item_ids"].item().to_list()
        covers = pl.col("item_scope").list.unique().list.eval(pl.element().is_in(items)).list.sum() == len(items)
        pool = pool.filter((pl.col("role") == "inspector") & covers)
        what = f"available inspectors of {department} covering {', '.join(items)}"
    earlier = [e for e in redraws if e["joint_task_id"] == joint_task_id]
    barred = {replaced, *on_task["inspector_id"].to_list(), *(e["replaced"] for e in earlier)}
    avoiding = set(situation.avoid.filter(pl.col("uscc") == task["uscc"])["inspector_id"].to_list())
    loads = team.join(situation.joint_tasks.select("joint_task_id", "planned_date"), on="joint_task_id")
    that_day = loads.filter(pl.col("planned_date") == task["planned_date"]).group_by("inspector_id").len("day")
    period = loads.group_by("inspector_id").len("period")
    capacity = plan.daily_cap * situation.working_days
    free = (
        pool.join(that_day, on="inspector_id", how="left")
        .join(period, on="inspector_id", how="left")
        .with_columns(pl.col("day", "period").fill_null(0))
        .filter(
            ~pl.col("inspector_id").is_in(sorted(barred | avoiding))
            & (pl.col("day") < plan.daily_cap)
            & (pl.col("period") < capacity)
        )
    )
    district = task["district_code"]
    if mode == "cross_district":
        tries = [("cross_district", free.filter(pl.col("district_code") != district))]
    elif mode == "any":
        tries = [("department", free)]
    else:
        tries = [("district", free.filter(pl.col("district_code") == district)), ("department", free)]
    counter = len(earlier) + 1
    for label, candidates in tries:
        if candidates.height:
            key = f"{REDRAW_KEY}|{joint_task_id}|{counter}"
            ranked = candidates.select("inspector_id", "role").with_columns(
                score=pl.Series([score(situation.seed, key, i) for i in candidates["inspector_id"]], dtype=pl.UInt64)
            )
            best = ranked.sort("score", "inspector_id").row(0, named=True)
            return Replacement(
                joint_task_id, department, replaced, role, was_from, best["inspector_id"], best["role"], label, counter
            )
    raise NoReplacement(
        f"nobody may replace {replaced} on {joint_task_id}: of {pool.height} {what} under mode {mode}, "
        f"{len(barred & set(pool['inspector_id']))} are on the team or were replaced, "
        f"{len(avoiding & set(pool['inspector_id']))} must avoid the entity, the others are at the daily cap "
        f"on {task['planned_date']} or at the period's capacity"
        + (f" or in the entity's district {district}" if mode == "cross_district" else "")
    )


def redraw_problems(situation: Situation, redraws: list[dict[str, Any]]) -> list[str]:
    """`verify`: every logged redraw recomputed in order, from the assigned team (`situation.team`: the
    published team with the replacements taken back)."""
    problems = []
    for n, e in enumerate(redraws):
        try:
            again = pick_replacement(situation, e["joint_task_id"], e["replaced"], redraws[:n])
        except NoReplacement as why:
            problems.append(f"redraw #{e['seq']} on {e['joint_task_id']}: cannot be recomputed: {why}")
            continue
        if again.replacement != e["replacement"] or again.counter != e["counter"]:
            problems.append(
                f"redraw #{e['seq']} on {e['joint_task_id']}: logged {e['replaced']} → {e['replacement']}, "
                f"the rule gives {again.replacement}"
            )
    return problems
