"""The report's charts: Vega-Altair specifications rendered to static SVG by vl-convert and inlined
(no script, no external asset; ids inside each SVG prefixed so that charts on one page never share one)."""

from __future__ import annotations

import contextlib
import re
import threading
from typing import TYPE_CHECKING, Any

import polars as pl

from tasks.pipeline import presentation as P
from tasks.pipeline.report.tables import backtest_labelled

if TYPE_CHECKING:
    import altair as alt

# Liberation Sans has Arial's (and Helvetica's) metrics: vl-convert lays labels out with the widths
# the reader's browser draws them with (Chromium on Debian: fonts-liberation; Windows: Arial; macOS:
# Helvetica). With a generic "sans-serif", a browser's wider DejaVu Sans made axis labels overlap.
CHART_FONT = "Liberation Sans, Arial, Helvetica, sans-serif"
CHART_WIDTH = 620  # px of the plot area; the page is laid out for ~1,000 px and prints on A4 landscape


def _theme(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    return (
        chart.configure(font=CHART_FONT)
        .configure_axis(labelFontSize=11, titleFontSize=12, labelLimit=260)
        .configure_legend(labelFontSize=11, titleFontSize=12, labelLimit=260)
        .configure_title(fontSize=14, anchor="start")
        .configure_view(stroke=None)
    )


def chart_svg(chart: alt.TopLevelMixin, prefix: str) -> str:
    """The chart rendered to a static SVG element (vl-convert, no script), its ids prefixed with
    ``prefix`` so that several charts inline in one page never share one (``url(#…)``, ``href``)."""
    import vl_convert as vlc

    svg = vlc.vegalite_to_svg(_theme(chart).to_dict())
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    for i in sorted(ids, key=len, reverse=True):
        svg = svg.replace(f'id="{i}"', f'id="{prefix}-{i}"').replace(f"url(#{i})", f"url(#{prefix}-{i})")
        svg = svg.replace(f'href="#{i}"', f'href="#{prefix}-{i}"')
    return svg.replace("<svg ", f'<svg role="img" id="{prefix}" ', 1)


def prewarm() -> None:
    """Import Vega-Altair and start vl-convert's renderer with a one-point chart: the report's fixed
    cost (~0.8 s on a 2-core machine, before its first chart), paid while other phases run."""
    import altair as alt
    import vl_convert as vlc

    vlc.vegalite_to_svg(alt.Chart(alt.Data(values=[{"x": 0}])).mark_point().encode(x="x:Q").to_dict())


def start_prewarm() -> threading.Thread:
    """:func:`prewarm` on a daemon thread (a failure there is left to the report phase to meet)."""

    def run() -> None:
        with contextlib.suppress(Exception):
            prewarm()

    thread = threading.Thread(target=run, name="bua-report-prewarm", daemon=True)
    thread.start()
    return thread


def _money_axis(title: str) -> Any:
    import altair as alt

    return alt.Axis(title=title, format="$,.0f", labelFlush=False)


def month_segment_chart(summary: pl.DataFrame) -> Any:
    """Accrual ($) by month, stacked by segment (negative bars below zero: feed-in credits)."""
    import altair as alt

    df = P.accrual_by(summary, ["month", "segment"]).select("Month", "Segment", P.ACCRUAL)
    months = df["Month"].unique().sort().to_list()
    return (
        alt.Chart(df, title="Accrual by month and segment ($, ex GST)")
        .mark_bar()
        .encode(
            x=alt.X("Month:O", sort=months, axis=alt.Axis(title="Month", labelAngle=-40)),
            y=alt.Y(f"sum({P.ACCRUAL}):Q", axis=_money_axis(P.ACCRUAL)),
            color=alt.Color("Segment:N", title="Segment"),
        )
        .properties(width=CHART_WIDTH, height=260)
    )


def state_fuel_chart(summary: pl.DataFrame) -> Any:
    import altair as alt

    df = P.accrual_by(summary, ["state", "fuel"]).select("State", "Fuel", P.ACCRUAL)
    return (
        alt.Chart(df, title="Accrual by state and fuel ($, ex GST)")
        .mark_bar()
        .encode(
            y=alt.Y("State:N", title="State", sort="ascending"),
            x=alt.X(f"sum({P.ACCRUAL}):Q", axis=_money_axis(P.ACCRUAL)),
            color=alt.Color("Fuel:N", title="Fuel"),
        )
        .properties(width=CHART_WIDTH, height=alt.Step(22))
    )


def share_chart(volumes: pl.DataFrame) -> Any:
    """Share of each fuel and segment's unbilled usage that is actual vs estimated (percent: a
    share, so electricity and gas can sit on one axis without adding kWh to MJ)."""
    import altair as alt

    v = volumes.with_columns(
        pl.concat_str(
            [P.fuel_label("fuel"), pl.col("segment").fill_null(P.NONE_LABEL)], separator=" · "
        ).alias("Fuel · segment")
    )
    g = v.group_by("Fuel · segment").agg(
        pl.col("volume_actual").sum().alias("Actual"), pl.col("volume_estimated").sum().alias("Estimated")
    )
    long = (
        g.unpivot(index="Fuel · segment", variable_name="Usage", value_name="value")
        .join(
            g.select("Fuel · segment", (pl.col("Actual") + pl.col("Estimated")).alias("_w")),
            on="Fuel · segment",
        )
        .with_columns(
            pl.when(pl.col("_w") != 0)
            .then(100 * pl.col("value") / pl.col("_w"))
            .otherwise(0.0)
            .alias("Share (%)")
        )
        .sort("Fuel · segment", "Usage")
    )
    return (
        alt.Chart(long, title="Unbilled usage: actual vs estimated share (%)")
        .mark_bar()
        .encode(
            y=alt.Y("Fuel · segment:N", title=None),
            x=alt.X(
                "Share (%):Q",
                title="Share of the fuel and segment's usage (%)",
                scale=alt.Scale(domain=[0, 100]),
            ),
            color=alt.Color(
                "Usage:N",
                title="Usage",
                scale=alt.Scale(domain=["Actual", "Estimated"], range=["#4c78a8", "#f58518"]),
            ),
            order=alt.Order("Usage:N"),
        )
        .properties(width=CHART_WIDTH - 120, height=alt.Step(22))
    )


def exceptions_chart(exceptions: pl.DataFrame) -> Any:
    import altair as alt

    # sorted: group_by's order varies from run to run, and the SVG's marks follow the rows' order
    df = (
        exceptions.group_by(pl.col("code").alias("Code"))
        .agg(pl.col("count").sum().alias("Count"))
        .sort("Code")
    )
    return (
        alt.Chart(df, title="Exceptions by code")
        .mark_bar(color="#e45756")
        .encode(
            y=alt.Y("Code:N", sort="-x", title=None),
            x=alt.X("Count:Q", title="Exceptions", axis=alt.Axis(format=",d", tickMinStep=1)),
        )
        .properties(width=CHART_WIDTH - 120, height=alt.Step(22))
    )


BIAS_CLIP = 50.0  # the back-test chart's axis: ±50 %; a bar beyond is drawn to the edge and labelled


def backtest_chart(backtest: pl.DataFrame) -> Any:
    """Bias and WAPE (%) per fuel, method and segment, horizontal bars: one row per label, so the
    labels never overlap whatever their number; bars beyond ±50 % stop at the edge, their figure
    written beside them (the table has every figure)."""
    import altair as alt

    df = backtest_labelled(backtest).select(
        "Label", pl.col("bias_pct").alias("Bias (%)"), pl.col("wape_pct").alias("WAPE (%)")
    )
    long = df.unpivot(index="Label", variable_name="Metric", value_name="value").with_columns(
        pl.col("value").cast(pl.Float64),
        pl.col("value").cast(pl.Float64).clip(-BIAS_CLIP, BIAS_CLIP).alias("shown"),
    )
    long = long.with_columns(
        pl.when(pl.col("value").abs() > BIAS_CLIP)
        .then(pl.col("value").round(0).cast(pl.Int64).cast(pl.String) + " %")
        .otherwise(pl.lit(""))
        .alias("beyond")
    )
    order = df["Label"].to_list()
    base = alt.Chart(long, title="Back-test: bias and WAPE of the estimate vs the actuals (%)").encode(
        y=alt.Y("Label:N", sort=order, title=None, axis=alt.Axis(labelLimit=0)),
        yOffset=alt.YOffset("Metric:N"),
    )
    bars = base.mark_bar().encode(
        x=alt.X(
            "shown:Q",
            title=f"% of actual usage (axis cut at ±{BIAS_CLIP:.0f} %: the figure is written on the bar)",
            scale=alt.Scale(domain=[-BIAS_CLIP, BIAS_CLIP]),
        ),
        color=alt.Color(
            "Metric:N",
            title=None,
            scale=alt.Scale(range=["#4c78a8", "#72b7b2"]),
            legend=alt.Legend(orient="top"),
        ),
    )
    # figures beyond the axis: written inside the bar's end, white on the bar (never over a label)
    over = (
        base.mark_text(align="right", dx=-3, fontSize=10, fontWeight="bold", color="white")
        .encode(x=alt.X("shown:Q"), text="beyond:N")
        .transform_filter(alt.datum.value > BIAS_CLIP)
    )
    under = (
        base.mark_text(align="left", dx=3, fontSize=10, fontWeight="bold", color="white")
        .encode(x=alt.X("shown:Q"), text="beyond:N")
        .transform_filter(alt.datum.value < -BIAS_CLIP)
    )
    return alt.layer(bars, over, under).properties(width=CHART_WIDTH - 220, height=alt.Step(11))


def trueup_chart(trueup: pl.DataFrame) -> Any:
    """Accrued vs since billed ($) for each fuel and segment of the previous run."""
    import altair as alt

    t = trueup.filter((pl.col("fuel") != "ALL") & (pl.col("segment") != "ALL")).with_columns(
        pl.concat_str([P.fuel_label("fuel"), pl.col("segment")], separator=" · ").alias("Fuel · segment")
    )
    long = t.select(
        "Fuel · segment",
        pl.col("accrued_net").cast(pl.Float64).alias("Accrued"),
        pl.col("billed_net").cast(pl.Float64).alias("Billed since"),
    ).unpivot(index="Fuel · segment", variable_name="Amount", value_name="$")
    return (
        alt.Chart(long, title="True-up: accrued vs billed since, covered days ($, ex GST)")
        .mark_bar()
        .encode(
            y=alt.Y("Fuel · segment:N", title=None),
            yOffset=alt.YOffset("Amount:N"),
            x=alt.X("$:Q", axis=_money_axis("$ (ex GST)")),
            color=alt.Color("Amount:N", title=None, scale=alt.Scale(range=["#4c78a8", "#54a24b"])),
        )
        .properties(width=CHART_WIDTH - 120, height=alt.Step(11))
    )


def comparison_chart(comparison: pl.DataFrame) -> Any:
    import altair as alt

    df = (
        P.comparison_by(comparison, "month")
        .filter(pl.col("Month") != P.TOTAL)
        .select("Month", "Difference ($)")
    )
    return (
        alt.Chart(df, title="What-if minus booked accrual by month ($)")
        .mark_bar()
        .encode(
            x=alt.X("Month:O", axis=alt.Axis(labelAngle=-40)),
            y=alt.Y("Difference ($):Q", axis=_money_axis("Difference ($)")),
            color=alt.condition(alt.datum["Difference ($)"] < 0, alt.value("#e45756"), alt.value("#4c78a8")),
        )
        .properties(width=CHART_WIDTH, height=220)
    )
