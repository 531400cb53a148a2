"""The run's self-contained HTML report (SPEC §6) in finance's language (docs/REPORT.md).

:func:`render_report` is a pure function of small frames (no I/O): the run's facts
(:class:`ReportRun`), its ``accrual_summary`` rows, the accounts' actual and estimated usage, the
exceptions by code, the back-test and true-up rows, the pre-run checks and, for a what-if
scenario, the comparison against the booked run. Sections: the run and its headline figures;
pre-run checks ("not run" without a frame); accrual by month and segment; by state and fuel;
estimated vs actual share; exceptions by code; back-test; true-up (a note when there is no earlier
run); booked vs what-if (scenarios only); the exported files.

Charts are Vega-Altair specifications rendered to static SVG by vl-convert and inlined: no script,
no external asset, nothing to install to read it (ids inside each SVG are prefixed so that charts
on one page never share one). Tables carry human headers, months as ``2026-10``, usage in kWh and
MJ in separate columns, money to the cent, subtotals and totals
(:mod:`tasks.pipeline.presentation`).

The I/O is apart: :func:`read_report_frames` (database GROUP BYs; rows never leave the database
but for the ~1,000-row accrual summary), :func:`report_links` (relative links from the report to
the CSVs, or pre-signed URLs on S3) and :func:`write_report` (atomic write, local or S3). The page
holds no clock time and no customer identifier: a re-run with the same figures writes the same bytes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from tasks.pipeline import presentation as P
from tasks.settings import Settings, join_url

if TYPE_CHECKING:
    import altair as alt

    from tasks.pipeline.datasets import PhaseContext as Ctx

VALIDATION_TABLES = ("bua_backtest", "bua_trueup")
MONEY = ("net_amount", "discount_net_propensity", "net_amount_less_discount")
# Liberation Sans has Arial's (and Helvetica's) metrics: vl-convert lays labels out with the widths
# the reader's browser draws them with (Chromium on Debian: fonts-liberation; Windows: Arial; macOS:
# Helvetica). With a generic "sans-serif", a browser's wider DejaVu Sans made axis labels overlap.
CHART_FONT = "Liberation Sans, Arial, Helvetica, sans-serif"
CHART_WIDTH = 620  # px of the plot area; the page is laid out for ~1,000 px and prints on A4 landscape


@dataclasses.dataclass(frozen=True)
class ReportRun:
    """What the report says about the run itself (no settings, no secrets)."""

    run_id: str
    run_date: dt.date
    period_start: dt.date
    period_end: dt.date
    scenario: str = ""  # '' = the booked run
    basic_method: str | None = None
    code_version: str | None = None
    shards: int | None = None

    @classmethod
    def of(cls, ctx: Any, scenario: str | None = None) -> ReportRun:
        """From a run context (RunContext, the flow's RunSpec or anything with those attributes)."""
        return cls(
            run_id=str(ctx.run_id),
            run_date=ctx.run_date,
            period_start=ctx.period_start,
            period_end=ctx.period_end,
            scenario=scenario if scenario is not None else (getattr(ctx, "scenario", "") or ""),
            basic_method=getattr(ctx, "basic_method", None),
            code_version=getattr(ctx, "code_version", None),
            shards=getattr(ctx, "shards", None),
        )


# ---------------------------------------------------------------- locations


def _scenario_part(scenario: str) -> list[str]:
    return [f"scenario={scenario}"] if scenario else []


def report_url(settings: Settings, run_date: dt.date, scenario: str = "") -> str:
    """``{output_url}/report/{run_date}/report.html``; a what-if scenario's beside it, in
    ``report/{run_date}/scenario={name}/report.html``."""
    return join_url(
        settings.output_url, "report", run_date.isoformat(), *_scenario_part(scenario), "report.html"
    )


def csv_dir_url(settings: Settings, run_date: dt.date, scenario: str = "") -> str:
    """Where the run's CSVs are (SPEC §4.5, §6): ``export/csv/{run_date}/[scenario={name}/]``."""
    return join_url(settings.output_url, "export", "csv", run_date.isoformat(), *_scenario_part(scenario))


def relative_link(from_url: str, to_url: str) -> str:
    """The relative href from the page at ``from_url`` to ``to_url`` (same root: a local folder or
    one S3 bucket), e.g. ``../../export/csv/2026-11-01/accrual_summary.csv``."""
    return posixpath.relpath(to_url, posixpath.dirname(from_url))


def report_links(
    settings: Settings, page_url: str, files: Sequence[str], presign_seconds: int = 0
) -> list[tuple[str, str]]:
    """``(file name, href)`` for each exported file: a relative link (works for a local folder, a
    copy of the output tree, or a bucket served as a website); on S3 with ``presign_seconds`` > 0 a
    pre-signed GET URL valid that long (the page then differs on each write: the signature is
    dated)."""
    out = []
    client = None
    for url in sorted(files):
        name = url.rsplit("/", 1)[-1]
        if presign_seconds > 0 and url.startswith("s3://"):
            if client is None:
                client = _s3_client(settings)
            bucket, _, key = url[len("s3://") :].partition("/")
            href = client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=int(presign_seconds)
            )
        else:
            href = relative_link(page_url, url)
        out.append((name, href))
    return out


