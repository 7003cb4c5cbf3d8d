"""The validate and merge stages in real flow runs on the generated dirty city."""

import json
import os
import re
import shutil
import subprocess
import sys

import polars as pl
import pytest
from prefect.settings import PREFECT_API_URL

from jointdraw.flows.errors import StageFailed
from jointdraw.flows.plan_run import plan_run
from jointdraw.transforms.storage.runfolder import directory_parts
from tests.conftest import ROOT, plan_path


def _stage(run_dir, name):
    return json.loads((run_dir / name / "stage.json").read_text())


def test_every_planted_error_is_quarantined_with_its_reason_and_no_clean_row_is(dirty_run, dirty_city):
    truth = pl.read_csv(dirty_city / "truth.csv", infer_schema=False).with_columns(pl.col("line").cast(pl.Int64))
    quarantined = pl.read_parquet(dirty_run / "02_validate" / "quarantine" / "*" / "*.parquet")
    must = truth.filter(pl.col("expected") != "accept")
    got = must.join(quarantined, left_on=["file", "line"], right_on=["source_file", "source_line"], how="left")
    wrong = got.filter(pl.col("reason").is_null() | (pl.col("reason") != pl.col("expected")))
    assert wrong.is_empty(), wrong.select("file", "line", "kind", "expected", "reason")
    # nothing else is quarantined: exactly the planted errors
    assert quarantined.height == must.height
    accepted = pl.concat(
        pl.read_parquet(p, columns=["source_file", "source_line"])
        for p in (dirty_run / "02_validate" / "accepted").rglob("*.parquet")
    )
    kept = truth.filter(pl.col("expected") == "accept").join(
        accepted, left_on=["file", "line"], right_on=["source_file", "source_line"], how="semi"
    )
    assert kept.height == truth.filter(pl.col("expected") == "accept").height > 0


def test_accounting_is_exact_per_file(dirty_run):
    ingest, validate = _stage(dirty_run, "01_ingest"), _stage(dirty_run, "02_validate")
    read_by_file = {f["source"]["path"]: f["rows_read"] for f in ingest["files"]}
    assert {f["file"]: f["rows_read"] for f in validate["files"]} == read_by_file
    for f in validate["files"]:
        assert (
            f["rows_read"]
            == f["rows_accepted"] + f["rows_quarantined"]
            == f["rows_accepted"] + sum(f["quarantined_by_reason"].values())
        )
    merge = _stage(dirty_run, "03_merge")
    accepted_objects = sum(f["rows_accepted"] for f in validate["files"] if f["kind"] == "objects")
    directory = pl.read_parquet(directory_parts(dirty_run / "03_merge"))
    assert merge["records_in"] == accepted_objects == directory["n_records"].sum()
    assert directory["entity_key"].is_unique().all() and merge["entities"] == directory.height


