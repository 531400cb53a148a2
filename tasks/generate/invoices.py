"""Invoices, invoice lines and payments from bills whose line quantities are known.

Amounts: quantity × rate rounded to cents (FEED_IN negative); the first block takes up to
``block_limit_per_day`` × days of the segment. A GUARANTEED discount is always taken; a
PAY_ON_TIME discount only when the invoice is paid by its due date. Invoice net = Σ line net −
discounts; GST 10% on net less discounts, except FEED_IN lines. 1.5% of bills are reversed
(status REVERSED) and re-issued 7–20 days later as a new invoice (when that is still before R).
Each account pays late with its own propensity (most almost never, a fifth often); a payment is a
timestamp (UTC, naive) on or before the due date when on time, 1–40 days after when late, and
absent when it would fall on or after R.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from tasks.generate.calendar import Calendar, rng_for

GST = 0.10


def _money(e: pl.Expr) -> pl.Expr:
    """Dollars rounded to cents, half away from zero (as SPEC §4.4 rounds money)."""
    return (e * 100).round(0, mode="half_away_from_zero") / 100


def finish_lines(lines: pl.DataFrame) -> pl.DataFrame:
    """Split block quantities, price every line."""
    total = pl.col("quantity")
    days = (pl.col("e") - pl.col("s") + 1).cast(pl.Float64)
    first = pl.min_horizontal(total, pl.col("block_limit_per_day") * days)
    qty = (
        pl.when(pl.col("block") == 1)
        .then(first)
        .when(pl.col("block") == 2)
        .then(total - pl.min_horizontal(total, pl.col("limit1") * days))
        .otherwise(total)
    )
    limit1 = pl.col("block_limit_per_day").max().over("bill_id", "meter_register_id", "s").alias("limit1")
    out = lines.with_columns(limit1).with_columns(qty.round(3).alias("quantity"))
    sign = pl.when(pl.col("item_type") == "FEED_IN").then(-1.0).otherwise(1.0)
    return out.with_columns(_money(pl.col("quantity") * pl.col("rate") * sign).alias("net_amount")).drop(
        "limit1"
    )


@dataclass
class InvoiceDraws:
    """The ``invoices`` random stream drawn for the whole portfolio, in the order the whole-portfolio
    pricing drew it (accounts, then bills, then invoices in id order), kept as small numeric arrays
    so that invoices can then be priced one chunk of accounts at a time (:func:`price_chunk`) with
    the very numbers a single pass would use."""

    late_p: np.ndarray  # per account (accounts' row order = id order)
    reversed_: np.ndarray  # per bill (bill_id order)
    reissue_add: np.ndarray  # per bill
    late_u: np.ndarray  # per invoice (id order)
    secs: np.ndarray
    late_days: np.ndarray
    early_days: np.ndarray


def draw_invoices(bills: pl.DataFrame, n_accounts: int, cal: Calendar, seed: int) -> InvoiceDraws:
    """Every draw of the ``invoices`` stream (O(bills) small numbers, no frame)."""
    rng = rng_for(seed, "invoices")
    n_acc = n_accounts
    late_p = np.where(rng.random(n_acc) < 0.2, rng.uniform(0.3, 0.8, n_acc), rng.uniform(0.0, 0.06, n_acc))
    nb = bills.height
    reversed_ = rng.random(nb) < 0.015
    reissue_add = rng.integers(7, 21, nb).astype(np.int8)
    again = reversed_ & (bills["issue_i"].to_numpy() + reissue_add < cal.n_days)
    n = nb + int(again.sum())  # invoices: every bill, and the re-issues before R
    late_u = rng.random(n)
    secs = rng.integers(0, 86400, n).astype(np.int32)
    # np.where(late, due + integers(1, 41), due - integers(0, 11)) drew both, in this order
    late_days = rng.integers(1, 41, n).astype(np.int8)
    early_days = rng.integers(0, 11, n).astype(np.int8)
    return InvoiceDraws(late_p, reversed_, reissue_add, late_u, secs, late_days, early_days)


@dataclass
class ChunkOffsets:
    """Where a chunk of accounts starts in the portfolio's accounts, bills, invoices and invoice lines."""

    account: int = 0
    bill: int = 0
    invoice: int = 0
    invoice_line: int = 0


