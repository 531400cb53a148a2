"""One day's NEM12 delivery for every NMI of a portfolio, ingested into its 13-month meter store.

    .venv/bin/python bench/daily_delivery.py --data DIR [--day 2026-10-31] [--work DIR]

DIR is a loaded portfolio (bench/portfolio.py: ``bua.db`` and the store ``ms/``). Set-up (not
timed): the store is copied under ``--work`` without ``--day`` (as it was the evening before), and
that day's register-days are written as one NEM12 file (tasks/adapters/nem12_write, the shape MDPs
send: a 200 record per register, one 300 per day). Timed: ``bua ingest nem12 FILE`` as a user runs
it (a subprocess; its wall, CPU and peak RSS), and the bytes of the store it rewrote (files whose
inode, size or mtime changed). Checked: the store then holds the day again, value for value.
Prints a table and writes bench/results/daily_delivery.json.
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
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file()}  # fmt: skip


def day_rows(store: Path, day: dt.date) -> pl.DataFrame:
    month = f"month={day:%Y-%m}"
    return pl.concat(
        [pl.read_parquet(p).filter(pl.col("read_date") == day) for p in sorted(store.glob(f"interval/*/{month}/*.parquet"))]
    )  # fmt: skip


def set_up(data: Path, work: Path, day: dt.date) -> tuple[Path, Path, pl.DataFrame]:
    """The store without ``day`` and the day's delivery file."""
    from tasks.adapters.meter_store import parquet_bytes
    from tasks.adapters.nem12_write import nem12_text

    store = work / "ms"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(data / "ms", store)
    delivered = day_rows(store, day)
    for p in sorted(store.glob(f"interval/*/month={day:%Y-%m}/*.parquet")):
        p.write_bytes(parquet_bytes(pl.read_parquet(p).filter(pl.col("read_date") != day)))
    created = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(3, 0))
    path = work / f"NEM12_{day:%Y%m%d}_DAILY.csv"
    path.write_text(nem12_text(delivered, created=created), encoding="ascii", newline="")
    return store, path, delivered


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--day", type=dt.date.fromisoformat, default=dt.date(2026, 10, 31))
    parser.add_argument("--work", type=Path, default=Path("/tmp/bua-daily-delivery"))
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    store, path, delivered = set_up(args.data, args.work, args.day)
    before = snapshot(store)
    env = {**os.environ, "BUA_METER_STORE": str(store), "BUA_SHARDS": str(args.shards),
           "BUA_DATABASE_URL": f"sqlite:///{args.work}/bua.db", "BUA_OUTPUT_URL": str(args.work / "out")}  # fmt: skip
    load = os.getloadavg()[0]
    t = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).parent / "bua"), "ingest", "nem12", str(path)],
                          env=env, capture_output=True, text=True)  # fmt: skip
    wall = time.perf_counter() - t
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"bua ingest failed ({done.returncode}): {done.stderr[-2000:]}")
    after = snapshot(store)
    changed = [k for k, v in after.items() if before.get(k) != v]
    rewritten = sum(after[k][1] for k in changed)
    back = day_rows(store, args.day).sort("nmi", "suffix")
    same = back.select("nmi", "suffix", "values").equals(
        delivered.sort("nmi", "suffix").select("nmi", "suffix", "values")
    )
    result = {
        "day": args.day.isoformat(), "register_days": delivered.height, "nmis": delivered["nmi"].n_unique(),
        "file_mb": round(path.stat().st_size / 1e6, 1), "wall_s": round(wall, 2),
        "cpu_s": round(ru.ru_utime + ru.ru_stime, 2), "peak_rss_mb": round(ru.ru_maxrss / 1024),
        "store_mb": round(sum(v[1] for v in after.values()) / 1e6), "files_rewritten": len(changed),
        "mb_rewritten": round(rewritten / 1e6, 1), "day_restored_exactly": same,
        "load_average_before": round(load, 1), "load_average_after": round(os.getloadavg()[0], 1),
    }  # fmt: skip
    width = max(len(k) for k in result)
    for k, v in result.items():
        print(f"{k:<{width}}  {v}")
    if not args.no_write:
        out = REPO / "bench" / "results" / "daily_delivery.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
