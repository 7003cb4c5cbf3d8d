"""The publish stage: the audit bundle of SPEC §6 from a real flow run of the dirty city."""

import json
import re
import shutil
import subprocess

import polars as pl
import pytest

from jointdraw.cli.commands import main
from jointdraw.flows.plan_run import plan_run
from jointdraw.transforms.documents import draw_bundle
from jointdraw.transforms.documents.manifest import file_digest
from jointdraw.transforms.fusion_figures import FIGURE_LABELS
from jointdraw.transforms.storage.bundle import bundle_file
from jointdraw.transforms.storage.runfolder import directory_parts
from jointdraw.transforms.verify import verify_draw
from tests.chromium import chromium_dom, chromium_flags
from tests.conftest import plan_path

SPEC_FILES = {  # by part (issue 18): what each audience is handed
    "public": [
        "notice.csv",
        "notice.xlsx",
        "notice.html",
        "strata.parquet",
        "strata.csv",
        "strata.xlsx",
        "summary.json",
        "report.html",
        "seed.json",
        "commitment.json",
        "manifest.json",
        "pre/items.csv",
        "pre/plan_notice.csv",
        "pre/manifest.json",
    ],
    "audit": [
        "directory.parquet",
        "exclusions.parquet",
        "plan.yaml",
        "draws.parquet",
        "draws.csv",
        "draws.xlsx",
        "attempts.json",
    ],
    "regulator": [
        "joint_tasks.parquet",
        "joint_tasks.csv",
        "joint_tasks.xlsx",
        "unassigned.parquet",
        "unassigned.csv",
        "unassigned.xlsx",
        "quarantine/quarantine.csv",
        "quarantine/quarantine.xlsx",
        "validation/index.html",
    ],
}
VOLATILE = (
    "run_id",
    "timeline",
    "documents",
    "audit",
)  # README "Publish": what differs between two runs of the same inputs and seed


@pytest.fixture(scope="module")
def bundle(dirty_run):
    return dirty_run.parent.parent / "published" / "SZ-2026-ANNUAL"


