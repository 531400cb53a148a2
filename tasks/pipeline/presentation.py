"""Finance's language for every place a run's figures are shown (docs/REPORT.md).

Pure functions of small frames (no I/O, no Prefect), shared by the HTML report
(:mod:`tasks.pipeline.report`), the console summary (:mod:`flows.summary`) and the Prefect
artifacts (:mod:`tasks.pipeline.artifacts`), so the three say the same thing in the same words:

- human headers (``Accrual ($)``, never ``net_amount_less_discount``), months as ``2026-10``;
- units apart: usage is two columns, ``Usage (kWh)`` (electricity) and ``Usage (MJ)`` (gas); a
  total or subtotal adds kWh to kWh and MJ to MJ, never one to the other;
- full figures: money to the cent, usage to the whole unit, with thousands separators; a total row
  and, where asked, subtotal rows.

The input is the run's ``accrual_summary`` (SPEC §4.5: ili_state, discount_state,
feature_type_name, state, fuel, segment, year_mnth, time_class_name, net_amount, volume, days,
accounts, discount_net, discount_net_propensity, net_amount_less_discount).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from tasks.domain import exceptions as E
from tasks.domain.comparison import compare

FUELS = {"ELECTRICITY": "Electricity", "GAS": "Gas"}
UNITS = {"ELECTRICITY": "kWh", "GAS": "MJ"}
USAGE_KWH = "Usage (kWh)"
USAGE_MJ = "Usage (MJ)"
CHARGES = "Charges ($)"
DISCOUNTS = "Discounts ($)"
ACCRUAL = "Accrual ($)"
ACCOUNTS = "Accounts"
TOTAL = "Total"
NONE_LABEL = "(none)"

# the dimensions of accrual_summary by which figures are shown, and their headers
DIMENSIONS = {
    "month": ("year_mnth", "Month"),
    "state": ("state", "State"),
    "fuel": ("fuel", "Fuel"),
    "segment": ("segment", "Segment"),
    "status": ("ili_state", "Billing status"),
    "time_class": ("time_class_name", "Time class"),
    "item": ("feature_type_name", "Charge type"),
}
FIGURES = (USAGE_KWH, USAGE_MJ, CHARGES, DISCOUNTS, ACCRUAL)

# What each exception code means, in a sentence a finance reader follows (tasks/domain/exceptions.py).
EXCEPTION_MEANINGS = {
    E.STALE_UNBILLED: "unbilled days before the period start, not accrued (look-back cap)",
    E.NO_HISTORY: "register without usable history: its estimate uses the segment profile as is",
    E.BAD_READ: "basic read skipped: a second rollover or an implausible value",
    E.NEGATIVE_READ: "negative or non-numeric read ignored",
    E.NO_METER: "register whose meter is missing or does not cover its dates",
    E.NO_REGISTER: "account whose site has no register in the unbilled window",
    E.NO_PLAN: "unbilled days without a plan: not rated",
    E.OVERLAPPING_PLANS: "two plans on one day: the later-starting one is used",
    E.NO_RATE: "plan without a rate for an item or time class on some day: not rated",
    E.NO_SITE: "account without a site: nothing estimated",
    E.NO_DATA: "register without any data in or before the window",
    E.NO_READS: "basic register without reads",
    E.NO_PROFILE: "register-days without a segment profile: missing intervals count 0",
    E.AMBIGUOUS_READ: "basic read pair where the number of dial turns is a guess",
}

# ---------------------------------------------------------------- labels


def month_label(col: str | pl.Expr = "year_mnth") -> pl.Expr:
    """``202610`` (YYYYMM, an integer or text) as ``2026-10`` (named like the input column)."""
    e = pl.col(col) if isinstance(col, str) else col
    s = e.cast(pl.Int64).cast(pl.String)
    out = pl.when(e.is_null()).then(pl.lit(NONE_LABEL)).otherwise(s.str.slice(0, 4) + "-" + s.str.slice(4, 2))
    return out.alias(col) if isinstance(col, str) else out


def fuel_label(col: str | pl.Expr = "fuel") -> pl.Expr:
    e = pl.col(col) if isinstance(col, str) else col
    return e.replace_strict(FUELS, default=e.fill_null(NONE_LABEL), return_dtype=pl.String)


def _label(dim: str) -> pl.Expr:
    column, header = DIMENSIONS[dim]
    if dim == "month":
        return month_label(column).alias(header)
    if dim == "fuel":
        return fuel_label(column).alias(header)
    return pl.col(column).cast(pl.String).fill_null(NONE_LABEL).alias(header)


# ---------------------------------------------------------------- accrual figures


def _usage(fuel: str) -> pl.Expr:
    return pl.when(pl.col("fuel") == fuel).then(pl.col("volume")).otherwise(None)


def accrual_by(summary: pl.DataFrame, dims: Sequence[str]) -> pl.DataFrame:
    """The accrual grouped by ``dims`` (keys of :data:`DIMENSIONS`), with human headers:
    the dimensions' labels, then ``Usage (kWh)``, ``Usage (MJ)``, ``Charges ($)``, ``Discounts ($)``,
    ``Accrual ($)``. Usage of a group without electricity (gas) is null in the kWh (MJ) column.
    Sorted by the raw keys (months in time order)."""
    keys = [DIMENSIONS[d][0] for d in dims]
    s = summary.with_columns(pl.col(pl.Decimal).cast(pl.Float64))
    g = (
        s.group_by(keys)
        .agg(
            _usage("ELECTRICITY").sum().alias(USAGE_KWH),
            (pl.col("fuel") == "ELECTRICITY").any().alias("_e"),
            _usage("GAS").sum().alias(USAGE_MJ),
            (pl.col("fuel") == "GAS").any().alias("_g"),
            pl.col("net_amount").sum().alias(CHARGES),
            pl.col("discount_net_propensity").sum().alias(DISCOUNTS),
            pl.col("net_amount_less_discount").sum().alias(ACCRUAL),
        )
        .with_columns(
            pl.when(pl.col("_e")).then(pl.col(USAGE_KWH)).alias(USAGE_KWH),
            pl.when(pl.col("_g")).then(pl.col(USAGE_MJ)).alias(USAGE_MJ),
        )
        .sort(keys, nulls_last=True)
    )
    return g.select(*[_label(d) for d in dims], *FIGURES) if dims else g.select(FIGURES)


def _sum_figures(df: pl.DataFrame, figures: Sequence[str]) -> list[pl.Expr]:
    # a sum over no non-null value stays null (an all-gas subtotal has no kWh, not 0 kWh)
    return [
        pl.when(pl.col(f).is_not_null().any()).then(pl.col(f).sum()).otherwise(None).alias(f)
        for f in figures
        if f in df.columns
    ]


def with_totals(
    table: pl.DataFrame,
    labels: Sequence[str],
    subtotal_by: str | None = None,
    figures: Sequence[str] = FIGURES,
    total_label: str = TOTAL,
) -> pl.DataFrame:
    """``table`` (label columns, then figure columns) with a subtotal row after each run of
    ``subtotal_by``'s value (its other labels ``"subtotal"``), and a last ``Total`` row; a column
    ``row`` says ``detail``, ``subtotal`` or ``total`` (for styling; drop it to show)."""
    figs = [f for f in figures if f in table.columns]
    rest = [c for c in table.columns if c not in labels and c not in figs]
    t = table.with_columns(pl.lit("detail").alias("row"))
    out = [t]
    if subtotal_by is not None and table.height:
        others = [c for c in labels if c != subtotal_by]
        sub = (
            table.group_by(subtotal_by, maintain_order=True)
            .agg(_sum_figures(table, figs))
            .with_columns(
                *[pl.lit("subtotal").alias(c) for c in others],
                *[pl.lit(None, table.schema[c]).alias(c) for c in rest],
                pl.lit("subtotal").alias("row"),
            )
        )
        # each subtotal right after its group: order by the group's first row, subtotal last
        order = t.with_row_index("_i").group_by(subtotal_by, maintain_order=True).agg(pl.col("_i").max())
        t = t.with_row_index("_i").with_columns(pl.lit(0).alias("_k"))
        sub = sub.join(order, on=subtotal_by, how="left").with_columns(pl.lit(1).alias("_k"))
        both = pl.concat([t, sub.select(t.columns)], how="vertical_relaxed")
        out = [both.sort("_i", "_k").drop("_i", "_k")]
    total = table.select(_sum_figures(table, figs)).with_columns(
        *[pl.lit(total_label if i == 0 else "").alias(c) for i, c in enumerate(labels)],
        *[pl.lit(None, table.schema[c]).alias(c) for c in rest],
        pl.lit("total").alias("row"),
    )
    cols = out[0].columns
    return pl.concat([*out, total.select(cols)], how="vertical_relaxed")


# ---------------------------------------------------------------- number formats


def money(x: float | None) -> str:
    """``1234567.891`` → ``1,234,567.89``; negative ``-1,234.50``; None → ``–``."""
    if x is None:
        return "–"
    return f"{x:,.2f}" if round(x, 2) != 0 else "0.00"


def quantity(x: float | None) -> str:
    """Usage to the whole unit: ``19915223.4`` → ``19,915,223``."""
    if x is None:
        return "–"
    return f"{x:,.0f}" if round(x) != 0 else "0"


def percent(x: float | None) -> str:
    return "–" if x is None else f"{x:,.1f}"


def count(x: Any) -> str:
    return "–" if x is None else f"{int(x):,}"


def formatter(header: str):  # noqa: ANN201 - returns a callable (value -> text)
    """The format of a column from its header's unit: ``($)`` money, ``(kWh)``/``(MJ)`` usage,
    ``(%)`` percent, integer columns as counts, the rest as text."""
    if header.endswith("($)"):
        return money
    if header.endswith("(kWh)") or header.endswith("(MJ)"):
        return quantity
    if header.endswith("(%)"):
        return percent
    return None


def display_rows(df: pl.DataFrame) -> list[list[str]]:
    """The frame's cells as text by :func:`formatter` (integers as counts, null as ``–``)."""
    fmts = []
    for c, t in df.schema.items():
        f = formatter(c)
        if f is None:
            if t.is_integer():
                f = count
            elif t.is_float():
                f = money
            else:
                f = lambda v: "" if v is None else str(v)  # noqa: E731
        fmts.append(f)
    return [[f(v) for f, v in zip(fmts, row, strict=True)] for row in df.iter_rows()]