def absolute_links(
    settings: Settings, files: Sequence[str], presign_seconds: int = 0
) -> list[tuple[str, str]]:
    """``(file name, URL)`` for places without a page to be relative to (Prefect artifacts, Slack):
    a local file as a ``file://`` URI; an S3 object as a pre-signed GET URL when ``presign_seconds``
    > 0, else its ``https://{bucket}.s3.{region}.amazonaws.com/{key}`` address (needs access)."""
    from pathlib import Path

    out = []
    client = None
    for url in sorted(files):
        name = url.rsplit("/", 1)[-1]
        if url.startswith("s3://"):
            bucket, _, key = url[len("s3://") :].partition("/")
            if presign_seconds > 0:
                client = client or _s3_client(settings)
                href = client.generate_presigned_url(
                    "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=int(presign_seconds)
                )
            else:
                href = f"https://{bucket}.s3.{settings.aws_region}.amazonaws.com/{key}"
        else:
            href = Path(url).resolve().as_uri()
        out.append((name, href))
    return out


def _s3_client(settings: Settings) -> Any:
    import boto3
    from botocore.config import Config

    key = settings.aws_access_key_id.get_secret_value() if settings.aws_access_key_id else None
    secret = settings.aws_secret_access_key.get_secret_value() if settings.aws_secret_access_key else None
    return boto3.client(
        "s3",
        region_name=settings.aws_region,
        endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(signature_version="s3v4"),  # SigV4 pre-signed URLs (every region accepts them)
    )


# ---------------------------------------------------------------- charts (Vega-Altair → static SVG)


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


# ---------------------------------------------------------------- tables


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


# ---------------------------------------------------------------- the page

STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:1.5em auto;max-width:1100px;"
    "padding:0 1em;color:#222;font-size:14px}"
    "h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:2px solid #ddd;padding-bottom:.2em}"
    "table{border-collapse:collapse;margin:.8em 0;font-size:13px;max-width:100%}"
    "th,td{border:1px solid #ccc;padding:3px 7px;vertical-align:top}"
    "th{background:#f3f3f3;text-align:left}th.n{text-align:right}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    "tr.subtotal td{background:#f7f7f7;font-style:italic}tr.total td{background:#eee;font-weight:bold}"
    "caption{text-align:left;font-weight:bold;margin-bottom:4px}"
    "svg{display:block;margin:1em 0;max-width:100%;height:auto}"
    ".note{color:#555}.banner{background:#fff3cd;border:1px solid #e0c36b;padding:.6em 1em;font-weight:bold}"
    ".status-FAIL{color:#b00020;font-weight:bold}.status-WARN{color:#8a5a00;font-weight:bold}"
    ".status-PASS{color:#1b6e1b}"
    "@media print{body{max-width:none;font-size:11px}h2{page-break-after:avoid}table,svg{page-break-inside:avoid}}"
)


