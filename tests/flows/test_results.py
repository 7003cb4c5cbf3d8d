"""The results flow (issue 9) in real flow runs: the dirty city's annual plan, published, then
departments' results (with planted errors) checked, published and fed back to the next draw."""

import datetime as dt
import json
import shutil

import chinese_calendar
import polars as pl
import pytest
import yaml

from jointdraw.flows.plan_run import plan_run
from jointdraw.flows.results import results_run
from jointdraw.transforms.documents.manifest import manifest_problems
from jointdraw.transforms.privacy import public_leaks, read_table
from jointdraw.transforms.results import PlanSide
from jointdraw.transforms.samplecity.results import generate_results
from jointdraw.transforms.samplecity.submission import write_results
from jointdraw.transforms.storage.bundle import PUBLIC, REGULATOR, bundle_file, results_folder
from jointdraw.transforms.storage.warehouse import connect_warehouse, plan_side_tables
from tests.conftest import plan_path

PLAN_ID = "SZ-2026-ANNUAL"


def results_of(out, part):
    return results_folder(out / "published" / PLAN_ID, part)


AS_OF = dt.date(2026, 11, 27)


@pytest.fixture(scope="module")
def results_out(prefect_server, dirty_run, tmp_path_factory):
    """A copy of the dirty run's output root, with dirty results generated and taken in."""
    out = tmp_path_factory.mktemp("results") / "out"
    shutil.copytree(dirty_run.parent.parent, out)
    tables = plan_side_tables(out, PLAN_ID)
    plan = PlanSide(tables["task_items"], tables["teams"], tuple(tables["period"]), AS_OF)
    results, truth = generate_results(plan, seed=7, dirty=True)
    write_results(results, truth, out.parent / "inbox")
    summary = results_run(
        plan_id=PLAN_ID, inbox=str(out.parent / "inbox"), out=str(out), as_of=AS_OF.isoformat(), run_id="r1"
    )
    return out, summary, truth


def test_the_results_workbooks_show_every_cell_as_published(results_out, tmp_path):
    from tests.flows.test_spreadsheets import assert_workbooks_show_what_was_published

    out, _, _ = results_out
    tables = [
        "public/results/notice",
        "regulator/results/results",
        "public/results/progress",
        "regulator/results/outstanding",
        "regulator/results/quarantine/quarantine",
        "regulator/results/follow_up_overdue",
    ]
    seen = assert_workbooks_show_what_was_published(out / "published" / PLAN_ID, tables, tmp_path)
    assert seen["notice"]["统一社会信用代码"].str.contains(r"^\d{18}$").sum() > 10  # all-digit codes, to the last digit


def test_every_planted_error_is_quarantined_for_its_reason_and_nothing_else(results_out):
    out, summary, truth = results_out
    quarantined = pl.read_parquet(out / "runs" / "r1" / "02_validate" / "quarantine" / "results" / "*.parquet")
    got = quarantined.select(file="source_file", line="source_line", reason="reason").sort("file", "line")
    assert got.rows() == truth.select("file", "line", reason="expected").sort("file", "line").rows()
    assert truth.height == 12 and truth["expected"].n_unique() == 6  # every cross-check rule is exercised
    v = summary["stages"]["validate"]
    assert v.rows_read == v.rows_accepted + v.rows_quarantined


def test_the_bundle_is_complete_verified_and_the_notice_is_public(results_out):
    out, summary, _ = results_out
    public, regulator = results_of(out, PUBLIC), results_of(out, REGULATOR)
    for name in ("notice.csv", "notice.xlsx", "progress.csv", "summary.json", "manifest.json"):
        assert (public / name).is_file(), name
    for name in (
        "results.parquet",
        "results.csv",
        "outstanding.csv",
        "report.html",
        "quarantine/quarantine.csv",
        "validation/index.html",
    ):
        assert (regulator / name).is_file(), name
    assert manifest_problems(out / "published" / PLAN_ID) == []  # the draw bundle and, nested, the results bundle
    original = (public / "notice.csv").read_bytes()
    (public / "notice.csv").write_bytes(original + b"x")  # an edit after publication is caught
    assert any("public/results/notice.csv" in p for p in manifest_problems(out / "published" / PLAN_ID))
    (public / "notice.csv").write_bytes(original)
    notice = pl.read_csv(public / "notice.csv", infer_schema=False)
    assert list(notice.columns) == [
        "所属区",
        "企业名称",
        "统一社会信用代码",
        "抽查事项",
        "检查部门",
        "检查日期",
        "检查结果",
        "后续处置",
        "联合任务编号",
    ]
    results = pl.read_parquet(regulator / "results.parquet")
    # review (issue 22): only approved results are public; within the year none has left the notice yet
    approved = results.filter(pl.col("review_state") == "approved")
    assert notice.height == approved.height == results["on_notice"].sum() == summary["stages"]["publish"].answered
    assert 0 < notice.height < results.height
    text = (public / "notice.csv").read_text(encoding="utf-8-sig")
    inspectors = set(results["inspectors"].explode().drop_nulls())
    assert inspectors and not any(i in text for i in inspectors)
    assert not any(f in text for f in results["findings"].drop_nulls().unique())  # free text may name people


