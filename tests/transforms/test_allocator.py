"""polars' allocator setting (transforms/settings.py POLARS_ALLOCATOR), given before polars is loaded.

polars writes its own jemalloc setting into `_RJEM_MALLOC_CONF` as it loads, with what it finds there after it
(jemalloc reads the options left to right: the last one wins). Ours must be there before: every entry point
imports jointdraw.transforms first. Each case runs in a fresh interpreter, since the setting is read once."""

import os
import subprocess
import sys

import pytest

from jointdraw.transforms.settings import POLARS_ALLOCATOR

VARIABLE, OURS = POLARS_ALLOCATOR


def _setting_after_importing(module: str, **env: str) -> str:
    """The allocator's setting as polars left it, in a fresh interpreter that imports `module`."""
    environment = {k: v for k, v in os.environ.items() if k != VARIABLE} | env
    code = f"import os, {module}, polars; print(os.environ[{VARIABLE!r}])"
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.mark.parametrize("entry", ["jointdraw.cli.commands", "jointdraw.flows.plan_run"])
def test_the_command_and_a_deployments_flow_module_give_polars_our_setting_last(entry):
    setting = _setting_after_importing(entry)
    assert setting.endswith("," + OURS), setting  # after polars' own (its decay of 0.5 s), so ours is the one used
    assert setting != OURS  # polars was loaded after us, and added its own before ours


def test_a_setting_of_the_users_own_wins_over_ours():
    setting = _setting_after_importing("jointdraw.flows.plan_run", **{VARIABLE: "dirty_decay_ms:2000"})
    assert setting.endswith(",dirty_decay_ms:2000")
    assert OURS not in setting