def _kpis(
    run: ReportRun, summary: pl.DataFrame, volumes: pl.DataFrame | None, exceptions: pl.DataFrame | None
) -> str:
    total = P.accrual_by(summary, []) if summary.height else None
    accounts = int(volumes["accounts"].sum()) if volumes is not None and volumes.height else None
    n_exc = int(exceptions["count"].sum()) if exceptions is not None and exceptions.height else 0
    row = {
        "Accrual ($)": [float(total[P.ACCRUAL][0]) if total is not None else 0.0],
        "Charges ($)": [float(total[P.CHARGES][0]) if total is not None else 0.0],
        "Discounts ($)": [float(total[P.DISCOUNTS][0]) if total is not None else 0.0],
        P.USAGE_KWH: [total[P.USAGE_KWH][0] if total is not None else None],
        P.USAGE_MJ: [total[P.USAGE_MJ][0] if total is not None else None],
        "Accounts": [accounts],
        "Exceptions": [n_exc],
    }
    df = pl.DataFrame(
        row,
        schema={
            "Accrual ($)": pl.Float64,
            "Charges ($)": pl.Float64,
            "Discounts ($)": pl.Float64,
            P.USAGE_KWH: pl.Float64,
            P.USAGE_MJ: pl.Float64,
            "Accounts": pl.Int64,
            "Exceptions": pl.Int64,
        },
    )
    return html_table(df, "Headline figures", cls="kpi")


def _run_facts(run: ReportRun) -> str:
    facts = [
        ("Run date (accrual as at)", run.run_date.isoformat()),
        ("Period accrued", f"{run.period_start.isoformat()} to {run.period_end.isoformat()}"),
        ("Run", "booked" if not run.scenario else f"what-if scenario “{run.scenario}” (not booked)"),
    ]
    if run.basic_method:
        facts.append(("Basic meter method", run.basic_method))
    facts.append(("Run id", run.run_id))
    if run.code_version:
        facts.append(("Code version", run.code_version))
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    return f"<table><caption>Run</caption><tbody>{rows}</tbody></table>"


def _prechecks_section(prechecks: pl.DataFrame | None) -> str:
    parts = ['<h2 id="prechecks">Pre-run checks</h2>']
    if prechecks is None:
        parts.append('<p class="note">Pre-run checks: not run for this run.</p>')
        return "".join(parts)
    t = P.prechecks_table(prechecks)
    counts = {s: int((t["Status"] == s).sum()) for s in ("PASS", "WARN", "FAIL")}
    parts.append(
        f"<p>{counts['PASS']} passed, {counts['WARN']} warned, {counts['FAIL']} failed "
        f"(a FAIL stops the run before anything is written; a WARN is reported and recorded).</p>"
    )
    table = html_table(t)
    # the status cell coloured by its value
    table = re.sub(r"<td>(PASS|WARN|FAIL)</td>", r'<td class="status-\1">\1</td>', table)
    parts.append(table)
    return "".join(parts)


def _month_segment_table(summary: pl.DataFrame) -> pl.DataFrame:
    t = P.accrual_by(summary, ["month", "segment"])
    return P.with_totals(t, ["Month", "Segment"], subtotal_by="Month")


def _state_fuel_table(summary: pl.DataFrame, volumes: pl.DataFrame | None) -> pl.DataFrame:
    t = P.accrual_by(summary, ["state", "fuel"])
    if volumes is not None and volumes.height:
        acc = volumes.group_by(
            pl.col("state").cast(pl.String).fill_null(P.NONE_LABEL).alias("State"),
            P.fuel_label("fuel").alias("Fuel"),
        ).agg(pl.col("accounts").sum().cast(pl.Int64).alias(P.ACCOUNTS))
        t = t.join(acc, on=["State", "Fuel"], how="left").select("State", "Fuel", P.ACCOUNTS, *P.FIGURES)
    return P.with_totals(t, ["State", "Fuel"], subtotal_by="State", figures=(P.ACCOUNTS, *P.FIGURES))


