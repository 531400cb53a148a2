"""Benchmark `bua generate`: wall time, peak memory, files and values for 10k and/or 100k accounts.

    .venv/bin/python bench/generate.py --accounts 10000            # one size
    .venv/bin/python bench/generate.py --accounts 10000 100000     # both

Each size runs in its own subprocess (so peak RSS is that run's alone), writes under --out, prints
a table and merges its figures into bench/results/generate.json. The load average before the run
is recorded because other work on the same machine slows it down; CPU time (user + system)
shows the work itself: on an idle 2-core machine, wall ≈ CPU / 2 when both workers are busy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "generate.json"
CHILD = """
import json, resource, sys, time
from pathlib import Path
from tasks.generate import generate
accounts, months, out, workers = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
t0 = time.perf_counter()
m = generate(out, accounts=accounts, seed=1, months=months, workers=workers)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": ru.ru_maxrss / 1024, "manifest": m}))
"""


def _sizes(out: Path) -> dict[str, dict[str, int]]:
    res = {}
    for sub in ("db", "nem12", "nem13", "truth"):
        files = [p for p in (out / sub).glob("*") if p.is_file()]
        res[sub] = {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}
    return res


def run(accounts: int, months: int, out: Path, workers: int) -> dict:
    target = out / f"a{accounts}"
    shutil.rmtree(target, ignore_errors=True)
    load = os.getloadavg()[0]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(accounts), str(months), str(target), str(workers)],
        check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    m = child["manifest"]
    return {
        "accounts": accounts,
        "months": months,
        "workers": workers,
        "wall_s": round(child["wall_s"], 1),
        "cpu_s": round(child["cpu_s"], 1),
        "peak_rss_mb": round(child["peak_rss_mb"]),
        "load_average_before": round(load, 2),
        "interval_values": m["files"]["nem12_values"],
        "nem12_lines": m["files"]["nem12_lines"],
        "truth_rows": m["files"]["truth_rows"],
        "db_rows": sum(m["tables"].values()),
        "sizes": _sizes(target),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, nargs="+", default=[10_000])
    ap.add_argument("--months", type=int, default=13)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bua-bench-generate"))
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    print(
        f"{'accounts':>9} {'months':>6} {'wall s':>7} {'CPU s':>6} {'RSS MB':>7} {'load':>5} {'values':>14} {'NEM12 files':>11} {'NEM12 GB':>9} {'truth rows':>12} {'db rows':>10}"
    )
    for n in args.accounts:
        r = run(n, args.months, args.out, args.workers)
        results[str(n)] = r
        s = r["sizes"]
        print(
            f"{n:>9,} {r['months']:>6} {r['wall_s']:>7.1f} {r['cpu_s']:>6.1f} {r['peak_rss_mb']:>7,} {r['load_average_before']:>5.1f} {r['interval_values']:>14,} "
            f"{s['nem12']['files']:>11,} {s['nem12']['bytes'] / 1e9:>9.2f} {r['truth_rows']:>12,} {r['db_rows']:>10,}"
        )
        if not args.keep:
            shutil.rmtree(args.out / f"a{n}", ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
