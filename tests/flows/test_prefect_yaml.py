"""prefect.yaml is checked without a server: each deployment's entrypoint loads and its
parameters validate against the flow's signature."""

from pathlib import Path

import yaml
from prefect.flows import load_flow_from_entrypoint

ROOT = Path(__file__).resolve().parents[2]


def test_every_deployment_loads_and_its_parameters_validate():
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert config["deployments"]
    for d in config["deployments"]:
        flow = load_flow_from_entrypoint(str(ROOT / d["entrypoint"]))
        flow.validate_parameters(d["parameters"])  # raises on an unknown or mistyped parameter
        assert flow.name == ("results-run" if d["entrypoint"].startswith("flows/results.py") else "plan-run")
