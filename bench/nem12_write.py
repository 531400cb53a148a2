"""Measure bua's vectorised NEM12 writer against nemwriter on the same register-days.

Run: ``.venv/bin/python bench/nem12_write.py [--nmis 500] [--days 365]``. nemwriter runs on a
subset (``--nemwriter-nmis``) because it builds Python tuples per reading; its readings/s are
measured on that subset and reported as such. Results go to bench/results/nem12_write.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from tasks.adapters.nem12_write import nem12_text

CREATED = dt.datetime(2025, 1, 1)


def register_days(n_nmis: int, n_days: int, seed: int = 7) -> pl.DataFrame:
    """n_nmis × n_days of 30-minute E1 data; every 10th day has an estimated afternoon (V + 400)."""
    rng = np.random.default_rng(seed)
    n = n_nmis * n_days
    values = np.round(rng.gamma(2.0, 0.25, size=(n, 48)), 3)
    quality = np.where(np.arange(n) % 10 == 0, "A" * 24 + "E" * 24, "A" * 48)
    return pl.DataFrame(
        {
            "nmi": np.repeat([f"BENCH{i:05d}" for i in range(n_nmis)], n_days),
            "suffix": "E1",
            "read_date": np.tile(np.arange(n_days), n_nmis).astype("timedelta64[D]")
            + np.datetime64("2024-01-01"),
            "interval_minutes": 30,
            "unit": "KWH",
            "values": values,
            "quality": quality,
        }
    ).with_columns(pl.col("read_date").cast(pl.Date), pl.col("values").arr.to_list())


def time_bua(df: pl.DataFrame) -> float:
    t0 = time.perf_counter()
    text = nem12_text(df, created=CREATED)
    Path(tempfile.gettempdir(), "bench-bua.csv").write_text(text)
    return time.perf_counter() - t0


def time_nemwriter(df: pl.DataFrame) -> float:
    from nemwriter import NEM12

    t0 = time.perf_counter()
    m = NEM12(to_participant="BUA", from_participant="BUA")
    for (nmi,), part in df.group_by(["nmi"], maintain_order=True):
        readings = []
        for day, vals, qual in part.select("read_date", "values", "quality").iter_rows():
            start = dt.datetime.combine(day, dt.time())
            for i, v in enumerate(vals):
                readings.append((start + dt.timedelta(minutes=30 * (i + 1)), v, qual[i]))
        m.add_readings(nmi=nmi, nmi_configuration="E1", nmi_suffix="E1", uom="kWh", readings=readings)
    m.output_csv(str(Path(tempfile.gettempdir(), "bench-nemwriter.csv")))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nmis", type=int, default=500)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--nemwriter-nmis", type=int, default=25)
    args = ap.parse_args()
    df = register_days(args.nmis, args.days)
    sub = df.filter(
        pl.col("nmi").is_in(df["nmi"].unique(maintain_order=True).head(args.nemwriter_nmis).implode())
    )
    bua_s = time_bua(df)
    nw_s = time_nemwriter(sub)
    bua_rate = df.height * 48 / bua_s
    nw_rate = sub.height * 48 / nw_s
    result = {
        "bua": {"readings": df.height * 48, "seconds": round(bua_s, 3), "readings_per_s": round(bua_rate)},
        "nemwriter": {
            "readings": sub.height * 48,
            "seconds": round(nw_s, 3),
            "readings_per_s": round(nw_rate),
        },
        "speedup": round(bua_rate / nw_rate, 1),
    }
    Path("bench/results").mkdir(parents=True, exist_ok=True)
    Path("bench/results/nem12_write.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'writer':<10} {'readings':>12} {'seconds':>9} {'readings/s':>12}")
    for k in ("bua", "nemwriter"):
        r = result[k]
        print(f"{k:<10} {r['readings']:>12,} {r['seconds']:>9.2f} {r['readings_per_s']:>12,}")
    print(f"speed-up {result['speedup']}x")


if __name__ == "__main__":
    main()
