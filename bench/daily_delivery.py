"""One day's NEM12 delivery for every NMI of a portfolio, ingested into its 13-month meter store:
as a delta beside each partition (issue 14) against the direct merge, then the compaction.

    .venv/bin/python bench/daily_delivery.py --data DIR [--day 2026-10-31] [--work DIR]

DIR is a loaded portfolio (bench/portfolio.py: ``bua.db`` and the store ``ms/``). Set-up (not
timed): the store is copied twice under ``--work`` without ``--day`` (as it was the evening
before), and that day's register-days are written as one NEM12 file (tasks/adapters/nem12_write,
the shape MDPs send: a 200 record per register, one 300 per day). Timed, each as a user runs it
(a subprocess; its wall, CPU and peak RSS) with the bytes of the store it wrote (files whose
inode, size or mtime changed, or new):
1. ``delta``: ``bua ingest nem12 FILE`` into copy A (deltas: the default);
2. ``compact``: ``bua meter compact`` of copy A (what the month end does first);
3. ``direct``: ``bua ingest nem12 FILE`` into copy B with ``BUA_STORE_MAX_DELTAS=0`` (every
   partition merged and rewritten, bua before deltas).
Checked: each store holds the day again, value for value, before and after compaction; the
compacted store A has the same bytes as B. Then the month end's read: a bare streaming scan of the
partitions the month end reads (bench/scale.py), on A compacted and on B, alternately, 3 times each.
Prints a table and adds the run to bench/results/daily_delivery.json (``--month``: daily_delivery_month.json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
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


def day_back(store: Path, day: dt.date, delivered: pl.DataFrame, shards: int) -> bool:
    """Whether the store (deltas folded, as every reader sees it) holds ``delivered`` again."""
    from tasks.adapters.meter_store import scan_interval
    from tasks.settings import Settings

    settings = Settings(meter_store=str(store), shards=shards)
    back = pl.concat([scan_interval(settings, s, day, day).collect() for s in range(shards)])
    cols = ["nmi", "suffix", "values"]
    return back.sort("nmi", "suffix").select(cols).equals(delivered.sort("nmi", "suffix").select(cols))


def widened(rows: pl.DataFrame, nmis: int) -> pl.DataFrame:
    """``rows`` with NMIs added up to ``nmis``: copies of the day's NMIs renamed (first character
    X, Y, Z …: not in the store, so new register-days in the existing partitions)."""
    have = rows["nmi"].n_unique()
    extra, letters = [], iter("XYZWVUTS")
    while have + sum(e["nmi"].n_unique() for e in extra) < nmis:
        letter = next(letters)
        extra.append(rows.with_columns((pl.lit(letter) + pl.col("nmi").str.slice(1)).alias("nmi")))
    if not extra:
        return rows
    added = pl.concat(extra)
    keep = added["nmi"].unique(maintain_order=True).head(nmis - have)
    return pl.concat([rows, added.filter(pl.col("nmi").is_in(keep.implode()))])


def set_up(
    data: Path, work: Path, days: list[dt.date], nmis: int = 0
) -> tuple[Path, Path, list[Path], list[pl.DataFrame]]:
    """Two copies of the store without ``days`` (one month) and each day's delivery file (with
    NMIs added up to ``nmis``)."""
    from tasks.adapters.meter_store import parquet_bytes
    from tasks.adapters.nem12_write import nem12_text

    store = work / "ms"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(data / "ms", store)
    delivered = [day_rows(store, day) for day in days]
    for p in sorted(store.glob(f"interval/*/month={days[0]:%Y-%m}/*.parquet")):
        p.write_bytes(parquet_bytes(pl.read_parquet(p).filter(~pl.col("read_date").is_in(days))))
    delivered = [widened(rows, nmis) for rows in delivered]
    paths = []
    for day, rows in zip(days, delivered, strict=True):
        created = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(3, 0))
        paths.append(work / f"NEM12_{day:%Y%m%d}_DAILY.csv")
        paths[-1].write_text(nem12_text(rows, created=created), encoding="ascii", newline="")
    direct = work / "ms-direct"
    shutil.copytree(store, direct)
    return store, direct, paths, delivered


def timed(cmd: list[str], env: dict[str, str], store: Path) -> dict:
    """Run a bua command; its wall, CPU, peak RSS (this child's own) and what it wrote in ``store``."""
    before = snapshot(store)
    t = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "bua"), *cmd], env=env,
                                stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
        _, status, ru = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"bua {cmd[0]} failed ({proc.returncode}): {err.read()[-2000:].decode()}")
    after = snapshot(store)
    changed = [k for k, v in after.items() if before.get(k) != v]
    return {
        "wall_s": round(wall, 2), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
        "peak_rss_mb": round(ru.ru_maxrss / 1024), "files_written": len(changed),
        "deltas_written": sum("/delta-" in k for k in changed),
        "files_deleted": len(set(before) - set(after)),
        "mb_written": round(sum(after[k][1] for k in changed) / 1e6, 1),
    }  # fmt: skip


def bare_scan(store: Path) -> float:
    """bench/scale.py's bare streaming scan of the partitions the month end reads; its wall."""
    from scale import scanned_partitions  # bench/, the script's own folder

    files = scanned_partitions(store)
    t = time.perf_counter()
    pl.scan_parquet(files, hive_partitioning=False).select(
        pl.col("values").list.sum().sum().alias("total"), pl.col("values").list.len().sum().alias("n")
    ).collect(engine="streaming")
    return time.perf_counter() - t


