"""The results flow (issue 9) in real flow runs: the dirty city's annual plan, published, then
departments' results (with planted errors) checked, published and fed back to the next draw."""

import datetime as dt
import json
import shutil

import chinese_calendar
import polars as pl
import pytest
import yaml

from flows.plan_run import plan_run
from flows.results import results_run
from tests.conftest import plan_path
from transforms.manifest import manifest_problems
from transforms.resultgen import generate_results
from transforms.results import PlanSide
from transforms.submission import write_results
from transforms.warehouse import connect_warehouse, plan_side_tables

PLAN_ID = "SZ-2026-ANNUAL"
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
    summary = results_run(plan_id=PLAN_ID, inbox=str(out.parent / "inbox"), out=str(out), as_of=AS_OF.isoformat(), run_id="r1")
    return out, summary, truth


def test_the_results_workbooks_show_every_cell_as_published(results_out, tmp_path):
    from tests.flows.test_spreadsheets import assert_workbooks_show_what_was_published

    out, _, _ = results_out
    tables = ["notice", "results", "progress", "outstanding", "quarantine/quarantine"]
    seen = assert_workbooks_show_what_was_published(out / "published" / PLAN_ID / "results", tables, tmp_path)
    assert seen["notice"]["统一社会信用代码"].str.contains(r"^\d{18}$").sum() > 10  # all-digit codes, to the last digit


def test_every_planted_error_is_quarantined_for_its_reason_and_nothing_else(results_out):
    out, summary, truth = results_out
    quarantined = pl.read_parquet(out / "runs" / "r1" / "02_validate" / "quarantine" / "results" / "*.parquet")
    got = quarantined.select(file="source_file", line="source_line", reason="reason").sort("file", "line")
    assert got.rows() == truth.select("file", "line", reason="expected").sort("file", "line").rows()
    assert truth.height == 12 and truth["expected"].n_unique() == 6  # every cross-check rule is exercised
    v = summary["validate"]
    assert v["rows_read"] == v["rows_accepted"] + v["rows_quarantined"]


def test_the_bundle_is_complete_verified_and_the_notice_is_public(results_out):
    out, summary, _ = results_out
    bundle = out / "published" / PLAN_ID / "results"
    for name in ("results.parquet", "results.csv", "notice.csv", "progress.csv", "outstanding.csv", "summary.json",
                 "report.html", "manifest.json", "quarantine/quarantine.csv", "validation/index.html"):
        assert (bundle / name).is_file(), name
    assert manifest_problems(out / "published" / PLAN_ID) == []  # the draw bundle and, nested, the results bundle
    original = (bundle / "notice.csv").read_bytes()
    (bundle / "notice.csv").write_bytes(original + b"x")  # an edit after publication is caught
    assert any("results/notice.csv" in p for p in manifest_problems(out / "published" / PLAN_ID))
    (bundle / "notice.csv").write_bytes(original)
    notice = pl.read_csv(bundle / "notice.csv", infer_schema=False)
    assert list(notice.columns) == ["所属区", "企业名称", "统一社会信用代码", "抽查事项", "检查部门", "检查日期", "检查结果", "后续处置", "联合任务编号"]
    results = pl.read_parquet(bundle / "results.parquet")
    assert notice.height == results.height == summary["publish"]["answered"]
    text = (bundle / "notice.csv").read_text(encoding="utf-8-sig")
    inspectors = set(results["inspectors"].explode().drop_nulls())
    assert inspectors and not any(i in text for i in inspectors)
    assert not any(f in text for f in results["findings"].drop_nulls().unique())  # free text may name people


def test_progress_accounts_for_every_item_of_every_joint_task(results_out):
    out, summary, _ = results_out
    bundle = out / "published" / PLAN_ID / "results"
    progress = pl.read_csv(bundle / "progress.csv")
    items_due = plan_side_tables(out, PLAN_ID)["task_items"].height
    assert progress["应录入事项"].sum() == items_due == summary["publish"]["items_due"]
    assert (progress["已录入"] + progress["未录入"] == progress["应录入事项"]).all()
    outstanding = pl.read_csv(bundle / "outstanding.csv")
    assert outstanding.height == progress["未录入"].sum() > 0


def _nth_working_day_after(day: dt.date, n: int) -> dt.date:
    while n:
        day += dt.timedelta(days=1)
        n -= chinese_calendar.is_workday(day)
    return day


