"""The weather the generator used, as the Bureau of Meteorology would publish it (SPEC §8).

Two stations per jurisdiction (the station numbers of tasks/adapters/weather.py's built-in table, so
`bua ingest weather` maps them without a station file). A station's daily mean is its region's
temperature (the one the sites' heating and cooling follow) plus the station's own bias and daily
noise (a station is not where the customers are); its minimum and maximum are that mean ∓ half a
diurnal range of 10 ± 2.5 °C; 1% of observations are missing (blank), as in the Bureau's files.
Files: ``weather/IDCJAC0010_{station}_1800_Data.csv`` (daily maximum) and ``IDCJAC0011_…`` (daily
minimum), in the Bureau's Climate Data Online column layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from tasks.generate.calendar import Calendar, rng_for
from tasks.generate.reference import JURISDICTIONS
from tasks.generate.variant import Variant

STATIONS = {
    "NSW": ("066062", "067105"),
    "VIC": ("086338", "087031"),
    "QLD": ("040913", "040842"),
    "SA": ("023000", "023034"),
}
MISSING_SHARE = 0.01
HEADER = "Product code,Bureau of Meteorology station number,Year,Month,Day,{el} temperature (Degree C),Days of accumulation of {low} temperature,Quality"


def station_observations(
    cal: Calendar, temp: np.ndarray, seed: int, variant: Variant | None = None
) -> pl.DataFrame:
    """station_id, jurisdiction, date, min_temp_c, max_temp_c (null when missing), one row per station-day."""
    v = variant or Variant()
    rng = rng_for(seed, "stations")
    frames = []
    for j_i, j in enumerate(JURISDICTIONS):
        for station in STATIONS[j]:
            n = cal.n_days
            mean = (
                temp[j_i]
                + v.station_bias_sd * rng.standard_normal()
                + v.station_noise * rng.standard_normal(n)
            )
            half = np.clip(rng.normal(10.0, 2.5, n), 3.0, 20.0) / 2
            lo, hi = np.round(mean - half, 1), np.round(mean + half, 1)
            miss_lo, miss_hi = rng.random(n) < MISSING_SHARE, rng.random(n) < MISSING_SHARE
            frames.append(
                pl.DataFrame(
                    {
                        "station_id": station,
                        "jurisdiction": j,
                        "date": pl.Series(cal.dates).cast(pl.Date),
                        "min_temp_c": np.where(miss_lo, np.nan, lo),
                        "max_temp_c": np.where(miss_hi, np.nan, hi),
                    }
                ).with_columns(pl.col("min_temp_c", "max_temp_c").fill_nan(None))
            )
    return pl.concat(frames)


def write_bom_files(obs: pl.DataFrame, folder: Path) -> int:
    """One IDCJAC0010 (max) and one IDCJAC0011 (min) CSV per station; returns the number of files."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for (station,), part in (
        obs.sort("station_id", "date").partition_by(["station_id"], as_dict=True, maintain_order=True).items()
    ):
        for code, col, el, low in (
            ("IDCJAC0010", "max_temp_c", "Maximum", "maximum"),
            ("IDCJAC0011", "min_temp_c", "Minimum", "minimum"),
        ):
            rows = part.select(
                pl.format(
                    "{},{},{},{},{},{},{},{}",
                    pl.lit(code),
                    pl.lit(station),
                    pl.col("date").dt.year(),
                    pl.col("date").dt.month().cast(pl.String).str.zfill(2),
                    pl.col("date").dt.day().cast(pl.String).str.zfill(2),
                    pl.col(col).round(1).cast(pl.String).fill_null(""),
                    pl.when(pl.col(col).is_null()).then(pl.lit("")).otherwise(pl.lit("1")),
                    pl.when(pl.col(col).is_null()).then(pl.lit("")).otherwise(pl.lit("Y")),
                )
            ).to_series()
            text = HEADER.format(el=el, low=low) + "\n" + "\n".join(rows.to_list()) + "\n"
            (folder / f"{code}_{station}_1800_Data.csv").write_text(text)
            n += 1
    return n
