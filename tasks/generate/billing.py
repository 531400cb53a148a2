"""Plans, discounts, invoice periods and the invoice-line skeleton of the synthetic portfolio.

Each account bills on its own anchor day every 1, 2 or 3 months. Invoices are issued 2–6 days
after the period ends, when that is before the run date R (= end + 1). Closed accounts get a final
bill to their close date 4–12 days later, so a recent move-out is still awaiting it; recent move-ins
have no invoice yet. 3% of accounts have their bills held (no invoice for over a cycle: overdue).
A bill's lines are per segment of the period cut at plan and rate changes (1 July): SUPPLY per day
and per register USAGE (ANYTIME, or PEAK/SHOULDER/OFFPEAK on a time-of-use plan with an interval
meter), CONTROLLED_LOAD and FEED_IN; quantities come from the true daily consumption (generate.py
fills them batch by batch). Plans: time-of-use only where the site has an interval meter for the
whole history; 8% of accounts switch between flat and block during the window.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tasks.generate.calendar import Calendar, rng_for

TC_CODE = {"ANYTIME": 0, "PEAK": 1, "SHOULDER": 2, "OFFPEAK": 3, "CONTROLLED": 0}


def _day(cal: Calendar, col: str) -> pl.Expr:
    return (pl.lit(cal.start) + pl.duration(days=pl.col(col))).alias(col.replace("_i", "_date"))


def assign_plans(
    accounts: pl.DataFrame, sites: pl.DataFrame, plans: pl.DataFrame, cal: Calendar, seed: int
) -> pl.DataFrame:
    """account_plan rows (with generator columns start_i/end_i, kind)."""
    rng = rng_for(seed, "plans")
    a = accounts.join(
        sites.select(pl.col("id").alias("site_id"), "interval", "exchange"),
        on="site_id",
        maintain_order="left",
    )
    n = a.height
    u = rng.random(n)
    tou_ok = (a["interval"] & ~a["exchange"] & (a["service_type"] == "ELECTRICITY")).to_numpy()
    kind = np.where(tou_ok & (u < 0.35), "TOU", np.where(u > 0.75, "BLOCK", "FLAT"))
    switch = (kind != "TOU") & (rng.random(n) < 0.08)
    open_i, end = a["open_i"].to_numpy(), a["close_i"].fill_null(cal.n_days + 10_000).to_numpy()
    sw_day = rng.integers(cal.n_days // 3, cal.n_days - 20, n)
    switch &= (sw_day > open_i + 30) & (sw_day < end)
    other = np.where(kind == "FLAT", "BLOCK", "FLAT")
    base = a.select(
        pl.col("id").alias("account_id"),
        "jurisdiction",
        "service_type",
        "customer_class",
        "open_i",
        "close_i",
    )
    first = base.with_columns(
        pl.Series("kind", kind), pl.col("open_i").alias("start_i"),
        pl.when(pl.Series(switch)).then(pl.Series(sw_day - 1)).otherwise(pl.col("close_i")).alias("end_i"),
    )  # fmt: skip
    second = base.filter(pl.Series(switch)).with_columns(
        pl.Series("kind", other[switch]),
        pl.Series("start_i", sw_day[switch]),
        pl.col("close_i").alias("end_i"),
    )
    keys = plans.select(
        pl.col("id").alias("plan_id"), "jurisdiction", "service_type", "customer_class", "kind"
    )
    ap = pl.concat([first, second]).join(keys, on=["jurisdiction", "service_type", "customer_class", "kind"])
    return ap.sort("account_id", "start_i").with_columns(_day(cal, "start_i"), _day(cal, "end_i"))


def assign_discounts(accounts: pl.DataFrame, cal: Calendar, seed: int) -> pl.DataFrame:
    """account_discount rows: pay-on-time (30% of residential), guaranteed (15% RES, 20% BUS)."""
    rng = rng_for(seed, "discounts")
    n = accounts.height
    res = (accounts["customer_class"] == "RES").to_numpy()
    u = rng.random(n)
    pot = res & (u < 0.30)
    gtd = (res & (u >= 0.30) & (u < 0.45)) | (~res & (u < 0.20))
    kind = np.where(pot, "PAY_ON_TIME", "GUARANTEED")
    percent = np.where(pot, rng.choice([3.0, 5.0, 7.0, 10.0], n), rng.choice([3.0, 5.0, 8.0], n))
    applies = np.where(
        pot,
        np.where(rng.random(n) < 0.6, "USAGE", "USAGE_AND_SUPPLY"),
        np.where(res, "USAGE", "USAGE_AND_SUPPLY"),
    )
    ends = rng.random(n) < 0.10
    end_i = np.where(ends, rng.integers(cal.n_days // 2, cal.n_days, n), -1)
    d = accounts.select(pl.col("id").alias("account_id"), "open_i", "close_i").with_columns(
        pl.Series("discount_type", kind), pl.Series("percent", percent), pl.Series("applies_to", applies),
        pl.col("open_i").alias("start_i"), pl.Series("end_i", end_i),
    )  # fmt: skip
    d = d.filter(pl.Series(pot | gtd)).with_columns(
        pl.when((pl.col("end_i") > pl.col("start_i")) & (pl.col("end_i") >= 0))
        .then(pl.col("end_i"))
        .otherwise(pl.col("close_i"))
        .alias("end_i")
    )
    return d.with_columns(_day(cal, "start_i"), _day(cal, "end_i")).drop("open_i", "close_i")


def _cycle_periods(accounts: pl.DataFrame, cal: Calendar, seed: int) -> pl.DataFrame:
    """Every billing period of every account on its own anchor day (before any is issued or held):
    account_id, period_start_i, period_end_i, final, held_from. Periods may start before the calendar."""
    rng = rng_for(seed, "bills")
    n, d = accounts.height, cal.n_days
    r_day = d  # R as a day index
    anchor = rng.integers(1, 29, n)
    held = rng.random(n) < 0.03
    held_days = accounts["billing_cycle_months"].to_numpy() * 31 + rng.integers(10, 40, n)
    a = accounts.select(
        pl.col("id").alias("account_id"), "billing_cycle_months", "open_i", "close_i"
    ).with_columns(
        pl.Series("anchor", anchor), pl.Series("held_from", np.where(held, r_day - held_days, r_day + 1000))
    )
    k_max = d // 28 + 3
    start = pl.date(cal.start.year, cal.start.month, pl.col("anchor"))
    b = (
        a.with_columns(pl.int_ranges(-1, pl.lit(k_max) // pl.col("billing_cycle_months") + 1).alias("k"))
        .explode("k")
        .with_columns(
            start.dt.offset_by(pl.format("{}mo", pl.col("k") * pl.col("billing_cycle_months"))).alias("b0"),
            start.dt.offset_by(pl.format("{}mo", (pl.col("k") + 1) * pl.col("billing_cycle_months"))).alias(
                "b1"
            ),
        )
        .with_columns(
            ((pl.col("b0") - pl.lit(cal.start)).dt.total_days()).alias("b0_i"),
            ((pl.col("b1") - pl.lit(cal.start)).dt.total_days() - 1).alias("b1_i"),
        )
        .with_columns(
            pl.max_horizontal("b0_i", "open_i").alias("period_start_i"),
            pl.min_horizontal("b1_i", pl.col("close_i").fill_null(10**9)).alias("period_end_i"),
            (pl.col("close_i").is_not_null() & (pl.col("close_i") <= pl.col("b1_i"))).alias("final"),
        )
        .filter(pl.col("period_start_i") <= pl.col("period_end_i"))
    )
    return b


def read_days(accounts: pl.DataFrame, cal: Calendar, seed: int) -> pl.DataFrame:
    """site_id, day: the end of every billing period of the site's accounts inside the calendar —
    the days a basic meter is read, so that a bill's period ends on its read date (SPEC §4.3: a read
    dated D is the index at the end of day D). A closing account's period ends on its close day."""
    per = _cycle_periods(accounts, cal, seed).join(
        accounts.select(pl.col("id").alias("account_id"), "site_id"), on="account_id"
    )
    return (
        per.filter(pl.col("period_end_i").is_between(0, cal.n_days - 1))
        .select("site_id", pl.col("period_end_i").alias("day"))
        .unique()
        .sort("site_id", "day")
    )


