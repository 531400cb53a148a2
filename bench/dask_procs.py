"""A real Dask distributed cluster on this machine: ``dask scheduler`` and ``dask worker`` started as
separate processes (as on ECS, one container each), for the cluster test and bench/dask_cluster.py.

Each process gets its own environment (the BUA_* settings, the S3 endpoint, PREFECT_API_URL): a
worker resolves bua's Settings from it, never from the flow's parameters. Every process is started
in its own session and stopped by its process group id, so nothing is left behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def dask_cli() -> str | None:
    """The ``dask`` command next to this interpreter (or on PATH); None when it is not installed."""
    here = Path(sys.executable).parent / "dask"
    return str(here) if here.exists() else shutil.which("dask")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """A running scheduler and its workers (the processes, the scheduler's address)."""

    address: str
    procs: list[subprocess.Popen] = field(default_factory=list)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def all_pids(self) -> list[int]:
        """The scheduler, the nannies and their worker processes."""
        return [pid for p in self.procs for pid in _tree(p.pid)]

    def worker_cpu_seconds(self) -> float:
        """CPU seconds used so far by the workers and scheduler and their children (from /proc)."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self.all_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += sum(int(f) for f in fields[11:15]) / tick  # utime, stime, reaped children's
        return total


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a nanny's worker process)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):  # children of any of its threads
            try:
                todo.extend(int(k) for k in (task / "children").read_text().split())
            except OSError:
                continue
    return out


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group this module started (its own session), then SIGKILL if needed."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    except ProcessLookupError:
        pass


@contextmanager
def dask_cluster(workers: int, env: dict[str, str], logs: Path, timeout: float = 180) -> Iterator[Cluster]:
    """A scheduler and ``workers`` single-threaded workers (one process each, under a nanny) with
    ``env``; yields when every worker has joined; stops them all on exit."""
    from distributed import Client

    cli = dask_cli()
    if cli is None:
        raise RuntimeError("the dask CLI is not installed (pip install 'distributed')")
    logs.mkdir(parents=True, exist_ok=True)
    # the extract phase reads the billing database in child processes: a worker must not be daemonic
    env = {**env, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    cluster = Cluster(address)
    try:
        cluster.procs.append(
            _start(
                [cli, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                env,
                logs / "scheduler.log",
            )  # fmt: skip
        )
        for i in range(workers):
            cmd = [cli, "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                   "--memory-limit", "0", "--name", f"bua-worker-{i}", "--local-directory", str(logs / f"w{i}")]  # fmt: skip
            cluster.procs.append(_start(cmd, env, logs / f"worker-{i}.log"))
        deadline = time.monotonic() + timeout
        while True:  # the scheduler takes a moment to listen
            try:
                with Client(address, timeout=5) as client:
                    client.wait_for_workers(workers, timeout=max(1.0, deadline - time.monotonic()))
                break
            except OSError:
                if time.monotonic() > deadline or any(p.poll() is not None for p in cluster.procs):
                    raise RuntimeError(f"the dask cluster did not start; see {logs}") from None
                time.sleep(0.5)
        yield cluster
    finally:
        for proc in reversed(cluster.procs):
            _stop(proc)


def alive(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (not zombies)."""
    out = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(pid)
    return out
