"""Segment profiles (SPEC §4.2): per-shard partial sums, one combine, check and fix, the macro
(daily) profile and the gas shape."""

from __future__ import annotations

import datetime as dt

import polars as pl

from tasks.adapters.extract import HISTORY_DAYS
from tasks.adapters.meter_store import MeterData
from tasks.domain.basic_estimate import gas_class_scalars
from tasks.domain.exceptions import combine
from tasks.domain.interval_estimate import window_keys
from tasks.domain.macro import gas_shape as fit_gas_shape
from tasks.domain.macro import macro_profile
from tasks.domain.plausibility import Caps, implausible_exceptions
from tasks.domain.profiles import combine_profiles, profile_read, segment_key
from tasks.domain.scalars import MIN_SHORT_DAYS, reference_windows
from tasks.domain.segments import check_and_fix
from tasks.pipeline.datasets import PhaseContext, concat_shards


def history_start(ctx: PhaseContext) -> dt.date:
    """The first day profiles, scalars and read pairs look at (HISTORY_DAYS before the run date)."""
    return ctx.run_date - dt.timedelta(days=HISTORY_DAYS)


def of_shard(df: pl.DataFrame, shard: int | None) -> pl.DataFrame:
    return df.filter(pl.col("shard") == shard)


def estimation_windows(windows: pl.DataFrame) -> pl.DataFrame:
    return windows.select("account_id", "unbilled_from", "unbilled_to")


def profiles_partial(
    ctx: PhaseContext, registers: pl.DataFrame, windows: pl.DataFrame, meter_data: MeterData
) -> dict[str, pl.DataFrame]:
    """One shard's segment-profile partial sums over the history window; from the same read, the
    day grid the scalars need and the store rows of the unbilled windows (interval estimates)."""
    regs = of_shard(registers, ctx.shard)
    lo, hi = history_start(ctx), ctx.run_date - dt.timedelta(days=1)
    short_from, long_from = reference_windows(ctx.run_date)
    w = estimation_windows(of_shard(windows, ctx.shard))
    keep, flagged = window_keys(regs, w), []
    partial, day_grid, window_data = profile_read(
        regs, meter_data.scan(lo, hi), ctx.settings.segment_with_tni, lo, hi,
        grid_from=long_from, short_from=short_from, min_short_days=MIN_SHORT_DAYS,
        months=meter_data.months(lo, hi), keep=keep, caps=Caps.from_settings(ctx.settings), flagged=flagged,
    )  # fmt: skip
    # implausible days outside the unbilled windows (the interval estimates report those inside)
    history_only = (
        pl.concat(flagged).join(keep, on=["nmi", "suffix", "read_date"], how="anti") if flagged else None
    )
    return {
        "profile_partial": partial.sort("segment", "read_date"),
        "day_grid": day_grid,  # rows in read order, deterministic
        "window_data": window_data,
        "profile_exceptions": combine(
            [implausible_exceptions(history_only)] if history_only is not None else []
        ),
    }


def profiles_combine(ctx: PhaseContext, profile_partial: list[pl.DataFrame]) -> dict[str, pl.DataFrame]:
    return {"profiles": combine_profiles(profile_partial, ctx.settings.profile_composition)}


def segments(ctx: PhaseContext, registers: pl.DataFrame, profiles: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Check and fix the segment profiles (SPEC §4.2); the macro (daily) profile."""
    keys = (
        registers.filter(pl.col("service_type") == "ELECTRICITY")
        .select(segment_key(ctx.settings.segment_with_tni))
        .unique()["segment"]
        .drop_nulls()
        .sort()
        .to_list()
    )
    fixed, fills = check_and_fix(
        profiles, keys, history_start(ctx), ctx.period_end, ctx.settings.min_registers
    )
    return {
        "segment_profiles": fixed.sort("segment", "read_date"),
        "segment_fills": fills.sort("segment", "read_date"),
        "macro_profile": macro_profile(fixed).sort("segment", "read_date"),
    }


def gas_shape(
    ctx: PhaseContext,
    registers: pl.DataFrame,
    read_pairs: list[pl.DataFrame],
    macro_profile: pl.DataFrame,
    segment_profiles: pl.DataFrame,
    temperature: pl.DataFrame,
) -> dict[str, pl.DataFrame]:
    """The gas macro profile per jurisdiction, fitted on all shards' gas read pairs (with the HDD
    drivers of ``temperature`` when BUA_USE_WEATHER is on and it has observations), and the median
    scalar of the gas registers with history per class and jurisdiction over all shards (a gas
    register without history takes it under ``seasonal``; the same for any shard count)."""
    gas_regs = (
        registers.filter(pl.col("service_type") == "GAS")
        .select("meter_register_id", "jurisdiction")
        .unique("meter_register_id")
    )
    pairs = concat_shards(read_pairs)
    gas_pairs = pairs.join(gas_regs, on="meter_register_id", how="inner") if pairs.width else pairs
    jurisdictions = sorted(registers["jurisdiction"].drop_nulls().unique().to_list())
    gas_macro, gas_fit = fit_gas_shape(
        gas_pairs,
        jurisdictions,
        history_start(ctx),
        ctx.period_end,
        macro=macro_profile,
        fixed=segment_profiles,
        temperature=temperature if ctx.settings.use_weather and temperature.height else None,
    )
    class_scalars = gas_class_scalars(registers, gas_pairs, macro_profile, gas_macro, ctx.run_date)
    return {"gas_macro": gas_macro, "gas_fit": gas_fit, "gas_class_scalars": class_scalars}