def test_progress_accounts_for_every_item_of_every_joint_task(results_out):
    out, summary, _ = results_out
    progress = pl.read_csv(results_of(out, PUBLIC) / "progress.csv")
    items_due = plan_side_tables(out, PLAN_ID)["task_items"].height
    assert progress["应录入事项"].sum() == items_due == summary["stages"]["publish"].items_due
    assert (progress["已录入"] + progress["未录入"] == progress["应录入事项"]).all()
    outstanding = pl.read_csv(results_of(out, REGULATOR) / "outstanding.csv")
    assert outstanding.height == progress["未录入"].sum() > 0


def _nth_working_day_after(day: dt.date, n: int) -> dt.date:
    while n:
        day += dt.timedelta(days=1)
        n -= chinese_calendar.is_workday(day)
    return day


def test_a_result_published_after_20_official_working_days_is_overdue(results_out):
    out, _, _ = results_out
    results = pl.read_parquet(results_of(out, REGULATOR) / "results.parquet")
    assert (results["first_published_on"] == AS_OF).all()
    for row in results.unique("inspection_date").iter_rows(named=True):
        assert row["deadline"] == _nth_working_day_after(row["inspection_date"], 20)
    # the National Day holiday (1–7 October 2026) is not counted: 20 working days from 30 September end in November
    assert _nth_working_day_after(dt.date(2026, 9, 30), 20) > dt.date(2026, 10, 28)
    assert results.filter(pl.col("overdue") != (pl.col("first_published_on") > pl.col("deadline"))).is_empty()
    assert 0 < results["overdue"].sum() < results.height


def test_results_are_sealed_and_a_forged_results_folder_is_found(results_out, tmp_path):
    """The results' seal is logged and printed; a results folder rewritten to agree with itself (rows
    removed, notice and its own manifest redone) fails against the warehouse's recorded results and
    the logged seal, and — away from the warehouse — against the announced seal."""
    from jointdraw.transforms.audit import last_seal
    from jointdraw.transforms.documents.manifest import RESULTS_MANIFEST, file_list, results_files
    from jointdraw.transforms.documents.people_headers import RESULTS as RESULTS_HEADERS
    from jointdraw.transforms.documents.seal import seal_of
    from jointdraw.transforms.results import (
        RESULTS_NOTICE_HEADERS,
        notice_entities,
        published_item_names,
        results_notice,
    )
    from jointdraw.transforms.storage.runfolder import write_json, write_parquet
    from jointdraw.transforms.storage.warehouse import audit_entries
    from jointdraw.transforms.storage.xlsxout import write_people_tables
    from jointdraw.transforms.verify import verify_draw

    out, summary, _ = results_out
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    bundle = copy / "published" / PLAN_ID
    announced = summary["stages"]["publish"].seal
    assert announced == seal_of(bundle / RESULTS_MANIFEST) == last_seal(audit_entries(copy, PLAN_ID), "results")
    report = verify_draw(bundle, results_seal=announced)
    assert report.ok and report.results_seal == announced, report.text()
    public, regulator = results_folder(bundle, PUBLIC), results_folder(bundle, REGULATOR)
    forged = pl.read_parquet(regulator / "results.parquet").slice(5)  # five results gone
    write_parquet(forged, regulator / "results.parquet")
    write_people_tables(forged, regulator / "results.csv", RESULTS_HEADERS, "检查结果")
    notice = results_notice(
        forged,
        notice_entities(bundle_file(bundle, "notice.csv")),
        published_item_names(bundle_file(bundle, "pre") / "items.csv"),
    )
    write_people_tables(notice, public / "notice.csv", RESULTS_NOTICE_HEADERS, "检查结果公示")
    manifest = json.loads((bundle / RESULTS_MANIFEST).read_text(encoding="utf-8"))
    manifest["files"], manifest["documents"] = file_list(bundle, results_files(bundle))
    write_json(manifest, bundle / RESULTS_MANIFEST)
    assert manifest_problems(bundle) == []  # the forged folder agrees with its own manifest
    problems = verify_draw(bundle).problems
    assert any("is not what the warehouse recorded" in p for p in problems), problems
    assert any(p.startswith("results: the audit log's last results seal is") for p in problems), problems
    elsewhere = tmp_path / "usb" / PLAN_ID  # no warehouse beside it: the announced seal decides
    shutil.copytree(bundle, elsewhere)
    assert [p for p in verify_draw(elsewhere, results_seal=announced).problems if "results seal" in p] == [
        f"results seal: {seal_of(bundle / RESULTS_MANIFEST)}, the announced results seal is {announced}"
    ]


