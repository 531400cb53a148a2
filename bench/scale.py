"""Issue 4's scale goal: a month end against a bare scan of the interval data it reads.

    .venv/bin/python bench/scale.py                       # 100k accounts: /work/data/loaded-100000-s16
    .venv/bin/python bench/scale.py --accounts 10000      # built by bench/orchestration.py's prepare()

Goal: a 100k-account month end in <= 90 s on the 2-core machine, within 5x a bare streaming scan
of its interval data. Runs, each in its own child process (so that CPU seconds and peak RSS are
its own): (1) a bare polars streaming scan (sum and count of every value) of exactly the interval
partitions the accrual reads (every shard, the months from the earliest day any meter-data phase
asks for to R - 1), (2) the real ``tasks.pipeline.accrual.run_accrual`` for R = 2026-11-01 against a COPY of
the billing database (the engine writes its output tables into it; the shared dataset stays
read-only) with outputs under ``--work``. Prints a table (phase wall and CPU seconds, wall, CPU,
peak RSS, values scanned, accrual / bare-scan ratio) and writes bench/results/scale.json.
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="bua-bench-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# the allocator setting bua runs with (tasks/__init__.py), set before polars loads, for the bare
# scan as for the accrual: both children inherit it
import tasks  # noqa: E402,F401

R = dt.date(2026, 11, 1)
GOAL_SECONDS = 90.0
GOAL_RATIO = 5.0
METER_PHASES = ("profiles_partial", "profiles_combine", "segments", "scalars", "interval_estimates")


def _usage() -> dict[str, float]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": ru.ru_maxrss / 1024}


def scanned_partitions(meter_store: Path, shards: int) -> list[str]:
    """The partition files the accrual's meter-data phases open for R (every shard, months in range)."""
    from tasks.domain.scalars import LONG_WINDOW_DAYS
    from tasks.pipeline.accrual import RunContext, _history_start
    from tasks.settings import Settings

    ctx = RunContext.create(Settings(meter_store=str(meter_store), shards=shards), R)
    # profiles: history start; scalars: R - 365; interval estimates: min(unbilled_from, period_start)
    # (unbilled_from is never before the history start: extract reads no older invoices)
    lo = min(_history_start(ctx), R - dt.timedelta(days=LONG_WINDOW_DAYS), ctx.period_start)
    hi = R - dt.timedelta(days=1)
    files = sorted(str(p) for p in (meter_store / "interval").glob("shard=*/month=*/data.parquet"))
    return [f for f in files if f"month={lo:%Y-%m}" <= Path(f).parent.name <= f"month={hi:%Y-%m}"]


def bare_scan(meter_store: Path, shards: int) -> dict:
    """Sum and count of every interval value in the partitions the accrual reads, streaming."""
    import polars as pl

    files = scanned_partitions(meter_store, shards)
    t = time.perf_counter()
    total, count = (
        pl.scan_parquet(files, hive_partitioning=False)
        .select(
            pl.col("values").list.sum().sum().alias("total"),
            pl.col("values").list.len().sum().alias("count"),
        )
        .collect(engine="streaming")
        .row(0)
    )
    wall = time.perf_counter() - t
    return {"wall_s": wall, "files": len(files), "values": int(count), "total_kwh": float(total), **_usage()}


def accrual(base: Path, work: Path, shards: int, max_workers: int | None = None) -> dict:
    """The real sequential month end on a copy of the database; per-phase wall and CPU seconds."""
    from tasks.pipeline.accrual import run_accrual
    from tasks.settings import Settings

    work.mkdir(parents=True, exist_ok=True)
    db = work / "bua.db"
    shutil.copyfile(base / "bua.db", db)  # fresh copy: the run writes its output tables into it
    from tasks.adapters.db import init_db

    init_db(f"sqlite:///{db}")  # tables added since the dataset was built (not timed)
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    settings = Settings(
        database_url=f"sqlite:///{db}", meter_store=str(base / "ms"), output_url=str(out), shards=shards,
    )  # fmt: skip
    if max_workers is not None:  # default: the settings' (BUA_MAX_WORKERS, 2), as `bua run`
        settings = settings.model_copy(update={"max_workers": max_workers})
    t = time.perf_counter()
    result = run_accrual(settings, R)
    wall = time.perf_counter() - t
    return {
        "wall_s": wall,
        "status": result.status,
        "phase_seconds": result.seconds,
        # run_accrual's own split (phases overlap: each stretch's CPU shared among the running tasks)
        "phase_cpu_seconds": result.cpu_seconds,
        "counts": result.counts,
        "max_workers": settings.max_workers,
        "out": str(out),
        **_usage(),
    }


