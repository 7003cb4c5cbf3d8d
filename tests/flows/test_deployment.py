"""The deployments of prefect.yaml on a real Prefect server and worker, as the README runs
them: start a server on loopback, create the process pool, deploy, start a worker, trigger
a run, wait for it, check the bundle, stop everything. Every wait is bounded."""

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from jointdraw.cli.prefect_server import TASK_RUN_RECORDER
from jointdraw.transforms.storage.bundle import bundle_file
from jointdraw.transforms.verify import verify_draw
from tests.conftest import plan_path

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, auth: str | None = None, body: dict | None = None):
    """The API's answer to a GET, or to a POST of `body` (JSON)."""
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        headers["content-type"] = "application/json"
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=10) as r:
        return json.loads(r.read())


def _wait(what: str, check, seconds: float, logs: list[Path]):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if (found := check()) is not None:
                return found
        except OSError:
            pass
        time.sleep(1)
    tails = "\n".join(f"--- {p.name} ---\n{p.read_text(errors='replace')[-3000:]}" for p in logs if p.exists())
    pytest.fail(f"{what}: not within {seconds:.0f} s\n{tails}")


def _cli(args: list[str], env: dict, timeout: int = 120) -> str:
    done = subprocess.run([PREFECT, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done.stdout


def _state(api: str, secret: str, flow_run: str) -> str:
    return _get(f"{api}/flow_runs/{flow_run}", secret)["state_type"]


def _webhook_sink():
    """A local HTTP server standing in for the city's messaging robot: it keeps what is posted."""
    import http.server
    import threading

    class Robot(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            self.server.messages.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"errcode": 0}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Robot)
    server.messages = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _run_script(args: list[str], env: dict) -> str:
    done = subprocess.run([sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _a_failed_run_retried_goes_on_where_it_stopped(api, secret, env, city, tmp_path, reference, logs, sink):
    """Issue 19: a run that fails at publish (a fault the test injects) is reported to the webhook by
    the automation of scripts/notify.py; retried with `prefect flow-run retry`, it goes on at publish
    in the same run folder — the flow run's id fixes it — with the earlier stages untouched, no new
    audit entry, and publishes the uninterrupted run's bytes."""
    from jointdraw.transforms.audit import attempts
    from jointdraw.transforms.documents.manifest import file_digest
    from jointdraw.transforms.storage.warehouse import audit_entries
    from tests.flows.test_publish_stage import VOLATILE

    (tmp_path / "fault").write_text("publish", encoding="utf-8")
    out = tmp_path / "out-retried"
    triggered = _cli(
        [
            "deployment",
            "run",
            "plan-run/demo",
            "--param",
            f"plan={plan_path(city)}",
            "--param",
            f"inbox={city / 'inbox'}",
            "--param",
            f"out={out}",
        ],
        env,
    )
    flow_run = next(line.split("UUID:")[1].strip() for line in triggered.splitlines() if "UUID:" in line)
    _wait(
        f"flow run {flow_run} to fail at publish",
        lambda: (
            _state(api, secret, flow_run)
            if _state(api, secret, flow_run) in ("FAILED", "CRASHED", "COMPLETED")
            else None
        ),
        300,
        logs,
    )
    assert _state(api, secret, flow_run) == "FAILED"
    run_id = f"SZ-2026-ANNUAL-{flow_run.replace('-', '')[:12]}"
    assert (
        _get(f"{api}/flow_runs/{flow_run}", secret)["name"] == f"{run_id} from ingest"
    )  # the name shows the run folder
    told = _wait(
        "the failure posted to the robot",
        lambda: next((m for m in sink.messages if run_id in m["text"]["content"]), None),
        90,
        logs,
    )
    assert (
        told["msgtype"] == "text"
        and "Failed" in told["text"]["content"]
        and "fault injected" in told["text"]["content"]
    )
    assert f"prefect flow-run retry {flow_run}" in told["text"]["content"]
    run_dir = out / "runs" / run_id
    finished = {p: p.stat().st_mtime_ns for p in run_dir.glob("0[1-7]_*/stage.json")}
    assert len(finished) == 7 and not (run_dir / "08_publish" / "stage.json").exists()
    (tmp_path / "fault").unlink()
    _cli(["flow-run", "retry", flow_run], env)
    _wait(
        f"flow run {flow_run} to complete when retried",
        lambda: (
            _state(api, secret, flow_run)
            if _state(api, secret, flow_run) in ("FAILED", "CRASHED", "COMPLETED")
            else None
        ),
        300,
        logs,
    )
    assert _state(api, secret, flow_run) == "COMPLETED", logs[0].read_text(errors="replace")[-4000:]
    assert {
        p: p.stat().st_mtime_ns for p in run_dir.glob("0[1-7]_*/stage.json")
    } == finished  # nothing before publish redone
    assert sorted(p.name for p in (out / "runs").iterdir()) == [run_id]  # the same run folder, no new one
    # a server people read records the run's task runs, more than its eight stages' (the file tasks too); a command's
    # temporary server records none (cli/prefect_server.py)
    assert _get(f"{api}/task_runs/count", secret, body={"flow_runs": {"id": {"any_": [flow_run]}}}) > 8
    assert len(attempts(audit_entries(out, "SZ-2026-ANNUAL"))) == 1
    bundle = out / "published" / "SZ-2026-ANNUAL"
    first, second = (
        json.loads(bundle_file(b, "manifest.json").read_text(encoding="utf-8")) for b in (reference, bundle)
    )
    assert {k: v for k, v in first.items() if k not in VOLATILE} == {
        k: v for k, v in second.items() if k not in VOLATILE
    }
    for f in first["files"]:
        assert file_digest(reference, f["path"]) == file_digest(bundle, f["path"]), f["path"]
    assert verify_draw(bundle).ok


def test_a_deployment_runs_on_a_real_server_and_worker(dirty_run, dirty_city, tmp_path):
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **{k: v for k, v in os.environ.items() if k != TASK_RUN_RECORDER},  # a server as users run it: Prefect's own
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "JOINTDRAW_HOME": str(ROOT),
        "PREFECT_LOGGING_LEVEL": "INFO",
    }
    # API authentication on (README "Production"): the server checks, every client sends; credentials only in the
    # environment
    secret = f"jointdraw:{os.urandom(12).hex()}"
    env.update({"PREFECT_SERVER_API_AUTH_STRING": secret, "PREFECT_API_AUTH_STRING": secret})
    server_log, worker_log = tmp_path / "server.log", tmp_path / "worker.log"
    started: list[subprocess.Popen] = []
    try:
        with open(server_log, "w") as log:
            started.append(
                subprocess.Popen(
                    [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        _wait(
            "the Prefect server answering /api/health", lambda: _get(f"{api}/health", secret) or None, 90, [server_log]
        )
        with pytest.raises(urllib.error.HTTPError, match="401"):  # without the credentials the API answers nothing
            _get(f"{api}/flow_runs/00000000-0000-0000-0000-000000000000")
        _cli(["work-pool", "create", "jointdraw", "--type", "process"], env)
        for name, value in (
            ("jointdraw_inbox", "/data/inbox"),
            ("jointdraw_out", "/data/out"),
            ("jointdraw_results_inbox", "/data/results-inbox"),
        ):  # README: set once, read when deploying
            _cli(["variable", "set", name, value], env)
        deployed = _cli(["--no-prompt", "deploy", "--all"], env)
        assert (
            "plan-run/annual" in deployed
            and "plan-run/quarterly" in deployed
            and "results-run/results-weekly" in deployed
            and "kpi-run/kpi-yearly" in deployed
        )
        deployments = {d["name"]: d for d in _get(f"{api}/deployments/filter", secret, body={})}
        schedules = {
            name: sorted(
                (
                    (s["schedule"]["cron"], s["schedule"]["timezone"], s.get("parameters", {}).get("plan"))
                    for s in d["schedules"]
                ),
                key=lambda c: [int(m) if m.isdigit() else 0 for m in c[0].split()[3].split(",")],
            )
            for name, d in deployments.items()
        }
        assert schedules == {
            "annual": [("0 2 1 3 *", "Asia/Shanghai", None)],
            "demo": [],
            "quarterly": [
                ("0 2 1 4 *", "Asia/Shanghai", "data/plans/SZ-2026-Q2.yaml"),  # each quarter its own plan
                ("0 2 1 7 *", "Asia/Shanghai", "data/plans/SZ-2026-Q3.yaml"),
                ("0 2 1 10 *", "Asia/Shanghai", "data/plans/SZ-2026-Q4.yaml"),
            ],
            "results-weekly": [("0 6 * * 1", "Asia/Shanghai", None)],
            "kpi-yearly": [("0 3 15 1 *", "Asia/Shanghai", None)],  # the year before, from the warehouse
        }
        assert (
            deployments["annual"]["parameters"]["inbox"] == "/data/inbox"
            and deployments["annual"]["parameters"]["out"] == "/data/out"
        )
        assert deployments["results-weekly"]["parameters"]["inbox"] == "/data/results-inbox"
        assert deployments["kpi-yearly"]["parameters"]["out"] == "/data/out"
        for d in deployments.values():  # one run at a time per deployment: a second one waits
            assert (
                d["global_concurrency_limit"]["limit"] == 1
                and d["concurrency_options"]["collision_strategy"] == "ENQUEUE"
            ), d["name"]
        sink = _webhook_sink()
        _run_script(
            ["scripts/notify.py", "--url", f"http://127.0.0.1:{sink.server_port}/robot", "--allow-private"], env
        )
        env["JOINTDRAW_FAULT_FILE"] = str(
            tmp_path / "fault"
        )  # while it names a stage, that stage fails (flows/plan_run.py)
        with open(worker_log, "w") as log:
            started.append(
                subprocess.Popen(
                    [PREFECT, "worker", "start", "--pool", "jointdraw"],
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        # the demo deployment on the worker: a run made to fail at publish, then retried, publishes the bytes of
        # the session's uninterrupted run of the same city
        reference = dirty_run.parent.parent / "published" / "SZ-2026-ANNUAL"
        _a_failed_run_retried_goes_on_where_it_stopped(
            api, secret, env, dirty_city, tmp_path, reference, [worker_log, server_log], sink
        )
        assert "Task run 'publish · SZ-2026-ANNUAL'" in worker_log.read_text(
            errors="replace"
        )  # task runs say plan and stage
    finally:
        for p in reversed(started):
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(p.pid, signal.SIGKILL)
