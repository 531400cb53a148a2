"""Interval register estimation over the unbilled window (SPEC §4.3), one shard.

Method: one row per register-day of the account's unbilled window (clipped to the register's
life). Values present in the meter store are kept as given (MDP estimates, quality E, included:
the retailer is billed on them); an interval with no row, a null value or quality N is estimated
as s_r × P(segment, day, slot) / k, where P is the fixed 30-minute segment profile (check/fix
already extends it to days after the last data with the same day type's latest 4 weeks) and k the
number of the register's intervals per half hour. Everything is list arithmetic on register-day
rows: ``values = present·actual + (1 − present)·s_r·P``; ``estimated`` marks the estimated slots.
A register-day without any profile gets zeros for its missing intervals and a ``NO_PROFILE``
exception. Output follows the ``usage`` contract of docs/DESIGN.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import polars as pl

from tasks.domain.exceptions import EXCEPTION_SCHEMA as EXCEPTION_SCHEMA
from tasks.domain.interval_fill import BLOCK_VALUES as BLOCK_VALUES
from tasks.domain.interval_fill import _with_estimates
from tasks.domain.plausibility import Caps, flag_frame, implausible_exceptions
from tasks.domain.profile_keys import interval_registers
from tasks.domain.shard_scalars import scalars_from_grid as scalars_from_grid
from tasks.domain.shard_scalars import scalars_shard
from tasks.domain.usage import usage_rows

USAGE_COLUMNS = [
    "account_id",
    "meter_register_id",
    "nmi",
    "suffix",
    "stream",
    "register_time_class",
    "unit",
    "read_date",
    "interval_minutes",
    "values",
    "estimated",
    "method",
]
# the register columns estimation uses (usage columns, the segment, the register's life)
REGISTER_COLUMNS = [
    "account_id",
    "meter_register_id",
    "nmi",
    "suffix",
    "stream",
    "time_class",
    "unit",
    "interval_minutes",
    "segment",
    "register_start",
    "register_end",
]


def register_days(regs: pl.DataFrame, windows: pl.DataFrame) -> pl.DataFrame:
    """One row per (register, day) of its account's unbilled window within the register's life."""
    lo = pl.max_horizontal("unbilled_from", "register_start")
    hi = pl.min_horizontal("unbilled_to", pl.col("register_end").fill_null(pl.col("unbilled_to")))
    return (
        regs.join(windows.select("account_id", "unbilled_from", "unbilled_to"), on="account_id")
        .with_columns(_lo=lo, _hi=hi)
        .filter(pl.col("_lo") <= pl.col("_hi"))
        .with_columns(read_date=pl.date_ranges("_lo", "_hi"))
        .explode("read_date")
        .drop("_lo", "_hi", "unbilled_from", "unbilled_to")
    )


def estimate_interval(
    registers: pl.DataFrame,
    windows: pl.DataFrame,
    interval: pl.LazyFrame,
    fixed: pl.DataFrame,
    scalars: pl.DataFrame,
    segment_with_tni: bool = False,
    months: Mapping[str, pl.LazyFrame] | None = None,
    data: pl.DataFrame | None = None,
    caps: Caps | None = None,
    order: Sequence[str] = ("meter_register_id", "read_date"),
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``usage`` rows (method INTERVAL, sorted by ``order``) for the shard's interval registers, and NO_PROFILE exceptions
    (with ``caps``: IMPLAUSIBLE_VALUE ones too, the implausible register-days estimated as missing).

    ``months`` (``meter_store.interval_month_scans``: one scan per month partition, keyed
    ``YYYY-MM``) lets each month of the window be read from its partition without a date filter.
    ``data``: the store rows of the window's register-days (:func:`window_keys`), already read
    (the profiles phase keeps them from its own read, ``profiles.profile_read``): then the store
    is not read.
    """
    regs = interval_registers(registers, segment_with_tni).select(REGISTER_COLUMNS)
    days = register_days(regs, windows).drop("register_start", "register_end")
    if days.height == 0:
        return _empty_usage(), pl.DataFrame(schema=EXCEPTION_SCHEMA)
    if data is None:
        data = _window_data(days, interval, months)
    implausible = pl.DataFrame(schema=EXCEPTION_SCHEMA)
    if caps is not None:
        data, implausible = _without_implausible(
            data, days, interval_registers(registers, segment_with_tni), caps
        )
    data = data.rechunk()
    profiles = fixed.select("segment", "read_date", "profile").rechunk()
    # the joins carry row numbers into ``data`` / ``profiles`` (and list lengths), not the lists:
    # the numpy estimate reads the lists' flat buffers at those rows (:func:`_estimate_arrays`)
    rows = _row_refs(days, data, profiles, scalars)
    rows = _with_estimates(rows, data, profiles)
    usage = usage_rows(
        rows,
        interval_minutes=pl.col("interval_minutes"),
        values=pl.col("values"),
        estimated=pl.col("estimated"),
        method="INTERVAL",
        order=order,
    )
    no_profile = _no_profile(rows)
    return usage, pl.concat([implausible, no_profile.cast(EXCEPTION_SCHEMA)])  # type: ignore[arg-type]