def test_the_bundle_has_every_spec_file_with_the_spec_columns(bundle):
    expected = {f"{part}/{f}" for part, files in SPEC_FILES.items() for f in files}
    assert all((bundle / f).is_file() for f in expected), [f for f in expected if not (bundle / f).is_file()]
    assert sorted(p.name for p in bundle.iterdir()) == ["audit", "public", "regulator"]
    assert pl.read_parquet(bundle_file(bundle, "draws.parquet")).columns == [
        "plan_id",
        "task_id",
        "department",
        "item_ids",
        "uscc",
        "name",
        "district_code",
        "credit_risk",
        "stratum_size",
        "k",
        "score_key",
        "score",
    ]
    joint = pl.read_parquet(bundle_file(bundle, "joint_tasks.parquet"))
    assert joint.columns == [
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
    assert joint.schema["inspector_ids"] == pl.List(pl.String)  # lists stay lists in Parquet
    csv = pl.read_csv(bundle_file(bundle, "joint_tasks.csv"), infer_schema=False)
    several = csv.filter(pl.col("检查部门").str.contains("；"))  # Chinese headers for people
    assert several.height == joint.filter(pl.col("departments").list.len() > 1).height > 0  # and are ；-joined in CSV
    for name in (
        "audit/draws.csv",
        "regulator/joint_tasks.csv",
        "regulator/unassigned.csv",
        "public/notice.csv",
        "regulator/quarantine/quarantine.csv",
    ):
        assert (bundle / name).read_bytes().startswith(b"\xef\xbb\xbf"), name
    # the operators' personal data stays in the run folder
    assert not {"operator_name", "phone"} & set(pl.read_parquet_schema(bundle_file(bundle, "directory.parquet")))
    assert not list(bundle.parent.glob(".*"))  # no staging folder left behind


def test_the_notice_leaks_no_class_no_inspector_and_no_operator(bundle, dirty_run):
    notice = pl.read_csv(bundle_file(bundle, "notice.csv"), infer_schema=False)
    assert notice.columns == [
        "所属区",
        "企业名称",
        "统一社会信用代码",
        "抽查事项",
        "检查部门",
        "牵头部门",
        "检查时间",
        "联合任务编号",
    ]
    joint = pl.read_parquet(bundle_file(bundle, "joint_tasks.parquet"))
    assert notice.height == joint.height
    order = notice.with_columns(
        code=pl.col("联合任务编号").replace_strict(dict(joint.select("joint_task_id", "district_code").iter_rows()))
    )
    assert order.equals(order.sort("code", "企业名称", "统一社会信用代码", maintain_order=True))
    cells = set(notice.drop("联合任务编号").unpivot()["value"].drop_nulls())
    import fastexcel  # the workbook beside it is scanned too (issue 17)

    workbook = fastexcel.read_excel(bundle_file(bundle, "notice.xlsx")).load_sheet(0, dtypes="string").to_polars()
    assert workbook.columns == notice.columns and workbook.height == notice.height
    cells |= set(workbook.drop("联合任务编号").unpivot()["value"].drop_nulls())
    page = bundle_file(bundle, "notice.html").read_text(encoding="utf-8")  # and the page's data (issue 17)
    data = json.loads(
        re.search(r'<script id="notice-data" type="application/json">(.*?)</script>', page, re.S).group(1)
    )
    assert len(data) == notice.height
    cells |= {v for row in data for v in row[:-1] if v}
    inspectors = pl.read_parquet(dirty_run / "04_commit" / "inspectors.parquet")
    directory = pl.read_parquet(directory_parts(dirty_run / "04_commit")).join(
        joint.select("uscc"), on="uscc", how="semi"
    )
    people = (
        set(inspectors["name"])
        | set(inspectors["inspector_id"])
        | set(directory["operator_name"].drop_nulls())
        | set(directory["phone"].drop_nulls())
    )
    classes = set(pl.read_csv("data/reference/credit_classes.csv")["name_zh"]) | {"A", "B", "C", "D"}
    assert len(people) > 100 and directory["operator_name"].drop_nulls().len() > 10  # the scan has something to find
    leaks = [(c, p) for c in cells for p in people if p in c] + [
        c for c in cells if c in classes or any(k in c for k in classes if len(k) > 1)
    ]
    assert not leaks, leaks[:5]


def test_manifest_records_everything_and_verify_checks_every_hash(bundle, dirty_run, tmp_path):
    manifest = json.loads(bundle_file(bundle, "manifest.json").read_text(encoding="utf-8"))
    assert manifest["seed"]["value"] == "SZ-2026-ANNUAL-demo-seed" and manifest["run_id"] == "dirty"
    assert {"polars", "duckdb", "prefect", "great-expectations", "plotly"} <= set(manifest["packages"])
    ingest = json.loads((dirty_run / "01_ingest" / "stage.json").read_text())
    assert len(manifest["inputs"]) == len(ingest["files"]) and all(
        len(i["sha256"]) == 64 and i["rows"] for i in manifest["inputs"]
    )
    listed = {f["path"]: f for f in manifest["files"]}
    assert listed["audit/draws.parquet"]["rows"] == pl.read_parquet(bundle_file(bundle, "draws.parquet")).height
    acc = manifest["accounting"]
    assert acc["validate"]["rows_read"] == acc["validate"]["rows_accepted"] + acc["validate"]["rows_quarantined"]
    assert sum(acc["validate"]["quarantined_by_reason"].values()) == acc["validate"]["rows_quarantined"]
    assert (
        acc["fuse"]["drawn_total"] == acc["draw"]["drawn"]
        and acc["assign"]["joint_tasks"] == acc["fuse"]["joint_tasks"]
    )
    report = verify_draw(bundle)
    pre = json.loads((bundle_file(bundle, "pre") / "manifest.json").read_text(encoding="utf-8"))["files"]
    assert report.ok and report.checked_files == len(manifest["files"]) + len(manifest["documents"]) + len(pre), (
        report.text()
    )
    # a copy with one CSV cell changed: the draw still recomputes, but the manifest catches the file
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    notice = bundle_file(copy, "notice.csv")
    notice.write_bytes(notice.read_bytes().replace("福田区".encode(), "南山区".encode(), 1))
    problems = verify_draw(copy).problems
    assert problems[0].startswith("public/manifest.json: public/notice.csv has SHA-256"), problems
    assert main(["verify", str(copy)]) == 1


def test_same_inputs_and_seed_publish_the_same_bytes(prefect_server, bundle, dirty_city, tmp_path, monkeypatch):
    taken = []  # audit/directory.parquet, draws.csv and notice.csv: written ahead while assign ran

    def written_ahead(path, taken_from=draw_bundle.written_ahead):
        taken.append((path.name.split("-")[0], taken_from(path)))
        return taken[-1][1]

    monkeypatch.setattr(draw_bundle, "written_ahead", written_ahead)
    plan_run(plan=str(plan_path(dirty_city)), inbox=str(dirty_city / "inbox"), out=str(tmp_path), run_id="twin")
    assert taken == [("directory", True), ("draws.csv", True), ("notice.csv", True)]
    assert not (tmp_path / "runs" / "twin" / "08_publish" / ".ahead").exists()
    twin = tmp_path / "published" / "SZ-2026-ANNUAL"
    first, second = (json.loads(bundle_file(b, "manifest.json").read_text(encoding="utf-8")) for b in (bundle, twin))
    assert first["run_id"] != second["run_id"]
    assert {k: v for k, v in first.items() if k not in VOLATILE} == {
        k: v for k, v in second.items() if k not in VOLATILE
    }
    for f in first[
        "files"
    ]:  # every Parquet, CSV and JSON file but the manifest, byte for byte (the pages but their seal)
        assert file_digest(bundle, f["path"]) == file_digest(twin, f["path"]) == f["sha256"], f["path"]
    assert (
        sum(f["path"].endswith(".html") for f in first["files"]) == 1
    )  # notice.html: its bytes differ by the seal only


def test_a_failed_publish_leaves_the_previous_bundle_untouched(prefect_server, dirty_run, dirty_city, tmp_path):
    run = tmp_path / "runs" / "again"
    shutil.copytree(dirty_run, run)
    shutil.copytree(dirty_run.parent.parent / "published", tmp_path / "published")
    target = tmp_path / "published" / "SZ-2026-ANNUAL"
    before = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    (run / "02_validate" / "quarantine.xlsx").unlink()  # publish fails half-way, after writing most of the bundle
    state = plan_run(
        plan=str(plan_path(dirty_city)),
        inbox=str(dirty_city / "inbox"),
        out=str(tmp_path),
        run_id="again",
        start_at="publish",
        return_state=True,
    )
    assert state.is_failed() and "the previous bundle in" in state.message and "is kept" in state.message
    assert "02_validate/quarantine.xlsx is missing" in state.message and "\n" not in state.message
    after = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert after == before
    assert not [p for p in (tmp_path / "published").iterdir() if p.name.startswith(".")]


def test_artifacts_have_stable_keys(prefect_server, dirty_run):
    from prefect.artifacts import Artifact

    certificate = Artifact.get("draw-certificate")
    assert (
        certificate is not None and "SZ-2026-ANNUAL-demo-seed" in certificate.data and "commitment" in certificate.data
    )
    link = Artifact.get("published-bundle")
    assert link is not None and "published/SZ-2026-ANNUAL" in link.data
    figures = Artifact.get("fusion-summary")
    assert figures is not None and [r["figure"] for r in json.loads(figures.data)] == list(FIGURE_LABELS.values())


def test_the_notice_page_finds_a_drawn_entity_and_says_when_one_was_not_drawn(bundle):
    """notice.html in headless Chromium, offline: a search (by name, from the page's address) finds a
    drawn entity; a search for an entity that was not drawn says so."""
    from urllib.parse import quote

    notice = pl.read_csv(bundle_file(bundle, "notice.csv"), infer_schema=False)
    name, code = notice.row(3, named=True)["企业名称"], notice.row(3, named=True)["统一社会信用代码"]
    page = bundle_file(bundle, "notice.html").resolve().as_uri()
    found = chromium_dom(f"{page}#q={quote(name)}")
    assert "找到 " in found and code in found and '<p id="none" style="display: none;">' in found
    directory = pl.read_parquet(bundle_file(bundle, "directory.parquet")).join(
        notice.select(uscc="统一社会信用代码"), on="uscc", how="anti"
    )
    missing = directory.filter(pl.col("name").is_not_null())["name"][0]
    assert missing not in set(notice["企业名称"])
    none = chromium_dom(f"{page}#q={quote(missing)}")
    assert 'id="count">找到 0 户' in none and '<p id="none" style="display: block;">未找到' in none
    assert f"共 {notice.height:,} 户" in found and "自行核验" in found and "import hashlib" in found


def test_report_opens_offline_in_headless_chromium(bundle, tmp_path):
    """Chromium (installed by scripts/apps.sh) renders the page with the network off; the
    five figures are in the rendered page and plotly drew its charts."""
    summary = json.loads(bundle_file(bundle, "summary.json").read_text(encoding="utf-8"))
    flags = chromium_flags(8000, "--window-size=1300,3200")
    url = bundle_file(bundle, "report.html").resolve().as_uri()
    dom = subprocess.run(["chromium", *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    for key in FIGURE_LABELS:
        value = f"{summary[key]:.2%}" if key == "reduction_rate" else f"{summary[key]:,}"
        assert f'data-figure="{key}"><div class="value">{value}</div>' in dom, key
    assert dom.count('class="main-svg"') >= 4  # plotly.js ran and drew the charts: no CDN needed
    assert "部门重叠矩阵" in dom and "分类抽取比例" in dom
    screenshot = tmp_path / "report.png"  # kept, in pytest's last three temporary folders, for a look
    subprocess.run(["chromium", *flags, f"--screenshot={screenshot}", url], capture_output=True, timeout=120)
    assert screenshot.stat().st_size > 50_000
