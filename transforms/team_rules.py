"""The rules of SPEC §4.6 checked on a finished matching, row by row, by a path independent of
transforms/assign.py: the assign stage refuses to write a matching that breaks one, and the
tests check every generated city with it.

    team_violations(...) -> one row per broken rule: joint_task_id, rule, detail (none: all kept)
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from jointdraw.transforms.assign import available_inspectors, team_need
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
) -> pl.DataFrame:
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
    # the team of each department: team_need inspectors, of that department
    need = task_departments.join(staffed, on="joint_task_id").with_columns(
        need=pl.col("is_lead").map_elements(lambda lead: team_need(lead, plan), return_dtype=pl.Int64)
    )
    sent = team.group_by("joint_task_id", "department").len("sent")
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
        ),
        on="inspector_id",
        how="left",
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
            shares.filter(pl.col("item_ids").list.set_difference("item_scope").list.len() > 0),
            "item_scope",
            pl.format(
                "{} lacks {}", "inspector_id", pl.col("item_ids").list.set_difference("item_scope").list.join(",")
            ),
        )
    )
    # from the entity's district when the team says it came from the district pool
    located = members.join(joint_tasks.select("joint_task_id", "uscc", "district_code"), on="joint_task_id")
    found.append(
        _violations(
            located.filter((pl.col("pool") == "district") & (pl.col("own_district") != pl.col("district_code"))),
            "district_pool",
            pl.format("{} of {} for an entity in {}", "inspector_id", "own_district", "district_code"),
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
