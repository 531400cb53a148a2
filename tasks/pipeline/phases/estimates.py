"""Estimating every unbilled register-day (SPEC §4.3): basic read pairs, interval scalars, basic and
interval estimates (with the NEM12 estimate files)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from tasks.adapters.meter_store import MeterData
from tasks.domain.basic_estimate import estimate_basic, weather_balance_points
from tasks.domain.basic_estimate import read_pairs as pairs_of
from tasks.domain.exceptions import combine
from tasks.domain.interval_estimate import estimate_interval, scalars_from_grid
from tasks.domain.plausibility import Caps
from tasks.pipeline.datasets import PhaseContext
from tasks.pipeline.phases.profiles import estimation_windows, history_start, of_shard

USAGE_COLUMNS = [
    "account_id", "meter_register_id", "nmi", "suffix", "stream", "register_time_class", "unit", "read_date",
    "interval_minutes", "values", "estimated", "method",
]  # fmt: skip
# the usage rows' order (one sort in the estimator: the lists are not gathered twice)
USAGE_ORDER = ("account_id", "meter_register_id", "read_date")
EBR_COLUMNS = ["meter_register_id", "read_date", "index_value", "consumption", "method", "method_flag"]


def _exceptions(df: pl.DataFrame | None) -> pl.DataFrame:
    return combine([df] if df is not None else [])


def read_pairs(
    ctx: PhaseContext, registers: pl.DataFrame, basic_reads: pl.DataFrame
) -> dict[str, list[pl.DataFrame]]:
    """Basic read pairs (rollovers, BAD_READ), shard by shard, in one task: a shard's pairs are a
    fraction of a second of work, less than a Prefect task run costs to orchestrate (~0.1 CPU s in
    the flow process and the server), and every later phase reads them per shard as before."""
    caps = Caps.from_settings(ctx.settings)
    pairs, exceptions = [], []
    for shard in range(ctx.shards):
        p, exc = pairs_of(of_shard(registers, shard), of_shard(basic_reads, shard), caps)
        pairs.append(p.sort("meter_register_id", "start"))
        exceptions.append(_exceptions(exc))
    return {"read_pairs": pairs, "read_pair_exceptions": exceptions}


def scalars(
    ctx: PhaseContext,
    registers: pl.DataFrame,
    segment_profiles: pl.DataFrame,
    day_grid: pl.DataFrame,
    meter_data: MeterData,
) -> dict[str, pl.DataFrame]:
    """Interval register scalars (SPEC §4.3) of one shard, from the day grid profiles_partial kept."""
    lf = meter_data.scan(ctx.run_date - dt.timedelta(days=365), ctx.run_date - dt.timedelta(days=1))
    sc, exc = scalars_from_grid(
        of_shard(registers, ctx.shard), day_grid, lf, segment_profiles, ctx.run_date,
        ctx.settings.segment_with_tni, Caps.from_settings(ctx.settings),
    )  # fmt: skip
    return {"scalars": sc.sort("meter_register_id"), "scalar_exceptions": _exceptions(exc)}


def balance_points(
    ctx: PhaseContext,
    registers: pl.DataFrame,
    basic_reads: pl.DataFrame,
    macro_profile: pl.DataFrame,
    gas_macro: pl.DataFrame,
    temperature: pl.DataFrame,
) -> dict[str, pl.DataFrame]:
    """The weather model's pooled balance points per population (jurisdiction, fuel, customer
    class), chosen once over every shard's basic registers so that the estimates do not depend on
    the shard count (empty unless ``seasonal`` with BUA_USE_WEATHER and temperature)."""
    weather = ctx.basic_method == "seasonal" and ctx.settings.use_weather and temperature.height
    chosen = weather_balance_points(
        registers,
        basic_reads,
        macro_profile,
        gas_macro,
        ctx.run_date,
        ctx.period_end,
        temperature if weather else None,
        Caps.from_settings(ctx.settings),
    )
    return {"weather_balance_points": chosen}


def basic_estimates(
    ctx: PhaseContext,
    registers: pl.DataFrame,
    windows: pl.DataFrame,
    basic_reads: pl.DataFrame,
    read_pairs: pl.DataFrame,
    macro_profile: pl.DataFrame,
    gas_macro: pl.DataFrame,
    gas_class_scalars: pl.DataFrame,
    weather_balance_points: pl.DataFrame,
    temperature: pl.DataFrame,
) -> dict[str, pl.DataFrame]:
    """Basic register usage over the unbilled windows and the estimated index at period end
    (with the weather model where ``temperature`` — weather_daily's daily means — has observations
    and BUA_USE_WEATHER is on; ``gas_class_scalars``: all shards' class medians, gas_shape;
    ``weather_balance_points``: all shards' pooled balance points, balance_points)."""
    usage, ebr, exc = estimate_basic(
        of_shard(registers, ctx.shard),
        estimation_windows(of_shard(windows, ctx.shard)),
        of_shard(basic_reads, ctx.shard),
        macro_profile,
        gas_macro,
        ctx.run_date,
        ctx.period_end,
        ctx.basic_method,  # type: ignore[arg-type]
        pairs=read_pairs,
        temperature=temperature if ctx.settings.use_weather and temperature.height else None,
        caps=Caps.from_settings(ctx.settings),
        class_scalars=gas_class_scalars,
        balance_points=weather_balance_points,
        order=USAGE_ORDER,
    )
    return {
        "basic_usage": usage.select(USAGE_COLUMNS),
        "estimated_basic_read": ebr.select(EBR_COLUMNS).sort("meter_register_id", "read_date"),
        "basic_exceptions": _exceptions(exc),
    }


def interval_estimates(
    ctx: PhaseContext,
    registers: pl.DataFrame,
    windows: pl.DataFrame,
    segment_profiles: pl.DataFrame,
    scalars: pl.DataFrame,
    window_data: pl.DataFrame,
    meter_data: MeterData,
) -> dict[str, pl.DataFrame]:
    """Interval register usage (actual + scalar × profile); its estimated days are also the NEM12
    estimate files (dataset ``nem12_estimates``)."""
    w = of_shard(windows, ctx.shard)
    lo = min(w["unbilled_from"].min() or ctx.period_start, ctx.period_start)
    hi = ctx.run_date - dt.timedelta(days=1)
    # the window's store rows profiles_partial kept (it reads from history start on); a window
    # reaching further back reads the store
    kept = lo >= history_start(ctx)
    usage, exc = estimate_interval(
        of_shard(registers, ctx.shard),
        estimation_windows(w),
        meter_data.scan(lo, hi),
        segment_profiles,
        scalars,
        ctx.settings.segment_with_tni,
        months=meter_data.months(lo, hi),
        data=window_data if kept else None,
        caps=Caps.from_settings(ctx.settings),
        order=USAGE_ORDER,
    )
    usage = usage.select(USAGE_COLUMNS)
    return {"interval_usage": usage, "interval_exceptions": _exceptions(exc), "nem12_estimates": usage}
