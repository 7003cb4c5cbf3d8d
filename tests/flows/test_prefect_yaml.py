"""prefect.yaml is checked without a server: each deployment's entrypoint loads and its
parameters validate against the flow's signature."""

import asyncio
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from prefect.flows import load_flow_from_entrypoint
from prefect.server.schemas.schedules import CronSchedule

ROOT = Path(__file__).resolve().parents[2]


def test_every_deployment_loads_and_its_parameters_validate():
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert config["deployments"]
    for d in config["deployments"]:
        flow = load_flow_from_entrypoint(str(ROOT / d["entrypoint"]))
        flow.validate_parameters(d["parameters"])  # raises on an unknown or mistyped parameter
        names = {"flows/results.py": "results-run", "flows/kpi.py": "kpi-run"}
        assert flow.name == names.get(d["entrypoint"].split(":")[0], "plan-run")


def test_the_yearly_figures_run_on_15_january_for_the_year_before():
    """kpi-yearly: 03:00 on 15 January in China, the output root from the variable the other deployments
    use, and no year given — the flow takes the year before the day it runs."""
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (d,) = [d for d in config["deployments"] if d["name"] == "kpi-yearly"]
    assert d["entrypoint"] == "flows/kpi.py:kpi_run"
    assert d["parameters"]["out"] == "{{ prefect.variables.jointdraw_out }}" and "year" not in d["parameters"]
    (s,) = d["schedules"]
    schedule = CronSchedule(cron=s["cron"], timezone=s["timezone"])
    china = ZoneInfo("Asia/Shanghai")
    runs = asyncio.run(schedule.get_dates(n=2, start=dt.datetime(2026, 6, 1, tzinfo=china)))
    local = [r.astimezone(china) for r in runs]
    assert [(t.year, t.month, t.day, t.hour, t.minute) for t in local] == [(2027, 1, 15, 3, 0), (2028, 1, 15, 3, 0)]
    assert d["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
