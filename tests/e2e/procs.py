"""Real Prefect processes for the end-to-end tests, started the way docs/DEPLOY.md tells a user to.

`prefect server start` (own PREFECT_HOME, a free port, analytics off, PREFECT_UI_API_URL set because
the port is not the default), `prefect work-pool create`, `python -m deployments.deploy`,
`prefect worker start`, each a subprocess of this venv's executables with its output in a log file.
The REST calls below are the ones the Prefect UI makes (its Retry button: ``POST
/flow_runs/{id}/set_state`` with an ``AwaitingRetry`` Scheduled state, ``force: true``).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # this venv's bin: prefect, bua
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any PREFECT_* / BUA_* / AWS_* setting, plus ``extra``."""
    drop = ("PREFECT_", "BUA_", "AWS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update({"PYTHONUNBUFFERED": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    env.update(extra)
    return env


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; raise naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


@dataclass
class Proc:
    """A subprocess in its own process group, its output in ``log``."""

    name: str
    popen: subprocess.Popen
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, n: int = 4000) -> str:
        return self.text()[-n:]

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        if not self.alive():
            return
        os.killpg(self.popen.pid, signal.SIGTERM)  # its own group: the worker's flow-run children too
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)


def start(name: str, cmd: list[str], env: dict[str, str], log: Path, cwd: Path = REPO) -> Proc:
    out = log.open("ab")
    popen = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    out.close()
    return Proc(name, popen, log)


def run(cmd: list[str], env: dict[str, str], log: Path, timeout: float = 600, cwd: Path = REPO) -> str:
    """Run a command to its end (output appended to ``log``); raise with its output if it fails."""
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    with log.open("a") as f:
        f.write(f"$ {' '.join(cmd)}\n{out.stdout}{out.stderr}\n")
    if out.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {out.returncode}:\n{out.stdout[-3000:]}{out.stderr[-3000:]}"
        )
    return out.stdout + out.stderr


@dataclass
class Server:
    """A `prefect server start` subprocess and a REST client on its API."""

    proc: Proc
    home: Path
    port: int
    logs: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.api_url, timeout=60)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def database(self) -> Path:
        return self.home / "prefect.db"

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        """A client's environment (CLI, worker): this API, its own PREFECT_HOME."""
        home.mkdir(parents=True, exist_ok=True)
        return clean_env(PREFECT_API_URL=self.api_url, PREFECT_HOME=str(home), **extra)

    # ---- REST, as the UI and the CLI call it
    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        """One call; retried like Prefect's own client does on 429/503 (a busy SQLite server answers
        503 when its database is locked) and on a dropped connection."""
        for attempt in range(6):
            try:
                r = self.client.request(method, path, json=body)
                if r.status_code not in (429, 503) or attempt == 5:
                    r.raise_for_status()
                    return r
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadTimeout):
                if attempt == 5:
                    raise
            time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def get(self, path: str) -> Any:
        return self.request("GET", path).json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        r = self.request("POST", path, body or {})
        return r.json() if r.content else None

    def patch(self, path: str, body: dict[str, Any]) -> None:
        self.request("PATCH", path, body)

    def deployment(self, name: str) -> dict[str, Any]:
        return self.get(f"/deployments/name/{name}")

    def flow_run(self, run_id: str) -> dict[str, Any]:
        return self.get(f"/flow_runs/{run_id}")

    def create_flow_run(
        self, deployment: str, parameters: dict[str, Any], job_variables: dict[str, Any] | None = None
    ) -> str:
        dep = self.deployment(deployment)
        body: dict[str, Any] = {"parameters": parameters}
        if job_variables:
            body["job_variables"] = job_variables
        return self.post(f"/deployments/{dep['id']}/create_flow_run", body)["id"]

    def wait_final(
        self, run_id: str, timeout: float = 600, after: dt.datetime | None = None
    ) -> dict[str, Any]:
        """The flow run once its state is final (and, with ``after``, entered after that moment)."""

        def final() -> dict[str, Any] | None:
            fr = self.flow_run(run_id)
            state = fr.get("state") or {}
            if state.get("type") not in FINAL:
                return None
            if after and dt.datetime.fromisoformat(state["timestamp"]) <= after:
                return None
            return fr

        return wait_for(f"flow run {run_id} to finish", final, timeout, interval=1.0)

    def retry_as_the_ui_does(self, run_id: str) -> dict[str, Any]:
        """The Prefect UI's Retry button (ui-v2 retry-flow-run-dialog, the Vue UI's
        FlowRunsApi.retryFlowRun): force the run to Scheduled, named AwaitingRetry."""
        body = {
            "state": {"type": "SCHEDULED", "name": "AwaitingRetry", "message": "Retry from the UI"},
            "force": True,
        }
        return self.post(f"/flow_runs/{run_id}/set_state", body)

    def paged(self, path: str, body: dict[str, Any], limit: int = 200) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            page = self.post(path, {**body, "limit": limit, "offset": len(out)})
            out.extend(page)
            if len(page) < limit:
                return out

    def run_tree(self, run_id: str) -> list[str]:
        """The flow run and every flow run below it (subflows, any depth)."""
        ids, todo = [run_id], [run_id]
        while todo:
            children = self.paged("/flow_runs/filter", {"flow_runs": {"parent_flow_run_id": {"any_": todo}}})
            todo = [c["id"] for c in children if c["id"] not in ids]
            ids.extend(todo)
        return ids

    def task_runs(self, run_id: str) -> list[dict[str, Any]]:
        """Every task run of the flow run and of its subflows, all attempts, oldest first."""
        body = {"flow_runs": {"id": {"any_": self.run_tree(run_id)}}, "sort": "EXPECTED_START_TIME_ASC"}
        return self.paged("/task_runs/filter", body)

    def latest_states(self, run_id: str, names: set[str]) -> dict[str, str]:
        """Per task-run name in ``names``: the state name of its latest task run (the last attempt's)."""
        latest: dict[str, dict[str, Any]] = {}
        for tr in self.task_runs(run_id):
            if tr["name"] in names:
                key = tr.get("created") or tr.get("expected_start_time") or ""  # a retry's runs are newer
                if tr["name"] not in latest or key >= latest[tr["name"]]["_key"]:
                    latest[tr["name"]] = {**tr, "_key": key}
        return {n: (tr.get("state") or {}).get("name", "?") for n, tr in latest.items()}


