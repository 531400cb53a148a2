"""True-up of the accrual (SPEC §4.6).

**True-up.** The previous run's accrual (the latest run_date P < R in ``bua_account_summary``)
against what has been billed since: for each account accrued at P, the *covered* days are
unbilled_from … min(unbilled_to, the latest period_end of its ISSUED invoices issued on or after P
and before R). Accrued for the covered days = each of the account's ``invoice_line_item_monthly``
rows of P pro-rated by the covered share of its month's accrued days (the accrual is monthly):
volume = USAGE_RETAIL + CONTROLLED_LOAD_RETAIL quantity, net = net_amount −
discount_net_propensity. Billed = the lines of those invoices pro-rated to the days their period
shares with the covered days: volume = USAGE + CONTROLLED_LOAD quantity, net = net_amount −
discount_amount. Rows per (fuel, journal segment), per fuel (segment ``ALL``) and for the
portfolio (fuel and segment ``ALL``; volumes null there, kWh and MJ do not add): difference =
accrued − billed, difference_pct = 100 × difference / billed. ``accrued_net_total`` is the whole
accrual of P (billed or not), ``accounts_billed`` the accounts with covered days. No earlier run:
no rows, and the phase's stats say so.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from tasks.domain.backtest import (
    ALL,
    BILLED_VOLUME_ITEMS,
    _pct,
)


def _days(lo: pl.Expr, hi: pl.Expr) -> pl.Expr:
    return ((hi - lo).dt.total_days() + 1).clip(lower_bound=0)


SHAPE_KEY = ["fuel", "jurisdiction", "customer_class"]


def daily_shapes(accounts: pl.DataFrame, macro: pl.DataFrame, gas_macro: pl.DataFrame) -> pl.DataFrame:
    """Day weights for spreading usage over days: fuel, jurisdiction, customer_class, read_date,
    weight — electricity: the macro profile of ``customer_class|jurisdiction|CONSUMPTION``, else
    of ``*|jurisdiction|CONSUMPTION``; gas: the jurisdiction's gas shape (both classes)."""
    keys = (
        accounts.select(pl.col("service_type").alias("fuel"), "jurisdiction", "customer_class")
        .unique()
        .drop_nulls()
    )
    elec = keys.filter(pl.col("fuel") == "ELECTRICITY")
    own = elec.with_columns(
        segment=pl.concat_str(["customer_class", "jurisdiction"], separator="|") + "|CONSUMPTION"
    )
    parent = elec.with_columns(segment=pl.lit("*|") + pl.col("jurisdiction") + "|CONSUMPTION")
    m = macro.select("segment", "read_date", pl.col("daily").alias("weight"))
    e = pl.concat(
        [
            own.join(m, on="segment"),
            parent.join(own.join(m, on="segment").select(SHAPE_KEY).unique(), on=SHAPE_KEY, how="anti").join(
                m, on="segment"
            ),
        ]
    ).drop("segment")
    g = keys.filter(pl.col("fuel") == "GAS").join(
        gas_macro.select("jurisdiction", "read_date", pl.col("daily").alias("weight")), on="jurisdiction"
    )
    return pl.concat([e, g]).select(*SHAPE_KEY, "read_date", "weight").sort(*SHAPE_KEY, "read_date")


def _with_shape_sum(
    df: pl.DataFrame, lo: str, hi: str, out: str, shapes: pl.DataFrame | None
) -> pl.DataFrame:
    """Add ``out`` = Σ weight over the days lo … hi of the row's shape (null when the shape does not
    cover both ends, or when there are no shapes)."""
    if shapes is None or shapes.height == 0:
        return df.with_columns(pl.lit(None, pl.Float64).alias(out))
    cum = shapes.with_columns(_cum=pl.col("weight").cum_sum().over(SHAPE_KEY))
    hi_f = cum.select(*SHAPE_KEY, pl.col("read_date").alias(hi), pl.col("_cum").alias("_h"))
    lo_f = cum.select(
        *SHAPE_KEY, pl.col("read_date").alias(lo), (pl.col("_cum") - pl.col("weight")).alias("_l")
    )
    return (
        df.join(hi_f, on=[*SHAPE_KEY, hi], how="left")
        .join(lo_f, on=[*SHAPE_KEY, lo], how="left")
        .with_columns(
            pl.when(pl.col(lo) <= pl.col(hi)).then(pl.col("_h") - pl.col("_l")).otherwise(0.0).alias(out)
        )
        .drop("_h", "_l")
    )


