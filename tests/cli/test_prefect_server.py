"""`jointdraw run` without PREFECT_API_URL starts Prefect's temporary server as the command begins (while it
loads its flow and Great Expectations), runs against it and stops it at exit (cli/prefect_server.py)."""

import os
import re
import socket
import subprocess
import sys

from tests.conftest import plan_path


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_run_without_a_server_starts_one_at_once_and_leaves_nothing_behind(small_city, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # as a user runs it: no server
    env["PREFECT_HOME"], env["PREFECT_LOGGING_LEVEL"] = str(tmp_path / "prefect-home"), "INFO"
    command = [sys.executable, "-m", "jointdraw.cli", "run", str(plan_path(small_city))]
    command += ["--inbox", str(small_city / "inbox"), "--out", str(tmp_path / "out"), "--stop-after", "validate"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    started = re.search(r"Starting temporary server on http://127\.0\.0\.1:(\d+)", output)
    assert started and "Stopping temporary server" in output  # Prefect's own lines, as before
    assert output.index("Starting temporary server") < output.index("Beginning flow run")
    # the run's logs reached the server (none failed on the way out) and no link to a UI that is not served
    assert "Error logging to API" not in output and "View at" not in output and "Traceback" not in output
    assert not _listening(int(started.group(1)))
    validate = next((tmp_path / "out" / "runs").glob("*/02_validate/stage.json"))
    assert validate.is_file()


def test_with_a_server_nothing_is_started(prefect_server):
    """Under PREFECT_API_URL (the session's test server) `temporary_api` starts nothing and loads nothing
    ahead: the command loads what it needs when it needs it."""
    from jointdraw.cli import prefect_server
    from jointdraw.cli.prefect_server import temporary_api

    sys.modules.pop("colorsys", None)
    with temporary_api(["colorsys"]):
        assert "colorsys" not in sys.modules
    assert prefect_server._SERVER is None