def start_server(base: Path, startup_timeout: float = 240) -> Server:
    """`prefect server start` on a free port with its own PREFECT_HOME (docs/DEPLOY.md §1)."""
    home, logs = base / "server-home", base / "logs"
    home.mkdir(parents=True)
    logs.mkdir(exist_ok=True)
    port = free_port()
    env = clean_env(
        PREFECT_HOME=str(home),
        # not the default port: the UI must be told where the API is (DEPLOY.md)
        PREFECT_UI_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_LOGGING_LEVEL="INFO",
    )
    cmd = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    proc = start("server", cmd, env, logs / "server.log")
    server = Server(proc, home, port, logs)

    def healthy() -> bool:
        if not proc.alive():
            raise RuntimeError(f"prefect server exited {proc.popen.returncode}:\n{proc.tail()}")
        try:
            return server.client.get("/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for("prefect server /api/health", healthy, startup_timeout, interval=0.5)
    except Exception:
        proc.stop()
        raise
    return server


def create_pool(server: Server, pool_type: str, base_job_template: Path | None = None) -> str:
    """docs/DEPLOY.md: `prefect work-pool create bua --type … [--base-job-template …]`."""
    cmd = [str(BIN / "prefect"), "work-pool", "create", "bua", "--type", pool_type]
    if base_job_template:
        cmd += ["--base-job-template", str(base_job_template)]
    return run(cmd, server.env(server.logs.parent / "deployer-home"), server.logs / "deploy.log")


def deploy(server: Server) -> str:
    """docs/DEPLOY.md: `python -m deployments.deploy` (which runs `prefect deploy --all`)."""
    env = server.env(server.logs.parent / "deployer-home")
    return run([sys.executable, "-m", "deployments.deploy"], env, server.logs / "deploy.log")


def deploy_as_documented(server: Server, pool_type: str) -> str:
    return create_pool(server, pool_type) + deploy(server)


def start_worker(server: Server, base: Path, env: dict[str, str], pool_type: str = "process") -> Proc:
    """`prefect worker start --pool bua --type …` from the checkout, with ``env`` on top of the API's."""
    full = server.env(base / "worker-home", PREFECT_LOGGING_LEVEL="INFO", **env)
    cmd = [str(BIN / "prefect"), "worker", "start", "--pool", "bua", "--type", pool_type]
    proc = start("worker", cmd, full, server.logs / f"worker-{base.name}.log")

    def polling() -> bool:
        if not proc.alive():
            raise RuntimeError(f"prefect worker exited {proc.popen.returncode}:\n{proc.tail()}")
        workers = server.post("/work_pools/bua/workers/filter", {})
        return any(w.get("status") == "ONLINE" for w in workers) or "started!" in proc.text()

    try:
        wait_for("the worker to poll the pool", polling, 120)
    except Exception:
        proc.stop()
        raise
    return proc


def pause_other_schedules(server: Server, keep: set[str]) -> None:
    """Pause every deployment not in ``keep`` so that none of the companion flows' schedules (every
    6 hours, daily) can come due and run on the test's worker while the tests run."""
    for dep in server.paged("/deployments/filter", {}):
        if dep["name"] not in keep and not dep.get("paused"):
            server.patch(f"/deployments/{dep['id']}", {"paused": True})
