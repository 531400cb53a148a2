"""S3 requests and bytes of one month end, per phase and per shard: the phase graph walked one task
at a time (no Prefect: the phases' own I/O only) against moto's S3 server, its counter read after
every task.

    .venv/bin/python bench/s3_requests.py                 # 2,000 accounts (bench/portfolio.py)

Prints a table per phase (requests per task run, bytes read and written per task run) and writes
bench/results/s3_requests.json. Prefect adds per task run one result PUT and the flow one manifest
PUT and a few HEADs (cache checks), not counted here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import tasks  # noqa: E402,F401  (the allocator setting bua runs with)

R = dt.date(2026, 11, 1)


def walk_counted(spec: object, settings: object, counter: object) -> dict[str, list[dict]]:
    """Every task of the graph, one at a time in the graph's order; the counter's snapshot after each."""
    from tasks.pipeline.graph import PHASES, run_phase
    from tasks.pipeline.graph import tasks as graph_tasks

    graph = graph_tasks(PHASES, spec.shards)  # type: ignore[attr-defined]
    by_name = {p.name: p for p in PHASES}
    order = {p.name: i for i, p in enumerate(PHASES)}
    waiting = {t: set(ups) for t, ups in graph.items()}
    ready = [((order[t[0]], -1 if t[1] is None else t[1]), t) for t, ups in waiting.items() if not ups]
    heapq.heapify(ready)
    out: dict[str, list[dict]] = {}
    while ready:
        _, t = heapq.heappop(ready)
        counter.reset()  # type: ignore[attr-defined]
        run_phase(by_name[t[0]], spec, settings, t[1])  # type: ignore[arg-type]
        out.setdefault(t[0], []).append(counter.snapshot())  # type: ignore[attr-defined]
        for d, ups in waiting.items():
            if t in ups:
                ups.discard(t)
                if not ups:
                    heapq.heappush(ready, ((order[d[0]], -1 if d[1] is None else d[1]), d))
    return out


def per_phase(snaps: dict[str, list[dict]]) -> dict[str, dict]:
    """Per phase: task runs, requests by method, bytes read and written, each per task run."""
    rows = {}
    for phase, runs in snaps.items():
        n = len(runs)
        methods: dict[str, int] = {}
        store = 0
        for s in runs:
            for key, count in s["requests"].items():
                method, kind = key.split(" ", 1)
                methods[method] = methods.get(method, 0) + count
                store += count if kind in ("store-interval", "list") else 0
        rows[phase] = {
            "task_runs": n,
            "requests_per_task": round(sum(methods.values()) / n, 1),
            "by_method_per_task": {m: round(c / n, 1) for m, c in sorted(methods.items())},
            "meter_store_requests_per_task": round(store / n, 1),
            "mb_read_per_task": round(sum(sum(s["bytes_read"].values()) for s in runs) / n / 1e6, 2),
            "mb_written_per_task": round(sum(sum(s["bytes_written"].values()) for s in runs) / n / 1e6, 2),
            "mb_read_by_kind_per_task": {
                k: round(sum(s["bytes_read"].get(k, 0) for s in runs) / n / 1e6, 3)
                for k in sorted({k for s in runs for k, v in s["bytes_read"].items() if v})
            },
        }
    return rows


def main() -> None:
    from bench import s3_local
    from bench.dask_procs import free_port
    from bench.scale import fresh, store_of
    from tasks.pipeline.spec import resolve_run
    from tasks.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bua-dask-bench")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    from bench.portfolio import prepare

    base = prepare(args.work, args.accounts, args.shards)
    work = args.work / "s3-requests"
    fresh(base, work)
    with s3_local.moto_server(free_port()) as (endpoint, counter):
        bucket = s3_local.create_bucket(endpoint, "bua-requests")
        store_files = s3_local.upload_dir(endpoint, store_of(base), f"{bucket}/ms")
        settings = Settings(
            database_url=f"sqlite:///{work}/bua.db", meter_store=f"{bucket}/ms", output_url=f"{bucket}/out",
            shards=args.shards, s3_endpoint_url=endpoint, aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )  # fmt: skip
        spec = resolve_run(settings, R)
        snaps = walk_counted(spec, settings, counter)
    rows = per_phase(snaps)
    store_mb = sum(p.stat().st_size for p in (store_of(base) / "interval").rglob("*") if p.is_file()) / 1e6
    print(f"{'phase':20} {'runs':>4} {'req/task':>9} {'store req':>9} {'MB read':>8} {'MB written':>10}")
    for name, r in rows.items():
        print(f"{name:20} {r['task_runs']:4} {r['requests_per_task']:9.1f} {r['meter_store_requests_per_task']:9.1f} "
              f"{r['mb_read_per_task']:8.2f} {r['mb_written_per_task']:10.2f}")  # fmt: skip
    result = {
        "accounts": args.accounts,
        "shards": args.shards,
        "run_date": R.isoformat(),
        "meter_store_files": store_files,
        "meter_store_interval_mb": round(store_mb, 1),
        "phases": rows,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if not args.no_write:
        from results_file import save_run  # bench/, the script's own folder

        print(f"wrote {save_run('s3_requests', result, keys=('accounts',))}")


if __name__ == "__main__":
    main()
