"""Wall and CPU seconds of the billing-database and rating phases (extract … export) on a loaded dataset.

    .venv/bin/python bench/billing_phases.py --data /tmp/me/loaded-10000-s16 --work /tmp/me/bp10k
    .venv/bin/python bench/billing_phases.py --data /work/data/loaded-100000-s16 --work /tmp/me/bp100k \\
        --synthetic-estimates      # no meter-data phases: usage made up from the real registers/windows

The dataset's ``bua.db`` is COPIED into ``--work`` (prepare writes the output tables into it; the
shared dataset stays read-only). Without ``--synthetic-estimates`` one full ``run_accrual`` makes the
estimation work files first (not timed here: bench/scale.py times the whole run). With it, the
estimation phases are skipped and every (register, unbilled day) of the real 100k registers and
windows gets random 3-decimal values (one per interval, or one per day for basic registers; 15 %
of interval values flagged estimated; seed 7) — the same number of rows and values rating meets in
a real run, so its cost can be measured before the meter store is ingested. Then each phase runs
once (per-shard phases over every shard) and is timed (wall and process CPU). Prints a table and
writes bench/results/billing_phases.json (one entry per accounts × estimates kind).
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

R = dt.date(2026, 11, 1)
PHASES = ("extract", "windows", "rating", "exceptions", "prepare", "export")


def synthetic_estimates(ctx) -> None:  # noqa: ANN001 — a RunContext
    """Estimation work files from the real registers and windows with random values (see the module doc)."""
    import numpy as np
    import polars as pl

    from tasks.domain.exceptions import empty_exceptions
    from tasks.pipeline.accrual import USAGE_COLUMNS, _get, _put

    regs, win = _get(ctx, "extract", "registers"), _get(ctx, "windows", "windows")
    rng = np.random.default_rng(7)
    for s in range(ctx.settings.shards):
        w = win.filter(pl.col("shard") == s).select("account_id", "unbilled_from", "unbilled_to")
        rows = (
            regs.filter(pl.col("shard") == s)
            .join(w, on="account_id")
            .select(
                "account_id", "meter_register_id", "nmi", "suffix", "stream",
                pl.col("time_class").alias("register_time_class"), "unit",
                pl.col("interval_minutes").fill_null(1440),
                pl.date_ranges("unbilled_from", "unbilled_to").alias("read_date"),
            )
            .explode("read_date")
            .drop_nulls("read_date")
        )  # fmt: skip
        parts = []
        for (minutes,), g in rows.group_by("interval_minutes", maintain_order=True):
            n = 1440 // minutes
            vals = np.round(rng.gamma(2.0, 0.15 * 30 * n / 1440 if n > 1 else 8.0, size=(g.height, n)), 3)
            est = rng.random((g.height, n)) < (0.15 if n > 1 else 1.0)
            parts.append(
                g.with_columns(
                    pl.Series("values", vals).cast(pl.List(pl.Float64)),
                    pl.Series("estimated", est).cast(pl.List(pl.Boolean)),
                    pl.lit("INTERVAL" if n > 1 else "BASIC").alias("method"),
                )
            )
        u = pl.concat(parts).select(USAGE_COLUMNS).sort("account_id", "meter_register_id", "read_date")
        basic = u.filter(pl.col("interval_minutes") == 1440)
        ebr = (
            basic.group_by("meter_register_id")
            .agg(pl.col("read_date").max(), pl.col("values").list.sum().sum().alias("consumption"))
            .select(
                "meter_register_id", "read_date", pl.col("consumption").alias("index_value"), "consumption",
                pl.lit("SEASONAL").alias("method"),
            )
            .sort("meter_register_id")
        )  # fmt: skip
        _put(ctx, u.filter(pl.col("interval_minutes") < 1440), "estimates", "interval_usage", s)
        _put(ctx, basic, "estimates", "basic_usage", s)
        _put(ctx, ebr, "estimates", "estimated_basic_read", s)
        for phase, name in (("estimates", "basic_exceptions"), ("estimates", "interval_exceptions"),
                            ("basic", "exceptions"), ("scalars", "exceptions")):  # fmt: skip
            _put(ctx, empty_exceptions(), phase, name, s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a loaded dataset (bua.db, ms/)")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--synthetic-estimates", action="store_true")
    args = parser.parse_args()

    from tasks.pipeline import accrual
    from tasks.settings import Settings

    args.work.mkdir(parents=True, exist_ok=True)
    db = args.work / "bua.db"
    if not db.exists():
        shutil.copyfile(args.data / "bua.db", db)
    s = Settings(
        database_url=f"sqlite:///{db}",
        meter_store=str(args.data / "ms"),
        output_url=str(args.work / "out"),
        shards=args.shards,
        max_workers=1,
    )
    ctx = accrual.RunContext.create(s, R)
    if not (args.work / "out" / "work" / R.isoformat() / "estimates").exists():
        if args.synthetic_estimates:
            accrual.extract(ctx)
            accrual.windows(ctx)
            synthetic_estimates(ctx)
        else:
            accrual.run_accrual(s, R)
    fns = {name: (fn, per_shard) for name, fn, per_shard in accrual.PHASES}
    seconds = {}
    for name in PHASES:
        fn, per_shard = fns[name]
        t, c = time.perf_counter(), time.process_time()
        _ = [fn(ctx, i) for i in range(args.shards)] if per_shard else fn(ctx)
        seconds[name] = {"wall": round(time.perf_counter() - t, 2), "cpu": round(time.process_time() - c, 2)}
        print(
            f"{name:12s} wall {seconds[name]['wall']:7.2f} s  cpu {seconds[name]['cpu']:7.2f} s", flush=True
        )
    accounts = accrual._get(ctx, "extract", "accounts").height
    result = {
        "accounts": accounts,
        "estimates": "synthetic" if args.synthetic_estimates else "real",
        "shards": args.shards,
        "phase_seconds": seconds,
        "total_wall_s": round(sum(v["wall"] for v in seconds.values()), 2),
        "total_cpu_s": round(sum(v["cpu"] for v in seconds.values()), 2),
        "machine": f"{os.cpu_count()} cpu, load average {os.getloadavg()[0]:.1f} at the end",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    print(
        f"{'total':12s} wall {result['total_wall_s']:7.2f} s  cpu {result['total_cpu_s']:7.2f} s ({result['machine']})"
    )
    from results_file import save_run  # bench/, the script's own folder

    print(f"wrote {save_run('billing_phases', result, keys=('accounts', 'estimates'))}")


if __name__ == "__main__":
    main()
