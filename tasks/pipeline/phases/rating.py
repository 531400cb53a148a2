"""Rating (SPEC §4.4) of each shard's unbilled usage, the account totals, and every phase's
exceptions in one frame."""

from __future__ import annotations

import polars as pl

from tasks.domain.account_summary import account_totals
from tasks.domain.exceptions import combine
from tasks.domain.rating import rate_unbilled, register_day_sums
from tasks.domain.unbilled import account_days
from tasks.pipeline.datasets import PhaseContext
from tasks.pipeline.phases.profiles import of_shard


def rating(
    ctx: PhaseContext,
    windows: pl.DataFrame,
    interval_usage: pl.DataFrame,
    basic_usage: pl.DataFrame,
    account_plans: pl.DataFrame,
    plans: pl.DataFrame,
    plan_rates: pl.DataFrame,
    tou_windows: pl.DataFrame,
    discounts: pl.DataFrame,
) -> dict[str, pl.DataFrame]:
    """Rate the shard's unbilled usage; account-level totals for the summary."""
    w = of_shard(windows, ctx.shard)
    usage = pl.concat([interval_usage, basic_usage], how="vertical_relaxed")
    sums = register_day_sums(usage)
    lines, exc = rate_unbilled(
        w, account_days(w), usage, account_plans, plans, plan_rates, tou_windows, discounts,
        w.select("account_id", "propensity"), ctx.settings.gst_rate, row_sums=sums,
    )  # fmt: skip
    return {"lines": lines, "account_totals": account_totals(w, lines, usage, sums), "rating_exceptions": exc}


def exceptions(
    ctx: PhaseContext,
    extract_exceptions: pl.DataFrame,
    windows_exceptions: pl.DataFrame,
    profile_exceptions: list[pl.DataFrame],
    read_pair_exceptions: list[pl.DataFrame],
    scalar_exceptions: list[pl.DataFrame],
    basic_exceptions: list[pl.DataFrame],
    interval_exceptions: list[pl.DataFrame],
    rating_exceptions: list[pl.DataFrame],
) -> dict[str, pl.DataFrame]:
    """Every phase's exception rows in one sorted frame (bua_exception)."""
    parts = [extract_exceptions, windows_exceptions]
    for shard in range(ctx.shards):
        parts += [
            profile_exceptions[shard],
            read_pair_exceptions[shard],
            scalar_exceptions[shard],
            basic_exceptions[shard],
            interval_exceptions[shard],
            rating_exceptions[shard],
        ]
    return {"bua_exception": combine(parts)}
