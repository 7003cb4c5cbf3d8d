"""Real Prefect flow runs of plan_run on the generated city (prefect_test_harness)."""

import json
import shutil

import polars as pl
import pytest
import yaml

from jointdraw.cli.commands import main
from jointdraw.flows.errors import StageFailed
from jointdraw.flows.plan_run import plan_run
from jointdraw.transforms.rerun import first_unfinished_stage
from jointdraw.transforms.storage.bundle import bundle_file
from jointdraw.transforms.storage.runfolder import directory_parts, sha256_file
from tests.conftest import plan_path


def test_ingest_accounts_for_every_row_of_every_file(prefect_server, small_city, tmp_path):
    summary = plan_run(plan=str(plan_path(small_city)), inbox=str(small_city / "inbox"), out=str(tmp_path), run_id="r1")
    stage = tmp_path / "runs" / "r1" / "01_ingest"
    record = json.loads((stage / "stage.json").read_text())
    inbox_files = sorted(p.relative_to(small_city / "inbox").as_posix() for p in (small_city / "inbox").rglob("*.*"))
    assert sorted(f["source"]["path"] for f in record["files"]) == inbox_files  # every file, none failed
    assert record["failed_departments"] == []
    for f in record["files"]:
        assert f["rows_read"] == f["rows_written"] == f["source"]["rows"]
        for out in f["outputs"]:  # each output is where the record says, with the recorded hash and rows
            path = stage / out["path"]
            assert sha256_file(path) == out["sha256"] and pl.read_parquet(path).height == out["rows"] == f["rows_read"]
    # rows read counted independently of the pipeline: CSV data lines in the inbox
    amr = small_city / "inbox" / "AMR" / "objects.csv"
    assert (
        next(f for f in record["files"] if f["source"]["path"] == "AMR/objects.csv")["rows_read"]
        == amr.read_text().count("\n") - 1
    )
    objects = pl.read_parquet(stage / "objects" / "*.parquet")
    assert objects.schema["registered_on"] == pl.Date and objects.schema["tags"] == pl.List(pl.String)
    assert objects.select("source_file", "source_line").is_duplicated().sum() == 0
    total = summary["stages"]["ingest"].table()[-1]
    assert total["department"] == "total" and total["objects"] == objects.height


