"""Weather-driven model of a basic register (SPEC §4.3 "Weather"): CalTRACK's billing-period method.

Per register, the daily average of each pair of consecutive actual reads (a pair covers D1 + 1 … D2)
is regressed, weighted by the pair's days, on the pair's means of

- b: the register's base shape (its macro key's base load by day type, relative — 1 for a flat base),
- HDD_H: heating degree days max(0, H − T) at a heating balance point H,
- CDD_C: cooling degree days max(0, T − C) at a cooling balance point C,

with T the day's mean temperature of the register's jurisdiction (tasks/domain/weather.py). Candidate
models, as CalTRACK's billing models: heating only (every H of ``HEAT_BPS``), cooling only (every C of
``COOL_BPS``; not for gas, whose weather part is heating), heating and cooling (H ≤ C). A candidate
qualifies when its weather coefficients are > 0 and significant (two-sided p < ``P_VALUE``, t test on
the weighted least squares' standard errors) and the register has enough pairs (``MIN_PAIRS`` for one
weather term, ``MIN_PAIRS_BOTH`` for two; CalTRACK's sufficiency idea with quarterly reads); among
those the highest adjusted R² wins (the balance point search and the model choice in one). A
register with no qualifying candidate — too few pairs, no significant weather term, or days without
temperature — keeps the method it had without weather (``seasonal`` / ``scalar``).

The daily estimate is α·b(d) + β_h·HDD_H(d) + β_c·CDD_C(d). Degree days of every balance point are
kept as running sums per jurisdiction (:func:`degree_day_table`) so a range's sum is two lookups.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from tasks.domain.basic_pairs import recency_weight

HEAT_BPS = tuple(float(b) for b in range(10, 23))  # °C
COOL_BPS = tuple(float(b) for b in range(16, 29))
POOLED_BALANCE_POINTS = True  # balance points per population, slopes per register (see fit_weather_models)
MIN_PAIRS = 3
MIN_PAIRS_BOTH = 5
P_VALUE = 0.10
# two-sided t critical values at p = 0.10 for 1 … 30 degrees of freedom (then the normal 1.645)
_T_CRIT = (6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812, 1.796, 1.782, 1.771, 1.761,
           1.753, 1.746, 1.740, 1.734, 1.729, 1.725, 1.721, 1.717, 1.714, 1.711, 1.708, 1.706, 1.703, 1.701,
           1.699, 1.697)  # fmt: skip

MODEL_SCHEMA = {
    "meter_register_id": pl.Int64,
    "wmodel": pl.String,  # HEAT | COOL | BOTH
    "w_alpha": pl.Float64,
    "beta_h": pl.Float64,
    "beta_c": pl.Float64,
    "h_bp": pl.Float64,
    "c_bp": pl.Float64,
    "adj_r2": pl.Float64,
    "w_pairs": pl.Int64,
    "w_mse": pl.Float64,  # Σ days·(daily use − fit)² / (pairs − parameters): comparable across models
}
BALANCE_POINT_SCHEMA = {  # the pooled balance points of a population and model kind
    "jurisdiction": pl.String,
    "service_type": pl.String,
    "customer_class": pl.String,  # "" when the registers have no customer_class
    "wmodel": pl.String,
    "h_bp": pl.Float64,  # null for COOL
    "c_bp": pl.Float64,  # null for HEAT
    "registers": pl.UInt32,  # registers whose candidate at these points counted
}


def t_critical(dof: np.ndarray) -> np.ndarray:
    table = np.array(_T_CRIT)
    d = np.asarray(dof, dtype=np.int64)
    return np.where(d < 1, np.inf, np.where(d > len(table), 1.645, table[np.clip(d, 1, len(table)) - 1]))


def fill_temperature(temp: pl.DataFrame) -> pl.DataFrame:
    """jurisdiction, read_date, temp on every day from each jurisdiction's first to last observed
    day, gaps filled by linear interpolation between the days around them."""
    if temp.height == 0:
        return temp.select("jurisdiction", "read_date", pl.col("temp").cast(pl.Float64))
    span = temp.group_by("jurisdiction").agg(lo=pl.col("read_date").min(), hi=pl.col("read_date").max())
    days = span.select("jurisdiction", pl.date_ranges("lo", "hi").alias("read_date")).explode("read_date")
    return (
        days.join(
            temp.select("jurisdiction", "read_date", "temp"), on=["jurisdiction", "read_date"], how="left"
        )
        .sort("jurisdiction", "read_date")
        .with_columns(pl.col("temp").cast(pl.Float64).interpolate().over("jurisdiction"))
    )


def degree_day_table(temp: pl.DataFrame) -> pl.DataFrame:
    """Running sums of degree days: jurisdiction, kind (H | C), bp, read_date, dd, cum (Σ dd up to
    and including the day), for every balance point of ``HEAT_BPS`` and ``COOL_BPS``; ``temp`` must
    have every day (:func:`fill_temperature`)."""
    bps = pl.concat(
        [
            pl.DataFrame({"kind": "H", "bp": list(HEAT_BPS)}),
            pl.DataFrame({"kind": "C", "bp": list(COOL_BPS)}),
        ]
    )
    return (
        temp.join(bps, how="cross")
        .with_columns(
            dd=pl.when(pl.col("kind") == "H")
            .then((pl.col("bp") - pl.col("temp")).clip(lower_bound=0.0))
            .otherwise((pl.col("temp") - pl.col("bp")).clip(lower_bound=0.0))
        )
        .sort("jurisdiction", "kind", "bp", "read_date")
        .with_columns(cum=pl.col("dd").cum_sum().over("jurisdiction", "kind", "bp"))
        .select("jurisdiction", "kind", "bp", "read_date", "dd", "cum")
    )


def range_dd(
    frame: pl.DataFrame, first: str, last: str, kind: str, bp: str, dd: pl.DataFrame, out: str
) -> pl.DataFrame:
    """Add ``out`` = Σ degree days of ``kind`` at the row's balance point ``bp`` over first … last
    (inclusive; 0 for an empty range; null when the range is not inside the temperature's days).
    ``frame`` carries jurisdiction, first, last and bp."""
    t = dd.filter(pl.col("kind") == kind)
    hi = t.select(
        "jurisdiction", pl.col("bp").alias(bp), pl.col("read_date").alias(last), pl.col("cum").alias("_hi")
    )
    lo = t.select(
        "jurisdiction",
        pl.col("bp").alias(bp),
        pl.col("read_date").alias(first),
        (pl.col("cum") - pl.col("dd")).alias("_lo"),
    )
    res = frame.join(hi, on=["jurisdiction", bp, last], how="left").join(
        lo, on=["jurisdiction", bp, first], how="left"
    )
    return res.with_columns(
        pl.when(pl.col(first) > pl.col(last))
        .then(pl.lit(0.0))
        .otherwise(pl.col("_hi") - pl.col("_lo"))
        .alias(out)
    ).drop("_hi", "_lo")


def _pair_features(pairs: pl.DataFrame, dd: pl.DataFrame, kind: str, bps: tuple[float, ...]) -> pl.DataFrame:
    """Per pair (_pid) and balance point: the pair's mean degree days (null when not covered)."""
    grid = pairs.select("_pid", "jurisdiction", "_first", "end").join(
        pl.DataFrame({"_bp": list(bps)}), how="cross"
    )
    out = range_dd(grid, "_first", "end", kind, "_bp", dd, "_s")
    return out.select("_pid", "_bp", "_s")


def fit_weather_models(
    registers: pl.DataFrame,
    pairs_m: pl.DataFrame,
    dd: pl.DataFrame,
    run_date: dt.date,
    balance_points: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Per register with a qualifying weather model (``MODEL_SCHEMA``); registers without one are
    absent. ``registers``: meter_register_id, service_type, jurisdiction (one row per register);
    ``pairs_m``: the register's pairs of consecutive actual reads with start, end, days,
    consumption and sum_b (tasks.domain.basic_estimate._with_pair_sums); ``dd``:
    :func:`degree_day_table`. Pairs ending on or after ``run_date`` are not used.
    ``balance_points``: :func:`pooled_balance_points` over the whole run (every shard's registers);
    None chooses them among ``registers``."""
    res, regs = _solved_candidates(registers, pairs_m, dd, run_date)
    if res is None:
        return pl.DataFrame(schema=MODEL_SCHEMA)
    if POOLED_BALANCE_POINTS:
        if balance_points is None:
            balance_points = _choose(_pool_totals(res, regs))
        res = _at_pooled_balance_points(res, regs, balance_points)
    return _best(res)


def pooled_balance_points(
    registers: pl.DataFrame, pairs_m: pl.DataFrame, dd: pl.DataFrame, run_date: dt.date
) -> pl.DataFrame:
    """The balance points of each population (``BALANCE_POINT_SCHEMA``): per jurisdiction, fuel,
    customer class and model kind, the candidate with the smallest total relative residual over
    ``registers`` (arguments as :func:`fit_weather_models`). The criterion is a sum over registers,
    so the choice over all registers at once does not depend on how they are sharded."""
    res, regs = _solved_candidates(registers, pairs_m, dd, run_date)
    if res is None:
        return pl.DataFrame(schema=BALANCE_POINT_SCHEMA)
    return _choose(_pool_totals(res, regs))


def _solved_candidates(
    registers: pl.DataFrame, pairs_m: pl.DataFrame, dd: pl.DataFrame, run_date: dt.date
) -> tuple[pl.DataFrame | None, pl.DataFrame]:
    """(every candidate of every register solved (:func:`_solved`) or None, the registers'
    jurisdiction, service_type, _class)."""
    regs = registers.select(
        "meter_register_id",
        "service_type",
        "jurisdiction",
        (pl.col("customer_class") if "customer_class" in registers.columns else pl.lit("")).alias("_class"),
    ).unique("meter_register_id")
    p = (
        pairs_m.filter(
            (pl.col("days") > 0) & (pl.col("end") < run_date) & pl.col("consumption").is_not_null()
        )
        .join(regs, on="meter_register_id")
        .with_columns(_rw=recency_weight(run_date))
        .with_columns(
            _first=pl.col("start") + pl.duration(days=1),
            _y=pl.col("consumption") / pl.col("days"),
            _b=(pl.coalesce("sum_b", pl.col("days").cast(pl.Float64)) / pl.col("days")),
            _d=pl.col("days").cast(pl.Float64),
            _w=pl.col("days").cast(pl.Float64) * pl.col("_rw"),
        )
        .with_row_index("_pid")
    )
    if p.height == 0 or dd.height == 0:
        return None, regs
    sums = _normal_sums(_candidates(p, dd))
    if sums.height == 0:
        return None, regs
    return _solved(sums), regs


def _candidates(p: pl.DataFrame, dd: pl.DataFrame) -> pl.DataFrame:
    """One row per pair and candidate model: HEAT (h_bp), COOL (c_bp; not gas), BOTH (h_bp <= c_bp),
    with the pair's mean degree days at those balance points."""
    fh = _pair_features(p, dd, "H", HEAT_BPS).rename({"_s": "_h"})
    fc = _pair_features(p, dd, "C", COOL_BPS).rename({"_s": "_c"})
    days = p.select("_pid", "_d")
    fh = fh.join(days, on="_pid").select(
        "_pid", pl.col("_bp").alias("h_bp"), (pl.col("_h") / pl.col("_d")).alias("_h")
    )
    fc = fc.join(days, on="_pid").select(
        "_pid", pl.col("_bp").alias("c_bp"), (pl.col("_c") / pl.col("_d")).alias("_c")
    )
    base = p.select("_pid", "meter_register_id", "service_type", "_y", "_b", "_w")
    # candidates: HEAT (h_bp, c_bp null), COOL, BOTH (h_bp <= c_bp); one row per pair and candidate
    heat = base.join(fh, on="_pid").with_columns(
        c_bp=pl.lit(None, pl.Float64), _c=pl.lit(0.0), _k=pl.lit("HEAT")
    )
    cool = (
        base.filter(pl.col("service_type") != "GAS")
        .join(fc, on="_pid")
        .with_columns(h_bp=pl.lit(None, pl.Float64), _h=pl.lit(0.0), _k=pl.lit("COOL"))
    )
    both = (
        base.filter(pl.col("service_type") != "GAS")
        .join(fh, on="_pid")
        .join(fc, on="_pid")
        .filter(pl.col("h_bp") <= pl.col("c_bp"))
        .with_columns(_k=pl.lit("BOTH"))
    )
    cols = ["_pid", "meter_register_id", "_k", "h_bp", "c_bp", "_y", "_b", "_h", "_c", "_w"]
    return pl.concat([heat.select(cols), cool.select(cols), both.select(cols)])


def _normal_sums(cand: pl.DataFrame) -> pl.DataFrame:
    """The weighted normal-equation sums of each (register, candidate) whose pairs are all covered."""
    w, b, h, c, y = (pl.col(x) for x in ("_w", "_b", "_h", "_c", "_y"))
    sums = cand.group_by("meter_register_id", "_k", "h_bp", "c_bp").agg(
        n=pl.len(),
        covered=pl.col("_h").is_not_null().all() & pl.col("_c").is_not_null().all(),
        sw=w.sum(),
        sy=(w * y).sum(),
        yy=(w * y * y).sum(),
        bb=(w * b * b).sum(),
        bh=(w * b * h).sum(),
        bc=(w * b * c).sum(),
        hh=(w * h * h).sum(),
        hc=(w * h * c).sum(),
        cc=(w * c * c).sum(),
        by=(w * b * y).sum(),
        hy=(w * h * y).sum(),
        cy=(w * c * y).sum(),
    )
    return sums.filter(pl.col("covered")).sort("meter_register_id", "_k", "h_bp", "c_bp", nulls_last=True)


def _solved(sums: pl.DataFrame) -> pl.DataFrame:
    """Each candidate's coefficients by weighted least squares, its adjusted R², and whether it
    qualifies (solvable, enough pairs, weather terms positive and significant, base ≥ 0)."""
    kind = sums["_k"].to_numpy()
    m = sums.select([pl.col(x).fill_null(0.0) for x in ("bb", "bh", "bc", "hh", "hc", "cc")]).to_numpy()
    r = sums.select([pl.col(x).fill_null(0.0) for x in ("by", "hy", "cy")]).to_numpy()
    a = np.stack([m[:, [0, 1, 2]], m[:, [1, 3, 4]], m[:, [2, 4, 5]]], axis=1)
    # the unused weather column of one-term models: an identity row so that the system stays solvable
    use_h, use_c = kind != "COOL", kind != "HEAT"
    a[~use_h, 1, :] = a[~use_h, :, 1] = 0.0
    a[~use_h, 1, 1] = 1.0
    a[~use_c, 2, :] = a[~use_c, :, 2] = 0.0
    a[~use_c, 2, 2] = 1.0
    r[~use_h, 1] = r[~use_c, 2] = 0.0
    scale = np.maximum(np.abs(a).max(axis=(1, 2)), 1e-300)
    ok = np.abs(np.linalg.det(a / scale[:, None, None])) > 1e-10
    beta = np.full((len(a), 3), np.nan)
    inv = np.full_like(a, np.nan)
    inv[ok] = np.linalg.inv(a[ok])
    beta[ok] = np.einsum("nij,nj->ni", inv[ok], r[ok])
    yy, sy, sw = sums["yy"].to_numpy(), sums["sy"].to_numpy(), sums["sw"].to_numpy()
    n = sums["n"].to_numpy().astype(np.float64)
    sse = yy - 2 * np.einsum("ni,ni->n", beta, r) + np.einsum("ni,nij,nj->n", beta, a, beta)
    sse = np.maximum(sse, 0.0)
    sst = np.maximum(yy - sy * sy / sw, 1e-300)
    k = 1 + use_h.astype(np.float64) + use_c.astype(np.float64)  # parameters
    dof = n - k
    # weighted least squares, Var(e_i) = σ²/w_i: σ̂² = Σ w·e² / dof, Cov(β) = σ̂²·(XᵀWX)⁻¹
    sigma2 = np.where(dof > 0, sse / np.maximum(dof, 1), np.inf)
    se_h = np.sqrt(np.maximum(sigma2 * inv[:, 1, 1], 0.0))
    se_c = np.sqrt(np.maximum(sigma2 * inv[:, 2, 2], 0.0))
    tcrit = t_critical(dof)
    sig_h = ~use_h | ((beta[:, 1] > 0) & (beta[:, 1] >= tcrit * se_h))
    sig_c = ~use_c | ((beta[:, 2] > 0) & (beta[:, 2] >= tcrit * se_c))
    need = np.where(kind == "BOTH", MIN_PAIRS_BOTH, MIN_PAIRS)
    r2 = 1.0 - sse / sst
    adj = 1.0 - (1.0 - r2) * (n - 1) / np.maximum(dof, 1e-9)
    good = ok & sig_h & sig_c & (n >= need) & (dof >= 1) & (beta[:, 0] >= 0) & np.isfinite(adj)
    res = sums.select(
        "meter_register_id", pl.col("_k").alias("wmodel"), "h_bp", "c_bp", pl.col("n").alias("w_pairs")
    )
    res = res.with_columns(
        pl.Series("w_alpha", beta[:, 0]),
        pl.Series("beta_h", np.where(use_h, beta[:, 1], 0.0)),
        pl.Series("beta_c", np.where(use_c, beta[:, 2], 0.0)),
        pl.Series("adj_r2", adj),
        pl.Series("w_mse", sse / np.maximum(dof, 1e-9)),
        pl.Series("_good", good),
        # the candidate's residual relative to the register's mean square use (pooled below)
        pl.Series(
            "_rsse", np.where(ok & (n >= need) & (dof >= 1), sse / np.maximum(yy / sw, 1e-300), np.nan)
        ),
    )
    return res


def _pool_totals(res: pl.DataFrame, regs: pl.DataFrame) -> pl.DataFrame:
    """Per population (jurisdiction, fuel, customer class) and candidate (model kind, balance
    points): the total relative residual over its registers, _tot, and their number, _n."""
    return (
        res.filter(pl.col("_rsse").is_not_nan())
        .join(
            regs.select("meter_register_id", "jurisdiction", "service_type", "_class"), on="meter_register_id"
        )
        .group_by("jurisdiction", "service_type", "_class", "wmodel", "h_bp", "c_bp")
        .agg(pl.col("_rsse").sum().alias("_tot"), pl.len().alias("_n"))
    )


def _choose(totals: pl.DataFrame) -> pl.DataFrame:
    """Per population and model kind the candidate with the smallest total (ties: the lower
    balance points) — ``BALANCE_POINT_SCHEMA``."""
    key = ["jurisdiction", "service_type", "_class", "wmodel"]
    return (
        totals.sort(*key, "_tot", "h_bp", "c_bp", nulls_last=True)
        .unique(key, keep="first", maintain_order=True)
        .select(
            "jurisdiction",
            "service_type",
            pl.col("_class").alias("customer_class"),
            "wmodel",
            "h_bp",
            "c_bp",
            pl.col("_n").alias("registers"),
        )
        .cast(BALANCE_POINT_SCHEMA)  # type: ignore[arg-type]
    )


def _at_pooled_balance_points(res: pl.DataFrame, regs: pl.DataFrame, chosen: pl.DataFrame) -> pl.DataFrame:
    """The candidates at their population's balance points only (per model kind, ``chosen``:
    :func:`_choose`). 3-7 quarterly pairs cannot tell a register's own balance point from noise
    (its October, near the balance point, moves with it), so the balance points are pooled per
    population (jurisdiction, fuel, customer class) and each register only chooses between the
    model kinds at those points."""
    key = ["jurisdiction", "service_type", "_class", "wmodel", "h_bp", "c_bp"]
    grp = res.join(
        regs.select("meter_register_id", "jurisdiction", "service_type", "_class"), on="meter_register_id"
    )
    return grp.join(
        chosen.select(*key[:2], pl.col("customer_class").alias("_class"), *key[3:]),
        on=key,
        how="semi",
        nulls_equal=True,
    ).drop("jurisdiction", "service_type", "_class")


def _best(res: pl.DataFrame) -> pl.DataFrame:
    """Per register the qualifying candidate with the highest adjusted R² (``MODEL_SCHEMA``)."""
    res = res.filter("_good")
    # the highest adjusted R²; on a tie the model with fewer weather terms, then the lower balance point
    # (adjusted R² compared to 9 decimals: an exact fit is a tie whatever the rounding of its sums)
    res = res.with_columns(_terms=(pl.col("wmodel") == "BOTH").cast(pl.Int8), _rank=pl.col("adj_r2").round(9))
    best = res.sort(
        ["meter_register_id", "_rank", "_terms", "wmodel", "h_bp", "c_bp"],
        descending=[False, True, False, False, False, False],
        nulls_last=True,
    )
    best = best.unique("meter_register_id", keep="first", maintain_order=True)
    return best.select(list(MODEL_SCHEMA)).cast(MODEL_SCHEMA)  # type: ignore[arg-type]
