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
``NO_HISTORY``; a gas register then takes its class and jurisdiction's median s_r,
:func:`gas_class_scalars`, with ``seasonal`` only); ``seasonal`` — α + β·W(day), W the
weather-sensitive part of M (tasks.domain.macro), α and β from a least squares weighted by days ×
recency (tasks.domain.basic_pairs.recency_weight) of the daily averages of the pairs of consecutive
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
from collections.abc import Sequence
from typing import Literal

import polars as pl

from tasks.domain.basic_fit import (
    _model_mse,
    _range_shape,
    _shape,
    _with_weather_models,
    _with_weather_sums,
    fit_registers,
)
from tasks.domain.basic_macro import _SUMMED, KeyedMacro, _range_sums, _with_pair_sums, keyed_macro
from tasks.domain.basic_macro import register_macro as register_macro
from tasks.domain.basic_pairs import ACTUAL_READ, basic_registers, read_pairs
from tasks.domain.basic_turns import _ambiguous_exceptions, resolve_turns
from tasks.domain.flags import basic_method_flag
from tasks.domain.interval_estimate import EXCEPTION_SCHEMA, register_days
from tasks.domain.plausibility import Caps
from tasks.domain.profiles import one_row_per_register
from tasks.domain.usage import usage_rows


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
    class_scalars: pl.DataFrame | None = None,
    balance_points: pl.DataFrame | None = None,
    order: Sequence[str] = ("meter_register_id", "read_date"),
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(usage sorted by ``order``, estimated_basic_read, exceptions) for the shard's basic registers.

    ``pairs``: the shard's :func:`read_pairs` result when the caller already has it (its BAD_READ
    exceptions are then the caller's to keep, and ``reads`` is not used).
    ``temperature``: jurisdiction, read_date, temp (tasks.domain.weather.daily_temperature of
    ``weather_daily``), or None. With ``seasonal``, a register of a jurisdiction whose temperature
    reaches ``period_end`` gets the weather model of tasks.domain.basic_weather when one qualifies
    (model WEATHER); every other register keeps the method without weather.
    ``class_scalars``: :func:`gas_class_scalars` over the whole run (``seasonal``: a gas register
    without history takes its class and jurisdiction's median scalar); None computes them from
    ``registers`` and the pairs given here.
    ``balance_points``: :func:`weather_balance_points` over the whole run (the weather model's
    pooled balance points); None chooses them among the registers given here.
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
    models, dd, filled = _models(
        regs, reads, pairs, pairs_m, rmacro, run_date, period_end, method, temperature, caps, balance_points
    )
    if method == "seasonal":
        if class_scalars is None:
            class_scalars = _class_medians(regs, pairs_m, run_date)
        models = _with_class_scalars(models, regs, class_scalars)
    else:
        class_scalars = None
    jur = one_row_per_register(regs).select("meter_register_id", "jurisdiction")
    mean_shape = _mean_shapes(rmacro, models, dd, jur)
    days = _day_rows(regs, windows, pairs_m, rmacro, models, mean_shape, dd, jur, filled)
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
        order=order,
    )
    ebr = _estimated_reads(regs, pairs, rmacro, models, mean_shape, period_end, dd, jur)
    no_hist = _no_history(regs, models, class_scalars)
    return usage, ebr, pl.concat([bad, ambiguous, no_hist])


def _models(
    regs: pl.DataFrame,
    reads: pl.DataFrame,
    pairs: pl.DataFrame,
    pairs_m: pl.DataFrame,
    rmacro: KeyedMacro,
    run_date: dt.date,
    period_end: dt.date,
    method: Literal["scalar", "seasonal"],
    temperature: pl.DataFrame | None,
    caps: Caps | None,
    balance_points: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.DataFrame | None]:
    """(models, degree-day table, filled temperature) of :func:`estimate_basic`: scalar fits, the
    seasonal ones where they qualify, then the weather models (``seasonal`` with temperature)."""
    models = fit_registers(regs, pairs_m, run_date, "scalar")
    if method == "seasonal":
        fit_pairs_m = _fit_pairs(regs, reads, pairs, rmacro, caps)
        seasonal = fit_registers(regs, fit_pairs_m, run_date, "seasonal")
        models = pl.concat(
            [
                seasonal.filter(pl.col("model") == "SEASONAL"),
                models.join(
                    seasonal.filter(pl.col("model") == "SEASONAL"), on="meter_register_id", how="anti"
                ),
            ]
        )
    dd, wm, filled = None, None, None
    if method == "seasonal" and temperature is not None and temperature.height:
        from tasks.domain.basic_weather import fit_weather_models

        wregs, dd, filled = _weather_inputs(regs, temperature, period_end)
        wm = fit_weather_models(wregs, fit_pairs_m, dd, run_date, balance_points)
        # a register keeps its model without weather when that fits its pairs better (residual
        # mean square per degree of freedom, the same day-weighted pairs): the weather model wins
        # where the temperature explains the register better than its segment's shape does
        wm = wm.join(_model_mse(fit_pairs_m, models, run_date), on="meter_register_id", how="left").filter(
            pl.col("_mse").is_null() | (pl.col("w_mse") < pl.col("_mse"))
        )
    return _with_weather_models(models, wm), dd, filled


