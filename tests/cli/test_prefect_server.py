"""`jointdraw run` without PREFECT_API_URL starts Prefect's temporary server as the command begins (while it
loads its flow and Great Expectations), runs against it and stops it at exit (cli/prefect_server.py)."""

import os
import re
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing

from jointdraw.cli.prefect_server import TASK_RUN_RECORDER
from tests.conftest import plan_path


def _rows(home, *tables: str) -> tuple[int, ...]:
    """How many rows each table of the home's Prefect database holds."""
    with closing(sqlite3.connect(f"file:{home / 'prefect.db'}?mode=ro", uri=True)) as con:
        return tuple(con.execute(f"select count(*) from {t}").fetchone()[0] for t in tables)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_run_without_a_server_starts_one_at_once_and_leaves_nothing_behind(small_city, tmp_path, monkeypatch):
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", TASK_RUN_RECORDER)}  # as users run it
    env["PREFECT_HOME"], env["PREFECT_LOGGING_LEVEL"] = str(tmp_path / "prefect-home"), "DEBUG"
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
    # no flow-run heartbeats for a server that ends with the command (Prefect's debug line when they start)
    assert "Beginning flow run" in output and "heartbeat context" not in output
    assert not _listening(int(started.group(1)))
    validate = next((tmp_path / "out" / "runs").glob("*/02_validate/stage.json"))
    assert validate.is_file()
    # the server kept the flow run and its logs, not its task runs: nobody reads them (cli/prefect_server.py)
    flow_runs, logs, task_runs = _rows(tmp_path / "prefect-home", "flow_run", "log", "task_run")
    assert flow_runs == 1 and logs > 0 and task_runs == 0

    # the home's database is now at the installed Prefect's newest migration, as `migrations_head` reads the
    # scripts: the next run's server is told to skip the check, and it starts, answers and takes the run's logs
    from jointdraw.cli.prefect_server import STOP_LOG, blocks_registered, database_is_current

    for key in [k for k in os.environ if k.startswith("PREFECT_") and "DATABASE" in k]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PREFECT_HOME", env["PREFECT_HOME"])
    monkeypatch.chdir(tmp_path)
    assert database_is_current() and blocks_registered()  # and it skips the blocks' check too
    again = subprocess.run(  # with the task runs recorded: the environment says so
        [*command[:-1], "ingest", "--run-id", "again"],
        env={**env, TASK_RUN_RECORDER: "true"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = again.stdout + again.stderr
    # and what the server writes once it is asked to stop (Prefect 3.9's task-run recorder logs CancelledError
    # tracebacks as it is cancelled, a second run in a home more often than not) is kept in the home, not shown
    assert again.returncode == 0 and "Traceback" not in output and "Error logging to API" not in output, output[-3000:]
    assert (tmp_path / "out" / "runs" / "again" / "01_ingest" / "stage.json").is_file()
    assert (tmp_path / "prefect-home" / STOP_LOG).is_file()
    flow_runs, task_runs = _rows(tmp_path / "prefect-home", "flow_run", "task_run")
    assert flow_runs == 2 and task_runs > 0


def test_the_database_check_is_skipped_only_for_prefects_own_sqlite_file_at_the_newest_migration(tmp_path, monkeypatch):
    from jointdraw.cli.prefect_server import database_is_current, migrations_head

    for key in [k for k in os.environ if k.startswith("PREFECT_") and "DATABASE" in k]:
        monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("PREFECT_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    assert not database_is_current()  # no database yet: the server creates it
    con = sqlite3.connect(home / "prefect.db")
    con.execute("create table alembic_version (version_num varchar(32) not null)")
    con.execute("insert into alembic_version values ('0000older0000')")
    con.commit()
    assert not database_is_current()  # an older revision: migrate
    con.execute("update alembic_version set version_num = ?", [migrations_head()])
    con.commit()
    con.close()
    assert database_is_current()
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", "postgresql+asyncpg://db/prefect")
    assert not database_is_current()  # another database, configured in the environment
    monkeypatch.delenv("PREFECT_API_DATABASE_CONNECTION_URL")
    (home / "profiles.toml").write_text('[profiles.local]\nPREFECT_SERVER_DATABASE_NAME = "/elsewhere.db"\n')
    assert not database_is_current()  # … or in the profile


def test_the_blocks_check_is_skipped_only_once_a_server_has_registered_them(tmp_path, monkeypatch):
    from jointdraw.cli.prefect_server import blocks_registered

    for key in [k for k in os.environ if k.startswith("PREFECT_") and "MEMO" in k]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    assert not blocks_registered()  # a new home: the server registers them
    (tmp_path / "memo_store.toml").write_text("")
    assert not blocks_registered()
    (tmp_path / "memo_store.toml").write_text('block_auto_registration = "8e765d3cd3df25fa"\n')
    assert blocks_registered()
    monkeypatch.setenv("PREFECT_SERVER_MEMO_STORE_PATH", str(tmp_path / "elsewhere.toml"))
    assert not blocks_registered()  # another memo store, configured


def test_the_script_starts_the_server_before_the_command_loads_its_modules(tmp_path):
    """The `jointdraw` script (`jointdraw.cli:main`) starts a flow command's server before cli/commands.py and
    what it imports (polars) are loaded; not for a command without a flow, nor for --help. (The probe ends the
    process where the server would start: the rest of the command is another test's.)"""
    probe = """
import sys
from jointdraw.cli import prefect_server
def started():
    print("started with polars loaded:", "polars" in sys.modules)
    sys.exit(0)
prefect_server.start_early = started
sys.argv = ["jointdraw", *sys.argv[1:]]
from jointdraw.cli import main
main()
"""

    def started(*args: str) -> str:
        done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120)
        return next((line for line in done.stdout.splitlines() if line.startswith("started")), "")

    missing = str(tmp_path / "missing.yaml")
    assert started("run", missing, "--inbox", str(tmp_path), "--out", str(tmp_path)) == (
        "started with polars loaded: False"
    )
    assert started("run", "--help") == ""
    assert started("verify", str(tmp_path)) == ""


def test_with_a_server_nothing_is_started(prefect_server):
    """Under PREFECT_API_URL (the session's test server) `temporary_api` starts nothing and loads nothing
    ahead: the command loads what it needs when it needs it."""
    from jointdraw.cli import prefect_server
    from jointdraw.cli.prefect_server import temporary_api

    sys.modules.pop("colorsys", None)
    with temporary_api(["colorsys"]):
        assert "colorsys" not in sys.modules
    assert prefect_server._SERVER is None