def _section(title: str, anchor: str, *body: str) -> str:
    return f'<h2 id="{anchor}">{html.escape(title)}</h2>' + "".join(body)


def render_report(
    run: ReportRun,
    summary: pl.DataFrame,
    account_volumes: pl.DataFrame | None = None,
    exceptions: pl.DataFrame | None = None,
    backtest: pl.DataFrame | None = None,
    trueup: pl.DataFrame | None = None,
    prechecks: pl.DataFrame | None = None,
    comparison: pl.DataFrame | None = None,
    links: Sequence[tuple[str, str]] = (),
    trueup_note: str | None = None,
    csv_folder: str | None = None,
) -> str:
    """The report page (HTML) of one run: a pure function of its frames.

    - ``summary``: the run's ``accrual_summary`` rows (SPEC §4.5).
    - ``account_volumes``: accounts, ``volume_actual``, ``volume_estimated`` by ``fuel``, ``state``,
      ``segment``, ``estimation_method`` (:func:`tasks.pipeline.presentation.account_volumes` of
      ``bua_account_summary``).
    - ``exceptions``: ``code``, ``count``.
    - ``backtest`` / ``trueup``: the run's ``bua_backtest`` / ``bua_trueup`` rows (None: the
      validation phase did not run; empty true-up: no earlier run, ``trueup_note`` says why).
    - ``prechecks``: check, status (PASS/WARN/FAIL), figure, threshold, detail (None: "not run").
    - ``comparison``: for a what-if run, :func:`tasks.pipeline.presentation.compare_runs` of its
      summary and the booked run's (None: no booked run to compare with).
    - ``links``: ``(file name, href)`` of the exported CSVs (:func:`report_links`).
    - ``csv_folder``: the href of the run's CSV folder, shown when ``links`` is empty.
    """
    what_if = bool(run.scenario)
    title = f"Bottom-up accrual as at {run.run_date.isoformat()}" + (
        f" — what-if “{run.scenario}”" if what_if else ""
    )
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if what_if:
        parts.append(
            f'<p class="banner">What-if scenario “{html.escape(run.scenario)}”: these figures are NOT the booked '
            f"accrual of {run.run_date.isoformat()}; the comparison with the booked run is at the end.</p>"
        )
    parts += [
        '<p class="note">Unbilled energy consumed before the run date, valued through each customer\'s tariff. '
        "Money in Australian dollars excluding GST; discounts weighted by the likelihood that the customer "
        "earns them; accrual = charges − discounts. Usage: electricity in kWh, gas in MJ, never added together. "
        "Months are calendar months of consumption.</p>",
        _run_facts(run),
        _kpis(run, summary, account_volumes, exceptions),
        _prechecks_section(prechecks),
    ]
    if summary.height:
        parts.append(
            _section(
                "Accrual by month and segment",
                "month-segment",
                chart_svg(month_segment_chart(summary), "chart-month-segment"),
                html_table(_month_segment_table(summary)),
            )
        )
        parts.append(
            _section(
                "Accrual by state and fuel",
                "state-fuel",
                chart_svg(state_fuel_chart(summary), "chart-state-fuel"),
                html_table(_state_fuel_table(summary, account_volumes)),
            )
        )
    else:
        parts.append(
            _section("Accrual", "month-segment", "<p>No unbilled accounts: the accrual is empty.</p>")
        )
    if account_volumes is not None and account_volumes.height:
        tables = [
            html_table(P.estimated_share(account_volumes, fuel), f"{P.FUELS[fuel]} ({P.UNITS[fuel]})")
            for fuel in ("ELECTRICITY", "GAS")
            if (account_volumes["fuel"] == fuel).any()
        ]
        parts.append(
            _section(
                "Estimated vs actual share of the unbilled usage",
                "share",
                '<p class="note">Actual: usage measured by interval meters or between actual reads. '
                "Estimated: profiled or projected usage of the days not yet read.</p>",
                chart_svg(share_chart(account_volumes), "chart-share"),
                *tables,
            )
        )
    if exceptions is not None and exceptions.height:
        parts.append(
            _section(
                "Exceptions by code",
                "exceptions",
                '<p class="note">Accounts and registers accrued as far as they safely could be; the '
                "exceptions CSV names each one.</p>",
                chart_svg(exceptions_chart(exceptions), "chart-exceptions"),
                html_table(P.exceptions_table(exceptions)),
            )
        )
    else:
        parts.append(_section("Exceptions by code", "exceptions", "<p>No exceptions.</p>"))
    parts.append(_backtest_section(backtest))
    parts.append(_trueup_section(run, trueup, trueup_note))
    if what_if:
        parts.append(_comparison_section(run, comparison))
    parts.append(_files_section(links, csv_folder))
    parts.append("</body></html>\n")
    return "".join(parts)


