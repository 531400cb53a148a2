"""Macro (daily) profiles for basic registers (SPEC §4.2).

Electricity: M(segment, day) = the daily total of the fixed segment profile P (kWh per register
per day), so a register scalar of 1 means "an average register of the segment". For the
seasonal basic method M is split in two components: a base load, the segment's 10th percentile
of M over the range, and a weather-sensitive part W(day) = max(0, M − base).
Gas has no interval population, so its shape is fitted per jurisdiction from the gas read pairs:
daily = level × (a + b·h(day)) / (a + b/2), with the heating index h(day) = (1 + cos(2π(doy −
196)/365.25)) / 2 (1 in mid-July, 0 in mid-January). a and b come from a day-weighted least
squares of each pair's daily average, normalised by its register's mean daily consumption, on the
pair's mean h; level is the jurisdiction's mean daily consumption per register. Fallback (fewer
than ``MIN_GAS_PAIRS`` usable pairs, or a fit with a negative component): a = 1, b = 2 (winter
three times summer, typical of southern Australian residential gas) and the portfolio's gas
level, or 1.0 when there are no gas reads at all.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import polars as pl

MIN_GAS_PAIRS = 30
BASE_QUANTILE = 0.10
FALLBACK_A, FALLBACK_B = 1.0, 2.0
HEATING_PEAK_DOY = 196


def macro_profile(fixed: pl.DataFrame) -> pl.DataFrame:
    """segment, read_date, daily (Σ of the fixed half-hourly profile), base, w (weather part)."""
    daily = fixed.select("segment", "read_date", pl.col("profile").list.sum().alias("daily"))
    return with_components(daily, "segment")


def with_components(daily: pl.DataFrame, key: str) -> pl.DataFrame:
    """Add base (10th percentile per key) and w = max(0, daily − base)."""
    return daily.with_columns(base=pl.col("daily").quantile(BASE_QUANTILE).over(key)).with_columns(
        w=(pl.col("daily") - pl.col("base")).clip(lower_bound=0.0)
    )


def heating_index(col: str = "read_date") -> pl.Expr:
    """h(day) in [0, 1]: 1 in mid-July (southern winter), 0 in mid-January."""
    doy = pl.col(col).dt.ordinal_day().cast(pl.Float64)
    return ((1.0 + (2 * math.pi * (doy - HEATING_PEAK_DOY) / 365.25).cos()) / 2.0).alias("h")


def _calendar(date_from: dt.date, date_to: dt.date) -> pl.DataFrame:
    days = pl.DataFrame({"read_date": pl.date_range(date_from, date_to, "1d", eager=True)})
    return days.with_columns(heating_index()).with_columns(cum_h=pl.col("h").cum_sum())


def gas_shape(
    gas_pairs: pl.DataFrame, jurisdictions: Sequence[str], date_from: dt.date, date_to: dt.date
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Gas macro profile per jurisdiction and its fit.

    ``gas_pairs``: meter_register_id, jurisdiction, start, end (exclusive), days, consumption.
    Returns (gas_macro: jurisdiction, read_date, daily, base, w; gas_fit: jurisdiction, a, b,
    level, pairs, source FIT | FALLBACK).
    """
    lo = min([date_from, *gas_pairs["start"].to_list()]) if gas_pairs.height else date_from
    hi = max([date_to, *gas_pairs["end"].to_list()]) if gas_pairs.height else date_to
    cal = _calendar(lo - dt.timedelta(days=1), hi)
    cum = cal.select("read_date", "cum_h")
    pairs = (
        gas_pairs.filter((pl.col("days") > 0) & pl.col("consumption").is_not_null())
        .with_columns(_s=pl.col("start") - pl.duration(days=1), _e=pl.col("end") - pl.duration(days=1))
        .join(cum.rename({"read_date": "_s", "cum_h": "_cs"}), on="_s")
        .join(cum.rename({"read_date": "_e", "cum_h": "_ce"}), on="_e")
        .with_columns(
            x=(pl.col("_ce") - pl.col("_cs")) / pl.col("days"), rate=pl.col("consumption") / pl.col("days")
        )
        .with_columns(
            reg_mean=pl.col("consumption").sum().over("meter_register_id")
            / pl.col("days").sum().over("meter_register_id"),
            n_reg=pl.len().over("meter_register_id"),
        )
        .filter((pl.col("n_reg") >= 2) & (pl.col("reg_mean") > 0))
        .with_columns(y=pl.col("rate") / pl.col("reg_mean"), wt=pl.col("days").cast(pl.Float64))
    )
    fit = pairs.group_by("jurisdiction").agg(
        s=pl.col("wt").sum(),
        sx=(pl.col("wt") * pl.col("x")).sum(),
        sy=(pl.col("wt") * pl.col("y")).sum(),
        sxx=(pl.col("wt") * pl.col("x") ** 2).sum(),
        sxy=(pl.col("wt") * pl.col("x") * pl.col("y")).sum(),
        pairs=pl.len(),
        level=pl.col("consumption").sum() / pl.col("days").sum(),
    )
    det = pl.col("s") * pl.col("sxx") - pl.col("sx") ** 2
    fit = fit.with_columns(b=(pl.col("s") * pl.col("sxy") - pl.col("sx") * pl.col("sy")) / det).with_columns(
        a=(pl.col("sy") - pl.col("b") * pl.col("sx")) / pl.col("s")
    )
    overall = (
        gas_pairs.select(pl.col("consumption").sum() / pl.col("days").sum()).item()
        if gas_pairs.height
        else None
    )
    good = (pl.col("pairs") >= MIN_GAS_PAIRS) & (pl.col("a") >= 0) & (pl.col("b") >= 0) & (det > 0)
    fits = (
        pl.DataFrame({"jurisdiction": sorted(set(jurisdictions))})
        .join(
            fit.with_columns(_good=good).select("jurisdiction", "a", "b", "level", "pairs", "_good"),
            on="jurisdiction",
            how="left",
        )
        .with_columns(pairs=pl.col("pairs").fill_null(0), _good=pl.col("_good").fill_null(False))
        .with_columns(
            source=pl.when("_good").then(pl.lit("FIT")).otherwise(pl.lit("FALLBACK")),
            a=pl.when("_good").then(pl.col("a")).otherwise(pl.lit(FALLBACK_A)),
            b=pl.when("_good").then(pl.col("b")).otherwise(pl.lit(FALLBACK_B)),
            level=pl.coalesce(pl.col("level"), pl.lit(overall, dtype=pl.Float64), pl.lit(1.0)),
        )
        .drop("_good")
    )
    days = _calendar(date_from, date_to).select("read_date", "h")
    daily = fits.join(days, how="cross").select(
        "jurisdiction",
        "read_date",
        (pl.col("level") * (pl.col("a") + pl.col("b") * pl.col("h")) / (pl.col("a") + pl.col("b") / 2)).alias(
            "daily"
        ),
    )
    return with_components(daily, "jurisdiction"), fits
