"""Billing history, tariffs, discounts and payments of the session portfolio (1,500 accounts)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

R = dt.date(2026, 11, 1)  # the demo's run date: the day after --end


def _db(root: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(root / "db" / f"{name}.parquet")


def test_cycles_and_thirteen_months_of_invoices(portfolio: Path) -> None:
    acc, inv, lines = _db(portfolio, "account"), _db(portfolio, "invoice"), _db(portfolio, "invoice_line")
    assert set(acc["billing_cycle_months"]) == {1, 2, 3}
    # bills start three months before the meter data (2025-07-01) and run to the last issue before R
    assert inv["period_start"].min() <= dt.date(2025, 7, 31) and inv["period_end"].max() >= dt.date(
        2026, 10, 1
    )
    assert (inv["issue_date"] < R).all() and (inv["period_start"] <= inv["period_end"]).all()
    monthly = inv.join(
        acc.filter(pl.col("billing_cycle_months") == 1).select(pl.col("id").alias("account_id")),
        on="account_id",
    )
    assert monthly.group_by("account_id").len()["len"].max() >= 15  # Jul 2025 … Oct 2026 monthly bills
    assert lines["invoice_id"].n_unique() >= 0.97 * inv.height  # nearly every invoice has lines
    assert set(lines["item_type"]) == {"SUPPLY", "USAGE", "CONTROLLED_LOAD", "FEED_IN"}
    assert (lines.filter(pl.col("item_type") == "FEED_IN")["net_amount"] <= 0).all()
    assert 0.005 <= (inv["status"] == "REVERSED").mean() <= 0.03  # 1.5% of bills reversed


def test_held_never_billed_and_awaiting_final_bill(portfolio: Path) -> None:
    acc, inv = _db(portfolio, "account"), _db(portfolio, "invoice")
    billed_to = (
        inv.filter(pl.col("status") == "ISSUED")
        .group_by("account_id")
        .agg(pl.col("period_end").max().alias("billed_to"))
    )
    a = acc.join(billed_to, left_on="id", right_on="account_id", how="left")
    open_ = a.filter(pl.col("close_date").is_null())
    # held bills: billed_to + cycle + 7 days grace already passed (3% of accounts held, plus reversals)
    due = pl.col("billed_to").dt.offset_by(pl.format("{}mo", "billing_cycle_months")) + pl.duration(days=7)
    overdue = open_.filter(pl.col("billed_to").is_not_null() & (due < pl.lit(R)))
    assert 0.01 * acc.height <= overdue.height <= 0.08 * acc.height
    never = open_.filter(pl.col("billed_to").is_null() & (pl.col("open_date") >= dt.date(2026, 9, 1)))
    assert never.height >= 5  # recent move-ins and sign-ups with no bill yet
    awaiting = a.filter(
        pl.col("close_date").is_not_null()
        & (pl.col("billed_to").is_null() | (pl.col("billed_to") < pl.col("close_date")))
    )
    assert awaiting.height >= 5  # moved out, final bill not issued before R
    final = a.filter(pl.col("close_date").is_not_null() & (pl.col("billed_to") == pl.col("close_date")))
    assert final.height >= 5  # and others got their final bill


def test_payments_on_time_and_late(portfolio: Path) -> None:
    inv, pay = _db(portfolio, "invoice"), _db(portfolio, "payment")
    assert pay.schema["payment_date"] == pl.Datetime("us")
    assert pay["payment_date"].dt.hour().n_unique() > 12  # real timestamps, not midnight dates
    paid = inv.filter(pl.col("paid_date").is_not_null())
    late = (paid["paid_date"] > paid["due_date"]).mean()
    assert 0.05 <= late <= 0.30  # a fifth of accounts often late, the rest almost never
    assert pay.height == paid.filter((pl.col("net_amount") + pl.col("gst_amount")) > 0).height
    assert (pay["payment_date"] < dt.datetime(2026, 11, 1)).all()


def test_flat_tou_block_tariffs_with_july_change(portfolio: Path) -> None:
    plan, rate, tou = _db(portfolio, "plan"), _db(portfolio, "plan_rate"), _db(portfolio, "tou_window")
    ap = _db(portfolio, "account_plan").join(plan.rename({"id": "plan_id"}), on="plan_id")
    kinds = ap.with_columns(pl.col("code").str.split("-").list.get(-1).alias("kind"))["kind"].value_counts()
    assert set(kinds["kind"]) == {"FLAT", "TOU", "BLOCK"}
    assert (ap.filter(pl.col("code").str.ends_with("TOU"))["tou_scheme_id"].is_not_null()).all()
    # windows in local minutes cover each day type exactly once: lengths add to 1,440
    cover = tou.group_by("tou_scheme_id", "day_type").agg(
        (pl.col("end_minute") - pl.col("start_minute")).sum().alias("m")
    )
    assert (cover["m"] == 1440).all() and set(tou["day_type"]) == {"WEEKDAY", "WEEKEND", "ALL"}
    blocks = rate.filter(pl.col("block_limit_per_day").is_not_null())
    assert blocks.height > 0 and (blocks["item_type"] == "USAGE").all()
    assert {dt.date(2025, 7, 1), dt.date(2026, 7, 1)} <= set(rate["valid_from"])
    step = rate.filter(pl.col("valid_from").is_in([dt.date(2025, 7, 1), dt.date(2026, 7, 1)]))
    wide = step.pivot(
        on="valid_from", index=["plan_id", "item_type", "time_class", "block_limit_per_day"], values="rate"
    )
    assert (wide["2026-07-01"] > wide["2025-07-01"]).all()  # prices rise 7% on 1 July 2026
    assert (
        rate.filter(pl.col("valid_from") == dt.date(2025, 7, 1))["valid_to"] == dt.date(2026, 6, 30)
    ).all()
    # a bill spanning 1 July 2026 has separate lines before and after the change
    lines = _db(portfolio, "invoice_line")
    assert (
        lines.filter(
            (pl.col("period_end") == dt.date(2026, 6, 30)) | (pl.col("period_start") == dt.date(2026, 7, 1))
        ).height
        > 100
    )


def test_discounts(portfolio: Path) -> None:
    d = _db(portfolio, "account_discount")
    assert set(d["discount_type"]) == {"PAY_ON_TIME", "GUARANTEED"}
    assert ((d["percent"] > 0) & (d["percent"] <= 15)).all()
    assert set(d["applies_to"]) <= {"USAGE", "SUPPLY", "USAGE_AND_SUPPLY"}
    lines = _db(portfolio, "invoice_line")
    assert (lines["discount_amount"] > 0).sum() > 100 and (
        lines.filter(pl.col("item_type") == "FEED_IN")["discount_amount"] == 0
    ).all()
