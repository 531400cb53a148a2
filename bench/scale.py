"""The month end as deployments run it, against the same phases without Prefect and a bare scan.

    .venv/bin/python bench/scale.py --data DIR          # DIR holds bua.db and the meter store (store/ or ms/)
    .venv/bin/python bench/scale.py --accounts 10000    # generates and loads DIR first (bench/portfolio.py)

Three measurements in one run, each in its own child process (its CPU seconds and peak RSS are
its own), on a fresh copy of the billing database and an empty output folder:
1. ``scan``: a bare polars streaming scan (sum and count of every value) of exactly the interval
   partitions the month end reads;
2. ``graph``: the phase functions of tasks/pipeline/graph.py walked without Prefect
   (tasks/pipeline/walk.py: same I/O layer, same ``BUA_MAX_WORKERS`` threads);
3. ``flow``: ``bua_monthly`` — the flow deployments run — against a running ``prefect server``
   (started here as its own process, as in production), with the shipped task runner.
Goals (issue 11): the flow <= 45 s at 100k accounts on a quiet machine and <= 1.15x the graph.
Prints a table and writes bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
import tasks  # noqa: E402,F401  (the allocator setting bua runs with, for every child)

R = dt.date(2026, 11, 1)


def _usage() -> dict[str, float]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": ru.ru_maxrss / 1024}


def store_of(base: Path) -> Path:
    return base / "store" if (base / "store").exists() else base / "ms"


def settings_for(base: Path, work: Path, shards: int) -> object:
    from tasks.settings import Settings

    return Settings(
        database_url=f"sqlite:///{work}/bua.db", meter_store=str(store_of(base)), output_url=str(work / "out"),
        shards=shards, slack_webhook_url=None,
    )  # fmt: skip


def fresh(base: Path, work: Path) -> None:
    """A fresh copy of the billing database and an empty output folder (nothing cached)."""
    from tasks.adapters.db import init_db

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copyfile(base / "bua.db", work / "bua.db")
    init_db(f"sqlite:///{work}/bua.db")  # migrations added since the dataset was built (not timed)


def scanned_partitions(meter_store: Path) -> list[str]:
    """The partition files the month end's meter-data phases open for R (every shard)."""
    from tasks.adapters.extract import HISTORY_DAYS
    from tasks.domain.scalars import LONG_WINDOW_DAYS
    from tasks.pipeline.spec import default_period_start

    lo = min(
        R - dt.timedelta(days=HISTORY_DAYS), R - dt.timedelta(days=LONG_WINDOW_DAYS), default_period_start(R)
    )
    hi = R - dt.timedelta(days=1)
    files = sorted(str(p) for p in (meter_store / "interval").glob("shard=*/month=*/data.parquet"))
    return [f for f in files if f"month={lo:%Y-%m}" <= Path(f).parent.name <= f"month={hi:%Y-%m}"]


def part_scan(base: Path, work: Path, shards: int) -> dict:
    import polars as pl

    files = scanned_partitions(store_of(base))
    t = time.perf_counter()
    total, count = (
        pl.scan_parquet(files, hive_partitioning=False)
        .select(
            pl.col("values").list.sum().sum().alias("total"), pl.col("values").list.len().sum().alias("n")
        )
        .collect(engine="streaming")
        .row(0)
    )
    return {"wall_s": time.perf_counter() - t, "files": len(files), "values": int(count), **_usage()}


def part_graph(base: Path, work: Path, shards: int) -> dict:
    from tasks.pipeline.spec import resolve_run
    from tasks.pipeline.walk import walk_graph

    fresh(base, work)
    settings = settings_for(base, work, shards)
    spec = resolve_run(settings, R)  # type: ignore[arg-type]
    t = time.perf_counter()
    runs = walk_graph(spec, settings)  # type: ignore[arg-type]
    wall = time.perf_counter() - t
    phases: dict[str, dict[str, float]] = {}
    for (phase, _), r in runs.items():
        p = phases.setdefault(phase, {"task_s": 0.0, "cpu_s": 0.0})
        p["task_s"] += r.seconds
    return {"wall_s": wall, "phases": phases, **_usage()}


