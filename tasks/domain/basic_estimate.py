"""Basic (accumulation) register estimation (SPEC §4.3), one shard.

Method. Read pairs: consumption between consecutive reads = index difference × multiplier; a
negative difference is one rollover (+10^dial_digits). A read is bad (exception ``BAD_READ``,
read skipped, pairs re-formed around it) when its difference is negative and the register has no
dial_digits, or when its daily rate (after one rollover) exceeds ``IMPLAUSIBLE_FACTOR`` × the
register's median pair rate (with at least 3 pairs): a negative difference that one rollover
cannot make plausible is a "second rollover" (e.g. a misread low index). Large consumers on small
dials legitimately wrap every quarter; their rollovers match their median and are kept. A read dated D is
the index at the END of day D (SPEC §4.3, as on retail bills: a bill's period ends on its read date),
so a pair (D1, D2) covers days D1 + 1 … D2; a register's opening read is dated the day before it
starts, its final read on its last day. Each register has a daily shape on its macro profile M (its
segment's, else the parent's, else ``*|jurisdiction|CONSUMPTION``; gas: the jurisdiction's fitted
gas shape): ``scalar`` — s_r × M(day), s_r = Σ consumption ÷ Σ M over the read pairs ending in the
last 365 days (all pairs in the macro range when those cover < 60 days; none → s_r = 1 and
``NO_HISTORY``); ``seasonal`` — α + β·W(day), W the weather-sensitive part of M (tasks.domain.macro),
α and β from a day-weighted least squares of the daily averages of the pairs of consecutive
actual reads (estimated reads skipped) on their mean W, β shrunk towards the register's scalar
(a ridge worth one more pair plus a fixed prior, ``SHRINK_PAIRS``, ``WEATHER_PRIOR``), used when
there are ≥ 3 pairs, W varies between them and α, β ≥ 0 (β < 0, a register flatter than its
segment: its base load alone, α·B), else the register falls back to scalar. ``seasonal`` also
infers hidden dial turns of large registers from their other pairs (:func:`resolve_turns`;
AMBIGUOUS_READ when the number of turns cannot be told apart); ``scalar`` keeps SPEC's rule.
A day inside a read pair gets the pair's consumption spread in proportion to the shape (actual
when both reads are actual, A/S/F); other days get the shape itself (estimated). The estimated
index at ``period_end`` (end of that day) = last read + Σ shape over the days after the last read up to
period_end ÷ multiplier, modulo 10^dial_digits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from tasks.domain.exceptions import BAD_READ, IMPLAUSIBLE_VALUE
from tasks.domain.flags import basic_method_flag
from tasks.domain.interval_estimate import EXCEPTION_SCHEMA, register_days
from tasks.domain.plausibility import Caps
from tasks.domain.profiles import one_row_per_register, parent_key, segment_key
from tasks.domain.usage import usage_rows

IMPLAUSIBLE_FACTOR = 10.0
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
ACTUAL_READ = ("A", "S", "F")


def basic_registers(registers: pl.DataFrame) -> pl.DataFrame:
    return registers.filter(pl.col("interval_minutes").is_null())


def _pairs(reads: pl.DataFrame) -> pl.DataFrame:
    """Consecutive reads per register: raw difference and rollover-adjusted consumption."""
    mod = pl.lit(10.0).pow(pl.col("dial_digits").cast(pl.Float64))
    return (
        reads.sort("meter_register_id", "read_date")
        .with_columns(
            start=pl.col("read_date").shift().over("meter_register_id"),
            start_index=pl.col("index_value").shift().over("meter_register_id"),
            start_quality=pl.col("quality").shift().over("meter_register_id"),
        )
        .filter(pl.col("start").is_not_null())
        .with_columns(
            days=(pl.col("read_date") - pl.col("start")).dt.total_days(),
            diff=pl.col("index_value") - pl.col("start_index"),
        )
        .with_columns(rolled=pl.col("diff") < 0)
        .with_columns(
            units=pl.when(pl.col("rolled")).then(pl.col("diff") + mod).otherwise(pl.col("diff")),
        )
    )


def read_pairs(
    registers: pl.DataFrame, reads: pl.DataFrame, caps: Caps | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read pairs (meter_register_id, account_id, start, end, days, consumption, actual,
    end_index) of the shard's basic registers, and BAD_READ exceptions. With ``caps``
    (tasks/domain/plausibility.py) a read whose pair implies more consumption per day than the
    register's daily cap is skipped too (IMPLAUSIBLE_VALUE)."""
    day_cap = caps.exprs()[1] if caps is not None else pl.lit(float("inf"))
    regs = one_row_per_register(basic_registers(registers)).select(
        "meter_register_id",
        "account_id",
        "dial_digits",
        pl.col("multiplier").cast(pl.Float64),
        "register_start",
        "register_end",
        day_cap.alias("_day_cap"),
        pl.col("unit").str.replace("KWH", "kWh").alias("_unit"),
    )
    r = (
        reads.select("meter_register_id", "read_date", pl.col("index_value").cast(pl.Float64), "quality")
        .join(regs, on="meter_register_id")
        .filter(
            # the opening index is read at the end of the day before the register starts
            (pl.col("read_date") >= pl.col("register_start") - pl.duration(days=1))
            & (pl.col("register_end").is_null() | (pl.col("read_date") <= pl.col("register_end")))
        )
        .unique(["meter_register_id", "read_date"], keep="last")
    )
    first = _pairs(r).with_columns(
        rate=pl.col("units") / pl.col("days"), n_pairs=pl.len().over("meter_register_id")
    )
    # the register's typical rate: median over its pairs (one misread cannot move it with >= 3)
    first = first.with_columns(median_rate=pl.col("rate").median().over("meter_register_id"))
    implausible = (
        (pl.col("n_pairs") >= 3)
        & (pl.col("median_rate") > 0)
        & (pl.col("rate") > IMPLAUSIBLE_FACTOR * pl.col("median_rate"))
    )
    over_cap = pl.col("rate") * pl.col("multiplier") > pl.col("_day_cap")
    reason = (
        pl.when(pl.col("days") <= 0)
        .then(pl.lit("read on the same day as the previous read"))
        .when(over_cap)
        .then(
            pl.format(
                "implied consumption {} {} per day is above the cap of {} {} per day",
                (pl.col("rate") * pl.col("multiplier")).round(3),
                "_unit",
                "_day_cap",
                "_unit",
            )
        )
        .when(pl.col("rolled") & pl.col("dial_digits").is_null())
        .then(pl.lit("index went down and the register has no dial_digits"))
        .when(pl.col("rolled") & implausible)
        .then(
            pl.format(
                "second rollover: one rollover would mean {} per day, over {}x the register's median {}",
                pl.col("rate").round(1),
                pl.lit(int(IMPLAUSIBLE_FACTOR)),
                pl.col("median_rate").round(1),
            )
        )
        .when(implausible)
        .then(
            pl.format(
                "implausible consumption: {} per day, median {}",
                pl.col("rate").round(1),
                pl.col("median_rate").round(1),
            )
        )
    )
    bad = first.with_columns(reason=reason, _over=over_cap.fill_null(False)).filter(
        pl.col("reason").is_not_null()
    )
    exceptions = bad.select(
        "account_id",
        "meter_register_id",
        pl.when("_over").then(pl.lit(IMPLAUSIBLE_VALUE)).otherwise(pl.lit(BAD_READ)).alias("code"),
        pl.format(
            "read {} index {} (previous {} on {}): {}; read skipped",
            "read_date",
            "index_value",
            "start_index",
            "start",
            "reason",
        ).alias("detail"),
    )
    kept = r.join(
        bad.select("meter_register_id", "read_date"), on=["meter_register_id", "read_date"], how="anti"
    )
    medians = first.select("meter_register_id", "median_rate", "n_pairs").unique("meter_register_id")
    # a pair re-formed around a skipped read may hide more than one rollover: drop it when its
    # rate is still implausible (no exception: the skipped read already has one)
    pairs = (
        _pairs(kept)
        .join(medians, on="meter_register_id", how="left")
        .with_columns(rate=pl.col("units") / pl.col("days"))
        .filter(
            (pl.col("days") > 0)
            & ~(pl.col("rolled") & pl.col("dial_digits").is_null())
            & ~implausible.fill_null(False)
            & ~over_cap.fill_null(False)
        )
        .select(
            "meter_register_id",
            "account_id",
            "start",
            pl.col("read_date").alias("end"),
            "days",
            (pl.col("units") * pl.col("multiplier")).alias("consumption"),
            (pl.col("quality").is_in(ACTUAL_READ) & pl.col("start_quality").is_in(ACTUAL_READ)).alias(
                "actual"
            ),
            pl.col("index_value").alias("end_index"),
            # the register's typical use over this pair reaches half the dial: how many times the
            # index wrapped is a guess, so the pair is kept for the books but not fitted on
            (
                pl.col("dial_digits").is_not_null()
                & (pl.col("median_rate") * pl.col("days") >= 0.5 * pl.lit(10.0).pow(pl.col("dial_digits")))
            )
            .fill_null(False)
            .alias("ambiguous"),
        )
    )
    last = (
        kept.sort("read_date")
        .group_by("meter_register_id")
        .agg(
            pl.col("read_date").last().alias("last_read_date"),
            pl.col("index_value").last().alias("last_index"),
        )
    )
    return pairs.join(last, on="meter_register_id", how="left"), exceptions.cast(EXCEPTION_SCHEMA)  # type: ignore[arg-type]


