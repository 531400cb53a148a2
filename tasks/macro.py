"""Macro (daily) profiles for basic registers (SPEC §4.2).

Electricity: M(segment, day) = the daily total of the fixed segment profile P (kWh per register
per day), so a register scalar of 1 means "an average register of the segment". For the
seasonal basic method M is split in two components: a base load, the segment's 10th percentile
of M over the range, and a weather-sensitive part W(day) = max(0, M − base).
Gas has no interval population, so its shape is fitted per jurisdiction from the gas read pairs:
daily = level × (a + b·h_θ(day)) / (a + b·mean h_θ), with the heating index h_θ(day) =
max(0, cos(2π(doy − 196)/365.25) − θ) / (1 − θ) (peak mid-July; θ > −1 leaves the warm months
without heating, as heating degree days do). For each θ of a small grid, a and b come from a
day-weighted least squares of each pair's daily average, normalised by its register's mean daily
consumption, on the pair's mean h_θ; the θ with the smallest residual wins. level is the
jurisdiction's mean daily consumption per register. Fallback (fewer than ``MIN_GAS_PAIRS`` usable
pairs, or no fit with both components ≥ 0): θ = −1, a = 1, b = 2 (winter three times summer,
typical of southern Australian residential gas) and the portfolio's gas level, or 1.0 when there
are no gas reads at all.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import polars as pl

MIN_GAS_PAIRS = 30
BASE_QUANTILE = 0.10
FALLBACK_A, FALLBACK_B, FALLBACK_THETA = 1.0, 2.0, -1.0
THETAS = (-1.0, -0.6, -0.3, 0.0, 0.3, 0.6)
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


def heating_index(theta: float, col: str = "read_date") -> pl.Expr:
    """h_θ(day) in [0, 1]: max(0, cos(2π(doy − 196)/365.25) − θ) / (1 − θ); 1 in mid-July.

    θ = −1 is a plain annual cosine; a larger θ gives a heating season with no heating at all in
    the warm months (like heating degree days against a base temperature)."""
    doy = pl.col(col).dt.ordinal_day().cast(pl.Float64)
    c = (2 * math.pi * (doy - HEATING_PEAK_DOY) / 365.25).cos()
    return ((c - theta).clip(lower_bound=0.0) / (1.0 - theta)).alias("h")


def _calendar(date_from: dt.date, date_to: dt.date, theta: float) -> pl.DataFrame:
    days = pl.DataFrame({"read_date": pl.date_range(date_from, date_to, "1d", eager=True)})
    return days.with_columns(heating_index(theta)).with_columns(cum_h=pl.col("h").cum_sum())


def _mean_h(theta: float) -> float:
    year = _calendar(dt.date(2001, 1, 1), dt.date(2001, 12, 31), theta)
    return float(year["h"].mean())  # type: ignore[arg-type]


def _fit_theta(gas_pairs: pl.DataFrame, lo: dt.date, hi: dt.date, theta: float) -> pl.DataFrame:
    """Weighted least squares of normalised pair rates on the pairs' mean h_θ, per jurisdiction."""
    cum = _calendar(lo - dt.timedelta(days=1), hi, theta).select("read_date", "cum_h")
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
        syy=(pl.col("wt") * pl.col("y") ** 2).sum(),
        pairs=pl.len(),
        level=pl.col("consumption").sum() / pl.col("days").sum(),
    )
    det = pl.col("s") * pl.col("sxx") - pl.col("sx") ** 2
    fit = fit.with_columns(b=(pl.col("s") * pl.col("sxy") - pl.col("sx") * pl.col("sy")) / det).with_columns(
        a=(pl.col("sy") - pl.col("b") * pl.col("sx")) / pl.col("s")
    )
    good = (pl.col("pairs") >= MIN_GAS_PAIRS) & (pl.col("a") >= 0) & (pl.col("b") >= 0) & (det > 0)
    return fit.with_columns(
        sse=pl.col("syy") - pl.col("a") * pl.col("sy") - pl.col("b") * pl.col("sxy"),
        theta=pl.lit(theta),
        _good=good.fill_null(False),
    ).select("jurisdiction", "theta", "a", "b", "level", "pairs", "sse", "_good")


def gas_shape(
    gas_pairs: pl.DataFrame, jurisdictions: Sequence[str], date_from: dt.date, date_to: dt.date
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Gas macro profile per jurisdiction and its fit.

    ``gas_pairs``: meter_register_id, jurisdiction, start, end (exclusive), days, consumption.
    Returns (gas_macro: jurisdiction, read_date, daily, base, w; gas_fit: jurisdiction, theta, a,
    b, level, pairs, source FIT | FALLBACK).
    """
    lo = min([date_from, *gas_pairs["start"].to_list()]) if gas_pairs.height else date_from
    hi = max([date_to, *gas_pairs["end"].to_list()]) if gas_pairs.height else date_to
    candidates = pl.concat([_fit_theta(gas_pairs, lo, hi, t) for t in THETAS])
    best = candidates.filter("_good").sort("jurisdiction", "sse").unique("jurisdiction", keep="first")
    overall = (
        gas_pairs.select(pl.col("consumption").sum() / pl.col("days").sum()).item()
        if gas_pairs.height
        else None
    )
    levels = candidates.unique("jurisdiction").select(
        "jurisdiction", pl.col("level").alias("_lvl"), pl.col("pairs").alias("_n")
    )
    fits = (
        pl.DataFrame({"jurisdiction": sorted(set(jurisdictions))})
        .join(best.drop("_good", "sse"), on="jurisdiction", how="left")
        .join(levels, on="jurisdiction", how="left")
        .with_columns(
            source=pl.when(pl.col("a").is_not_null()).then(pl.lit("FIT")).otherwise(pl.lit("FALLBACK")),
            theta=pl.col("theta").fill_null(FALLBACK_THETA),
            a=pl.col("a").fill_null(FALLBACK_A),
            b=pl.col("b").fill_null(FALLBACK_B),
            level=pl.coalesce(pl.col("_lvl"), pl.lit(overall, dtype=pl.Float64), pl.lit(1.0)),
            pairs=pl.col("_n").fill_null(0),
        )
        .select("jurisdiction", "theta", "a", "b", "level", "pairs", "source")
    )
    parts = []
    for row in fits.iter_rows(named=True):  # one row per jurisdiction
        days = _calendar(date_from, date_to, row["theta"]).select("read_date", "h")
        scale = row["level"] / (row["a"] + row["b"] * _mean_h(row["theta"]))
        parts.append(
            days.select(
                pl.lit(row["jurisdiction"]).alias("jurisdiction"),
                "read_date",
                (scale * (row["a"] + row["b"] * pl.col("h"))).alias("daily"),
            )
        )
    schema = {"jurisdiction": pl.Utf8, "read_date": pl.Date, "daily": pl.Float64}
    daily = pl.concat(parts) if parts else pl.DataFrame(schema=schema)
    return with_components(daily, "jurisdiction"), fits
