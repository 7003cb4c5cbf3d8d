"""Issue 22 in real flow runs on the dirty city's published plan: review before publication, corrections
(the command and a department's corrections file), the public period, and overdue follow-ups."""

import datetime as dt
import json
import shutil

import polars as pl
import pytest

from jointdraw.flows.results import results_run
from jointdraw.transforms.audit import last_seal
from jointdraw.transforms.documents.manifest import RESULTS_MANIFEST, file_list, manifest_problems, results_files
from jointdraw.transforms.documents.seal import seal_of
from jointdraw.transforms.reference import result_codes_in
from jointdraw.transforms.results import PlanSide
from jointdraw.transforms.samplecity.results import generate_results
from jointdraw.transforms.samplecity.submission import write_results
from jointdraw.transforms.storage.bundle import PUBLIC, REGULATOR, results_folder
from jointdraw.transforms.storage.runfolder import write_json, write_parquet
from jointdraw.transforms.storage.warehouse import (
    audit_entries,
    plan_side_tables,
    recorded_corrections,
    recorded_results,
)
from jointdraw.transforms.verify import verify_draw

PLAN_ID = "SZ-2026-ANNUAL"
AS_OF = dt.date(2026, 11, 27)


def _regulator(out):
    return results_folder(out / "published" / PLAN_ID, REGULATOR)


def _public(out):
    return results_folder(out / "published" / PLAN_ID, PUBLIC)