def _share(part: str, whole: str, part_days: pl.Expr, whole_days: pl.Expr) -> pl.Expr:
    """The shaped share part / whole, else (no shape) the share of days."""
    flat = pl.when(whole_days > 0).then(part_days / whole_days).otherwise(0.0)
    shaped = pl.when(pl.col(whole) > 0).then(pl.col(part) / pl.col(whole))
    return pl.coalesce(shaped, flat).clip(0.0, 1.0)


def trueup_rows(
    accounts: pl.DataFrame,
    accrued: pl.DataFrame,
    billed: pl.DataFrame,
    shapes: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """True-up rows (without run columns) from the previous run and the invoices issued since.

    ``accounts``: the previous run's bua_account_summary rows (account_id, service_type,
    jurisdiction, customer_class, journal_segment, unbilled_from, unbilled_to). ``accrued``: its
    invoice_line_item_monthly rows per (account_id, year_mnth): volume (usage + controlled load
    quantity), supply_net and usage_net (net − propensity-weighted discount of the supply rows and
    of the others). ``billed``: lines of ISSUED invoices issued since (account_id, item_type,
    period_start, period_end, quantity, net_amount, discount_amount). ``shapes``
    (:func:`daily_shapes`): day weights that spread usage and its money over a period; supply is
    spread by days, and so is everything when ``shapes`` is None or does not cover the period.
    """
    acc = _covered(accounts, billed)
    a = _accrued_per_account(acc, accrued, shapes)
    b = _billed_per_account(acc, billed, shapes)
    return _rollup(acc, a, b)


def _covered(accounts: pl.DataFrame, billed: pl.DataFrame) -> pl.DataFrame:
    """The previous run's accounts with their unbilled window (uf, ut), covered-to day (ct: the end
    of the newest bill since, within the window) and covered days."""
    acc = accounts.select(
        "account_id",
        pl.col("service_type").alias("fuel"),
        "jurisdiction",
        "customer_class",
        pl.col("journal_segment").fill_null("").alias("segment"),
        pl.col("unbilled_from").alias("uf"),
        pl.col("unbilled_to").alias("ut"),
    )
    covered_to = billed.group_by("account_id").agg(pl.col("period_end").max().alias("_bt"))
    # min_horizontal skips nulls: an account with no invoice since has no covered day
    acc = acc.join(covered_to, on="account_id", how="left").with_columns(
        ct=pl.when(pl.col("_bt").is_not_null()).then(pl.min_horizontal("ut", "_bt"))
    )
    acc = acc.with_columns(covered=_days(pl.col("uf"), pl.col("ct")).fill_null(0).cast(pl.Int64))
    return acc


def _accrued_per_account(
    acc: pl.DataFrame, accrued: pl.DataFrame, shapes: pl.DataFrame | None
) -> pl.DataFrame:
    """Per account: the accrual of the covered days (usage by shape, supply by days) and in whole."""
    month_start = pl.date(pl.col("year_mnth") // 100, pl.col("year_mnth") % 100, 1)
    a = accrued.join(acc, on="account_id", how="inner").with_columns(
        _lo=pl.max_horizontal(month_start, pl.col("uf")),
        _hi=pl.min_horizontal(month_start.dt.month_end(), pl.col("ut")),
    )
    a = a.with_columns(
        _chi=pl.when(pl.col("ct").is_not_null())
        .then(pl.min_horizontal("_hi", "ct"))
        .otherwise(pl.col("_lo") - pl.duration(days=1))
    )
    a = _with_shape_sum(_with_shape_sum(a, "_lo", "_hi", "_sw", shapes), "_lo", "_chi", "_sc", shapes)
    n_days, c_days = _days(pl.col("_lo"), pl.col("_hi")), _days(pl.col("_lo"), pl.col("_chi"))
    return (
        a.with_columns(
            _fd=pl.when(n_days > 0).then(c_days / n_days).otherwise(0.0),
            _fs=_share("_sc", "_sw", c_days, n_days),
        )
        .sort("account_id", "year_mnth")  # joins do not keep order: add in one order every run
        .group_by("account_id", maintain_order=True)
        .agg(
            (pl.col("volume") * pl.col("_fs")).sum().alias("accrued_volume"),
            (pl.col("usage_net") * pl.col("_fs") + pl.col("supply_net") * pl.col("_fd"))
            .sum()
            .alias("accrued_net"),
            (pl.col("usage_net") + pl.col("supply_net")).sum().alias("accrued_net_total"),
        )
    )


def _billed_per_account(acc: pl.DataFrame, billed: pl.DataFrame, shapes: pl.DataFrame | None) -> pl.DataFrame:
    """Per account: what the bills since charge for the covered days (supply by days, usage by shape)."""
    b = billed.join(
        acc.select("account_id", *SHAPE_KEY, "uf", "ct"), on="account_id", how="inner"
    ).with_columns(
        _olo=pl.max_horizontal("period_start", "uf"),
        _ohi=pl.min_horizontal("period_end", "ct"),
    )
    b = _with_shape_sum(
        _with_shape_sum(b, "period_start", "period_end", "_sw", shapes), "_olo", "_ohi", "_so", shapes
    )
    o_days, l_days = (
        _days(pl.col("_olo"), pl.col("_ohi")).fill_null(0),
        _days(pl.col("period_start"), pl.col("period_end")),
    )
    flat = pl.when(l_days > 0).then(o_days / l_days).otherwise(0.0)
    return (
        b.with_columns(
            _f=pl.when(pl.col("item_type") == "SUPPLY")
            .then(flat)
            .otherwise(_share("_so", "_sw", o_days, l_days))
        )
        .sort(
            "account_id",
            "period_start",
            "period_end",
            "item_type",
            "quantity",
            "net_amount",
            "discount_amount",
        )
        .group_by("account_id", maintain_order=True)
        .agg(
            (pl.col("quantity") * pl.col("_f"))
            .filter(pl.col("item_type").is_in(BILLED_VOLUME_ITEMS))
            .sum()
            .alias("billed_volume"),
            ((pl.col("net_amount") - pl.col("discount_amount")) * pl.col("_f")).sum().alias("billed_net"),
        )
    )


def _rollup(acc: pl.DataFrame, a: pl.DataFrame, b: pl.DataFrame) -> pl.DataFrame:
    """Rows per fuel and segment, each fuel's subtotal and the portfolio's total, rounded, in that order."""
    per = (
        acc.sort("account_id")
        .select("account_id", "fuel", "segment", "covered")
        .join(a, on="account_id", how="left")
        .join(b, on="account_id", how="left")
        .with_columns(
            pl.col(c).fill_null(0.0)
            for c in ("accrued_volume", "accrued_net", "accrued_net_total", "billed_volume", "billed_net")
        )
        .sort("account_id")
    )
    aggs = [
        pl.len().cast(pl.Int64).alias("accounts"),
        (pl.col("covered") > 0).sum().cast(pl.Int64).alias("accounts_billed"),
        pl.col("covered").sum().cast(pl.Int64).alias("covered_days"),
        pl.col("accrued_volume").sum(),
        pl.col("billed_volume").sum(),
        pl.col("accrued_net").sum(),
        pl.col("billed_net").sum(),
        pl.col("accrued_net_total").sum(),
    ]
    frames = [
        per.group_by("fuel", "segment").agg(aggs),
        per.with_columns(segment=pl.lit(ALL)).group_by("fuel", "segment").agg(aggs),
        per.with_columns(segment=pl.lit(ALL), fuel=pl.lit(ALL))
        .group_by("fuel", "segment")
        .agg(aggs)
        .with_columns(accrued_volume=pl.lit(None, pl.Float64), billed_volume=pl.lit(None, pl.Float64)),
    ]
    out = pl.concat(frames, how="vertical_relaxed")
    out = out.with_columns(
        volume_difference=pl.col("accrued_volume") - pl.col("billed_volume"),
        net_difference=pl.col("accrued_net") - pl.col("billed_net"),
    ).with_columns(
        *[pl.col(c).round(3) for c in ("accrued_volume", "billed_volume", "volume_difference")],
        *[pl.col(c).round(2) for c in ("accrued_net", "billed_net", "net_difference", "accrued_net_total")],
        volume_difference_pct=_pct(pl.col("volume_difference"), pl.col("billed_volume")).round(2),
        net_difference_pct=_pct(pl.col("net_difference"), pl.col("billed_net")).round(2),
    )
    order = pl.when(pl.col("fuel") == ALL).then(2).when(pl.col("segment") == ALL).then(1).otherwise(0)
    return out.with_columns(_o=order).sort("_o", "fuel", "segment").drop("_o")


def summary(backtest: pl.DataFrame, trueup: pl.DataFrame, note: str | None) -> dict[str, Any]:
    """The phase's stats: the back-test and true-up rows (JSON-safe) and a note."""

    def rows(df: pl.DataFrame) -> list[dict[str, Any]]:
        return (
            df.drop("run_id", "run_date", strict=False)
            .with_columns(pl.col(pl.Decimal).cast(pl.Float64))
            .to_dicts()
        )

    return {"backtest": rows(backtest), "trueup": rows(trueup), "note": note}
