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
jurisdiction's mean daily consumption per register. Candidates besides h_θ: the smooth indices
h_θ,s (:func:`smooth_heating_index`); ``ELECTRIC_HEATING`` when the electricity fixed profile is
given — the interval population's measured heating per day (:mod:`tasks.domain.electric_heating`),
days before the interval data taking the climatological curve that follows it best
(:func:`_with_climate_fill`); ``HDD=b`` when daily temperatures are given. Optionally
(``weather=True``, off by default: it made the accuracy benchmark worse) monthly actual-weather
factors of the chosen index (:mod:`tasks.domain.gas_weather`).
Fallback (fewer than ``MIN_GAS_PAIRS`` usable pairs, or no fit with both components ≥ 0):
θ = −1, a = 1, b = 2 (winter three times summer, typical of southern Australian residential
gas) and the portfolio's gas level, or 1.0 when there are no gas reads at all.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from tasks.domain.electric_heating import HEATING_PEAK_DOY as HEATING_PEAK_DOY
from tasks.domain.electric_heating import electric_heating as electric_heating
from tasks.domain.gas_weather import WEATHER_PERIOD
from tasks.domain.gas_weather import weather_factors as weather_factors
from tasks.domain.sums import group_sums

MIN_GAS_PAIRS = 30
BASE_QUANTILE = 0.10
FALLBACK_A, FALLBACK_B, FALLBACK_THETA = 1.0, 2.0, -1.0
FALLBACK_DRIVER = f"THETA={FALLBACK_THETA:+.1f}"  # the climatological index of the fallback
THETAS = (-1.0, -0.6, -0.3, 0.0, 0.3, 0.6)
# smooth heating indices (expected degree days under day-to-day weather noise): θ and spread grids
SMOOTH_THETAS = (-0.6, -0.3, 0.0, 0.3, 0.6)
SPREADS = (0.25, 0.5, 0.75)
ELECTRIC_PREFERENCE = 0.10  # ELECTRIC_HEATING (or HDD=b) is chosen when its mse is within 10% of the best
GAS_HDD_BPS = (14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0)  # balance points of the HDD=b gas drivers (°C)


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


def _erf(x: np.ndarray) -> np.ndarray:
    """erf by Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7); numpy has none."""
    a1, a2, a3, a4, a5, p = 0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429, 0.3275911
    z = np.abs(x)
    t = 1.0 / (1.0 + p * z)
    y = 1.0 - ((((a5 * t + a4) * t + a3) * t + a2) * t + a1) * t * np.exp(-z * z)
    return np.sign(x) * y


def smooth_heating_index(theta: float, spread: float, doy: np.ndarray) -> np.ndarray:
    """h_θ,s(day): the expected heating degree days of a day whose temperature is its climatological
    mean plus normal noise, in units of the annual amplitude, scaled to 1 in mid-July.

    With c = cos(2π(doy − 196)/365.25), z = (c − θ)/s: h ∝ s·(z·Φ(z) + φ(z)) — E[max(0, X)] for
    X ~ N(c − θ, s²) (the normal-distribution degree-day method of Thom, Erbs et al.). s = σ of
    daily temperature ÷ amplitude of the annual cycle (about 0.5 in southern Australia). As s → 0
    it is h_θ; with s > 0 the shoulder months keep the heating that cold spells bring (an
    October with a mean just above the base temperature still has heating days)."""
    c = np.cos(2 * np.pi * (doy.astype(np.float64) - HEATING_PEAK_DOY) / 365.25)

    def expected(cc: np.ndarray) -> np.ndarray:
        z = (cc - theta) / spread
        return spread * (
            z * 0.5 * (1.0 + _erf(z / math.sqrt(2.0))) + np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        )

    return expected(c) / expected(np.array([1.0]))[0]


