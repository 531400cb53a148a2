"""Discounts and pay-on-time propensity (SPEC §4.4).

For each active discount ``discount_net`` = percent × the net amount it applies to: ``USAGE``
covers the USAGE and CONTROLLED_LOAD items, ``SUPPLY`` the daily supply, ``USAGE_AND_SUPPLY``
both; no discount ever applies to FEED_IN. ``discount_net_propensity`` weights each discount by
the chance it is granted: 1 for GUARANTEED, and for PAY_ON_TIME the share of the account's last
6 ISSUED invoices (issued before the run date, by issue date) paid on or before their due date —
a bill unpaid at the run date counts as not on time. An account with no invoice history gets its
journal segment's average propensity (over accounts with history), else the portfolio's, else 1.
Discounts are applied per day (a discount starting mid-month covers only its days); a row's
``discount_state`` is GUARANTEED when a guaranteed discount applied to any of its days, else
PAY_ON_TIME when one did, else NONE.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

USAGE_ITEMS = ("USAGE", "CONTROLLED_LOAD")
STATE_RANK = {"NONE": 0, "PAY_ON_TIME": 1, "GUARANTEED": 2}
RANK_STATE = {v: k for k, v in STATE_RANK.items()}


def pay_on_time_propensity(
    accounts: pl.DataFrame, invoices: pl.DataFrame, run_date: dt.date, last_n: int = 6
) -> pl.DataFrame:
    """account_id → propensity (f64) and propensity_source (HISTORY | SEGMENT | PORTFOLIO | DEFAULT).

    ``accounts``: account_id, journal_segment. ``invoices``: account_id, status, issue_date,
    due_date, paid_date.
    """
    recent = (
        invoices.filter((pl.col("status") == "ISSUED") & (pl.col("issue_date") < run_date))
        .sort(["account_id", "issue_date", "due_date"], descending=[False, True, True])
        .group_by("account_id", maintain_order=True)
        .head(last_n)
        .with_columns(
            (
                pl.col("paid_date").is_not_null()
                & (pl.col("paid_date") <= pl.col("due_date"))
                & (pl.col("paid_date") < run_date)
            ).alias("_on_time")
        )
        .group_by("account_id")
        .agg(pl.col("_on_time").mean().alias("_own"))
    )
    df = accounts.select("account_id", "journal_segment").join(recent, on="account_id", how="left")
    seg, portfolio = _means_in_account_order(df)
    df = df.join(seg, on="journal_segment", how="left")
    return df.select(
        "account_id",
        pl.coalesce(pl.col("_own"), pl.col("_seg"), pl.lit(portfolio, pl.Float64), pl.lit(1.0)).alias(
            "propensity"
        ),
        pl.when(pl.col("_own").is_not_null())
        .then(pl.lit("HISTORY"))
        .when(pl.col("_seg").is_not_null())
        .then(pl.lit("SEGMENT"))
        .when(pl.lit(portfolio is not None))
        .then(pl.lit("PORTFOLIO"))
        .otherwise(pl.lit("DEFAULT"))
        .alias("propensity_source"),
    )


def _means_in_account_order(df: pl.DataFrame) -> tuple[pl.DataFrame, float | None]:
    """Mean ``_own`` per journal segment and over the portfolio, summed in account order.

    A multithreaded group-by mean adds in whatever order its threads meet the rows, so at 100k
    accounts the segment mean differed in the last bit from run to run; numpy over the rows sorted
    by (segment, account) gives the same bits every time.
    """
    known = df.filter(pl.col("_own").is_not_null()).sort("journal_segment", "account_id", nulls_last=True)
    segments = df.select("journal_segment").unique().sort("journal_segment", nulls_last=True)
    if known.height == 0:
        return segments.with_columns(pl.lit(None, pl.Float64).alias("_seg")), None
    values = known["_own"].cast(pl.Float64).to_numpy()
    firsts = (
        known.with_row_index("_i")
        .group_by("journal_segment")
        .agg(pl.col("_i").min().alias("_first"), pl.len().alias("_n"))
        .sort("_first")
    )
    sums = np.add.reduceat(values, firsts["_first"].cast(pl.Int64).to_numpy())
    seg = firsts.select("journal_segment", pl.Series("_seg", sums) / pl.col("_n").cast(pl.Float64))
    by_account = known.sort("account_id")["_own"].cast(pl.Float64).to_numpy()
    portfolio = float(np.add.reduce(by_account) / by_account.shape[0])
    return segments.join(seg, on="journal_segment", how="left", nulls_equal=True), portfolio


def discount_days(account_days: pl.DataFrame, discounts: pl.DataFrame) -> pl.DataFrame:
    """(account_id, day) → percent sums: pot_usage, guar_usage, pot_supply, guar_supply."""
    d = of_accounts(discounts, account_days).select(
        "account_id",
        "discount_type",
        pl.col("percent").cast(pl.Float64),
        "applies_to",
        "start_date",
        "end_date",
    )
    j = (
        account_days.select("account_id", "day")
        .join(d, on="account_id", how="inner")
        .filter(
            (pl.col("day") >= pl.col("start_date"))
            & (pl.col("end_date").is_null() | (pl.col("day") <= pl.col("end_date")))
        )
    )
    usage = pl.col("applies_to").is_in(["USAGE", "USAGE_AND_SUPPLY"])
    supply = pl.col("applies_to").is_in(["SUPPLY", "USAGE_AND_SUPPLY"])
    pot = pl.col("discount_type") == "PAY_ON_TIME"
    guar = pl.col("discount_type") == "GUARANTEED"
    parts = {
        "pot_usage": pot & usage,
        "guar_usage": guar & usage,
        "pot_supply": pot & supply,
        "guar_supply": guar & supply,
    }
    if j.height == 0 or j.select(account_day_key(j["day"].min()).n_unique()).item() == j.height:
        # one discount per account-day (nearly always): the sum of a day's one percent is the percent
        # itself (bit for bit, -0.0 too; a null one 0.0) and of none 0.0: no group-by (hashing every row)
        return j.select(
            "account_id",
            "day",
            *[
                pl.when(c).then(pl.col("percent").fill_null(0.0)).otherwise(0.0).alias(n)
                for n, c in parts.items()
            ],
        )
    return j.group_by("account_id", "day").agg(
        *[pl.col("percent").filter(c).sum().alias(n) for n, c in parts.items()]
    )


def apply_discounts(
    day_rows: pl.DataFrame, disc_days: pl.DataFrame, propensity: pl.DataFrame
) -> pl.DataFrame:
    """Add discount_net, discount_net_propensity and discount_rank to day-level rated rows.

    ``day_rows``: account_id, day, item_type, net_amount (unrounded).
    """
    # the propensity rides on the (fewer) discount days: a row without one has no pay-on-time percent,
    # so its propensity (null, taken as 1) multiplies 0 as the account's would
    disc = disc_days.join(propensity.select("account_id", "propensity"), on="account_id", how="left")
    # disc is unique by (account_id, day), so the left join has day_rows' rows in their order: only
    # the keys are joined and the discount columns are set beside the (wide) day rows
    found = join_account_days(day_rows.select("account_id", "day"), disc, "left", maintain_order="left")
    # the percents of a row's kind (USAGE/CONTROLLED_LOAD: the usage ones, SUPPLY: the supply ones,
    # else 0; none found: 0) picked with numpy (a selection, no arithmetic): the when/then chains
    # over every day row cost ~20% more; the money arithmetic stays the same polars expressions
    item = day_rows["item_type"]
    is_usage = item.is_in(USAGE_ITEMS).fill_null(False).to_numpy()
    is_supply = (item == "SUPPLY").fill_null(False).to_numpy()

    def of_kind(usage: str, supply: str) -> np.ndarray:
        u, s = found[usage].fill_null(0.0).to_numpy(), found[supply].fill_null(0.0).to_numpy()
        return np.where(is_usage, u, np.where(is_supply, s, 0.0))

    pct = pl.DataFrame(
        {
            "_pot": of_kind("pot_usage", "pot_supply"),
            "_guar": of_kind("guar_usage", "guar_supply"),
            "_p": found["propensity"].fill_null(1.0),
        },
        schema={"_pot": pl.Float64, "_guar": pl.Float64, "_p": pl.Float64},
    )
    pot, guar, p = pl.col("_pot"), pl.col("_guar"), pl.col("_p")
    return (
        pl.concat([day_rows, pct], how="horizontal")
        .with_columns(
            (pl.col("net_amount") * (pot + guar) / 100.0).alias("discount_net"),
            (pl.col("net_amount") * (pot * p + guar) / 100.0).alias("discount_net_propensity"),
            pl.when(guar > 0).then(2).when(pot > 0).then(1).otherwise(0).cast(pl.Int8).alias("discount_rank"),
        )
        .drop("_pot", "_guar", "_p")
    )


def account_day_key(first: dt.date | None) -> pl.Expr:
    """(account_id, day) as one Int64 (account_id × 2^24 + days since ``first``): a one-column join key.

    A join on one integer column hashes far less than on two; the day offset fits in 24 bits for
    any window of fewer than 45,000 years, so two different (account, day) never share a key.
    """
    offset = (
        pl.col("day").cast(pl.Int32).cast(pl.Int64) - (first - dt.date(1970, 1, 1)).days
        if first
        else pl.lit(0)
    )
    return (pl.col("account_id").cast(pl.Int64) * (1 << 24) + offset).alias("_ad")


def join_account_days(
    df: pl.DataFrame, days: pl.DataFrame, how: str = "inner", maintain_order: str | None = None
) -> pl.DataFrame:
    """``df.join(days, on=["account_id", "day"], how=how, maintain_order=…)`` on one integer key
    (:func:`account_day_key`)."""
    first = min((d for d in (df["day"].min(), days["day"].min()) if d is not None), default=None)
    right = days.with_columns(account_day_key(first)).drop("account_id", "day")
    joined = df.with_columns(account_day_key(first)).join(
        right,
        on="_ad",
        how=how,
        maintain_order=maintain_order,  # type: ignore[arg-type]
    )
    return joined.drop("_ad")


def of_accounts(frame: pl.DataFrame, account_days: pl.DataFrame) -> pl.DataFrame:
    """``frame``'s rows of the accounts in ``account_days`` (the whole extract's plans or discounts
    cut to one shard's accounts, ~1/16 of them, before they are joined to its days)."""
    return frame.filter(pl.col("account_id").is_in(account_days["account_id"].unique().implode()))