_SUMMED = ("daily", "w", "wh", "b")


@dataclass(frozen=True)
class KeyedMacro:
    """The macro profile of a shard's basic registers without one row per register and day:
    ``keyed`` (macro_key, read_date, daily, w, wh, b and their running sums cum_*, sorted by key
    and day) and ``regkey`` (meter_register_id → macro_key). Range sums, day values and means
    are taken per key and reach the registers by a join on a few hundred rows."""

    keyed: pl.DataFrame
    regkey: pl.DataFrame

    def per_register(self) -> pl.DataFrame:
        """One row per register and macro day (what :func:`register_macro` returns)."""
        return (
            self.regkey.join(self.keyed, on="macro_key")
            .drop("macro_key")
            .sort("meter_register_id", "read_date")
        )


def register_macro(registers: pl.DataFrame, macro: pl.DataFrame, gas_macro: pl.DataFrame) -> pl.DataFrame:
    """Per basic register and macro day: daily (M), w (weather part) and their running sums."""
    return keyed_macro(registers, macro, gas_macro).per_register()


def keyed_macro(registers: pl.DataFrame, macro: pl.DataFrame, gas_macro: pl.DataFrame) -> KeyedMacro:
    """The basic registers' macro profile per macro key (segment, else parent, else
    ``*|J|CONSUMPTION``; gas: ``gas:J``) with running sums, and each register's key."""
    regs = one_row_per_register(basic_registers(registers)).with_columns(segment_key(False), parent_key())
    have = set(macro["segment"].unique().to_list())
    fallback = pl.concat_str([pl.lit("*"), pl.col("jurisdiction"), pl.lit("CONSUMPTION")], separator="|")
    regs = regs.with_columns(
        macro_key=pl.when(pl.col("segment").is_in(list(have)))
        .then(pl.col("segment"))
        .when(pl.col("parent").is_in(list(have)))
        .then(pl.col("parent"))
        .otherwise(fallback)
    )
    is_gas = pl.col("service_type") == "GAS"
    # frames from before the components were added carry no wh / b: no cold-season part, flat base
    macro, gas_macro = (
        m.with_columns(
            wh=pl.col("wh") if "wh" in m.columns else pl.lit(0.0),
            b=pl.col("b") if "b" in m.columns else pl.lit(1.0),
        )
        for m in (macro, gas_macro)
    )
    # running sums per macro key (a few dozen keys), then one row per register and day by a join
    cols = ["read_date", "daily", "w", "wh", "b"]
    keyed = (
        pl.concat(
            [
                macro.select(pl.col("segment").alias("macro_key"), *cols),
                gas_macro.select(("gas:" + pl.col("jurisdiction")).alias("macro_key"), *cols),
            ]
        )
        .sort("macro_key", "read_date")
        .with_columns([pl.col(c).cum_sum().over("macro_key").alias(f"cum_{c}") for c in _SUMMED])
    )
    regs = regs.with_columns(
        macro_key=pl.when(is_gas).then("gas:" + pl.col("jurisdiction")).otherwise(pl.col("macro_key"))
    )
    return KeyedMacro(keyed, regs.select("meter_register_id", "macro_key").sort("meter_register_id"))


