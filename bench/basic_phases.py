"""Time of the basic-register phases (read_pairs, gas_shape, basic_estimates) of the month end.

    .venv/bin/python bench/basic_phases.py --accounts 10000 --shards 16 [--work DIR] [--repeat 3]

Builds (once, cached under --work, with bench/orchestration.py's ``prepare``) a loaded portfolio,
runs the month end once (``run_accrual``, R = 2026-11-01, seasonal) to write the work files the
phases read, then re-runs each phase function on those files ``--repeat`` times and keeps the
run with the least CPU. CPU = ``time.process_time`` of this process (all polars threads), the
comparable figure on a shared machine; wall and the load average are printed next to it.
Prints a table and writes bench/results/basic_phases.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="bua-bench-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

R = dt.date(2026, 11, 1)


def main() -> None:
    from orchestration import prepare

    from tasks.pipeline.accrual import RunContext, basic_estimates, gas_shape, read_pairs
    from tasks.pipeline.sequential import run_accrual
    from tasks.settings import Settings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=10000)
    ap.add_argument("--shards", type=int, default=16)
    ap.add_argument("--work", type=Path, default=REPO / ".bua" / "bench-basic")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "basic_phases.json")
    a = ap.parse_args()
    data = prepare(a.work, a.accounts, a.shards)
    settings = Settings(
        database_url=f"sqlite:///{data / 'bua.db'}", meter_store=str(data / "ms"),
        output_url=str(a.work / "out-basic-phases"), shards=a.shards,
    )  # fmt: skip
    t0 = time.perf_counter()
    run_accrual(settings, R, basic_method="seasonal")
    first = time.perf_counter() - t0
    ctx = RunContext.create(settings, R, None, None, "seasonal")
    phases = (
        ("read_pairs", read_pairs, True),
        ("gas_shape", gas_shape, False),
        ("basic_estimates", basic_estimates, True),
    )
    rows = {}
    for name, fn, per_shard in phases:
        best: tuple[float, float] | None = None
        for _ in range(a.repeat):
            w0, c0 = time.perf_counter(), time.process_time()
            if per_shard:
                for s in range(a.shards):
                    fn(ctx, s)
            else:
                fn(ctx)
            w, c = time.perf_counter() - w0, time.process_time() - c0
            best = (w, c) if best is None or c < best[1] else best
        assert best is not None
        rows[name] = {"wall_s": round(best[0], 3), "cpu_s": round(best[1], 3)}
    load = os.getloadavg()
    print(f"{a.accounts} accounts, {a.shards} shards, R {R}, best of {a.repeat} by CPU; load average "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; first full run_accrual {first:.1f} s")  # fmt: skip
    print(f"{'phase':<18}{'wall s':>10}{'cpu s':>10}")
    for name, r in rows.items():
        print(f"{name:<18}{r['wall_s']:>10.2f}{r['cpu_s']:>10.2f}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(
        json.dumps(
            {
                "accounts": a.accounts,
                "shards": a.shards,
                "run_date": R.isoformat(),
                "repeat": a.repeat,
                "load_average": list(load),
                "run_accrual_seconds": round(first, 1),
                "phases": rows,
            },
            indent=1,
        )  # fmt: skip
    )
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
