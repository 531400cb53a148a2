"""Unbilled window per account (SPEC §4.1).

``billed_to`` is the latest ``period_end`` of the account's ISSUED invoices issued before the run
date R (reversed invoices are ignored); an account never billed has ``billed_to`` = the day before
``open_date``. The unbilled days run from max(billed_to + 1, open_date, site start, period_start)
to min(period_end, close_date, site end). The account's state: ``FINAL_UNBILLED`` when it closed
before R and its bills do not reach the close date; else ``UNBILLED_NOT_DUE`` when the next bill
(billed_to + billing_cycle_months months + grace days) is due on or after R, else
``UNBILLED_OVERDUE``. Unbilled days before ``period_start`` are not accrued; the account gets a
``STALE_UNBILLED`` exception naming how many days were left out. One row per account; accounts
with no unbilled day are dropped (nothing to accrue).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from tasks.domain.exceptions import STALE_UNBILLED, exception_rows

UNBILLED_NOT_DUE = "UNBILLED_NOT_DUE"
UNBILLED_OVERDUE = "UNBILLED_OVERDUE"
FINAL_UNBILLED = "FINAL_UNBILLED"


def billed_to(invoices: pl.DataFrame, run_date: dt.date) -> pl.DataFrame:
    """account_id → billed_to from ISSUED invoices issued before ``run_date``."""
    return (
        invoices.filter((pl.col("status") == "ISSUED") & (pl.col("issue_date") < run_date))
        .group_by("account_id")
        .agg(pl.col("period_end").max().alias("billed_to"))
    )


def _max_date(*exprs: pl.Expr) -> pl.Expr:
    return pl.max_horizontal(*exprs)


def _min_date(*exprs: pl.Expr) -> pl.Expr:
    return pl.min_horizontal(*exprs)


def unbilled_windows(
    accounts: pl.DataFrame,
    invoices: pl.DataFrame,
    run_date: dt.date,
    period_start: dt.date,
    period_end: dt.date,
    grace_days: int = 7,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Unbilled window and ``ili_state`` of every account; returns (windows, exceptions).

    ``accounts`` has one row per account: account_id, billing_cycle_months, open_date, close_date,
    site_start, site_end (plus any descriptive columns, kept). ``windows`` adds billed_to,
    unbilled_from, unbilled_to, unbilled_days, next_bill_due, ili_state.
    """
    far = dt.date(9999, 12, 31)
    df = accounts.join(billed_to(invoices, run_date), on="account_id", how="left").with_columns(
        pl.coalesce(pl.col("billed_to"), pl.col("open_date") - pl.duration(days=1)).alias("billed_to")
    )
    raw_from = _max_date(
        pl.col("billed_to") + pl.duration(days=1),
        pl.col("open_date"),
        pl.coalesce(pl.col("site_start"), pl.col("open_date")),
    )
    df = df.with_columns(
        raw_from.alias("_raw_from"),
        _max_date(raw_from, pl.lit(period_start)).alias("unbilled_from"),
        _min_date(
            pl.lit(period_end),
            pl.coalesce(pl.col("close_date"), pl.lit(far)),
            pl.coalesce(pl.col("site_end"), pl.lit(far)),
        ).alias("unbilled_to"),
        (
            pl.col("billed_to").dt.offset_by(pl.format("{}mo", pl.col("billing_cycle_months")))
            + pl.duration(days=grace_days)
        ).alias("next_bill_due"),
    )
    df = df.with_columns(
        ((pl.col("unbilled_to") - pl.col("unbilled_from")).dt.total_days() + 1)
        .clip(lower_bound=0)
        .cast(pl.Int64)
        .alias("unbilled_days"),
        pl.when(pl.col("close_date").is_not_null() & (pl.col("close_date") < run_date))
        .then(pl.lit(FINAL_UNBILLED))
        .when(pl.col("next_bill_due") >= run_date)
        .then(pl.lit(UNBILLED_NOT_DUE))
        .otherwise(pl.lit(UNBILLED_OVERDUE))
        .alias("ili_state"),
    )
    stale = df.filter((pl.col("_raw_from") < period_start) & (pl.col("unbilled_to") >= pl.col("_raw_from")))
    exceptions = exception_rows(
        stale,
        STALE_UNBILLED,
        pl.format(
            "unbilled since {} (billed to {}); {} day(s) before period_start {} not accrued",
            pl.col("_raw_from"),
            pl.col("billed_to"),
            (
                _min_date(pl.lit(period_start) - pl.duration(days=1), pl.col("unbilled_to"))
                - pl.col("_raw_from")
            ).dt.total_days()
            + 1,
            pl.lit(period_start),
        ),
    )
    windows = df.filter(pl.col("unbilled_days") > 0).drop("_raw_from").sort("account_id")
    return windows, exceptions


def account_days(windows: pl.DataFrame) -> pl.DataFrame:
    """One row per (account_id, day) of the unbilled windows, with year_mnth (YYYYMM)."""
    return (
        windows.select(
            "account_id",
            pl.date_ranges(pl.col("unbilled_from"), pl.col("unbilled_to"), interval="1d").alias("day"),
        )
        .explode("day")
        .with_columns(
            (pl.col("day").dt.year() * 100 + pl.col("day").dt.month()).cast(pl.Int32).alias("year_mnth")
        )
    )
