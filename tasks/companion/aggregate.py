"""Daily billing aggregation (SPEC §7.2): per account, what was billed, paid, written off and is owed.

For a report day D (a calendar day in the retailer's timezone), each row is one account of the
billing database (key = account_number) or one external customer of the billing CSVs (key =
``EXT:`` + company_name; a billing record carries no account id). Money is what the customer owes,
so invoices count gross (net + GST); billing records count their ``bill_amount_base``.

- charges: invoices with status ISSUED (a REVERSED invoice never counts) issued on or before D, and
  billing records billed on or before D; ``invoiced_day`` / ``external_day`` are those of D itself.
- payments: successful payments (configured statuses) whose local date is on or before D; a
  payment row with the write-off method is a write-off, not cash (``write_offs_*``).
- balance = charges to date − payments to date − write-offs to date.
- aged debt: each ISSUED invoice not paid by D (``paid_date`` null or after D) by days past due
  (D − due_date): not yet due (< 0), 0–30, 31–60, 61–90, 90+. Billing records have no due date
  and are not aged. Aging is per invoice and the balance per ledger, so they agree only when
  payments settle whole invoices, as ``paid_date`` models.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from tasks.companion.revenue_alert import parsed_amount

MONEY_COLUMNS = (
    "invoiced_day", "external_day", "payments_day", "write_offs_day",
    "charges_to_date", "payments_to_date", "write_offs_to_date", "balance",
    "debt_not_due", "debt_0_30", "debt_31_60", "debt_61_90", "debt_90_plus",
)  # fmt: skip
KEY_COLUMNS = ("account_key", "account_id", "account_number", "company_name")
ACCOUNT_SCHEMA = {"id": pl.Int64, "account_number": pl.String}
INVOICE_SCHEMA = {
    "account_id": pl.Int64, "issue_date": pl.Date, "status": pl.String, "net_amount": pl.Float64,
    "gst_amount": pl.Float64, "due_date": pl.Date, "paid_date": pl.Date,
}  # fmt: skip
PAYMENT_SCHEMA = {
    "account_id": pl.Int64,
    "payment_date": pl.Datetime,
    "amount": pl.String,
    "status": pl.String,
    "method": pl.String,
}
RECORD_SCHEMA = {"company_name": pl.String, "bill_date": pl.Date, "bill_amount_base": pl.Float64}
AGE_BUCKETS = (
    ("debt_not_due", None, -1),
    ("debt_0_30", 0, 30),
    ("debt_31_60", 31, 60),
    ("debt_61_90", 61, 90),
    ("debt_90_plus", 91, None),
)


def _when_sum(cond: pl.Expr, value: pl.Expr, name: str) -> pl.Expr:
    return pl.when(cond).then(value).otherwise(0.0).sum().alias(name)


def local_date(col: str, timezone: str) -> pl.Expr:
    """The calendar date in ``timezone`` of a naive-UTC timestamp column."""
    return pl.col(col).dt.replace_time_zone("UTC").dt.convert_time_zone(timezone).dt.date()


def invoice_figures(invoices: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Per account_id: invoiced_day, charges_to_date and the aged-debt buckets."""
    gross = pl.col("net_amount") + pl.col("gst_amount")
    days_past_due = (pl.lit(day) - pl.col("due_date")).dt.total_days()
    outstanding = pl.col("paid_date").is_null() | (pl.col("paid_date") > day)
    buckets = [
        _when_sum(
            outstanding
            & (days_past_due >= (lo if lo is not None else -(10**6)))
            & (days_past_due <= (hi if hi is not None else 10**6)),
            gross,
            name,
        )
        for name, lo, hi in AGE_BUCKETS
    ]
    return (
        invoices.filter((pl.col("status").str.to_uppercase() == "ISSUED") & (pl.col("issue_date") <= day))
        .group_by("account_id")
        .agg(
            _when_sum(pl.col("issue_date") == day, gross, "invoiced_day"),
            gross.sum().alias("charges_to_date"),
            *buckets,
        )
    )


def payment_figures(
    payments: pl.DataFrame, day: dt.date, timezone: str, successful: list[str], write_off_method: str
) -> tuple[pl.DataFrame, int]:
    """Per account_id: payments and write-offs of the day and to date; plus the count of unreadable amounts."""
    paid = payments.with_columns(
        parsed_amount().alias("value"), local_date("payment_date", timezone).alias("local_date")
    ).filter(
        pl.col("status").str.strip_chars().str.to_uppercase().is_in([s.upper() for s in successful])
        & (pl.col("local_date") <= day)
    )
    bad = paid.filter(pl.col("value").is_null()).height
    is_write_off = (
        pl.col("method").fill_null("").str.strip_chars().str.to_uppercase() == write_off_method.upper()
    )
    on_day = pl.col("local_date") == day
    figures = (
        paid.filter(pl.col("value").is_not_null())
        .group_by("account_id")
        .agg(
            _when_sum(on_day & ~is_write_off, pl.col("value"), "payments_day"),
            _when_sum(on_day & is_write_off, pl.col("value"), "write_offs_day"),
            _when_sum(~is_write_off, pl.col("value"), "payments_to_date"),
            _when_sum(is_write_off, pl.col("value"), "write_offs_to_date"),
        )
    )
    return figures, bad