def _child(part: str, args: argparse.Namespace, base: Path) -> dict:
    cmd = [sys.executable, __file__, "--part", part, "--data", str(base), "--work", str(args.work),
           "--shards", str(args.shards), "--accounts", str(args.accounts)]  # fmt: skip
    if args.max_workers is not None:
        cmd += ["--max-workers", str(args.max_workers)]
    done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--data", type=Path, help="loaded dataset (bua.db + ms/); default by --accounts")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bua-scale-bench")
    parser.add_argument(
        "--max-workers", type=int, help="shards of a per-shard phase run at once (default: the settings', 2)"
    )
    parser.add_argument("--part", choices=["scan", "accrual"], help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results/scale.json")
    args = parser.parse_args()

    if args.data is not None:
        base = args.data
    elif args.accounts == 100_000 and Path(f"/work/data/loaded-100000-s{args.shards}/ready").exists():
        base = Path(f"/work/data/loaded-100000-s{args.shards}")
    else:
        from bench.orchestration import prepare

        base = prepare(args.work, args.accounts, args.shards)
    if args.part == "scan":
        print(json.dumps(bare_scan(base / "ms", args.shards)))
        return
    if args.part == "accrual":
        print(json.dumps(accrual(base, args.work / f"run-{args.accounts}", args.shards, args.max_workers), default=str))
        return

    load_before = os.getloadavg()
    scan = _child("scan", args, base)
    acc = _child("accrual", args, base)
    load_after = os.getloadavg()
    meter = sum(acc["phase_seconds"].get(p, 0.0) for p in METER_PHASES)
    result = {
        "accounts": args.accounts,
        "shards": args.shards,
        "max_workers": acc["max_workers"],
        "data": str(base),
        "run_date": R.isoformat(),
        "partitions_scanned": scan["files"],
        "values_scanned": scan["values"],
        "bare_scan": {k: round(scan[k], 2) for k in ("wall_s", "cpu_s", "peak_rss_mb")},
        "bare_scan_values_per_s": round(scan["values"] / scan["wall_s"]),
        "accrual": {k: round(acc[k], 2) for k in ("wall_s", "cpu_s", "peak_rss_mb")},
        "accrual_status": acc["status"],
        "ratio_accrual_to_scan": round(acc["wall_s"] / scan["wall_s"], 2),
        "meter_data_phases_s": round(meter, 2),
        "ratio_meter_data_to_scan": round(meter / scan["wall_s"], 2),
        "phase_seconds": {k: round(v, 2) for k, v in acc["phase_seconds"].items()},
        "phase_cpu_seconds": {k: round(v, 2) for k, v in acc["phase_cpu_seconds"].items()},
        "goal": f"wall <= {GOAL_SECONDS:.0f} s and <= {GOAL_RATIO:.0f}x the bare scan",
        "goal_met": acc["wall_s"] <= GOAL_SECONDS and acc["wall_s"] <= GOAL_RATIO * scan["wall_s"],
        "machine": f"{os.cpu_count()} cpu, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    show(result)
    if args.no_write:
        return
    from results_file import save_run  # bench/, the script's own folder

    print(f"wrote {save_run('scale', result, keys=('accounts',))}")


def show(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"month end vs bare scan, {r['accounts']:,} accounts, {r['shards']} shards, R={r['run_date']}"
    )
    table.add_column("measure")
    table.add_column("wall s", justify="right")
    table.add_column("CPU s", justify="right")
    for name, wall in r["phase_seconds"].items():
        mark = " *" if name in METER_PHASES else ""
        table.add_row(f"phase {name}{mark}", f"{wall:.2f}", f"{r['phase_cpu_seconds'].get(name, 0):.2f}")
    table.add_row("meter-data phases (*)", f"{r['meter_data_phases_s']:.2f}", "")
    a, s = r["accrual"], r["bare_scan"]
    table.add_row("run_accrual", f"{a['wall_s']:.2f}", f"{a['cpu_s']:.2f}")
    table.add_row("bare streaming scan", f"{s['wall_s']:.2f}", f"{s['cpu_s']:.2f}")
    Console().print(table)
    for key in (
        "partitions_scanned",
        "values_scanned",
        "bare_scan_values_per_s",
        "ratio_accrual_to_scan",
        "ratio_meter_data_to_scan",
        "goal",
        "goal_met",
        "machine",
    ):
        print(f"{key}: {r[key]}")
    print(f"peak RSS MB: accrual {a['peak_rss_mb']:.0f}, bare scan {s['peak_rss_mb']:.0f}")


if __name__ == "__main__":
    main()
