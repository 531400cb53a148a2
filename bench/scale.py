"""The month end as deployments run it, against the same phases without Prefect and a bare scan.

    .venv/bin/python bench/scale.py --data DIR          # DIR holds bua.db and the meter store (store/ or ms/)
    .venv/bin/python bench/scale.py --accounts 10000    # generates and loads DIR first (bench/portfolio.py)
    .venv/bin/python bench/scale.py --data DIR --db sqlite,mariadb,postgresql   # the same on each database

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

``--db`` names the billing databases (comma-separated): ``sqlite`` (the default, a file copy),
``mariadb``, ``postgresql`` — a fresh database on the local server for each graph and flow run,
holding the same rows as bua.db (bench/scale_db.py; not timed). Graph and flow run on each database
in turn; the scan once. Several databases: the result goes to bench/results/scale-db.json, with
each one's times over SQLite's from the same run (issue 14: <= 1.5x at 100k accounts).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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


def settings_for(base: Path, work: Path, shards: int, url: str | None = None) -> object:
    from tasks.settings import Settings

    return Settings(
        database_url=url or f"sqlite:///{work}/bua.db", meter_store=str(store_of(base)), output_url=str(work / "out"),
        shards=shards, slack_webhook_url=None,
    )  # fmt: skip


def fresh(base: Path, work: Path, db: str = "sqlite") -> str:
    """A fresh copy of the billing database and an empty output folder (nothing cached); its URL.

    ``db`` other than sqlite: a new database ``bua_scale_{work's name}`` on that server, a clone of the
    template :func:`_templates` filled with bua.db's rows.
    """
    from tasks.adapters.db import init_db

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copyfile(base / "bua.db", work / "bua.db")  # (a server database: see prepare_template)
    if db != "sqlite":
        from scale_db import clone  # bench/, the script's own folder

        (work / "bua.db").unlink()
        return clone(db, "bua_scale_" + work.name.replace("-", "_"))
    init_db(f"sqlite:///{work}/bua.db")  # migrations added since the dataset was built (not timed)
    return f"sqlite:///{work}/bua.db"


def _drop(db: str, work: Path) -> None:
    """A server database of :func:`fresh` dropped once measured (not timed)."""
    if db != "sqlite":
        from scale_db import drop  # bench/, the script's own folder

        drop(db, "bua_scale_" + work.name.replace("-", "_"))


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


def part_scan(base: Path, work: Path, shards: int, db: str = "sqlite") -> dict:
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


def part_graph(base: Path, work: Path, shards: int, db: str = "sqlite") -> dict:
    from tasks.pipeline.spec import resolve_run
    from tasks.pipeline.walk import walk_graph

    url = fresh(base, work, db)
    settings = settings_for(base, work, shards, url)
    spec = resolve_run(settings, R)  # type: ignore[arg-type]
    t = time.perf_counter()
    runs = walk_graph(spec, settings)  # type: ignore[arg-type]
    wall = time.perf_counter() - t
    _drop(db, work)
    phases: dict[str, dict[str, float]] = {}
    for (phase, _), r in runs.items():
        p = phases.setdefault(phase, {"task_s": 0.0, "cpu_s": 0.0})
        p["task_s"] += r.seconds
    return {"wall_s": wall, "phases": phases, **_usage()}


def part_flow(base: Path, work: Path, shards: int, db: str = "sqlite") -> dict:
    from flows.monthly import bua_monthly
    from flows.runtime import use_settings

    url = fresh(base, work, db)
    settings = settings_for(base, work, shards, url)
    with use_settings(settings), profiled(os.getpid(), "flow"):  # type: ignore[arg-type]
        t = time.perf_counter()
        report = bua_monthly(run_date=R)
        wall = time.perf_counter() - t
    _drop(db, work)
    states: dict[str, int] = {}
    for s in report["task_run_states"].values():
        states[s] = states.get(s, 0) + 1
    return {"wall_s": wall, "task_s": report["seconds"], "states": states, **_usage()}


@contextlib.contextmanager
def profiled(pid: int, name: str) -> Iterator[None]:
    """With ``BUA_BENCH_PYSPY=DIR``: py-spy samples process ``pid`` (and its children) meanwhile and
    writes DIR/{name}.txt (collapsed stacks, idle threads left out) for finding where CPU goes."""
    out = os.environ.get("BUA_BENCH_PYSPY")
    if not out:
        yield
        return
    exe = str(Path(sys.executable).parent / "py-spy")
    spy = subprocess.Popen([exe, "record", "--pid", str(pid), "--subprocesses", "--format", "raw", "--rate", "200",
                            "--output", str(Path(out) / f"{name}.txt")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(1.0)  # py-spy attached
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)


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


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + sys) of a process and its children so far (the Prefect server's)."""
    import psutil

    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def _child(
    part: str, args: argparse.Namespace, base: Path, db: str, env: dict[str, str] | None = None
) -> dict:
    cmd = [sys.executable, __file__, "--part", part, "--data", str(base), "--work", str(args.work / f"{part}-{db}"),
           "--shards", str(args.shards), "--db", db]  # fmt: skip
    done = subprocess.run(
        cmd, check=True, stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument(
        "--data", type=Path, help="bua.db + store/ (or ms/); default: generated by --accounts"
    )
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bua-scale-bench")
    parser.add_argument("--db", default="sqlite", help="comma-separated: sqlite, mariadb, postgresql")
    parser.add_argument("--part", choices=["scan", "graph", "flow"], help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results/*.json")
    args = parser.parse_args()
    args.dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    from scale_db import KINDS  # bench/, the script's own folder

    if not args.dbs or any(d not in KINDS for d in args.dbs):
        parser.error(f"--db: one or more of {', '.join(KINDS)}")
    return args


def main() -> None:
    args = _parse_args()
    if args.data is not None:
        base = args.data
    else:
        from bench.portfolio import prepare

        base = prepare(args.work, args.accounts, args.shards)
    if args.part:
        fn = {"scan": part_scan, "graph": part_graph, "flow": part_flow}[args.part]
        print(json.dumps(fn(base, args.work, args.shards, args.dbs[0]), default=str))
        return

    load_before, uptime_before = os.getloadavg(), _uptime()
    home = Path(tempfile.mkdtemp(prefix="bua-bench-prefect-"))
    server, api = start_server(home)
    runs: dict[str, tuple[dict, dict]] = {}
    try:
        scan = _child("scan", args, base, "sqlite")
        _templates(args, base)
        for db in args.dbs:
            graph = _child("graph", args, base, db)
            server_cpu = tree_cpu(server.pid)
            with profiled(server.pid, "server"):
                flow = _child("flow", args, base, db, {"PREFECT_API_URL": api, "PREFECT_HOME": str(home)})
            flow["server_cpu_s"] = tree_cpu(server.pid) - server_cpu
            runs[db] = (graph, flow)
    finally:
        server.terminate()
        server.wait(30)
        _drop_templates(args)
    load_after, uptime_after = os.getloadavg(), _uptime()
    results = [_result(args, base, db, scan, *runs[db]) for db in args.dbs]
    machine = f"{os.cpu_count()} cpu, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    for r in results:
        r["machine"] = machine
        show(r)
    combined = _combined(args, results, [uptime_before, uptime_after], machine)
    if len(args.dbs) > 1:
        show_ratios(combined)
    if args.no_write:
        return
    from results_file import save_run  # bench/, the script's own folder

    if args.dbs == ["sqlite"]:
        print(f"wrote {save_run('scale', results[0], keys=('accounts',))}")
    else:
        print(f"wrote {save_run('scale-db', combined, keys=('accounts', 'databases'))}")


def _templates(args: argparse.Namespace, base: Path) -> None:
    """Each server database's template: bua.db's rows, copied once (bench/scale_db.py; not timed)."""
    from scale_db import prepare_template  # bench/, the script's own folder

    for db in args.dbs:
        if db != "sqlite":
            work = args.work / f"template-{db}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            shutil.copyfile(base / "bua.db", work / "bua.db")
            prepare_template(db, work / "bua.db")
            shutil.rmtree(work)


def _drop_templates(args: argparse.Namespace) -> None:
    from scale_db import TEMPLATE, drop  # bench/, the script's own folder

    for db in args.dbs:
        if db != "sqlite":
            drop(db, TEMPLATE)


def _uptime() -> str:
    return subprocess.run(["uptime"], stdout=subprocess.PIPE, text=True).stdout.strip()


def _result(args: argparse.Namespace, base: Path, db: str, scan: dict, graph: dict, flow: dict) -> dict:
    states: dict[str, int] = flow["states"]
    return {
        "accounts": accounts_in(base) if args.data is not None else args.accounts,
        "shards": args.shards,
        "database": db,
        "data": str(base),
        "run_date": R.isoformat(),
        "partitions_scanned": scan["files"],
        "values_scanned": scan["values"],
        "bare_scan": {k: round(scan[k], 2) for k in ("wall_s", "cpu_s", "peak_rss_mb")},
        "graph": {k: round(graph[k], 2) for k in ("wall_s", "cpu_s", "peak_rss_mb")},
        "flow": {k: round(flow[k], 2) for k in ("wall_s", "cpu_s", "peak_rss_mb")},
        "server_cpu_s_during_flow": round(flow["server_cpu_s"], 2),
        "flow_task_states": states,
        "ratio_flow_to_graph": round(flow["wall_s"] / graph["wall_s"], 3),
        "ratio_flow_to_scan": round(flow["wall_s"] / scan["wall_s"], 2),
        "phase_task_seconds_flow": {k: round(v, 2) for k, v in flow["task_s"].items()},
        "phase_task_seconds_graph": {k: round(v["task_s"], 2) for k, v in graph["phases"].items()},
        "goal": "flow <= 45 s (100k, quiet machine) and <= 1.15x the graph",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _combined(args: argparse.Namespace, results: list[dict], uptime: list[str], machine: str) -> dict:
    """One run over several databases: each one's result and its times over SQLite's (same run)."""
    by_db = {r["database"]: r for r in results}
    sqlite = by_db.get("sqlite")
    ratios = {
        db: {
            "flow": round(r["flow"]["wall_s"] / sqlite["flow"]["wall_s"], 3),
            "graph": round(r["graph"]["wall_s"] / sqlite["graph"]["wall_s"], 3),
        }
        for db, r in by_db.items()
        if sqlite is not None
    }
    return {
        "accounts": results[0]["accounts"],
        "shards": args.shards,
        "databases": ",".join(args.dbs),
        "command": "bench/scale.py " + " ".join(sys.argv[1:]),
        "ratio_to_sqlite": ratios,
        "goal": "flow on MariaDB and on PostgreSQL <= 1.5x SQLite's (issue 14, 100k accounts)",
        "machine": machine,
        "uptime": uptime,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "runs": {db: {k: v for k, v in r.items() if k not in ("machine", "accounts", "shards")}
                 for db, r in by_db.items()},
    }  # fmt: skip


def show_ratios(c: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"month end by database, {c['accounts']:,} accounts (same run)")
    for col in ("database", "flow s", "graph s", "flow / SQLite", "graph / SQLite"):
        table.add_column(col, justify="left" if col == "database" else "right")
    for db, r in c["runs"].items():
        ratio = c["ratio_to_sqlite"].get(db, {})
        table.add_row(db, f"{r['flow']['wall_s']:.2f}", f"{r['graph']['wall_s']:.2f}",
                      f"{ratio.get('flow', float('nan')):.2f}", f"{ratio.get('graph', float('nan')):.2f}")  # fmt: skip
    Console().print(table)
    print(f"goal: {c['goal']}\nmachine: {c['machine']}")


def accounts_in(base: Path) -> int:
    """The accounts of a given dataset (its billing database), for the table's title and the JSON."""
    import sqlite3

    with sqlite3.connect(base / "bua.db") as conn:
        return int(conn.execute("select count(*) from account").fetchone()[0])


def show(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"month end on {r['database']}, {r['accounts']:,} accounts, {r['shards']} shards, R={r['run_date']}"
    )
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
        "server_cpu_s_during_flow",
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