def _copy(source, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(source, out)
    return out


@pytest.fixture(scope="module")
def reviewed(prefect_server, dirty_run, tmp_path_factory):
    """The dirty run's output root with clean sample results (review states, follow-ups) taken in."""
    out = tmp_path_factory.mktemp("review") / "out"
    shutil.copytree(dirty_run.parent.parent, out)
    tables = plan_side_tables(out, PLAN_ID)
    plan = PlanSide(tables["task_items"], tables["teams"], tuple(tables["period"]), AS_OF)
    results, _ = generate_results(plan, seed=7)
    write_results(results, pl.DataFrame(), out.parent / "inbox")
    summary = results_run(plan_id=PLAN_ID, inbox=str(out.parent / "inbox"), out=str(out), as_of=AS_OF.isoformat())
    return out, summary


def _notice_keys(out) -> set[tuple[str, str]]:
    notice = pl.read_csv(_public(out) / "notice.csv", infer_schema=False)
    return set(notice.select("联合任务编号", "检查部门").rows())


def test_only_approved_results_are_public_and_the_others_are_outstanding_with_the_reviewers_reason(reviewed):
    out, summary = reviewed
    results = pl.read_parquet(_regulator(out) / "results.parquet")
    states = dict(results.group_by("review_state").len().iter_rows())
    assert states["approved"] > 10 * states["returned"] > 0 and states["pending"] > 0  # most approved, some not
    notice = pl.read_csv(_public(out) / "notice.csv", infer_schema=False)
    approved = results.filter(pl.col("review_state") == "approved")
    assert notice.height == approved.height == summary["stages"]["publish"].answered
    assert set(notice["联合任务编号"]) == set(approved["joint_task_id"])
    assert results.filter(pl.col("review_state") != "approved")["first_published_on"].null_count() == (
        results.height - approved.height
    )
    outstanding = pl.read_csv(_regulator(out) / "outstanding.csv", infer_schema=False)
    returned = outstanding.filter(pl.col("审核状态") == "returned")
    assert returned.height == states["returned"]
    assert returned["审核意见（退回原因）"].null_count() == 0  # the reviewer's reason is there
    assert outstanding.filter(pl.col("审核状态") == "pending").height == states["pending"]
    assert (pl.read_csv(_public(out) / "progress.csv")["已录入"].sum()) == approved.height
    assert verify_draw(out / "published" / PLAN_ID).ok


def test_without_review_every_accepted_result_is_public(reviewed, tmp_path):
    source, _ = reviewed
    out = _copy(source, tmp_path)
    results_run(
        plan_id=PLAN_ID,
        inbox=str(source.parent / "inbox"),
        out=str(out),
        as_of=AS_OF.isoformat(),
        review_required=False,
    )
    results = pl.read_parquet(_regulator(out) / "results.parquet")
    notice = pl.read_csv(_public(out) / "notice.csv", infer_schema=False)
    assert notice.height == results.height and results["on_notice"].all()
    manifest = json.loads((out / "published" / PLAN_ID / RESULTS_MANIFEST).read_text(encoding="utf-8"))
    assert manifest["rules"]["review_required"] is False
    assert verify_draw(out / "published" / PLAN_ID).ok


def test_a_problem_without_a_completed_follow_up_after_its_deadline_is_listed(reviewed):
    out, summary = reviewed
    listed = pl.read_parquet(_regulator(out) / "follow_up_overdue.parquet")
    results = pl.read_parquet(_regulator(out) / "results.parquet")
    problems = results.filter(
        pl.col("result_codes").list.eval(pl.element().is_in(result_codes_in("problem"))).list.any()
    )
    due = problems.filter(pl.col("follow_up_deadline") < AS_OF)
    assert problems["follow_up_completed_on"].null_count() < problems.height  # most are followed up
    expected = due.filter(pl.col("follow_up_completed_on").is_null())
    assert 0 < listed.height == expected.height == summary["stages"]["publish"].follow_up_overdue
    assert set(listed["joint_task_id"]) == set(expected["joint_task_id"])
    assert (pl.read_csv(_regulator(out) / "follow_up_overdue.csv")).height == listed.height
    page = (_regulator(out) / "report.html").read_text(encoding="utf-8")
    assert "逾期未完结处置" in page and f"follow-up overdue ({listed.height})" in page


def test_a_result_leaves_the_public_notice_after_its_public_period_but_not_the_regulators_files(reviewed, tmp_path):
    source, _ = reviewed
    out = _copy(source, tmp_path)
    later = dt.date(2027, 12, 1)  # more than a year after the first publication: individual businesses' are gone
    results_run(plan_id=PLAN_ID, inbox=str(source.parent / "inbox"), out=str(out), as_of=later.isoformat())
    results = pl.read_parquet(_regulator(out) / "results.parquet")
    individual = results.filter((pl.col("entity_type") == "individual") & (pl.col("first_published_on") == AS_OF))
    enterprise = results.filter((pl.col("entity_type") == "enterprise") & (pl.col("first_published_on") == AS_OF))
    assert individual.height > 0 and enterprise.height > 0
    assert (individual["public_until"] == dt.date(2027, 11, 27)).all() and not individual["on_notice"].any()
    assert enterprise["on_notice"].all()
    notice = _notice_keys(out)
    assert not notice & set(individual.select("joint_task_id", "department").rows())
    assert recorded_results(out, PLAN_ID).filter(pl.col("entity_type") == "individual").height >= individual.height
    assert verify_draw(out / "published" / PLAN_ID).ok


def _correct(out, *args):
    from jointdraw.cli.commands import main

    return main(["correct", PLAN_ID, "--out", str(out), "--as-of", AS_OF.isoformat(), *args])


def test_a_correction_by_command_is_kept_republished_sealed_and_verified(reviewed, tmp_path, capsys):
    source, _ = reviewed
    out = _copy(source, tmp_path)
    bundle = out / "published" / PLAN_ID
    before_seal = seal_of(bundle / RESULTS_MANIFEST)
    results = pl.read_parquet(_regulator(out) / "results.parquet")
    clean = results.filter((pl.col("review_state") == "approved") & (pl.col("result_codes") == ["1"]))
    fix, gone = clean.row(0, named=True), clean.row(1, named=True)
    assert (
        _correct(
            out,
            *("--joint-task", fix["joint_task_id"], "--item", fix["item_id"], "--reason", "录入错误：漏填问题"),
            *("--set", "result_codes=发现问题经责令已改正", "--set", "follow_up=责令限期整改", "--by", "复核员甲"),
        )
        == 0
    )
    assert "result_codes: 1 → E" in capsys.readouterr().out
    assert (
        _correct(
            out, "--joint-task", gone["joint_task_id"], "--item", gone["item_id"], "--reason", "重复录入", "--withdraw"
        )
        == 0
    )
    corrections = pl.read_parquet(_regulator(out) / "corrections.parquet")
    assert corrections.select("correction_id", "action", "reason", "corrected_by").rows() == [
        (1, "correct", "录入错误：漏填问题", "复核员甲"),
        (2, "withdraw", "重复录入", corrections["corrected_by"][1]),
    ]
    assert json.loads(corrections["old_row"][0])["result_codes"] == ["1"]
    assert json.loads(corrections["new_row"][0])["result_codes"] == ["E"] and corrections["new_row"][1] is None
    for name in ("corrections.csv", "corrections.xlsx"):
        assert (_regulator(out) / name).is_file()
    assert recorded_corrections(out, PLAN_ID).height == 2  # and in the warehouse
    now = pl.read_parquet(_regulator(out) / "results.parquet")
    key = (pl.col("joint_task_id") == fix["joint_task_id"]) & (pl.col("item_id") == fix["item_id"])
    assert now.filter(key)["result_codes"].to_list() == [["E"]]
    assert now.filter(key)["first_published_on"].to_list() == [fix["first_published_on"]]  # still first published then
    assert now.filter(
        (pl.col("joint_task_id") == gone["joint_task_id"]) & (pl.col("item_id") == gone["item_id"])
    ).is_empty()
    assert (gone["joint_task_id"], gone["department"]) not in _notice_keys(out) or clean.filter(
        pl.col("joint_task_id") == gone["joint_task_id"]
    ).height > 1
    outstanding = pl.read_csv(_regulator(out) / "outstanding.csv", infer_schema=False)
    assert (
        outstanding.filter(
            (pl.col("联合任务编号") == gone["joint_task_id"]) & (pl.col("抽查事项编号") == gone["item_id"])
        ).height
        == 1
    )  # withdrawn: its item is open again
    seal = seal_of(bundle / RESULTS_MANIFEST)
    assert seal != before_seal and last_seal(audit_entries(out, PLAN_ID), "results") == seal
    report = verify_draw(bundle, results_seal=seal)
    assert report.ok, report.text()
    # the same correction again: nothing new
    assert (
        _correct(
            out, "--joint-task", gone["joint_task_id"], "--item", gone["item_id"], "--reason", "重复录入", "--withdraw"
        )
        == 0
    )
    assert "nothing new" in capsys.readouterr().out and seal_of(bundle / RESULTS_MANIFEST) == seal
    # a later results run (the departments' files unchanged) keeps both corrections
    results_run(plan_id=PLAN_ID, inbox=str(source.parent / "inbox"), out=str(out), as_of=AS_OF.isoformat())
    again = pl.read_parquet(_regulator(out) / "results.parquet")
    assert again.filter(key)["result_codes"].to_list() == [["E"]]
    assert pl.read_parquet(_regulator(out) / "corrections.parquet").height == 2
    assert verify_draw(bundle).ok
    # a bad value is refused, naming the rule; nothing is written
    assert (
        _correct(
            out,
            "--joint-task",
            fix["joint_task_id"],
            "--item",
            fix["item_id"],
            "--reason",
            "x",
            "--set",
            "result_codes=1;E",
        )
        == 1
    )
    assert "codes_contradict" in capsys.readouterr().err


def test_tampered_corrections_are_caught(reviewed, tmp_path):
    source, _ = reviewed
    out = _copy(source, tmp_path)
    results = pl.read_parquet(_regulator(out) / "results.parquet")
    row = results.filter(pl.col("review_state") == "approved").row(0, named=True)
    assert (
        _correct(out, "--joint-task", row["joint_task_id"], "--item", row["item_id"], "--reason", "撤回", "--withdraw")
        == 0
    )
    bundle = out / "published" / PLAN_ID
    path = _regulator(out) / "corrections.parquet"
    forged = pl.read_parquet(path).with_columns(action=pl.lit("correct"), new_row=pl.col("old_row"))
    write_parquet(forged, path)  # the withdrawal turned into a correction that changed nothing
    manifest = json.loads((bundle / RESULTS_MANIFEST).read_text(encoding="utf-8"))
    manifest["files"], manifest["documents"] = file_list(bundle, results_files(bundle))
    write_json(manifest, bundle / RESULTS_MANIFEST)
    assert manifest_problems(bundle) == []
    problems = verify_draw(bundle).problems
    assert any("the published result is not the correction's new row" in p for p in problems), problems
    assert any("corrections.parquet" in p and "warehouse" in p for p in problems), problems


def test_a_departments_corrections_file_corrects_once_and_is_verified(reviewed, tmp_path):
    source, _ = reviewed
    out = _copy(source, tmp_path)
    inbox = tmp_path / "inbox"
    shutil.copytree(source.parent / "inbox", inbox)
    results = pl.read_parquet(_regulator(out) / "results.parquet")
    amr = results.filter((pl.col("department") == "AMR") & (pl.col("review_state") == "approved"))
    a, b = amr.row(0, named=True), amr.row(1, named=True)
    outstanding = pl.read_csv(_regulator(out) / "outstanding.csv", infer_schema=False)
    open_item = outstanding.filter((pl.col("检查部门") == "AMR") & pl.col("审核状态").is_null()).row(0)[:3:2]
    (inbox / "AMR" / "corrections.csv").write_text(
        "联合任务编号,检查部门,事项编号,检查结果,后续处置,处置完结日期,更正类型,更正原因,更正人\n"
        f"{a['joint_task_id']},AMR,{a['item_id']},发现问题待后续处理,责令限期整改,,更正,复核发现漏填问题,张科长\n"
        f"{b['joint_task_id']},AMR,{b['item_id']},,,,撤回,该事项未实际检查,张科长\n"
        f"{open_item[0]},AMR,{open_item[1]},,,,撤回,未公示的结果,张科长\n",
        encoding="utf-8",
    )
    summary = results_run(plan_id=PLAN_ID, inbox=str(inbox), out=str(out), as_of=AS_OF.isoformat(), run_id="fix1")
    quarantined = pl.read_parquet(out / "runs" / "fix1" / "02_validate" / "quarantine" / "corrections" / "*.parquet")
    assert quarantined["reason"].to_list() == ["correction_target_unknown"]
    corrections = pl.read_parquet(_regulator(out) / "corrections.parquet")
    assert corrections.select("action", "reason", "corrected_by", "source").rows() == [
        ("correct", "复核发现漏填问题", "张科长", "AMR/corrections.csv:2"),
        ("withdraw", "该事项未实际检查", "张科长", "AMR/corrections.csv:3"),
    ]
    now = pl.read_parquet(_regulator(out) / "results.parquet")
    assert now.filter((pl.col("joint_task_id") == a["joint_task_id"]) & (pl.col("item_id") == a["item_id"]))[
        "result_codes"
    ].to_list() == [["P"]]
    assert now.filter((pl.col("joint_task_id") == b["joint_task_id"]) & (pl.col("item_id") == b["item_id"])).is_empty()
    assert summary["stages"]["publish"].corrections == 2
    assert verify_draw(out / "published" / PLAN_ID).ok
    # the file stays in the inbox: the next run makes no correction twice
    results_run(plan_id=PLAN_ID, inbox=str(inbox), out=str(out), as_of=AS_OF.isoformat(), run_id="fix2")
    assert recorded_corrections(out, PLAN_ID).height == 2
    assert verify_draw(out / "published" / PLAN_ID).ok