_NAMES = {"daily": "sum_m", "w": "sum_w", "wh": "sum_wh", "b": "sum_b"}


def _range_sums(
    frame: pl.DataFrame, first: str, last: str, rmacro: pl.DataFrame | KeyedMacro
) -> pl.DataFrame:
    """Add sum_m, sum_w, sum_wh, sum_b over the days first … last (inclusive) of each row's
    register; null when the range is not inside the register's macro range.

    rmacro (register_macro) is sorted by register and day, one row per day: when every register's
    days are contiguous, the running sums are gathered by row position (numpy) instead of two
    joins on (register, day). ``rmacro`` may be a :class:`KeyedMacro`: the rows are then those of
    each register's macro key."""
    if isinstance(rmacro, KeyedMacro):
        frame = frame.join(rmacro.regkey, on="meter_register_id", how="left", maintain_order="left")
        out = _range_sums(frame.rename({"meter_register_id": "_reg", "macro_key": "meter_register_id"}),
                          first, last, rmacro.keyed.rename({"macro_key": "meter_register_id"}))  # fmt: skip
        return out.rename({"meter_register_id": "macro_key", "_reg": "meter_register_id"}).drop("macro_key")
    meta = (
        rmacro.with_row_index("_row")
        .group_by("meter_register_id")
        .agg(
            _off=pl.col("_row").min(),
            _n=pl.len(),
            _d0=pl.col("read_date").min(),
            _d1=pl.col("read_date").max(),
        )
    )
    contiguous = meta.height == 0 or bool(
        meta.select(((pl.col("_d1") - pl.col("_d0")).dt.total_days() + 1 == pl.col("_n")).all()).item()
    )
    if not contiguous:
        return _range_sums_join(frame, first, last, rmacro)
    pos = frame.join(meta, on="meter_register_id", how="left", maintain_order="left").select(
        (pl.col(first) - pl.col("_d0")).dt.total_days().alias("_a"),
        (pl.col(last) - pl.col("_d0")).dt.total_days().alias("_z"),
        "_off",
        "_n",
    )
    a = pos["_a"].to_numpy(allow_copy=True).astype(np.float64)
    z = pos["_z"].to_numpy(allow_copy=True).astype(np.float64)
    off = pos["_off"].to_numpy(allow_copy=True).astype(np.float64)
    n = pos["_n"].to_numpy(allow_copy=True).astype(np.float64)
    ok = (a >= 0) & (z >= 0) & (a < n) & (z < n) & np.isfinite(off)  # NaN (null) compares False
    lo = np.where(ok, off + np.nan_to_num(a), 0).astype(np.int64)
    hi = np.where(ok, off + np.nan_to_num(z), 0).astype(np.int64)
    sums = {}
    for c in _SUMMED:
        cum = rmacro[f"cum_{c}"].to_numpy(allow_copy=True).astype(np.float64)
        val = rmacro[c].to_numpy(allow_copy=True).astype(np.float64)
        if cum.size == 0:
            sums[_NAMES[c]] = np.full(frame.height, np.nan)
            continue
        sums[_NAMES[c]] = np.where(ok, cum[hi] - cum[lo] + val[lo], np.nan)
    return frame.with_columns([pl.Series(k, v).fill_nan(None) for k, v in sums.items()])


