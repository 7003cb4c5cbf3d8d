"""The rules of SPEC §4.6 checked on a finished matching, row by row, by a path independent of
transforms/assign.py: the assign stage refuses to write a matching that breaks one, and the
tests check every generated city with it.

    team_violations(...) -> one row per broken rule: joint_task_id, rule, detail (none: all kept)
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from jointdraw.transforms.assign import (
    EXPERT_ROLES,
    available_inspectors,
    expert_needs,
    share_modes,
    team_need,
    with_roles,
)
from jointdraw.transforms.plan import Plan

VIOLATION_SCHEMA = {"joint_task_id": pl.String, "rule": pl.String, "detail": pl.String}


def _violations(frame: pl.DataFrame, rule: str, detail: pl.Expr) -> pl.DataFrame:
    return frame.select("joint_task_id", rule=pl.lit(rule), detail=detail.cast(pl.String))


def team_violations(
    joint_tasks: pl.DataFrame,
    task_departments: pl.DataFrame,
    team: pl.DataFrame,
    planned_dates: pl.DataFrame,
    unassigned: pl.DataFrame,
    inspectors: pl.DataFrame,
    avoid: pl.DataFrame,
    plan: Plan,
    days: list[dt.date],
    items: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """`items` (item_id, department, expert): which items require an expert (None: none does)."""
    items = pl.DataFrame(schema={"item_id": pl.String, "department": pl.String}) if items is None else items
    inspectors = with_roles(inspectors)
    found: list[pl.DataFrame] = []
    staffed = planned_dates.select("joint_task_id").unique()
    # every joint task is staffed or listed as unassigned, exactly once — never dropped
    fate = (
        joint_tasks.select("joint_task_id")
        .join(staffed.with_columns(staffed=pl.lit(1)), on="joint_task_id", how="left")
        .join(
            unassigned.select("joint_task_id").unique().with_columns(listed=pl.lit(1)), on="joint_task_id", how="left"
        )
        .with_columns(pl.col("staffed", "listed").fill_null(0))
    )
    found.append(
        _violations(
            fate.filter(pl.col("staffed") + pl.col("listed") != 1),
            "staffed_or_listed_once",
            pl.format("staffed {}, listed {}", "staffed", "listed"),
        )
    )
    # the team of each department: team_need certified inspectors, of that department (experts come on top)
    need = task_departments.join(staffed, on="joint_task_id").with_columns(
        need=pl.col("is_lead").map_elements(lambda lead: team_need(lead, plan), return_dtype=pl.Int64)
    )
    sent = team.filter(pl.col("role") == "inspector").group_by("joint_task_id", "department").len("sent")
    sizes = need.join(sent, on=["joint_task_id", "department"], how="full", coalesce=True).with_columns(
        pl.col("sent", "need").fill_null(0)
    )
    found.append(
        _violations(
            sizes.filter(pl.col("sent") != pl.col("need")),
            "team_size",
            pl.format("{}: {} sent, {} needed", "department", "sent", "need"),
        )
    )
    found.append(
        _violations(
            team.group_by("joint_task_id")
            .agg(n=pl.len(), u=pl.col("inspector_id").n_unique())
            .filter(pl.col("n") != pl.col("u")),
            "same_inspector_twice",
            pl.col("n"),
        )
    )
    members = team.join(
        inspectors.select(
            "inspector_id",
            own_department="department",
            own_district="district_code",
            status="status",
            cert_valid_until="cert_valid_until",
            item_scope="item_scope",
            own_role="role",
            expertise="expertise",
        ),
        on="inspector_id",
        how="left",
    )
    found.append(
        _violations(
            members.filter(pl.col("own_role") != pl.col("role")),
            "role",
            pl.format("{} is {} in the registry, {} on the team", "inspector_id", "own_role", "role"),
        )
    )
    # a field of expertise an item requires: exactly one expert or third party of the department who has it
    wanted = expert_needs(task_departments, items).join(staffed, on="joint_task_id")
    experts = members.filter(pl.col("role").is_in(EXPERT_ROLES))
    covered = experts.explode("expertise").join(
        wanted, left_on=["joint_task_id", "department", "expertise"], right_on=["joint_task_id", "department", "expert"]
    )
    found.append(
        _violations(
            wanted.join(
                covered.select("joint_task_id", "department", expert="expertise"), on=list(wanted.columns), how="anti"
            ),
            "expert_missing",
            pl.format("{}: no expert in {}", "department", "expert"),
        )
    )
    fields = wanted.group_by("joint_task_id", "department").len("fields")
    found.append(
        _violations(
            experts.group_by("joint_task_id", "department")
            .len("experts")
            .join(fields, on=["joint_task_id", "department"], how="left")
            .filter(pl.col("experts") != pl.col("fields").fill_null(0)),
            "expert_count",
            pl.format("{}: {} experts for {} required fields", "department", "experts", pl.col("fields").fill_null(0)),
        )
    )
    # one leader (组长) per team: a certified inspector of the lead department
    leaders = team.group_by("joint_task_id").agg(
        n=pl.col("team_leader").sum(),
        ok=(pl.col("team_leader") & pl.col("lead_department") & (pl.col("role") == "inspector")).sum(),
    )
    found.append(
        _violations(
            leaders.filter((pl.col("n") != 1) | (pl.col("ok") != 1)),
            "team_leader",
            pl.format("{} leaders, {} a lead-department inspector", "n", "ok"),
        )
    )
    found.append(
        _violations(
            members.filter(pl.col("own_department") != pl.col("department")),
            "department",
            pl.format("{} of {} sent for {}", "inspector_id", "own_department", "department"),
        )
    )
    ok = available_inspectors(inspectors, plan).select("inspector_id")
    found.append(
        _violations(
            members.join(ok, on="inspector_id", how="anti"),
            "active_and_certified",
            pl.format("{}: {}, certificate until {}", "inspector_id", "status", "cert_valid_until"),
        )
    )
    # the item scope holds every item of the department's share
    shares = members.join(
        task_departments.select("joint_task_id", "department", "item_ids"), on=["joint_task_id", "department"]
    )
    found.append(
        _violations(
            shares.filter(
                (pl.col("role") == "inspector") & (pl.col("item_ids").list.set_difference("item_scope").list.len() > 0)
            ),
            "item_scope",
            pl.format(
                "{} lacks {}", "inspector_id", pl.col("item_ids").list.set_difference("item_scope").list.join(",")
            ),
        )
    )
    # where from, by the share's mode: local_first the district pool (the entity's district) or the
    # department's; cross_district never the entity's district; any the department's
    located = members.join(joint_tasks.select("joint_task_id", "uscc", "district_code"), on="joint_task_id").join(
        share_modes(task_departments, plan), on=["joint_task_id", "department"], how="left"
    )
    allowed = {"local_first": ["district", "department"], "cross_district": ["cross_district"], "any": ["department"]}
    found.append(
        _violations(
            located.filter(
                ~pl.col("pool").is_in(pl.col("mode").replace_strict(allowed, return_dtype=pl.List(pl.String)))
            ),
            "assign_mode",
            pl.format("{} drawn from the {} pool under mode {}", "inspector_id", "pool", "mode"),
        )
    )
    found.append(
        _violations(
            located.filter((pl.col("pool") == "district") & (pl.col("own_district") != pl.col("district_code"))),
            "district_pool",
            pl.format("{} of {} for an entity in {}", "inspector_id", "own_district", "district_code"),
        )
    )
    found.append(
        _violations(
            located.filter((pl.col("mode") == "cross_district") & (pl.col("own_district") == pl.col("district_code"))),
            "cross_district",
            pl.format("{} of {} for an entity in the same district", "inspector_id", "own_district"),
        )
    )
    found.append(_violations(located.join(avoid, on=["uscc", "inspector_id"]), "must_avoid", pl.col("inspector_id")))
    # one working day of the period per joint task, and the daily cap
    found.append(
        _violations(
            planned_dates.filter(~pl.col("planned_date").is_in(pl.Series(days, dtype=pl.Date).implode())),
            "working_day",
            pl.col("planned_date"),
        )
    )
    per_day = (
        team.join(planned_dates, on="joint_task_id")
        .group_by("inspector_id", "planned_date")
        .agg(pl.col("joint_task_id").min(), n=pl.len())
    )
    found.append(
        _violations(
            per_day.filter(pl.col("n") > plan.daily_cap),
            "daily_cap",
            pl.format("{} has {} visits on {}", "inspector_id", "n", "planned_date"),
        )
    )
    return pl.concat(found).cast(VIOLATION_SCHEMA).sort("joint_task_id", "rule", "detail")
