"""Macro (daily) profiles for basic registers (SPEC §4.2).

Electricity: M(segment, day) = the daily total of the fixed segment profile P (kWh per register
per day), so a register scalar of 1 means "an average register of the segment". For the
seasonal basic method M is split into components: a base load, the segment's 10th percentile
of M per day type (weekday / weekend) over the range — as the regressor B, relative to its mean —
and a weather-sensitive part W(day) = max(0, M − base), itself split by season into
Wh = W·h_−1(day) (cold season, heating) and W − Wh (warm season, cooling).
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
    """Add base (10th percentile per key and day type, weekday / weekend), b = base relative to
    its mean (the day-type shape of the base load), w = max(0, daily − base) and its cold-season
    part wh = w·h_−1(day) (the rest, w − wh, is the warm-season part)."""
    weekend = pl.col("read_date").dt.weekday() >= 6
    return (
        daily.with_columns(base=pl.col("daily").quantile(BASE_QUANTILE).over(key, weekend))
        .with_columns(
            w=(pl.col("daily") - pl.col("base")).clip(lower_bound=0.0),
            b=pl.col("base") / pl.col("base").mean().over(key),
        )
        .with_columns(wh=pl.col("w") * heating_index(-1.0), b=pl.col("b").fill_nan(1.0).fill_null(1.0))
    )


def heating_index(theta: float, col: str = "read_date") -> pl.Expr:
    """h_θ(day) in [0, 1]: max(0, cos(2π(doy − 196)/365.25) − θ) / (1 − θ); 1 in mid-July.

    θ = −1 is a plain annual cosine; a larger θ gives a heating season with no heating at all in
    the warm months (like heating degree days against a base temperature)."""
    doy = pl.col(col).dt.ordinal_day().cast(pl.Float64)
    c = (2 * math.pi * (doy - HEATING_PEAK_DOY) / 365.25).cos()
    return ((c - theta).clip(lower_bound=0.0) / (1.0 - theta)).alias("h")


def _drivers(
    jurisdictions: Sequence[str], lo: dt.date, hi: dt.date, macro: pl.DataFrame | None
) -> pl.DataFrame:
    """Candidate heating drivers per jurisdiction and day: driver, jurisdiction, read_date, h, cum_h.

    ``THETA=θ``: the climatological index h_θ (every day of lo … hi). ``ELECTRIC``: the weather
    part W of the jurisdiction's electricity parent profile ``*|J|CONSUMPTION`` on the days it
    exists, gated by h_−1 so that summer cooling does not count as heating, scaled to peak 1. It
    carries the actual weather of each day (a cold October shows in it), which a climatological
    curve cannot.
    """
    days = pl.DataFrame({"read_date": pl.date_range(lo, hi, "1d", eager=True)})
    jur = pl.DataFrame({"jurisdiction": sorted(set(jurisdictions))})
    parts = [
        jur.join(days, how="cross").with_columns(heating_index(t), driver=pl.lit(f"THETA={t:+.1f}"))
        for t in THETAS
    ]
    if macro is not None and macro.height:
        elec = (
            macro.filter(
                pl.col("segment").str.starts_with("*|") & pl.col("segment").str.ends_with("|CONSUMPTION")
            )
            .with_columns(jurisdiction=pl.col("segment").str.split("|").list.get(1))
            .filter(pl.col("jurisdiction").is_in(jur["jurisdiction"].implode()))
            .join(days, on="read_date", how="semi")
            .with_columns(heating_index(-1.0).alias("_g"))
            .with_columns(h=pl.col("w") * pl.col("_g"))
            .with_columns(h=pl.col("h") / pl.col("h").max().over("jurisdiction"), driver=pl.lit("ELECTRIC"))
            .filter(pl.col("h").is_not_nan() & pl.col("h").is_not_null())
            .select("jurisdiction", "read_date", "h", "driver")
        )
        parts.append(elec.select(parts[0].columns))
    return (
        pl.concat(parts)
        .sort("driver", "jurisdiction", "read_date")
        .with_columns(cum_h=pl.col("h").cum_sum().over("driver", "jurisdiction"))
    )


def _fit_drivers(gas_pairs: pl.DataFrame, drivers: pl.DataFrame) -> pl.DataFrame:
    """Weighted least squares of normalised pair rates on the pairs' mean driver, per (driver,
    jurisdiction); mse = weighted mean squared residual (comparable across drivers)."""
    cum = drivers.select("driver", "jurisdiction", "read_date", "cum_h", "h")
    pairs = (
        gas_pairs.filter((pl.col("days") > 0) & pl.col("consumption").is_not_null())
        .with_columns(
            reg_mean=pl.col("consumption").sum().over("meter_register_id")
            / pl.col("days").sum().over("meter_register_id"),
            n_reg=pl.len().over("meter_register_id"),
            _s=pl.col("start"),
            _e=pl.col("end") - pl.duration(days=1),
        )
        .filter((pl.col("n_reg") >= 2) & (pl.col("reg_mean") > 0))
        .join(cum.rename({"read_date": "_s", "cum_h": "_cs", "h": "_hs"}), on=["jurisdiction", "_s"])
        .join(
            cum.rename({"read_date": "_e", "cum_h": "_ce", "h": "_he"}), on=["driver", "jurisdiction", "_e"]
        )
        .with_columns(
            x=(pl.col("_ce") - pl.col("_cs") + pl.col("_hs")) / pl.col("days"),
            y=pl.col("consumption") / pl.col("days") / pl.col("reg_mean"),
            wt=pl.col("days").cast(pl.Float64),
        )
    )
    fit = pairs.group_by("driver", "jurisdiction").agg(
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
        mse=(pl.col("syy") - pl.col("a") * pl.col("sy") - pl.col("b") * pl.col("sxy")) / pl.col("s"),
        _good=good.fill_null(False),
    ).select("driver", "jurisdiction", "a", "b", "level", "pairs", "mse", "_good")


def gas_shape(
    gas_pairs: pl.DataFrame,
    jurisdictions: Sequence[str],
    date_from: dt.date,
    date_to: dt.date,
    macro: pl.DataFrame | None = None,
    electric_driver: bool = False,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Gas macro profile per jurisdiction and its fit.

    ``gas_pairs``: meter_register_id, jurisdiction, start, end (exclusive), days, consumption.
    ``macro`` with ``electric_driver``: the electricity macro profile adds the ELECTRIC driver
    candidate. Off by default: on the accuracy benchmark it fitted the pairs better but predicted
    the unbilled weeks worse (docs/ACCURACY.md).
    Returns (gas_macro: jurisdiction, read_date, daily, base, w; gas_fit: jurisdiction, driver,
    a, b, level, pairs, mse, source FIT | FALLBACK).
    """
    lo = min([date_from, *gas_pairs["start"].to_list()]) if gas_pairs.height else date_from
    hi = max([date_to, *gas_pairs["end"].to_list()]) if gas_pairs.height else date_to
    drivers = _drivers(jurisdictions, lo, hi, macro if electric_driver else None)
    candidates = _fit_drivers(gas_pairs, drivers)
    best = (
        candidates.filter("_good").sort("jurisdiction", "mse", "driver").unique("jurisdiction", keep="first")
    )
    overall = (
        gas_pairs.select(pl.col("consumption").sum() / pl.col("days").sum()).item()
        if gas_pairs.height
        else None
    )
    levels = (
        candidates.sort("pairs", descending=True)
        .unique("jurisdiction", keep="first")
        .select("jurisdiction", pl.col("level").alias("_lvl"), pl.col("pairs").alias("_n"))
    )
    fallback = f"THETA={FALLBACK_THETA:+.1f}"
    fits = (
        pl.DataFrame({"jurisdiction": sorted(set(jurisdictions))})
        .join(best.drop("_good", "level", "pairs"), on="jurisdiction", how="left")
        .join(levels, on="jurisdiction", how="left")
        .with_columns(
            source=pl.when(pl.col("a").is_not_null()).then(pl.lit("FIT")).otherwise(pl.lit("FALLBACK")),
            driver=pl.col("driver").fill_null(fallback),
            a=pl.col("a").fill_null(FALLBACK_A),
            b=pl.col("b").fill_null(FALLBACK_B),
            level=pl.coalesce(pl.col("_lvl"), pl.lit(overall, dtype=pl.Float64), pl.lit(1.0)),
            pairs=pl.col("_n").fill_null(0),
        )
        .select("jurisdiction", "driver", "a", "b", "level", "pairs", "mse", "source")
    )
    in_range = drivers.filter(pl.col("read_date").is_between(date_from, date_to))
    chosen = in_range.join(fits, on=["jurisdiction", "driver"])
    # the ELECTRIC driver may not reach every day of the range: climatological fallback there
    clim = in_range.filter(pl.col("driver") == fallback).select(
        "jurisdiction", "read_date", pl.col("h").alias("_h0")
    )
    daily = (
        fits.select("jurisdiction", "a", "b", "level")
        .join(clim, on="jurisdiction")
        .join(chosen.select("jurisdiction", "read_date", "h"), on=["jurisdiction", "read_date"], how="left")
        .with_columns(h=pl.coalesce("h", "_h0"))
        .with_columns(
            scale=pl.col("level") / (pl.col("a") + pl.col("b") * pl.col("h").mean().over("jurisdiction"))
        )
        .select(
            "jurisdiction",
            "read_date",
            (pl.col("scale") * (pl.col("a") + pl.col("b") * pl.col("h"))).alias("daily"),
        )
        .sort("jurisdiction", "read_date")
    )
    return with_components(daily, "jurisdiction"), fits
