"""The `jointdraw` command loads its modules with the collector of reference cycles off and turns it on,
with what they made frozen out of its passes, once the flow's modules are loaded (cli/commands.py
`_collect_from_here`): 1.1 of the 6 CPU s a run's imports took."""

import os
import subprocess
import sys

from prefect.settings import PREFECT_API_URL

from tests.conftest import plan_path

PROBE = """
import atexit, gc, sys

class Watch:  # says whether the collector was on when Great Expectations began to load
    def find_spec(self, name, path=None, target=None):
        if name == "great_expectations":
            print("collector on while loading the contract:", gc.isenabled())
        return None

real_enable, enabled = gc.enable, []
def enable():  # the first time (libraries turn it off and on again in a block of theirs later)
    if not enabled:
        print("frozen:", gc.get_freeze_count() > 100_000, "contract loaded:", "great_expectations" in sys.modules)
    enabled.append(True)
    real_enable()

gc.enable = enable
sys.meta_path.insert(0, Watch())
atexit.register(lambda: print("collector on at exit:", gc.isenabled()))
sys.argv = ["jointdraw", *sys.argv[1:]]
from jointdraw.cli import main
sys.exit(main())
"""


def test_the_command_loads_its_modules_without_the_collector_and_runs_with_it(prefect_server, small_city, tmp_path):
    missing = tmp_path / "no-inbox"  # the run ends at once with its message: what comes before is what is checked
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "run", str(plan_path(small_city)), "--inbox", str(missing)]
        + ["--out", str(tmp_path / "out")],
        env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1 and "no-inbox" in done.stderr, done.stdout + done.stderr[-3000:]
    assert done.stdout.splitlines() == [
        "collector on while loading the contract: False",
        "frozen: True contract loaded: True",
        "collector on at exit: True",
    ], done.stdout
