"""Polars' allocator (settings.POLARS_ALLOCATOR): set before polars loads by whatever runs the pipeline (the
`jointdraw` command, a flow's module as a Prefect worker imports it, a background writer), unless the environment
sets one. Each case is a fresh interpreter: polars reads the variable once, as it loads."""

import os
import subprocess
import sys

import pytest

from jointdraw.transforms.settings import POLARS_ALLOCATOR

PROBE = "import {module}, os, polars; print(os.environ['_RJEM_MALLOC_CONF'])"


def _options(conf: str) -> dict[str, str]:
    """jemalloc's options as it reads them: left to right, the last of a name wins."""
    return dict(option.split(":", 1) for option in conf.split(","))


def _conf_after_import(module: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


@pytest.mark.parametrize(
    "module", ["jointdraw.cli.commands", "jointdraw.flows.plan_run", "jointdraw.transforms.storage.background"]
)
def test_polars_runs_with_the_pipelines_allocator_setting(module):
    effective = _options(_conf_after_import(module))
    for name, value in _options(POLARS_ALLOCATOR).items():
        assert effective[name] == value, (module, effective)


def test_an_allocator_setting_in_the_environment_wins():
    """The environment names one option only: the other stays polars' own, so ours was not applied."""
    effective = _options(_conf_after_import("jointdraw.flows.plan_run", _RJEM_MALLOC_CONF="muzzy_decay_ms:0"))
    assert effective["muzzy_decay_ms"] == "0"
    assert effective["dirty_decay_ms"] != _options(POLARS_ALLOCATOR)["dirty_decay_ms"], effective
