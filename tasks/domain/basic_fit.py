"""The basic registers' models (SPEC §4.3, tasks.domain.basic_estimate): scalar and seasonal fits on
read pairs, the daily shape of each model and the weather model's columns."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import numpy as np
import polars as pl

from tasks.domain.basic_pairs import basic_registers, recency_weight
from tasks.domain.profiles import one_row_per_register

SCALAR_WINDOW_DAYS = 365
MIN_SCALAR_DAYS = 60
MIN_SEASONAL_PAIRS = 3
MIN_SEASONAL3_PAIRS = 5
MIN_DET = 1e-9  # determinant of the scaled normal matrix below which the fit is singular
MIN_W_SPREAD = 0.02  # weighted sd of the pairs' mean W, relative to the register's mean M
SHRINK_PAIRS = 1.0  # the segment's shape weighs as much as one more read pair (weather coefficient)
# fixed prior precision of the weather coefficient, in units of the register's mean M squared:
# (day-to-day cv of its use / prior sd of beta ÷ s)², e.g. (0.25 / 0.8)² ≈ 0.1
WEATHER_PRIOR = 0.1


def _solve(f: pl.DataFrame, k: int) -> np.ndarray:
    """Batched weighted least squares on the first k features (b, w, wh): (n, 3), NaN if singular."""
    names = ["bb", "bw", "bh", "ww", "wh", "hh"]
    m = f.select([pl.col(c).fill_null(0.0) for c in names]).to_numpy()
    rhs = f.select([pl.col(c).fill_null(0.0) for c in ("by", "wy", "hy")]).to_numpy()[:, :k]
    a = np.stack([m[:, [0, 1, 2]], m[:, [1, 3, 4]], m[:, [2, 4, 5]]], axis=1)[:, :k, :k]
    scale = np.maximum(np.abs(a).max(axis=(1, 2)), 1e-300)
    ok = np.abs(np.linalg.det(a / scale[:, None, None])) > MIN_DET
    sol = np.full((len(f), 3), np.nan)
    if k == 2:
        sol[:, 2] = 0.0
    if ok.any():
        sol[ok, :k] = np.linalg.solve(a[ok], rhs[ok][:, :, None])[:, :, 0]
    return sol


def _moments(registers: pl.DataFrame, pairs_m: pl.DataFrame, run_date: dt.date) -> pl.DataFrame:
    """Per basic register (and service_type): the recent window's sums (c_r, m_r, d_r), all usable
    pairs' sums (c_a, m_a, d_a, n) and the day-weighted moments of the pairs' daily B, W, Wh, y."""
    usable = pairs_m.filter(pl.col("sum_m").is_not_null() & (pl.col("sum_m") > 0))
    usable = usable.with_columns(_rw=recency_weight(run_date))
    recent = usable.filter(pl.col("end") > run_date - dt.timedelta(days=SCALAR_WINDOW_DAYS))
    win = recent.group_by("meter_register_id").agg(
        c_r=pl.col("consumption").sum(), m_r=pl.col("sum_m").sum(), d_r=pl.col("days").sum()
    )
    # features are the pairs' daily means of B, W and Wh; weights = days (CalTRACK billing style)
    wt = pl.col("days").cast(pl.Float64) * pl.col("_rw")
    fb, fw, fh = (pl.col(c) / pl.col("days") for c in ("sum_b", "sum_w", "sum_wh"))
    y = pl.col("consumption") / pl.col("days")
    alls = usable.group_by("meter_register_id").agg(
        c_a=pl.col("consumption").sum(),
        m_a=pl.col("sum_m").sum(),
        d_a=pl.col("days").sum(),
        n=pl.len(),
        s=wt.sum(),
        sw=(wt * fw).sum(),
        bb=(wt * fb * fb).sum(),
        bw=(wt * fb * fw).sum(),
        bh=(wt * fb * fh).sum(),
        ww=(wt * fw * fw).sum(),
        wh=(wt * fw * fh).sum(),
        hh=(wt * fh * fh).sum(),
        by=(wt * fb * y).sum(),
        wy=(wt * fw * y).sum(),
        hy=(wt * fh * y).sum(),
    )
    regs = one_row_per_register(basic_registers(registers)).select("meter_register_id", "service_type")
    return regs.join(win, on="meter_register_id", how="left").join(alls, on="meter_register_id", how="left")


def _with_fits(f: pl.DataFrame) -> pl.DataFrame:
    """Add the two-component (shrunk), three-component and unshrunk fits (alpha2 … gamma3, beta2o),
    w_sd and mean_m to the moments of :func:`_moments`."""
    # the weather coefficient of the two-component fit is shrunk towards the register's own
    # scalar s = Σ c / Σ M (beta = s: the register follows its segment's shape): a ridge on
    # beta - s with alpha free gives beta = (S·beta_ols + lam·s) / (S + lam), S = Σ days·W² less
    # its part explained by B (what the pairs know about beta). lam = K·S/n (the segment's shape
    # weighs as much as K = SHRINK_PAIRS more pairs) + kappa·M̄² (kappa = WEATHER_PRIOR: a fixed
    # prior precision, which dominates when the pairs' W barely differ). Three or four quarterly
    # pairs cover a narrow range of W (10-20/day on BUS|NSW) and October's W (7/day) lies outside
    # it: an unshrunk slope extrapolates the base far down (bench/results/accuracy-history-issue4.md)
    s0 = pl.col("c_a") / pl.col("m_a")
    partial_ww = (pl.col("ww") - pl.col("bw") ** 2 / pl.col("bb")).clip(lower_bound=0.0)
    lam = (
        (SHRINK_PAIRS * partial_ww / pl.col("n") + WEATHER_PRIOR * (pl.col("m_a") / pl.col("d_a")) ** 2)
        .fill_null(0.0)
        .fill_nan(0.0)
    )
    f2 = f.with_columns(ww=pl.col("ww") + lam, wy=pl.col("wy") + lam * s0.fill_null(0.0))
    # ols: the unshrunk fit, whose slope alone decides whether the register is flatter than its
    # segment (beta_ols < 0 → its base load alone, below): the prior tempers a slope, never flips it
    two, three, ols = _solve(f2, 2), _solve(f, 3), _solve(f, 2)
    f = f.with_columns(
        *[pl.Series(f"{n}2", two[:, i]).fill_nan(None) for i, n in enumerate(("alpha", "beta", "gamma"))],
        *[pl.Series(f"{n}3", three[:, i]).fill_nan(None) for i, n in enumerate(("alpha", "beta", "gamma"))],
        pl.Series("beta2o", ols[:, 1]).fill_nan(None),
        w_sd=((pl.col("ww") / pl.col("s") - (pl.col("sw") / pl.col("s")) ** 2).clip(lower_bound=0.0)).sqrt(),
        mean_m=pl.col("m_a") / pl.col("d_a"),
    )
    return f


def fit_registers(
    registers: pl.DataFrame, pairs_m: pl.DataFrame, run_date: dt.date, method: Literal["scalar", "seasonal"]
) -> pl.DataFrame:
    """Per basic register: model (SCALAR | SEASONAL | NONE), scalar, alpha, beta, gamma, components,
    history_days. The seasonal daily estimate is alpha·B + beta·W + gamma·Wh (tasks.domain.macro)."""
    f = _with_fits(_moments(registers, pairs_m, run_date))
    use_recent = pl.col("d_r").fill_null(0) >= MIN_SCALAR_DAYS
    has_any = pl.col("d_a").fill_null(0) > 0
    scalar = (
        pl.when(use_recent)
        .then(pl.col("c_r") / pl.col("m_r"))
        .when(has_any)
        .then(pl.col("c_a") / pl.col("m_a"))
    )
    seasonal = pl.lit(method == "seasonal")
    two_ok = (
        seasonal
        & (pl.col("n").fill_null(0) >= MIN_SEASONAL_PAIRS)
        & (pl.col("w_sd") > MIN_W_SPREAD * pl.col("mean_m"))
        & (pl.col("alpha2") >= 0)
        & (pl.col("beta2") >= 0)
        & (pl.col("beta2o") >= 0)
    ).fill_null(False)
    # three components (base, warm-season and cold-season weather parts): heating and cooling
    # sensitivities of their own; needs more pairs and both season parts >= 0; not for gas,
    # whose weather part is heating only
    three_ok = (
        seasonal
        & (pl.col("service_type") != "GAS")
        & (pl.col("n").fill_null(0) >= MIN_SEASONAL3_PAIRS)
        & (pl.col("alpha3") >= 0)
        & (pl.col("beta3") >= 0)
        & (pl.col("beta3") + pl.col("gamma3") >= 0)
    ).fill_null(False)

    # a register flatter than its segment (the unshrunk weather coefficient < 0, enough pairs):
    # its base load alone, alpha = Σ w·B·y / Σ w·B², rather than the segment's seasonal shape
    one_ok = (
        seasonal
        & ~two_ok
        & (pl.col("n").fill_null(0) >= MIN_SEASONAL_PAIRS)
        & (pl.col("beta2o") < 0)
        & (pl.col("bb") > 0)
    ).fill_null(False)
    f = f.with_columns(alpha1=pl.col("by") / pl.col("bb"), beta1=pl.lit(0.0), gamma1=pl.lit(0.0))

    def pick(name: str) -> pl.Expr:
        return (
            pl.when(three_ok)
            .then(pl.col(f"{name}3"))
            .when(two_ok)
            .then(pl.col(f"{name}2"))
            .when(one_ok)
            .then(pl.col(f"{name}1"))
            .alias(name)
        )

    return f.select(
        "meter_register_id",
        pl.when(three_ok | two_ok | one_ok)
        .then(pl.lit("SEASONAL"))
        .when(has_any)
        .then(pl.lit("SCALAR"))
        .otherwise(pl.lit("NONE"))
        .alias("model"),
        scalar.fill_null(1.0).alias("scalar"),
        pick("alpha"),
        pick("beta"),
        pick("gamma"),
        pl.when(three_ok).then(3).when(two_ok).then(2).when(one_ok).then(1).otherwise(0).alias("components"),
        pl.when(use_recent).then(pl.col("d_r")).otherwise(pl.col("d_a")).fill_null(0).alias("history_days"),
    )


def _shape() -> pl.Expr:
    """The register's daily estimate on a day with macro columns daily, w, wh, b and (weather
    model, tasks.domain.basic_weather) the day's degree days hdd, cdd at the register's balance points."""
    return (
        pl.when(pl.col("model") == "SEASONAL")
        .then(pl.col("alpha") * pl.col("b") + pl.col("beta") * pl.col("w") + pl.col("gamma") * pl.col("wh"))
        .when(pl.col("model") == "WEATHER")
        .then(
            pl.col("alpha") * pl.col("b")
            + pl.col("beta_h") * pl.col("hdd")
            + pl.col("beta_c") * pl.col("cdd")
        )
        .otherwise(pl.col("scalar") * pl.col("daily"))
    )


def _range_shape() -> pl.Expr:
    """Σ of the daily estimate over a range with columns days, sum_m, sum_w, sum_wh, sum_b (the
    same days' :func:`_shape` summed, so a pair's days add up to its consumption)."""
    return (
        pl.when(pl.col("model") == "SEASONAL")
        .then(
            pl.col("alpha") * pl.coalesce("sum_b", "days")
            + pl.col("beta") * pl.col("sum_w")
            + pl.col("gamma") * pl.col("sum_wh")
        )
        .when(pl.col("model") == "WEATHER")
        .then(
            pl.col("alpha") * pl.coalesce("sum_b", "days")
            + pl.col("beta_h") * pl.col("sum_hdd")
            + pl.col("beta_c") * pl.col("sum_cdd")
        )
        .otherwise(pl.col("scalar") * pl.col("sum_m"))
    )


def _model_mse(pairs_m: pl.DataFrame, models: pl.DataFrame, run_date: dt.date) -> pl.DataFrame:
    """meter_register_id, _mse: Σ days·(pair daily use − the model's daily mean)² / (pairs −
    parameters) of each register's model without weather on its pairs (the weather model's w_mse
    counterpart; null with no degree of freedom left)."""
    p = pairs_m.filter((pl.col("days") > 0) & (pl.col("end") < run_date)).join(models, on="meter_register_id")
    p = p.filter(pl.col("sum_m").is_not_null()).with_columns(
        [pl.lit(None, pl.Float64).alias(c) for c in ("beta_h", "beta_c", "sum_hdd", "sum_cdd")]
    )
    p = p.with_columns(_rw=recency_weight(run_date))
    fit = _range_shape() / pl.col("days")
    k = (
        pl.when(pl.col("model") == "SEASONAL")
        .then(pl.max_horizontal(pl.col("components"), pl.lit(1)))
        .otherwise(1)
    )
    return (
        p.with_columns(
            _r=pl.col("_rw") * pl.col("days") * (pl.col("consumption") / pl.col("days") - fit) ** 2, _k=k
        )
        .group_by("meter_register_id")
        .agg(_sse=pl.col("_r").sum(), _n=pl.len(), _k=pl.col("_k").first())
        .select(
            "meter_register_id",
            pl.when(pl.col("_n") > pl.col("_k"))
            .then(pl.col("_sse") / (pl.col("_n") - pl.col("_k")))
            .alias("_mse"),
        )
    )


_WEATHER_COLS = {"beta_h": pl.Float64, "beta_c": pl.Float64, "h_bp": pl.Float64, "c_bp": pl.Float64}


def _with_weather_models(models: pl.DataFrame, wm: pl.DataFrame | None) -> pl.DataFrame:
    """Registers with a qualifying weather model (tasks.domain.basic_weather) become model WEATHER
    with alpha, beta_h, beta_c, h_bp, c_bp; the others keep their model (weather columns null)."""
    if wm is None or wm.height == 0:
        return models.with_columns([pl.lit(None, dtype=t).alias(c) for c, t in _WEATHER_COLS.items()])
    j = models.join(wm, on="meter_register_id", how="left")
    has = pl.col("wmodel").is_not_null()
    return j.with_columns(
        model=pl.when(has).then(pl.lit("WEATHER")).otherwise(pl.col("model")),
        alpha=pl.when(has).then(pl.col("w_alpha")).otherwise(pl.col("alpha")),
        beta=pl.when(has).then(pl.lit(0.0)).otherwise(pl.col("beta")),
        gamma=pl.when(has).then(pl.lit(0.0)).otherwise(pl.col("gamma")),
        components=pl.when(has)
        .then(pl.col("wmodel").replace_strict({"HEAT": 2, "COOL": 2, "BOTH": 3}, return_dtype=pl.Int32))
        .otherwise(pl.col("components")),
        beta_h=pl.when(has).then(pl.col("beta_h")),
        beta_c=pl.when(has).then(pl.col("beta_c")),
        h_bp=pl.when(has).then(pl.col("h_bp")),
        c_bp=pl.when(has).then(pl.col("c_bp")),
    ).drop("wmodel", "w_alpha", "adj_r2", "w_pairs", "w_mse", "_mse", strict=False)


def _with_weather_sums(
    frame: pl.DataFrame, first: str, last: str, dd: pl.DataFrame | None, jur: pl.DataFrame
) -> pl.DataFrame:
    """Add sum_hdd, sum_cdd over first … last at each row's register's balance points (rows carry
    meter_register_id, h_bp, c_bp; a model without a cooling term sums 0 cooling)."""
    if dd is None:
        return frame.with_columns(sum_hdd=pl.lit(None, pl.Float64), sum_cdd=pl.lit(None, pl.Float64))
    from tasks.domain.basic_weather import range_dd

    f = frame.join(jur, on="meter_register_id", how="left", maintain_order="left")
    f = range_dd(f, first, last, "H", "h_bp", dd, "sum_hdd")
    f = range_dd(f, first, last, "C", "c_bp", dd, "sum_cdd")
    return f.with_columns(
        sum_hdd=pl.when(pl.col("h_bp").is_null()).then(0.0).otherwise(pl.col("sum_hdd")),
        sum_cdd=pl.when(pl.col("c_bp").is_null()).then(0.0).otherwise(pl.col("sum_cdd")),
    ).drop("jurisdiction")
