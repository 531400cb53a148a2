"""The interval scalars of one shard (SPEC §4.3, tasks.domain.scalars): the 28-day window, and
the 365-day one only for registers short of days; from the store or from the profiles' day grid."""

from __future__ import annotations

import datetime as dt

import polars as pl

from tasks.domain.exceptions import EXCEPTION_SCHEMA
from tasks.domain.plausibility import Caps
from tasks.domain.scalars import (
    MIN_SHORT_DAYS,
    day_sums_from_grid,
    interval_day_sums,
    interval_scalars,
    reference_windows,
)


def scalars_shard(
    registers: pl.DataFrame,
    interval: pl.LazyFrame,
    fixed: pl.DataFrame,
    run_date: dt.date,
    segment_with_tni: bool = False,
    caps: Caps | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The shard's interval scalars and NO_HISTORY exceptions.

    The 365-day reference scan is made only for the registers that lack 14 days in the last 28.
    """
    short_from, long_from = reference_windows(run_date)
    end = run_date - dt.timedelta(days=1)
    short = interval_day_sums(registers, interval, fixed, short_from, end, segment_with_tni, caps)
    rest = _short_of_days(registers, short)
    long = interval_day_sums(
        rest, interval, fixed, long_from, short_from - dt.timedelta(days=1), segment_with_tni, caps
    )
    scalars, no_history = interval_scalars(registers, pl.concat([short, long]), run_date)
    return scalars, no_history.cast(EXCEPTION_SCHEMA)  # type: ignore[arg-type]


def _short_of_days(registers: pl.DataFrame, short: pl.DataFrame) -> pl.DataFrame:
    """The registers with fewer than 14 days of actual data in the 28-day window (they need 365)."""
    enough = (
        short.group_by("meter_register_id").len().filter(pl.col("len") >= MIN_SHORT_DAYS)["meter_register_id"]
    )
    return registers.filter(~pl.col("meter_register_id").is_in(enough.implode()))


def scalars_from_grid(
    registers: pl.DataFrame,
    day_grid: pl.DataFrame,
    interval: pl.LazyFrame,
    fixed: pl.DataFrame,
    run_date: dt.date,
    segment_with_tni: bool = False,
    caps: Caps | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`scalars_shard` from the shard's day grid (written by the profiles phase): the grid
    holds every register-day with an actual half hour in R − 28 … R − 1, and the older days of
    the registers with fewer than 14 of them. A register needing the 365-day window that the grid
    does not cover (its segment lacks profile days, so fewer days count than the grid saw) is
    read from the store as before (``interval``)."""
    short_from, long_from = reference_windows(run_date)
    end = run_date - dt.timedelta(days=1)
    short = day_sums_from_grid(registers, day_grid, fixed, short_from, end, segment_with_tni)
    rest = _short_of_days(registers, short)
    seen = day_grid.filter(pl.col("read_date") >= short_from).group_by("meter_register_id").len()
    not_kept = seen.filter(pl.col("len") >= MIN_SHORT_DAYS)["meter_register_id"]  # long days left out
    in_grid = rest.filter(~pl.col("meter_register_id").is_in(not_kept.implode()))
    from_store = rest.filter(pl.col("meter_register_id").is_in(not_kept.implode()))
    long_to = short_from - dt.timedelta(days=1)
    long = pl.concat(
        [
            day_sums_from_grid(in_grid, day_grid, fixed, long_from, long_to, segment_with_tni),
            interval_day_sums(from_store, interval, fixed, long_from, long_to, segment_with_tni, caps),
        ]
    )
    scalars, no_history = interval_scalars(registers, pl.concat([short, long]), run_date)
    return scalars, no_history.cast(EXCEPTION_SCHEMA)  # type: ignore[arg-type]