def bill_periods(accounts: pl.DataFrame, cal: Calendar, seed: int) -> pl.DataFrame:
    """One row per bill (account, period) issued before R = end + 1: period_start_i/end_i, issue_i."""
    r_day = cal.n_days  # R as a day index
    b = _cycle_periods(accounts, cal, seed).filter(pl.col("period_start_i") >= 0)
    lag = rng_for(seed, "bill-lag").integers(2, 7, b.height)
    final_lag = rng_for(seed, "final-lag").integers(4, 13, b.height)
    b = b.with_columns(
        (
            pl.col("period_end_i")
            + pl.when(pl.col("final")).then(pl.Series(final_lag)).otherwise(pl.Series(lag))
        ).alias("issue_i")
    )
    b = b.filter((pl.col("issue_i") < r_day) & (pl.col("period_end_i") < pl.col("held_from")))
    return (
        b.select("account_id", "period_start_i", "period_end_i", "issue_i", "final")
        .sort("account_id", "period_start_i")
        .with_row_index("bill_id")
    )


def line_skeleton(
    bills: pl.DataFrame,
    account_plan: pl.DataFrame,
    plan_rate: pl.DataFrame,
    accounts: pl.DataFrame,
    registers: pl.DataFrame,
    cal: Calendar,
    first_line: int = 0,
) -> pl.DataFrame:
    """Lines without quantities: bill_id, item_type, time_class, block, rate, register, seg_start_i/end_i.

    No random draws: the lines of a chunk of consecutive accounts (their bills, plans and accounts;
    ``registers`` may be all of them) are the portfolio's lines of those bills, numbered from
    ``first_line`` (the number of lines of the accounts before them)."""
    rates = plan_rate.with_columns(
        ((pl.col("valid_from") - pl.lit(cal.start)).dt.total_days()).alias("rf"),
        ((pl.col("valid_to").fill_null(cal.end) - pl.lit(cal.start)).dt.total_days()).alias("rt"),
    )
    ap = account_plan.select(
        "account_id",
        "plan_id",
        "kind",
        pl.col("start_i").alias("ps"),
        pl.col("end_i").fill_null(10**9).alias("pe"),
    )
    seg = (
        bills.join(ap, on="account_id")
        .join(rates.select("rf", "rt", "plan_id").unique(), on="plan_id")
        .with_columns(
            pl.max_horizontal("period_start_i", "ps", "rf").alias("s"),
            pl.min_horizontal("period_end_i", "pe", "rt").alias("e"),
        )
        .filter(pl.col("s") <= pl.col("e"))
        .select("bill_id", "account_id", "plan_id", "kind", "rf", "s", "e")
    )
    supply = seg.join(rates.filter(pl.col("item_type") == "SUPPLY"), on=["plan_id", "rf"]).with_columns(
        pl.lit(None, dtype=pl.Int64).alias("meter_register_id"),
        pl.lit(0).alias("block"),
        (pl.col("e") - pl.col("s") + 1).cast(pl.Float64).alias("quantity"),
    )
    site = accounts.select(pl.col("id").alias("account_id"), "site_id")
    reg = registers.select(
        pl.col("id").alias("meter_register_id"),
        "site_id",
        "stream",
        "installation_type",
        "active_from",
        "active_to",
    ).with_columns(
        pl.col("stream")
        .replace_strict(
            {"CONSUMPTION": "USAGE", "CONTROLLED_LOAD": "CONTROLLED_LOAD", "GENERATION": "FEED_IN"}
        )
        .alias("item_type")
    )
    per_reg = (
        seg.join(site, on="account_id")
        .join(reg, on="site_id")
        .with_columns(
            pl.max_horizontal("s", "active_from").alias("s"), pl.min_horizontal("e", "active_to").alias("e")
        )
        .filter(pl.col("s") <= pl.col("e"))
    )
    usage_rates = rates.filter(pl.col("item_type") != "SUPPLY").with_columns(
        pl.col("block_limit_per_day").is_null().cast(pl.Int32).alias("block"),
        pl.len().over("plan_id", "rf", "item_type", "time_class").alias("n_blocks"),
    )
    lines = per_reg.join(usage_rates, on=["plan_id", "rf", "item_type"])
    # a basic register on a time-of-use plan (never generated) would keep ANYTIME only
    lines = lines.filter(
        (pl.col("kind") != "TOU")
        | (pl.col("item_type") != "USAGE")
        | (pl.col("installation_type") != "BASIC")
        | (pl.col("time_class") == "ANYTIME")
    )
    lines = lines.with_columns(
        pl.when(pl.col("n_blocks") > 1).then(pl.col("block") + 1).otherwise(0).alias("block"),
        pl.lit(None, dtype=pl.Float64).alias("quantity"),
    )
    cols = [
        "bill_id",
        "account_id",
        "meter_register_id",
        "item_type",
        "time_class",
        "block",
        "block_limit_per_day",
        "rate",
        "s",
        "e",
        "quantity",
    ]
    out = pl.concat([supply.select(cols), lines.select(cols)], how="vertical_relaxed")
    return out.sort(
        "bill_id", "meter_register_id", "item_type", "time_class", "block", "s", nulls_last=False
    ).with_row_index("line_id", offset=first_line)