def _range_sums_join(frame: pl.DataFrame, first: str, last: str, rmacro: pl.DataFrame) -> pl.DataFrame:
    """_range_sums by joins on (register, day) (registers whose macro days have gaps)."""
    cum = rmacro.select("meter_register_id", "read_date", *_SUMMED, *[f"cum_{c}" for c in _SUMMED])
    hi = cum.select(
        "meter_register_id",
        pl.col("read_date").alias(last),
        *[pl.col(f"cum_{c}").alias(f"_hi_{c}") for c in _SUMMED],
    )
    lo = cum.select(
        "meter_register_id",
        pl.col("read_date").alias(first),
        *[(pl.col(f"cum_{c}") - pl.col(c)).alias(f"_lo_{c}") for c in _SUMMED],
    )
    out = frame.join(hi, on=["meter_register_id", last], how="left").join(
        lo, on=["meter_register_id", first], how="left"
    )
    names = {"daily": "sum_m", "w": "sum_w", "wh": "sum_wh", "b": "sum_b"}
    return out.with_columns(
        [(pl.col(f"_hi_{c}") - pl.col(f"_lo_{c}")).alias(names[c]) for c in _SUMMED]
    ).drop([f"_hi_{c}" for c in _SUMMED] + [f"_lo_{c}" for c in _SUMMED])


def _with_pair_sums(pairs: pl.DataFrame, rmacro: pl.DataFrame | KeyedMacro) -> pl.DataFrame:
    """Σ M, Σ W and Σ Wh over each pair's days start + 1 … end (null when the pair is not inside the
    macro range)."""
    out = _range_sums(pairs.with_columns(_s=pl.col("start") + pl.duration(days=1)), "_s", "end", rmacro)
    return out.drop("_s")


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