def _backtest_section(backtest: pl.DataFrame | None) -> str:
    if backtest is None:
        return _section("Back-test", "backtest", "<p>The validation phase did not run for this run.</p>")
    if backtest.height == 0:
        return _section(
            "Back-test", "backtest", "<p>No registers could be back-tested for this run date.</p>"
        )
    b = backtest.with_columns(pl.col(pl.Decimal).cast(pl.Float64))
    first = b.row(0, named=True)
    intro = (
        f'<p class="note">The estimator re-run as at {first["backtest_date"]} with only the data known then, '
        f"compared with the actuals since received up to {first['window_to']}. Bias = (estimated − actual) / "
        "actual; MAPE = mean of each register's absolute error; WAPE = absolute errors / actual usage. "
        "Subtotal rows: one method, all segments; total row: the fuel's portfolio.</p>"
    )
    tables = [
        html_table(backtest_table(b, fuel), f"{P.FUELS[fuel]} ({P.UNITS[fuel]})")
        for fuel in ("ELECTRICITY", "GAS")
        if (b["fuel"] == fuel).any()
    ]
    return _section("Back-test", "backtest", intro, chart_svg(backtest_chart(b), "chart-backtest"), *tables)


def _trueup_section(run: ReportRun, trueup: pl.DataFrame | None, note: str | None) -> str:
    if trueup is None:
        return _section("True-up", "trueup", "<p>The validation phase did not run for this run.</p>")
    if trueup.height == 0:
        text = note or (
            f"No earlier run before {run.run_date.isoformat()} to true up: the true-up of this "
            "accrual against what is billed since will be in the next run's report."
        )
        return _section("True-up", "trueup", f"<p>{html.escape(text)}</p>")
    t = trueup.with_columns(pl.col(pl.Decimal).cast(pl.Float64))
    previous = t["accrual_run_date"][0] if "accrual_run_date" in t.columns else None
    intro = (
        f'<p class="note">The accrual of the previous run ({previous}) against what has been billed since for '
        "the same days (covered days: from the account's unbilled start to the end of its newest bill since). "
        "Difference = accrued − billed; positive: the accrual was higher than the bills.</p>"
    )
    money, usage = trueup_tables(t)
    tables = [html_table(money, "Money ($, ex GST)")] + [
        html_table(u, f"Usage, {P.FUELS[fuel]} ({P.UNITS[fuel]})") for fuel, u in usage.items()
    ]
    return _section("True-up", "trueup", intro, chart_svg(trueup_chart(t), "chart-trueup"), *tables)


