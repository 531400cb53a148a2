"""Actual-weather factors of the gas heating index (:mod:`tasks.domain.macro`, ``weather=True``):
a cold or warm month seen in every gas read pair that covers it."""

from __future__ import annotations

import numpy as np
import polars as pl

from tasks.domain.sums import group_sums

WEATHER_PERIOD = "1mo"  # resolution of the actual-weather factors of the gas heating index
WEATHER_ITERATIONS = 3
WEATHER_RIDGE = 0.01


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
    periods, ov = _exposure(pairs, hfull)
    pairs = _with_mean_use(pairs, ov)
    jfit = fits.select("jurisdiction", pl.col("a").alias("_aj"), pl.col("b").alias("_bj"))
    g = periods.select("jurisdiction", "period", pl.lit(1.0).alias("g"))
    for _ in range(WEATHER_ITERATIONS):
        reg = _register_fits(ov, g, pairs, jfit)
        g = _period_factors(ov, pairs, reg, periods)
    return g


def _exposure(pairs: pl.DataFrame, hfull: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The periods (jurisdiction, period, p0, p1, hp = Σ h) and each pair's heating exposure H in
    each period it overlaps (_i, jurisdiction, period, H)."""
    days = hfull.with_columns(
        period=pl.col("read_date").dt.truncate(WEATHER_PERIOD), cum=pl.col("h").cum_sum().over("jurisdiction")
    )
    periods = (
        days.group_by("jurisdiction", "period")
        .agg(p0=pl.col("read_date").min(), p1=pl.col("read_date").max())
        .join(
            group_sums(days, ["jurisdiction", "period"], ["read_date"], hp=pl.col("h")),
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
    return periods, ov


def _with_mean_use(pairs: pl.DataFrame, ov: pl.DataFrame) -> pl.DataFrame:
    """The pairs the index covers, with their register's mean daily use m_r (> 0)."""
    # pairs the index does not cover every day of are left out
    covered = ov.group_by("_i").agg(pl.len())
    pairs = pairs.join(covered.select("_i"), on="_i", how="semi")
    mean_use = group_sums(pairs, ["meter_register_id"], ["_i"], _c=pl.col("consumption"), _d=pl.col("days"))
    return pairs.join(
        mean_use.select("meter_register_id", (pl.col("_c") / pl.col("_d")).alias("m_r")),
        on="meter_register_id",
    ).filter(pl.col("m_r") > 0)


def _register_fits(
    ov: pl.DataFrame, g: pl.DataFrame, pairs: pl.DataFrame, jfit: pl.DataFrame
) -> pl.DataFrame:
    """Each register's a_r, b_r given the factors g: its own weighted least squares (≥ 3 pairs, both
    ≥ 0), else the jurisdiction's a, b × the register's level."""
    x = group_sums(ov.join(g, on=["jurisdiction", "period"]), ["_i"], ["period"], X=pl.col("g") * pl.col("H"))
    pr = pairs.join(x, on="_i").with_columns(D=pl.col("days").cast(pl.Float64), c=pl.col("consumption"))
    reg = (
        group_sums(
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
    return reg.select(
        "meter_register_id",
        pl.when(own).then(pl.col("a_own")).otherwise(pl.col("lvl") * pl.col("_aj")).alias("a_r"),
        pl.when(own).then(pl.col("b_own")).otherwise(pl.col("lvl") * pl.col("_bj")).alias("b_r"),
    )


def _period_factors(
    ov: pl.DataFrame, pairs: pl.DataFrame, reg: pl.DataFrame, periods: pl.DataFrame
) -> pl.DataFrame:
    """g per jurisdiction and period given the registers' fits: ridge least squares towards 1, then
    rescaled so that Σ g·H over the range is unchanged."""
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
    rhs = group_sums(z, ["jurisdiction", "period"], ["_i"], r=pl.col("w") * pl.col("z") * pl.col("y"))
    gram = group_sums(
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
    return pl.concat(out)
