"""``bua_monthly`` on a real Dask cluster (1 and 2 ``dask worker`` processes) against the default
thread runner, on the same data, through a running ``prefect server``.

    .venv/bin/python bench/dask_cluster.py                      # 2,000 accounts (bench/portfolio.py)
    .venv/bin/python bench/dask_cluster.py --accounts 10000 --storage local,s3

Every run starts from a fresh copy of the billing database and an empty output (nothing cached).
``local``: meter store and outputs in folders; ``s3``: both on moto's S3 server (started here, in
this process, so its CPU is not the run's), with the requests it served counted by kind of key.
Each run's client (the flow) is its own child process; a Dask run's CPU adds the scheduler's and
the workers' (from /proc). Prints a table and writes bench/results/dask_cluster.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
import tasks  # noqa: E402,F401  (the allocator setting bua runs with, for every child)

R = dt.date(2026, 11, 1)
RUNNERS = ("thread", "dask-1", "dask-2", "thread")  # the thread runner again: run-to-run differences


def run_child() -> None:
    """In the child: one bua_monthly with the environment's settings; its wall, CPU and report."""
    from flows.monthly import bua_monthly

    t = time.perf_counter()
    report = bua_monthly(run_date=R)
    wall = time.perf_counter() - t
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # extract's child processes
    states: dict[str, int] = {}
    for s in report["task_run_states"].values():
        states[s] = states.get(s, 0) + 1
    out = {
        "wall_s": wall,
        "client_cpu_s": own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime,
        "client_peak_rss_mb": own.ru_maxrss / 1024,
        "states": states,
        "task_s": report["seconds"],
        "task_cpu_s": report["cpu_seconds"],
    }
    print(json.dumps(out))


def settings_env(
    base: Path, work: Path, args: argparse.Namespace, storage: str, bucket: str | None
) -> dict[str, str]:
    """The BUA_* settings of one run (the flow's and the workers')."""
    from bench.scale import store_of

    env = {
        "BUA_DATABASE_URL": f"sqlite:///{work}/bua.db",
        "BUA_SHARDS": str(args.shards),
        "BUA_MAX_WORKERS": "2",
        "BUA_METER_STORE": str(store_of(base)),
        "BUA_OUTPUT_URL": str(work / "out"),
    }
    if storage == "s3":
        env |= {"BUA_METER_STORE": f"{bucket}/ms", "BUA_OUTPUT_URL": f"{bucket}/out-{work.name}"}
    return env


def one_run(runner: str, env: dict[str, str], work: Path) -> dict:
    """A fresh database copy, then the flow in a child process, on ``runner``."""
    from bench.dask_procs import dask_cluster

    cmd = [sys.executable, __file__, "--child"]
    if runner == "thread":
        done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, env=env)
        return {**json.loads(done.stdout.strip().splitlines()[-1]), "cluster_cpu_s": 0.0}
    n = int(runner.split("-")[1])
    with dask_cluster(n, env, work / "dask") as cluster:
        env = {
            **env,
            "BUA_TASK_RUNNER": "dask",
            "BUA_DASK_ADDRESS": cluster.address,
            "BUA_MAX_WORKERS": str(n),
        }
        before = cluster.worker_cpu_seconds()
        done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, env=env)
        used = cluster.worker_cpu_seconds() - before
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "cluster_cpu_s": used}


def local_digests(root: Path) -> dict[str, str]:
    """sha256 of every published file (exports, NEM12 estimates, report) by path under ``root``."""
    import hashlib

    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] in ("export", "nem12", "report")
    }


def fresh(base: Path, work: Path) -> None:
    from bench.scale import fresh as fresh_db

    fresh_db(base, work)


