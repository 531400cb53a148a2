"""Account-level totals of a run (``bua_account_summary``, SPEC §4.5), one shard.

Money is the sum of the account's output rows as rounded (so the summary adds up to the lines);
volume is the estimated consumption of its CONSUMPTION and CONTROLLED_LOAD registers over the
unbilled window, split into actual and estimated — reported even for days that could not be
priced (no plan, no rate), so finance sees the energy it could not value. ``estimation_method``
is INTERVAL, BASIC, MIXED (both kinds of register) or NONE (no register).
"""

from __future__ import annotations

import polars as pl

ACCOUNT_SUMMARY_KEYS = [
    "account_id", "account_number", "service_type", "jurisdiction", "network", "journal_segment", "customer_class",
    "billing_cycle_months", "billed_to", "unbilled_from", "unbilled_to", "unbilled_days", "ili_state",
]  # fmt: skip


def account_totals(
    w: pl.DataFrame, lines: pl.DataFrame, usage: pl.DataFrame, row_sums: pl.DataFrame | None = None
) -> pl.DataFrame:
    """``bua_account_summary`` rows without exception_count.

    Money = sums of the account's rounded line amounts; volume = the estimated consumption of its
    CONSUMPTION and CONTROLLED_LOAD registers over the window (also when some days could not be
    rated), split into actual and estimated. ``row_sums`` (quantity, quantity_estimated of every
    usage row, :func:`tasks.domain.rating.register_day_sums`) saves summing the value lists again.
    """
    money = lines.group_by("account_id").agg(
        pl.col("net_amount").sum(), pl.col("discount_net").sum(), pl.col("discount_net_propensity").sum()
    )
    est = pl.col("estimated").cast(pl.List(pl.Float64))
    summed = (
        usage.select("account_id", "stream").with_columns(
            row_sums["quantity"].alias("_v"), row_sums["quantity_estimated"].alias("_e")
        )
        if row_sums is not None
        else usage.with_columns(
            pl.col("values").list.sum().alias("_v"),
            (pl.col("values") * est).list.sum().alias("_e"),  # list.sum skips nulls
        )
    )
    vol = (
        summed.filter(pl.col("stream").is_in(["CONSUMPTION", "CONTROLLED_LOAD"]))
        .group_by("account_id")
        .agg(pl.col("_v").sum().alias("volume"), pl.col("_e").sum().alias("volume_estimated"))
    )
    # distinct (account, method) pairs first: the group-by then sees ~1 row per account, not per day
    methods = (
        usage.select("account_id", "method")
        .unique()
        .group_by("account_id")
        .agg(pl.col("method").unique().sort().alias("_m"))
    )
    out = (
        w.select(ACCOUNT_SUMMARY_KEYS)
        .join(money, on="account_id", how="left")
        .join(vol, on="account_id", how="left")
        .join(methods, on="account_id", how="left")
        .with_columns(
            pl.when(pl.col("_m").is_null() | (pl.col("_m").list.len() == 0))
            .then(pl.lit("NONE"))
            .when(pl.col("_m").list.len() > 1)
            .then(pl.lit("MIXED"))
            .otherwise(pl.col("_m").list.first())
            .alias("estimation_method"),
            *[pl.col(c).fill_null(0.0).round(3) for c in ("volume", "volume_estimated")],
            *[
                pl.col(c).fill_null(0.0).round(2)
                for c in ("net_amount", "discount_net", "discount_net_propensity")
            ],
        )
        .with_columns(
            (pl.col("volume") - pl.col("volume_estimated")).round(3).alias("volume_actual"),
            (pl.col("net_amount") - pl.col("discount_net_propensity"))
            .round(2)
            .alias("net_amount_less_discount"),
        )
        .drop("_m")
    )
    return out.sort("account_id")