def is_numeric_header(df: pl.DataFrame, col: str) -> bool:
    return df.schema[col].is_numeric()


# ---------------------------------------------------------------- other sections' frames


def account_volumes(accounts: pl.DataFrame) -> pl.DataFrame:
    """``bua_account_summary`` rows (one per account) → accounts, actual and estimated usage by fuel,
    state, segment and estimation method (what the report's share section reads; the database
    computes the same with GROUP BY in :func:`tasks.pipeline.report.read_report_frames`)."""
    return (
        accounts.with_columns(pl.col(pl.Decimal).cast(pl.Float64))
        .group_by(
            pl.col("service_type").alias("fuel"),
            pl.col("jurisdiction").alias("state"),
            pl.col("journal_segment").alias("segment"),
            "estimation_method",
        )
        .agg(
            pl.len().cast(pl.Int64).alias("accounts"),
            pl.col("volume_actual").sum(),
            pl.col("volume_estimated").sum(),
        )
        .sort("fuel", "state", "segment", "estimation_method", nulls_last=True)
    )


def estimated_share(volumes: pl.DataFrame, fuel: str) -> pl.DataFrame:
    """Actual and estimated usage of one fuel by segment, with the estimated share, a total row."""
    unit = UNITS.get(fuel, "units")
    v = volumes.filter(pl.col("fuel") == fuel)
    g = (
        v.group_by(pl.col("segment").fill_null(NONE_LABEL).alias("Segment"))
        .agg(
            pl.col("accounts").sum().alias(ACCOUNTS),
            pl.col("volume_actual").sum().alias(f"Actual ({unit})"),
            pl.col("volume_estimated").sum().alias(f"Estimated ({unit})"),
        )
        .sort("Segment")
    )
    t = with_totals(g, ["Segment"], figures=[ACCOUNTS, f"Actual ({unit})", f"Estimated ({unit})"])
    whole = pl.col(f"Actual ({unit})") + pl.col(f"Estimated ({unit})")
    return t.with_columns(
        pl.when(whole != 0).then(100 * pl.col(f"Estimated ({unit})") / whole).alias("Estimated share (%)")
    )