def test_results_take_the_plans_one_lock(results_out):
    """Issue 19: the results flow publishes into the plan's bundle, so it takes the plan's lock: while
    the plan flow holds it, results are refused with the holder named, and nothing is written."""
    from jointdraw.transforms.storage.runlock import PlanLocked, plan_lock

    out, _, _ = results_out
    before = {p: p.read_bytes() for p in (out / "published" / PLAN_ID).rglob("*") if p.is_file()}
    with (
        plan_lock(out, PLAN_ID, "publishing-the-draw"),
        pytest.raises(PlanLocked, match="being run by run publishing-the-draw"),
    ):
        results_run(
            plan_id=PLAN_ID, inbox=str(out.parent / "inbox"), out=str(out), as_of=AS_OF.isoformat(), run_id="r-locked"
        )
    assert not (out / "runs" / "r-locked" / "01_ingest").exists()
    assert {p: p.read_bytes() for p in (out / "published" / PLAN_ID).rglob("*") if p.is_file()} == before


def test_a_later_run_keeps_the_first_publication_date(results_out, tmp_path):
    out, _, _ = results_out
    later = AS_OF + dt.timedelta(days=30)
    results_run(plan_id=PLAN_ID, inbox=str(out.parent / "inbox"), out=str(out), as_of=later.isoformat(), run_id="r2")
    results = pl.read_parquet(results_of(out, REGULATOR) / "results.parquet")
    assert (results["first_published_on"] == AS_OF).all()
    con = connect_warehouse(out, read_only=True)
    try:
        assert con.sql(
            "select count(*), count(distinct results_run_id) from results where plan_id = $p", params={"p": PLAN_ID}
        ).fetchall() == [(results.height, 1)]  # the plan's rows replaced, once
    finally:
        con.close()


def test_results_without_a_published_plan_are_refused_clearly(prefect_server, tmp_path):
    from prefect.states import State

    state = results_run(
        plan_id="NO-SUCH-PLAN", inbox=str(tmp_path), out=str(tmp_path), as_of="2026-11-27", return_state=True
    )
    assert isinstance(state, State) and state.is_failed()
    assert "publish it first" in state.message or "publish the plan first" in state.message


def test_the_next_draw_avoids_who_inspected_and_leaves_out_closed_entities(results_out, dirty_city, tmp_path):
    """After the annual plan's results, a quarterly batch (allowed to redraw: no window, no caps)
    never sends an inspector present at an entity's annual inspection — substitutes included —
    and leaves out entities whose result says they closed."""
    out, _, _ = results_out
    q2 = yaml.safe_load(plan_path(dirty_city, "SZ-2026-Q2").read_text(encoding="utf-8"))
    q2.update({"plan_id": "SZ-2026-Q2-REDRAW", "exclusion_window_days": 0, "yearly_caps": {}})
    q2_path = tmp_path / "SZ-2026-Q2-REDRAW.yaml"
    q2_path.write_text(yaml.safe_dump(q2, allow_unicode=True), encoding="utf-8")
    plan_run(plan=str(q2_path), inbox=str(dirty_city / "inbox"), out=str(out), run_id="q2")

    annual = pl.read_parquet(results_of(out, REGULATOR) / "results.parquet")
    present = annual.select("uscc", inspector_id=pl.col("inspectors")).explode("inspector_id").unique()
    team = pl.read_parquet(out / "runs" / "q2" / "07_assign" / "team.parquet")
    tasks = pl.read_parquet(out / "runs" / "q2" / "07_assign" / "joint_tasks.parquet").select("joint_task_id", "uscc")
    sent = team.join(tasks, on="joint_task_id").select("uscc", "inspector_id")
    assert sent.join(present.select("uscc"), on="uscc", how="semi").height > 0  # the batch did revisit annual entities
    assert sent.join(present, on=["uscc", "inspector_id"], how="semi").is_empty()
    substitutes = annual.filter(pl.col("substitution_reason").is_not_null())
    assert substitutes.height > 0

    latest = annual.filter(pl.col("inspection_date") == pl.col("inspection_date").max().over("uscc"))
    closed = latest.filter(pl.col("result_codes").list.contains("7"))["uscc"].unique()  # 已关闭停业 at the last visit
    exclusions = pl.read_parquet(out / "runs" / "q2" / "04_commit" / "exclusions.parquet")
    assert closed.len() > 0
    assert set(closed) <= set(exclusions.filter(pl.col("reason") == "closed_per_result")["uscc"])
    draws = pl.read_parquet(out / "runs" / "q2" / "05_draw" / "draws.parquet")
    assert draws.filter(pl.col("uscc").is_in(closed.implode())).is_empty()
    record = json.loads((out / "runs" / "q2" / "04_commit" / "stage.json").read_text(encoding="utf-8"))
    assert record["exclusions_by_reason"].get("closed_per_result") == len(set(closed) & set(exclusions["uscc"]))