def _drivers(
    jurisdictions: Sequence[str],
    lo: dt.date,
    hi: dt.date,
    macro: pl.DataFrame | None,
    fixed: pl.DataFrame | None = None,
    temperature: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Candidate heating drivers per jurisdiction and day: driver, jurisdiction, read_date, h, cum_h.

    ``HDD=b``: heating degree days max(0, b − T) of the jurisdiction's daily mean temperature
    (``temperature``: jurisdiction, read_date, temp from weather_daily) at the balance points of
    ``GAS_HDD_BPS``, scaled to peak 1; days without observations take the climatological curve that
    follows it best (as ELECTRIC_HEATING).

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
    doy = days["read_date"].dt.ordinal_day().to_numpy()
    parts += [
        jur.join(
            days.with_columns(pl.Series("h", smooth_heating_index(t, sp, doy))), how="cross"
        ).with_columns(driver=pl.lit(f"THETA={t:+.1f},SPREAD={sp:.2f}"))
        for t in SMOOTH_THETAS
        for sp in SPREADS
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
    if fixed is not None and fixed.height:
        elec = (
            electric_heating(fixed)
            .filter(pl.col("jurisdiction").is_in(jur["jurisdiction"].implode()))
            .join(days, on="read_date", how="semi")
        )
        if elec.height:
            parts.append(
                _with_climate_fill(elec, pl.concat(parts)).with_columns(driver=pl.lit("ELECTRIC_HEATING"))
            )
    if temperature is not None and temperature.height:
        from tasks.domain.basic_weather import fill_temperature

        temp = fill_temperature(temperature).filter(
            pl.col("jurisdiction").is_in(jur["jurisdiction"].implode())
        )
        temp = temp.join(days, on="read_date", how="semi")
        curves = pl.concat(parts)
        for b in GAS_HDD_BPS:
            hdd = temp.select(
                "jurisdiction", "read_date", (pl.lit(b) - pl.col("temp")).clip(lower_bound=0.0).alias("h")
            ).with_columns(h=pl.col("h") / pl.col("h").max().over("jurisdiction"))
            hdd = hdd.filter(pl.col("h").is_finite())
            if hdd.height:
                parts.append(_with_climate_fill(hdd, curves).with_columns(driver=pl.lit(f"HDD={b:g}")))
    return (
        pl.concat(parts)
        .sort("driver", "jurisdiction", "read_date")
        .with_columns(cum_h=pl.col("h").cum_sum().over("driver", "jurisdiction"))
    )


def _with_climate_fill(elec: pl.DataFrame, curves: pl.DataFrame) -> pl.DataFrame:
    """The electricity heating index (jurisdiction, read_date, h) on every day of ``curves``: the
    days it does not reach (before the interval data starts, days filled from other days) take
    α + β·h of the climatological curve that follows it best (least squares of h on each curve of
    ``curves`` over the days both have, smallest residual per jurisdiction), clipped at 0. Without
    it those days would take a curve on another scale (peak 1 in mid-July, where the electric
    index peaks at 1 on the coldest day), and the gas pairs that cover them would be misfitted."""
    both = curves.join(elec.rename({"h": "e"}), on=["jurisdiction", "read_date"])
    sums = group_sums(
        both,
        ["jurisdiction", "driver"],
        ["read_date"],
        n=pl.lit(1.0),
        sx=pl.col("h"),
        sy=pl.col("e"),
        sxx=pl.col("h") ** 2,
        sxy=pl.col("h") * pl.col("e"),
        syy=pl.col("e") ** 2,
    )
    det = pl.col("n") * pl.col("sxx") - pl.col("sx") ** 2
    best = (
        sums.filter(det > 0)
        .with_columns(beta=(pl.col("n") * pl.col("sxy") - pl.col("sx") * pl.col("sy")) / det)
        .with_columns(alpha=(pl.col("sy") - pl.col("beta") * pl.col("sx")) / pl.col("n"))
        .with_columns(sse=pl.col("syy") - pl.col("alpha") * pl.col("sy") - pl.col("beta") * pl.col("sxy"))
        .sort("jurisdiction", "sse", "driver")
        .unique("jurisdiction", keep="first")
        .select("jurisdiction", "driver", "alpha", "beta")
    )
    fill = curves.join(best, on=["jurisdiction", "driver"]).select(
        "jurisdiction",
        "read_date",
        (pl.col("alpha") + pl.col("beta") * pl.col("h")).clip(lower_bound=0.0).alias("_f"),
    )
    return (
        fill.join(elec, on=["jurisdiction", "read_date"], how="left")
        .select("jurisdiction", "read_date", pl.coalesce("h", "_f").alias("h"))
        .sort("jurisdiction", "read_date")
    )


def _fit_drivers(gas_pairs: pl.DataFrame, drivers: pl.DataFrame) -> pl.DataFrame:
    """Weighted least squares of normalised pair rates on the pairs' mean driver, per (driver,
    jurisdiction); mse = weighted mean squared residual (comparable across drivers).

    One driver at a time: the pairs joined with every candidate at once (22 of them) held
    pairs × drivers rows — 1.1 GB at 100k accounts, ~11 GB at 1M (issue 14); per driver it is
    one pairs-sized frame. Joins keep the pairs' order, so each group's sums add the same values in
    the same order on every run."""
    pairs = (
        gas_pairs.filter((pl.col("days") > 0) & pl.col("consumption").is_not_null())
        .with_columns(
            reg_mean=pl.col("consumption").sum().over("meter_register_id")
            / pl.col("days").sum().over("meter_register_id"),
            n_reg=pl.len().over("meter_register_id"),
            _s=pl.col("start") + pl.duration(days=1),  # a pair covers start + 1 … end (SPEC §4.3)
            _e=pl.col("end"),
        )
        .filter((pl.col("n_reg") >= 2) & (pl.col("reg_mean") > 0))
        .select("jurisdiction", "_s", "_e", "days", "consumption", "reg_mean")
    )
    names = drivers["driver"].unique().sort().to_list()
    fit = pl.concat(
        [_driver_sums(pairs, drivers.filter(pl.col("driver") == d), d) for d in names]
        or [_driver_sums(pairs, drivers.clear(), "")]
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


def _driver_sums(pairs: pl.DataFrame, cum: pl.DataFrame, driver: str) -> pl.DataFrame:
    """One driver's weighted sums per jurisdiction over the pairs (start and end days joined to its
    cumulative index)."""
    cum = cum.select("jurisdiction", "read_date", "cum_h", "h")
    joined = (
        pairs.join(
            cum.rename({"read_date": "_s", "cum_h": "_cs", "h": "_hs"}),
            on=["jurisdiction", "_s"],
            maintain_order="left",
        )
        .join(
            cum.rename({"read_date": "_e", "cum_h": "_ce", "h": "_he"}),
            on=["jurisdiction", "_e"],
            maintain_order="left",
        )
        .with_columns(
            x=(pl.col("_ce") - pl.col("_cs") + pl.col("_hs")) / pl.col("days"),
            y=pl.col("consumption") / pl.col("days") / pl.col("reg_mean"),
            wt=pl.col("days").cast(pl.Float64),
        )
    )
    return (
        joined.group_by("jurisdiction", maintain_order=True)
        .agg(
            s=pl.col("wt").sum(),
            sx=(pl.col("wt") * pl.col("x")).sum(),
            sy=(pl.col("wt") * pl.col("y")).sum(),
            sxx=(pl.col("wt") * pl.col("x") ** 2).sum(),
            sxy=(pl.col("wt") * pl.col("x") * pl.col("y")).sum(),
            syy=(pl.col("wt") * pl.col("y") ** 2).sum(),
            pairs=pl.len(),
            level=pl.col("consumption").sum() / pl.col("days").sum(),
        )
        .select(pl.lit(driver).alias("driver"), pl.all())
    )


def gas_shape(
    gas_pairs: pl.DataFrame,
    jurisdictions: Sequence[str],
    date_from: dt.date,
    date_to: dt.date,
    macro: pl.DataFrame | None = None,
    electric_driver: bool = False,
    weather: bool = False,
    fixed: pl.DataFrame | None = None,
    temperature: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Gas macro profile per jurisdiction and its fit.

    ``gas_pairs``: meter_register_id, jurisdiction, start, end, days, consumption (a pair covers the
    days start + 1 … end, SPEC §4.3).
    ``macro`` with ``electric_driver``: the electricity macro profile adds the ELECTRIC driver
    candidate (its whole weather part, cooling included). Off by default: on the accuracy benchmark
    it fitted the pairs better but predicted the unbilled weeks worse (bench/results/accuracy-history-issue4.md).
    ``fixed`` (the electricity fixed profile, segments phase) adds the ELECTRIC_HEATING candidate
    (:func:`electric_heating`); ``temperature`` (weather_daily's daily mean per jurisdiction) adds the
    HDD=b candidates — the measured weather drives the gas shape where it fits the gas pairs as well
    as the electricity heating index. ``weather``: monthly actual-weather factors of the chosen index
    from the pairs' residuals (:func:`weather_factors`); off by default (they hurt the accuracy
    benchmark once the index follows the weather, bench/results/accuracy-history-issue4.md).
    Returns (gas_macro: jurisdiction, read_date, daily, base, w; gas_fit: jurisdiction, driver,
    a, b, level, pairs, mse, source FIT | FALLBACK).
    """
    lo = min(date_from, gas_pairs["start"].min() + dt.timedelta(days=1)) if gas_pairs.height else date_from
    hi = max(date_to, gas_pairs["end"].max()) if gas_pairs.height else date_to
    drivers = _drivers(jurisdictions, lo, hi, macro if electric_driver else None, fixed, temperature)
    candidates = _fit_drivers(gas_pairs, drivers)
    fits = _chosen_fits(gas_pairs, jurisdictions, candidates)
    hfull = _index_of_fits(drivers, fits, gas_pairs, weather)
    daily = (
        fits.select("jurisdiction", "a", "b", "level")
        .join(hfull.filter(pl.col("read_date").is_between(date_from, date_to)), on="jurisdiction")
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


def _chosen_fits(
    gas_pairs: pl.DataFrame, jurisdictions: Sequence[str], candidates: pl.DataFrame
) -> pl.DataFrame:
    """Per jurisdiction the chosen driver and its a, b, level (source FIT), else the fallback."""
    # the pairs barely tell the candidates apart (their mse are within a few percent: each
    # register's own heating share is most of the residual); a driver carrying the actual weather
    # predicts the unbilled weeks better than any average-year curve, so ELECTRIC_HEATING wins
    # whenever its mse is within ELECTRIC_PREFERENCE of the best
    good = candidates.filter("_good").with_columns(
        _rank=pl.when((pl.col("driver") == "ELECTRIC_HEATING") | pl.col("driver").str.starts_with("HDD="))
        .then(pl.col("mse") / (1.0 + ELECTRIC_PREFERENCE))
        .otherwise(pl.col("mse"))
    )
    best = good.sort("jurisdiction", "_rank", "driver").unique("jurisdiction", keep="first").drop("_rank")
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
    fits = (
        pl.DataFrame({"jurisdiction": sorted(set(jurisdictions))})
        .join(best.drop("_good", "level", "pairs"), on="jurisdiction", how="left")
        .join(levels, on="jurisdiction", how="left")
        .with_columns(
            source=pl.when(pl.col("a").is_not_null()).then(pl.lit("FIT")).otherwise(pl.lit("FALLBACK")),
            driver=pl.col("driver").fill_null(FALLBACK_DRIVER),
            a=pl.col("a").fill_null(FALLBACK_A),
            b=pl.col("b").fill_null(FALLBACK_B),
            level=pl.coalesce(pl.col("_lvl"), pl.lit(overall, dtype=pl.Float64), pl.lit(1.0)),
            pairs=pl.col("_n").fill_null(0),
        )
        .select("jurisdiction", "driver", "a", "b", "level", "pairs", "mse", "source")
    )
    return fits


def _index_of_fits(
    drivers: pl.DataFrame, fits: pl.DataFrame, gas_pairs: pl.DataFrame, weather: bool
) -> pl.DataFrame:
    """The chosen driver's index h per jurisdiction and day (the climatological fallback where it
    does not reach), times the actual-weather factors when ``weather``."""
    chosen = drivers.join(fits.select("jurisdiction", "driver"), on=["jurisdiction", "driver"])
    # the ELECTRIC driver may not reach every day of the range: climatological fallback there
    # (ELECTRIC_HEATING reaches every day: _with_climate_fill)
    clim = drivers.filter(pl.col("driver") == FALLBACK_DRIVER).select(
        "jurisdiction", "read_date", pl.col("h").alias("_h0")
    )
    hfull = (
        clim.join(
            chosen.select("jurisdiction", "read_date", "h"), on=["jurisdiction", "read_date"], how="left"
        )
        .select("jurisdiction", "read_date", pl.coalesce("h", "_h0").alias("h"))
        .sort("jurisdiction", "read_date")
    )
    factors = weather_factors(gas_pairs, hfull, fits) if weather else None
    if factors is not None and factors.height:
        hfull = (
            hfull.with_columns(period=pl.col("read_date").dt.truncate(WEATHER_PERIOD))
            .join(factors, on=["jurisdiction", "period"], how="left")
            .with_columns(h=pl.col("h") * pl.col("g").fill_null(1.0))
            .drop("period", "g")
        )
    return hfull
