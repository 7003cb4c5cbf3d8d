"""The commit and draw stages in real flow runs, and `verify` on what they wrote."""

import json
import re
import shutil

import polars as pl
import pytest

from jointdraw.cli.commands import main
from jointdraw.flows.errors import StageFailed
from jointdraw.flows.plan_run import plan_run
from jointdraw.transforms.documents.manifest import manifest_problems
from jointdraw.transforms.draw import lowest_k, score_keys, strata_table, summed_sizes
from jointdraw.transforms.fusion_figures import fusion_figures
from jointdraw.transforms.plan import read_plan
from jointdraw.transforms.storage.bundle import bundle_file
from jointdraw.transforms.storage.runfolder import directory_parts
from jointdraw.transforms.verify import verify_draw
from tests.conftest import plan_path

SOURCES = ["9319", "2 5 12 8 10", "9 18 26 34 41 45"]


def _copy_until_merge(dirty_run, tmp_path, run_id):
    run = tmp_path / "runs" / run_id
    for stage in ("01_ingest", "02_validate", "03_merge"):
        shutil.copytree(dirty_run / stage, run / stage)
    shutil.copy(dirty_run / "run.json", run / "run.json")
    return run


def test_the_draw_verifies_and_reports_both_modes(dirty_run):
    report = verify_draw(dirty_run)
    assert report.ok, report.text()
    assert report.checked_draws > 100 and report.eligible_pairs > report.checked_draws
    stage = json.loads((dirty_run / "05_draw" / "stage.json").read_text())
    draws = pl.read_parquet(dirty_run / "05_draw" / "draws.parquet")
    assert stage["fusion"]["independent"] == fusion_figures(draws)
    assert stage["fusion"]["coordinated"]["reduction_rate"] > stage["fusion"]["independent"]["reduction_rate"]
    assert draws.columns == [
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
    assert draws.equals(draws.sort("task_id", "credit_risk", "score", "uscc"))


def test_verify_catches_a_single_changed_row(dirty_run, tmp_path):
    shutil.copytree(dirty_run / "04_commit", tmp_path / "04_commit")
    shutil.copytree(dirty_run / "05_draw", tmp_path / "05_draw")
    path = tmp_path / "05_draw" / "draws.parquet"
    draws = pl.read_parquet(path)
    draws.with_columns(
        score=pl.when(pl.int_range(pl.len()) == 3).then(pl.col("score") + 1).otherwise("score")
    ).write_parquet(path)
    report = verify_draw(tmp_path)
    assert not report.ok and len(report.problems) == 1 and report.problems[0].startswith("wrong score")
    draws.slice(1).write_parquet(path)  # one draw removed
    assert verify_draw(tmp_path).problems[0].startswith("missing:")
    assert main(["verify", str(tmp_path)]) == 1


def test_commit_first_then_draw_with_public_numbers(prefect_server, dirty_run, dirty_city, tmp_path, capsys):
    run = _copy_until_merge(dirty_run, tmp_path, "public")
    common = {
        "plan": str(plan_path(dirty_city)),
        "inbox": str(dirty_city / "inbox"),
        "out": str(tmp_path),
        "run_id": "public",
    }
    plan_run(**common, start_at="commit", stop_after="commit")
    assert not (run / "05_draw").exists()
    committed = json.loads((run / "04_commit" / "commitment.json").read_text())
    # 事前公示 (issue 17): the item list and the plan notice are public before the seed is known
    pre = bundle_file(tmp_path / "published" / "SZ-2026-ANNUAL", "pre")
    assert sorted(p.name for p in pre.iterdir()) == [
        "commitment.json",
        "items.csv",
        "items.xlsx",
        "manifest.json",
        "plan_notice.csv",
        "plan_notice.xlsx",
    ]
    assert (
        manifest_problems(pre.parent.parent) == []
    )  # the plan's folder is whole before the draw too: pre/ and a manifest saying so
    assert json.loads((pre / "commitment.json").read_text())["commitment"] == committed["commitment"]
    notice = pl.read_csv(pre / "plan_notice.csv", infer_schema=False)
    items = pl.read_csv(pre / "items.csv", infer_schema=False)
    assert notice["抽查任务编号"].to_list() == [t.task_id for t in read_plan(plan_path(dirty_city)).tasks]
    assert set(notice["抽查方式"]) == {"定向", "不定向"} and notice["抽查范围"].str.contains("行业：").any()
    assert {"事项编号", "抽查事项", "抽查依据", "检查方式", "部门"} <= set(items.columns) and items.height > 100
    # nothing about any entity: no USCC, no name or person of the directory or the inspectors
    text = "".join(p.read_text(encoding="utf-8-sig") for p in (pre / "items.csv", pre / "plan_notice.csv"))
    directory = pl.read_parquet(directory_parts(run / "03_merge"), columns=["uscc", "name", "operator_name"])
    assert not re.search(r"[0-9A-Z]{18}", text)
    inspectors = pl.read_parquet(
        run / "02_validate" / "accepted" / "inspectors" / "*.parquet", columns=["name", "inspector_id"]
    )
    people = {
        v
        for v in [*directory["name"], *directory["operator_name"], *inspectors["name"], *inspectors["inspector_id"]]
        if v and len(v) >= 3
    }
    assert not [p for p in people if p in text][:3]
    plan_run(**common, start_at="draw", seed_sources=SOURCES)
    seed = json.loads((run / "05_draw" / "seed.json").read_text())
    assert seed["seed"] == "9319./2.5.8.10.12./9.18.26.34.41.45./" and seed["origin"] == "public numbers (RFC 3797)"
    assert seed["commitment"] == committed["commitment"]
    assert verify_draw(run).ok
    first = (run / "05_draw" / "draws.parquet").read_bytes()
    plan_run(**common, start_at="draw", seed_sources=SOURCES)  # the same seed again: the same bytes
    assert (run / "05_draw" / "draws.parquet").read_bytes() == first
    assert main(["seed", *[a for s in SOURCES for a in ("--source", s)]]) == 0
    assert capsys.readouterr().out.strip() == seed["seed"]


def test_the_draw_refuses_files_changed_after_the_commitment(prefect_server, dirty_run, dirty_city, tmp_path):
    run = _copy_until_merge(dirty_run, tmp_path, "tampered")
    common = {
        "plan": str(plan_path(dirty_city)),
        "inbox": str(dirty_city / "inbox"),
        "out": str(tmp_path),
        "run_id": "tampered",
    }
    plan_run(**common, start_at="commit", stop_after="commit")
    plan = run / "04_commit" / "plan.yaml"
    plan.write_text(plan.read_text().replace("ratio:", "ratio:", 1) + "\n# edited after the commitment\n")
    with pytest.raises(StageFailed, match="plan.yaml"):
        plan_run(**common, start_at="draw")


def test_the_draw_refuses_inspections_changed_after_the_commitment(prefect_server, dirty_run, dirty_city, tmp_path):
    """The inspections the visit caps counted are frozen at commit (04_commit/inspections.parquet), and the
    inbox's files are the run's inputs: one changed after the commitment — the frozen copy, or a
    department's inspections file — makes the draw refuse, as a changed plan does."""
    run = _copy_until_merge(dirty_run, tmp_path, "inspections")
    inbox = tmp_path / "inbox"
    shutil.copytree(dirty_city / "inbox", inbox)
    common = {"plan": str(plan_path(dirty_city)), "inbox": str(inbox), "out": str(tmp_path), "run_id": "inspections"}
    plan_run(**common, start_at="commit", stop_after="commit")
    excluded = pl.read_parquet(run / "04_commit" / "exclusions.parquet")
    assert {"visit_cap_total", "visit_cap_department", "visit_cap_level"} <= set(excluded["reason"])
    frozen = run / "04_commit" / "inspections.parquet"
    as_committed = frozen.read_bytes()
    pl.read_parquet(frozen).head(-1).write_parquet(frozen)  # one inspection fewer
    with pytest.raises(
        StageFailed, match=r"commit: 1 of its files changed since it wrote them \(inspections.parquet\)"
    ):
        plan_run(**common, start_at="draw")
    frozen.write_bytes(as_committed)
    env = inbox / "ENV" / "inspections.csv"  # GBK, as ENV's system exports it
    env.write_bytes(env.read_bytes() + "91350100M000100Y43,某公司,ENV,2026-02-01,双随机抽查,市级\n".encode("gbk"))
    with pytest.raises(StageFailed, match="input ENV/inspections.csv changed since ingest read it"):
        plan_run(**common, start_at="draw")
    assert not (run / "05_draw" / "draws.parquet").exists()


def test_verify_fails_when_the_publication_before_the_draw_is_changed(dirty_run, tmp_path):
    """pre/ is inside the commitment: an edited plan notice (its manifest entry updated to match) or item
    list is caught by verify, and the plan notice is re-derived from plan.yaml."""
    import hashlib
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(dirty_run.parent.parent / "published" / "SZ-2026-ANNUAL", bundle)
    assert verify_draw(bundle).ok
    notice = bundle_file(bundle, "pre") / "plan_notice.csv"
    notice.write_text(notice.read_text(encoding="utf-8-sig").replace("不定向", "定向", 1), encoding="utf-8-sig")
    manifest = json.loads(
        (bundle_file(bundle, "pre") / "manifest.json").read_text()
    )  # pre/ is a nested bundle with its own manifest
    for f in manifest["files"]:
        if f["path"] == "plan_notice.csv":
            f["sha256"], f["bytes"] = hashlib.sha256(notice.read_bytes()).hexdigest(), notice.stat().st_size
    (bundle_file(bundle, "pre") / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
    problems = verify_draw(bundle).problems
    assert any("pre_sha256" in p for p in problems) and any("plan notice plan.yaml gives" in p for p in problems)


def test_history_in_the_warehouse_excludes_objects_from_the_draw(prefect_server, dirty_run, dirty_city, tmp_path):
    import datetime as dt

    from jointdraw.transforms.storage.warehouse import connect_warehouse

    run = _copy_until_merge(dirty_run, tmp_path, "quarterly")
    drawn_before = pl.read_parquet(dirty_run / "05_draw" / "draws.parquet")["uscc"].unique().sort().to_list()
    # an earlier plan drew these objects a month before this plan's period: they must sit this one out
    con = connect_warehouse(tmp_path)
    con.executemany(
        "insert into draws (run_id, plan_id, task_id, uscc, drawn_on) values ('q1-run', 'SZ-2026-Q1', 'X', ?, ?)",
        [(u, dt.date(2026, 2, 1)) for u in drawn_before],
    )
    con.close()
    plan_run(
        plan=str(plan_path(dirty_city)),
        inbox=str(dirty_city / "inbox"),
        out=str(tmp_path),
        run_id="quarterly",
        start_at="commit",
    )
    commit = json.loads((run / "04_commit" / "stage.json").read_text())
    assert commit["exclusions_by_reason"]["recently_inspected"] == len(drawn_before)
    draws = pl.read_parquet(run / "05_draw" / "draws.parquet")
    assert draws.height > 0 and not set(draws["uscc"]) & set(drawn_before)
    assert verify_draw(run).ok


def test_on_the_flows_threads_the_pairs_stay_in_memory_and_draw_what_the_files_draw(
    prefect_server, dirty_run, tmp_path
):
    """Drawn part by part on the flow's threads, a part's eligible pairs stay in this process between the steps
    (no file written but the in-scope pairs, every connection closed after); written to files as on Dask, and
    with the in-scope pairs read back from the first draw's files, the same draws."""
    from prefect import flow

    from jointdraw.flows import draw as stage

    commit = dirty_run / "04_commit"
    plan = read_plan(commit / "plan.yaml")
    seed = json.loads((dirty_run / "05_draw" / "seed.json").read_text(encoding="utf-8"))["seed"]
    parts = directory_parts(commit)

    in_scope = [tmp_path / f"in-scope-{n:03d}.parquet" for n in range(len(parts))]

    @flow
    def drawn(work):
        return stage._drawn_part_by_part(parts, commit / "exclusions.parquet", plan, seed, work, None, in_scope, False)

    kept = drawn(tmp_path / "kept")
    assert kept.draws.equals(pl.read_parquet(dirty_run / "05_draw" / "draws.parquet"))
    assert not list((tmp_path / "kept").iterdir()) and not stage._KEPT
    excluded = pl.read_parquet(commit / "exclusions.parquet")
    assert not excluded.is_empty() and all(f.is_file() for f in in_scope)
    scoped = pl.concat([pl.read_parquet(f) for f in in_scope])  # before the exclusions: the excluded are in them
    assert scoped.join(excluded.filter(pl.col("task_id").is_null()).select("uscc"), on="uscc").height > 0
    pairs = [tmp_path / "files" / f"eligible-{n:03d}.parquet" for n in range(len(parts))]
    (tmp_path / "files").mkdir()
    sizes = [
        stage.draw_part_pairs.fn(p, commit / "exclusions.parquet", plan, f, None, s, found=True)
        for p, f, s in zip(parts, pairs, in_scope, strict=True)
    ]
    assert all(f.is_file() for f in pairs) and not stage._KEPT
    strata = strata_table(plan, summed_sizes(sizes))
    from_files = [
        stage.draw_part_lowest.fn(f, plan, seed, [score_keys(plan, "planned")], strata, None)[0] for f in pairs
    ]
    drawn_from_files = lowest_k(strata, from_files, lambda asked: pytest.fail("no stratum comes up short here"))
    assert kept.draws.select(drawn_from_files.columns).equals(drawn_from_files)