def _comparison_section(run: ReportRun, comparison: pl.DataFrame | None) -> str:
    title = "What-if vs booked"
    if comparison is None:
        return _section(
            title,
            "comparison",
            f"<p>No booked run of {run.run_date.isoformat()} to compare with: run the booked accrual "
            "(without a scenario) first.</p>",
        )
    parts = [
        f'<p class="note">This what-if run (“{html.escape(run.scenario)}”) against the booked run of the same run '
        "date. Difference = what-if − booked; a key in one run only counts 0 in the other.</p>",
        chart_svg(comparison_chart(comparison), "chart-comparison"),
    ]
    for dim, caption in (
        ("state", "By state"),
        ("fuel", "By fuel"),
        ("segment", "By segment"),
        ("month", "By month"),
    ):
        t = P.comparison_by(comparison, dim)
        # usage columns of a fuel-less view only where that fuel is there
        t = t.select([c for c in t.columns if not (t[c].dtype.is_numeric() and t[c].is_null().all())])
        parts.append(html_table(t, caption))
    return _section(title, "comparison", *parts)


def _files_section(links: Sequence[tuple[str, str]], csv_folder: str | None = None) -> str:
    if not links and csv_folder:
        return _section(
            "Exported files",
            "files",
            f'<p>The CSVs (per-account detail, every exception) are in <a href="{html.escape(csv_folder)}">'
            f"{html.escape(csv_folder)}</a>.</p>",
        )
    if not links:
        return _section("Exported files", "files", "<p>No exported files listed.</p>")
    items = "".join(f'<li><a href="{html.escape(href)}">{html.escape(name)}</a></li>' for name, href in links)
    return _section(
        "Exported files",
        "files",
        '<p class="note">CSV, one row per line, ISO dates; the per-account detail and every exception.</p>',
        f"<ul>{items}</ul>",
    )


# ---------------------------------------------------------------- I/O: frames from the database


def _reflect(conn: Any, names: Sequence[str]) -> dict[str, Any]:
    import sqlalchemy as sa

    present = set(sa.inspect(conn).get_table_names())
    md = sa.MetaData()
    return {n: sa.Table(n, md, autoload_with=conn) for n in names if n in present}


def _where(table: Any, run_date: dt.date, scenario: str) -> list[Any]:
    conds = [table.c.run_date == run_date]
    if "scenario" in table.c:  # the what-if column (SPEC §4.5); tables before it hold booked runs only
        conds.append(table.c.scenario == scenario)
    elif scenario:
        conds.append(False)  # no scenario column: no what-if rows
    return conds


def _frame(conn: Any, query: Any) -> pl.DataFrame:
    res = conn.execute(query)
    cols = list(res.keys())
    rows = res.fetchall()  # aggregates and the ~1,000-row summary, never per-account rows
    df = pl.DataFrame(
        {c: [r[i] for r in rows] for i, c in enumerate(cols)}, strict=False, infer_schema_length=None
    )
    return df.with_columns(pl.col(pl.Decimal).cast(pl.Float64))