def _fit_pairs(
    regs: pl.DataFrame, reads: pl.DataFrame, pairs: pl.DataFrame, rmacro: KeyedMacro, caps: Caps | None
) -> pl.DataFrame:
    """The pairs the seasonal and weather fits learn from, with their macro sums and dial turns."""
    # the seasonal fit learns a register's own shape, so it uses only pairs of consecutive
    # actual reads (an MDP-estimated read in between is skipped); scalar stays as SPEC writes it
    actual_reads = reads.filter(pl.col("quality").is_in(ACTUAL_READ)) if reads.height else reads
    fit_pairs = read_pairs(regs, actual_reads, caps)[0] if actual_reads.height else pairs
    fit_pairs_m = resolve_turns(_with_pair_sums(fit_pairs, rmacro), regs, rmacro)
    return fit_pairs_m.filter(~pl.col("ambiguous"))


def _weather_inputs(
    regs: pl.DataFrame, temperature: pl.DataFrame, period_end: dt.date
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(the registers of jurisdictions whose temperature reaches period_end, one row each; the
    degree-day table; the filled temperature)."""
    from tasks.domain.basic_weather import degree_day_table, fill_temperature

    filled = fill_temperature(temperature)
    reach = filled.group_by("jurisdiction").agg(pl.col("read_date").max().alias("_to"))
    wregs = one_row_per_register(regs).join(reach, on="jurisdiction").filter(pl.col("_to") >= period_end)
    return wregs, degree_day_table(filled), filled


def weather_balance_points(
    registers: pl.DataFrame,
    reads: pl.DataFrame,
    macro: pl.DataFrame,
    gas_macro: pl.DataFrame,
    run_date: dt.date,
    period_end: dt.date,
    temperature: pl.DataFrame | None,
    caps: Caps | None = None,
) -> pl.DataFrame:
    """The weather model's pooled balance points (tasks.domain.basic_weather.pooled_balance_points)
    over every register given, from the same pairs ``seasonal`` fits on. The weather_balance_points
    phase computes them once over all shards (dataset ``weather_balance_points``), so a register's
    balance points, and its estimate, do not depend on the shard count."""
    from tasks.domain.basic_weather import BALANCE_POINT_SCHEMA, pooled_balance_points

    regs = basic_registers(registers)
    if temperature is None or not temperature.height or not regs.height or not reads.height:
        return pl.DataFrame(schema=BALANCE_POINT_SCHEMA)
    rmacro = keyed_macro(regs, macro, gas_macro)
    # all of read_pairs only when there is no actual read (then the fit uses every pair)
    actual = reads.filter(pl.col("quality").is_in(ACTUAL_READ)).height
    pairs = pl.DataFrame() if actual else read_pairs(regs, reads, caps)[0]
    wregs, dd, _ = _weather_inputs(regs, temperature, period_end)
    return pooled_balance_points(wregs, _fit_pairs(regs, reads, pairs, rmacro, caps), dd, run_date)


def _no_history(regs: pl.DataFrame, models: pl.DataFrame, class_scalars: pl.DataFrame | None) -> pl.DataFrame:
    """NO_HISTORY for every register without a usable read pair, saying which scalar it got."""
    none = regs.join(models.filter(pl.col("model") == "NONE"), on="meter_register_id")
    grp = ["customer_class", "jurisdiction"]
    if class_scalars is not None and "customer_class" in none.columns:
        none = none.join(
            class_scalars.select(*grp, _cls=pl.lit(True)), on=grp, how="left", nulls_equal=True
        ).with_columns(_cls=pl.col("_cls") & (pl.col("service_type") == "GAS"))
    else:
        none = none.with_columns(_cls=pl.lit(None, pl.Boolean))
    return none.select(
        "account_id",
        "meter_register_id",
        pl.lit("NO_HISTORY").alias("code"),
        pl.when(pl.col("_cls").fill_null(False))
        .then(
            pl.lit(
                "gas register has no usable read pair; estimated at its class and jurisdiction's median scalar on the gas shape"
            )
        )
        .otherwise(
            pl.lit("basic register has no usable read pair; estimated at scalar 1 on the macro profile")
        )
        .alias("detail"),
    ).cast(EXCEPTION_SCHEMA)  # type: ignore[arg-type]


MIN_CLASS_REGISTERS = 3  # gas registers with history of a class and jurisdiction for their median
CLASS_SCALAR_SCHEMA = {
    "customer_class": pl.String,
    "jurisdiction": pl.String,
    "scalar": pl.Float64,
    "registers": pl.UInt32,
}


def gas_class_scalars(
    registers: pl.DataFrame,
    pairs: pl.DataFrame,
    macro: pl.DataFrame,
    gas_macro: pl.DataFrame,
    run_date: dt.date,
) -> pl.DataFrame:
    """customer_class, jurisdiction, scalar, registers: the median micro-scalar s_r (SPEC §4.3, on
    the read pairs with their dial turns resolved, as ``seasonal`` computes it) of the gas basic
    registers with history, per class and jurisdiction with at least ``MIN_CLASS_REGISTERS`` such
    registers. The gas_shape phase computes it once over every shard's registers and read pairs,
    so the medians do not depend on the shard count (dataset ``gas_class_scalars``)."""
    regs = basic_registers(registers).filter(pl.col("service_type") == "GAS")
    if "customer_class" not in regs.columns or not regs.height or not pairs.width:
        return pl.DataFrame(schema=CLASS_SCALAR_SCHEMA)
    rmacro = keyed_macro(regs, macro, gas_macro)
    gas_pairs = pairs.join(regs.select("meter_register_id").unique(), on="meter_register_id", how="semi")
    return _class_medians(regs, resolve_turns(_with_pair_sums(gas_pairs, rmacro), regs, rmacro), run_date)


def _class_medians(regs: pl.DataFrame, pairs_m: pl.DataFrame, run_date: dt.date) -> pl.DataFrame:
    """:func:`gas_class_scalars` from the registers' pairs with their macro sums, turns resolved."""
    gas = basic_registers(regs).filter(pl.col("service_type") == "GAS")
    if "customer_class" not in gas.columns or not gas.height:
        return pl.DataFrame(schema=CLASS_SCALAR_SCHEMA)
    fits = fit_registers(gas, pairs_m, run_date, "scalar").filter(pl.col("model") != "NONE")
    keys = one_row_per_register(gas).select("meter_register_id", "customer_class", "jurisdiction")
    return (
        fits.join(keys, on="meter_register_id")
        .group_by("customer_class", "jurisdiction")
        .agg(pl.col("scalar").median(), registers=pl.len())
        .filter(pl.col("registers") >= MIN_CLASS_REGISTERS)
        .cast(CLASS_SCALAR_SCHEMA)  # type: ignore[arg-type]
        .sort("customer_class", "jurisdiction")
    )


def _with_class_scalars(
    models: pl.DataFrame, regs: pl.DataFrame, class_scalars: pl.DataFrame
) -> pl.DataFrame:
    """A gas register without history (model NONE) gets its class and jurisdiction's median
    scalar (:func:`gas_class_scalars`), else keeps 1. The gas shape is one per jurisdiction, the
    average gas register of all classes, so scalar 1 made a new business customer a residential
    one; the electricity macro profile is already its segment's (class and jurisdiction) average.
    ``seasonal`` only: ``scalar`` keeps SPEC §4.3 as written (no history → s_r = 1)."""
    if "customer_class" not in regs.columns:
        return models
    grp = ["customer_class", "jurisdiction"]
    keys = one_row_per_register(regs).select("meter_register_id", "service_type", *grp)
    none_gas = (pl.col("model") == "NONE") & (pl.col("service_type") == "GAS")
    return (
        models.join(keys, on="meter_register_id", how="left")
        .join(class_scalars.select(*grp, _cls="scalar"), on=grp, how="left", nulls_equal=True)
        .with_columns(
            scalar=pl.when(none_gas)
            .then(pl.col("_cls").fill_null(pl.col("scalar")))
            .otherwise(pl.col("scalar"))
        )
        .drop("service_type", *grp, "_cls")
    )


def _mean_shapes(
    rmacro: KeyedMacro, models: pl.DataFrame, dd: pl.DataFrame | None, jur: pl.DataFrame
) -> pl.DataFrame:
    """meter_register_id, mean_shape: the register's daily estimate on its macro key's mean day."""
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
    return mean_shape.select("meter_register_id", _shape().alias("mean_shape"))


def _day_rows(
    regs: pl.DataFrame,
    windows: pl.DataFrame,
    pairs_m: pl.DataFrame,
    rmacro: KeyedMacro,
    models: pl.DataFrame,
    mean_shape: pl.DataFrame,
    dd: pl.DataFrame | None,
    jur: pl.DataFrame,
    filled: pl.DataFrame | None,
) -> pl.DataFrame:
    """One row per register-day of the unbilled window: its read pair (the latest starting before
    the day), macro day, model, mean shape and degree days (hdd, cdd; null without temperature)."""
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
    if dd is not None and filled is not None:
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
    return days


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