def exceptions_table(exceptions: pl.DataFrame) -> pl.DataFrame:
    """``(code, count)`` → Code, Meaning, Count, most frequent first, with a total row."""
    g = (
        exceptions.group_by("code")
        .agg(pl.col("count").sum())
        .sort(["count", "code"], descending=[True, False])
        .select(
            pl.col("code").alias("Code"),
            pl.col("code")
            .replace_strict(EXCEPTION_MEANINGS, default="", return_dtype=pl.String)
            .alias("Meaning"),
            pl.col("count").cast(pl.Int64).alias("Count"),
        )
    )
    return with_totals(g, ["Code", "Meaning"], figures=["Count"])


PRECHECK_COLUMNS = ("check", "status", "figure", "threshold", "detail")


def prechecks_table(prechecks: pl.DataFrame) -> pl.DataFrame:
    """The pre-run checks (SPEC §4.0: check, status, figure, threshold, detail) with human headers;
    FAIL first, then WARN, then PASS, each in the order given."""
    order = {"FAIL": 0, "WARN": 1, "PASS": 2}
    p = prechecks.with_row_index("_i").with_columns(
        pl.col("status").cast(pl.String).replace_strict(order, default=3, return_dtype=pl.Int64).alias("_o")
    )
    return p.sort("_o", "_i").select(
        pl.col("check").cast(pl.String).alias("Check"),
        pl.col("status").cast(pl.String).alias("Status"),
        *[
            pl.col(c).cast(pl.String).fill_null("").alias(c.capitalize())
            for c in ("figure", "threshold", "detail")
            if c in prechecks.columns
        ],
    )


