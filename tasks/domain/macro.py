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
h_θ,s (the expected degree days of a day whose temperature varies normally around its
climatological mean, :func:`smooth_heating_index`) and, when the electricity fixed profile is
given, ``ELECTRIC_HEATING`` — the electricity interval population's heating per day, read from
the shape of each day's class profiles (:func:`electric_heating`, :func:`decompose_day_profiles`:
base, heating and cooling shapes by least squares), which carries the actual weather of every
day up to period_end (a cold October shows in it; a climatological curve cannot); days before
the interval data take the climatological curve that follows it best (:func:`_with_climate_fill`).
Optionally (``weather=True``, off by default) monthly actual-weather factors of the chosen index
fitted on the gas pairs' residuals (:func:`weather_factors`): on the ELECTRIC_HEATING index they
make the accuracy benchmark worse (gas CV 8.6% → 11.7% and 8.1% → 14.9%, bench/results/accuracy-history-issue4.md).
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

MIN_GAS_PAIRS = 30
BASE_QUANTILE = 0.10
FALLBACK_A, FALLBACK_B, FALLBACK_THETA = 1.0, 2.0, -1.0
THETAS = (-1.0, -0.6, -0.3, 0.0, 0.3, 0.6)
# smooth heating indices (expected degree days under day-to-day weather noise): θ and spread grids
SMOOTH_THETAS = (-0.6, -0.3, 0.0, 0.3, 0.6)
SPREADS = (0.25, 0.5, 0.75)
# decomposition of the electricity day profiles into base, heating and cooling (electric_heating)
MILD_QUANTILE = 0.15  # the mildest days per day type give the first base shape
SEASON_EDGE = 0.8  # |cos| of the annual cycle beyond which days give the first heating / cooling shape
DECOMPOSE_ITERATIONS = 60
MIN_DECOMPOSE_DAYS = 60
ELECTRIC_PREFERENCE = 0.10  # ELECTRIC_HEATING (or HDD=b) is chosen when its mse is within 10% of the best
GAS_HDD_BPS = (14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0)  # balance points of the HDD=b gas drivers (°C)
WEATHER_PERIOD = "1mo"  # resolution of the actual-weather factors of the gas heating index
WEATHER_ITERATIONS = 3
WEATHER_RIDGE = 0.01
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