def test_a_result_published_after_20_official_working_days_is_overdue(results_out):
    out, _, _ = results_out
    results = pl.read_parquet(out / "published" / PLAN_ID / "results" / "results.parquet")
    assert (results["first_published_on"] == AS_OF).all()
    for row in results.unique("inspection_date").iter_rows(named=True):
        assert row["deadline"] == _nth_working_day_after(row["inspection_date"], 20)
    # the National Day holiday (1–7 October 2026) is not counted: 20 working days from 30 September end in November
    assert _nth_working_day_after(dt.date(2026, 9, 30), 20) > dt.date(2026, 10, 28)
    assert results.filter(pl.col("overdue") != (pl.col("first_published_on") > pl.col("deadline"))).is_empty()
    assert 0 < results["overdue"].sum() < results.height


def test_a_later_run_keeps_the_first_publication_date(results_out, tmp_path):
    out, _, _ = results_out
    later = AS_OF + dt.timedelta(days=30)
    results_run(plan_id=PLAN_ID, inbox=str(out.parent / "inbox"), out=str(out), as_of=later.isoformat(), run_id="r2")
    results = pl.read_parquet(out / "published" / PLAN_ID / "results" / "results.parquet")
    assert (results["first_published_on"] == AS_OF).all()
    con = connect_warehouse(out, read_only=True)
    try:
        assert con.sql("select count(*), count(distinct results_run_id) from results where plan_id = $p", params={"p": PLAN_ID}
                       ).fetchall() == [(results.height, 1)]  # the plan's rows replaced, once
    finally:
        con.close()


def test_results_without_a_published_plan_are_refused_clearly(prefect_server, tmp_path):
    from prefect.states import State

    state = results_run(plan_id="NO-SUCH-PLAN", inbox=str(tmp_path), out=str(tmp_path), as_of="2026-11-27", return_state=True)
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

    annual = pl.read_parquet(out / "published" / PLAN_ID / "results" / "results.parquet")
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
    """Privacy (issue 10): the two files meant for citizens — the draw notice and the results
    notice — against every operator name and phone and every inspector name and id submitted
    (all departments, all rows, not just those drawn), and every credit class label."""
    out, _, _ = results_out
    ingest = dirty_run / "01_ingest"
    objects = pl.read_parquet(ingest / "objects" / "*.parquet", columns=["operator_name", "phone"])
    inspectors = pl.read_parquet(ingest / "inspectors" / "*.parquet", columns=["name", "inspector_id"])
    people = {v for v in (set(objects["operator_name"]) | set(objects["phone"]) | set(inspectors["name"])
                          | set(inspectors["inspector_id"])) if v and len(v) >= 2}
    assert len(people) > 1000
    classes = set(pl.read_csv("data/reference/credit_classes.csv")["name_zh"]) | {f"{c}类" for c in "ABCD"}
    import fastexcel

    def table(path):  # a notice as CSV, or the workbook beside it (issue 17)
        if path.suffix == ".xlsx":
            return fastexcel.read_excel(path).load_sheet(0, dtypes="string").to_polars()
        return pl.read_csv(path, infer_schema=False)

    bundle = out / "published" / PLAN_ID
    for public in (bundle / "notice.csv", bundle / "notice.xlsx", bundle / "results" / "notice.csv", bundle / "results" / "notice.xlsx"):
        cells = table(public).drop("联合任务编号").unpivot()["value"].drop_nulls().unique()
        assert cells.len() > 100
        leaks = cells.filter(cells.str.contains_any(sorted(people | classes)) | cells.is_in(["A", "B", "C", "D"]))  # Aho–Corasick
        assert leaks.is_empty(), (public.name, leaks.head(5).to_list())


def test_an_entitys_history_shows_its_results(results_out, capsys):
    from flows.cli import main

    out, _, _ = results_out
    results = pl.read_parquet(out / "published" / PLAN_ID / "results" / "results.parquet")
    uscc = results.filter(pl.col("result_codes").list.contains("E"))["uscc"][0]
    assert main(["history", uscc, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "results (检查结果)" in printed and "rectify" in printed


def test_before_any_department_submits_everything_is_outstanding(prefect_server, dirty_run, tmp_path):
    """An empty results inbox is a normal day early in the year, not an error."""
    out = tmp_path / "out"
    shutil.copytree(dirty_run.parent.parent, out)
    (tmp_path / "inbox").mkdir()
    summary = results_run(plan_id=PLAN_ID, inbox=str(tmp_path / "inbox"), out=str(out), as_of=AS_OF.isoformat(), run_id="none")
    p = summary["publish"]
    assert p["answered"] == 0 and p["outstanding"] == p["items_due"] == plan_side_tables(out, PLAN_ID)["task_items"].height > 0
    assert pl.read_parquet(out / "published" / PLAN_ID / "results" / "results.parquet").is_empty()
    assert manifest_problems(out / "published" / PLAN_ID) == []
