"""Extract and unbilled windows (SPEC §4.1): the billing database's datasets, shaped and sharded."""

from __future__ import annotations

import polars as pl

from tasks.adapters.extract import shape
from tasks.domain.discounts import pay_on_time_propensity
from tasks.domain.exceptions import NO_REGISTER, NO_SITE, combine, exception_rows
from tasks.domain.unbilled import unbilled_windows
from tasks.pipeline.datasets import PhaseContext

EXTRACT_DATASETS = (
    "accounts", "registers", "basic_reads", "invoices", "account_plans", "plans", "plan_rates",
    "tou_windows", "discounts", "site_history", "temperature",
)  # fmt: skip


def extract(ctx: PhaseContext, billing_source: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Accounts (one row each, with shard), registers per account, reads with shard; exceptions."""
    data, exceptions = shape(billing_source, ctx.shards)
    return {**{name: data[name] for name in EXTRACT_DATASETS}, "extract_exceptions": exceptions}


def windows(
    ctx: PhaseContext, accounts: pl.DataFrame, invoices: pl.DataFrame, registers: pl.DataFrame
) -> dict[str, pl.DataFrame]:
    """Unbilled windows (SPEC §4.1) and the pay-on-time propensity of every account."""
    w, exc = unbilled_windows(
        accounts, invoices, ctx.run_date, ctx.period_start, ctx.period_end, ctx.settings.grace_days
    )
    w = w.join(pay_on_time_propensity(accounts, invoices, ctx.run_date), on="account_id", how="left")
    no_site = w.filter(pl.col("nmi").is_null())
    no_register = w.filter(pl.col("nmi").is_not_null()).join(
        registers.select("account_id").unique(), on="account_id", how="anti"
    )
    exc = combine(
        [
            exc,
            exception_rows(
                no_site, NO_SITE, pl.lit("account has no site before the run date; only supply is accrued")
            ),
            exception_rows(
                no_register,
                NO_REGISTER,
                pl.format(
                    "site {} has no meter register in the unbilled window; only supply is accrued", "nmi"
                ),
            ),
        ]
    )
    return {"windows": w.sort("account_id"), "windows_exceptions": exc}