def _solve_nonnegative_weather(shapes: np.ndarray, wk: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Per day d, least squares of the day's profile on the shapes of its day type
    ``shapes[wk[d]]`` (base, heating, cooling; ``r[d]`` = the shapes · the profile) with the
    weather coefficients a[1], a[2] ≥ 0: a negative one is dropped (set to 0) and the day solved
    again without it (an active set of at most two steps); the base coefficient a[0] is clipped
    at 0. The normal matrices depend on the day type only: their inverses for each set of active
    coefficients (2 day types × 4 sets) are computed once and gathered per day."""
    g = np.einsum("tik,tjk->tij", shapes, shapes)
    inv = np.zeros((2, 4, 3, 3))
    for t in range(2):
        for p in range(4):  # p = 2·(heating active) + (cooling active)
            idx = np.flatnonzero([True, p >= 2, p % 2 == 1])
            inv[t, p][np.ix_(idx, idx)] = np.linalg.inv(g[t][np.ix_(idx, idx)])
    pattern = np.full(len(wk), 3)
    for _ in range(3):
        a = np.einsum("dij,dj->di", inv[wk, pattern], r)
        new = pattern & ~(2 * (a[:, 1] < 0) + (a[:, 2] < 0))
        if (new == pattern).all():
            break
        pattern = new
    return np.clip(a, 0.0, None)


def decompose_day_profiles(x: np.ndarray, weekend: np.ndarray, doy: np.ndarray) -> np.ndarray | None:
    """Heating coefficient per day of one population's day profiles ``x`` (days × intervals), or
    None when the days do not support the decomposition.

    Model: x_d = a_d·B_{day type} + h_d·H + c_d·C — a base load with one intraday shape per day
    type (weekday / weekend), a heating shape and a cooling shape, all ≥ 0 and of unit sum, so
    a_d, h_d and c_d are the day's kWh of each part; h_d, c_d ≥ 0. The shapes come from the data:
    B from the mildest days (the ``MILD_QUANTILE`` of daily totals per day type), H and C from
    the cold-season and warm-season days (|cos| of the annual cycle beyond ``SEASON_EDGE``) less
    the most base each day holds; then ``DECOMPOSE_ITERATIONS`` rounds of alternating least
    squares (coefficients per day given the shapes, then the shapes given the coefficients). A
    share of H in B or C would bend h_d; the days without heating (h_d clipped at 0) keep H out
    of them. h_d is the population's heating per register on day d, ∝ its heating degree days
    (per jurisdiction, classes averaged: correlation 0.995–0.998 with the generator's, bench/results/accuracy-history-issue4.md)."""
    n, k = x.shape
    wk = weekend.astype(np.int64)
    season = np.cos(2 * np.pi * (doy.astype(np.float64) - HEATING_PEAK_DOY) / 365.25)
    cold, warm = season > SEASON_EDGE, season < -SEASON_EDGE
    counts = np.bincount(wk, minlength=2)
    if n < MIN_DECOMPOSE_DAYS or counts.min() < 7 or cold.sum() < 7 or warm.sum() < 7:
        return None
    total = x.sum(axis=1)
    base = np.zeros((2, k))
    for t in (0, 1):
        idx = np.flatnonzero(wk == t)
        mild = idx[total[idx] <= np.quantile(total[idx], MILD_QUANTILE)]
        base[t] = x[mild].mean(axis=0)
    if (base.sum(axis=1) <= 0).any() or (base <= 0).any():
        return None
    base /= base.sum(axis=1, keepdims=True)

    def excess_shape(days: np.ndarray) -> np.ndarray:
        b = base[wk[days]]
        s = (x[days] / b).min(axis=1, keepdims=True)  # the most base each day holds
        e = np.clip((x[days] - s * b).mean(axis=0), 0.0, None)
        return e / e.sum() if e.sum() > 0 else np.full(k, 1.0 / k)

    heat, cool = excess_shape(np.flatnonzero(cold)), excess_shape(np.flatnonzero(warm))
    try:
        return _alternate(x, wk, base, heat, cool)
    except np.linalg.LinAlgError:  # shapes that cannot be told apart (a flat profile)
        return None


def _alternate(
    x: np.ndarray, wk: np.ndarray, base: np.ndarray, heat: np.ndarray, cool: np.ndarray
) -> np.ndarray:
    """The alternating least squares of :func:`decompose_day_profiles`: the heating coefficients."""
    n, k = x.shape
    a = np.zeros((n, 3))
    for _ in range(DECOMPOSE_ITERATIONS):
        shapes = np.stack([np.stack([base[t], heat, cool]) for t in range(2)])  # day type × 3 × k
        r = np.column_stack([(x * base[wk]).sum(axis=1), x @ heat, x @ cool])
        a = _solve_nonnegative_weather(shapes, wk, r)
        f = np.column_stack([a[:, 0] * (wk == 0), a[:, 0] * (wk == 1), a[:, 1], a[:, 2]])
        shapes = np.clip(np.linalg.solve(f.T @ f + 1e-12 * np.eye(4), f.T @ x), 1e-12, None)
        shapes /= shapes.sum(axis=1, keepdims=True)
        base, heat, cool = shapes[:2], shapes[2], shapes[3]
    return a[:, 1]


def _segment_heating(f: pl.DataFrame) -> pl.DataFrame | None:
    """read_date, h of one segment's day profiles (:func:`decompose_day_profiles`), or None."""
    f = f.filter(pl.col("_k") == pl.col("_k").max()).sort("read_date")
    x = np.array(f["profile"].to_list(), dtype=np.float64).reshape(f.height, -1)
    ok = np.isfinite(x).all(axis=1)
    f, x = f.filter(pl.Series(ok)), x[ok]
    if f.height == 0:
        return None
    h = decompose_day_profiles(
        x, (f["read_date"].dt.weekday() >= 6).to_numpy(), f["read_date"].dt.ordinal_day().to_numpy()
    )
    if h is None or h.mean() <= 0:
        return None
    return f.select("read_date").with_columns(h=pl.Series(h))


def electric_heating(fixed: pl.DataFrame) -> pl.DataFrame:
    """The electricity interval population's heating per jurisdiction and day (jurisdiction,
    read_date, h), scaled to peak 1: :func:`decompose_day_profiles` of each customer-class
    consumption segment ``C|J|CONSUMPTION[|tni]`` on its days with data of their own (``source``
    OWN: a day filled from another day would carry that day's weather), each divided by its mean
    and averaged per jurisdiction and day. Heating, cooling and the base load have different
    intraday shapes, so each day's heating is read from the day's whole profile, up to the last
    day of interval data. Per class, because a class's base load has one shape while the parent
    profile's base shape moves with its mix of residential and business registers; divided by
    the mean, because a class's heating per register drifts as registers come and go and the
    two classes' heating differ tenfold (each class then counts as one estimate of the degree
    days). A jurisdiction without a class segment that supports the decomposition uses its
    parent profile ``*|J|CONSUMPTION``; one without either is left out."""
    parts = pl.col("segment").str.split("|")
    cons = fixed.filter(
        (parts.list.get(2, null_on_oob=True) == "CONSUMPTION")
        & ((pl.col("source") == "OWN") if "source" in fixed.columns else pl.lit(True))
    ).with_columns(
        jurisdiction=parts.list.get(1),
        _parent=parts.list.get(0) == "*",
        _k=pl.col("profile").list.len(),
    )
    out = []
    for jur in sorted(cons["jurisdiction"].unique().to_list()):
        found = []
        for parent in (False, True):
            segs = cons.filter((pl.col("jurisdiction") == jur) & (pl.col("_parent") == parent))
            for seg in sorted(segs["segment"].unique().to_list()):
                h = _segment_heating(segs.filter(pl.col("segment") == seg))
                if h is not None:
                    found.append(h.with_columns(h=pl.col("h") / pl.col("h").mean(), _s=pl.lit(seg)))
            if found:
                break
        if found:
            mean = _group_sums(
                pl.concat(found).with_columns(_n=pl.lit(1.0)),
                ["read_date"],
                ["_s"],
                h=pl.col("h"),
                n=pl.col("_n"),
            )
            out.append(
                mean.select(
                    pl.lit(jur).alias("jurisdiction"), "read_date", (pl.col("h") / pl.col("n")).alias("h")
                ).with_columns(h=pl.col("h") / pl.col("h").max())
            )
    if not out:
        return pl.DataFrame(schema={"jurisdiction": pl.Utf8, "read_date": pl.Date, "h": pl.Float64})
    return pl.concat(out).sort("jurisdiction", "read_date")


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
    sums = _group_sums(
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
    jurisdiction); mse = weighted mean squared residual (comparable across drivers)."""
    cum = drivers.select("driver", "jurisdiction", "read_date", "cum_h", "h")
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


def _group_sums(frame: pl.DataFrame, keys: list[str], order: list[str], **values: pl.Expr) -> pl.DataFrame:
    """Σ of each value expression per group of ``keys``, added in a fixed order (rows sorted by
    keys + ``order``, which must make them unique; numpy ``reduceat``): polars' parallel group-by
    sums change in the last bits from run to run, and a re-run must give the same bytes."""
    f = frame.sort([*keys, *order]).with_columns(**values)
    if f.height == 0:
        return f.select(*keys, *values.keys())
    run = f.select(pl.struct(keys).rle_id().alias("_run"))["_run"].to_numpy()
    starts = np.flatnonzero(np.r_[True, run[1:] != run[:-1]])
    out = f.select(keys)[starts]
    return out.with_columns(
        [pl.Series(k, np.add.reduceat(f[k].cast(pl.Float64).to_numpy(), starts)) for k in values]
    )


def weather_factors(gas_pairs: pl.DataFrame, hfull: pl.DataFrame, fits: pl.DataFrame) -> pl.DataFrame:
    """Actual-weather factors g (jurisdiction, period, g) of the heating index, from the gas pairs.

    The climatological index h follows the average year; a cold or warm month shows in every gas
    pair that covers it. Model per pair i of register r: c_i = a_r·days_i + b_r·Σ_p g_p·H_ip,
    H_ip = Σ h over the pair's days in period p (``WEATHER_PERIOD``). Alternating least squares,
    ``WEATHER_ITERATIONS`` times: (1) each register's a_r, b_r by weighted least squares on its pairs
    (≥ 3 pairs, both ≥ 0; else the jurisdiction's a, b × the register's level); (2) g per
    jurisdiction from all its pairs (normalised by the register's mean daily use, weights = days),
    ridge towards 1 (``WEATHER_RIDGE`` × the mean diagonal) so that a period few pairs cover keeps
    the average year; then rescaled so that Σ g·H over the range is unchanged.
    """
    pairs = (
        gas_pairs.filter(
            (pl.col("days") > 0) & pl.col("consumption").is_not_null() & (pl.col("consumption") >= 0)
        )
        .select("meter_register_id", "jurisdiction", "start", "end", "days", "consumption")
        .with_row_index("_i")
        # a pair covers start + 1 … end (SPEC §4.3): its first day is _first, its last the read's day
        .with_columns(_first=pl.col("start") + pl.duration(days=1), _last=pl.col("end"))
    )
    if pairs.height == 0:
        return pl.DataFrame(schema={"jurisdiction": pl.Utf8, "period": pl.Date, "g": pl.Float64})
    days = hfull.with_columns(
        period=pl.col("read_date").dt.truncate(WEATHER_PERIOD), cum=pl.col("h").cum_sum().over("jurisdiction")
    )
    periods = (
        days.group_by("jurisdiction", "period")
        .agg(p0=pl.col("read_date").min(), p1=pl.col("read_date").max())
        .join(
            _group_sums(days, ["jurisdiction", "period"], ["read_date"], hp=pl.col("h")),
            on=["jurisdiction", "period"],
        )
        .sort("jurisdiction", "period")
    )
    cum = days.select("jurisdiction", "read_date", "cum", "h")
    # heating exposure of each pair in each period it overlaps
    ov = (
        pairs.join(periods, on="jurisdiction")
        .filter((pl.col("p0") <= pl.col("_last")) & (pl.col("p1") >= pl.col("_first")))
        .with_columns(s=pl.max_horizontal("_first", "p0"), e=pl.min_horizontal("_last", "p1"))
        .join(cum.rename({"read_date": "s", "cum": "_cs", "h": "_hs"}), on=["jurisdiction", "s"])
        .join(cum.rename({"read_date": "e", "cum": "_ce"}).drop("h"), on=["jurisdiction", "e"])
        .select("_i", "jurisdiction", "period", (pl.col("_ce") - pl.col("_cs") + pl.col("_hs")).alias("H"))
    )
    # pairs the index does not cover every day of are left out
    covered = ov.group_by("_i").agg(pl.len())
    pairs = pairs.join(covered.select("_i"), on="_i", how="semi")
    mean_use = _group_sums(pairs, ["meter_register_id"], ["_i"], _c=pl.col("consumption"), _d=pl.col("days"))
    pairs = pairs.join(
        mean_use.select("meter_register_id", (pl.col("_c") / pl.col("_d")).alias("m_r")),
        on="meter_register_id",
    ).filter(pl.col("m_r") > 0)
    jfit = fits.select("jurisdiction", pl.col("a").alias("_aj"), pl.col("b").alias("_bj"))
    g = periods.select("jurisdiction", "period", pl.lit(1.0).alias("g"))
    for _ in range(WEATHER_ITERATIONS):
        x = _group_sums(
            ov.join(g, on=["jurisdiction", "period"]), ["_i"], ["period"], X=pl.col("g") * pl.col("H")
        )
        pr = pairs.join(x, on="_i").with_columns(D=pl.col("days").cast(pl.Float64), c=pl.col("consumption"))
        reg = (
            _group_sums(
                pr,
                ["meter_register_id", "jurisdiction"],
                ["_i"],
                sdd=pl.col("D"),
                sdx=pl.col("X"),
                sxx=pl.col("X") ** 2 / pl.col("D"),
                sdc=pl.col("c"),
                sxc=pl.col("X") * pl.col("c") / pl.col("D"),
                n=pl.lit(1.0),
            )
            .join(jfit, on="jurisdiction", how="left")
            .with_columns(det=pl.col("sdd") * pl.col("sxx") - pl.col("sdx") ** 2)
            .with_columns(
                a_own=(pl.col("sxx") * pl.col("sdc") - pl.col("sdx") * pl.col("sxc")) / pl.col("det"),
                b_own=(pl.col("sdd") * pl.col("sxc") - pl.col("sdx") * pl.col("sdc")) / pl.col("det"),
                lvl=pl.col("sdc") / (pl.col("_aj") * pl.col("sdd") + pl.col("_bj") * pl.col("sdx")),
            )
        )
        own = (
            (pl.col("n") >= 3)
            & (pl.col("det") > 1e-9 * pl.col("sdd") * pl.col("sxx"))
            & (pl.col("a_own") >= 0)
            & (pl.col("b_own") >= 0)
        ).fill_null(False)
        reg = reg.select(
            "meter_register_id",
            pl.when(own).then(pl.col("a_own")).otherwise(pl.col("lvl") * pl.col("_aj")).alias("a_r"),
            pl.when(own).then(pl.col("b_own")).otherwise(pl.col("lvl") * pl.col("_bj")).alias("b_r"),
        )
        # rows per (pair, period): z = b_r·H / (m_r·D), y = (c − a_r·D) / (m_r·D), weight D
        z = (
            ov.join(pairs.select("_i", "meter_register_id", "days", "consumption", "m_r"), on="_i")
            .join(reg, on="meter_register_id")
            .with_columns(
                z=pl.col("b_r") * pl.col("H") / (pl.col("m_r") * pl.col("days")),
                y=(pl.col("consumption") - pl.col("a_r") * pl.col("days")) / (pl.col("m_r") * pl.col("days")),
                w=pl.col("days").cast(pl.Float64),
            )
            .select("_i", "jurisdiction", "period", "z", "y", "w")
        )
        rhs = _group_sums(z, ["jurisdiction", "period"], ["_i"], r=pl.col("w") * pl.col("z") * pl.col("y"))
        gram = _group_sums(
            z.join(z.select("_i", pl.col("period").alias("period2"), pl.col("z").alias("z2")), on="_i"),
            ["jurisdiction", "period", "period2"],
            ["_i"],
            v=pl.col("w") * pl.col("z") * pl.col("z2"),
        )
        out = []
        for jur in sorted(periods["jurisdiction"].unique().to_list()):
            ps = periods.filter(pl.col("jurisdiction") == jur).sort("period")
            idx = {p: k for k, p in enumerate(ps["period"].to_list())}
            n = len(idx)
            a = np.zeros((n, n))
            gj = gram.filter(pl.col("jurisdiction") == jur)
            a[
                [idx[p] for p in gj["period"].to_list()],
                [idx[p] for p in gj["period2"].to_list()],
            ] = gj["v"].to_numpy()
            r = np.zeros(n)
            rj = rhs.filter(pl.col("jurisdiction") == jur)
            r[[idx[p] for p in rj["period"].to_list()]] = rj["r"].to_numpy()
            diag = np.diag(a)
            lam = WEATHER_RIDGE * np.where(diag > 0, diag, 1.0)
            sol = np.linalg.solve(a + np.diag(lam), r + lam)
            sol = np.clip(sol, 0.0, None)
            hp = ps["hp"].to_numpy()
            if (sol * hp).sum() > 0:
                sol = sol * hp.sum() / (sol * hp).sum()
            out.append(pl.DataFrame({"jurisdiction": [jur] * n, "period": ps["period"], "g": sol}))
        g = pl.concat(out)
    return g


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
    chosen = drivers.join(fits.select("jurisdiction", "driver"), on=["jurisdiction", "driver"])
    # the ELECTRIC driver may not reach every day of the range: climatological fallback there
    # (ELECTRIC_HEATING reaches every day: _with_climate_fill)
    clim = drivers.filter(pl.col("driver") == fallback).select(
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
