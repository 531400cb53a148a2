"""Read pairs of basic (accumulation) registers (SPEC §4.3): consecutive reads, one rollover per
negative difference, bad and implausible reads skipped (method: tasks.domain.basic_estimate)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from tasks.domain.billed import BILLED_READ_COLUMNS
from tasks.domain.exceptions import BAD_READ, IMPLAUSIBLE_VALUE
from tasks.domain.interval_estimate import EXCEPTION_SCHEMA
from tasks.domain.plausibility import Caps
from tasks.domain.profiles import one_row_per_register

IMPLAUSIBLE_FACTOR = 10.0
ACTUAL_READ = ("A", "S", "F")


# half-life in days of a read pair's weight in the seasonal and weather fits of a register, by
# the age of the pair's end at the run date (None: every pair weighs its days). A site's use drifts
# (growth, a new appliance, fewer staff): the latest pairs tell its present level best. 180 days
# (quarterly pairs: the latest weighs ~2.8x the one a year older) was chosen on the development
# portfolios among 90, 180 and none (docs/ACCURACY.md)
RECENCY_HALF_LIFE_DAYS: float | None = 180.0


def recency_weight(run_date: dt.date) -> pl.Expr:
    """A pair's weight relative to the register's other pairs (mean 1 over the frame's pairs of the
    register): 0.5 ** (age / half-life), age = days from the pair's end to ``run_date``."""
    h = RECENCY_HALF_LIFE_DAYS
    if h is None:
        return pl.lit(1.0)
    age = (pl.lit(run_date) - pl.col("end")).dt.total_days().cast(pl.Float64)
    r = pl.lit(0.5).pow(age / h)
    return r / r.mean().over("meter_register_id")


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
            _start_seg=pl.col("billed_seg").shift().over("meter_register_id"),
            _start_cum=pl.col("billed_cum").shift().over("meter_register_id"),
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


def _skip_reason(implausible: pl.Expr, over_cap: pl.Expr) -> pl.Expr:
    """Why a read is skipped (null: kept), on the rows of :func:`_pairs` with rate and median_rate."""
    return (
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


def _kept_pairs(
    kept: pl.DataFrame, medians: pl.DataFrame, implausible: pl.Expr, over_cap: pl.Expr
) -> pl.DataFrame:
    """The read pairs of the kept reads (the columns of :func:`read_pairs` but the last read)."""
    return (
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
            # what the billing system billed for exactly these days (null: not known)
            pl.when(pl.col("billed_seg") == pl.col("_start_seg"))
            .then(pl.col("billed_cum") - pl.col("_start_cum"))
            .alias("billed"),
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


def read_pairs(
    registers: pl.DataFrame, reads: pl.DataFrame, caps: Caps | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read pairs (meter_register_id, account_id, start, end, days, consumption, actual,
    end_index, billed) of the shard's basic registers, and BAD_READ exceptions. With ``caps``
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
    billed = [
        pl.col(c) if c in reads.columns else pl.lit(None, t).alias(c) for c, t in BILLED_READ_COLUMNS.items()
    ]
    r = (
        reads.select(
            "meter_register_id", "read_date", pl.col("index_value").cast(pl.Float64), "quality", *billed
        )
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
    reason = _skip_reason(implausible, over_cap)
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
    pairs = _kept_pairs(kept, medians, implausible, over_cap)
    last = (
        kept.sort("read_date")
        .group_by("meter_register_id")
        .agg(
            pl.col("read_date").last().alias("last_read_date"),
            pl.col("index_value").last().alias("last_index"),
        )
    )
    return pairs.join(last, on="meter_register_id", how="left"), exceptions.cast(EXCEPTION_SCHEMA)  # type: ignore[arg-type]
