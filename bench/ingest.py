"""Ingest benchmark: bua's NEM12 ingest against nemreader on one generated set.

Run: ``.venv/bin/python bench/ingest.py`` (defaults: 2,000 NMIs × 365 days of 30-minute E1 data
= 35,040,000 readings in 48 files: 12 months × 4 groups of 500 NMIs; ~2% of days carry an
estimated afternoon as V + 400 records). The files are written with bua's NEM12 writer from a
fixed seed (same seed → same bytes) into ``--data`` and reused when already there.

Each measurement runs in its own subprocess (the two readers alternate, ``--repeat`` times, and
each one's best time counts — the machine may be shared), so that its peak RSS (``ru_maxrss``) is
its own:
- bua: ``tasks.adapters.ingest.ingest_nem12`` of all files into a fresh local meter store (16 shards),
  i.e. read + validate + merge + write parquet; also on a quarter of the files, to show that
  peak memory does not grow with the number of files;
- nemreader 0.9.2: ``NEMFile(path).nem_data()`` (its cheapest full read, no DataFrame) on
  ``--nemreader-files`` files; its readings/s are measured there and the time for the whole set
  is extrapolated (stated in the table).
Results: bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CREATED = dt.datetime(2025, 1, 1)
START = dt.date(2024, 1, 1)


def _month_days(month: int, n_days: int) -> list[dt.date]:
    days = [START + dt.timedelta(days=i) for i in range(n_days)]
    return [d for d in days if d.month == month]


def generate(out: Path, n_nmis: int, n_days: int, groups: int, seed: int) -> list[Path]:
    """Write the NEM12 files (one per month × NMI group); reuse them if the manifest matches."""
    from tasks.adapters.nem12_write import nem12_text

    manifest = {"nmis": n_nmis, "days": n_days, "groups": groups, "seed": seed}
    mpath = out / "manifest.json"
    if mpath.exists() and json.loads(mpath.read_text()).get("params") == manifest:
        return [out / f for f in json.loads(mpath.read_text())["files"]]
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    nmis = np.array([f"6{i:09d}" for i in range(n_nmis)])
    files: list[Path] = []
    for month in sorted({(START + dt.timedelta(days=i)).month for i in range(n_days)}):
        days = _month_days(month, n_days)
        for g, chunk in enumerate(np.array_split(nmis, groups)):
            n = len(chunk) * len(days)
            values = np.round(rng.gamma(2.0, 0.2, size=(n, 48)), 3)
            estimated = rng.random(n) < 0.02
            quality = np.where(estimated, "A" * 30 + "E" * 18, "A" * 48)
            df = pl.DataFrame(
                {
                    "nmi": np.repeat(chunk, len(days)),
                    "suffix": "E1",
                    "read_date": np.tile(np.array(days, dtype="datetime64[D]"), len(chunk)),
                    "interval_minutes": 30,
                    "unit": "KWH",
                    "values": values,
                    "quality": quality,
                    "update_datetime": dt.datetime(2024, month, 1) + dt.timedelta(days=32),
                    "serial": "M" + pl.Series(np.repeat(chunk, len(days))).str.slice(5),
                }
            ).with_columns(pl.col("values").arr.to_list(), pl.col("read_date").cast(pl.Date))
            path = out / f"NEM12#BENCH{month:02d}G{g}#MDP1#RET1.csv"
            path.write_text(
                nem12_text(df, created=CREATED, from_participant="MDP1", to_participant="RET1"), newline=""
            )
            files.append(path)
    mpath.write_text(json.dumps({"params": manifest, "files": [f.name for f in files]}, indent=2))
    return files


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_bua(files: list[str], store: str) -> dict[str, float]:
    import pyarrow.parquet  # noqa: F401 - imported before the clock starts, like polars

    from tasks.adapters.ingest import ingest_nem12
    from tasks.settings import Settings

    t0, c0 = time.perf_counter(), _cpu_seconds()
    summary = ingest_nem12(files, Settings(meter_store=store, output_url=store + "-out", shards=16))
    seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    assert not summary.rejected, summary.lines()
    return {
        "readings": summary.readings,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mib": _peak_rss_mib(),
        "files": len(files),
        "partitions_written": summary.partitions_written,
        "runs_written": summary.runs_written,
    }


def run_nemreader(files: list[str]) -> dict[str, float]:
    from nemreader import NEMFile

    logging.disable(logging.CRITICAL)
    t0, c0 = time.perf_counter(), _cpu_seconds()
    readings = 0
    for f in files:
        data = NEMFile(f).nem_data()
        readings += sum(len(reads) for by_suffix in data.readings.values() for reads in by_suffix.values())
    seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    return {
        "readings": readings,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mib": _peak_rss_mib(),
        "files": len(files),
    }


def _child(kind: str, files: list[Path], store: str | None = None) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", kind, "--store", store or "", *map(str, files)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nmis", type=int, default=2000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--groups", type=int, default=4, help="NMI groups per month (files = months × groups)")
    ap.add_argument("--seed", type=int, default=20240101)
    ap.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "bua-bench-ingest"))
    ap.add_argument("--nemreader-files", type=int, default=2)
    ap.add_argument(
        "--repeat", type=int, default=2, help="runs of each reader (alternating); the best counts"
    )
    ap.add_argument("--child", choices=["bua", "nemreader"])
    ap.add_argument("--store", default="")
    ap.add_argument("files", nargs="*")
    args = ap.parse_args()
    if args.child == "bua":
        print(json.dumps(run_bua(args.files, args.store)))
        return
    if args.child == "nemreader":
        print(json.dumps(run_nemreader(args.files)))
        return

    load_at_start = os.getloadavg()
    t0 = time.perf_counter()
    files = generate(Path(args.data), args.nmis, args.days, args.groups, args.seed)
    gen_s = time.perf_counter() - t0
    total_bytes = sum(f.stat().st_size for f in files)
    # alternate the two readers and keep each one's best run: the machine is shared, and a
    # burst of someone else's work should not decide the ratio
    fulls, nrs = [], []
    with tempfile.TemporaryDirectory(prefix="bua-bench-store-") as tmp:
        quarter = _child("bua", files[: max(1, len(files) // 4)], f"{tmp}/quarter")
        for i in range(args.repeat):
            fulls.append(_child("bua", files, f"{tmp}/full{i}"))
            nrs.append(_child("nemreader", files[: args.nemreader_files]))
    full = min(fulls, key=lambda r: r["seconds"]) | {
        "peak_rss_mib": max(r["peak_rss_mib"] for r in fulls),
        "runs_seconds": [round(r["seconds"], 1) for r in fulls],
    }
    nr = min(nrs, key=lambda r: r["seconds"]) | {
        "peak_rss_mib": max(r["peak_rss_mib"] for r in nrs),
        "runs_seconds": [round(r["seconds"], 1) for r in nrs],
    }
    bua_rate = full["readings"] / full["seconds"]
    nr_rate = nr["readings"] / nr["seconds"]
    result = {
        "data": {
            "nmis": args.nmis,
            "days": args.days,
            "files": len(files),
            "bytes": total_bytes,
            "readings": full["readings"],
            "generate_seconds": round(gen_s, 1),
        },
        "bua": {**full, "readings_per_s": round(bua_rate)},
        "bua_quarter_of_files": {
            **quarter,
            "readings_per_s": round(quarter["readings"] / quarter["seconds"]),
        },
        "nemreader": {
            **nr,
            "readings_per_s": round(nr_rate),
            "extrapolated_seconds_for_all": round(full["readings"] / nr_rate, 1),
        },
        "speedup": round(bua_rate / nr_rate, 1),
        "speedup_per_cpu_second": round(
            (full["readings"] / full["cpu_seconds"]) / (nr["readings"] / nr["cpu_seconds"]), 1
        ),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 1) for x in load_at_start],
            "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
            "python": sys.version.split()[0],
            "polars": pl.__version__,
        },
    }
    out = ROOT / "bench" / "results" / "ingest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    _print_table(args, files, total_bytes, gen_s, full, quarter, nr, result, out, load_at_start)


def _print_table(
    args: argparse.Namespace, files: list[Path], total_bytes: int, gen_s: float, full: dict, quarter: dict,
    nr: dict, result: dict, out: Path, load_at_start: tuple[float, float, float],
) -> None:  # fmt: skip
    bua_rate = full["readings"] / full["seconds"]
    nr_rate = nr["readings"] / nr["seconds"]
    print(
        f"data: {args.nmis} NMIs × {args.days} days × 48 = {full['readings']:,} readings in {len(files)} files ({total_bytes / 2**20:,.0f} MiB), generated in {gen_s:.1f} s"
    )
    print(
        f"{'reader':<26} {'files':>5} {'readings':>12} {'seconds':>9} {'readings/s':>12} {'CPU s':>7} {'readings/CPU-s':>15} {'peak RSS MiB':>13}"
    )
    rows = [
        ("bua ingest (all files)", full),
        ("bua ingest (1/4 of files)", quarter),
        ("nemreader nem_data()", nr),
    ]
    for label, r in rows:
        print(
            f"{label:<26} {r['files']:>5} {r['readings']:>12,} {r['seconds']:>9.1f} {r['readings'] / r['seconds']:>12,.0f} "
            f"{r['cpu_seconds']:>7.1f} {r['readings'] / r['cpu_seconds']:>15,.0f} {r['peak_rss_mib']:>13,.0f}"
        )
    print(
        f"nemreader on all files (extrapolated from {nr['files']} files): {full['readings'] / nr_rate:,.0f} s"
    )
    print(
        f"speed-up: {bua_rate / nr_rate:.1f}x wall-clock, {result['speedup_per_cpu_second']}x per CPU-second"
        f" (load average {load_at_start[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} CPUs)  ->  {out.relative_to(ROOT)}"
    )


if __name__ == "__main__":
    main()