def record_figures(records: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Per external customer (company_name): external_day and charges_to_date."""
    return (
        records.filter(pl.col("bill_date") <= day)
        .group_by("company_name")
        .agg(
            _when_sum(pl.col("bill_date") == day, pl.col("bill_amount_base"), "external_day"),
            pl.col("bill_amount_base").sum().alias("charges_to_date"),
        )
        .with_columns(
            pl.format("EXT:{}", pl.col("company_name")).alias("account_key"),
            pl.lit(None, pl.Int64).alias("account_id"),
            pl.lit(None, pl.String).alias("account_number"),
        )
    )


@dataclass(frozen=True)
class DailyReport:
    rows: pl.DataFrame
    bad_payment_amounts: int


def account_daily(
    day: dt.date,
    accounts: pl.DataFrame,
    invoices: pl.DataFrame,
    payments: pl.DataFrame,
    records: pl.DataFrame,
    timezone: str,
    successful: list[str],
    write_off_method: str,
) -> DailyReport:
    """The ``billing_account_daily`` rows of ``day`` (one per account or external customer), sorted by key."""
    pays, bad = payment_figures(payments, day, timezone, successful, write_off_method)
    per_account = (
        pl.concat([invoice_figures(invoices, day), pays], how="diagonal_relaxed")
        .join(accounts.rename({"id": "account_id"}), on="account_id", how="left")
        .with_columns(
            pl.col("account_number").fill_null(pl.format("#{}", pl.col("account_id"))).alias("account_key"),
            pl.lit(None, pl.String).alias("company_name"),
        )
    )
    combined = pl.concat([per_account, record_figures(records, day)], how="diagonal_relaxed")
    money = [
        pl.col(c).sum().round(2, mode="half_away_from_zero").alias(c) for c in MONEY_COLUMNS if c != "balance"
    ]
    rows = (
        combined.with_columns([pl.lit(0.0).alias(c) for c in MONEY_COLUMNS if c not in combined.columns])
        .with_columns([pl.col(c).fill_null(0.0) for c in MONEY_COLUMNS])
        .group_by(list(KEY_COLUMNS))
        .agg(money)
        .with_columns(
            (pl.col("charges_to_date") - pl.col("payments_to_date") - pl.col("write_offs_to_date"))
            .round(2, mode="half_away_from_zero")
            .alias("balance")
        )
        .with_columns(pl.lit(day).alias("report_date"))
        .select("report_date", *KEY_COLUMNS, *MONEY_COLUMNS)
        .sort("account_key")
    )
    return DailyReport(rows=rows, bad_payment_amounts=bad)


# ---------------------------------------------------------------- pre-checks
@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


def check_rows_for_day(counts: dict[str, int], required: list[str], day: dt.date) -> CheckResult:
    """Every required source table has rows dated ``day``."""
    empty = [t for t in required if counts.get(t, 0) == 0]
    figures = ", ".join(f"{t} {counts.get(t, 0)}" for t in required)
    if empty:
        return CheckResult(
            "rows_for_day", False, f"no rows for {day} in {', '.join(empty)} (rows: {figures})"
        )
    return CheckResult("rows_for_day", True, f"rows for {day}: {figures}")


def check_counts_within_tolerance(
    today: dict[str, int], previous: dict[str, int], required: list[str], tolerance: float, day: dt.date
) -> CheckResult:
    """Each table's count for ``day`` is within ``tolerance`` (relative) of the previous day's.

    A table with no rows the previous day has nothing to compare with and passes.
    """
    problems, figures = [], []
    for t in required:
        now, before = today.get(t, 0), previous.get(t, 0)
        figures.append(f"{t} {before}→{now}")
        if before and abs(now - before) / before > tolerance:
            problems.append(f"{t} {now} rows vs {before} the day before ({(now - before) / before:+.0%})")
    if problems:
        return CheckResult(
            "counts_within_tolerance", False, f"{day}: {'; '.join(problems)}; tolerance ±{tolerance:.0%}"
        )
    return CheckResult(
        "counts_within_tolerance", True, f"{day}: {', '.join(figures)} within ±{tolerance:.0%}"
    )