def test_every_failing_department_is_reported_and_the_others_are_ingested(prefect_server, small_city, tmp_path):
    inbox = tmp_path / "inbox"
    shutil.copytree(small_city / "inbox", inbox)
    (inbox / "CUL" / "objects.csv").write_bytes(b"\x00\x01binary\x00")
    (inbox / "FIR" / "items.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(StageFailed) as e:
        plan_run(plan=str(plan_path(small_city)), inbox=str(inbox), out=str(tmp_path / "out"), run_id="r2")
    message = str(e.value)
    assert "2 department(s)" in message and "CUL/objects.csv" in message and "FIR/items.parquet" in message
    stage = tmp_path / "out" / "runs" / "r2" / "01_ingest"
    # what ingest found is kept, but the stage has not finished: a resume reads the inbox again
    record = json.loads((stage / "stage.failed.json").read_text())
    assert {f["department"] for f in record["failed_departments"]} == {"CUL", "FIR"}
    assert (stage / "objects" / "AMR.parquet").exists() and not (stage / "stage.json").exists()
    assert first_unfinished_stage(stage.parent) == "ingest"


def test_cli_prints_a_message_not_a_traceback_for_a_bad_plan(prefect_server, small_city, tmp_path, capsys):
    bad = tmp_path / "plan.yaml"
    bad.write_text(plan_path(small_city).read_text().replace("quarantine_threshold:", "quarantine_treshold:"))
    assert main(["run", str(bad), "--inbox", str(small_city / "inbox"), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "quarantine_treshold" in err and "Extra inputs are not permitted" in err and "Traceback" not in err


def test_cli_refuses_a_plan_outside_its_policy_bands_in_one_line_naming_task_and_class(
    prefect_server, small_city, tmp_path, capsys
):
    data = yaml.safe_load(plan_path(small_city).read_text(encoding="utf-8"))
    task = next(t for t in data["tasks"] if "ratio" in t)
    data["policy_bands"]["B"] = {"min": 0, "max": task["ratio"]["B"] / 2}  # the band the first ratio task breaks
    bad = tmp_path / "plan.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["run", str(bad), "--inbox", str(small_city / "inbox"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"task {task['task_id']} class B: ratio {task['ratio']['B']} is outside the plan's policy band" in err
    assert "Traceback" not in err and not (out / "runs").exists()  # refused before anything ran


def test_cli_runs_every_stage_with_relative_paths(prefect_server, small_city, tmp_path, monkeypatch, capsys):
    # what the README's demo does: relative --inbox and --out, from the folder they are in
    shutil.copytree(small_city, tmp_path / "city")
    monkeypatch.chdir(tmp_path)
    assert (
        main(["run", "city/plans/SZ-2026-ANNUAL.yaml", "--inbox", "city/inbox", "--out", "out", "--run-id", "rel"]) == 0
    )
    printed = capsys.readouterr().out
    assert "merge (名录合并)" in printed and "Data Docs" in printed
    assert (tmp_path / "out" / "runs" / "rel" / "02_validate" / "validation" / "index.html").exists()
    assert directory_parts(tmp_path / "out" / "runs" / "rel" / "03_merge")


def test_a_transient_read_error_is_retried_and_only_that(prefect_server, small_city, tmp_path, monkeypatch):
    import jointdraw.transforms.storage.ingest_files

    real, calls = jointdraw.transforms.storage.ingest_files.open_registry, []

    def flaky(file):
        calls.append(file.relative)
        if len(calls) == 1:  # the network share drops the first read
            raise OSError(5, "Input/output error")
        return real(file)

    monkeypatch.setattr("jointdraw.transforms.storage.ingest_files.open_registry", flaky)
    summary = plan_run(
        plan=str(plan_path(small_city)),
        inbox=str(small_city / "inbox"),
        out=str(tmp_path),
        run_id="flaky",
        stop_after="ingest",
    )
    assert (
        calls.count(calls[0]) == 2
        and summary["stages"]["ingest"].rows_read == summary["stages"]["ingest"].rows_written > 0
    )


def test_an_entity_known_only_by_its_organisation_code_is_drawn_published_and_verified(
    prefect_server, small_city, tmp_path
):
    """SPEC §4.4 (issue 16): no eligible entity is silently undrawable. A farm known to AMR only by its
    organisation code (no other department lists it, so nothing links it to a USCC) is drawn by a
    task that takes every agricultural entity, and is on the notice with the code it has."""
    import datetime as dt

    from jointdraw.transforms.plan import Task, plan_as_yaml, read_plan
    from jointdraw.transforms.uscc import org_code_reasons
    from jointdraw.transforms.verify import verify_draw

    inbox = tmp_path / "inbox"
    shutil.copytree(small_city / "inbox", inbox)
    amr = pl.read_csv(inbox / "AMR" / "objects.csv", infer_schema=False)
    org = next(
        c
        for c in (f"1234567{d}{x}" for d in "89" for x in "0123456789X")
        if org_code_reasons(pl.Series([c]))[0] is None
    )
    farm = {c: None for c in amr.columns} | {
        "org_code": org,
        "name": "深圳市光明农场",
        "entity_type": "全民所有制",
        "district_code": "440311",
        "industry_code": "A0111",
        "registered_on": "1990-01-01",
        "status": "存续（在营、开业、在册）",
        "credit_risk": "B",
    }
    pl.concat([amr, pl.DataFrame([farm], schema=amr.schema)]).write_csv(inbox / "AMR" / "objects.csv")
    annual = read_plan(plan_path(small_city))
    # and a task nobody is eligible for (no 外国（地区）企业常驻代表机构 in the city): reported, not silent (issue 18)
    nobody = Task(
        task_id="AMR-NOBODY", department="AMR", items=["AMR-002"], scope={"registered_types": ["7200"]}, count=3
    )
    plan = annual.model_copy(
        update={
            "tasks": [
                Task(
                    task_id="AMR-FARMS",
                    department="AMR",
                    items=["AMR-001"],
                    scope={"industries": ["A"]},
                    ratio=dict.fromkeys("ABCD", 1.0),
                ),
                nobody,
            ],
            "period": annual.period.model_copy(update={"end": dt.date(2026, 6, 30)}),
            "policy_bands": {},  # a test plan outside the sample city's policy (every class drawn whole)
        }
    )
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(plan_as_yaml(plan), encoding="utf-8")
    summary = plan_run(plan=str(plan_file), inbox=str(inbox), out=str(tmp_path / "out"), run_id="org")
    bundle = tmp_path / "out" / "published" / plan.plan_id
    assert summary["stages"]["draw"].tasks_without_eligible == ["AMR-NOBODY"]
    assert 'id="empty-tasks"' in bundle_file(bundle, "report.html").read_text(encoding="utf-8")
    key = f"ORG:{org}"
    assert key in pl.read_parquet(bundle_file(bundle, "draws.parquet"))["uscc"].to_list()
    assert (
        f"{plan.plan_id}-{key}"
        in pl.read_parquet(bundle_file(bundle, "joint_tasks.parquet"))["joint_task_id"].to_list()
    )
    notice = pl.read_csv(bundle_file(bundle, "notice.csv"), infer_schema=False)
    assert f"组织机构代码 {org[:8]}-{org[8]}" in notice["统一社会信用代码"].to_list()
    report = verify_draw(bundle)
    assert report.ok, report.problems


def test_the_plan_is_checked_against_the_inbox_before_anything_runs(prefect_server, small_city, tmp_path):
    """Issue 18: a department of the plan with no folder, one with items and inspectors but no objects
    file, a task for a department that does not exist, items a department does not list: one line
    each, naming the department, said once, and nothing runs."""
    from jointdraw.transforms.plan import Task, plan_as_yaml, read_plan

    inbox = tmp_path / "inbox"
    shutil.copytree(small_city / "inbox", inbox)
    shutil.rmtree(inbox / "WAT")  # no folder at all
    (inbox / "EMR" / "objects.xlsx").unlink()  # items and inspectors, but no objects
    annual = read_plan(plan_path(small_city))
    extra = [
        Task(task_id="XYZ-T01", department="XYZ", items=["XYZ-001"], ratio={"A": 0.1}),
        Task(task_id="AMR-T99", department="AMR", items=["AMR-001", "AMR-998", "AMR-999"], ratio={"A": 0.1}),
    ]
    plan = annual.model_copy(update={"tasks": [*annual.tasks, *extra], "policy_bands": {}, "no_zero_class": False})
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(plan_as_yaml(plan), encoding="utf-8")
    with pytest.raises(StageFailed) as failure:
        plan_run(plan=str(plan_file), inbox=str(inbox), out=str(tmp_path / "out"), run_id="gaps")
    lines = [line.strip() for line in str(failure.value).splitlines() if line.strip().startswith("- ")]
    assert [line.split(":")[0] for line in lines] == ["- AMR", "- EMR", "- WAT", "- XYZ"], lines  # one line each, once
    assert "AMR-998, AMR-999" in lines[0] and "AMR/items.csv does not list" in lines[0]
    assert "EMR/ has no objects.* file" in lines[1] and "the inbox has no folder WAT/" in lines[2]
    assert "not in data/reference/departments.csv" in lines[3]
    assert not (tmp_path / "out" / "runs" / "gaps" / "01_ingest").exists()  # nothing ran