def read_report_frames(
    database_url: str, run_date: dt.date, scenario: str = ""
) -> dict[str, pl.DataFrame | None]:
    """The frames :func:`render_report` takes, from the database (GROUP BYs; tables that do not
    exist give None): summary, account_volumes, exceptions, backtest, trueup, prechecks and, for a
    scenario, comparison (None when the booked run has no rows)."""
    import sqlalchemy as sa

    from tasks.adapters.db import engine_for

    names = ("accrual_summary", "bua_account_summary", "bua_exception", *VALIDATION_TABLES, "bua_precheck")
    out: dict[str, pl.DataFrame | None] = {}
    with engine_for(database_url).connect() as conn:
        t = _reflect(conn, names)
        acc = t["accrual_summary"]
        cols = [c for c in acc.c if c.name not in ("run_id", "run_date", "scenario")]
        out["summary"] = _frame(
            conn, sa.select(*cols).where(*_where(acc, run_date, scenario)).order_by(*cols)
        )
        summ = t["bua_account_summary"]
        keys = [summ.c.service_type, summ.c.jurisdiction, summ.c.journal_segment, summ.c.estimation_method]
        out["account_volumes"] = _frame(
            conn,
            sa.select(
                summ.c.service_type.label("fuel"),
                summ.c.jurisdiction.label("state"),
                summ.c.journal_segment.label("segment"),
                summ.c.estimation_method,
                sa.func.count().label("accounts"),
                sa.func.sum(summ.c.volume_actual).label("volume_actual"),
                sa.func.sum(summ.c.volume_estimated).label("volume_estimated"),
            )
            .where(*_where(summ, run_date, scenario))
            .group_by(*keys)
            .order_by(*keys),
        )
        exc = t["bua_exception"]
        out["exceptions"] = _frame(
            conn,
            sa.select(exc.c.code, sa.func.count().label("count"))
            .where(*_where(exc, run_date, scenario))
            .group_by(exc.c.code)
            .order_by(exc.c.code),
        )
        for name, key in (
            ("bua_backtest", "backtest"),
            ("bua_trueup", "trueup"),
            ("bua_precheck", "prechecks"),
        ):
            table = t.get(name)
            if table is None:
                out[key] = None
                continue
            # ordered: the page must be the same bytes on a re-run, whatever order the database returns
            order = [c for c in table.c if c.name not in ("run_id", "run_date", "scenario")]
            df = _frame(conn, sa.select(table).where(*_where(table, run_date, scenario)).order_by(*order))
            df = df.drop("run_id", "run_date", "scenario", strict=False)
            # validation not run for this run date: None, so the report says so (not "no earlier run")
            out[key] = df if (df.height or key == "trueup") else None
        if out.get("trueup") is not None and out["trueup"].height == 0 and out.get("backtest") is None:
            out["trueup"] = None
        out["comparison"] = None
        if scenario:
            booked = _frame(conn, sa.select(*cols).where(*_where(acc, run_date, "")).order_by(*cols))
            if booked.height:
                out["comparison"] = P.compare_runs(out["summary"], booked)  # type: ignore[arg-type]
    return out


def write_report(
    settings: Settings,
    run: ReportRun,
    frames: Mapping[str, pl.DataFrame | None] | None = None,
    presign_seconds: int = 0,
) -> str:
    """Render the run's report and write it atomically (local or S3); returns its URL. ``frames``
    as :func:`render_report` takes them (default: :func:`read_report_frames`); the links go to the
    CSVs found under the run's CSV folder."""
    from tasks.adapters import storage

    url = report_url(settings, run.run_date, run.scenario)
    f = (
        dict(frames)
        if frames is not None
        else read_report_frames(settings.db_url, run.run_date, run.scenario)
    )
    csv_dir = csv_dir_url(settings, run.run_date, run.scenario)
    files = [
        u
        for u in storage.list_files(csv_dir, settings, suffix=".csv")
        if run.scenario or "/scenario=" not in u
    ]
    links = report_links(settings, url, files, presign_seconds)
    summary = f.get("summary")
    page = render_report(
        run,
        summary if summary is not None else pl.DataFrame(),
        account_volumes=f.get("account_volumes"),
        exceptions=f.get("exceptions"),
        backtest=f.get("backtest"),
        trueup=f.get("trueup"),
        prechecks=f.get("prechecks"),
        comparison=f.get("comparison"),
        links=links,
    )
    storage.write_bytes_atomic(page.encode(), url, settings)
    return url


# ---------------------------------------------------------------- the phase graph's report (tasks/pipeline/graph.py)
# published_accrual = figures(), validation_figures = validation_figures() (sinks.py loads them);
# the report phase (phases/publish.py) calls render(ctx, {**published_accrual, **validation_figures}).