# ---------------------------------------------------------------- booked vs what-if (SPEC §4.5)

COMPARE_KEYS = ("year_mnth", "state", "fuel", "segment")


def compare_runs(scenario: pl.DataFrame, booked: pl.DataFrame) -> pl.DataFrame:
    """A what-if run's accrual summary against the booked run's (tasks/domain/comparison.py)."""
    return compare(
        scenario.with_columns(pl.col(pl.Decimal).cast(pl.Float64)),
        booked.with_columns(pl.col(pl.Decimal).cast(pl.Float64)),
    )


def comparison_by(comparison: pl.DataFrame, dim: str) -> pl.DataFrame:
    """The comparison grouped by one dimension (month, state, fuel or segment): booked and what-if
    accrual, difference ($ and %), and usage of both runs by unit, with a total row."""
    column, header = DIMENSIONS[dim]
    c = comparison.with_columns(
        fuel_usage_kwh=pl.col("fuel") == "ELECTRICITY", fuel_usage_mj=pl.col("fuel") == "GAS"
    )
    g = (
        c.group_by(column)
        .agg(
            pl.col("booked_accrual").sum().alias("Booked accrual ($)"),
            pl.col("scenario_accrual").sum().alias("What-if accrual ($)"),
            pl.col("booked_volume").filter(pl.col("fuel_usage_kwh")).sum().alias("Booked usage (kWh)"),
            pl.col("scenario_volume").filter(pl.col("fuel_usage_kwh")).sum().alias("What-if usage (kWh)"),
            pl.col("booked_volume").filter(pl.col("fuel_usage_mj")).sum().alias("Booked usage (MJ)"),
            pl.col("scenario_volume").filter(pl.col("fuel_usage_mj")).sum().alias("What-if usage (MJ)"),
            pl.col("fuel_usage_kwh").any().alias("_e"),
            pl.col("fuel_usage_mj").any().alias("_g"),
        )
        .sort(column, nulls_last=True)
        .with_columns(
            *[
                pl.when(pl.col("_e")).then(pl.col(c)).alias(c)
                for c in ("Booked usage (kWh)", "What-if usage (kWh)")
            ],
            *[
                pl.when(pl.col("_g")).then(pl.col(c)).alias(c)
                for c in ("Booked usage (MJ)", "What-if usage (MJ)")
            ],
        )
        .select(_label(dim), pl.exclude(column, "_e", "_g"))
    )
    figs = [c for c in g.columns if c != header]
    t = with_totals(g, [header], figures=figs).with_columns(
        (pl.col("What-if accrual ($)") - pl.col("Booked accrual ($)")).alias("Difference ($)")
    )
    t = t.with_columns(
        pl.when(pl.col("Booked accrual ($)") != 0)
        .then(100 * pl.col("Difference ($)") / pl.col("Booked accrual ($)").abs())
        .alias("Difference (%)")
    )
    first = [header, "Booked accrual ($)", "What-if accrual ($)", "Difference ($)", "Difference (%)"]
    return t.select(*first, *[c for c in t.columns if c not in first])