def test_quarantine_csv_is_for_people(dirty_run):
    data = (dirty_run / "02_validate" / "quarantine.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel on Chinese Windows
    q = pl.read_csv(data, infer_schema=False)
    from jointdraw.transforms.documents.people_headers import QUARANTINE

    assert q.columns == list(QUARANTINE.values())  # Chinese headers (文件, 行号, 报送部门, 名录类型, 原因代码 …)
    assert q.filter(pl.col(QUARANTINE["reason"]) == "blank_required").is_empty()  # reason codes, not generator kinds
    assert (dirty_run / "02_validate" / "quarantine.xlsx").is_file()  # and the workbook beside it


def test_data_docs_have_one_suite_per_kind_with_every_rule_in_chinese(dirty_run):
    """Issue 17: one suite per registry kind (and per kind's file inventory), each department's file a
    validation of it; every expectation says its rule in Chinese with its quarantine reason code; the
    suites are exported as JSON, so a change of the contract is a diff."""
    site = dirty_run / "02_validate" / "validation"
    assert sorted(p.stem for p in (site / "suites").glob("*.json")) == [
        "inspections",  # four departments submit inspections.* (optional: a suite only when some file is there)
        "inspections-files",
        "inspectors",
        "inspectors-files",
        "items",
        "items-files",
        "objects",
        "objects-files",
    ]
    assert sorted(p.stem for p in (site / "expectations").glob("*.html")) == sorted(
        p.stem for p in (site / "suites").glob("*.json")
    )
    for kind in ("objects", "inspections"):
        suite = json.loads((site / "suites" / f"{kind}.json").read_text(encoding="utf-8"))
        for e in suite["expectations"]:
            assert (
                re.search(r"[\u4e00-\u9fff]", e["description"]) and e["meta"]["quarantine_reason"] in e["description"]
            )
        assert any("GB 32100-2015" in e["description"] for e in suite["expectations"])
    validations = list((site / "validations").rglob("*.html"))
    # each department's file of each kind (12 × 3 registries, 4 inspections files), and the four file inventories
    assert len(validations) == 36 + 4 + 4


def test_data_docs_render_offline(dirty_run, dirty_city):
    site = dirty_run / "02_validate" / "validation"
    pages = list(site.rglob("*.html"))
    assert (site / "index.html").exists() and len(pages) > 10
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert not re.search(r'<(script|link|img)\b[^>]*(src|href)="https?://', html), (
            page
        )  # nothing loads from outside
        for ref in re.findall(r'<(?:script|link|img)\b[^>]*(?:src|href)="([^"#?]+\.(?:js|css|png))"', html):
            assert (page.parent / ref).resolve().exists(), (page, ref)
    for css in (site / "static" / "styles").glob("*.css"):
        assert "https://" not in css.read_text(encoding="utf-8"), css
    index = (site / "index.html").read_text(encoding="utf-8")
    departments = sorted(p.name for p in (dirty_city / "inbox").iterdir())
    assert len(departments) == 12
    suites = ["objects", "inspectors", "items", "objects-files"]
    assert all(f'href="expectations/{suite}.html"' in index for suite in suites)  # one suite per registry kind
    assert all(f"{d} objects" in index for d in departments)  # each department's file a validation of it
    assert "GB 32100-2015" in (site / "expectations" / "objects.html").read_text(encoding="utf-8")


def test_the_threshold_fails_the_run_and_names_the_registry(dirty_run, dirty_city, tmp_path):
    # a new run with a plan allowing 0.1% quarantined rows (a changed plan cannot reuse the dirty run's stages)
    run = tmp_path / "runs" / "strict"
    plan = tmp_path / "strict.yaml"
    plan.write_text(
        re.sub(r"quarantine_threshold: .*", "quarantine_threshold: 0.001", plan_path(dirty_city).read_text())
    )
    with pytest.raises(StageFailed) as e:
        plan_run(
            plan=str(plan), inbox=str(dirty_city / "inbox"), out=str(tmp_path), run_id="strict", stop_after="validate"
        )
    assert "objects:" in str(e.value) and "threshold 0.10%" in str(e.value) and "quarantine.csv" in str(e.value)
    assert (run / "02_validate" / "quarantine.csv").exists()  # the evidence is written before failing


def test_a_missing_required_column_fails_its_department(prefect_server, small_city, tmp_path):
    inbox = tmp_path / "inbox"
    shutil.copytree(small_city / "inbox", inbox)
    edu = inbox / "EDU" / "objects.csv"
    edu.write_bytes(edu.read_bytes().replace(b"district_code", b"district", 1).replace(b"credit_risk", b"risk", 1))
    with pytest.raises(StageFailed) as e:
        plan_run(
            plan=str(plan_path(small_city)), inbox=str(inbox), out=str(tmp_path), run_id="r", stop_after="validate"
        )
    assert "EDU: EDU/objects.csv: required column `credit_risk` is missing" in str(e.value)


def test_start_at_needs_the_earlier_stage(prefect_server, small_city, tmp_path):
    with pytest.raises(StageFailed, match="ingest has not finished"):
        plan_run(
            plan=str(plan_path(small_city)),
            inbox=str(small_city / "inbox"),
            out=str(tmp_path),
            run_id="x",
            start_at="validate",
        )


def test_rerunning_validate_and_merge_gives_byte_identical_files(dirty_run, dirty_city, tmp_path):
    run = tmp_path / "runs" / "again"
    shutil.copytree(dirty_run / "01_ingest", run / "01_ingest")
    shutil.copy(dirty_run / "run.json", run / "run.json")
    plan_run(
        plan=str(plan_path(dirty_city)),
        inbox=str(dirty_city / "inbox"),
        out=str(tmp_path),
        run_id="again",
        start_at="validate",
        stop_after="merge",
    )
    for stage in ("02_validate", "03_merge"):
        produced = sorted(p.relative_to(run / stage) for p in (run / stage).rglob("*.parquet"))
        assert produced and produced == sorted(
            p.relative_to(dirty_run / stage) for p in (dirty_run / stage).rglob("*.parquet")
        )
        for rel in produced:
            assert (run / stage / rel).read_bytes() == (dirty_run / stage / rel).read_bytes(), rel
    for name in ("quarantine.csv",):
        assert (run / "02_validate" / name).read_bytes() == (dirty_run / "02_validate" / name).read_bytes()
    for name in ("conflicts.csv", "links.csv", "unlinked.csv"):
        assert (run / "03_merge" / name).read_bytes() == (dirty_run / "03_merge" / name).read_bytes()


def test_merged_in_key_ranges_the_directory_and_the_bundle_are_the_same(dirty_run, dirty_city, tmp_path, monkeypatch):
    """The merge of each range of entity keys on its own (as on a cluster) gives the one-range merge's directory,
    in as many files, and every published byte of it."""
    from jointdraw.transforms import settings
    from tests.flows.test_reuse import _bundle_differences

    run = tmp_path / "runs" / "ranges"
    for part in ("01_ingest", "02_validate", "run.json"):
        (shutil.copytree if (dirty_run / part).is_dir() else shutil.copy)(dirty_run / part, run / part)
    records = _stage(dirty_run, "03_merge")["records_in"]
    monkeypatch.setattr(settings, "MERGE_PARTITION_RECORDS", records // 4 + 1)  # four ranges
    plan_run(
        plan=str(plan_path(dirty_city)),
        inbox=str(dirty_city / "inbox"),
        out=str(tmp_path),
        run_id="ranges",
        start_at="merge",
    )
    parts = directory_parts(run / "03_merge")
    assert len(parts) == 4 and len(directory_parts(run / "04_commit")) == 4
    keys = [pl.read_parquet(p, columns=["entity_key"])["entity_key"] for p in parts]
    assert all(k.len() > 0 and k.is_sorted() for k in keys)
    assert all(a[-1] < b[0] for a, b in zip(keys, keys[1:], strict=False))  # each range after the last
    assert pl.read_parquet(parts).equals(pl.read_parquet(directory_parts(dirty_run / "03_merge")))
    for name in ("conflicts.parquet", "conflicts.csv", "links.csv", "unlinked.csv", "type_conflicts.csv"):
        assert (run / "03_merge" / name).read_bytes() == (dirty_run / "03_merge" / name).read_bytes(), name
    figures = ("inputs", "outputs", "seconds", "reuse", "finished_at", "started_at")
    ranges, one = ({k: v for k, v in _stage(r, "03_merge").items() if k not in figures} for r in (run, dirty_run))
    assert ranges == one and ranges["conflicts_by_attribute"]
    commitments = (_stage(r, "04_commit")["commitment"] for r in (run, dirty_run))
    assert len(set(commitments)) == 1
    published = (r.parent.parent / "published" / "SZ-2026-ANNUAL" for r in (dirty_run, run))
    assert _bundle_differences(*published) == []


def test_data_docs_a_stopped_process_left_unfinished_are_built_again_by_publish(dirty_run, dirty_city, tmp_path):
    """Validate's Data Docs are built on a thread while the next stages run (flows/data_docs.py). When the process
    stopped before the site was whole, publish builds it again from what validate kept: the same pages."""
    from tests.flows.test_reuse import _bundle_differences

    run = tmp_path / "runs" / "resumed"
    shutil.copytree(dirty_run, run, ignore=shutil.ignore_patterns("08_publish"))
    site = run / "02_validate" / "validation"
    shutil.rmtree(site)
    (run / "02_validate" / ".validation.building").mkdir()  # what a stopped build leaves
    plan_run(
        plan=str(plan_path(dirty_city)),
        inbox=str(dirty_city / "inbox"),
        out=str(tmp_path),
        run_id="resumed",
        start_at="publish",
    )
    assert (site / "index.html").is_file() and not (run / "02_validate" / ".validation.building").exists()

    def pages(site):  # a file inventory's page is named by the time it was checked (again here)
        return sorted(re.sub(r"\d{8}T\d{6}\.\d{6}Z", "TIME", str(p.relative_to(site))) for p in site.rglob("*.html"))

    assert pages(site) == pages(dirty_run / "02_validate" / "validation")
    published = (r.parent.parent / "published" / "SZ-2026-ANNUAL" for r in (dirty_run, run))
    assert _bundle_differences(*published) == []


def test_the_merge_profile_times_every_key_range_and_what_its_sorted_write_is_made_of(dirty_run):
    """`scripts/profile_merge.py RUN --ranges` (what the README's figures of the merge's ranges come from): the stage's
    steps and counts, then every key range's own steps, each range merged apart."""
    done = subprocess.run(
        [sys.executable, "scripts/profile_merge.py", str(dirty_run), "--ranges", "--range-records", "6000"],
        cwd=ROOT,
        env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    merge = _stage(dirty_run, "03_merge")
    assert f"{merge['records_in']:,} records, {merge['entities']:,} entities" in done.stdout, done.stdout
    steps = re.findall(r"^  range (\d+): (.+?)\s+[\d.]+ s\s+[\d.]+ s$", done.stdout, flags=re.MULTILINE)
    ranges = sorted({int(n) for n, _ in steps})
    assert len(ranges) >= 3 and ranges == list(range(len(ranges))), done.stdout  # ~19,700 records, 6,000 a range
    for number in ranges:
        assert [s for n, s in steps if int(n) == number] == [
            "entity sizes",
            "shared",
            "grouped",
            "conflicts",
            "unlinked",
            "counts",
            "directory written, sorted",
            "apart: its rows made, into a table",
            "apart: sorted by key, into a table",
            "apart: their keys alone sorted",
            "apart: the sorted table written",
        ], done.stdout