def part_flow(base: Path, work: Path, shards: int) -> dict:
    from flows.monthly import bua_monthly
    from flows.runtime import use_settings

    fresh(base, work)
    settings = settings_for(base, work, shards)
    with use_settings(settings):  # type: ignore[arg-type]
        t = time.perf_counter()
        report = bua_monthly(run_date=R)
        wall = time.perf_counter() - t
    states: dict[str, int] = {}
    for s in report["task_run_states"].values():
        states[s] = states.get(s, 0) + 1
    return {"wall_s": wall, "task_s": report["seconds"], "states": states, **_usage()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path) -> tuple[subprocess.Popen, str]:
    """``prefect server start`` as its own process (as a deployment's server is); its API URL."""
    import httpx

    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_UI_ENABLED": "false"}  # fmt: skip
    exe = str(Path(sys.executable).parent / "prefect")
    proc = subprocess.Popen([exe, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("prefect server did not start in 180 s")


def _child(part: str, args: argparse.Namespace, base: Path, env: dict[str, str] | None = None) -> dict:
    cmd = [sys.executable, __file__, "--part", part, "--data", str(base), "--work", str(args.work / part),
           "--shards", str(args.shards)]  # fmt: skip
    done = subprocess.run(
        cmd, check=True, stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument(
        "--data", type=Path, help="bua.db + store/ (or ms/); default: generated by --accounts"
    )
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bua-scale-bench")
    parser.add_argument("--part", choices=["scan", "graph", "flow"], help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results/scale.json")
    args = parser.parse_args()
    if args.data is not None:
        base = args.data
    else:
        from bench.portfolio import prepare

        base = prepare(args.work, args.accounts, args.shards)
    if args.part:
        fn = {"scan": part_scan, "graph": part_graph, "flow": part_flow}[args.part]
        print(json.dumps(fn(base, args.work, args.shards), default=str))
        return

    load_before = os.getloadavg()
    home = Path(tempfile.mkdtemp(prefix="bua-bench-prefect-"))
    server, api = start_server(home)
    try:
        scan = _child("scan", args, base)
        graph = _child("graph", args, base)
        flow = _child("flow", args, base, {"PREFECT_API_URL": api, "PREFECT_HOME": str(home)})
    finally:
        server.terminate()
        server.wait(30)
    load_after = os.getloadavg()
    result = {
        "accounts": accounts_in(base) if args.data is not None else args.accounts,
        "shards": args.shards,
        "data": str(base),
        "run_date": R.isoformat(),
        "partitions_scanned": scan["files"],
        "values_scanned": scan["values"],
        "bare_scan": {k: round(scan[k], 2) for k in ("wall_s", "cpu_s", "peak_rss_mb")},
        "graph": {k: round(graph[k], 2) for k in ("wall_s", "cpu_s", "peak_rss_mb")},
        "flow": {k: round(flow[k], 2) for k in ("wall_s", "cpu_s", "peak_rss_mb")},
        "flow_task_states": flow["states"],
        "ratio_flow_to_graph": round(flow["wall_s"] / graph["wall_s"], 3),
        "ratio_flow_to_scan": round(flow["wall_s"] / scan["wall_s"], 2),
        "phase_task_seconds_flow": {k: round(v, 2) for k, v in flow["task_s"].items()},
        "phase_task_seconds_graph": {k: round(v["task_s"], 2) for k, v in graph["phases"].items()},
        "goal": "flow <= 45 s (100k, quiet machine) and <= 1.15x the graph",
        "machine": f"{os.cpu_count()} cpu, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    show(result)
    if not args.no_write:
        from results_file import save_run  # bench/, the script's own folder

        print(f"wrote {save_run('scale', result, keys=('accounts',))}")


def accounts_in(base: Path) -> int:
    """The accounts of a given dataset (its billing database), for the table's title and the JSON."""
    import sqlite3

    with sqlite3.connect(base / "bua.db") as conn:
        return int(conn.execute("select count(*) from account").fetchone()[0])


def show(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"month end, {r['accounts']:,} accounts, {r['shards']} shards, R={r['run_date']}")
    for col in ("measure", "wall s", "CPU s", "peak RSS MB"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for name, key in (("bua_monthly via prefect server", "flow"), ("phase graph, no Prefect", "graph"),
                      ("bare streaming scan", "bare_scan")):  # fmt: skip
        m = r[key]
        table.add_row(name, f"{m['wall_s']:.2f}", f"{m['cpu_s']:.2f}", f"{m['peak_rss_mb']:.0f}")
    Console().print(table)
    phases = Table(title="task seconds by phase (sum over shards)")
    for col in ("phase", "flow", "graph"):
        phases.add_column(col, justify="left" if col == "phase" else "right")
    for name, secs in r["phase_task_seconds_graph"].items():
        phases.add_row(name, f"{r['phase_task_seconds_flow'].get(name, 0):.2f}", f"{secs:.2f}")
    Console().print(phases)
    for key in (
        "values_scanned",
        "flow_task_states",
        "ratio_flow_to_graph",
        "ratio_flow_to_scan",
        "goal",
        "machine",
    ):
        print(f"{key}: {r[key]}")


if __name__ == "__main__":
    main()
