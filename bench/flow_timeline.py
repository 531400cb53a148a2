"""One month end through ``bua_monthly`` against a running ``prefect server`` (the deployments' path,
as ``bench/scale.py``'s flow part), with what scale.py does not give: the peak RSS of the flow
process and its children together (sampled every 0.1 s — prepare's SQLite writer and the database
reader are children), the server's CPU, and every task run's start and end as the server recorded
them, summed per phase.

    .venv/bin/python bench/flow_timeline.py --data /work/bench1m/build-1000000-direct --shards 128
    .venv/bin/python bench/flow_timeline.py --data DIR --timeline     # also every task run

``--data`` holds bua.db and the meter store (bench/build_portfolio.py --keep); the run works on a
fresh copy of bua.db and an empty output folder under ``--work``. Prints a table and adds the result
to bench/results/flow_timeline.json (one run per accounts).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
from phase_rss import Sampler  # noqa: E402
from scale import R, accounts_in, fresh, settings_for, start_server, tree_cpu  # noqa: E402


async def _task_runs(t0: float) -> list[dict[str, Any]]:
    """The newest flow run's task runs: name, state, start and end in seconds from ``t0``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async with get_client() as client:
        runs = await client.read_flow_runs()
        newest = max(runs, key=lambda r: r.start_time or dt.datetime.min.replace(tzinfo=dt.UTC))
        tasks: list[Any] = []
        while True:  # the API gives at most 200 a request
            page = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[newest.id])),
                limit=200,
                offset=len(tasks),
            )
            tasks += page
            if len(page) < 200:
                break
    return sorted(
        (
            {
                "name": t.name,
                "state": t.state_name,
                "start_s": round(t.start_time.timestamp() - t0, 2),
                "end_s": round(t.end_time.timestamp() - t0, 2),
            }
            for t in tasks
            if t.start_time is not None and t.end_time is not None
        ),
        key=lambda r: (r["start_s"], r["name"]),
    )


def phases_of(task_runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per phase (a task run's name without its ``[shards]`` or ``-xxx`` suffix): first start, last
    end, and the task seconds summed over its task runs."""
    out: dict[str, dict[str, float]] = {}
    for r in task_runs:
        name = r["name"].split("[")[0]
        name = re.sub(r"-[0-9a-f]{3}$", "", name)  # Prefect's run-name suffix: "prechecks-3a7"
        p = out.setdefault(name, {"start_s": r["start_s"], "end_s": r["end_s"], "task_s": 0.0, "runs": 0})
        p["start_s"], p["end_s"] = min(p["start_s"], r["start_s"]), max(p["end_s"], r["end_s"])
        p["task_s"] = round(p["task_s"] + r["end_s"] - r["start_s"], 2)
        p["runs"] += 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bua-flow-timeline")
    parser.add_argument("--timeline", action="store_true", help="print every task run")
    parser.add_argument(
        "--no-write", action="store_true", help="do not write bench/results/flow_timeline.json"
    )
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bua-bench-prefect-"))
    os.environ["PREFECT_HOME"] = str(home)
    server, api = start_server(home)
    os.environ["PREFECT_API_URL"] = api
    load_before = os.getloadavg()
    try:
        from flows.monthly import bua_monthly
        from flows.runtime import use_settings

        settings = settings_for(args.data, args.work, args.shards, fresh(args.data, args.work))
        server_cpu = tree_cpu(server.pid)
        cpu0 = os.times()
        rss = Sampler(every=0.1)  # the process and its children together
        rss.start()
        t0 = time.time()
        w = time.perf_counter()
        with use_settings(settings):  # type: ignore[arg-type]
            bua_monthly(run_date=R)
        wall = time.perf_counter() - w
        rss.done.set()
        rss.join()
        cpu1 = os.times()
        server_cpu = tree_cpu(server.pid) - server_cpu
        task_runs = asyncio.run(_task_runs(t0))
    finally:
        server.terminate()
        server.wait(30)
    cpu = sum(cpu1[:4]) - sum(cpu0[:4])
    result = {
        "accounts": accounts_in(args.data),
        "shards": args.shards,
        "data": str(args.data),
        "run_date": R.isoformat(),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mb": round(rss.peak / 2**20),
        "peak_rss_at_s": round(rss.peak_at, 1),
        "server_cpu_s": round(server_cpu, 2),
        "task_runs": len(task_runs),
        "phases": phases_of(task_runs),
        "machine": f"{os.cpu_count()} cpu, load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if args.timeline:
        for r in task_runs:
            print(
                f"{r['start_s']:8.2f} {r['end_s']:8.2f} {r['end_s'] - r['start_s']:7.2f}  {r['name']} {r['state']}"
            )
    print(f"{'phase':<22} {'start s':>8} {'end s':>8} {'task s':>8} {'runs':>5}")
    for name, p in sorted(result["phases"].items(), key=lambda kv: kv[1]["start_s"]):
        print(f"{name:<22} {p['start_s']:>8.1f} {p['end_s']:>8.1f} {p['task_s']:>8.1f} {p['runs']:>5}")
    print(
        f"bua_monthly: {result['wall_s']} s wall, {result['cpu_s']} CPU s (process + children), peak RSS "
        f"{result['peak_rss_mb']} MB at {result['peak_rss_at_s']} s, server {result['server_cpu_s']} CPU s, "
        f"{result['task_runs']} task runs; {result['machine']}"
    )
    if not args.no_write:
        from results_file import save_run  # bench/, the script's own folder

        print(f"wrote {save_run('flow_timeline', result, keys=('accounts',))}")


if __name__ == "__main__":
    main()
