"""What the billing system billed per basic register, as read-date boundaries (docs/METHOD.md
"Dial turns"): the quantity billed between two reads settles how many times the dial turned."""

from __future__ import annotations

import polars as pl

BILLED_READ_COLUMNS = {"billed_seg": pl.Int64, "billed_cum": pl.Float64}


def billed_quantities(lines: pl.DataFrame, invoices: pl.DataFrame) -> pl.DataFrame:
    """meter_register_id, invoice_id, issue_date, period_start, period_end, quantity: the basic
    registers' billed lines (sql/billed_quantities.sql) of ISSUED invoices issued before the run
    date (``invoices``: the invoices query's rows), summed per register, invoice and period (a
    block tariff bills one period on several lines)."""
    issued = invoices.filter(pl.col("status") == "ISSUED").select("invoice_id", "issue_date")
    key = ["meter_register_id", "invoice_id", "issue_date", "period_start", "period_end"]
    # summed in 3 decimals, the quantity's own (NUMERIC(18, 3)): the same figure in whatever order
    # the lines are added
    return lines.join(issued, on="invoice_id").group_by(key).agg(pl.col("quantity").sum().round(3)).sort(key)


def billed_boundaries(billed: pl.DataFrame) -> pl.DataFrame:
    """meter_register_id, read_date, billed_seg, billed_cum of :func:`billed_quantities`' rows: for
    each date that bounds a billed period (its period_end, or the day before its period_start: a read dated D closes day D, SPEC
    §4.3), the register's cumulative billed quantity at the end of that day within a run of
    contiguous billed periods (``billed_seg``). Between two dates of the same run, the quantity
    billed is the difference of their ``billed_cum``; across runs (a gap or an overlap between
    periods) nothing is known. A period billed on several invoices counts once, on the latest
    (issue_date, invoice_id). A date that bounds two runs is left out."""
    key = ["meter_register_id", "period_start", "period_end"]
    b = (
        billed.filter(pl.col("quantity").is_not_null() & (pl.col("period_end") >= pl.col("period_start")))
        .sort(*key, "issue_date", "invoice_id")
        .unique(key, keep="last", maintain_order=True)  # still in key order
    )
    # rows sorted by register: the previous row's end when it is the same register's (no window
    # function: a third of the time); a run's number is unique over all registers
    same = pl.col("meter_register_id") == pl.col("meter_register_id").shift()
    prev_end = pl.when(same).then(pl.col("period_end").shift())
    b = b.with_columns(
        _gap=(prev_end.is_null() | (pl.col("period_start") != prev_end + pl.duration(days=1))).cast(pl.Int64)
    ).with_columns(
        billed_seg=pl.col("_gap").cum_sum(),
        _after=pl.col("quantity").cum_sum().over("meter_register_id"),
    )
    ends = b.select(
        "meter_register_id", pl.col("period_end").alias("read_date"), "billed_seg", pl.col("_after")
    )
    starts = b.filter(pl.col("_gap") == 1).select(
        "meter_register_id",
        (pl.col("period_start") - pl.duration(days=1)).alias("read_date"),
        "billed_seg",
        (pl.col("_after") - pl.col("quantity")).alias("_after"),
    )
    both = pl.concat([starts, ends]).unique(["meter_register_id", "read_date", "billed_seg"], keep="first")
    return (
        both.filter(pl.len().over("meter_register_id", "read_date") == 1)
        .select("meter_register_id", "read_date", "billed_seg", pl.col("_after").alias("billed_cum"))
        .cast({"billed_seg": pl.Int64, "billed_cum": pl.Float64})
        .sort("meter_register_id", "read_date")
    )


def with_billed(reads: pl.DataFrame, billed: pl.DataFrame) -> pl.DataFrame:
    """``reads`` with billed_seg and billed_cum (:func:`billed_boundaries`; null where the read's
    date bounds no billed period)."""
    if not billed.height:
        return reads.with_columns([pl.lit(None, t).alias(c) for c, t in BILLED_READ_COLUMNS.items()])
    return reads.join(
        billed_boundaries(billed), on=["meter_register_id", "read_date"], how="left", maintain_order="left"
    )
