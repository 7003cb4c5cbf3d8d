"""The yearly figures on the generated city: the dirty city's annual plan as published (the session's
run), sample results taken in, then `jointdraw kpi` — its figures agree with the bundle's own files, its
workbook shows what its CSV says, and its page opens offline with its charts drawn."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import polars as pl
import pytest

from jointdraw.cli.commands import main
from jointdraw.flows.results import results_run
from jointdraw.transforms.kpi import ALL_TYPES, KPIS, percent_text
from jointdraw.transforms.results import PlanSide
from jointdraw.transforms.samplecity.results import generate_results
from jointdraw.transforms.samplecity.submission import write_results
from jointdraw.transforms.storage.bundle import bundle_file
from jointdraw.transforms.storage.layout import OutputRoot
from jointdraw.transforms.storage.warehouse import plan_side_tables
from jointdraw.transforms.storage.xlsxout import read_workbook
from tests.chromium import chromium_dom

PLAN_ID = "SZ-2026-ANNUAL"
AS_OF = dt.date(2026, 11, 27)


@pytest.fixture(scope="module")
def kpi_out(prefect_server, dirty_run, tmp_path_factory):
    """A copy of the dirty run's output root with sample results taken in, then `jointdraw kpi --year 2026`;
    returns (out, what the command printed)."""
    out = tmp_path_factory.mktemp("kpi") / "out"
    shutil.copytree(dirty_run.parent.parent, out)
    tables = plan_side_tables(out, PLAN_ID)
    plan = PlanSide(tables["task_items"], tables["teams"], tuple(tables["period"]), AS_OF)
    results, truth = generate_results(plan, seed=7, dirty=False)
    write_results(results, truth, out.parent / "inbox")
    results_run(plan_id=PLAN_ID, inbox=str(out.parent / "inbox"), out=str(out), as_of=AS_OF.isoformat(), run_id="r1")
    return out


@pytest.fixture(scope="module")
def printed(kpi_out):
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["kpi", "--year", "2026", "--out", str(kpi_out), "--as-of", "2027-01-15"])
    assert code == 0
    return buffer.getvalue()


def _city(figures: pl.DataFrame, kpi: str) -> dict:
    return figures.filter(pl.col("kpi") == kpi, pl.col("department").is_null(), pl.col("entity_type") == ALL_TYPES).row(
        0, named=True
    )


def test_the_command_prints_the_figures_and_ends_with_the_page(kpi_out, printed):
    folder = OutputRoot(kpi_out).kpi(2026)
    assert sorted(p.name for p in folder.iterdir()) == ["kpi.csv", "kpi.html", "kpi.parquet", "kpi.xlsx"]
    assert printed.rstrip().splitlines()[-1] == f"KPI page: {folder / 'kpi.html'}"
    for name in KPIS.values():
        assert name.name in printed
    assert not any(OutputRoot(kpi_out).staging.glob("kpi-*"))  # written whole, nothing left in staging


def test_the_figures_agree_with_the_published_bundle(kpi_out, printed):
    figures = pl.read_parquet(OutputRoot(kpi_out).kpi(2026) / "kpi.parquet")
    bundle = OutputRoot(kpi_out).published(PLAN_ID)
    summary = json.loads(bundle_file(bundle, "summary.json").read_text(encoding="utf-8"))
    r = _city(figures, "reduction_rate")  # one plan in 2026: its own fusion figures
    assert (r["numerator"], r["denominator"]) == (summary["visits_saved"], summary["drawn_total"])
    joint = pl.read_parquet(bundle_file(bundle, "joint_tasks.parquet"))
    r = _city(figures, "joint_share")
    assert (r["numerator"], r["denominator"]) == (
        joint.filter(pl.col("departments").list.len() >= 2).height,
        joint.height,
    )
    directory = pl.read_parquet(bundle_file(bundle, "directory.parquet"))
    active = directory.filter(pl.col("status") == "active")
    assert _city(figures, "coverage")["denominator"] == active.height
    per_department = active.explode("departments").group_by("departments").len()
    coverage = figures.filter(pl.col("kpi") == "coverage", pl.col("entity_type") == ALL_TYPES)
    assert dict(coverage.drop_nulls("department").select("department", "denominator").iter_rows()) == dict(
        per_department.iter_rows()
    )
    items = pl.read_parquet(bundle_file(bundle, "items.parquet"))
    assert _city(figures, "items_drawn")["denominator"] == items.height
    # the sample results: every item due by the day of the figures is counted, and each has a deadline
    assert _city(figures, "results_on_time")["denominator"] > 0
    assert _city(figures, "follow_up_completed")["denominator"] > 0  # the sample results find problems


def test_the_workbook_shows_what_the_csv_says(kpi_out, printed):
    folder = OutputRoot(kpi_out).kpi(2026)
    csv = pl.read_csv(folder / "kpi.csv", infer_schema=False, encoding="utf8-lossy")
    book = read_workbook(folder / "kpi.xlsx")
    assert book.columns == csv.columns and book.columns[:3] == ["年度", "指标", "部门"]
    assert book.height == csv.height == pl.read_parquet(folder / "kpi.parquet").height
    assert book["指标值"].to_list() == csv["指标值"].to_list()


def test_the_page_opens_offline_with_its_charts(kpi_out, printed):
    folder = OutputRoot(kpi_out).kpi(2026)
    figures = pl.read_parquet(folder / "kpi.parquet")
    url = (folder / "kpi.html").resolve().as_uri()
    dom = chromium_dom(url, 8000)
    for kpi in KPIS:
        value = percent_text(_city(figures, kpi)["value"]) or "—"
        assert f'data-kpi="{kpi}"><div class="value">{value}</div>' in dom, kpi
    assert dom.count('class="main-svg"') >= 6  # plotly.js ran: five figures by department and coverage by type
    assert "指标口径" in dom and "检查对象覆盖率（全市，按主体类型）" in dom


def test_the_flow_writes_the_same_figures_as_the_command(kpi_out, printed, tmp_path):
    """kpi_run (what the yearly deployment runs) writes the bytes the command wrote for the same day."""
    from jointdraw.flows.kpi import kpi_run

    folder = OutputRoot(kpi_out).kpi(2026)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix in (".parquet", ".csv")}
    record = kpi_run(out=str(kpi_out), year=2026, as_of="2027-01-15")
    assert record["folder"] == str(folder) and record["plans"] == [PLAN_ID]
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix in (".parquet", ".csv")} == before
    assert {f["path"] for f in record["files"]} == {
        f"kpi/2026/{n}" for n in ("kpi.parquet", "kpi.csv", "kpi.xlsx", "kpi.html")
    }


def test_without_a_warehouse_the_command_says_what_to_do(tmp_path, capsys):
    assert main(["kpi", "--year", "2026", "--out", str(tmp_path)]) == 1
    assert "no warehouse in" in capsys.readouterr().err and not (tmp_path / "kpi").exists()