def figures(database_url: str, run_date: dt.date, scenario: str = "") -> dict[str, pl.DataFrame]:
    """The run's published accrual frames: what :func:`render_report` reads (summary,
    account_volumes, exceptions, prechecks when bua_precheck exists) and what the Slack totals read
    (:func:`totals_frames`), all computed by the database."""
    from tasks.adapters.db import engine_for

    f = read_report_frames(database_url, run_date, scenario)
    out = {
        k: v
        for k in ("summary", "account_volumes", "exceptions", "prechecks", "comparison")
        if (v := f[k]) is not None
    }
    with engine_for(database_url).connect() as conn:
        out.update(totals_frames(conn, run_date, scenario))
    return out


def validation_figures(database_url: str, run_date: dt.date, scenario: str = "") -> dict[str, pl.DataFrame]:
    """The run date's bua_backtest and bua_trueup rows (absent: the validation phase did not run)."""
    f = read_report_frames(database_url, run_date, scenario)
    out: dict[str, pl.DataFrame] = {}
    if f["backtest"] is not None:
        out["bua_backtest"] = f["backtest"]
    if f["trueup"] is not None:
        out["bua_trueup"] = f["trueup"]
    return out


def render(ctx: Ctx, frames: Mapping[str, pl.DataFrame]) -> str:
    """The report page of the run ``ctx`` from :func:`figures` and :func:`validation_figures` frames
    (a pure function of them; the links go to the run's CSV folder, which is known without I/O)."""
    run = ReportRun.of(ctx.spec if hasattr(ctx, "spec") else ctx)
    page_url = report_url(ctx.settings, run.run_date, run.scenario)
    folder = csv_dir_url(ctx.settings, run.run_date, run.scenario)
    links = frames.get("links")
    return render_report(
        run,
        frames.get("summary", pl.DataFrame()),
        account_volumes=frames.get("account_volumes"),
        exceptions=frames.get("exceptions"),
        backtest=frames.get("bua_backtest"),
        trueup=frames.get("bua_trueup"),
        prechecks=frames.get("prechecks"),
        comparison=frames.get("comparison"),
        links=[tuple(r) for r in links.iter_rows()] if links is not None else [],
        csv_folder=relative_link(page_url, folder) + "/",
    )


# ---------------------------------------------------------------- totals for Slack (tasks/pipeline/notify.py)


def totals_frames(conn: Any, run_date: dt.date, scenario: str = "") -> dict[str, pl.DataFrame]:
    """The run date's accrual by state and fuel, accounts by state and fuel and exceptions by code
    (the Slack "finished" message): aggregates computed by the database."""
    import sqlalchemy as sa

    from sql.schema import metadata

    acc = metadata.tables["accrual_summary"]
    summ = metadata.tables["bua_account_summary"]
    exc = metadata.tables["bua_exception"]
    out: dict[str, pl.DataFrame] = {}
    by = [acc.c.state, acc.c.fuel]
    out["by_state_fuel"] = _frame(
        conn,
        sa.select(
            *by, *(sa.func.sum(acc.c[m]).label(m) for m in MONEY), sa.func.sum(acc.c.volume).label("volume")
        )
        .where((acc.c.run_date == run_date) & (acc.c.scenario == scenario))
        .group_by(*by)
        .order_by(*by),
    )
    accounts_by = [summ.c.jurisdiction, summ.c.service_type]
    out["accounts_by_state_fuel"] = _frame(
        conn,
        sa.select(
            summ.c.jurisdiction.label("state"),
            summ.c.service_type.label("fuel"),
            sa.func.count().label("accounts"),
        )
        .where((summ.c.run_date == run_date) & (summ.c.scenario == scenario))
        .group_by(*accounts_by)
        .order_by(*accounts_by),
    )
    out["exceptions_by_code"] = _frame(
        conn,
        sa.select(exc.c.code, sa.func.count().label("count"))
        .where((exc.c.run_date == run_date) & (exc.c.scenario == scenario))
        .group_by(exc.c.code)
        .order_by(exc.c.code),
    )
    return out