def price_chunk(
    bills: pl.DataFrame,
    lines: pl.DataFrame,
    discounts: pl.DataFrame,
    accounts: pl.DataFrame,
    draws: InvoiceDraws,
    at: ChunkOffsets,
    cal: Calendar,
) -> dict[str, pl.DataFrame]:
    """Invoices, invoice lines and (unnumbered) payments of one chunk of consecutive accounts.

    ``bills``/``lines``/``discounts``/``accounts``: that chunk's rows (bills in bill_id order, the
    accounts in id order); ``at``: where the chunk starts. Invoice and invoice-line ids continue
    from ``at``; payments keep ``pay_i``/``pay_s``/``id`` for :func:`number_payments`."""
    r_day = cal.n_days
    n_acc, nb = accounts.height, bills.height
    acc = accounts.select(pl.col("id").alias("account_id"), "customer_class").with_columns(
        pl.Series("late_p", draws.late_p[at.account : at.account + n_acc])
    )
    reversed_ = draws.reversed_[at.bill : at.bill + nb]
    reissue = bills["issue_i"].to_numpy() + draws.reissue_add[at.bill : at.bill + nb]
    b = bills.with_columns(pl.Series("reversed", reversed_), pl.Series("reissue_i", reissue))
    first = b.with_columns(
        pl.when(pl.col("reversed")).then(pl.lit("REVERSED")).otherwise(pl.lit("ISSUED")).alias("status")
    )
    again = b.filter(pl.col("reversed") & (pl.col("reissue_i") < r_day)).with_columns(
        pl.col("reissue_i").alias("issue_i"), pl.lit("ISSUED").alias("status")
    )
    inv = (
        pl.concat([first, again])
        .sort("account_id", "period_start_i", "issue_i")
        .with_row_index("id", offset=1 + at.invoice)
        .join(acc, on="account_id", how="left", maintain_order="left")  # the rng draws follow row order
    )
    n = inv.height
    pick = slice(at.invoice, at.invoice + n)
    due = inv["issue_i"].to_numpy() + np.where(inv["customer_class"].to_numpy() == "RES", 14, 21)
    late = draws.late_u[pick] < inv["late_p"].to_numpy()
    secs = draws.secs[pick].astype(np.int64)
    pay_day = np.where(
        late, due + draws.late_days[pick].astype(np.int64), due - draws.early_days[pick].astype(np.int64)
    )
    pay_day = np.maximum(pay_day, inv["issue_i"].to_numpy())
    paid = (inv["status"].to_numpy() == "ISSUED") & (pay_day < r_day)
    inv = inv.with_columns(
        pl.Series("due_i", due),
        pl.Series("pay_i", np.where(paid, pay_day, -1)),
        pl.Series("pay_s", secs),
        pl.Series("paid", paid),
    )
    on_time = paid & (pay_day <= due)
    inv = inv.with_columns(pl.Series("on_time", on_time))
    # discounts active at the period end
    disc = (
        inv.select("id", "bill_id", "account_id", "period_end_i", "on_time")
        .join(
            discounts.select("account_id", "discount_type", "percent", "applies_to", "start_i", "end_i"),
            on="account_id",
        )
        .filter(
            (pl.col("start_i") <= pl.col("period_end_i"))
            & (pl.col("end_i").is_null() | (pl.col("end_i") >= pl.col("period_end_i")))
        )
        .filter((pl.col("discount_type") == "GUARANTEED") | pl.col("on_time"))
        .sort("id", "discount_type", "percent", "applies_to")  # joins keep no order: "first" must not vary
        .group_by("id", "bill_id", maintain_order=True)
        .agg(pl.col("percent").first(), pl.col("applies_to").first())
    )
    il = (
        inv.select(pl.col("id").alias("invoice_id"), "bill_id")
        .join(lines, on="bill_id")
        .join(disc.rename({"id": "invoice_id"}).drop("bill_id"), on="invoice_id", how="left")
    )
    covered = (
        pl.col("item_type").is_in(["USAGE", "CONTROLLED_LOAD"])
        & pl.col("applies_to").is_in(["USAGE", "USAGE_AND_SUPPLY"])
    ) | ((pl.col("item_type") == "SUPPLY") & (pl.col("applies_to") == "USAGE_AND_SUPPLY"))
    il = il.with_columns(
        pl.when(covered)
        .then(_money(pl.col("net_amount") * pl.col("percent") / 100))
        .otherwise(0.0)
        .alias("discount_amount")
    )
    start = pl.lit(cal.start)
    invoice_line = il.sort("invoice_id", "line_id").with_row_index("id", offset=1 + at.invoice_line).select(
        pl.col("id").cast(pl.Int64), "invoice_id", "meter_register_id", "item_type", "time_class",
        (start + pl.duration(days="s")).alias("period_start"), (start + pl.duration(days="e")).alias("period_end"),
        "quantity", "rate", "net_amount", "discount_amount",
    )  # fmt: skip
    # in whole cents (the lines are rounded to cents): a float sum's last bits follow the row order,
    # which a join does not keep, and the rounding to cents then differed between runs
    cents = ((pl.col("net_amount") - pl.col("discount_amount")) * 100).round().cast(pl.Int64)
    totals = il.group_by("invoice_id").agg(
        (cents.sum() / 100).alias("net"),
        (pl.when(pl.col("item_type") != "FEED_IN").then(cents).otherwise(0).sum() / 100).alias("taxable"),
    )
    inv = inv.join(
        totals, left_on="id", right_on="invoice_id", how="left", maintain_order="left"
    ).with_columns(
        _money(pl.col("net").fill_null(0.0)).alias("net_amount"),
        _money(pl.col("taxable").fill_null(0.0) * GST).alias("gst_amount"),
    )
    pay_ts = pl.lit(dt.datetime.combine(cal.start, dt.time())) + pl.duration(days="pay_i", seconds="pay_s")
    invoice = inv.select(
        pl.col("id").cast(pl.Int64), "account_id",
        pl.format("INV{}", pl.col("id").cast(pl.String).str.zfill(10)).alias("invoice_number"),
        (start + pl.duration(days="issue_i")).alias("issue_date"), (start + pl.duration(days="period_start_i")).alias("period_start"),
        (start + pl.duration(days="period_end_i")).alias("period_end"), "status", "net_amount", "gst_amount",
        (start + pl.duration(days="due_i")).alias("due_date"),
        pl.when(pl.col("paid")).then(pay_ts.dt.date()).alias("paid_date"),
    )  # fmt: skip
    payment = inv.filter(pl.col("paid") & ((pl.col("net_amount") + pl.col("gst_amount")) > 0)).select(
        "account_id",
        pay_ts.alias("payment_date"),
        (pl.col("net_amount") + pl.col("gst_amount")).round(2).alias("amount"),
        "id",
        "pay_i",
        "pay_s",
    )
    return {"invoice": invoice, "invoice_line": invoice_line, "payment": payment}


