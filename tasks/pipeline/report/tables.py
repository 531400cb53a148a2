"""The report's tables: display frames (human headers, subtotals and totals) and their HTML."""

from __future__ import annotations

import html

import polars as pl

from tasks.pipeline import presentation as P


def html_table(df: pl.DataFrame, caption: str = "", cls: str = "") -> str:
    """A table of a display frame: headers as given, figures formatted by their header's unit and
    right-aligned; a ``row`` column (detail/subtotal/total) styles the row and is not shown."""
    kinds = df["row"].to_list() if "row" in df.columns else ["detail"] * df.height
    show = df.drop("row", strict=False)
    if show.height == 0:
        return f"<p>{html.escape(caption)}: none.</p>" if caption else "<p>none.</p>"
    numeric = [t.is_numeric() for t in show.dtypes]
    head = "".join(
        f'<th class="n">{html.escape(c)}</th>' if n else f"<th>{html.escape(c)}</th>"
        for c, n in zip(show.columns, numeric, strict=True)
    )
    rows = []
    for kind, cells in zip(kinds, P.display_rows(show), strict=True):
        tds = "".join(
            f'<td class="n">{html.escape(v)}</td>' if n else f"<td>{html.escape(v)}</td>"
            for v, n in zip(cells, numeric, strict=True)
        )
        rows.append(f'<tr class="{kind}">{tds}</tr>' if kind != "detail" else f"<tr>{tds}</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    klass = f' class="{cls}"' if cls else ""
    return f"<table{klass}>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


STREAMS = {"CONSUMPTION": "Consumption", "GENERATION": "Generation", "CONTROLLED_LOAD": "Controlled load"}
CLASSES = {"RES": "Residential", "BUS": "Business"}
METHODS = {"INTERVAL": "Interval", "BASIC": "Basic", "ALL": "All"}


def backtest_labelled(backtest: pl.DataFrame) -> pl.DataFrame:
    """The back-test rows with their segment key (``RES|NSW|CONSUMPTION``) split into human
    columns and a one-line label for the chart."""
    parts = pl.col("segment").str.split("|")
    b = backtest.with_columns(pl.col(pl.Decimal).cast(pl.Float64)).with_columns(
        pl.when(pl.col("segment") == "ALL")
        .then(pl.lit("All"))
        .otherwise(parts.list.get(0, null_on_oob=True).replace(CLASSES))
        .alias("Customer class"),
        pl.when(pl.col("segment") == "ALL")
        .then(pl.lit("All"))
        .otherwise(parts.list.get(1, null_on_oob=True))
        .alias("State"),
        pl.when(pl.col("segment") == "ALL")
        .then(pl.lit("All"))
        .otherwise(parts.list.get(2, null_on_oob=True).replace(STREAMS))
        .alias("Register"),
        pl.col("method").replace(METHODS).alias("Method"),
    )
    detail = pl.concat_str(
        [
            P.fuel_label("fuel"),
            pl.col("Method"),
            pl.col("Customer class"),
            pl.col("State"),
            pl.col("Register"),
        ],
        separator=" · ",
        ignore_nulls=True,
    )
    portfolio = pl.concat_str(
        [
            P.fuel_label("fuel"),
            pl.when(pl.col("method") == "ALL").then(pl.lit("all methods")).otherwise(pl.col("Method")),
            pl.lit("all segments"),
        ],
        separator=" · ",
    )
    # details first, then each method's subtotal, the fuel's total last (whatever order the rows came in)
    order = [
        pl.col("fuel"),
        pl.col("method") == "ALL",
        pl.col("segment") == "ALL",
        pl.col("method"),
        pl.col("segment"),
    ]
    return b.with_columns(
        pl.when(pl.col("segment") == "ALL").then(portfolio).otherwise(detail).alias("Label")
    ).sort(order)


def backtest_table(backtest: pl.DataFrame, fuel: str) -> pl.DataFrame:
    unit = P.UNITS.get(fuel, "units")
    b = backtest_labelled(backtest.filter(pl.col("fuel") == fuel))
    kind = (
        pl.when(pl.col("segment") != "ALL")
        .then(pl.lit("detail"))
        .when(pl.col("method") != "ALL")
        .then(pl.lit("subtotal"))
        .otherwise(pl.lit("total"))
    )
    return b.select(
        "Method",
        "Customer class",
        "State",
        "Register",
        pl.col("registers").cast(pl.Int64).alias("Registers"),
        pl.col("register_days").cast(pl.Int64).alias("Register-days"),
        pl.col("actual_volume").alias(f"Actual ({unit})"),
        pl.col("estimated_volume").alias(f"Estimated ({unit})"),
        pl.col("bias_pct").alias("Bias (%)"),
        pl.col("mape_pct").alias("MAPE (%)"),
        pl.col("wape_pct").alias("WAPE (%)"),
        kind.alias("row"),
    )


def trueup_tables(trueup: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """The money table (every fuel and segment, the portfolio last) and one usage table per fuel
    (its unit in the headers)."""
    t = trueup.with_columns(pl.col(pl.Decimal).cast(pl.Float64))
    # details, then each fuel's subtotal, the portfolio's total last (whatever order the rows came in)
    t = t.sort(pl.col("fuel") == "ALL", pl.col("segment") == "ALL", "fuel", "segment")
    kind = (
        pl.when(pl.col("fuel") == "ALL")
        .then(pl.lit("total"))
        .when(pl.col("segment") == "ALL")
        .then(pl.lit("subtotal"))
        .otherwise(pl.lit("detail"))
    )
    label = [
        pl.when(pl.col("fuel") == "ALL").then(pl.lit(P.TOTAL)).otherwise(P.fuel_label("fuel")).alias("Fuel"),
        pl.when(pl.col("segment") == "ALL").then(pl.lit("All")).otherwise(pl.col("segment")).alias("Segment"),
    ]
    money = t.select(
        *label,
        pl.col("accounts").cast(pl.Int64).alias("Accounts accrued"),
        pl.col("accounts_billed").cast(pl.Int64).alias("Accounts billed since"),
        pl.col("covered_days").cast(pl.Int64).alias("Covered account-days"),
        pl.col("accrued_net").alias("Accrued ($)"),
        pl.col("billed_net").alias("Billed since ($)"),
        pl.col("net_difference").alias("Difference ($)"),
        pl.col("net_difference_pct").alias("Difference (%)"),
        pl.col("accrued_net_total").alias("Whole accrual ($)"),
        kind.alias("row"),
    )
    usage = {}
    for fuel in ("ELECTRICITY", "GAS"):
        unit = P.UNITS[fuel]
        f = t.filter(pl.col("fuel") == fuel)
        if f.height:
            usage[fuel] = f.select(
                *label,
                pl.col("accrued_volume").alias(f"Accrued ({unit})"),
                pl.col("billed_volume").alias(f"Billed since ({unit})"),
                pl.col("volume_difference").alias(f"Difference ({unit})"),
                pl.col("volume_difference_pct").alias("Difference (%)"),
                kind.alias("row"),
            )
    return money, usage


def month_segment_table(summary: pl.DataFrame) -> pl.DataFrame:
    t = P.accrual_by(summary, ["month", "segment"])
    return P.with_totals(t, ["Month", "Segment"], subtotal_by="Month")


def state_fuel_table(summary: pl.DataFrame, volumes: pl.DataFrame | None) -> pl.DataFrame:
    t = P.accrual_by(summary, ["state", "fuel"])
    if volumes is not None and volumes.height:
        acc = volumes.group_by(
            pl.col("state").cast(pl.String).fill_null(P.NONE_LABEL).alias("State"),
            P.fuel_label("fuel").alias("Fuel"),
        ).agg(pl.col("accounts").sum().cast(pl.Int64).alias(P.ACCOUNTS))
        t = t.join(acc, on=["State", "Fuel"], how="left").select("State", "Fuel", P.ACCOUNTS, *P.FIGURES)
    return P.with_totals(t, ["State", "Fuel"], subtotal_by="State", figures=(P.ACCOUNTS, *P.FIGURES))
