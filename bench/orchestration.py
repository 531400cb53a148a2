"""Orchestration overhead of ``bua_monthly``: flow wall time minus the time of the pure phase functions.

    .venv/bin/python bench/orchestration.py --accounts 10000 [--shards 16] [--workers 1]

Generates (once, cached under --work) a portfolio, loads it into SQLite and ingests its NEM12 into
a meter store; then, against a Prefect test-harness API, runs (1) the sequential engine
``run_accrual``, (2) the flow on a fresh output location, (3) the flow again (all cache hits).
Overhead = flow wall time − Σ the phase functions' own time (measured inside the tasks). With
``--workers 1`` the phase functions run one at a time, so the difference is what Prefect adds
(task runs, state changes, result persistence, fingerprints); with more workers shards overlap
and the flow can be faster than the sum. Prints a table, writes bench/results/orchestration.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="bua-bench-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# Prefect 3.8.8's server under FastAPI >= 0.143 (docs/ORCHESTRATION.md "Known issues").

R = dt.date(2026, 11, 1)


def prepare(work: Path, accounts: int, shards: int) -> Path:
    """Generated, loaded and ingested portfolio under ``work`` (reused when already there)."""
    from tasks.adapters.db import init_db
    from tasks.adapters.ingest import ingest_nem12, ingest_nem13
    from tasks.adapters.load import load_portfolio
    from tasks.generate import generate
    from tasks.settings import Settings

    base = work / f"loaded-{accounts}-s{shards}"
    if (base / "ready").exists():
        return base
    portfolio = work / f"portfolio-{accounts}"
    if not (portfolio / "manifest.json").exists():
        t = time.perf_counter()
        generate(portfolio, accounts=accounts, seed=4242, months=13)
        print(f"generated {accounts} accounts in {time.perf_counter() - t:.0f} s", flush=True)
    shutil.rmtree(base, ignore_errors=True)
    s = Settings(database_url=f"sqlite:///{base}/bua.db", meter_store=str(base / "ms"), shards=shards)
    t = time.perf_counter()
    init_db(s.database_url)
    load_portfolio(s.database_url, portfolio)
    ingest_nem12([str(portfolio / "nem12")], s)
    if any((portfolio / "nem13").iterdir()):
        ingest_nem13([str(portfolio / "nem13")], s)
    (base / "ready").write_text("ok")
    print(f"loaded and ingested in {time.perf_counter() - t:.0f} s", flush=True)
    return base


def reuse(data: Path, work: Path) -> Path:
    """A loaded dataset used read-only: its bua.db copied under ``work`` (outputs are written into it)."""
    if not (data / "ready").exists():
        raise SystemExit(f"{data} is not ready (no {data / 'ready'})")
    base = work / f"db-{data.name}"
    base.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    shutil.copyfile(data / "bua.db", base / "bua.db")
    print(f"copied {data / 'bua.db'} in {time.perf_counter() - t:.0f} s", flush=True)
    return base


def settings_for(base: Path, out: Path, shards: int, workers: int, meter_store: Path):  # -> Settings
    from tasks.settings import Settings

    return Settings(
        database_url=f"sqlite:///{base}/bua.db",
        meter_store=str(meter_store),
        output_url=str(out),
        shards=shards,
        max_workers=workers,
        slack_webhook_url=None,
    )


def cpu() -> float:
    """CPU seconds of this process and its finished children (user + system)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def server_cpu() -> float:
    """CPU seconds of the running child processes (the test harness's Prefect server)."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def accounts_in(base: Path) -> int:
    import sqlite3

    with sqlite3.connect(base / "bua.db") as conn:
        return int(conn.execute("SELECT count(*) FROM account").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bua-orch-bench")
    parser.add_argument(
        "--data",
        type=Path,
        help="an already loaded dataset (bua.db + ms/, e.g. /work/data/loaded-100000-s16), used read-only: "
        "bua.db is copied to --work (the engine writes its output tables into it), ms/ is read in place",
    )
    parser.add_argument("--skip-sequential", action="store_true", help="do not time run_accrual")
    parser.add_argument("--no-save", action="store_true", help="print only; leave bench/results alone")
    args = parser.parse_args()

    base = reuse(args.data, args.work) if args.data else prepare(args.work, args.accounts, args.shards)
    meter_store = (args.data / "ms") if args.data else base / "ms"
    accounts = accounts_in(base)
    load_start = os.getloadavg()[0]
    from prefect.testing.utilities import prefect_test_harness

    from flows.glue import use_settings
    from flows.monthly import bua_monthly
    from tasks.pipeline.accrual import run_accrual

    with prefect_test_harness(server_startup_timeout=180):
        seq = seq_wall = seq_cpu = None
        if not args.skip_sequential:
            seq_out = args.work / "out-sequential"
            shutil.rmtree(seq_out, ignore_errors=True)
            t, c = time.perf_counter(), cpu()
            seq = run_accrual(settings_for(base, seq_out, args.shards, args.workers, meter_store), R)
            seq_wall, seq_cpu = time.perf_counter() - t, cpu() - c

        flow_out = args.work / "out-flow"
        shutil.rmtree(flow_out, ignore_errors=True)
        s = settings_for(base, flow_out, args.shards, args.workers, meter_store)
        with use_settings(s):
            t, c, sc = time.perf_counter(), cpu(), server_cpu()
            report = bua_monthly(run_date=R)
            flow_wall, flow_cpu, flow_server = time.perf_counter() - t, cpu() - c, server_cpu() - sc
            t, c, sc = time.perf_counter(), cpu(), server_cpu()
            bua_monthly(run_date=R)
            cached_wall, cached_cpu, cached_server = time.perf_counter() - t, cpu() - c, server_cpu() - sc

    pure = sum(report["seconds"].values())
    pure_cpu = sum(report["cpu_seconds"].values())
    task_runs = len(report["task_run_states"])
    result = {
        "accounts": accounts,
        "shards": args.shards,
        "max_workers": args.workers,
        "task_runs": task_runs,
        "sequential_run_accrual_s": None if seq_wall is None else round(seq_wall, 2),
        "sequential_cpu_s": None if seq_cpu is None else round(seq_cpu, 2),
        "sequential_phase_sum_s": None if seq is None else round(sum(seq.seconds.values()), 2),
        "flow_wall_s": round(flow_wall, 2),
        "flow_cpu_s": round(flow_cpu, 2),
        "flow_pure_functions_s": round(pure, 2),
        "overhead_s": round(flow_wall - pure, 2),
        "overhead_pct_of_flow": round(100 * (flow_wall - pure) / flow_wall, 1),
        "overhead_per_task_run_s": round((flow_wall - pure) / task_runs, 3),
        # load-independent view (one worker): CPU the flow process spent outside the phase
        # functions, and the CPU of the Prefect server (test harness subprocess) meanwhile
        "flow_pure_functions_cpu_s": round(pure_cpu, 2),
        "overhead_cpu_s": round(flow_cpu - pure_cpu, 2),
        "server_cpu_s": round(flow_server, 2),
        "flow_vs_sequential_pct": None
        if seq_wall is None
        else round(100 * (flow_wall - seq_wall) / seq_wall, 1),
        "cached_rerun_wall_s": round(cached_wall, 2),
        "cached_rerun_cpu_s": round(cached_cpu, 2),
        "cached_rerun_server_cpu_s": round(cached_server, 2),
        "phase_seconds": {k: round(v, 2) for k, v in report["seconds"].items()},
        "machine": f"{os.cpu_count()} cpu, load average {load_start:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    show(result)
    if args.no_save:
        return
    from results_file import save_run  # bench/, the script's own folder

    print(f"wrote {save_run('orchestration', result, keys=('accounts', 'max_workers'))}")


def show(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"bua_monthly orchestration overhead, {r['accounts']:,} accounts, {r['shards']} shards"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in (
        "task_runs",
        "max_workers",
        "sequential_run_accrual_s",
        "sequential_cpu_s",
        "flow_wall_s",
        "flow_cpu_s",
        "flow_pure_functions_s",
        "overhead_s",
        "overhead_pct_of_flow",
        "overhead_per_task_run_s",
        "flow_pure_functions_cpu_s",
        "overhead_cpu_s",
        "server_cpu_s",
        "flow_vs_sequential_pct",
        "cached_rerun_wall_s",
        "cached_rerun_cpu_s",
        "cached_rerun_server_cpu_s",
    ):
        table.add_row(key, str(r[key]))
    Console().print(table)


if __name__ == "__main__":
    main()