def fit_registers(
    registers: pl.DataFrame, pairs_m: pl.DataFrame, run_date: dt.date, method: Literal["scalar", "seasonal"]
) -> pl.DataFrame:
    """Per basic register: model (SCALAR | SEASONAL | NONE), scalar, alpha, beta, gamma, components,
    history_days. The seasonal daily estimate is alpha·B + beta·W + gamma·Wh (tasks.domain.macro)."""
    usable = pairs_m.filter(pl.col("sum_m").is_not_null() & (pl.col("sum_m") > 0))
    recent = usable.filter(pl.col("end") > run_date - dt.timedelta(days=SCALAR_WINDOW_DAYS))
    win = recent.group_by("meter_register_id").agg(
        c_r=pl.col("consumption").sum(), m_r=pl.col("sum_m").sum(), d_r=pl.col("days").sum()
    )
    # features are the pairs' daily means of B, W and Wh; weights = days (CalTRACK billing style)
    wt = pl.col("days").cast(pl.Float64)
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
    f = regs.join(win, on="meter_register_id", how="left").join(alls, on="meter_register_id", how="left")
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
    fit = _range_shape() / pl.col("days")
    k = (
        pl.when(pl.col("model") == "SEASONAL")
        .then(pl.max_horizontal(pl.col("components"), pl.lit(1)))
        .otherwise(1)
    )
    return (
        p.with_columns(_r=pl.col("days") * (pl.col("consumption") / pl.col("days") - fit) ** 2, _k=k)
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


def estimate_basic(
    registers: pl.DataFrame,
    windows: pl.DataFrame,
    reads: pl.DataFrame,
    macro: pl.DataFrame,
    gas_macro: pl.DataFrame,
    run_date: dt.date,
    period_end: dt.date,
    method: Literal["scalar", "seasonal"] = "seasonal",
    pairs: pl.DataFrame | None = None,
    temperature: pl.DataFrame | None = None,
    caps: Caps | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(usage, estimated_basic_read, exceptions) for the shard's basic registers.

    ``pairs``: the shard's :func:`read_pairs` result when the caller already has it (its BAD_READ
    exceptions are then the caller's to keep, and ``reads`` is not used).
    ``temperature``: jurisdiction, read_date, temp (tasks.domain.weather.daily_temperature of
    ``weather_daily``), or None. With ``seasonal``, a register of a jurisdiction whose temperature
    reaches ``period_end`` gets the weather model of tasks.domain.basic_weather when one qualifies
    (model WEATHER); every other register keeps the method without weather.
    """
    regs = basic_registers(registers)
    if pairs is None:
        pairs, bad = read_pairs(regs, reads, caps)
    else:
        bad = pl.DataFrame(schema=EXCEPTION_SCHEMA)
    rmacro = keyed_macro(regs, macro, gas_macro)
    pairs_m = _with_pair_sums(pairs, rmacro)
    ambiguous = pl.DataFrame(schema=EXCEPTION_SCHEMA)
    if method == "seasonal":
        # how many times a large register's dial turned is inferred from its other pairs
        # (resolve_turns); scalar keeps SPEC's one rollover per negative difference
        pairs_m = resolve_turns(pairs_m, regs, rmacro)
        ambiguous = _ambiguous_exceptions(pairs_m)
    models = fit_registers(regs, pairs_m, run_date, "scalar")
    if method == "seasonal":
        # the seasonal fit learns a register's own shape, so it uses only pairs of consecutive
        # actual reads (an MDP-estimated read in between is skipped); scalar stays as SPEC writes it
        actual_reads = reads.filter(pl.col("quality").is_in(ACTUAL_READ)) if reads.height else reads
        fit_pairs = read_pairs(regs, actual_reads, caps)[0] if actual_reads.height else pairs
        fit_pairs_m = resolve_turns(_with_pair_sums(fit_pairs, rmacro), regs, rmacro)
        fit_pairs_m = fit_pairs_m.filter(~pl.col("ambiguous"))
        seasonal = fit_registers(regs, fit_pairs_m, run_date, "seasonal")
        models = pl.concat(
            [
                seasonal.filter(pl.col("model") == "SEASONAL"),
                models.join(
                    seasonal.filter(pl.col("model") == "SEASONAL"), on="meter_register_id", how="anti"
                ),
            ]
        )
    dd, wm = None, None
    jur = one_row_per_register(regs).select("meter_register_id", "jurisdiction")
    if method == "seasonal" and temperature is not None and temperature.height:
        from tasks.domain.basic_weather import degree_day_table, fill_temperature, fit_weather_models

        filled = fill_temperature(temperature)
        reach = filled.group_by("jurisdiction").agg(pl.col("read_date").max().alias("_to"))
        dd = degree_day_table(filled)
        wregs = one_row_per_register(regs).join(reach, on="jurisdiction").filter(pl.col("_to") >= period_end)
        wm = fit_weather_models(wregs, fit_pairs_m, dd, run_date)
        # a register keeps its model without weather when that fits its pairs better (residual
        # mean square per degree of freedom, the same day-weighted pairs): the weather model wins
        # where the temperature explains the register better than its segment's shape does
        wm = wm.join(_model_mse(fit_pairs_m, models, run_date), on="meter_register_id", how="left").filter(
            pl.col("_mse").is_null() | (pl.col("w_mse") < pl.col("_mse"))
        )
    models = _with_weather_models(models, wm)
    # the mean of the daily estimate over the macro range = the estimate on the key's mean day
    key_means = rmacro.keyed.group_by("macro_key").agg(pl.col(c).mean() for c in _SUMMED)
    mean_shape = rmacro.regkey.join(key_means, on="macro_key").join(models, on="meter_register_id")
    if dd is not None:
        dd_mean = dd.group_by("jurisdiction", "kind", "bp").agg(pl.col("dd").mean().alias("_m"))
        mean_shape = (
            mean_shape.join(jur, on="meter_register_id", how="left")
            .join(
                dd_mean.filter(pl.col("kind") == "H").select(
                    "jurisdiction", pl.col("bp").alias("h_bp"), pl.col("_m").alias("hdd")
                ),
                on=["jurisdiction", "h_bp"],
                how="left",
            )
            .join(
                dd_mean.filter(pl.col("kind") == "C").select(
                    "jurisdiction", pl.col("bp").alias("c_bp"), pl.col("_m").alias("cdd")
                ),
                on=["jurisdiction", "c_bp"],
                how="left",
            )
            .with_columns(
                hdd=pl.when(pl.col("h_bp").is_null()).then(0.0).otherwise(pl.col("hdd")),
                cdd=pl.when(pl.col("c_bp").is_null()).then(0.0).otherwise(pl.col("cdd")),
            )
        )
    else:
        mean_shape = mean_shape.with_columns(hdd=pl.lit(None, pl.Float64), cdd=pl.lit(None, pl.Float64))
    mean_shape = mean_shape.select("meter_register_id", _shape().alias("mean_shape"))
    pair_shape = _with_weather_sums(
        pairs_m.join(models, on="meter_register_id", how="left").with_columns(
            _first=pl.col("start") + pl.duration(days=1)
        ),
        "_first",
        "end",
        dd,
        jur,
    ).with_columns(pair_shape=_range_shape())
    # the pair covering day d is the one with the latest start before d (a pair covers start + 1 … end)
    days = (
        register_days(regs, windows)
        .with_columns(_before=pl.col("read_date") - pl.duration(days=1))
        .sort("_before")
        .join_asof(
            pair_shape.select(
                "meter_register_id", "start", "end", "days", "consumption", "actual", "pair_shape"
            ).sort("start"),
            left_on="_before",
            right_on="start",
            by="meter_register_id",
            strategy="backward",
            check_sortedness=False,
        )
        .join(rmacro.regkey, on="meter_register_id", how="left")
        .join(
            rmacro.keyed.select("macro_key", "read_date", "daily", "w", "wh", "b"),
            on=["macro_key", "read_date"],
            how="left",
        )
        .drop("macro_key")
        .join(models, on="meter_register_id", how="left")
        .join(mean_shape, on="meter_register_id", how="left")
        .drop("_before")
    )
    if dd is not None:
        days = (
            days.join(jur.rename({"jurisdiction": "_j"}), on="meter_register_id", how="left")
            .join(
                filled.select(pl.col("jurisdiction").alias("_j"), "read_date", pl.col("temp").alias("_t")),
                on=["_j", "read_date"],
                how="left",
            )
            .with_columns(
                hdd=pl.when(pl.col("h_bp").is_null())
                .then(0.0)
                .otherwise((pl.col("h_bp") - pl.col("_t")).clip(lower_bound=0.0)),
                cdd=pl.when(pl.col("c_bp").is_null())
                .then(0.0)
                .otherwise((pl.col("_t") - pl.col("c_bp")).clip(lower_bound=0.0)),
            )
            .drop("_j", "_t")
        )
    else:
        days = days.with_columns(hdd=pl.lit(None, pl.Float64), cdd=pl.lit(None, pl.Float64))
    shape = pl.coalesce(_shape(), pl.col("mean_shape"), pl.lit(0.0))
    in_pair = pl.col("end").is_not_null() & (pl.col("read_date") <= pl.col("end"))
    spread = (
        pl.when((pl.col("pair_shape") > 0) & _shape().is_not_null())
        .then(pl.col("consumption") * _shape() / pl.col("pair_shape"))
        .otherwise(pl.col("consumption") / pl.col("days"))
    )
    days = days.with_columns(
        value=pl.when(in_pair).then(spread).otherwise(shape),
        est=~(in_pair & pl.col("actual").fill_null(False)),
    )
    usage = usage_rows(
        days,
        interval_minutes=pl.lit(1440),
        values=pl.concat_list("value"),
        estimated=pl.concat_list("est"),
        method="BASIC",
    )
    ebr = _estimated_reads(regs, pairs, rmacro, models, mean_shape, period_end, dd, jur)
    no_hist = (
        regs.join(models.filter(pl.col("model") == "NONE"), on="meter_register_id")
        .select(
            "account_id",
            "meter_register_id",
            pl.lit("NO_HISTORY").alias("code"),
            pl.lit(
                "basic register has no usable read pair; estimated at scalar 1 on the macro profile"
            ).alias("detail"),
        )
        .cast(EXCEPTION_SCHEMA)  # type: ignore[arg-type]
    )
    return usage, ebr, pl.concat([bad, ambiguous, no_hist])


def _ambiguous_exceptions(pairs_m: pl.DataFrame) -> pl.DataFrame:
    """One AMBIGUOUS_READ row per register with read pairs whose number of dial turns is a guess."""
    amb = pairs_m.filter(pl.col("ambiguous") | pl.col("turns_ambiguous"))
    return (
        amb.group_by("meter_register_id", "account_id")
        .agg(n=pl.len(), first=pl.col("start").min(), last=pl.col("end").max(), c=pl.col("consumption").sum())
        .sort("meter_register_id", "account_id")
        .select(
            "account_id",
            "meter_register_id",
            pl.lit("AMBIGUOUS_READ").alias("code"),
            pl.format(
                "{} read pair(s) between {} and {} use about a full turn of the dial or more: the number "
                "of rollovers is a guess ({} units counted, the fewest turns that fit the register's rate)",
                "n",
                "first",
                "last",
                pl.col("c").round(0),
            ).alias("detail"),
        )
        .cast(EXCEPTION_SCHEMA)  # type: ignore[arg-type]
    )


def _estimated_reads(
    regs: pl.DataFrame,
    pairs: pl.DataFrame,
    rmacro: pl.DataFrame | KeyedMacro,
    models: pl.DataFrame,
    mean_shape: pl.DataFrame,
    period_end: dt.date,
    dd: pl.DataFrame | None = None,
    jur: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Index at the end of period_end for registers live on that day with a last read (the days
    last_read_date + 1 … period_end are estimated; none when the last read is on period_end)."""
    last = pairs.select("meter_register_id", "last_read_date", "last_index").unique("meter_register_id")
    live = one_row_per_register(regs).filter(
        (pl.col("register_start") <= period_end)
        & (pl.col("register_end").is_null() | (pl.col("register_end") >= period_end))
    )
    out = _range_sums(
        live.select("meter_register_id", "dial_digits", pl.col("multiplier").cast(pl.Float64))
        .join(last, on="meter_register_id")
        .filter(pl.col("last_read_date") <= period_end)
        .with_columns(_pe=pl.lit(period_end), _from=pl.col("last_read_date") + pl.duration(days=1))
        .join(models, on="meter_register_id", how="left")
        .join(mean_shape, on="meter_register_id", how="left"),
        "_from",
        "_pe",
        rmacro,
    ).with_columns(days=(pl.col("_pe") - pl.col("last_read_date")).dt.total_days())
    out = _with_weather_sums(
        out,
        "_from",
        "_pe",
        dd,
        jur if jur is not None else regs.select("meter_register_id", "jurisdiction").unique(),
    )
    consumption = (
        pl.when(pl.col("days") <= 0)
        .then(pl.lit(0.0))
        .otherwise(pl.coalesce(_range_shape(), pl.col("mean_shape").fill_null(0.0) * pl.col("days")))
    )
    index = pl.col("last_index") + pl.col("consumption") / pl.col("multiplier")
    mod = pl.lit(10.0).pow(pl.col("dial_digits").cast(pl.Float64))
    return (
        out.with_columns(consumption=consumption)
        .select(
            "meter_register_id",
            pl.lit(period_end).alias("read_date"),
            pl.when(pl.col("dial_digits").is_not_null())
            .then(index % mod)
            .otherwise(index)
            .round(3)
            .alias("index_value"),
            pl.col("consumption").round(3),
            pl.when(pl.col("model").is_in(["SEASONAL", "WEATHER"]))
            .then(pl.col("model"))
            .otherwise(pl.lit("SCALAR"))
            .alias("method"),
            basic_method_flag(pl.col("model").fill_null("NONE")).alias("method_flag"),
        )
        .sort("meter_register_id")
    )


# ---------------------------------------------------------------- dial turns (seasonal only)
MAX_EXTRA_TURNS = 3  # turns of the dial a pair may hide beyond the SPEC's (0 or 1)
TURN_CHECK_FRACTION = 0.3  # registers whose largest pair reaches 30% of a turn are checked
TURN_REL_TOLERANCE = 0.2  # an assignment "fits" when its pairs' rms residual is <= 0.2 turn
TURN_RIVAL_RATIO = 0.5  # another number of turns fitting twice as well makes the choice a guess


def resolve_turns(
    pairs_m: pl.DataFrame, registers: pl.DataFrame, rmacro: pl.DataFrame | KeyedMacro
) -> pl.DataFrame:
    """Infer how many times the dial turned over each read pair of large registers (``seasonal``).

    SPEC §4.3 adds one turn (10^dial_digits × multiplier) to a negative difference; a register
    using close to a turn between reads may hide one more (a difference that went up after a full
    turn). For each register with dial_digits whose largest pair reaches ``TURN_CHECK_FRACTION``
    of a turn (and ≥ 2 pairs), every candidate rate ρ = (c_j + k·T) / e_j (pair j, k = 0 …
    ``MAX_EXTRA_TURNS`` extra turns, e_j = Σ M over the pair) gives each pair the k_i that brings
    c_i + k_i·T closest to ρ·e_i; ρ is then refitted (Σ c' ÷ Σ e) and k re-chosen once. An
    assignment fits when the day-weighted rms of its pairs' residuals c_i − ρ·e_i is at most
    ``TURN_REL_TOLERANCE`` turns (a missed turn leaves a residual of about a turn; seasons the
    macro profile does not follow leave much less). Absolute, not relative: adding a turn to
    every pair always makes their relative differences smaller. The
    fitting assignment with the fewest turns wins (more turns can always fit a few pairs as well:
    a register turning twice a quarter is rarer than one turning once). The pairs of a checked
    register carry the chosen consumption and are fitted on (``ambiguous`` false); they are marked
    ``turns_ambiguous`` (exception AMBIGUOUS_READ by the caller, never silent) when no assignment
    fits (the best one is used) or another number of turns fits ``TURN_RIVAL_RATIO`` × better
    (rms residual). Adds ``extra_turns``, ``turns_ambiguous``.
    Pairs of registers not checked keep read_pairs' values (and its ``ambiguous``).
    """
    out = pairs_m.with_columns(extra_turns=pl.lit(0, pl.Int64), turns_ambiguous=pl.lit(False))
    if "ambiguous" not in out.columns:
        out = out.with_columns(ambiguous=pl.lit(False))
    turn = one_row_per_register(basic_registers(registers)).select(
        "meter_register_id",
        (
            pl.lit(10.0).pow(pl.col("dial_digits").cast(pl.Float64)) * pl.col("multiplier").cast(pl.Float64)
        ).alias("_T"),
    )
    if isinstance(rmacro, KeyedMacro):
        mean_m = rmacro.regkey.join(
            rmacro.keyed.group_by("macro_key").agg(pl.col("daily").mean().alias("_mm")), on="macro_key"
        ).select("meter_register_id", "_mm")
    else:
        mean_m = rmacro.group_by("meter_register_id").agg(pl.col("daily").mean().alias("_mm"))
    p = (
        out.with_row_index("_pid")
        .join(turn, on="meter_register_id", how="left")
        .join(mean_m, on="meter_register_id", how="left")
        .with_columns(_e=pl.coalesce("sum_m", pl.col("days") * pl.col("_mm")))
        .filter(pl.col("_T").is_not_null() & (pl.col("_T") > 0) & (pl.col("_e") > 0))
    )
    check = (
        p.group_by("meter_register_id")
        .agg(n=pl.len(), big=(pl.col("consumption") / pl.col("_T")).max())
        .filter((pl.col("n") >= 2) & (pl.col("big") >= TURN_CHECK_FRACTION))
    )
    p = p.join(check.select("meter_register_id"), on="meter_register_id", how="semi").select(
        "_pid", "meter_register_id", "consumption", "days", "_T", "_e"
    )
    if p.height == 0:
        return out
    ks = pl.DataFrame({"_k": list(range(MAX_EXTRA_TURNS + 1))}, schema={"_k": pl.Int64})
    cands = (
        p.join(ks, how="cross")
        .select(
            "meter_register_id",
            pl.concat_str([pl.col("_pid"), pl.col("_k")], separator=":").alias("cand"),
            ((pl.col("consumption") + pl.col("_k") * pl.col("_T")) / pl.col("_e")).alias("rho"),
        )
        .join(p, on="meter_register_id")
    )

    def assign(frame: pl.DataFrame) -> pl.DataFrame:
        k = (
            ((pl.col("rho") * pl.col("_e") - pl.col("consumption")) / pl.col("_T"))
            .round(0)
            .clip(0, MAX_EXTRA_TURNS)
            .cast(pl.Int64)
        )
        return frame.with_columns(k=k).with_columns(c=pl.col("consumption") + pl.col("k") * pl.col("_T"))

    x = assign(cands)
    x = assign(x.with_columns(rho=(pl.col("c").sum() / pl.col("_e").sum()).over("meter_register_id", "cand")))
    x = x.with_columns(rho=(pl.col("c").sum() / pl.col("_e").sum()).over("meter_register_id", "cand"))
    # day-weighted rms of the pairs' residuals from the rate's prediction, in turns of the dial
    pred = pl.col("rho") * pl.col("_e")
    scored = (
        x.group_by("meter_register_id", "cand")
        .agg(
            rel=(
                (pl.col("days") * ((pl.col("c") - pred) / pl.col("_T")) ** 2).sum() / pl.col("days").sum()
            ).sqrt(),
            turns=pl.col("k").sum(),
        )
        .with_columns(rel=pl.col("rel").fill_nan(None).fill_null(float("inf")))
    )
    fits = scored.filter(pl.col("rel") <= TURN_REL_TOLERANCE)
    # the fewest turns that fit; when none fits, the best fit (reported)
    chosen = pl.concat(
        [
            fits.sort("meter_register_id", "turns", "rel", "cand").unique("meter_register_id", keep="first"),
            scored.join(fits, on="meter_register_id", how="anti")
            .sort("meter_register_id", "rel", "turns", "cand")
            .unique("meter_register_id", keep="first"),
        ]
    )
    # another number of turns fitting much better makes the choice a guess
    rivals = (
        scored.join(
            chosen.select("meter_register_id", pl.col("turns").alias("_t"), pl.col("rel").alias("_r")),
            on="meter_register_id",
        )
        .filter((pl.col("turns") != pl.col("_t")) & (pl.col("rel") <= TURN_RIVAL_RATIO * pl.col("_r")))
        .select("meter_register_id")
        .unique()
    )
    verdict = chosen.select(
        "meter_register_id",
        "cand",
        (
            (pl.col("rel") > TURN_REL_TOLERANCE)
            | pl.col("meter_register_id").is_in(rivals["meter_register_id"].implode())
        ).alias("_amb"),
    )
    ks_of = x.join(verdict, on=["meter_register_id", "cand"]).select("_pid", pl.col("k").alias("_kx"), "_amb")
    return (
        out.with_row_index("_pid")
        .join(ks_of, on="_pid", how="left")
        .join(turn, on="meter_register_id", how="left")
        .with_columns(
            extra_turns=pl.col("_kx").fill_null(0),
            consumption=pl.col("consumption") + pl.col("_kx").fill_null(0) * pl.col("_T").fill_null(0.0),
            # a checked register's pairs carry the chosen turns and are fitted on; when another
            # assignment is as good, the choice is reported (turns_ambiguous → AMBIGUOUS_READ)
            ambiguous=pl.when(pl.col("_amb").is_not_null()).then(False).otherwise(pl.col("ambiguous")),
            turns_ambiguous=pl.col("_amb").fill_null(False),
        )
        .sort("_pid")
        .drop("_pid", "_kx", "_amb", "_T")
    )