def parquet_files(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*.parquet"))}


def month_of_deliveries(args: argparse.Namespace) -> None:
    """``--month``: the store without the 2nd to the last day of ``--day``'s month, then one file a
    day, into A (deltas) and B (direct merges); then A compacted. Totals and each day's writes."""
    first = args.day.replace(day=1)
    days = [d for i in range(1, 31) if (d := first + dt.timedelta(days=i)).month == first.month]
    store, direct, paths, _ = set_up(args.data, args.work, days)
    env = {**os.environ, "BUA_SHARDS": str(args.shards), "BUA_DATABASE_URL": f"sqlite:///{args.work}/bua.db"}
    load = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {"delta": [], "direct": []}
    for path in paths:
        runs["delta"].append(
            timed(["ingest", "nem12", str(path)], {**env, "BUA_METER_STORE": str(store)}, store)
        )
        runs["direct"].append(timed(["ingest", "nem12", str(path)],
                                    {**env, "BUA_METER_STORE": str(direct), "BUA_STORE_MAX_DELTAS": "0"}, direct))  # fmt: skip
    compact = timed(["meter", "compact"], {**env, "BUA_METER_STORE": str(store)}, store)
    total = {
        k: {m: round(sum(r[m] for r in v), 1) for m in ("wall_s", "cpu_s", "mb_written")}
        for k, v in runs.items()
    }
    with sqlite3.connect(f"file:{args.data / 'bua.db'}?mode=ro", uri=True) as conn:  # never written
        accounts = conn.execute("SELECT count(*) FROM account").fetchone()[0]
    result = {
        "accounts": accounts, "mode": "month", "month": f"{first:%Y-%m}", "files": len(paths), "total": total,
        "delta_days_folded": [d.day for d, r in zip(days, runs["delta"], strict=True) if r["files_written"] > r["deltas_written"]],
        "delta_mb_by_day": [r["mb_written"] for r in runs["delta"]],
        "direct_mb_by_day": [r["mb_written"] for r in runs["direct"]],
        "compact_at_month_end": compact,
        "compacted_bytes_equal_direct": parquet_files(store) == parquet_files(direct),
        "machine": f"{os.cpu_count()} cpu, load average {load:.1f} before, {os.getloadavg()[0]:.1f} after",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }  # fmt: skip
    for k, v in result.items():
        print(f"{k:<28}  {v}")
    if not args.no_write:
        from results_file import save_run  # bench/, the script's own folder

        print(f"wrote {save_run('daily_delivery_month', result, keys=('accounts',))}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--day", type=dt.date.fromisoformat, default=dt.date(2026, 10, 31))
    parser.add_argument("--work", type=Path, default=Path("/tmp/bua-daily-delivery"))
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--nmis", type=int, default=0, help="renamed copies of NMIs added up to this many")
    parser.add_argument(
        "--month", action="store_true", help="every day of --day's month but the 1st, one file a day"
    )
    args = parser.parse_args()
    if args.month:
        return month_of_deliveries(args)
    store, direct, (path,), (delivered,) = set_up(args.data, args.work, [args.day], args.nmis)
    with sqlite3.connect(f"file:{args.data / 'bua.db'}?mode=ro", uri=True) as conn:  # never written
        accounts = conn.execute("SELECT count(*) FROM account").fetchone()[0]
    env = {**os.environ, "BUA_SHARDS": str(args.shards), "BUA_DATABASE_URL": f"sqlite:///{args.work}/bua.db",
           "BUA_OUTPUT_URL": str(args.work / "out")}  # fmt: skip
    load = os.getloadavg()[0]
    env_a, env_b = {**env, "BUA_METER_STORE": str(store)}, {**env, "BUA_METER_STORE": str(direct)}
    delta = timed(["ingest", "nem12", str(path)], env_a, store)
    delta_back = day_back(store, args.day, delivered, args.shards)
    compact = timed(["meter", "compact"], env_a, store)
    merged = timed(["ingest", "nem12", str(path)], {**env_b, "BUA_STORE_MAX_DELTAS": "0"}, direct)
    scans: dict[str, list[float]] = {"compacted": [], "direct": []}
    for order in (("compacted", "direct"), ("direct", "compacted"), ("compacted", "direct")):
        for name in order:  # alternately: the same bytes, so any difference is the machine's
            scans[name].append(bare_scan(store if name == "compacted" else direct))
    result = {
        "accounts": accounts, "day": args.day.isoformat(), "register_days": delivered.height,
        "nmis": delivered["nmi"].n_unique(), "file_mb": round(path.stat().st_size / 1e6, 1),
        "store_mb": round(sum(v[1] for v in snapshot(store).values()) / 1e6),
        "ingest_delta": delta, "compact": compact, "ingest_direct": merged,
        "day_restored_with_deltas": delta_back,
        "day_restored_compacted": day_back(store, args.day, delivered, args.shards),
        "compacted_bytes_equal_direct": parquet_files(store) == parquet_files(direct),
        "month_end_bare_scan_s": {k: [round(x, 2) for x in v] for k, v in scans.items()},
        "machine": f"{os.cpu_count()} cpu, load average {load:.1f} before, {os.getloadavg()[0]:.1f} after",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }  # fmt: skip
    width = max(len(k) for k in result)
    for k, v in result.items():
        print(f"{k:<{width}}  {v}")
    if not args.no_write:
        from results_file import save_run  # bench/, the script's own folder

        print(f"wrote {save_run('daily_delivery', result, keys=('accounts', 'nmis'))}")


if __name__ == "__main__":
    main()
