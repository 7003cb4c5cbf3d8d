"""The temporary Prefect server of a flow command run without PREFECT_API_URL, started as the command begins.

Without PREFECT_API_URL, Prefect starts a temporary local server when the first flow is called
(`prefect.server.api.server.SubprocessASGIServer`): it imports the server's modules into the command's
own process (2.7 s) and then waits for the server to answer (4–5 s), the command doing nothing else
meanwhile: 7 s of the demo city's 20. Here the same server (Prefect's command line, environment and log
lines) is started before the command has even loaded Prefect (`start_early`), so it comes up on the
other core while the command imports Prefect, its flow and Great Expectations; `temporary_api` then
points PREFECT_API_URL at it for the command. It stops when the process exits, after Prefect has sent
its last logs and events, as Prefect's own temporary server does (SIGTERM included: issue 18).

With PREFECT_API_URL set (a running `prefect server start`, what a scheduled deployment uses) nothing is
started, or the server started early is stopped at once when the URL comes from the Prefect profile.

The server checks its database's migrations as it starts (alembic reads all of Prefect's migration scripts:
0.3-0.7 s of CPU on a 3.5 s start). When nothing configures another database and Prefect's own SQLite file
(PREFECT_HOME/prefect.db) is at the newest revision of the installed Prefect's migrations already
(`database_is_current`), the server is told to skip that check; a new Prefect, a new home, or a database
configured anywhere (environment, profile, prefect.toml, .env, pyproject.toml) lets it migrate as before.
Likewise, with the blocks registered in that database already (`blocks_registered`), it skips their check.

The server does not record task runs (TASK_RUN_RECORDER off, unless the environment turns it on): Prefect's
client reports every task run's states as events, and the server's task-run recorder turns them into rows of its
database: in a demo-city run (92 task runs) the server took 2.9–3.8 CPU s with it and 1.1–1.6 s without, on
the core the stages share. Nobody reads them: the server serves no UI and stops with the command, which reads
nothing back from it. The flow run, its logs and its events are kept as before; a `prefect server start` in the
same home later shows the run without its task runs. A server that people read (`prefect server start`, what
deployments use) records them as Prefect does.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import os
import random
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import BinaryIO

HELP = (
    "See https://www.prefect.io/docs/v3/concepts/server#how-to-guides "
    "for more information on running a dedicated Prefect server."
)
PORTS = range(8000, 9000)  # Prefect's range for its temporary server
PORT_TAKEN = 3  # uvicorn's exit code when its port is taken
STARTUP_SECONDS = 60  # how long `_first_request` tries
FIRST_REQUEST = b"GET /api/admin/version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
TASK_RUN_RECORDER = "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED"  # the server's service that records task runs
STOP_LOG = "temporary-server-stop.log"  # in PREFECT_HOME: what the server wrote while it stopped (`_relay`)


def start_early() -> None:
    """Starts this process's temporary server now unless PREFECT_API_URL is in the environment
    (`temporary_api` stops it if the Prefect profile names a server)."""
    global _SERVER
    if _SERVER is None and not os.environ.get("PREFECT_API_URL"):
        _SERVER = _TemporaryServer()


@contextmanager
def temporary_api(preload: list[str]) -> Iterator[None]:
    """Inside the block, PREFECT_API_URL points at this process's temporary server (started on
    first entry, if `start_early` did not) unless a server is configured; `preload` (module names)
    is imported while the server starts (with a server already there, the command loads them when it
    needs them, as before)."""
    global _SERVER
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, PREFECT_UI_URL, temporary_settings

    if PREFECT_API_URL.value():
        if _SERVER is not None and not _SERVER.announced:  # started early, but the profile names a server
            _SERVER.stop()
            _SERVER = None
        yield
        return
    if _SERVER is None:
        _SERVER = _TemporaryServer()
    _SERVER.announce()
    _import(preload)
    _SERVER.wait()
    # no UI is served (as on Prefect's temporary server): no "View at" link to it in the log. No flow-run heartbeats:
    # they tell a server's services that a run is still alive, and this server runs none and ends with the command;
    # Prefect's heartbeat thread sleeps in steps of a second and is waited for as the flow ends (0.5 s a run).
    quiet = {PREFECT_UI_URL: "", PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    with temporary_settings({PREFECT_API_URL: _SERVER.api_url, **quiet}):
        yield


_SERVER: _TemporaryServer | None = None


def _import(modules: list[str]) -> None:
    for module in modules:
        importlib.import_module(module)


class _TemporaryServer:
    """Prefect's temporary server (the command and environment of SubprocessASGIServer), as a subprocess."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.announced = False
        self._after_stop: BinaryIO | None = None
        self._relaying: threading.Thread | None = None
        self.process: subprocess.Popen[bytes] | None = self._start()
        atexit.register(self.stop)  # at exit, after Prefect's services have drained (they drain before atexit)
        threading.Thread(target=self._first_request, name="server-first-request", daemon=True).start()

    def _first_request(self) -> None:
        """Asks the server its version as soon as it answers /health: its first API request takes 0.4 s (it sets
        itself up), which the flow's first request then waited for, after the command's imports; asked here, it
        is spent while the command imports. Only network calls here, with what the command has imported already:
        an import on a second thread while the first imports can deadlock."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            process = self.process  # None once the command stops it
            if process is None or process.poll() is not None:
                return
            try:
                with closing(socket.create_connection(("127.0.0.1", self.port), timeout=0.1)) as s:
                    s.settimeout(5)
                    s.sendall(FIRST_REQUEST)
                    s.recv(1024)  # the answer's first bytes: the server has answered its first request
                return
            except OSError:
                time.sleep(0.1)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.address}/api"

    def _start(self) -> subprocess.Popen[bytes]:
        """The server subprocess, from the environment (the subprocess reads the Prefect profile
        itself, as Prefect's own does): nothing of Prefect is imported here."""
        spec = importlib.util.find_spec("prefect")
        assert spec is not None and spec.origin is not None, "prefect is not installed"
        env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
        env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # offline: no telemetry errors in its log
        env.setdefault(TASK_RUN_RECORDER, "false")  # nobody reads the task runs of this server (the module's text)
        if database_is_current():
            env["PREFECT_SERVER_DATABASE_MIGRATE_ON_START"] = "false"
            if blocks_registered():
                env["PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION"] = "false"
                env["PREFECT_SERVER_REGISTER_BLOCKS_ON_START"] = "false"
        command = ["-m", "uvicorn", "--app-dir", str(Path(spec.origin).parent.parent), "--factory"]
        command += ["prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port)]
        process = subprocess.Popen(
            [sys.executable, *command, "--log-level", "error", "--lifespan", "on"], env=env, stderr=subprocess.PIPE
        )
        self._relaying = threading.Thread(target=self._relay, args=(process,), name="server-stderr", daemon=True)
        self._relaying.start()
        return process

    def _relay(self, process: subprocess.Popen[bytes]) -> None:
        """The server's error output, line by line, to the command's (file descriptor 2, as if inherited) until
        the command asks the server to stop; what it writes after that goes to STOP_LOG in PREFECT_HOME, kept
        but not shown: Prefect 3.9's services log CancelledError tracebacks as they are cancelled, more often
        than not on a second run in a home, after the run has said it succeeded."""
        assert process.stderr is not None
        for line in process.stderr:
            try:
                if self._after_stop is not None:
                    self._after_stop.write(line)
                else:
                    os.write(2, line)
            except (OSError, ValueError):  # the command's error output, or the log, closed already
                return

    def announce(self) -> None:
        """Prefect's line saying where the server is (once Prefect's logging is set up)."""
        if self.announced:
            return
        from prefect.logging import get_logger
        from prefect.logging.configuration import ensure_logging_setup

        ensure_logging_setup()
        get_logger().info("Starting temporary server on %s\n%s", self.address, HELP)
        self.announced = True

    def wait(self) -> None:
        """Returns when the server answers; raises, as Prefect does, when it has not after
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS."""
        import httpx
        from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

        deadline = time.monotonic() + PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
        with httpx.Client() as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                code = self.process.poll()
                if code == PORT_TAKEN:  # another process took the port meanwhile: another one
                    self.port = _free_port()
                    self.process = self._start()
                    continue
                if code is not None:
                    break
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return
                except httpx.ConnectError:
                    pass
                time.sleep(0.1)
        code = self.process.poll() if self.process else None
        raise RuntimeError(
            "Timed out while attempting to connect to ephemeral Prefect API server."
            + (f" Ephemeral server process exited with code {code}." if code is not None else "")
        )

    def stop(self) -> None:
        if self.process is None:
            return
        if self.announced:
            from prefect.logging import get_logger

            get_logger().info("Stopping temporary server on %s", self.address)
        process, self.process = self.process, None
        home = _prefect_home()
        try:
            self._after_stop = open(home / STOP_LOG, "wb")  # noqa: SIM115 - closed below, once the server is gone
        except OSError:
            self._after_stop = open(os.devnull, "wb")  # noqa: SIM115
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._relaying is not None:  # the server is gone: the rest of its output, then the end of the pipe
            self._relaying.join(timeout=2)
        self._after_stop.close()


def _prefect_home() -> Path:
    """PREFECT_HOME, as Prefect reads it from the environment (default ~/.prefect)."""
    return Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()


def migrations_head() -> str | None:
    """The newest revision of the installed Prefect's SQLite migrations (the one no other follows), read from
    the scripts' `revision` and `down_revision` lines; None unless there is exactly one."""
    spec = importlib.util.find_spec("prefect")
    assert spec is not None and spec.origin is not None, "prefect is not installed"
    folder = Path(spec.origin).parent / "server" / "database" / "_migrations" / "versions" / "sqlite"
    revisions, followed = set(), set()
    for script in folder.glob("*.py"):
        text = script.read_text(encoding="utf-8")
        if found := re.search(r'^revision\s*=\s*"(\w+)"', text, re.M):
            revisions.add(found.group(1))
        if found := re.search(r"^down_revision\s*=\s*(.+)$", text, re.M):
            followed.update(re.findall(r'"(\w+)"', found.group(1)))
    heads = revisions - followed
    return heads.pop() if len(heads) == 1 else None


def database_is_current() -> bool:
    """Whether the temporary server's database is Prefect's own SQLite file (nothing configures another, or
    another home's profiles) and that file is at `migrations_head` already."""
    if any(k.startswith("PREFECT_") and ("DATABASE" in k or k == "PREFECT_PROFILES_PATH") for k in os.environ):
        return False
    home = _prefect_home()
    for settings in (home / "profiles.toml", Path("prefect.toml"), Path(".env")):
        if settings.is_file() and re.search(r"database|home", settings.read_text(errors="replace"), re.I):
            return False
    if Path("pyproject.toml").is_file() and "[tool.prefect" in Path("pyproject.toml").read_text(errors="replace"):
        return False
    database = home / "prefect.db"
    if not database.is_file():
        return False
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)) as con:
            current = con.execute("select version_num from alembic_version").fetchall()
    except sqlite3.Error:
        return False
    return len(current) == 1 and current[0][0] == migrations_head()


def blocks_registered() -> bool:
    """Whether a server has registered Prefect's block types in this home's database already (its memo store,
    PREFECT_HOME/memo_store.toml, holds the registration's hash; nothing configures another store). The
    temporary server then skips the check: it loads every installed Prefect collection to hash their blocks
    (prefect-dask and Dask's distributed among them: 0.25 s of a 3.3 s start) only to find them registered.
    A `prefect server start` in the same home still checks, and registers the blocks of a collection installed
    since."""
    if any("MEMO" in k for k in os.environ if k.startswith("PREFECT_")):
        return False
    try:
        memo = (_prefect_home() / "memo_store.toml").read_text(encoding="utf-8")
    except OSError:
        return False
    return re.search(r'^block_auto_registration\s*=\s*"\w+"', memo, re.M) is not None


def _free_port() -> int:
    for _ in range(10):
        port = random.choice(PORTS)
        with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            try:
                sock.bind(("127.0.0.1", port))
                return port
            except OSError:
                time.sleep(random.uniform(0.1, 0.5))
    raise RuntimeError("Unable to find an available port after multiple attempts")