def _row_refs(
    days: pl.DataFrame, data: pl.DataFrame, profiles: pl.DataFrame, scalars: pl.DataFrame
) -> pl.DataFrame:
    """``days`` with their row in ``data`` (_d, _vlen, _qlen, data_minutes) and in ``profiles``
    (_f, _plen), the register's scalar (1 when none) and the data's interval length."""
    return (
        days.join(
            data.select(
                *DATA_KEY,
                "data_minutes",
                pl.int_range(pl.len(), dtype=pl.Int64).alias("_d"),
                pl.col("values").list.len().alias("_vlen"),
                pl.col("quality").str.len_bytes().alias("_qlen"),
            ),
            on=DATA_KEY,
            how="left",
            maintain_order="left",
        )
        .join(
            profiles.select(
                "segment",
                "read_date",
                pl.int_range(pl.len(), dtype=pl.Int64).alias("_f"),
                pl.col("profile").list.len().alias("_plen"),
            ),
            on=["segment", "read_date"],
            how="left",
            maintain_order="left",
        )
        .join(
            scalars.select("meter_register_id", "scalar"),
            on="meter_register_id",
            how="left",
            maintain_order="left",
        )
        .with_columns(
            interval_minutes=pl.coalesce("data_minutes", pl.col("interval_minutes").cast(pl.Int64)),
            scalar=pl.col("scalar").fill_null(1.0),
        )
    )


def _no_profile(rows: pl.DataFrame) -> pl.DataFrame:
    """One NO_PROFILE row per account and register with estimated days that have no profile."""
    return (
        rows.filter(pl.col("_plen").is_null())  # no profile row, or a null profile
        .filter(pl.col("estimated").list.any())
        .group_by("account_id", "meter_register_id")
        .agg(
            pl.col("read_date").min().alias("first"),
            pl.col("read_date").max().alias("last"),
            pl.len().alias("n"),
        )
        .select(
            "account_id",
            "meter_register_id",
            pl.lit("NO_PROFILE").alias("code"),
            pl.format(
                "no segment profile for {} day(s) {}..{}; missing intervals set to 0", "n", "first", "last"
            ).alias("detail"),
        )
    )


DATA_KEY = ["nmi", "suffix", "read_date"]


def _without_implausible(
    data: pl.DataFrame, days: pl.DataFrame, regs: pl.DataFrame, caps: Caps
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The store rows less the implausible register-days (then estimated as missing), and one
    IMPLAUSIBLE_VALUE exception per account and register-day of the window."""
    bad = flag_frame(data, regs, caps)
    if bad.height == 0:
        return data, pl.DataFrame(schema=EXCEPTION_SCHEMA)
    held = days.select("account_id", "meter_register_id", *DATA_KEY).join(
        bad.drop("account_id", "meter_register_id"), on=DATA_KEY, how="inner"
    )
    kept = data.join(bad.select(DATA_KEY), on=DATA_KEY, how="anti", maintain_order="left")
    return kept, implausible_exceptions(held).cast(EXCEPTION_SCHEMA)  # type: ignore[arg-type]


def window_keys(registers: pl.DataFrame, windows: pl.DataFrame) -> pl.DataFrame:
    """The (nmi, suffix, read_date) keys whose store rows :func:`estimate_interval` reads."""
    return register_days(interval_registers(registers), windows).select(DATA_KEY).unique(maintain_order=True)


def _window_data(
    days: pl.DataFrame, interval: pl.LazyFrame, months: Mapping[str, pl.LazyFrame] | None
) -> pl.DataFrame:
    """The store rows of the register-days in ``days``, in store order (month, then nmi, suffix,
    read_date).

    Month by month: each month's partition is read whole (without ``months``: a date-range scan
    of ``interval``) and a semi join keeps that month's register-days; the months are collected
    together (``collect_all``: both cores), each dropping its decoded values after its join (the
    old single scan of the whole window joined only after holding all of them: ~7 months when a
    few stale accounts reach back to the period start). A predicate per NMI saves nothing:
    polars still decodes the whole values column of a month (~0.08 CPU s per month partition at
    100k accounts), and a row-range slice costs a quarter of that per range while stale
    registers make tens of ranges per month; so every month of the window is still decoded
    once. Skipping the date filter saves ~30% of the read's CPU.
    """
    cols = [
        "nmi",
        "suffix",
        "read_date",
        pl.col("interval_minutes").cast(pl.Int64).alias("data_minutes"),
        "values",
        "quality",
    ]
    keys = days.select(DATA_KEY).unique().with_columns(_month=pl.col("read_date").dt.strftime("%Y-%m"))
    parts = []
    for (month,), wanted in sorted(keys.partition_by("_month", as_dict=True, include_key=False).items()):
        lo, hi = wanted["read_date"].min(), wanted["read_date"].max()
        scan = (
            months[str(month)]
            if months is not None and str(month) in months
            else interval.filter(pl.col("read_date").is_between(lo, hi))
        )
        parts.append(scan.select(cols).join(wanted.lazy(), on=DATA_KEY, how="semi", maintain_order="left"))
    return pl.concat(pl.collect_all(parts), how="vertical")


def estimate_interval_shard(
    registers: pl.DataFrame,
    windows: pl.DataFrame,
    interval: pl.LazyFrame,
    fixed: pl.DataFrame,
    run_date: dt.date,
    segment_with_tni: bool = False,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Scalars then estimation for one shard: returns (usage, exceptions, scalars)."""
    scalars, no_history = scalars_shard(registers, interval, fixed, run_date, segment_with_tni)
    usage, no_profile = estimate_interval(registers, windows, interval, fixed, scalars, segment_with_tni)
    return usage, pl.concat([no_history, no_profile]), scalars


def _empty_usage() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "account_id": pl.Int64,
            "meter_register_id": pl.Int64,
            "nmi": pl.Utf8,
            "suffix": pl.Utf8,
            "stream": pl.Utf8,
            "register_time_class": pl.Utf8,
            "unit": pl.Utf8,
            "read_date": pl.Date,
            "interval_minutes": pl.Int64,
            "values": pl.List(pl.Float64),
            "estimated": pl.List(pl.Boolean),
            "method": pl.Utf8,
        }
    )