def test_no_public_file_holds_a_personal_field_of_the_inputs_or_a_class_label(results_out, dirty_run):
    """Privacy (issues 10, 18): every file of the public part — notices, pages, tables, JSON, the
    results — against every operator name and phone and every inspector name and id submitted (all
    departments, all rows, not just those drawn); and the notices against every credit class label."""
    out, _, _ = results_out
    ingest = dirty_run / "01_ingest"
    objects = pl.read_parquet(ingest / "objects" / "*.parquet", columns=["operator_name", "phone"])
    inspectors = pl.read_parquet(ingest / "inspectors" / "*.parquet", columns=["name", "inspector_id"])
    people = {
        v
        for v in (
            set(objects["operator_name"])
            | set(objects["phone"])
            | set(inspectors["name"])
            | set(inspectors["inspector_id"])
        )
        if v and len(v) >= 3
    }  # a two-character name is in common words (工程建筑)
    assert len(people) > 1000
    bundle = out / "published" / PLAN_ID
    public = sorted(p.relative_to(bundle).as_posix() for p in (bundle / PUBLIC).rglob("*") if p.is_file())
    assert {"public/notice.html", "public/report.html", "public/results/notice.xlsx", "public/manifest.json"} <= set(
        public
    )
    assert public_leaks(bundle / PUBLIC, people) == []
    # the scan finds what it looks for: a planted phone number, and an operator's name, in a copy
    planted = out.parent / "planted"
    shutil.copytree(bundle / PUBLIC, planted)
    operator = next(v for v in objects["operator_name"].drop_nulls() if len(v) >= 3)
    (planted / "summary.json").write_text(f'{{"note": "联系人 {operator} 13912345678"}}', encoding="utf-8")
    assert [leak.split(":")[0] for leak in public_leaks(planted, people)] == ["summary.json", "summary.json"]
    classes = set(pl.read_csv("data/reference/credit_classes.csv")["name_zh"]) | {f"{c}类" for c in "ABCD"}
    for path in ("public/notice.csv", "public/notice.xlsx", "public/results/notice.csv", "public/results/notice.xlsx"):
        cells = read_table(bundle / path).drop("联合任务编号").unpivot()["value"].drop_nulls().unique()
        assert cells.len() > 100
        leaks = cells.filter(
            cells.str.contains_any(sorted(classes)) | cells.is_in(["A", "B", "C", "D"])
        )  # Aho–Corasick
        assert leaks.is_empty(), (path, leaks.head(5).to_list())


def test_an_entitys_history_shows_its_results(results_out, capsys):
    from jointdraw.cli.commands import main

    out, _, _ = results_out
    results = pl.read_parquet(results_of(out, REGULATOR) / "results.parquet")
    uscc = results.filter(pl.col("result_codes").list.contains("E"))["uscc"][0]
    assert main(["history", uscc, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "results (检查结果)" in printed and "rectify" in printed


def test_before_any_department_submits_everything_is_outstanding(prefect_server, dirty_run, tmp_path):
    """An empty results inbox is a normal day early in the year, not an error."""
    out = tmp_path / "out"
    shutil.copytree(dirty_run.parent.parent, out)
    (tmp_path / "inbox").mkdir()
    summary = results_run(
        plan_id=PLAN_ID, inbox=str(tmp_path / "inbox"), out=str(out), as_of=AS_OF.isoformat(), run_id="none"
    )
    p = summary["stages"]["publish"]
    assert p.answered == 0 and p.outstanding == p.items_due == plan_side_tables(out, PLAN_ID)["task_items"].height > 0
    assert pl.read_parquet(results_of(out, REGULATOR) / "results.parquet").is_empty()
    assert manifest_problems(out / "published" / PLAN_ID) == []
