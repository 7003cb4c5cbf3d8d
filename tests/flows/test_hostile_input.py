"""Hostile names and plans (issue 10): nothing is written outside the output root, plan YAML
is loaded safely, and a bad plan is refused before anything runs."""

import shutil

import pytest
import yaml

from jointdraw.flows.plan_run import plan_run
from jointdraw.transforms.plan import PlanError, read_plan
from tests.conftest import plan_path


def _files(root):
    return {p for p in root.rglob("*")}


def _plan(small_city, tmp_path, **changes):
    data = yaml.safe_load(plan_path(small_city).read_text(encoding="utf-8"))
    data.update(changes)
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("plan_id", ["../escape", "a/b", "-rf", "计划2026", ".hidden", "x" * 65])
def test_a_plan_id_that_could_leave_the_output_root_is_refused(small_city, tmp_path, plan_id):
    with pytest.raises(PlanError, match="plan_id"):
        read_plan(_plan(small_city, tmp_path, plan_id=plan_id))


def test_a_plan_is_yaml_without_objects_or_aliases(small_city, tmp_path):
    bomb = (
        "a: &a [x, x, x, x, x, x, x, x, x]\n"
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    )
    (tmp_path / "bomb.yaml").write_text(bomb + "plan_id: P\n", encoding="utf-8")
    with pytest.raises(PlanError, match="aliases"):
        read_plan(tmp_path / "bomb.yaml")
    (tmp_path / "object.yaml").write_text(
        "plan_id: !!python/object/apply:os.system ['touch /tmp/pwned']\n", encoding="utf-8"
    )
    with pytest.raises(PlanError, match="cannot be read"):
        read_plan(tmp_path / "object.yaml")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"seeds": "typo"}, "seeds: Extra inputs are not permitted"),
        ({"period": {"start": "2026-12-01", "end": "2026-03-01"}}, "period"),
        ({"quarantine_threshold": 1.5}, "quarantine_threshold"),
        ({"exclusion_window_days": -1}, "exclusion_window_days"),
    ],
)
def test_a_bad_plan_is_refused_naming_the_key(small_city, tmp_path, change, says):
    with pytest.raises(PlanError, match=says.split(":")[0]) as refused:
        read_plan(_plan(small_city, tmp_path, **change))
    assert says in str(refused.value)


@pytest.mark.parametrize(("field", "value"), [("ratio", {"A": 1.5}), ("count", -3)])
def test_a_task_with_a_ratio_outside_0_1_or_a_negative_count_is_refused_before_anything_runs(
    prefect_server, small_city, tmp_path, field, value
):
    data = yaml.safe_load(plan_path(small_city).read_text(encoding="utf-8"))
    task = data["tasks"][0]
    task.pop("ratio", None), task.pop("count", None)
    task[field] = value
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(PlanError, match=f"tasks.0.{field}"):
        plan_run(plan=str(path), inbox=str(small_city / "inbox"), out=str(out))
    assert not (out / "runs").exists()  # refused before any stage ran


def test_department_folders_and_run_ids_cannot_write_outside_the_output_root(prefect_server, small_city, tmp_path):
    inbox = tmp_path / "inbox"
    shutil.copytree(small_city / "inbox", inbox)
    for hostile in ("..AMR", "-rf", "市场监督管理局", "amr"):
        shutil.copytree(small_city / "inbox" / "WAT", inbox / hostile)
    out = tmp_path / "out"
    before = _files(tmp_path) - _files(out) if out.exists() else _files(tmp_path)
    with pytest.raises(Exception) as failure:
        plan_run(plan=str(plan_path(small_city)), inbox=str(inbox), out=str(out), run_id="r", stop_after="ingest")
    for hostile in ("..AMR", "-rf", "市场监督管理局", "amr"):
        assert f"- {hostile}: {hostile}/: a department folder is named by its department code" in str(failure.value)
    written = _files(tmp_path) - before
    assert written and all(p == out or out in p.parents for p in written)  # everything new is under the output root
    assert not any(h in p.parts for p in written for h in ("..AMR", "-rf", "市场监督管理局", "amr"))
    with pytest.raises(PlanError, match="run id"):
        plan_run(
            plan=str(plan_path(small_city)), inbox=str(inbox), out=str(out), run_id="../../escape", stop_after="ingest"
        )
    assert not (tmp_path / "escape").exists()