def number_payments(payments: pl.DataFrame, seed: int) -> pl.DataFrame:
    """The payment rows of every chunk, in payment-time order, numbered, with their method drawn."""
    methods = np.array(["DIRECT_DEBIT", "BPAY", "CARD"])
    payment = payments.sort("pay_i", "pay_s", "id").select("account_id", "payment_date", "amount", "id")
    payment = payment.with_columns(
        pl.Series("method", methods[rng_for(seed, "pay-method").integers(0, 3, payment.height)]),
        pl.lit("SETTLED").alias("status"),
    ).with_row_index("pid", offset=1)
    return payment.select(
        pl.col("pid").cast(pl.Int64).alias("id"), "account_id", "payment_date", "amount", "method", "status"
    )


def build_invoices(
    bills: pl.DataFrame,
    lines: pl.DataFrame,
    discounts: pl.DataFrame,
    accounts: pl.DataFrame,
    cal: Calendar,
    seed: int,
) -> dict[str, pl.DataFrame]:
    """The whole portfolio priced as one chunk (invoice, invoice_line, payment)."""
    draws = draw_invoices(bills, accounts.height, cal, seed)
    out = price_chunk(bills, lines, discounts, accounts, draws, ChunkOffsets(), cal)
    return {**out, "payment": number_payments(out["payment"], seed)}
