"""Exception codes and rows (SPEC §4.5 ``bua_exception``, §9).

A problem with one account, register or read is data, not a crash: it becomes one row with a
stable code and a readable detail, the account is accrued as far as it safely can be and the run
goes on (the OpenEEmeter "sufficiency warning" idea). Only problems with the database as a whole
(unreachable, missing tables) stop a run; those raise :class:`tasks.adapters.db.DatabaseError`.
"""

from __future__ import annotations

import polars as pl

# Stable names: other programs (and finance users' filters) key on them.
STALE_UNBILLED = "STALE_UNBILLED"  # unbilled days before period_start were not accrued
NO_HISTORY = "NO_HISTORY"  # no usable history for a register's scalar (scalar 1 used)
BAD_READ = "BAD_READ"  # a basic read skipped: second rollover or implausible value
NEGATIVE_READ = "NEGATIVE_READ"  # a negative or non-numeric read value was ignored
NO_METER = "NO_METER"  # a register whose meter does not exist or does not cover its dates
NO_REGISTER = "NO_REGISTER"  # an account whose site has no register in the unbilled window
NO_PLAN = "NO_PLAN"  # unbilled days without an account plan: those days are not rated
OVERLAPPING_PLANS = "OVERLAPPING_PLANS"  # two plans on one day: the later-starting one is used
NO_RATE = "NO_RATE"  # a plan without a rate for an item/time class on some day: not rated
NO_SITE = "NO_SITE"  # an account with no site: nothing can be estimated
NO_DATA = "NO_DATA"  # a register without any data in or before the window
NO_READS = "NO_READS"  # (estimation) a basic register without reads
NO_PROFILE = "NO_PROFILE"  # (estimation) register-days without a segment profile: missing intervals are 0
AMBIGUOUS_READ = "AMBIGUOUS_READ"  # (seasonal basic) how many times a dial turned between reads is a guess
IMPLAUSIBLE_VALUE = "IMPLAUSIBLE_VALUE"  # meter data above a cap, negative or not finite: estimated

CODES = (
    STALE_UNBILLED,
    NO_HISTORY,
    BAD_READ,
    NEGATIVE_READ,
    NO_METER,
    NO_REGISTER,
    NO_PLAN,
    OVERLAPPING_PLANS,
    NO_RATE,
    NO_SITE,
    NO_DATA,
    NO_READS,
    NO_PROFILE,
    AMBIGUOUS_READ,
    IMPLAUSIBLE_VALUE,
)

EXCEPTION_SCHEMA: dict[str, pl.DataType] = {
    "account_id": pl.Int64(),
    "meter_register_id": pl.Int64(),
    "code": pl.String(),
    "detail": pl.String(),
}


def empty_exceptions() -> pl.DataFrame:
    return pl.DataFrame(schema=EXCEPTION_SCHEMA)


def exception_rows(frame: pl.DataFrame, code: str, detail: pl.Expr) -> pl.DataFrame:
    """One exception row per row of ``frame`` (which has ``account_id`` and/or ``meter_register_id``)."""
    if code not in CODES:
        raise ValueError(f"unknown exception code {code!r}")
    account = pl.col("account_id").cast(pl.Int64) if "account_id" in frame.columns else pl.lit(None, pl.Int64)
    register = (
        pl.col("meter_register_id").cast(pl.Int64)
        if "meter_register_id" in frame.columns
        else pl.lit(None, pl.Int64)
    )
    return frame.select(
        account.alias("account_id"),
        register.alias("meter_register_id"),
        pl.lit(code).alias("code"),
        detail.cast(pl.String).alias("detail"),
    )


def combine(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """All exception rows in one frame with the standard schema, sorted for stable output."""
    frames = [
        p.select(list(EXCEPTION_SCHEMA)).cast(EXCEPTION_SCHEMA) for p in parts if p is not None and p.height
    ]
    if not frames:
        return empty_exceptions()
    return (
        pl.concat(frames)
        .unique(maintain_order=True)
        .sort(["account_id", "meter_register_id", "code", "detail"], nulls_last=True)
    )


def counts_by_account(exceptions: pl.DataFrame) -> pl.DataFrame:
    """account_id → exception_count."""
    return (
        exceptions.filter(pl.col("account_id").is_not_null())
        .group_by("account_id")
        .agg(pl.len().cast(pl.Int64).alias("exception_count"))
    )
