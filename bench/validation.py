"""Cost of the validation phase (SPEC §4.6): back-test and true-up after a month-end run.

Prepares a generated portfolio (bench/orchestration.py's ``prepare``, or ``--base`` for a loaded one),
runs the accrual as at R − 1 month and as at R (sequential ``run_accrual``), then times the
validation phase alone (its parts: back-test, true-up) a few times. Prints a table and writes
bench/results/validation.json. Wall and CPU seconds, with the load average.

    .venv/bin/python bench/validation.py --accounts 10000 --work /tmp/me
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "validation.json"


def _timed(fn):  # noqa: ANN001, ANN202
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, round(time.perf_counter() - w, 2), round(time.process_time() - c, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bua-validation-bench"))
    parser.add_argument("--base", type=Path, default=None, help="an already loaded dataset (bua.db + ms/)")
    parser.add_argument("--run-date", type=dt.date.fromisoformat, default=dt.date(2026, 11, 1))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from bench.orchestration import prepare
    from tasks.pipeline.accrual import RunContext, run_accrual
    from tasks.pipeline.validation import (
        backtest_date,
        backtest_from_work,
        run_validation,
        trueup_from_database,
    )
    from tasks.settings import Settings

    base = args.base or prepare(args.work, args.accounts, args.shards)
    out = args.work / f"out-{args.accounts}-s{args.shards}"
    s = Settings(
        database_url=f"sqlite:///{base}/bua.db",
        meter_store=str(base / "ms"),
        output_url=str(out),
        shards=args.shards,
        max_workers=1,
        slack_webhook_url=None,
    )
    from tasks.adapters.db import init_db

    init_db(s.database_url)  # a dataset loaded before migration 0004 lacks the validation tables
    prev = backtest_date(args.run_date, 1)
    for r in (prev, args.run_date):
        if not (out / "export" / "csv" / r.isoformat() / "bua_account_summary.csv").exists():
            _, wall, cpu = _timed(lambda r=r: run_accrual(s, r))
            print(f"run_accrual {r}: {wall} s wall, {cpu} s CPU", flush=True)
    ctx = RunContext.create(s, args.run_date)
    rows = []
    for _ in range(args.repeat):
        (bt, shards), bt_wall, bt_cpu = _timed(lambda: backtest_from_work(ctx))
        _, tu_wall, tu_cpu = _timed(lambda: trueup_from_database(s.database_url, args.run_date))
        res, wall, cpu = _timed(lambda: run_validation(ctx))
        rows.append(
            {
                "accounts": args.accounts,
                "shards": args.shards,
                "backtest_shards": len(shards),
                "backtest_registers": int(
                    sum(
                        r["registers"]
                        for r in res["stats"]["backtest"]
                        if r["segment"] == "ALL" and r["method"] == "ALL"
                    )
                ),
                "backtest_wall_s": bt_wall,
                "backtest_cpu_s": bt_cpu,
                "trueup_wall_s": tu_wall,
                "trueup_cpu_s": tu_cpu,
                "phase_wall_s": wall,
                "phase_cpu_s": cpu,
                "load_average": round(os.getloadavg()[0], 1),
            }
        )
    cols = list(rows[0])
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": []}
    old["runs"] = [x for x in old["runs"] if (x["accounts"], x["shards"]) != (args.accounts, args.shards)]
    old["runs"].append(
        {
            "accounts": args.accounts,
            "shards": args.shards,
            "machine": f"{os.cpu_count()} cpu",
            "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "repeats": rows,
        }
    )
    RESULTS.write_text(json.dumps(old, indent=1) + "\n")


if __name__ == "__main__":
    main()