def measure(args: argparse.Namespace, base: Path, api: str, home: Path) -> list[dict]:
    from bench import s3_local
    from bench.dask_procs import free_port
    from bench.scale import store_of

    prefect = {"PREFECT_API_URL": api, "PREFECT_HOME": str(home), "PREFECT_LOGGING_LEVEL": "WARNING"}
    rows: list[dict] = []
    for storage in args.storage.split(","):
        with ExitStack() as stack:
            endpoint, counter = (
                stack.enter_context(s3_local.moto_server(free_port())) if storage == "s3" else (None, None)
            )
            bucket = None
            aws: dict[str, str] = {}
            if endpoint:
                bucket = s3_local.create_bucket(endpoint, "bua-bench")
                s3_local.upload_dir(endpoint, store_of(base), f"{bucket}/ms")
                aws = {"BUA_S3_ENDPOINT_URL": endpoint, "BUA_AWS_ACCESS_KEY_ID": "testing",
                       "BUA_AWS_SECRET_ACCESS_KEY": "testing", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": s3_local.REGION}  # fmt: skip
            first: dict[str, str] | None = None
            for i, runner in enumerate(args.runners.split(",")):
                work = args.work / f"{storage}-{i}-{runner}"
                fresh(base, work)
                env = {**os.environ, **prefect, **aws, **settings_env(base, work, args, storage, bucket)}
                if counter:
                    counter.reset()
                load = os.getloadavg()[0]
                r = one_run(runner, env, work)
                r |= {
                    "storage": storage,
                    "runner": runner,
                    "load_before": load,
                    "load_after": os.getloadavg()[0],
                }
                r["cpu_s"] = r["client_cpu_s"] + r["cluster_cpu_s"]
                if counter:
                    r["s3"] = counter.snapshot()
                out = env["BUA_OUTPUT_URL"]
                got = s3_local.digests(endpoint, out) if endpoint else local_digests(Path(out))
                first = first or got
                r["published_files"] = len(got)
                r["files_differing_from_first_run"] = sorted(
                    k for k in first.keys() | got.keys() if first.get(k) != got.get(k)
                )
                print(f"{storage:5} {runner:7} wall {r['wall_s']:6.1f} s  CPU {r['cpu_s']:6.1f} s  "
                      f"load {load:.1f}  {r['states']}", flush=True)  # fmt: skip
                rows.append(r)
    return rows


def show(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"bua_monthly, {result['accounts']:,} accounts, {result['shards']} shards, R={R}")
    for col in (
        "storage",
        "runner",
        "wall s",
        "CPU s",
        "client CPU s",
        "cluster CPU s",
        "load",
        "files ≠ 1st",
    ):
        table.add_column(col, justify="left" if col in ("storage", "runner") else "right")
    for r in result["measurements"]:
        table.add_row(r["storage"], r["runner"], f"{r['wall_s']:.1f}", f"{r['cpu_s']:.1f}",
                      f"{r['client_cpu_s']:.1f}", f"{r['cluster_cpu_s']:.1f}", f"{r['load_before']:.1f}",
                      f"{len(r['files_differing_from_first_run'])}/{r['published_files']}")  # fmt: skip
    Console().print(table)
    print(f"machine: {result['machine']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument(
        "--data", type=Path, help="bua.db + store/ (or ms/); default: generated by --accounts"
    )
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bua-dask-bench")
    parser.add_argument("--storage", default="local,s3", help="comma list of local, s3")
    parser.add_argument("--runners", default=",".join(RUNNERS), help="comma list of thread, dask-1, dask-2")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--no-write", action="store_true", help="do not write bench/results/dask_cluster.json"
    )
    args = parser.parse_args()
    if args.child:
        run_child()
        return
    from bench.dask_procs import dask_cli
    from bench.scale import start_server

    if dask_cli() is None:
        sys.exit("the dask CLI is not installed (pip install 'distributed')")
    if args.data is not None:
        base = args.data
    else:
        from bench.portfolio import prepare

        base = prepare(args.work, args.accounts, args.shards)
    load_before = os.getloadavg()
    home = Path(tempfile.mkdtemp(prefix="bua-bench-prefect-"))
    server, api = start_server(home)
    try:
        runs = measure(args, base, api, home)
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(home, ignore_errors=True)
    load_after = os.getloadavg()
    result = {
        "accounts": args.accounts,
        "shards": args.shards,
        "data": str(base),
        "run_date": R.isoformat(),
        "measurements": [
            {k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()} for r in runs
        ],
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in load_after],
        },
        "machine": f"{os.cpu_count()} cpu, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    show(result)
    if not args.no_write:
        from results_file import save_run  # bench/, the script's own folder

        print(f"wrote {save_run('dask_cluster', result, keys=('accounts',))}")


if __name__ == "__main__":
    main()
