"""The temporary Prefect server of a flow command run without PREFECT_API_URL, started as the command begins.

Without PREFECT_API_URL, Prefect starts a temporary local server when the first flow is called
(`prefect.server.api.server.SubprocessASGIServer`): it imports the server's modules into the command's
own process (2.7 s) and then waits for the server to answer (4–5 s), the command doing nothing else
meanwhile: 7 s of the demo city's 25. `temporary_api` starts the same server (Prefect's command line,
settings and log lines) before the command loads its flow, so it comes up on the other core while the
command imports its flow and Great Expectations (`preload`), then points PREFECT_API_URL at it for the
command and stops it at the end, however the command ends (SIGTERM included: issue 18).

With PREFECT_API_URL set (a running `prefect server start`, what a scheduled deployment uses) nothing is
started: the command only imports.
"""

from __future__ import annotations

import atexit
import importlib
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager

HELP = (
    "See https://www.prefect.io/docs/v3/concepts/server#how-to-guides "
    "for more information on running a dedicated Prefect server."
)
PORTS = range(8000, 9000)  # Prefect's range for its temporary server
PORT_TAKEN = 3  # uvicorn's exit code when its port is taken


@contextmanager
def temporary_api(preload: list[str]) -> Iterator[None]:
    """Inside the block, PREFECT_API_URL points at this process's temporary server (started on
    first entry) unless it is set already; `preload` (module names) is imported while the server
    starts. The server stops when the process exits, after Prefect has sent its last logs and
    events (as Prefect's own temporary server does)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

    if PREFECT_API_URL.value():
        _import(preload)
        yield
        return
    global _SERVER
    if _SERVER is None:
        _SERVER = _TemporaryServer()
    _import(preload)
    _SERVER.wait()
    # no UI is served (as on Prefect's temporary server): no "View at" link to it in the log
    with temporary_settings({PREFECT_API_URL: _SERVER.api_url, PREFECT_UI_URL: ""}):
        yield


_SERVER: _TemporaryServer | None = None


def _import(modules: list[str]) -> None:
    for module in modules:
        importlib.import_module(module)


class _TemporaryServer:
    """Prefect's temporary server (the command and environment of SubprocessASGIServer), as a subprocess."""

    def __init__(self) -> None:
        from prefect.logging import get_logger
        from prefect.logging.configuration import ensure_logging_setup

        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = self._start()
        atexit.register(self.stop)  # at exit, after Prefect's services have drained (they drain before atexit)
        ensure_logging_setup()
        self.logger = get_logger()  # the logger Prefect says "Starting temporary server" with
        self.logger.info("Starting temporary server on %s\n%s", self.address, HELP)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.address}/api"

    def _start(self) -> subprocess.Popen[bytes]:
        import prefect
        from prefect.settings import get_current_settings

        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(prefect.__module_path__.parent),
                "--factory",
                "prefect.server.api.server:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "error",
                "--lifespan",
                "on",
            ],
            env={
                **os.environ,
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
                **get_current_settings().to_environment_variables(exclude_unset=True),
            },
        )

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
        self.logger.info("Stopping temporary server on %s", self.address)
        process, self.process = self.process, None
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
