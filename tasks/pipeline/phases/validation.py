"""Validation of the accrual (SPEC §4.6): the back-test of the estimator as at R − k months on a
sample of shards, and the true-up of the previous run against what has been billed since
(tasks/domain/backtest.py, tasks/domain/trueup.py)."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import polars as pl

from tasks.adapters.meter_store import MeterData
from tasks.adapters.validation_tables import PreviousAccrual
from tasks.domain.backtest import (
    BACKTEST_COLUMNS,
    TRUEUP_COLUMNS,
    backtest_date,
    backtest_metrics,
    backtest_shards,
    basic_compare,
    interval_compare,
    profiles_as_at,
)
from tasks.domain.macro import gas_shape, macro_profile
from tasks.domain.plausibility import Caps
from tasks.domain.profiles import segment_key
from tasks.domain.trueup import daily_shapes, trueup_rows
from tasks.pipeline.datasets import PhaseContext, concat_shards
from tasks.pipeline.phases.profiles import history_start, of_shard


def backtest(
    ctx: PhaseContext,
    registers: pl.DataFrame,
    profiles: pl.DataFrame,
    read_pairs: list[pl.DataFrame],
    basic_reads: pl.DataFrame,
    meter_data: list[MeterData],
) -> tuple[pl.DataFrame, list[int]]:
    """The back-test metrics and the shards sampled (the meter data of those shards only: 365 days
    before B for the scalars, B … R − 1 to compare)."""
    s = ctx.settings
    b = backtest_date(ctx.run_date, ctx.spec.backtest_months)
    window_to = ctx.run_date - dt.timedelta(days=1)
    chosen = backtest_shards(registers, ctx.shards, s.backtest_registers)
    keys = (
        registers.filter(pl.col("service_type") == "ELECTRICITY")
        .select(segment_key(s.segment_with_tni))
        .unique()["segment"]
        .drop_nulls()
        .sort()
        .to_list()
    )
    hist_from = history_start(ctx)
    fixed_b = profiles_as_at(profiles, keys, b, hist_from, window_to, s.min_registers)
    macro_b = macro_profile(fixed_b)
    # the gas shape as at B is fitted on the sampled shards' gas read pairs (a random sample of the
    # gas population; the full fit costs seconds at 100k accounts)
    gas_regs = (
        registers.filter((pl.col("service_type") == "GAS") & pl.col("shard").is_in(chosen))
        .select("meter_register_id", "jurisdiction")
        .unique("meter_register_id")
    )
    pairs = concat_shards([read_pairs[shard] for shard in chosen])
    gas_pairs = (
        pairs.filter(pl.col("end") < b).join(gas_regs, on="meter_register_id", how="inner")
        if pairs.width
        else pairs
    )
    jurisdictions = sorted(registers["jurisdiction"].drop_nulls().unique().to_list())
    # the ELECTRIC_HEATING driver from the profiles as at B, as the gas_shape phase does with R's
    gas_macro_b, _ = gas_shape(gas_pairs, jurisdictions, hist_from, window_to, macro=macro_b, fixed=fixed_b)

    def compare(shard: int) -> pl.DataFrame:
        data = meter_data[shard]
        history = data.scan(b - dt.timedelta(days=365), b - dt.timedelta(days=1))
        window = data.scan(b, window_to)
        return interval_compare(
            of_shard(registers, shard), history, window, fixed_b, b, window_to, s.segment_with_tni,
            Caps.from_settings(s),
        )  # fmt: skip

    sample = registers.filter(pl.col("shard").is_in(chosen))
    reads = (
        basic_reads.filter(pl.col("shard").is_in(chosen)) if "shard" in basic_reads.columns else basic_reads
    )
    # the sampled shards' comparisons and the basic one are independent: on threads (each shard's
    # reads are one month file at a time, so one shard alone leaves a core idle); results in order
    with ThreadPoolExecutor(s.max_workers, thread_name_prefix="bua-backtest") as pool:
        interval = [pool.submit(compare, shard) for shard in chosen]
        basic = pool.submit(
            basic_compare, sample, reads, macro_b, gas_macro_b, b, ctx.basic_method, Caps.from_settings(s)
        )
        parts = [f.result() for f in interval] + [basic.result()]
    compared = pl.concat(parts, how="vertical_relaxed")
    metrics = backtest_metrics(compared).with_columns(
        backtest_date=pl.lit(b, pl.Date), window_to=pl.lit(window_to, pl.Date)
    )
    return metrics.select(BACKTEST_COLUMNS), chosen


def trueup(
    previous: PreviousAccrual, macro: pl.DataFrame | None = None, gas_macro: pl.DataFrame | None = None
) -> pl.DataFrame:
    """The true-up rows of the previous run (none without one); ``macro``/``gas_macro``: this run's
    macro profiles (the actual shape of the days since), to spread usage over days."""
    if previous.run_date is None:
        return pl.DataFrame(schema={c: pl.Utf8 for c in TRUEUP_COLUMNS}).head(0)
    shapes = (
        daily_shapes(previous.accounts, macro, gas_macro)
        if macro is not None and gas_macro is not None
        else None
    )
    rows = trueup_rows(previous.accounts, previous.accrued, previous.billed, shapes).with_columns(
        accrual_run_date=pl.lit(previous.run_date, pl.Date)
    )
    return rows.select(TRUEUP_COLUMNS)


def validation(
    ctx: PhaseContext,
    registers: pl.DataFrame,
    profiles: pl.DataFrame,
    read_pairs: list[pl.DataFrame],
    basic_reads: pl.DataFrame,
    macro_profile: pl.DataFrame,
    gas_macro: pl.DataFrame,
    meter_data: list[MeterData],
    previous_accrual: PreviousAccrual,
) -> dict[str, Any]:
    """Back-test and true-up → bua_backtest, bua_trueup (tables and CSVs)."""
    bt, chosen = backtest(ctx, registers, profiles, read_pairs, basic_reads, meter_data)
    tu = trueup(previous_accrual, macro_profile, gas_macro)
    previous = previous_accrual.run_date
    note = (
        f"true-up: no run before {ctx.run_date} in the database; nothing to compare yet"
        if previous is None
        else f"true-up: the accrual of {previous} against the invoices issued {previous} … "
        f"{ctx.run_date - dt.timedelta(days=1)}"
    )
    return {
        "validation_tables": {"bua_backtest": bt, "bua_trueup": tu},
        "stats": {
            "note": note,
            "backtest_date": backtest_date(ctx.run_date, ctx.spec.backtest_months).isoformat(),
            "backtest_shards": chosen,
            "trueup_run_date": previous.isoformat() if previous else None,
        },
    }
