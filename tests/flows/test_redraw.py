"""The replacement draw (递补, issue 21) end to end on a published run (a copy of the session's dirty
run, so other tests keep theirs): the flow replaces a member, logs the redraw in the hash-chained
audit log, republishes the bundle atomically with a new seal, the warehouse's teams (what results are
checked against) name the replacement, verify recomputes the redraw, and the same call again changes
nothing."""

import json
import shutil

import polars as pl
import pytest

from jointdraw.flows.redraw import redraw_run
from jointdraw.transforms.audit import chain_problems
from jointdraw.transforms.results import PlanSide, with_result_checks
from jointdraw.transforms.storage.bundle import bundle_file
from jointdraw.transforms.storage.warehouse import audit_entries, plan_side_tables
from jointdraw.transforms.verify import verify_draw

PLAN = "SZ-2026-ANNUAL"


@pytest.fixture(scope="module")
def published(dirty_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("redraw") / "out"
    shutil.copytree(dirty_run.parent.parent, out, symlinks=True)
    return out


def _redraw(out, member, reason):
    return redraw_run(
        plan_id=PLAN, joint_task=member["joint_task_id"], inspector=member["inspector_id"], reason=reason, out=str(out)
    )


def test_a_redraw_is_logged_republished_recomputed_and_accepted_by_results(published):
    bundle = published / "published" / PLAN
    team = pl.read_parquet(bundle_file(bundle, "team.parquet"))
    member = team.filter(pl.col("role") == "inspector").row(0, named=True)
    before = len(audit_entries(published, PLAN))
    s = _redraw(published, member, "回避")
    assert s["new"] and s["seal"] and s["replacement"] != member["inspector_id"]
    now = pl.read_parquet(bundle_file(bundle, "team.parquet")).filter(
        pl.col("joint_task_id") == member["joint_task_id"]
    )
    assert s["replacement"] in now["inspector_id"] and member["inspector_id"] not in now["inspector_id"]
    joint = pl.read_parquet(bundle_file(bundle, "joint_tasks.parquet")).filter(
        pl.col("joint_task_id") == member["joint_task_id"]
    )
    assert s["replacement"] in joint["inspector_ids"].item()
    entries = audit_entries(published, PLAN)
    assert [e["event"] for e in entries[before:]] == ["redraw", "publish"] and chain_problems(entries) == []
    report = verify_draw(bundle, seal=s["seal"])
    assert report.ok and report.redraws == 1, report.text()
    # the same directory: its public copy is the bundle's own audit/directory.parquet, copied, not written again
    republished = json.loads((published / "runs" / "dirty" / "08_publish" / "stage.json").read_text(encoding="utf-8"))
    assert republished["directory_copied_from"] == PLAN

    # results name the replacement: accepted without a substitution reason (the warehouse's teams know it)
    side = plan_side_tables(published, PLAN)
    row = pl.DataFrame(
        {
            "joint_task_id": [member["joint_task_id"]],
            "department": [member["department"]],
            "submitted_by": [member["department"]],
            "item_id": [None],
            "inspection_date": [None],
            "inspectors": [[s["replacement"]]],
            "substitution_reason": [None],
            "result_codes": [[]],
            "review_state": ["approved"],
            "reviewer": ["审核员"],
            "review_note": [None],
            "follow_up_completed_on": [None],
        },
        schema_overrides={
            "inspection_date": pl.Date,
            "item_id": pl.String,
            "substitution_reason": pl.String,
            "review_note": pl.String,
            "follow_up_completed_on": pl.Date,
        },
    )
    plan = PlanSide(side["task_items"], side["teams"], side["period"], side["period"][1])
    assert with_result_checks(row, plan)["inspectors_on_team"].to_list() == [True]
    gone = row.with_columns(inspectors=pl.lit([member["inspector_id"]]))
    assert with_result_checks(gone, plan)["inspectors_on_team"].to_list() == [False]

    # the same call again: nothing new, nothing republished
    again = _redraw(published, member, "recusal")
    assert not again["new"] and again["replacement"] == s["replacement"] and again["seal"] is None
    assert len(audit_entries(published, PLAN)) == len(entries)

    # an edited redraw log in the bundle does not verify
    path = bundle_file(bundle, "redraws.parquet")
    pl.read_parquet(path).with_columns(replacement=pl.lit("SOMEONE")).write_parquet(path)
    assert any("redraws.parquet" in p for p in verify_draw(bundle).problems)
